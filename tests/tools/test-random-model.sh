#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gst-clip random-model: tiny models in both layouts and F16 load and embed;
# a seed gives the same weights in every layout, drawn with the official
# initialisation's scales; another seed gives other weights.
source "$(dirname "$0")/lib.sh"
need_reference

make_model () {
  local out=$1
  shift
  "$GST_CLIP" random-model --arch tiny --vocab "$REF/vocab" --out "$out" "$@"
}
make_model "$TMP/hf" --seed 7
make_model "$TMP/openclip" --seed 7 --layout openclip
make_model "$TMP/f16" --seed 7 --dtype f16
make_model "$TMP/seed8" --seed 8
make_model "$TMP/hf-again" --seed 7

for f in config.json model.safetensors vocab.json merges.txt; do
  [ -f "$TMP/hf/$f" ] || fail "hf layout: $f missing"
done
for f in open_clip_config.json model.safetensors vocab.json merges.txt; do
  [ -f "$TMP/openclip/$f" ] || fail "openclip layout: $f missing"
done
cmp -s "$TMP/hf/model.safetensors" "$TMP/hf-again/model.safetensors" ||
  fail "the same seed wrote different weights"
echo "ok: both layouts written; a seed is reproducible"

inputs=(--text "a photo of a dog." --pre "$REF/images/gradient_320x240.pre.f32"
  --image "$REF/images/shapes_640x480.png")
for m in hf openclip f16 seed8; do
  "$GST_CLIP" embed --model "$TMP/$m" --backend cpu "${inputs[@]}" >"$TMP/$m.out"
  python3 - "$TMP/$m.out" <<'PY' || fail "$m: bad embeddings"
import math, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1])]
assert len(rows) == 3 and all(len(r) == 32 for r in rows), "3 rows of 32 expected"
for r in rows:
    assert all(math.isfinite(x) for x in r), "non-finite value"
    assert abs(math.sqrt(sum(x * x for x in r)) - 1) < 1e-5, "not normalised"
PY
done
compare_outputs "$TMP/hf.out" "$TMP/openclip.out" 1e-5
compare_outputs "$TMP/hf.out" "$TMP/f16.out" 5e-3
if compare_outputs "$TMP/hf.out" "$TMP/seed8.out" 5e-3 2>/dev/null; then
  fail "seeds 7 and 8 gave the same embeddings"
fi
echo "ok: hf, openclip and f16 embed alike; another seed differs"

# The weights' spread follows OpenAI's initialize_parameters, and PyTorch's
# defaults where it leaves the vision blocks alone (tiny: text and vision
# width 64, 2 layers, embed 32).
python3 - "$TMP/hf/model.safetensors" <<'PY'
import array, json, math, struct, sys
data = open(sys.argv[1], "rb").read()
(header_len,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + header_len])
base = 8 + header_len

def tensor(name):
    info = header[name]
    assert info["dtype"] == "F32", (name, info["dtype"])
    begin, end = info["data_offsets"]
    values = array.array("f")
    values.frombytes(data[base + begin:base + end])
    if sys.byteorder != "little":
        values.byteswap()
    return values

def std(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))

width, layers = 64, 2
checks = {
    "text_model.embeddings.token_embedding.weight": 0.02,
    "text_model.embeddings.position_embedding.weight": 0.01,
    "text_model.encoder.layers.0.self_attn.q_proj.weight": width ** -0.5,
    "text_model.encoder.layers.1.self_attn.out_proj.weight":
        width ** -0.5 * (2 * layers) ** -0.5,
    "text_model.encoder.layers.0.mlp.fc1.weight": (2 * width) ** -0.5,
    "text_model.encoder.layers.0.mlp.fc2.weight": width ** -0.5 * (2 * layers) ** -0.5,
    "text_projection.weight": width ** -0.5,
    "vision_model.embeddings.position_embedding.weight": width ** -0.5,
    # nn.MultiheadAttention's Xavier-uniform over [3W, W]: std
    # sqrt(6 / 4W) / sqrt(3)
    "vision_model.encoder.layers.0.self_attn.k_proj.weight": (2 * width) ** -0.5,
}
for name, want in checks.items():
    got = std(tensor(name))
    assert abs(got / want - 1) < 0.1, f"{name}: std {got:.4g}, expected {want:.4g}"
for name in ["text_model.final_layer_norm.weight",
             "vision_model.encoder.layers.1.layer_norm2.weight"]:
    assert set(tensor(name)) == {1.0}, f"{name} is not all ones"
for name in ["text_model.final_layer_norm.bias",
             "vision_model.encoder.layers.0.self_attn.q_proj.bias"]:
    assert set(tensor(name)) == {0.0}, f"{name} is not all zeros"
scale = tensor("logit_scale")[0]
assert abs(scale - math.log(1 / 0.07)) < 1e-6, f"logit_scale {scale}"
print(f"ok: {len(checks)} weight spreads, LayerNorms and logit_scale as OpenAI initialises")
PY
