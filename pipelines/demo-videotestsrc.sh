#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Demo: videotestsrc switching patterns every 2 seconds, through clipclassify
# with the pattern descriptions as labels; prints what the element sees, one
# line per analysed frame (from its "clipclassify" bus messages).
#
#   pipelines/demo-videotestsrc.sh
#   CLIP_MODEL=/path/to/clip-vit-base-patch32 CLIP_LABELS="a cat,a dog" \
#     pipelines/demo-videotestsrc.sh
#
# Environment:
#   CLIP_MODEL     model folder (HF or OpenCLIP); unset = the installed default
#   CLIP_VOCAB     vocabulary folder; unset = the model folder's
#   CLIP_LABELS    comma-separated labels (default: the patterns' descriptions)
#   CLIP_PATTERNS  videotestsrc patterns to show, in order
#   CLIP_INTERVAL  analyse one frame in N (default 15: two per second)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

patterns=(${CLIP_PATTERNS:-smpte ball checkers-8 zone-plate snow circular pinwheel red})
labels=${CLIP_LABELS:-smpte color bars,bouncing ball,checkerboard,zone plate,random noise snow,concentric rings,pinwheel,red frame}

element=(clipclassify "labels=$labels" "interval=${CLIP_INTERVAL:-15}")
add_model_properties

# concat plays the sources one after the other: one stream whose content
# changes every 60 frames. Not live, so clipclassify runs in sync mode.
sources=()
for pattern in "${patterns[@]}"; do
  sources+=(videotestsrc "pattern=$pattern" num-buffers=60
    ! video/x-raw,width=320,height=240,framerate=30/1 ! c.)
done

echo "patterns, 2 s each: ${patterns[*]}"
echo "labels: $labels"
gst-launch-1.0 -m concat name=c ! "${element[@]}" ! fakesink "${sources[@]}" |
  sed -nE 's/.*clipclassify, .*running-time=\(guint64\)([0-9]+),.*top-label=\(string\)([^,]*), top-score=\(double\)([0-9.]+).*/\1\t\2\t\3/p' |
  awk -F'\t' '{ label = $2; gsub(/"/, "", label); gsub(/\\/, "", label);
    printf "%6.2f s  %-20s %.2f\n", $1 / 1e9, label, $3 }'
