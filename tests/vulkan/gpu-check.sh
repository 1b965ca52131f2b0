#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Vulkan check for a machine with a real GPU (issue 4): the Vulkan tests
# (validation layer on), then `gst-clip bench --backend vulkan --profile` on a
# ViT-B/32 random model at batch 1, 8, 32 and 128, and once from 1080p I420
# frames (preprocessing on the device). Prints the GPU, the date and every
# figure; copy them into the README's Vulkan section.
#
# usage: sh tests/vulkan/gpu-check.sh [BUILD_DIR]   (default build-gpu)
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build-gpu}
model=${TMPDIR:-/tmp}/gst-clip-vit-b-32

date -u
vulkaninfo --summary 2>/dev/null | grep -E 'deviceName|deviceType|driverInfo' || true
[ -f "$build/build.ninja" ] || meson setup "$build" -Dvulkan=enabled -Dplugin=disabled
ninja -C "$build"
meson test -C "$build" --print-errorlogs vulkan/backend vulkan/reference vulkan/preprocess

[ -d "$model" ] || "$build/tools/gst-clip" random-model --arch ViT-B/32 --out "$model" \
    --vocab ../shared/reference/vocab
for batch in 1 8 32 128; do
  echo "=== gst-clip bench --backend vulkan --batch $batch --profile"
  CLIP_VULKAN_VALIDATION=0 "$build/tools/gst-clip" bench --model "$model" \
      --backend vulkan --batch "$batch" --iterations 20 --profile
done
echo "=== gst-clip bench --backend vulkan --batch 32 --frames 1920x1080 --profile"
CLIP_VULKAN_VALIDATION=0 "$build/tools/gst-clip" bench --model "$model" \
    --backend vulkan --batch 32 --iterations 20 --frames 1920x1080 --profile
