#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip embed against the official code's outputs: images from the
# preprocessed tensors and from the PNGs, texts, raw and normalised, both
# layouts and the F16 model; output lines follow the command-line order.
source "$(dirname "$0")/lib.sh"
need_reference

images=$(python3 -c '
import json, sys
print(" ".join(i["name"] for i in json.load(open(sys.argv[1]))["images"]))' \
  "$REF/manifest.json")
pre_args=() png_args=()
for name in $images; do
  pre_args+=(--pre "$REF/images/$name.pre.f32")
  png_args+=(--image "$REF/images/$name.png")
done
mapfile -t prompts < <(python3 -c '
import json, sys
for p in json.load(open(sys.argv[1]))["prompts"]:
    print(p["text"])' "$REF/manifest.json")
text_args=()
for prompt in "${prompts[@]}"; do
  text_args+=(--text "$prompt")
done

openai=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab" --backend cpu)
expected="$REF/expected/tiny-openai"

"$GST_CLIP" embed "${openai[@]}" "${pre_args[@]}" >"$TMP/pre"
compare_embeddings "$TMP/pre" "$expected/image_embeds.f32" 32 1e-5 normalised

"$GST_CLIP" embed "${openai[@]}" --raw "${pre_args[@]}" >"$TMP/pre-raw"
compare_embeddings "$TMP/pre-raw" "$expected/image_embeds.f32" 32 1e-5 raw

"$GST_CLIP" embed "${openai[@]}" "${png_args[@]}" >"$TMP/png"
compare_embeddings "$TMP/png" "$expected/image_embeds.f32" 32 1e-5 normalised

"$GST_CLIP" embed "${openai[@]}" "${text_args[@]}" >"$TMP/text"
compare_embeddings "$TMP/text" "$expected/text_embeds.f32" 32 1e-5 normalised

"$GST_CLIP" embed "${openai[@]}" --raw "${text_args[@]}" >"$TMP/text-raw"
compare_embeddings "$TMP/text-raw" "$expected/text_embeds.f32" 32 1e-5 raw

# The HF layout of the same weights, with the vocabulary in its folder.
"$GST_CLIP" embed --model "$REF/models/tiny-hf" "${pre_args[@]}" >"$TMP/hf"
compare_embeddings "$TMP/hf" "$expected/image_embeds.f32" 32 1e-5 normalised

# F16 weights have their own expected outputs.
"$GST_CLIP" embed --model "$REF/models/tiny-openai-f16" --vocab "$REF/vocab" \
  "${pre_args[@]}" >"$TMP/f16"
compare_embeddings "$TMP/f16" "$REF/expected/tiny-openai-f16/image_embeds.f32" \
  32 1e-5 normalised

# --precision bf16: images and texts within BF16's 5e-3 of the reference;
# an unknown precision is a usage error that names the valid ones.
"$GST_CLIP" embed "${openai[@]}" --precision bf16 "${png_args[@]}" >"$TMP/bf16"
compare_embeddings "$TMP/bf16" "$expected/image_embeds.f32" 32 5e-3 normalised
"$GST_CLIP" embed "${openai[@]}" --precision bf16 "${text_args[@]}" \
  >"$TMP/bf16-text"
compare_embeddings "$TMP/bf16-text" "$expected/text_embeds.f32" 32 5e-3 \
  normalised
# --precision int8: within INT8's 2e-2.
"$GST_CLIP" embed "${openai[@]}" --precision int8 "${png_args[@]}" >"$TMP/int8"
compare_embeddings "$TMP/int8" "$expected/image_embeds.f32" 32 2e-2 normalised
"$GST_CLIP" embed "${openai[@]}" --precision int8 "${text_args[@]}" \
  >"$TMP/int8-text"
compare_embeddings "$TMP/int8-text" "$expected/text_embeds.f32" 32 2e-2 \
  normalised
expect_error 2 embed "${openai[@]}" --precision int4 --text x -- \
  "--precision" "'int4'" "f32, bf16 or int8"

# Mixed inputs come out in command-line order: text 1, images 0 and 1, text 0.
"$GST_CLIP" embed "${openai[@]}" --text "${prompts[1]}" "${pre_args[@]:0:4}" \
  --text "${prompts[0]}" >"$TMP/mixed"
{
  sed -n 2p "$TMP/text"
  sed -n 1,2p "$TMP/pre"
  sed -n 1p "$TMP/text"
} >"$TMP/mixed-expected"
compare_outputs "$TMP/mixed-expected" "$TMP/mixed" 1e-6
echo "ok: mixed --text/--pre inputs keep their order"
