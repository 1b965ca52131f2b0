#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# index, search and annotate on inputs that end early or outputs that
# cannot be written (issue 18): a truncated video is stored as far as it
# goes with a warning and exit status 3; search refuses an empty text and
# unbounded sizes, and fails when its stdout cannot be written.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/video-lib.sh"
need_reference
need_elements clipclassify vp8enc webmmux concat

model=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab")
db="$TMP/index.sqlite"
make_cut_video "$TMP/full.webm" 160x120 smpte checkers-8 circular
size=$(stat -c %s "$TMP/full.webm")
head -c $((size / 2)) "$TMP/full.webm" >"$TMP/half.webm"

# A video cut in half still states its full 6 s: index stores what is
# there, says where it ended, exits 3, and goes on with the next video.
expect_status 3 index --db "$db" "${model[@]}" "$TMP/half.webm" "$TMP/full.webm"
grep -q "^gst-clip: warning: $TMP/half.webm: the video ended at .* of the 6.000 s" "$TMP/err" ||
  fail "no warning about the truncated file: $(cat "$TMP/err")"
grep -q "half.webm: 100%" "$TMP/err" && fail "the truncated file reads 100%: $(cat "$TMP/err")"
grep -qF "$TMP/full.webm: 60 frames" "$TMP/err" ||
  fail "the video after the truncated one was not indexed: $(cat "$TMP/err")"
grep -q "full.webm: the video ended" "$TMP/err" && fail "full.webm reported truncated"
echo "ok: index of a truncated video: $(grep warning "$TMP/err")"
expect_status 0 index --db "$db" "${model[@]}" "$TMP/full.webm"

# annotate too: the output covers the part read; exit 3.
expect_status 3 annotate "$TMP/half.webm" "${model[@]}" --labels a,b --out "$TMP/half.vtt"
grep -q "warning: .*half.webm: the video ended at" "$TMP/err" ||
  fail "annotate: no warning about the truncated file: $(cat "$TMP/err")"
head -n 1 "$TMP/half.vtt" | grep -qx WEBVTT || fail "half.vtt was not written"
echo "ok: annotate of a truncated video exits 3 with a complete file"

# search: an empty text is an error, sizes are bounded, stdout is checked.
expect_error 2 search --db "$db" "${model[@]}" "" -- "TEXT is empty"
expect_error 2 search --db "$db" "${model[@]}" "   " -- "TEXT is empty"
expect_error 2 search --db "$db" "${model[@]}" --top 0 "a" -- "--top" "1..100000"
expect_error 2 search --db "$db" "${model[@]}" --top 1000000 "a" -- "--top" "1000000"
expect_status 0 search --db "$db" "${model[@]}" "a test pattern"
[ -s "$TMP/out" ] || fail "search printed nothing"
got=0
"$GST_CLIP" search --db "$db" "${model[@]}" "a test pattern" >/dev/full 2>"$TMP/err" || got=$?
[ "$got" = 1 ] && grep -q "^gst-clip: cannot write to standard output: No space left on device" "$TMP/err" ||
  fail "search >/dev/full exited with $got: $(cat "$TMP/err")"
echo "ok: search >/dev/full -> 1: $(cat "$TMP/err")"
