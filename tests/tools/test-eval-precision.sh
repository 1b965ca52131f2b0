#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The shipped default model at every precision of the CPU backend against
# f32, on gst-clip eval's held-out frames: each set's zero-shot top-1
# within 1 point of f32's, and the same top-1 label as f32 on at least 99%
# of the frames (eval --predictions).
source "$(dirname "$0")/lib.sh"

MODEL="${CLIP_SOURCE_DIR:?}/models/default"
[ -f "$MODEL/model.safetensors" ] || fail "$MODEL/model.safetensors is missing"
for precision in f32 bf16 int8; do
  "$GST_CLIP" eval --model "$MODEL" --synthetic --per-pattern 6 --unseen 150 \
    --seed 7 --backend cpu --precision "$precision" \
    --predictions "$TMP/$precision.tsv" >"$TMP/$precision.txt"
  cat "$TMP/$precision.txt"
done
python3 - "$TMP" <<'PY'
import sys
tmp = sys.argv[1]
def top1(precision):
    rows = {l[:24].strip(): l[24:].split() for l in open(f"{tmp}/{precision}.txt") if "%" in l}
    return {name: float(row[2].rstrip("%")) for name, row in rows.items()}
def labels(precision):
    return [l.rstrip("\n").split("\t") for l in open(f"{tmp}/{precision}.tsv")]
f32, f32_labels = top1("f32"), labels("f32")
assert len(f32) == 2 and len(f32_labels) == 240, (f32, len(f32_labels))
for precision in ("bf16", "int8"):
    for name, value in top1(precision).items():
        if abs(value - f32[name]) > 1.0:
            sys.exit(f"FAIL: {precision}: {name} {value}% against f32's {f32[name]}%")
    other = labels(precision)
    assert [r[:3] for r in other] == [r[:3] for r in f32_labels], precision
    same = sum(a[3] == b[3] for a, b in zip(f32_labels, other))
    if same < 0.99 * len(other):
        sys.exit(f"FAIL: {precision}: the same top-1 as f32 on {same}/{len(other)} frames")
    print(f"ok: {precision}: top-1 within 1 point of f32, the same label on {same}/{len(other)} frames")
PY
