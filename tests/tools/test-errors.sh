#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad input makes gst-clip exit 1 (errors) or 2 (bad command line) with one
# "gst-clip: " message that names the file or option and the problem;
# never a crash.
source "$(dirname "$0")/lib.sh"
need_reference

vocab=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab")
model=("${vocab[@]}" --backend cpu)
png="$REF/images/tiny_43x32.png"

# Command line.
expect_error 2 -- "COMMAND"
expect_error 2 frobnicate -- "unknown command 'frobnicate'"
expect_error 2 embed --no-such-option -- "--no-such-option"
expect_error 2 embed "${model[@]}" -- "no input"
expect_error 2 embed "${model[@]}" --backend gpu --text a -- "--backend" "gpu"
expect_error 2 tokenize "${vocab[@]}" -- "no TEXT"
expect_error 2 classify "${model[@]}" "$png" -- "no labels"
expect_error 2 random-model --arch ViT-H/99 --out "$TMP/x" -- "ViT-H/99"
expect_error 2 bench "${model[@]}" --batch 0 -- "--batch"
expect_status 0 --help
grep -q random-model "$TMP/out" || fail "--help does not list the commands"
for command in tokenize embed classify random-model bench; do
  expect_status 0 "$command" --help
  grep -q "gst-clip $command" "$TMP/out" || fail "$command --help names no command"
done
echo "ok: usage errors and --help"

# Missing --model with no default model installed.
GST_CLIP_DEFAULT_MODEL="$TMP/no-default" \
  expect_error 2 embed --text a -- "--model" "$TMP/no-default" \
  GST_CLIP_DEFAULT_MODEL

# A missing model folder, and one whose weights are truncated.
expect_error 1 embed --model "$TMP/missing-model" --text a -- "$TMP/missing-model"
# A file given for the folder is named as a file.
expect_error 1 embed --model "$REF/models/tiny-openai/config.json" --text a \
  -- "config.json is a file, not a model folder"
mkdir "$TMP/truncated"
cp "$REF/models/tiny-openai/config.json" "$TMP/truncated/"
head -c 5000 "$REF/models/tiny-openai/model.safetensors" \
  >"$TMP/truncated/model.safetensors"
expect_error 1 embed --model "$TMP/truncated" --vocab "$REF/vocab" --text a \
  -- "model.safetensors"

# Bad image files, for embed and classify; classify still reports the good
# images of the batch.
printf 'not a picture' >"$TMP/bad.png"
expect_error 1 embed "${model[@]}" --image "$TMP/bad.png" -- "bad.png"
expect_error 1 embed "${model[@]}" --image "$TMP/absent.png" -- "absent.png"
expect_error 1 classify "${model[@]}" --labels a,b "$png" "$TMP/bad.png" "$png" \
  -- "bad.png"
[ "$(wc -l <"$TMP/out")" = 2 ] || fail "classify did not report the 2 good images"

# A --pre tensor of the wrong size names the file, its size and the expected one.
head -c 1000 "$REF/images/noise_224x224.pre.f32" >"$TMP/short.f32"
expect_error 1 embed "${model[@]}" --pre "$TMP/short.f32" -- \
  "short.f32" "1000 bytes" "602112"
expect_error 1 embed "${model[@]}" --pre "$TMP/absent.f32" -- "absent.f32"

# Empty label lists.
expect_error 2 classify "${model[@]}" --labels " , ," "$png" -- "empty"
printf '# only a comment\n\n' >"$TMP/empty-labels.txt"
expect_error 1 classify "${model[@]}" --labels-file "$TMP/empty-labels.txt" \
  "$png" -- "empty-labels.txt"
expect_error 1 classify "${model[@]}" --labels-file "$TMP/absent.txt" "$png" \
  -- "absent.txt"

# Invalid UTF-8 text.
bad=$'caf\xe9'
expect_error 1 tokenize "${vocab[@]}" good "$bad" -- "TEXT 2" "UTF-8"
expect_error 1 embed "${model[@]}" --text good --pre "$REF/images/noise_224x224.pre.f32" \
  --text "$bad" -- "--text number 2" "UTF-8"
expect_error 1 classify "${model[@]}" --labels "$bad" "$png" -- "--labels" "UTF-8"
expect_error 1 classify "${model[@]}" --labels a --template "$bad {}" "$png" \
  -- "--template" "UTF-8"
