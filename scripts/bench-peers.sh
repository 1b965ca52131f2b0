#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Peer benchmark (not a test, not run in CI): the ViT-B/32 image encoder in
# gst-clip (F32, BF16 and INT8 precision, and the same weights as an F16
# file, in one process, their batches taking turns: gst-clip bench
# --precisions --twin), ONNX Runtime (fp32, and int8: the graph's MatMuls
# quantised dynamically by scripts/bench/quantize_onnx.py) and PyTorch on the same
# random weights, 2 threads, batch 1 and 8, side by side; and how far their
# embeddings are apart.
#
# Usage: scripts/bench-peers.sh [BUILD_DIR]   (default: build)
# Environment: WORK (scratch folder, default /tmp/gst-clip-bench-peers),
# ITERATIONS (timed batches per size, default 10), ROUNDS (default 3: every
# engine but PyTorch runs once per round, the rounds one after the other,
# and the table gives each engine's median round and its range, so that a
# slow spell of a shared machine falls on all engines alike), THREADS
# (default 2),
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
rounds=${ROUNDS:-3}
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
for round in $(seq "$rounds"); do
  echo "== round $round of $rounds; load average $(cut -d" " -f1-3 /proc/loadavg)"
  for batch in 1 8; do
    # The three precisions in one process, and the same weights as an F16
    # file (--twin), all their batches taking turns.
    "$gst_clip" bench --model "$model" --backend cpu --threads "$threads" \
      --precisions f32,bf16,int8 --twin "$model-f16" --batch "$batch" \
      --iterations "$iterations" >"$work/gst-clip-$batch.txt"
    cat "$work/gst-clip-$batch.txt"
    for pair in "gst-clip f32" "gst-clip-bf16 bf16" "gst-clip-int8 int8" \
      "gst-clip-f16-file f32, $model-f16"; do
      read -r name precision <<<"$pair"
      echo "$name batch $batch: $(sed -n "s|^image ms/image ($precision): ||p" \
        "$work/gst-clip-$batch.txt") ms/image" >>"$results"
    done
    # Its median ratio to the F32 file over the batches that ran back to back.
    echo "gst-clip-f16-file batch $batch: $(sed -n \
      "s|^image speed vs --model (f32, $model-f16): ||p" \
      "$work/gst-clip-$batch.txt")x the F32 file" >>"$results"
  done
  NODE_PATH=$work/node_modules node "$bench/ort-bench.js" "$work/vit-b-32.onnx" 224 "$threads" "$iterations" \
    "$work/input.f32" "$work/ort-embedding.f32" 1 8 | tee -a "$results"
  ORT_NAME=onnxruntime-int8 NODE_PATH=$work/node_modules node "$bench/ort-bench.js" \
    "$work/vit-b-32-int8.onnx" 224 "$threads" "$iterations" \
    "$work/input.f32" "$work/ort-int8-embedding.f32" 1 8 | tee -a "$results"
done
# PyTorch, 5-10 times slower than the others, once.
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
table, paired = {}, {}
for line in open(results):
    m = re.match(r"(\S+) batch (\d+): ([\d.]+) ms/image", line)
    if m:
        table.setdefault(m[1], {}).setdefault(int(m[2]), []).append(float(m[3]))
    m = re.match(r"(\S+) batch (\d+): ([\d.]+)x the F32 file", line)
    if m:
        paired.setdefault(int(m[2]), []).append(float(m[3]))
def cell(times):
    if not times:
        return "n/a"
    median = float(np.median(times))
    if len(times) == 1:
        return f"{median:.1f}"
    return f"{median:.1f} ({min(times):.1f}-{max(times):.1f})"
print("ms/image, median of the rounds (fastest-slowest round)")
print(f"{'engine':<26}{'batch 1':>22}{'batch 8':>22}")
for key, name in names.items():
    row = table.get(key, {})
    print(f"{name:<26}" + "".join(f"{cell(row.get(b, [])):>22}" for b in (1, 8)))
# Each round's own ratios (the k-th figure of an engine is from round k),
# which a slow spell that spans a round disturbs less than the medians.
ratios = [("gst-clip bf16 vs f32", "gst-clip", "gst-clip-bf16"),
          ("gst-clip int8 vs f32", "gst-clip", "gst-clip-int8"),
          ("gst-clip int8 vs ONNX Runtime fp32", "onnxruntime", "gst-clip-int8"),
          ("gst-clip int8 vs ONNX Runtime int8", "onnxruntime-int8", "gst-clip-int8"),
          ("gst-clip f32 vs ONNX Runtime fp32", "onnxruntime", "gst-clip"),
          ("F16 file vs F32 file (f32)", "gst-clip", "gst-clip-f16-file")]
print("speed-up, median of the rounds' own ratios (lowest-highest)")
for label, slow, fast in ratios:
    cells = []
    for b in (1, 8):
        a, c = table.get(slow, {}).get(b, []), table.get(fast, {}).get(b, [])
        r = [x / y for x, y in zip(a, c) if y > 0]
        cells.append(f"{np.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" if r else "n/a")
    print(f"{label:<36}" + "".join(f"{x:>20}" for x in cells))
# The F16 file against the F32 file batch by batch in one process: each
# round's median of the batches' ratios.
cells = [f"{np.median(paired[b]):.2f}x ({min(paired[b]):.2f}-{max(paired[b]):.2f})"
         if paired.get(b) else "n/a" for b in (1, 8)]
print(f"{'F16 file vs F32 file, batch by batch':<36}" + "".join(f"{x:>20}" for x in cells))
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
