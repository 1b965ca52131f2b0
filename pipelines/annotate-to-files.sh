#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Annotates a recorded video into files: every frame is classified (sync
# mode) and chained clipexport elements write, as the frames pass,
#
#   PREFIX.jsonl  one line per frame: pts, labels, scores, top
#   PREFIX.vtt    WebVTT cues, one per segment of the top label
#   PREFIX.srt    the same cues as SubRip
#   PREFIX.csv    the segments as rows: start,end,label,score
#
#   CLIP_MODEL=/path/to/model pipelines/annotate-to-files.sh video.webm [PREFIX]
#
# PREFIX defaults to the video's path without its extension.
# Environment: CLIP_MODEL, CLIP_VOCAB, CLIP_LABELS as in demo-videotestsrc.sh;
#   CLIP_MIN_SEGMENT  nanoseconds a label must hold to start a segment
#                     (default 500000000)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 FILE-OR-URI [PREFIX]" >&2
  exit 2
fi
uri=$(uri_for "$1")
prefix=${2:-${1%.*}}
min_segment=${CLIP_MIN_SEGMENT:-500000000}

element=(clipclassify "labels=${CLIP_LABELS:-a person,a car,a building,a ball,nature}"
  mode=sync batch-size=8)
add_model_properties

# clipexport passes the video on untouched, so one element per format is
# chained on the same path: no tee, no queues. The files are replaced at
# EOS; -e turns Ctrl-C into an EOS, so that a stopped run keeps the part
# analysed.
gst-launch-1.0 -q -e uridecodebin "uri=$uri" ! videoconvert ! "${element[@]}" \
  ! clipexport format=jsonl "location=$prefix.jsonl" \
  ! clipexport format=webvtt "location=$prefix.vtt" "min-segment=$min_segment" \
  ! clipexport format=srt "location=$prefix.srt" "min-segment=$min_segment" \
  ! clipexport format=csv "location=$prefix.csv" "min-segment=$min_segment" \
  ! fakesink
echo "wrote $prefix.jsonl $prefix.vtt $prefix.srt $prefix.csv"
