#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Soak test: clipclassify in live mode on a live videotestsrc for DURATION
# seconds, sampling the process's resident memory and open file descriptors
# every INTERVAL seconds into a CSV. Prints the first, last and largest
# samples and the drift of the last sample from the first one taken after
# the warm-up (caches and thread stacks fill during the first seconds).
# Usage: scripts/soak.sh DURATION [INTERVAL] [CSV]
# Environment: BUILD_DIR (default build), SOAK_MODEL (default model folder,
# else the tiny reference model), SOAK_FPS (default 30), SOAK_THREADS
# (clipclassify's threads, default 1; 2 or more share each frame's
# preprocessing among them), SOAK_WARMUP seconds (default DURATION/10, at
# most 60).
set -eu
cd "$(dirname "$0")/.."
duration=${1:?usage: scripts/soak.sh DURATION [INTERVAL] [CSV]}
interval=${2:-10}
csv=${3:-soak.csv}
build=${BUILD_DIR:-build}
reference=${CLIP_REFERENCE_DIR:-$(pwd)/../shared/reference}
model=${SOAK_MODEL:-}
if [ -z "$model" ]; then
  if [ -f models/default/model.safetensors ]; then
    model=$(pwd)/models/default
  else
    model=$reference/models/tiny-hf
  fi
fi
fps=${SOAK_FPS:-30}
warmup=${SOAK_WARMUP:-$((duration / 10 < 60 ? duration / 10 : 60))}

[ -f "$build/gst-plugin/libgstclip.so" ] || ninja -C "$build"
export GST_PLUGIN_PATH="$(pwd)/$build/gst-plugin"
export GST_REGISTRY_1_0="$(pwd)/$build/soak-registry.bin"

gst-launch-1.0 -q videotestsrc is-live=true pattern=ball \
  ! video/x-raw,width=320,height=240,framerate=$fps/1 \
  ! clipclassify model="$model" mode=live threads=${SOAK_THREADS:-1} \
      labels="a ball,a dog,a cat,a car,a tree" \
  ! fakesink sync=true &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT INT TERM

echo "seconds,rss_kib,fds" >"$csv"
start=$(date +%s)
while :; do
  now=$(($(date +%s) - start))
  if ! kill -0 $pid 2>/dev/null; then
    echo "soak: gst-launch-1.0 exited after ${now}s" >&2
    exit 1
  fi
  rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$pid/status)
  fds=$(ls /proc/$pid/fd | wc -l)
  echo "$now,$rss,$fds" >>"$csv"
  [ "$now" -ge "$duration" ] && break
  sleep "$interval"
done
kill $pid
wait $pid 2>/dev/null || true
trap - EXIT INT TERM

awk -F, -v warmup="$warmup" -v model="$model" '
  NR == 1 { next }
  first == "" { first = $2; first_fds = $3 }
  base == "" && $1 >= warmup { base = $2; base_t = $1; base_fds = $3 }
  $2 > max { max = $2 } $3 > max_fds { max_fds = $3 }
  { last = $2; last_t = $1; last_fds = $3 }
  END {
    printf "model %s, %d samples over %ds\n", model, NR - 1, last_t
    printf "rss KiB: start %d, after %ds warm-up %d, end %d, max %d\n",
        first, base_t, base, last, max
    printf "rss drift after warm-up: %+d KiB (%+.2f%%)\n", last - base,
        100.0 * (last - base) / base
    printf "fds: start %d, after warm-up %d, end %d, max %d\n",
        first_fds, base_fds, last_fds, max_fds
  }' "$csv"
