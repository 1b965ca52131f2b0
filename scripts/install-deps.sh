#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the Debian 12 packages gst-clip needs to build, test and run.
# Each package's reason is in README.md ("Dependencies"). Run as a user, it
# runs itself again through sudo.
set -eu
if [ "$(id -u)" != 0 ]; then
  exec sudo sh "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  ca-certificates gcc meson ninja-build pkg-config python3 \
  libglib2.0-dev libjson-glib-dev libopenblas-dev zlib1g-dev libgdk-pixbuf-2.0-dev \
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  libcairo2-dev libpango1.0-dev libsqlite3-dev libcurl4-openssl-dev \
  libmosquitto-dev mosquitto mosquitto-clients openssl libgstrtspserver-1.0-dev \
  libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers \
  python3-webvtt chromium \
  clang libclang-rt-14-dev clang-format valgrind \
  gobject-introspection libgirepository1.0-dev python3-gi python3-gst-1.0 \
  gir1.2-gst-plugins-base-1.0
