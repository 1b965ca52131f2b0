#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Usage: scripts/bench-element.sh [BUILD_DIR]   (default: build; needs bc)
# The element's own per-frame cost, measured where inference is cheap: the
# tiny reference model, videotestsrc 640x480 RGB, sync, batch-size 1, 2
# threads; per-frame time from a 510- and a 10-frame run, minus the tiny
# model's encoder time from gst-clip bench (batch 1).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
reference=${CLIP_REFERENCE_DIR:-$PWD/../shared/reference}
M=$reference/models/tiny-openai
V=$reference/vocab
export GST_PLUGIN_PATH=$PWD/$build/gst-plugin
run () {
  local t0=$(date +%s.%N)
  gst-launch-1.0 -q videotestsrc pattern=ball num-buffers=$1 \
    ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 \
    ! clipclassify model=$M vocab=$V mode=sync batch-size=1 threads=2 backend=cpu labels="a ball,a dog,a cat" \
    ! fakesink > /dev/null
  echo "$(date +%s.%N) - $t0" | bc
}
src () {
  local t0=$(date +%s.%N)
  gst-launch-1.0 -q videotestsrc pattern=ball num-buffers=$1 \
    ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 ! fakesink > /dev/null
  echo "$(date +%s.%N) - $t0" | bc
}
for round in 1 2 3; do
  element=$(echo "($(run 510) - $(run 10)) * 1000 / 500" | bc -l)
  source=$(echo "($(src 510) - $(src 10)) * 1000 / 500" | bc -l)
  enc=$($build/tools/gst-clip bench --model $M --vocab $V --backend cpu --threads 2 --batch 1 --iterations 500 | sed -n 's/^image ms\/image: //p')
  printf "round %d: pipeline %.3f ms/frame, source+sink alone %.3f, tiny encoder %.3f -> element's own cost %.3f ms/frame\n" \
    $round $element $source $enc $(echo "$element - $source - $enc" | bc -l)
done
