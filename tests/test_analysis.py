"""FLOP counting and graph statistics on graphs whose costs are worked out by hand."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from graphopt.analysis import count_flops, graph_stats, parameter_bytes
from tests.conftest import make_model, tensor, value


def test_conv_with_bias_and_groups() -> None:
    # 1×8×10×10 → Conv(16 filters, 3×3, groups=2, pad 1) → 1×16×10×10.
    w = tensor("w", np.ones((16, 4, 3, 3), np.float32))
    b = tensor("b", np.ones(16, np.float32))
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2)],
        [value("x", [1, 8, 10, 10])], [value("y", [1, 16, 10, 10])], [w, b],
    )
    out = 16 * 10 * 10
    assert count_flops(model).by_op == {"Conv": 2 * out * 4 * 9 + out}


def test_conv_transpose() -> None:
    w = tensor("w", np.ones((4, 6, 2, 2), np.float32))
    model = make_model(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
        [value("x", [1, 4, 5, 5])], [value("y", [1, 6, 10, 10])], [w],
    )
    assert count_flops(model).total == 2 * (4 * 5 * 5) * (6 * 2 * 2)


def test_gemm_matmul_pool_elementwise_softmax() -> None:
    nodes = [
        helper.make_node("Gemm", ["a", "w", "c"], ["g"], transB=1),  # 2×8 · (5×8)ᵀ + c → 2×5
        helper.make_node("Relu", ["g"], ["r"]),
        helper.make_node("Softmax", ["r"], ["s"], axis=1),
        helper.make_node("MatMul", ["m1", "m2"], ["mm"]),  # 3×4×6 · 6×7 → 3×4×7
        helper.make_node("MaxPool", ["p"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),  # 1×2×8×8 → 1×2×4×4
        helper.make_node("GlobalAveragePool", ["p"], ["gap"]),
        helper.make_node("Add", ["pool", "pool"], ["sum"]),
    ]
    model = make_model(
        nodes,
        [value("a", [2, 8]), value("m1", [3, 4, 6]), value("m2", [6, 7]), value("p", [1, 2, 8, 8])],
        [value("s", [2, 5]), value("mm", [3, 4, 7]), value("gap", [1, 2, 1, 1]), value("sum", [1, 2, 4, 4])],
        [tensor("w", np.ones((5, 8), np.float32)), tensor("c", np.ones(5, np.float32))],
    )
    flops = count_flops(model)
    assert flops.by_op == {
        "Gemm": 2 * 2 * 5 * 8 + 2 * 5,
        "Relu": 10,
        "Softmax": 30,
        "MatMul": 2 * (3 * 4 * 7) * 6,
        "MaxPool": 32 * 4,
        "GlobalAveragePool": 128,
        "Add": 32,
    }
    assert flops.total == sum(flops.by_op.values())
    assert flops.uncounted == {}


def test_dynamic_shapes_are_listed_as_uncounted() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", ["n", 4])], [value("y", ["n", 4])])
    flops = count_flops(model)
    assert flops.total == 0 and flops.uncounted == {"Relu": 1}


def test_stats_histogram_and_parameter_bytes() -> None:
    nodes = [helper.make_node("Add", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "w"], ["y"])]
    model = make_model(nodes, [value("x", [4], TensorProto.DOUBLE)], [value("y", [4], TensorProto.DOUBLE)],
                       [tensor("w", np.ones(4, np.float64))])
    stats = graph_stats(model)
    assert stats.nodes == 2 and stats.op_histogram == {"Add": 2}
    assert parameter_bytes(model) == stats.param_bytes == 32
