#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Usage: scripts/bench-element.sh [BUILD_DIR [WxH:FORMAT ...]]
#   (default: build 640x480:RGB; FORMAT is a GStreamer video format such as
#   RGB, BGRx, I420 or NV12; needs bc)
# The element's own per-frame cost, measured where inference is cheap: the
# tiny reference model, videotestsrc pattern=ball, sync, batch-size 1, 2
# threads; per-frame time from a 510- and a 10-frame run, minus the same
# source and sink alone, minus the tiny model's encoder time from gst-clip
# bench (batch 1). Each size is measured with the preprocessing kernel the
# CPU picks and with the plain one (CLIP_PREPROCESS=plain) in turn, so that
# both see the same machine. ROUNDS (default 3) rounds; with VIT_MODEL set
# to a model folder (e.g. a ViT-B/32 from gst-clip random-model), each
# round also prints that model's ms per image at VIT_PRECISION (default
# int8, the precision the element's cost is held to: issue 16), to compare
# with.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
inputs=${*:-640x480:RGB}
reference=${CLIP_REFERENCE_DIR:-$PWD/../shared/reference}
M=$reference/models/tiny-openai
V=$reference/vocab
export GST_PLUGIN_PATH=$PWD/$build/gst-plugin
seconds () {
  local t0=$(date +%s.%N)
  "$@" > /dev/null
  echo "$(date +%s.%N) - $t0" | bc
}
pipeline () { # FRAMES WIDTH HEIGHT FORMAT [ELEMENT...]
  local n=$1 w=$2 h=$3 f=$4
  shift 4
  gst-launch-1.0 -q videotestsrc pattern=ball num-buffers=$n \
    ! video/x-raw,format=$f,width=$w,height=$h,framerate=30/1 "$@" ! fakesink
}
per_frame () { # like pipeline, without FRAMES: ms per frame
  echo "($(seconds pipeline 510 "$@") - $(seconds pipeline 10 "$@")) * 1000 / 500" | bc -l
}
encoder_ms () { # MODEL [ITERATIONS [PRECISION]]: ms per image at batch 1 (preprocessed input)
  $build/tools/gst-clip bench --model $1 --vocab $V --backend cpu --threads 2 \
    --batch 1 --iterations ${2:-500} --precision ${3:-f32} | sed -n 's/^image ms\/image: //p'
}
element="! clipclassify model=$M vocab=$V mode=sync batch-size=1 threads=2 backend=cpu"
for round in $(seq ${ROUNDS:-3}); do
  enc=$(encoder_ms $M)
  printf "round %d: tiny encoder %.3f ms/image" $round $enc
  if [ -n "${VIT_MODEL:-}" ]; then
    printf ", %s %.1f ms/image at %s" "$(basename $VIT_MODEL)" \
      $(encoder_ms $VIT_MODEL 20 ${VIT_PRECISION:-int8}) ${VIT_PRECISION:-int8}
  fi
  echo
  for input in $inputs; do
    size=${input%%:*} format=${input#*:}
    w=${size%x*} h=${size#*x}
    source=$(per_frame $w $h $format)
    dispatched=$(per_frame $w $h $format $element labels="a ball,a dog,a cat")
    plain=$(CLIP_PREPROCESS=plain per_frame $w $h $format $element labels="a ball,a dog,a cat")
    printf "  %s %s: source+sink %.3f ms/frame; element's own cost %.3f ms/frame (plain preprocessing: %.3f)\n" \
      $size $format $source $(echo "$dispatched - $source - $enc" | bc -l) \
      $(echo "$plain - $source - $enc" | bc -l)
  done
done
