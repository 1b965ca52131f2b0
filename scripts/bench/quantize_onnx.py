# SPDX-License-Identifier: LGPL-2.1-or-later
"""Dynamic INT8 quantisation of an ONNX graph's MatMuls, for the peer
benchmark (bench-peers.sh), with Debian's python3-onnx alone (onnxruntime's
Python package, whose quantize_dynamic does this, is not in Debian).

Usage: quantize_onnx.py IN.onnx OUT.onnx

Every MatMul by a constant 2-D weight [K, N] becomes the graph that
quantize_dynamic writes: DynamicQuantizeLinear of the input (u8, one scale
and zero point per tensor), MatMulInteger by the weight as s8 (symmetric,
here one scale per output column), Cast to float and Mul by the two scales.
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def main(source, target):
    model = onnx.load(source)
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes, quantised = [], 0
    for node in graph.node:
        name = node.input[1] if node.op_type == "MatMul" else None
        if name not in weights or len(weights[name].dims) != 2:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[name]).astype(np.float32)
        scale = np.abs(w).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        base = f"{name}_int8"
        graph.initializer.extend([
            numpy_helper.from_array(q, base),
            numpy_helper.from_array(scale.astype(np.float32), base + "_scale"),
            numpy_helper.from_array(np.array(0, np.int8), base + "_zero"),
        ])
        x, y = node.input[0], node.output[0]
        step = f"{y}_q"
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [x],
                             [step + "_x", step + "_xs", step + "_xz"]),
            helper.make_node("MatMulInteger",
                             [step + "_x", base, step + "_xz", base + "_zero"],
                             [step + "_i32"]),
            helper.make_node("Cast", [step + "_i32"], [step + "_f32"],
                             to=onnx.TensorProto.FLOAT),
            helper.make_node("Mul", [step + "_xs", base + "_scale"], [step + "_s"]),
            helper.make_node("Mul", [step + "_f32", step + "_s"], [y]),
        ]
        quantised += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, target)
    print(f"quantize_onnx: {quantised} MatMuls to INT8", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
