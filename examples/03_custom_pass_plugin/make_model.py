"""Writes model.onnx: a small graph with two double negations around a Relu, for the plugin to fold."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def build() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Neg", ["x"], ["n1"], name="neg1"),
        helper.make_node("Neg", ["n1"], ["n2"], name="neg2"),
        helper.make_node("Relu", ["n2"], ["r"], name="relu"),
        helper.make_node("Neg", ["r"], ["n3"], name="neg3"),
        helper.make_node("Neg", ["n3"], ["n4"], name="neg4"),
        helper.make_node("Add", ["n4", "x"], ["y"], name="add"),
    ]
    graph = helper.make_graph(nodes, "double_negation", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="graphopt-example")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    onnx.save(build(), str(Path(__file__).with_name("model.onnx")))
