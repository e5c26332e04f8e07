"""Small factories for graphs built in code, shared by the tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.verify import random_inputs, run_onnxruntime

OPSET = 17


def value(
    name: str, shape: Sequence[int | str | None] | None, elem_type: int = TensorProto.FLOAT
) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def tensor(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    opset: int = OPSET,
    check: bool = True,
) -> onnx.ModelProto:
    """A model from nodes; checked with ``full_check`` unless told otherwise."""
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def op_types(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def assert_same_outputs(
    before: onnx.ModelProto,
    after: onnx.ModelProto,
    shapes: Mapping[str, tuple[int, ...]],
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    seed: int = 0,
) -> None:
    """Runs both models in onnxruntime on the same random non-zero inputs and compares."""
    feeds = random_inputs(before, shapes, seed=seed)
    assert all(np.all(f != 0) for f in feeds.values())
    expected = run_onnxruntime(before, feeds)
    actual = run_onnxruntime(after, {k: v for k, v in feeds.items() if k in {i.name for i in after.graph.input}})
    assert set(actual) == set(expected)
    for name, ref in expected.items():
        np.testing.assert_allclose(actual[name], ref, rtol=rtol, atol=atol, err_msg=name)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
