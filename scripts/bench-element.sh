#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Usage: scripts/bench-element.sh [BUILD_DIR [WxH:FORMAT ...]]
#   (default: build 640x480:RGB; FORMAT is a GStreamer video format such as
#   RGB, BGRx, I420 or NV12)
# The element's own per-frame cost, what it adds to inference
# (tests/element/bench-element.c): in one process, FRAMES (default 200)
# frames through clipclassify (sync, batch-size 1, THREADS threads, default
# 2, the CPU backend, the tiny reference model, where inference is cheap),
# taking turns with the same model's encoder alone on a preprocessed image;
# the cost is the difference of the two medians. Each of ROUNDS (default 3)
# rounds measures every size with the preprocessing kernel the CPU picks,
# then with the plain one (CLIP_PREPROCESS=plain). With VIT_MODEL set to a
# model folder (e.g. a ViT-B/32 from gst-clip random-model), the first also
# runs a frame of that model's encoder at VIT_PRECISION (default int8, the
# precision the element's cost is held to: issue 16) after every 20 pairs,
# and gives each size's cost as a share of the median of those frames:
# both from the same moments of a machine whose speed varies.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
inputs=${*:-640x480:RGB}
reference=${CLIP_REFERENCE_DIR:-$PWD/../shared/reference}
export GST_PLUGIN_PATH=$(cd "$build" && pwd)/gst-plugin
bench () {
  "$build/tests/element/bench-element" "$reference/models/tiny-openai" \
    "$reference/vocab" "${FRAMES:-200}" "${THREADS:-2}" "$@"
}
compare=()
if [ -n "${VIT_MODEL:-}" ]; then
  compare=(--compare "$VIT_MODEL" --precision "${VIT_PRECISION:-int8}")
fi
for round in $(seq "${ROUNDS:-3}"); do
  echo "round $round, the preprocessing kernel the CPU picks:"
  bench "${compare[@]}" $inputs
  echo "round $round, plain preprocessing (CLIP_PREPROCESS=plain):"
  CLIP_PREPROCESS=plain bench $inputs
done
