#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Retrains the shipped default model (models/default) from its recipe,
# models/default/train.ini: contrastive pre-training on the synthetic world
# (videotestsrc patterns and cairo scenes) with 2 OpenBLAS threads, so that
# the result is the same bit for bit wherever it runs with this OpenBLAS.
# Then measures it with `gst-clip eval` and writes the F16 model into
# models/default. A killed run resumes from its checkpoint when started
# again with the same output folder.
#
# Usage: sh scripts/train-default-model.sh   (builds gst-clip in
# build-default-model/), or `ninja -C BUILD train-default-model`, which sets
# GST_CLIP and OUT.
set -eu
cd "$(dirname "$0")/.."
if [ -z "${GST_CLIP:-}" ]; then
  [ -d build-default-model ] || meson setup build-default-model >/dev/null
  ninja -C build-default-model tools/gst-clip
  GST_CLIP=build-default-model/tools/gst-clip
  OUT=${OUT:-build-default-model/default-model}
fi
OUT=${OUT:?set OUT, the training folder}
"$GST_CLIP" train --config models/default/train.ini --synthetic \
  --vocab models/default --threads 2 --dtype f16 --out "$OUT"
"$GST_CLIP" eval --model "$OUT" --synthetic --backend cpu
cp "$OUT/config.json" "$OUT/preprocessor_config.json" "$OUT/model.safetensors" \
  models/default/
echo "models/default updated from $OUT"
