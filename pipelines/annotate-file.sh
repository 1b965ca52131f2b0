#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Annotates a recorded video: every frame is classified (sync mode, in
# batches) and a timeline of labels is printed from the
# "clipclassify-segment" bus messages:
#
#   0:00:00.000 - 0:00:04.200  a kitchen  (mean 0.81)
#   0:00:04.200 - 0:00:09.960  a street  (mean 0.77)
#
#   CLIP_MODEL=/path/to/model pipelines/annotate-file.sh video.webm
#
# Environment: CLIP_MODEL, CLIP_VOCAB, CLIP_LABELS as in demo-videotestsrc.sh;
#   CLIP_MESSAGES   also save every bus message (gst-launch-1.0 -m) to this file
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 FILE-OR-URI" >&2
  exit 2
fi
uri=$(uri_for "$1")

# smoothing=5 averages five frames before scoring; min-segment=500000000
# ignores labels that hold for less than half a second.
element=(clipclassify "labels=${CLIP_LABELS:-a person,a car,a building,a ball,nature}"
  mode=sync batch-size=8 smoothing=5 min-segment=500000000)
add_model_properties

gst-launch-1.0 -m uridecodebin "uri=$uri" ! videoconvert ! "${element[@]}" ! fakesink \
  | tee "${CLIP_MESSAGES:-/dev/null}" \
  | awk '
      function hms(ns,  s) {
        s = ns / 1e9
        return sprintf("%d:%02d:%06.3f", int(s / 3600), int(s / 60) % 60, s - 60 * int(s / 60))
      }
      function field(name,  rest) {
        if (!match($0, name "=\\([a-z0-9]+\\)(\"[^\"]*\"|[^,;]*)")) return ""
        rest = substr($0, RSTART, RLENGTH)
        sub(/^[^)]*\)/, "", rest)
        gsub(/^"|"$/, "", rest)
        # undo the structure serialisation'"'"'s backslash escapes
        gsub(/\\\\/, "\001", rest); gsub(/\\/, "", rest); gsub(/\001/, "\\", rest)
        return rest
      }
      /clipclassify-segment,/ {
        label = field("label"); if (label == "NULL") label = "(no label)"
        printf "%s - %s  %s  (mean %.2f)\n", hms(field("start")), hms(field("end")),
          label, field("mean-score")
        fflush()
      }'
