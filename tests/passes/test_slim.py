"""The wrappers of the well-kept libraries' rewrites: onnxslim (slim) and onnxruntime's basic level."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from graphopt.graph import count_nodes
from graphopt.passes import OnnxRuntimeBasicPass, SlimGraphPass
from graphopt.verify import random_inputs, run_onnxruntime
from tests.conftest import make_model, tensor, value


def _foldable(rng: np.random.Generator) -> onnx.ModelProto:
    """x + (a * b) → Relu, where a * b is constant; plus a Shape → Reshape no-op chain."""
    return make_model(
        [
            helper.make_node("Mul", ["a", "b"], ["ab"]),
            helper.make_node("Add", ["x", "ab"], ["s"]),
            helper.make_node("Shape", ["s"], ["shape"]),
            helper.make_node("Reshape", ["s", "shape"], ["r"]),
            helper.make_node("Relu", ["r"], ["y"]),
        ],
        [value("x", [2, 4])],
        [value("y", [2, 4])],
        [tensor("a", rng.standard_normal((2, 4)).astype(np.float32)),
         tensor("b", rng.standard_normal((2, 4)).astype(np.float32))],
    )


def _same_outputs(before: onnx.ModelProto, after: onnx.ModelProto) -> None:
    feeds = random_inputs(before, {"x": (2, 4)})
    expected, found = run_onnxruntime(before, feeds), run_onnxruntime(after, feeds)
    for name, array in expected.items():
        np.testing.assert_allclose(found[name], array, rtol=1e-5, atol=1e-6)


def test_slim_folds_and_is_a_fixed_point(rng):
    model = _foldable(rng)
    result = SlimGraphPass()(model)
    assert result.modified and count_nodes(result.model) < count_nodes(model)
    assert result.stats["removed_nodes"] == count_nodes(model) - count_nodes(result.model)
    assert "Mul" not in {n.op_type for n in result.model.graph.node}
    _same_outputs(model, result.model)
    again = SlimGraphPass()(result.model)
    assert not again.modified and again.model.SerializeToString() == result.model.SerializeToString()


def test_slim_keeps_a_graph_it_cannot_shrink(rng):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", [2, 4])], [value("y", [2, 4])])
    result = SlimGraphPass()(model)
    assert not result.modified and result.model.SerializeToString() == model.SerializeToString()


def test_slim_keeps_opsets_metadata_and_input_order(rng):
    model = _foldable(rng)
    model.metadata_props.add(key="author", value="me")
    result = SlimGraphPass()(model).model
    assert list(result.opset_import) == list(model.opset_import)
    assert [p.key for p in result.metadata_props] == ["author"]
    assert [v.name for v in result.graph.input] == ["x"]


def test_onnxruntime_basic_fuses_conv_and_batch_norm(rng):
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"])],
        [value("x", [1, 3, 8, 8])],
        [value("y", [1, 4, 8, 8])],
        [tensor("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
         tensor("s", rng.uniform(0.5, 1.5, 4).astype(np.float32)),
         tensor("b", rng.standard_normal(4).astype(np.float32)),
         tensor("m", rng.standard_normal(4).astype(np.float32)),
         tensor("v", rng.uniform(0.5, 1.5, 4).astype(np.float32))],
    )
    result = OnnxRuntimeBasicPass()(model)
    assert result.modified and [n.op_type for n in result.model.graph.node] == ["Conv"]
    assert all(n.domain in ("", "ai.onnx") for n in result.model.graph.node)
    feeds = random_inputs(model, {"x": (1, 3, 8, 8)})
    np.testing.assert_allclose(run_onnxruntime(result.model, feeds)["y"], run_onnxruntime(model, feeds)["y"],
                               rtol=1e-4, atol=1e-5)
    assert not OnnxRuntimeBasicPass()(result.model).modified


def test_onnxruntime_basic_leaves_what_it_cannot_shrink():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", [2, 4])], [value("y", [2, 4])])
    result = OnnxRuntimeBasicPass()(model)
    assert not result.modified and result.model.SerializeToString() == model.SerializeToString()


def test_onnxruntime_basic_leaves_a_model_it_cannot_load():
    model = make_model([helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")], [value("x", [2, 4])],
                       [value("y", [2, 4])], check=False)
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    result = OnnxRuntimeBasicPass()(model)
    assert not result.modified and result.note is not None and "cannot load" in result.note
