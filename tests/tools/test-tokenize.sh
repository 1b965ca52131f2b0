#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip tokenize prints the reference token ids for every line of
# tokenizer_cases.jsonl, with the vocabulary from --vocab or from the model.
source "$(dirname "$0")/lib.sh"
need_reference

# The texts NUL-separated (they hold newlines) and the expected lines.
python3 - "$REF/tokenizer_cases.jsonl" "$TMP/texts" "$TMP/expected" <<'PY'
import json, sys
cases = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
with open(sys.argv[2], "wb") as texts, open(sys.argv[3], "w") as expected:
    for case in cases:
        texts.write(case["text"].encode("utf-8") + b"\0")
        expected.write(" ".join(map(str, case["ids"])) + "\n")
PY
mapfile -d '' texts <"$TMP/texts"
[ "${#texts[@]}" -gt 60 ] || fail "read only ${#texts[@]} texts"

# "--" so that texts starting with '-' are not taken for options.
"$GST_CLIP" tokenize --model "$REF/models/tiny-openai" --vocab "$REF/vocab" \
  -- "${texts[@]}" >"$TMP/got"
if ! diff "$TMP/expected" "$TMP/got" >"$TMP/diff"; then
  head -n 20 "$TMP/diff" >&2
  fail "token ids differ from tokenizer_cases.jsonl (lines < expected, > got)"
fi
echo "ok: ${#texts[@]} texts tokenized as the reference"

# The HF folder carries its own vocab.json + merges.txt.
"$GST_CLIP" tokenize --model "$REF/models/tiny-hf" -- "${texts[@]:0:5}" >"$TMP/got-hf"
head -n 5 "$TMP/expected" | diff - "$TMP/got-hf" >&2 ||
  fail "tiny-hf with its own vocabulary tokenizes differently"
echo "ok: the vocabulary inside tiny-hf gives the same ids"
