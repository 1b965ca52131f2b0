#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip bench runs on the tiny model and prints every field, with the
# FLOP count of the tiny image encoder.
source "$(dirname "$0")/lib.sh"
need_reference

"$GST_CLIP" bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --backend cpu --threads 1 --batch 2 --iterations 1 --profile >"$TMP/out"
cat "$TMP/out"

field () {
  sed -n "s|^$1: ||p" "$TMP/out"
}
number='^[0-9]+(\.[0-9]+)?$'
[[ "$(field backend)" == cpu* ]] || fail "backend is '$(field backend)'"
[ "$(field threads)" = 1 ] || fail "threads is '$(field threads)'"
[ "$(field batch)" = 2 ] || fail "batch is '$(field batch)'"
[ "$(field iterations)" = 1 ] || fail "iterations is '$(field iterations)'"
# Patches 2*49*64*3072, per layer 2*50*64*(3*64 + 64 + 2*256) + 4*50*50*64,
# two layers, projection 2*64*32: 30382080 FLOPs.
[ "$(field 'image GFLOP/image')" = 0.030 ] ||
  fail "GFLOP/image is '$(field 'image GFLOP/image')', expected 0.030"
for key in 'image images/s' 'image ms/image' 'image GFLOP/s' 'text ms/prompt'; do
  [[ "$(field "$key")" =~ $number ]] || fail "'$key' is not a number: '$(field "$key")'"
done
[ "$(field 'text prompts/batch')" = 8 ] || fail "text batch is not 8"
grep -q '^image profile: ' "$TMP/out" || fail "--profile printed nothing"
[ "$(field 'image input')" = "preprocessed 224x224" ] ||
  fail "image input is '$(field 'image input')'"

# Frames: preprocessing included, the same fields.
"$GST_CLIP" bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --backend cpu --threads 1 --batch 2 --iterations 1 --frames 640x360 >"$TMP/out"
[ "$(field 'image input')" = "I420 frames 640x360, preprocessing included" ] ||
  fail "image input is '$(field 'image input')'"
[[ "$(field 'image ms/image')" =~ $number ]] || fail "no ms/image for frames"
expect_error 2 bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --frames 640by360 -- "--frames wants WIDTHxHEIGHT"

# --precisions: each precision's own backend and figures, side by side.
"$GST_CLIP" bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --backend cpu --threads 1 --batch 2 --iterations 3 \
  --precisions f32,bf16,int8 >"$TMP/out"
cat "$TMP/out"
for p in f32 bf16 int8; do
  for key in "image ms/image ($p)" "image GFLOP/s ($p)" "text ms/prompt ($p)"; do
    [[ "$(field "$key")" =~ $number ]] || fail "'$key' is not a number: '$(field "$key")'"
  done
done
[[ "$(field 'backend (int8)')" =~ ", int8 (patch embedding and projections "(bf16|f32)"), 1 thread)"$ ]] ||
  fail "backend (int8) is '$(field 'backend (int8)')'"
grep -q '^image ms/image:' "$TMP/out" && fail "--precisions printed a single figure too"
expect_error 2 bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --precisions f32,f16 -- "f16"
expect_error 2 bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --precisions f32,bf16,int8,f32 -- "one to three"
expect_error 2 bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --precisions f32,int8 --frames 640x360 -- "without --frames"
# --twin: the second model at each precision, its batches taking turns with
# the first's, and each round's ratio; not without --precisions, nor with a
# model of other inputs.
"$GST_CLIP" bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --backend cpu --threads 1 --batch 2 --iterations 3 \
  --precisions f32,int8 --twin "$REF/models/tiny-openai-f16" >"$TMP/out"
cat "$TMP/out"
twin="$REF/models/tiny-openai-f16"
for p in f32 int8 "f32, $twin" "int8, $twin"; do
  [[ "$(field "image ms\/image ($p)")" =~ $number ]] ||
    fail "no ms/image for '$p': '$(field "image ms\/image ($p)")'"
done
for p in f32 int8; do
  [[ "$(field "image speed vs --model ($p, $twin)")" =~ $number ]] ||
    fail "no speed ratio for '$p' of the twin"
done
[ "$(grep -c '^image speed vs' "$TMP/out")" = 2 ] || fail "not 2 ratios"
expect_error 2 bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --twin "$twin" -- "--twin needs --precisions"
# A model of other sizes (32-pixel images, 8-wide embeddings): one step of
# training makes it.
printf '[model]\nimage_size=32\npatch_size=16\nembed_dim=8\ncontext_length=77
vision_width=16\nvision_layers=1\nvision_heads=1\ntext_width=16
text_layers=1\ntext_heads=1\n[train]\nbatch=2\nsteps=1\n' >"$TMP/small.ini"
"$GST_CLIP" train --synthetic --config "$TMP/small.ini" --out "$TMP/small" \
  --vocab "$REF/vocab" >/dev/null || fail "train could not make a small model"
expect_error 2 bench --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  --precisions f32 --twin "$TMP/small" -- "does not match --model"
# scripts/bench-element.sh, where the plugin is built: each size's cost, with
# either kernel, and the share of the compared model's frame.
if [ -x "$CLIP_BUILD_DIR/tests/element/bench-element" ]; then
  CLIP_REFERENCE_DIR="$REF" FRAMES=3 ROUNDS=1 VIT_MODEL="$REF/models/tiny-openai" \
    bash "$CLIP_SOURCE_DIR/scripts/bench-element.sh" "$CLIP_BUILD_DIR" \
    64x48:RGB 64x48:I420 >"$TMP/out"
  cat "$TMP/out"
  [ "$(grep -cE "^  64x48:(RGB|I420): element [0-9.]+ ms/frame, encoder alone [0-9.]+ ms/image; element's own cost -?[0-9.]+ ms/frame$" "$TMP/out")" = 4 ] ||
    fail "bench-element.sh did not print 2 sizes x 2 kernels"
  [ "$(grep -cE "^    .*tiny-openai at int8 beside it: [0-9.]+ ms/image \(median of 1\); the own cost is -?[0-9.]+% of it$" "$TMP/out")" = 2 ] ||
    fail "bench-element.sh did not compare each size with VIT_MODEL"
  grep -qE "^  the largest share: -?[0-9.]+% \(64x48:(RGB|I420)\) of .*tiny-openai's int8 frame$" "$TMP/out" ||
    fail "bench-element.sh gave no largest share"
fi
echo "ok: every bench field printed"
