#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Usage: scripts/bench-skip.sh [BUILD_DIR] [MODEL_DIR]   (default: build, and
# a ViT-B/32 random model made with gst-clip random-model in a temp folder)
# What clipclassify's change-threshold saves (docs/performance.md):
#  (a) real footage: OpenCV's vtest.avi (Debian: apt-get install opencv-doc
#      gstreamer1.0-libav), a fixed camera with people walking, 795 frames at
#      10 fps: encoder passes (one clipclassify message each) and wall time
#      with change-threshold off and at several values, max-skip 5 s;
#  (b) a synthetic 60 s static scene with three 2 s events: the element test
#      /clipclassify-skip/static-scene-events (default model), which checks
#      that the segments are the ungated ones, and prints the passes;
#  (c) what the check costs per frame (tests/results/test-change.c's
#      /change/cost) next to a ViT-B/32 image pass (gst-clip bench).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
model=${2:-}
export GST_PLUGIN_PATH=$PWD/$build/gst-plugin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$model" ]; then
  model=$tmp/vit-b-32
  "$build"/tools/gst-clip random-model --arch ViT-B/32 --out "$model" \
    --vocab models/default > /dev/null
fi

video=$(dpkg -L opencv-doc 2>/dev/null | grep '/vtest.avi$' || true)
if [ -n "$video" ] && gst-inspect-1.0 avdec_msmpeg4 > /dev/null 2>&1; then
  echo "(a) $video, model $model, sync, interval 1, max-skip 5 s"
  for threshold in 0 2 4 6; do
    t0=$(date +%s.%N)
    gst-launch-1.0 -m filesrc location="$video" ! decodebin ! videoconvert \
      ! video/x-raw,format=I420 \
      ! clipclassify model="$model" labels="a person,a car,an empty street" \
        mode=sync backend=cpu change-threshold=$threshold ! fakesink \
      > "$tmp/messages" 2>&1
    t1=$(date +%s.%N)
    printf "change-threshold=%s: %d encoder passes, %.1f s\n" "$threshold" \
      "$(grep -c 'clipclassify, ' "$tmp/messages")" "$(echo "$t1 - $t0" | bc)"
  done
else
  echo "(a) skipped: no vtest.avi (opencv-doc) or no avdec_msmpeg4 (gstreamer1.0-libav)"
fi

echo "(b) synthetic static scene with three events (default model)"
CLIP_SOURCE_DIR=$PWD GST_REGISTRY_1_0=$tmp/registry.bin \
  "$build"/tests/element/test-element-clipclassify-skip \
  -p /clipclassify-skip/static-scene-events --verbose 2>&1 | grep '^#' | grep -v -E 'random seed|of clipclassify-skip'

echo "(c) the change check's cost per frame, and a ViT-B/32 image pass"
"$build"/tests/results/test-results-change -p /change/cost --verbose 2>&1 | grep 'thumbnail of'
"$build"/tools/gst-clip bench --model "$model" --backend cpu --batch 1 \
  --iterations 10 | grep -E '^(backend|image ms/image)'
