#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Tags a live camera and publishes what it sees to an MQTT broker
# (clippublish): an event each time a label has held for a second with a
# probability of at least 0.5 (the same label at most every 30 s), the
# current label as a retained state, and the stream's online/offline status.
#
#   CLIP_MQTT_ADDRESS=broker.local:1883 CLIP_STREAM_NAME=porch \
#     CLIP_LABELS="a person,a cat,an empty room" pipelines/publish-camera.sh
#   mosquitto_sub -h broker.local -t 'gst-clip/#' -v     # to watch
#
# The documents are described in docs/publish.md. As in tag-camera.sh,
# clipclassify runs live (a worker classifies the newest frame, video never
# waits), every third frame, smoothed over eight.
#
# Environment: CLIP_MODEL, CLIP_VOCAB, CLIP_LABELS, CLIP_CAMERA and
# CLIP_CAMERA_SRC as in tag-camera.sh;
#   CLIP_MQTT_ADDRESS  broker host:port (default localhost:1883)
#   CLIP_STREAM_NAME   the stream's name in topics and documents (default
#                      camera)
#   CLIP_TOPIC         topic prefix (default gst-clip/{name})
#   CLIP_PUBLISH_FILE  write the documents as JSON Lines to this file
#                      instead of publishing them
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

read -r -a source <<< "${CLIP_CAMERA_SRC:-v4l2src device=${CLIP_CAMERA:-/dev/video0}}"
element=(clipclassify "labels=${CLIP_LABELS:-a person,a cat,a dog,an empty room}"
  interval=3 smoothing=8)
add_model_properties
publish=(clippublish "stream-name=${CLIP_STREAM_NAME:-camera}"
  "topic=${CLIP_TOPIC:-gst-clip/{name\}}" min-segment=1000000000 min-score=0.5
  cooldown=30000000000)
if [[ -n ${CLIP_PUBLISH_FILE:-} ]]; then
  publish+=(method=file "location=$CLIP_PUBLISH_FILE")
else
  publish+=("address=${CLIP_MQTT_ADDRESS:-localhost:1883}")
fi

# -e: on Ctrl-C the stream ends cleanly and the status goes offline.
exec gst-launch-1.0 -e \
  "${source[@]}" ! queue ! videoconvert \
  ! "${element[@]}" ! "${publish[@]}" ! fakesink
