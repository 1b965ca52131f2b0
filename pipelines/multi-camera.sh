#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Tags N cameras in one process: one model, loaded once and shared by the N
# clipclassify elements, whose frames are analysed together in shared
# batches (docs/many-streams.md), and one broker that every
# stream publishes to under its own name (gst-clip/NAME/...). Each camera
# is reconnected on its own when it goes away, as in tag-rtsp-camera.sh.
#
#   CLIP_MQTT_ADDRESS=broker.local:1883 pipelines/multi-camera.sh \
#     porch=rtsp://192.168.1.20/stream1 yard=rtsp://192.168.1.21/stream1
#
# A URI without NAME= is named stream1, stream2... Any URI uridecodebin
# plays will do (file://, http://). With CLIP_PUBLISH_FILE, put {name} in
# the path, so that each stream writes its own file.
#
# Environment: as tag-rtsp-camera.sh (CLIP_STREAM_NAME aside).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $# -lt 1 ]]; then
  echo "usage: $0 [NAME=]URI..." >&2
  exit 2
fi
exec_tag_streams "$@"
