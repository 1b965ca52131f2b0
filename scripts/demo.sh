#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the packages, builds gst-clip in build/ and runs the demo pipeline:
# videotestsrc cycling through its patterns into clipclassify with the shipped
# default model, printing the label it sees for each frame.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -d build ] || meson setup build
ninja -C build
# Run from the build tree (meson devenv: the plugin from build/, the shipped
# model from models/), in this folder.
exec meson devenv -C build -w . bash pipelines/demo-videotestsrc.sh
