#!/usr/bin/env bash
# Demo: clipclassify on videotestsrc, one "clipclassify" bus message per
# frame (gst-launch-1.0 -m prints them).
#
#   CLIP_MODEL=/path/to/clip-vit-base-patch32 pipelines/demo-videotestsrc.sh
#
# Environment:
#   CLIP_MODEL        model folder (HF or OpenCLIP); unset = the installed default
#   CLIP_VOCAB        vocabulary folder; unset = the model folder's
#   CLIP_LABELS       comma-separated labels
#   CLIP_NUM_BUFFERS  frames to classify (default 100)
set -euo pipefail

element=(clipclassify "labels=${CLIP_LABELS:-a ball,a test pattern,a cat,a dog}" top-k=3)
[[ -n ${CLIP_MODEL:-} ]] && element+=("model=$CLIP_MODEL")
[[ -n ${CLIP_VOCAB:-} ]] && element+=("vocab=$CLIP_VOCAB")

# A non-live source, so clipclassify runs in sync mode: every frame is
# analysed and carries its own result.
exec gst-launch-1.0 -m \
  videotestsrc pattern=ball num-buffers="${CLIP_NUM_BUFFERS:-100}" \
  ! video/x-raw,width=640,height=480,framerate=30/1 \
  ! "${element[@]}" \
  ! fakesink
