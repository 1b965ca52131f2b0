#!/bin/sh
# Installs the packages, builds gst-clip in build/ and runs the demo pipeline:
# videotestsrc cycling through its patterns into clipclassify with the shipped
# default model, printing the label it sees for each frame.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  sh scripts/install-deps.sh
else
  sudo sh scripts/install-deps.sh
fi
[ -d build ] || meson setup build
ninja -C build
exec sh pipelines/demo-videotestsrc.sh
