#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Tags an RTSP camera and publishes what it sees to an MQTT broker, as
# publish-camera.sh does, and survives the camera going away: when the
# stream fails, ends or stalls, the source is started again after a delay,
# and again until the camera is back, while the process, the model it holds
# and the broker connection stay (tag-streams, pipelines/tag-streams.c).
#
#   CLIP_MQTT_ADDRESS=broker.local:1883 CLIP_STREAM_NAME=porch \
#     CLIP_LABELS="a person,a cat,an empty room" \
#     pipelines/tag-rtsp-camera.sh rtsp://192.168.1.20:554/stream1
#   mosquitto_sub -h broker.local -t 'gst-clip/#' -v     # to watch
#
# It prints a line when the camera plays and when it is lost. H.264 and
# H.265 cameras need a decoder (Debian: gstreamer1.0-libav).
#
# Environment: CLIP_MODEL, CLIP_VOCAB, CLIP_LABELS, CLIP_MQTT_ADDRESS,
# CLIP_STREAM_NAME, CLIP_TOPIC and CLIP_PUBLISH_FILE as in
# publish-camera.sh;
#   CLIP_PUBLISH_RESULTS  1: publish every analysed result too
#   CLIP_RETRY_DELAY      seconds before a lost camera is tried again (5)
#   CLIP_STALL_TIMEOUT    seconds without a frame that count as lost (10)
#   CLIP_TAG_STREAMS      the tag-streams program (default: build/'s)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 rtsp://HOST[:PORT]/PATH" >&2
  exit 2
fi
exec_tag_streams "${CLIP_STREAM_NAME:-camera}=$1"
