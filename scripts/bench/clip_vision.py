#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""CLIP's vision tower in PyTorch, for the peer benchmark (bench-peers.sh).

Loads a gst-clip model folder (HF or OpenAI tensor names, F32 or F16) with
a small safetensors reader, then:
  bench  DIR THREADS ITERATIONS BATCH...   ms/image of PyTorch on the CPU
  export DIR OUT.onnx                      the same graph for ONNX Runtime
  embed  DIR INPUT.f32 OUT.f32             raw embedding of one CHW tensor
The forward pass is the official encode_image, written with plain matmuls
so that the exported graph is the usual transformer one.
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2")}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in DTYPES:
            continue  # position_ids (I64) are not weights
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        array = np.frombuffer(data, dtype, (end - begin) // dtype.itemsize, base + begin)
        tensors[name] = array.reshape(info["shape"]).astype(np.float32)
    return tensors


def vision_heads(model_dir, width):
    """Heads from the config (HF or OpenCLIP), else OpenAI's width / 64."""
    for name in ("config.json", "open_clip_config.json"):
        path = os.path.join(model_dir, name)
        if not os.path.exists(path):
            continue
        config = json.load(open(path))
        config = config.get("model_cfg", config)
        hf = config.get("vision_config", {})
        if "num_attention_heads" in hf:
            return hf["num_attention_heads"]
        cfg = config.get("vision_cfg", {})
        if "head_width" in cfg:
            return cfg["width"] // cfg["head_width"]
    return width // 64


def openai_names(t):
    """Maps HF CLIPModel names onto OpenAI's (only the vision tower)."""
    if "visual.conv1.weight" in t:
        return t
    out = {
        "visual.conv1.weight": t["vision_model.embeddings.patch_embedding.weight"],
        "visual.class_embedding": t["vision_model.embeddings.class_embedding"],
        "visual.positional_embedding": t["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": t["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": t["vision_model.pre_layrnorm.bias"],
        "visual.ln_post.weight": t["vision_model.post_layernorm.weight"],
        "visual.ln_post.bias": t["vision_model.post_layernorm.bias"],
        "visual.proj": t["visual_projection.weight"].T,
    }
    i = 0
    while f"vision_model.encoder.layers.{i}.layer_norm1.weight" in t:
        hf = f"vision_model.encoder.layers.{i}."
        oa = f"visual.transformer.resblocks.{i}."
        for a, b in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("attn.out_proj", "self_attn.out_proj"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            for p in ("weight", "bias"):
                out[f"{oa}{a}.{p}"] = t[f"{hf}{b}.{p}"]
        for p in ("weight", "bias"):
            out[f"{oa}attn.in_proj_{p}"] = np.concatenate(
                [t[f"{hf}self_attn.{x}_proj.{p}"] for x in "qkv"])
        i += 1
    return out


class VisionTower(torch.nn.Module):
    def __init__(self, t, heads):
        super().__init__()
        p = {k[len("visual."):]: torch.from_numpy(np.ascontiguousarray(v))
             for k, v in t.items() if k.startswith("visual.")}
        self.p = torch.nn.ParameterDict(
            {k.replace(".", "_"): torch.nn.Parameter(v, requires_grad=False)
             for k, v in p.items()})
        self.heads = heads
        self.width, _, self.patch, _ = p["conv1.weight"].shape
        self.layers = sum(1 for k in p if k.endswith("ln_1.weight"))

    def w(self, name):
        return self.p[name.replace(".", "_")]

    def layer_norm(self, x, name):
        return torch.nn.functional.layer_norm(
            x, (self.width,), self.w(name + ".weight"), self.w(name + ".bias"), 1e-5)

    def forward(self, pixels):
        n = pixels.shape[0]
        x = torch.nn.functional.conv2d(pixels, self.w("conv1.weight"), stride=self.patch)
        x = x.flatten(2).transpose(1, 2)                        # [n, grid^2, W]
        cls = self.w("class_embedding").expand(n, 1, self.width)
        x = torch.cat([cls, x], 1) + self.w("positional_embedding")
        x = self.layer_norm(x, "ln_pre")
        t = x.shape[1]
        hd = self.width // self.heads
        for i in range(self.layers):
            b = f"transformer.resblocks.{i}."
            h = self.layer_norm(x, b + "ln_1")
            qkv = h @ self.w(b + "attn.in_proj_weight").T + self.w(b + "attn.in_proj_bias")
            qkv = qkv.reshape(n, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v
            a = a.transpose(1, 2).reshape(n, t, self.width)
            x = x + a @ self.w(b + "attn.out_proj.weight").T + self.w(b + "attn.out_proj.bias")
            h = self.layer_norm(x, b + "ln_2")
            h = h @ self.w(b + "mlp.c_fc.weight").T + self.w(b + "mlp.c_fc.bias")
            h = h * torch.sigmoid(1.702 * h)                    # QuickGELU
            x = x + h @ self.w(b + "mlp.c_proj.weight").T + self.w(b + "mlp.c_proj.bias")
        return self.layer_norm(x[:, 0], "ln_post") @ self.w("proj")


def load(model_dir):
    for name in ("model.safetensors", "open_clip_model.safetensors"):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            break
    t = openai_names(read_safetensors(path))
    width = t["visual.conv1.weight"].shape[0]
    model = VisionTower(t, vision_heads(model_dir, width)).eval()
    size = int(round(math.sqrt(t["visual.positional_embedding"].shape[0] - 1))) * model.patch
    return model, size


def main():
    command, model_dir, *args = sys.argv[1:]
    model, size = load(model_dir)
    if command == "bench":
        threads, iterations, *batches = map(int, args)
        torch.set_num_threads(threads)
        for batch in batches:
            x = torch.randn(batch, 3, size, size)
            with torch.inference_mode():
                model(x)
                start = time.perf_counter()
                for _ in range(iterations):
                    model(x)
                seconds = time.perf_counter() - start
            print(f"pytorch batch {batch}: {1e3 * seconds / (batch * iterations):.1f} ms/image")
    elif command == "export":
        x = torch.randn(1, 3, size, size)
        torch.onnx.export(model, x, args[0], input_names=["pixels"],
                          output_names=["embedding"], opset_version=14,
                          dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}})
    elif command == "embed":
        x = np.fromfile(args[0], "<f4").reshape(1, 3, size, size)
        with torch.inference_mode():
            model(torch.from_numpy(x)).numpy().astype("<f4").tofile(args[1])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
