"""Folding a constant per-channel Mul or Add after a convolution (fold_conv_affine)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from graphopt.passes import FoldConvAffinePass
from graphopt.verify import random_inputs, run_onnxruntime
from tests.conftest import make_model, tensor, value


def _net(rng, op: str = "Conv", *, scale_shape=(1, 4, 1, 1), add_shape=(1, 1, 1, 1), bias: bool = True,
         scale_is_input: bool = False) -> onnx.ModelProto:
    weight = (4, 3, 3, 3) if op == "Conv" else (3, 4, 3, 3)
    inits = [tensor("w", rng.standard_normal(weight).astype(np.float32)),
             tensor("a", rng.standard_normal(add_shape).astype(np.float32))]
    if bias:
        inits.append(tensor("b", rng.standard_normal(4).astype(np.float32)))
    inputs = [value("x", [1, 3, 8, 8])]
    if scale_is_input:
        inputs.append(value("s", list(scale_shape)))
    else:
        inits.append(tensor("s", rng.uniform(0.5, 1.5, scale_shape).astype(np.float32)))
    out = [1, 4, 8, 8] if op == "Conv" else [1, 4, 10, 10]
    conv_inputs = ["x", "w", "b"] if bias else ["x", "w"]
    attrs = {"pads": [1, 1, 1, 1]} if op == "Conv" else {}
    return make_model([helper.make_node(op, conv_inputs, ["c"], **attrs), helper.make_node("Mul", ["c", "s"], ["m"]),
                       helper.make_node("Add", ["a", "m"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
                      inputs, [value("z", out)], inits)


def _same(before: onnx.ModelProto, after: onnx.ModelProto) -> None:
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in before.graph.input}
    feeds = random_inputs(before, shapes)
    np.testing.assert_allclose(run_onnxruntime(after, feeds)["z"], run_onnxruntime(before, feeds)["z"],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
@pytest.mark.parametrize("bias", [True, False])
def test_mul_and_add_fold_into_the_convolution(rng, op, bias):
    model = _net(rng, op, bias=bias)
    result = FoldConvAffinePass()(model)
    assert result.stats == {"mul": 1, "add": 1}
    assert [n.op_type for n in result.model.graph.node] == [op, "Relu"]
    assert result.model.graph.node[0].output[0] == "y"
    assert {t.name for t in result.model.graph.initializer} == {"w", "b" if bias else "w.bias"}
    _same(model, result.model)
    assert not FoldConvAffinePass()(result.model).modified


@pytest.mark.parametrize(
    ("kwargs", "left"),
    [
        ({"scale_shape": (1, 1, 8, 1)}, ["Conv", "Mul", "Relu"]),  # not per channel: the Add after it stays too
        ({"scale_is_input": True}, ["Conv", "Mul", "Add", "Relu"]),  # the caller may change it
    ],
    ids=["spatial-scale", "scale-is-an-input"],
)
def test_what_is_not_a_per_channel_constant_stays(rng, kwargs, left):
    model = _net(rng, **kwargs)
    result = FoldConvAffinePass()(model)
    assert [n.op_type for n in result.model.graph.node][: len(left) - 1] == left[:-1]
    _same(model, result.model)


def test_a_convolution_read_twice_is_left_alone(rng):
    model = _net(rng)
    model.graph.node.append(helper.make_node("Neg", ["c"], ["n"]))
    model.graph.output.append(value("n", [1, 4, 8, 8]))
    result = FoldConvAffinePass()(model)
    assert not result.modified
