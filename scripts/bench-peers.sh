#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Peer benchmark (not a test, not run in CI): the ViT-B/32 image encoder in
# gst-clip (F32, BF16 and INT8 precision, and the same weights as an F16
# file), ONNX Runtime (fp32, and int8: the graph's MatMuls quantised
# dynamically by scripts/bench/quantize_onnx.py) and PyTorch on the same
# random weights, 2 threads, batch 1 and 8, side by side; and how far their
# embeddings are apart.
#
# Usage: scripts/bench-peers.sh [BUILD_DIR]   (default: build)
# Environment: WORK (scratch folder, default /tmp/gst-clip-bench-peers),
# ITERATIONS (timed batches per size, default 10), THREADS (default 2),
# CLIP_REFERENCE_DIR (for the vocabulary, default ../shared/reference),
# PYTHON (default /usr/bin/python3: Debian's, which has the Debian torch).
#
# Needs, beside a built gst-clip: python3-torch, python3-numpy and
# python3-onnx (Debian),
# node + npm; onnxruntime-node is installed into WORK by
# `npm install --ignore-scripts onnxruntime-node` (it ships the CPU library).
set -euo pipefail

cd "$(dirname "$0")/.."
build=${1:-build}
gst_clip=$(realpath "$build/tools/gst-clip")
work=${WORK:-/tmp/gst-clip-bench-peers}
iterations=${ITERATIONS:-10}
threads=${THREADS:-2}
reference=${CLIP_REFERENCE_DIR:-../shared/reference}
bench=$PWD/scripts/bench
python=${PYTHON:-/usr/bin/python3}

[ -x "$gst_clip" ] || { echo "bench-peers: no $gst_clip; build first" >&2; exit 1; }
"$python" -c 'import torch, numpy, onnx' 2>/dev/null ||
  { echo "bench-peers: needs python3-torch, python3-numpy and python3-onnx (apt-get install)" >&2; exit 1; }
command -v npm >/dev/null ||
  { echo "bench-peers: needs node and npm (apt-get install npm)" >&2; exit 1; }
mkdir -p "$work"

if [ ! -d "$work/node_modules/onnxruntime-node" ]; then
  echo "== installing onnxruntime-node into $work"
  (cd "$work" && npm install --ignore-scripts --no-audit --no-fund onnxruntime-node >/dev/null)
fi
ort_version=$(node -p "require('$work/node_modules/onnxruntime-node/package.json').version")
torch_version=$("$python" -c 'import torch; print(torch.__version__)')

model=$work/vit-b-32
# The models, the ONNX graphs made from them and the F16 twin are compared
# with each other: all of them come from this very gst-clip, or are made again.
stamp=$(sha256sum "$gst_clip" | cut -d" " -f1)
if [ "$(cat "$work/models.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$model" "$model-f16" "$work/vit-b-32.onnx" "$work/vit-b-32-int8.onnx"
fi
if [ ! -f "$model/model.safetensors" ]; then
  echo "== gst-clip random-model --arch ViT-B/32"
  "$gst_clip" random-model --arch ViT-B/32 --layout openclip --seed 1 \
    --vocab "$reference/vocab" --out "$model"
fi
# The same weights rounded to F16: the F16 file at precision f32.
if [ ! -f "$model-f16/model.safetensors" ]; then
  echo "== gst-clip random-model --arch ViT-B/32 --dtype f16"
  "$gst_clip" random-model --arch ViT-B/32 --layout openclip --seed 1 \
    --dtype f16 --vocab "$reference/vocab" --out "$model-f16"
fi
if [ ! -f "$work/vit-b-32.onnx" ]; then
  echo "== exporting the vision tower to ONNX (torch.onnx.export)"
  "$python" "$bench/clip_vision.py" export "$model" "$work/vit-b-32.onnx" 2>/dev/null
fi
if [ ! -f "$work/vit-b-32-int8.onnx" ]; then
  echo "== quantising its MatMuls to INT8 (DynamicQuantizeLinear + MatMulInteger)"
  "$python" "$bench/quantize_onnx.py" "$work/vit-b-32.onnx" "$work/vit-b-32-int8.onnx"
fi
echo "$stamp" >"$work/models.stamp"

# One preprocessed-looking input, the same for the three engines.
"$python" -c '
import numpy as np, sys
np.random.default_rng(0).uniform(-1.8, 2.1, (3, 224, 224)).astype("<f4").tofile(sys.argv[1])
' "$work/input.f32"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== $threads threads, $iterations timed batches after one warm-up batch; load average $(cut -d" " -f1-3 /proc/loadavg)"
results=$work/results.txt
: >"$results"
# name, model folder, precision: one after the other at each batch size.
variants=("gst-clip $model f32" "gst-clip-bf16 $model bf16"
  "gst-clip-int8 $model int8" "gst-clip-f16-file $model-f16 f32")
for batch in 1 8; do
  for variant in "${variants[@]}"; do
    read -r name folder precision <<<"$variant"
    "$gst_clip" bench --model "$folder" --backend cpu --threads "$threads" \
      --precision "$precision" --batch "$batch" --iterations "$iterations" \
      >"$work/$name-$batch.txt"
    cat "$work/$name-$batch.txt"
    echo "$name batch $batch: $(sed -n 's/^image ms\/image: //p' \
      "$work/$name-$batch.txt") ms/image" >>"$results"
  done
done
NODE_PATH=$work/node_modules node "$bench/ort-bench.js" "$work/vit-b-32.onnx" 224 "$threads" "$iterations" \
  "$work/input.f32" "$work/ort-embedding.f32" 1 8 | tee -a "$results"
ORT_NAME=onnxruntime-int8 NODE_PATH=$work/node_modules node "$bench/ort-bench.js" \
  "$work/vit-b-32-int8.onnx" 224 "$threads" "$iterations" \
  "$work/input.f32" "$work/ort-int8-embedding.f32" 1 8 | tee -a "$results"
"$python" "$bench/clip_vision.py" bench "$model" "$threads" "$iterations" 1 8 |
  tee -a "$results"

# The three must compute the same encoder.
"$gst_clip" embed --model "$model" --backend cpu --raw --pre "$work/input.f32" \
  >"$work/gst-clip-embedding.txt"
"$gst_clip" embed --model "$model" --backend cpu --precision bf16 --raw \
  --pre "$work/input.f32" >"$work/gst-clip-bf16-embedding.txt"
"$gst_clip" embed --model "$model" --backend cpu --precision int8 --raw \
  --pre "$work/input.f32" >"$work/gst-clip-int8-embedding.txt"
"$gst_clip" embed --model "$model-f16" --backend cpu --raw \
  --pre "$work/input.f32" >"$work/gst-clip-f16-file-embedding.txt"
"$python" "$bench/clip_vision.py" embed "$model" "$work/input.f32" "$work/torch-embedding.f32"

echo
echo "== ViT-B/32 image encoder, ms/image ($threads threads)"
"$python" - "$results" "$work" "$ort_version" "$torch_version" <<'PY'
import re, sys
import numpy as np
results, work, ort_version, torch_version = sys.argv[1:]
names = {"gst-clip": "gst-clip (cpu)", "gst-clip-bf16": "gst-clip bf16",
         "gst-clip-int8": "gst-clip int8",
         "gst-clip-f16-file": "gst-clip, F16 file",
         "onnxruntime": f"ONNX Runtime {ort_version}",
         "onnxruntime-int8": f"ONNX Runtime {ort_version} int8",
         "pytorch": f"PyTorch {torch_version}"}
table = {}
for line in open(results):
    m = re.match(r"(\S+) batch (\d+): ([\d.]+) ms/image", line)
    if m:
        table.setdefault(m[1], {})[int(m[2])] = float(m[3])
print(f"{'engine':<24}{'batch 1':>10}{'batch 8':>10}")
for key, name in names.items():
    row = table.get(key, {})
    print(f"{name:<24}" + "".join(f"{row.get(b, float('nan')):>10.1f}" for b in (1, 8)))
torch_out = np.fromfile(f"{work}/torch-embedding.f32", "<f4")
ort_out = np.fromfile(f"{work}/ort-embedding.f32", "<f4")
ours = np.loadtxt(f"{work}/gst-clip-embedding.txt", dtype=np.float32)
bf16 = np.loadtxt(f"{work}/gst-clip-bf16-embedding.txt", dtype=np.float32)
int8 = np.loadtxt(f"{work}/gst-clip-int8-embedding.txt", dtype=np.float32)
f16_file = np.loadtxt(f"{work}/gst-clip-f16-file-embedding.txt", dtype=np.float32)
ort_int8 = np.fromfile(f"{work}/ort-int8-embedding.f32", "<f4")
scale = np.abs(torch_out).max()
print(f"max |difference| of the raw embeddings, relative to max |torch|: "
      f"gst-clip {np.abs(ours - torch_out).max() / scale:.2g}, "
      f"gst-clip bf16 {np.abs(bf16 - torch_out).max() / scale:.2g}, "
      f"onnxruntime {np.abs(ort_out - torch_out).max() / scale:.2g}")
unit = lambda v: v / np.linalg.norm(v)
print(f"max |difference| of the normalised embeddings from torch's: "
      f"gst-clip bf16 {np.abs(unit(bf16) - unit(torch_out)).max():.2g}, "
      f"gst-clip int8 {np.abs(unit(int8) - unit(torch_out)).max():.2g}, "
      f"gst-clip F16 file {np.abs(unit(f16_file) - unit(torch_out)).max():.2g}, "
      f"onnxruntime int8 {np.abs(unit(ort_int8) - unit(torch_out)).max():.2g}")
PY
