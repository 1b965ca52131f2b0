#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Labels defined by example images on the command line: gst-clip classify
# and annotate with a labels file whose labels name a folder (@folder/) and
# files (@file.png), with the default model; the cache beside the labels
# file read on the second run; clear errors for bad examples and options.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/video-lib.sh"
need_elements clipclassify videotestsrc pngenc jpegenc avimux concat

model=(--model "$CLIP_SOURCE_DIR/models/default" --backend cpu --threads 1)

# Example images: two videotestsrc patterns at three sizes each. The labels
# name no pattern: only the examples say what "first" and "second" are.
mkdir -p "$TMP/site/bars" "$TMP/site/checks" "$TMP/frames"
for size in 64x64 96x72 160x120; do
  make_pattern_png "$TMP/site/bars/$size.png" "$size" smpte
  make_pattern_png "$TMP/site/checks/$size.png" "$size" checkers-8
done
echo "not an image" >"$TMP/site/bars/README.txt" # not taken from the folder
make_pattern_png "$TMP/frames/bars.png" 120x90 smpte
make_pattern_png "$TMP/frames/checks.png" 120x90 checkers-8
cat >"$TMP/site/labels.txt" <<'EOF'
# labels by example: a folder, and files relative to this file
first: @bars/
second: @checks/64x64.png | @checks/96x72.png | @checks/160x120.png
EOF

# classify: run from another folder, so that the paths must resolve
# against the labels file's folder.
cd "$TMP/frames"
expect_status 0 classify "${model[@]}" --labels-file "$TMP/site/labels.txt" \
  bars.png checks.png
python3 - "$TMP/out" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
tops = [l["top"] for l in lines]
assert tops == ["first", "second"], tops
print("ok: classify by examples:", tops)
PY
grep -qF "6 example images: 0 from the cache, 6 embedded" "$TMP/err" ||
  fail "first run: $(cat "$TMP/err")"
[ -f "$TMP/site/labels.txt.exemplars" ] || fail "no cache beside the labels file"
cp "$TMP/out" "$TMP/first-run.jsonl"

# The second run reads the cache: nothing embedded, the same scores.
expect_status 0 classify "${model[@]}" --labels-file "$TMP/site/labels.txt" \
  bars.png checks.png
grep -qF "6 example images: 6 from the cache, 0 embedded" "$TMP/err" ||
  fail "second run: $(cat "$TMP/err")"
cmp "$TMP/out" "$TMP/first-run.jsonl" || fail "the cached run scores differently"
echo "ok: the second run read the cache"

# Text labels beside the examples, with the rule's options.
printf 'red circle\nblue square\n' >>"$TMP/site/labels.txt"
expect_status 0 classify "${model[@]}" --labels-file "$TMP/site/labels.txt" \
  --exemplar-weight 2 --exemplar-sharpness 4 bars.png
python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
assert sorted(r["labels"]) == ["blue square", "first", "red circle", "second"], r
assert r["top"] == "first", r' "$TMP/out"
echo "ok: text and example labels together"
expect_error 2 classify "${model[@]}" --labels-file "$TMP/site/labels.txt" \
  --exemplar-sharpness -1 bars.png -- "--exemplar-sharpness" "0..1000"

# annotate: a video cut from the two patterns, the segments follow it.
make_cut_video "$TMP/cuts.avi" 160x120 smpte checkers-8
head -n 3 "$TMP/site/labels.txt" >"$TMP/site/only-examples.txt"
expect_status 0 annotate "$TMP/cuts.avi" "${model[@]}" \
  --labels-file "$TMP/site/only-examples.txt" --out "$TMP/cuts.jsonl" --quiet
python3 - "$TMP/cuts.jsonl" <<'PY'
import json, sys
segments = [json.loads(l) for l in open(sys.argv[1])]
labels = [s["label"] for s in segments]
assert labels == ["first", "second"], segments
assert abs(segments[1]["start"] - 2.0) < 0.11, segments
print("ok: annotate by examples:", labels)
PY
[ -f "$TMP/site/only-examples.txt.exemplars" ] ||
  fail "annotate wrote no cache beside the labels file"
expect_error 2 annotate "$TMP/cuts.avi" "${model[@]}" \
  --labels-file "$TMP/site/only-examples.txt" --exemplar-weight 1e9 -- \
  "--exemplar-weight"

# Bad examples: the message names the file's line and the item.
echo "third: @missing.png" >>"$TMP/site/labels.txt"
expect_error 1 classify "${model[@]}" --labels-file "$TMP/site/labels.txt" \
  bars.png -- "labels.txt:6" "third" "missing.png"
expect_error 1 annotate "$TMP/cuts.avi" "${model[@]}" --quiet \
  --labels-file "$TMP/site/labels.txt" -- "labels.txt:6" "missing.png"
mkdir "$TMP/site/empty"
printf 'first: @bars/\nnothing: @empty/\n' >"$TMP/site/empty.txt"
expect_error 1 classify "${model[@]}" --labels-file "$TMP/site/empty.txt" \
  bars.png -- "empty.txt:2" "has no images"
printf 'first: @bars/README.txt\n' >"$TMP/site/text.txt"
expect_error 1 classify "${model[@]}" --labels-file "$TMP/site/text.txt" \
  bars.png -- "text.txt:1" "README.txt" "cannot decode"
