"""Builds model.onnx: a small CNN classifier as an exporter might leave it.

It carries the redundancy graphopt's first passes remove, each of a kind real
exports have: Identity nodes, an inference-time Dropout, an NCHW→NHWC→NCHW
Transpose pair around an op that did not need it, a Cast to the type the
tensor already has, a weight exported twice for a layer applied twice, a
Shape→Gather→Unsqueeze→Concat→Reshape flatten over a dynamic batch, an
auxiliary head nobody reads and an unused initializer. Its batch, height and
width are dynamic.

Run ``python make_model.py [OUT]``; the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(20161)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name)

    def bias(name: str, n: int) -> onnx.TensorProto:
        return numpy_helper.from_array((0.01 * rng.standard_normal(n)).astype(np.float32), name)

    w3 = weight("block3.conv.weight", 32, 32, 3, 3)
    w3_copy = numpy_helper.from_array(numpy_helper.to_array(w3), "block3_repeat.conv.weight")
    b3 = bias("block3.conv.bias", 32)
    b3_copy = numpy_helper.from_array(numpy_helper.to_array(b3), "block3_repeat.conv.bias")
    initializers = [
        weight("block1.conv.weight", 16, 3, 3, 3), bias("block1.conv.bias", 16),
        weight("block2.conv.weight", 32, 16, 3, 3), bias("block2.conv.bias", 32),
        w3, b3, w3_copy, b3_copy,
        weight("aux.conv.weight", 8, 32, 1, 1),
        weight("head.fc.weight", 10, 32), bias("head.fc.bias", 10),
        numpy_helper.from_array(np.ones(16, np.float32), "block1.bn.unused_running_var"),
        numpy_helper.from_array(np.array(0, np.int64), "gather_index"),
        numpy_helper.from_array(np.array([0], np.int64), "unsqueeze_axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
    ]
    nodes = [
        helper.make_node("Identity", ["input"], ["input_copy"], name="input_identity"),
        helper.make_node("Conv", ["input_copy", "block1.conv.weight", "block1.conv.bias"], ["c1"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="block1.conv"),
        helper.make_node("Relu", ["c1"], ["r1"], name="block1.relu"),
        helper.make_node("Dropout", ["r1"], ["d1"], name="block1.dropout"),
        helper.make_node("Transpose", ["d1"], ["d1_nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
        helper.make_node("Transpose", ["d1_nhwc"], ["d1_nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["d1_nchw", "block2.conv.weight", "block2.conv.bias"], ["c2"],
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], name="block2.conv"),
        helper.make_node("Relu", ["c2"], ["r2"], name="block2.relu"),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], name="block2.pool"),
        helper.make_node("Cast", ["p2"], ["p2_float"], to=TensorProto.FLOAT, name="block2.cast"),
        helper.make_node("Conv", ["p2_float", "block3.conv.weight", "block3.conv.bias"], ["c3"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="block3.conv"),
        helper.make_node("Relu", ["c3"], ["r3"], name="block3.relu"),
        helper.make_node("Identity", ["r3"], ["r3_copy"], name="block3.identity"),
        helper.make_node("Conv", ["r3_copy", "block3_repeat.conv.weight", "block3_repeat.conv.bias"], ["c3b"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="block3_repeat.conv"),
        helper.make_node("Relu", ["c3b"], ["r3b"], name="block3_repeat.relu"),
        helper.make_node("Conv", ["r3b", "aux.conv.weight"], ["aux"], kernel_shape=[1, 1], name="aux.conv"),
        helper.make_node("Sigmoid", ["aux"], ["aux_prob"], name="aux.sigmoid"),
        helper.make_node("GlobalAveragePool", ["r3b"], ["gap"], name="head.pool"),
        helper.make_node("Shape", ["gap"], ["gap_shape"], name="flatten.shape"),
        helper.make_node("Gather", ["gap_shape", "gather_index"], ["batch"], axis=0, name="flatten.gather"),
        helper.make_node("Unsqueeze", ["batch", "unsqueeze_axes"], ["batch_1d"], name="flatten.unsqueeze"),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["flat_shape"], axis=0, name="flatten.concat"),
        helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten.reshape"),
        helper.make_node("Gemm", ["flat", "head.fc.weight", "head.fc.bias"], ["logits"], transB=1, name="head.fc"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="head.softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "redundant_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="graphopt-example")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("model.onnx")
    out.write_bytes(build().SerializeToString())
    print(f"wrote {out}")
