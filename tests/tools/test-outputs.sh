#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Nothing lost, nothing malformed (issue 18): a command whose standard
# output cannot be written exits 1 and says why; sizes given on the command
# line are bounded with a message; a model giving NaN is an error naming
# the model and the input; classify's JSON Lines stay valid for labels and
# file names holding every control character, DEL and invalid UTF-8.
source "$(dirname "$0")/lib.sh"
need_reference

model=(--model "$REF/models/tiny-openai" --vocab "$REF/vocab" --backend cpu)
png="$REF/images/tiny_43x32.png"

# Runs gst-clip with stdout on /dev/full; it must exit 1 and say so (with
# the system's reason where the failing write was gst-clip's own, not
# GOption's --help, which flushes by itself).
# Usage: expect_full_stdout gst-clip-args...
expect_full_stdout () {
  local got=0
  "$GST_CLIP" "$@" >/dev/full 2>"$TMP/err" || got=$?
  [ "$got" = 1 ] || fail "gst-clip $* >/dev/full exited with $got, expected 1: $(cat "$TMP/err")"
  grep -q "^gst-clip: cannot write to standard output: " "$TMP/err" ||
    fail "gst-clip $* >/dev/full: no reason given: $(cat "$TMP/err")"
  echo "ok: gst-clip $* >/dev/full -> 1: $(tail -n 1 "$TMP/err")"
}

[ -w /dev/full ] || fail "/dev/full is missing"
expect_full_stdout tokenize "${model[@]:0:4}" "a photo of a dog"
expect_full_stdout embed "${model[@]}" --text "a dog" --image "$png"
expect_full_stdout classify "${model[@]}" --labels "a dog,a cat" "$png"
expect_full_stdout bench "${model[@]}" --iterations 1
expect_full_stdout random-model --arch tiny --out "$TMP/random"
expect_full_stdout eval "${model[@]}" --synthetic --per-pattern 1 --unseen 1
printf '[model]\nimage_size=32\npatch_size=16\nembed_dim=8\ncontext_length=8
vision_width=16\nvision_layers=1\nvision_heads=1\ntext_width=16
text_layers=1\ntext_heads=1\n[train]\nbatch=2\nsteps=1\n' >"$TMP/tiny-train.ini"
expect_full_stdout train --synthetic --config "$TMP/tiny-train.ini" \
  --out "$TMP/tiny-trained" --vocab "$REF/vocab"
expect_full_stdout --help
expect_full_stdout --version
expect_full_stdout embed --help
expect_full_stdout classify "${model[@]}" --labels "a dog,a cat" "$png"
grep -q "No space left on device" "$TMP/err" || fail "no reason: $(cat "$TMP/err")"
# More output than stdio's buffer: the write fails before the end.
texts=()
for i in $(seq 300); do texts+=(--text "text number $i"); done
expect_full_stdout embed "${model[@]}" "${texts[@]}"

# Bounds on the sizes a user gives: a message, not an abort.
expect_error 2 bench "${model[@]}" --batch 100000 -- "--batch" "100000" "1..1024"
expect_error 2 bench "${model[@]}" --iterations 2000000000 -- "--iterations" "1..1000000"
expect_error 2 bench "${model[@]}" --threads 100000 -- "--threads" "0..1024"
expect_error 2 classify "${model[@]}" --threads -1 --labels a "$png" -- "--threads" "-1"
expect_error 2 embed "${model[@]}" --threads 5000 --text a -- "--threads" "5000"
expect_error 2 eval "${model[@]}" --synthetic --per-pattern 5000 -- "--per-pattern" "1..1000"
expect_error 2 eval "${model[@]}" --synthetic --unseen 0 -- "--unseen" "1..10000"
python3 -c 'print("\n".join(f"l{i}" for i in range(100001)))' >"$TMP/many-labels.txt"
expect_error 1 classify "${model[@]}" --labels-file "$TMP/many-labels.txt" "$png" -- \
  "100001 labels" "at most 100000"
mkdir -p "$TMP/train"
printf '[train]\nbatch=1000000\n' >"$TMP/train/train.ini"
expect_error 1 train --synthetic --config "$TMP/train/train.ini" --out "$TMP/train/out" \
  --vocab "$REF/vocab" -- "batch" "1000000" "32768"
expect_error 2 train --synthetic --config "$TMP/train/train.ini" --out "$TMP/train/out" \
  --threads 9999 -- "--threads" "9999"

# A NaN in a weight (visual.proj, or the text projection): an error naming
# the model and the input, never "nan" on stdout.
nan_model () {
  local out=$1 tensor=$2
  mkdir -p "$out"
  cp "$REF/models/tiny-openai/config.json" "$out/"
  python3 - "$REF/models/tiny-openai/model.safetensors" "$out/model.safetensors" "$tensor" <<'PY'
import json, struct, sys
src, dst, name = sys.argv[1:]
data = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
offset = 8 + n + header[name]["data_offsets"][0]
data[offset:offset + 4] = struct.pack("<f", float("nan"))
open(dst, "wb").write(data)
PY
}
nan_model "$TMP/nan-visual" visual.proj
nan_model "$TMP/nan-text" text_projection
nan=(--vocab "$REF/vocab" --backend cpu)
expect_error 1 classify --model "$TMP/nan-visual" "${nan[@]}" --labels "a,b" "$png" -- \
  "$TMP/nan-visual" "$png" "not finite"
[ ! -s "$TMP/out" ] || fail "classify printed a result for a NaN: $(cat "$TMP/out")"
expect_error 1 embed --model "$TMP/nan-visual" "${nan[@]}" --image "$png" -- \
  "$TMP/nan-visual" "$png" "not finite"
[ ! -s "$TMP/out" ] || fail "embed printed a NaN embedding: $(cat "$TMP/out")"
expect_error 1 embed --model "$TMP/nan-text" "${nan[@]}" --text "a dog" -- \
  "$TMP/nan-text" "--text number 1" "not finite"
expect_error 1 classify --model "$TMP/nan-text" "${nan[@]}" --labels "a,b" "$png" -- \
  "$TMP/nan-text" "not finite"
expect_error 1 bench --model "$TMP/nan-visual" "${nan[@]}" --iterations 1 -- \
  "$TMP/nan-visual" "not finite"
grep -q "images/s" "$TMP/out" && fail "bench timed a NaN model: $(cat "$TMP/out")"

# JSON Lines under hostile text: labels with every control character
# (U+0001..U+001F; a NUL cannot be in an argument), DEL, quotes and
# backslashes, and file names with the same, plus invalid UTF-8 (a lone
# surrogate's bytes, a stray 0xff), which are written as U+FFFD.
mkdir -p "$TMP/names"
python3 - "$TMP/names" "$png" >"$TMP/labels.txt" <<'PY'
import os, shutil, sys
folder, png = sys.argv[1], sys.argv[2]
chars = [chr(c) for c in range(1, 0x20)] + ["\x7f", '"', "\\"]
for c in chars:
    if c not in "\n\r":   # a labels file's line ends
        print(f"label{c}x")
for c in chars:
    shutil.copy(png, os.path.join(folder, f"image{c}.png"))
for raw in (b"surrogate\xed\xa0\x80.png", b"stray\xff.png"):
    shutil.copy(png, os.path.join(os.fsencode(folder), raw))
PY
labels_arg=$(printf 'nl\nlabel,cr\rlabel,tab\tlabel')
"$GST_CLIP" classify "${model[@]}" --labels "$labels_arg" \
  --labels-file "$TMP/labels.txt" "$TMP/names"/* >"$TMP/classify.jsonl" ||
  fail "classify with hostile labels and names failed"
python3 - "$TMP/classify.jsonl" "$TMP/labels.txt" <<'PY'
import json, sys
def no_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "last line unterminated"
want_labels = set(open(sys.argv[2], encoding="utf-8", newline="\n").read().split("\n")[:-1])
want_labels |= {"nl\nlabel", "cr\rlabel", "tab\tlabel"}
names = []
for n, raw in enumerate(lines[:-1], 1):
    text = raw.decode("utf-8")            # strict: valid UTF-8 only
    assert "\n" not in text and all(ord(c) >= 0x20 and c != "\x7f" for c in text), \
        f"line {n}: a raw control character"
    o = json.loads(text, strict=True, parse_constant=no_constant)
    assert set(o["labels"]) == want_labels, (n, set(o["labels"]) ^ want_labels)
    assert all(isinstance(s, float) and 0 <= s <= 1 for s in o["scores"]), o["scores"]
    names.append(o["image"].rsplit("/", 1)[1])
assert len(names) == 36, len(names)
for c in [chr(c) for c in range(1, 0x20)] + ["\x7f", '"', "\\"]:
    assert f"image{c}.png" in names, repr(c)
assert "surrogate\ufffd\ufffd\ufffd.png" in names, names
assert "stray\ufffd.png" in names, names
print(f"ok: {len(names)} strict JSON lines, every label and file name intact")
PY
