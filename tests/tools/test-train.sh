#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip train and eval on a tiny model: the loss of a short synthetic run
# falls and its zero-shot accuracy on held-out pattern frames beats chance
# widely; a run stopped after some steps and started again resumes from its
# checkpoint and writes the very model the uninterrupted run wrote; bad
# command lines and configs fail with a message that names the problem.
source "$(dirname "$0")/lib.sh"
need_reference

cat >"$TMP/tiny.ini" <<'INI'
[model]
image_size=32
patch_size=8
embed_dim=32
context_length=20
vision_width=64
vision_layers=1
vision_heads=2
text_width=32
text_layers=1
text_heads=1
[train]
batch=32
steps=120
warmup_steps=10
lr=2e-3
seed=3
log_every=10
checkpoint_every=50
INI
train () {
  "$GST_CLIP" train --config "$TMP/tiny.ini" --synthetic --vocab "$REF/vocab" \
    --threads 2 "$@"
}

train --out "$TMP/a" >"$TMP/a.log"
grep -q '^step 120/120 .*images/s  ETA ' "$TMP/a.log" ||
  fail "no final progress line: $(tail -n 3 "$TMP/a.log")"
for f in config.json model.safetensors vocab.json merges.txt checkpoint.safetensors; do
  [ -f "$TMP/a/$f" ] || fail "$f missing from the trained model"
done
python3 - "$TMP/a.log" <<'PY' || fail "the loss did not fall"
import re, sys
losses = [float(m.group(1)) for m in re.finditer(r"loss ([0-9.]+)", open(sys.argv[1]).read())]
first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
print(f"ok: loss {first:.3f} -> {last:.3f}")
assert last < 0.75 * first
PY

"$GST_CLIP" eval --model "$TMP/a" --synthetic --per-pattern 4 --unseen 30 \
  --backend cpu >"$TMP/eval"
cat "$TMP/eval"
python3 - "$TMP/eval" <<'PY' || fail "zero-shot accuracy too close to chance"
import sys
rows = {l[:24].strip(): l[24:].split() for l in open(sys.argv[1]) if "%" in l}
frames, labels, top1, chance = rows["videotestsrc patterns"]
top1, chance = float(top1.rstrip("%")), float(chance.rstrip("%"))
assert int(frames) == 60 and int(labels) == 15, rows
assert abs(chance - 100 / 15) < 0.1, chance
assert top1 >= 6 * chance, f"{top1}% is not 6x chance ({chance}%)"
assert "unseen colour x shape" in rows
PY
echo "ok: zero-shot accuracy far above chance"

# Stop after 60 steps (a checkpoint), start again: same model, bit for bit.
train --out "$TMP/b" --stop-after 60 >"$TMP/b1.log"
grep -q '^stopped at step 60' "$TMP/b1.log" || fail "no stop at step 60"
[ ! -f "$TMP/b/model.safetensors" ] || fail "a stopped run wrote the model"
train --out "$TMP/b" >"$TMP/b2.log"
grep -q 'resuming from .* at step 60' "$TMP/b2.log" || fail "did not resume"
cmp -s "$TMP/a/model.safetensors" "$TMP/b/model.safetensors" ||
  fail "the resumed run's model differs from the uninterrupted run's"
echo "ok: a stopped run resumes to the same model"

# Fine-tuning from the trained model, on a folder of captioned images.
mkdir "$TMP/data"
cp "$REF/images/gradient_320x240.png" "$REF/images/shapes_640x480.png" \
  "$REF/images/stripes_100x300.png" "$TMP/data/"
printf 'gradient_320x240.png\ta gradient\nshapes_640x480.png\tsome shapes\nstripes_100x300.png\tstripes\n' \
  >"$TMP/data/captions.txt"
sed -e 's/^steps=.*/steps=3/' -e 's/^batch=.*/batch=3/' "$TMP/tiny.ini" >"$TMP/ft.ini"
"$GST_CLIP" train --config "$TMP/ft.ini" --data "$TMP/data" --model "$TMP/a" \
  --out "$TMP/ft" --threads 2 >"$TMP/ft.log"
[ -f "$TMP/ft/model.safetensors" ] || fail "fine-tuning wrote no model"
echo "ok: fine-tuning on a captioned folder"

expect_error 2 train --synthetic --out "$TMP/x" -- "--config and --out are required"
expect_error 2 train --config "$TMP/tiny.ini" --out "$TMP/x" -- "either --synthetic or --data"
expect_error 2 train --config "$TMP/tiny.ini" --synthetic --out "$TMP/x" -- "--vocab"
printf '[train]\nbatch=1\n' >"$TMP/bad.ini"
expect_error 1 train --config "$TMP/bad.ini" --synthetic --vocab "$REF/vocab" \
  --out "$TMP/x" -- "bad.ini" "[train] batch"
for bad in 0 150; do
  printf '[train]\nlogit_scale_init=%s\n' "$bad" >"$TMP/bad.ini"
  expect_error 1 train --config "$TMP/bad.ini" --synthetic --vocab "$REF/vocab" \
    --out "$TMP/x" -- "bad.ini" "logit_scale_init"
done
# The initial logit scale comes from the recipe (CLIP's 1/0.07 otherwise).
sed -e 's/^steps=.*/steps=1/' -e 's/^log_every=.*/log_every=1/' "$TMP/tiny.ini" \
  >"$TMP/one.ini"
"$GST_CLIP" train --config "$TMP/one.ini" --synthetic --vocab "$REF/vocab" \
  --threads 2 --out "$TMP/s14" >"$TMP/s14.log"
grep -q ' scale 14\.[23] ' "$TMP/s14.log" ||
  fail "a new model does not start at CLIP's logit scale 1/0.07"
printf 'logit_scale_init=50\n' >>"$TMP/one.ini"
"$GST_CLIP" train --config "$TMP/one.ini" --synthetic --vocab "$REF/vocab" \
  --threads 2 --out "$TMP/s50" >"$TMP/s50.log"
grep -q ' scale 50\.0 \| scale 49\.9 ' "$TMP/s50.log" ||
  fail "logit_scale_init=50 is not the initial logit scale"
echo "ok: logit_scale_init sets the initial logit scale, and is checked"
printf 'nofile.png\ta caption\n' >"$TMP/data/captions.txt"
expect_error 1 train --config "$TMP/ft.ini" --data "$TMP/data" --model "$TMP/a" \
  --out "$TMP/x" -- "nofile.png"
# A checkpoint of another run is refused, not silently mixed in.
sed -e 's/^seed=.*/seed=4/' "$TMP/tiny.ini" >"$TMP/seed4.ini"
expect_error 1 train --config "$TMP/seed4.ini" --synthetic --vocab "$REF/vocab" \
  --out "$TMP/a" -- "checkpoint.safetensors" "seed"
expect_error 2 eval --model "$TMP/a" -- "--synthetic is required"
