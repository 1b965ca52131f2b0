#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip classify prints one valid JSON object per image, labels sorted by
# probability, with the scores and top label that the official logits give.
source "$(dirname "$0")/lib.sh"
need_reference

model=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab" --backend cpu)
mapfile -t images < <(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1]))["images"]:
    print(i["png"])' "$REF/manifest.json")
images=("${images[@]/#/$REF/}")

# Checks the JSON lines against softmax(logits_per_image[:, columns]) with
# the given names for the columns; negative columns are in the softmax but
# must not be reported.
# Usage: check OUTPUT "name=column,..." "negative-column,..."
check () {
  python3 - "$REF/expected/tiny-openai/logits_per_image.f32" "$@" \
    "${images[@]}" <<'PY'
import array, json, math, sys
logits_path, output, names, negatives, *images = sys.argv[1:]
logits = array.array("f")
logits.frombytes(open(logits_path, "rb").read())
if sys.byteorder != "little":
    logits.byteswap()
columns = {n: int(c) for n, c in (item.split("=") for item in names.split(","))}
negative = [int(c) for c in negatives.split(",") if c]
lines = open(output, encoding="utf-8").read().splitlines()
assert len(lines) == len(images), f"{len(lines)} lines for {len(images)} images"
negative_won = 0
for i, (line, image) in enumerate(zip(lines, images)):
    result = json.loads(line)
    assert set(result) == {"image", "labels", "scores", "top"}, result.keys()
    assert result["image"] == image, (result["image"], image)
    row = logits[i * 12:(i + 1) * 12]
    used = list(columns.values()) + negative
    top = max(used, key=lambda c: row[c])
    total = sum(math.exp(row[c] - row[top]) for c in used)
    want = {n: math.exp(row[c] - row[top]) / total for n, c in columns.items()}
    assert sorted(result["labels"]) == sorted(columns), result["labels"]
    assert result["scores"] == sorted(result["scores"], reverse=True), result
    # A negative label that wins means none of the labels: top is null, as
    # clipclassify's top-label is.
    best = max(columns, key=lambda n: row[columns[n]])
    if max(used, key=lambda c: row[c]) in negative:
        best = None
        negative_won += 1
    else:
        assert result["top"] == result["labels"][0], result
    assert result["top"] == best, f"{image}: top {result['top']}, expected {best}"
    for name, score in zip(result["labels"], result["scores"]):
        assert abs(score - want[name]) < 5e-4, f"{image} {name}: {score} vs {want[name]}"
print(f"ok: {len(lines)} JSON lines match the reference logits ({names}),"
      f" a negative label won {negative_won} times")
if negatives:
    assert negative_won > 0, "the images test no winning negative"

PY
}

# Every reference prompt as its own label through a labels file: the scores
# are the softmax of the reference logits.
python3 - "$REF/manifest.json" >"$TMP/labels.txt" <<'PY'
import json, sys
print("# label: its one prompt")
for i, p in enumerate(json.load(open(sys.argv[1]))["prompts"]):
    print(f"p{i}: {p['text']}")
PY
"$GST_CLIP" classify "${model[@]}" --labels-file "$TMP/labels.txt" \
  "${images[@]}" >"$TMP/all"
check "$TMP/all" "$(seq -s, 0 11 | sed -E 's/([0-9]+)/p\1=\1/g')" ""

# Labels through the template give the same prompts as columns 0 and 1.
"$GST_CLIP" classify "${model[@]}" --labels "dog, cat" \
  --template "a photo of a {}." "${images[@]}" >"$TMP/template"
check "$TMP/template" "dog=0,cat=1" ""

# The default template is "a photo of a {}.".
"$GST_CLIP" classify "${model[@]}" --labels "dog,cat" "${images[@]}" \
  >"$TMP/default"
check "$TMP/default" "dog=0,cat=1" ""

# A negative label takes part in the softmax and is not reported; when it
# wins, "top" is null.
"$GST_CLIP" classify "${model[@]}" --labels dog --negative-labels cat \
  "${images[@]}" >"$TMP/negative"
check "$TMP/negative" "dog=0" "1"

# A label that is also a negative label would share its probability with
# itself: exit 1, naming it.
expect_error 1 classify "${model[@]}" --labels "dog,cat" --negative-labels cat \
  "${images[0]}" -- "'cat'" "negative label"
[ ! -s "$TMP/out" ] || fail "a refused label set printed results: $(cat "$TMP/out")"

# A prompt longer than the context (77 tokens here) is cut: a warning per
# such label, naming it, once; the results still come.
long="a photo of$(printf ' very%.0s' $(seq 80)) big dog"
expect_status 0 classify "${model[@]}" --labels "dog,$long,cat" "${images[@]}"
[ "$(wc -l <"$TMP/out")" = "${#images[@]}" ] || fail "results: $(cat "$TMP/out")"
[ "$(grep -c "warning: label '$long'" "$TMP/err")" = 1 ] ||
  fail "no single warning for the long label: $(cat "$TMP/err")"
grep -q "context" "$TMP/err" || fail "the warning does not say why: $(cat "$TMP/err")"
[ "$(grep -c warning "$TMP/err")" = 1 ] || fail "other warnings: $(cat "$TMP/err")"
echo "ok: a cut prompt is warned about once: $(head -n 1 "$TMP/err")"
