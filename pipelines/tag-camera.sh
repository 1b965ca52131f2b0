#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Tags a live camera: prints a line each time the label on screen changes
# (the "clipclassify-segment" bus messages).
#
#   CLIP_MODEL=/path/to/model CLIP_LABELS="a person,a cat,an empty room" \
#     pipelines/tag-camera.sh
#
# The camera is live, so clipclassify runs in live mode: a worker thread
# classifies the newest frame and video never waits for inference. The
# queue gives the camera its own thread. interval=3 analyses every third
# frame; smoothing=8 averages the last eight analysed frames so the label
# does not flicker; min-segment=1000000000 (1 s) announces a label only
# once it has held for a second.
#
# Environment: CLIP_MODEL, CLIP_VOCAB, CLIP_LABELS as in demo-videotestsrc.sh;
#   CLIP_CAMERA       device (default /dev/video0)
#   CLIP_CAMERA_SRC   a whole source to use instead of v4l2src, e.g.
#                     "videotestsrc is-live=true num-buffers=100"
#   CLIP_SINK         display sink (default autovideosink; fakesink headless)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

read -r -a source <<< "${CLIP_CAMERA_SRC:-v4l2src device=${CLIP_CAMERA:-/dev/video0}}"
read -r -a sink <<< "${CLIP_SINK:-autovideosink}"
element=(clipclassify "labels=${CLIP_LABELS:-a person,a cat,a dog,an empty room}"
  interval=3 smoothing=8 min-segment=1000000000)
add_model_properties

gst-launch-1.0 -m \
  "${source[@]}" ! queue ! videoconvert \
  ! "${element[@]}" \
  ! videoconvert ! "${sink[@]}" \
  | sed -u -n 's/.*clipclassify-segment, \(.*\);$/label change: \1/p'
