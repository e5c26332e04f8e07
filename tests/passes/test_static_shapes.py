"""Tests of PinStaticShapesPass and parse_input_shape."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphopt
from graphopt.errors import PreconditionError, ShapeSpecError
from graphopt.graph import infer_tensor_info
from graphopt.options import OptimizeOptions
from graphopt.passes import static_shapes
from graphopt.passes.static_shapes import PinStaticShapesPass, parse_input_shape

from ..conftest import assert_same_outputs, make_model, op_types, tensor, value


def conv_net(rng: np.random.Generator, shape: tuple[int | str, ...] = ("N", 3, "H", "W")) -> onnx.ModelProto:
    """Conv → Relu → Conv with a dynamic input."""
    return make_model(
        [
            helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2"], ["y"], strides=[2, 2]),
        ],
        [value("x", shape)],
        [value("y", ["N", 2, "h", "w"])],
        [
            tensor("w1", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
            tensor("b1", rng.standard_normal(4).astype(np.float32)),
            tensor("w2", rng.standard_normal((2, 4, 1, 1)).astype(np.float32)),
        ],
    )


def flatten_chain() -> onnx.ModelProto:
    """Relu, then a flatten to (N, -1) whose target shape is computed from the input at run time."""
    return make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Shape", ["r"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
            helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
            helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
            helper.make_node("Reshape", ["r", "target"], ["y"]),
        ],
        [value("x", ["N", 3, "H", "W"])],
        [value("y", ["N", None])],
        [
            tensor("zero", np.array(0, np.int64)),
            tensor("axes", np.array([0], np.int64)),
            tensor("minus_one", np.array([-1], np.int64)),
        ],
    )


def static_shape(value_info: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims) if all(d.HasField("dim_value") for d in dims) else None


def pin(model: onnx.ModelProto, **shapes: tuple[int, ...]):
    return PinStaticShapesPass(input_shapes=shapes)(model)


def test_dynamic_conv_net_is_pinned(rng):
    model = conv_net(rng)
    result = pin(model, x=(2, 3, 8, 10))

    assert result.modified
    assert result.stats == {"pinned_dims": 3, "folded_nodes": 0}
    assert static_shape(result.model.graph.input[0]) == (2, 3, 8, 10)
    assert static_shape(result.model.graph.output[0]) == (2, 2, 4, 5)
    assert op_types(result.model) == ["Conv", "Relu", "Conv"]
    # Every value has a static shape for FLOP counting.
    infos = infer_tensor_info(result.model)
    assert all(infos[name].static_shape for name in ("x", "c1", "r1", "y"))
    assert {v.name for v in result.model.graph.value_info} == {"c1", "r1"}
    assert result.model.opset_import == model.opset_import
    assert result.model.ir_version == model.ir_version
    assert not any(p.key.startswith("onnxsim") for p in result.model.metadata_props)
    assert_same_outputs(model, result.model, {"x": (2, 3, 8, 10)})

    again = pin(result.model, x=(2, 3, 8, 10))
    assert not again.modified
    assert again.stats == {"pinned_dims": 0, "folded_nodes": 0}
    assert again.model.SerializeToString() == result.model.SerializeToString()


def test_second_run_without_shapes_is_unchanged(rng):
    result = pin(conv_net(rng), x=(1, 3, 6, 6))
    again = PinStaticShapesPass()(result.model)
    assert not again.modified


def test_flatten_chain_is_folded_to_constant_reshape():
    model = flatten_chain()
    result = pin(model, x=(2, 3, 4, 5))

    assert result.modified
    assert result.stats == {"pinned_dims": 3, "folded_nodes": 4}
    assert op_types(result.model) == ["Relu", "Reshape"]
    reshape = result.model.graph.node[1]
    target = next(init for init in result.model.graph.initializer if init.name == reshape.input[1])
    assert onnx.numpy_helper.to_array(target).tolist() in ([2, -1], [2, 60])
    assert static_shape(result.model.graph.output[0]) == (2, 60)
    assert_same_outputs(model, result.model, {"x": (2, 3, 4, 5)})
    assert not pin(result.model, x=(2, 3, 4, 5)).modified


def test_folding_keeps_initializers_listed_as_graph_inputs():
    model = flatten_chain()
    graph = model.graph
    graph.node.append(helper.make_node("Add", ["y", "bias"], ["z"]))
    graph.initializer.append(tensor("bias", np.full((1, 60), 0.5, np.float32)))
    graph.input.append(value("bias", [1, 60]))
    graph.output[0].CopyFrom(value("z", ["N", 60]))
    onnx.checker.check_model(model, full_check=True)

    result = pin(model, x=(2, 3, 4, 5))
    assert op_types(result.model) == ["Relu", "Reshape", "Add"]
    assert [v.name for v in result.model.graph.input] == ["x", "bias"]
    assert_same_outputs(model, result.model, {"x": (2, 3, 4, 5)})


def test_static_model_with_nothing_to_fold_is_not_modified():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [value("x", [1, 3, 4, 4])],
        [value("y", [1, 3, 4, 4])],
    )
    result = PinStaticShapesPass()(model)
    assert not result.modified
    assert result.stats == {"pinned_dims": 0, "folded_nodes": 0}
    # Giving the shape the graph already has is no change either.
    assert not pin(model, x=(1, 3, 4, 4)).modified


def test_model_passed_in_is_unchanged():
    model = flatten_chain()
    snapshot = model.SerializeToString()
    pin(model, x=(2, 3, 4, 5))
    assert model.SerializeToString() == snapshot


def test_only_the_dynamic_input_of_two_needs_a_shape(rng):
    model = make_model(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "bias"], ["y"]),
        ],
        [value("x", ["B", 3]), value("bias", [1, 4])],
        [value("y", ["B", 4])],
        [tensor("w", rng.standard_normal((3, 4)).astype(np.float32))],
    )
    result = pin(model, x=(5, 3))
    assert result.stats["pinned_dims"] == 1
    assert [static_shape(v) for v in result.model.graph.input] == [(5, 3), (1, 4)]
    assert static_shape(result.model.graph.output[0]) == (5, 4)
    assert_same_outputs(model, result.model, {"x": (5, 3), "bias": (1, 4)})
    # Without a shape for 'x' it stays dynamic: nothing is pinned, and the note says which input.
    skipped = pin(model, bias=(1, 4))
    assert not skipped.modified and skipped.note is not None and "'x'" in skipped.note


def test_from_options():
    pass_ = PinStaticShapesPass.from_options(OptimizeOptions(input_shapes={"x": (2, 3, 4, 5)}))
    assert pass_.input_shapes == {"x": (2, 3, 4, 5)}
    assert pass_(flatten_chain()).stats["pinned_dims"] == 3


def _reshape_to(target: list[int]) -> onnx.ModelProto:
    return make_model(
        [helper.make_node("Reshape", ["x", "target"], ["y"])],
        [value("x", ["N", "D"])],
        [value("y", ["A", "B"])],
        [tensor("target", np.array(target, np.int64))],
    )


def test_a_shape_for_no_input_is_one_line_error_before_any_pass(rng):
    # The pass itself leaves out shapes of inputs an earlier pass replaced; the
    # pipeline checks the names against the model it starts from.
    with pytest.raises(ShapeSpecError) as caught:
        graphopt.optimize(conv_net(rng), ["pin_static_shapes"], input_shapes={"foo": (1, 3, 8, 8)})
    message = str(caught.value)
    assert "\n" not in message and "'foo'" in message and "its inputs are: x" in message


@pytest.mark.parametrize(
    ("make", "shapes", "words"),
    [
        (lambda rng: conv_net(rng), {"x": (1, 3, 8)}, ["'x'", "rank 4", "Nx3xHxW"]),
        (lambda rng: conv_net(rng), {"x": (1, 4, 8, 8)}, ["x:1x4x8x8", "Nx3xHxW", "dimension 1 must be 3"]),
        (lambda rng: conv_net(rng, ("N", "C", "H", "W")), {"x": (1, 4, 8, 8)}, ["x:1x4x8x8", "3 input channels"]),
        (lambda rng: _reshape_to([3, 5]), {"x": (2, 7)}, ["x:2x7 contradicts the graph", "Reshape", "14"]),
        (lambda rng: _reshape_to([-1, 4]), {"x": (3, 5)}, ["x:3x5 contradicts the graph", "Reshape"]),
    ],
    ids=["rank", "fixed-dim", "conv-channels", "reshape", "reshape-minus-one"],
)
def test_shapes_that_do_not_fit_are_one_line_errors(rng, make, shapes, words):
    with pytest.raises(ShapeSpecError) as caught:
        PinStaticShapesPass(input_shapes=shapes)(make(rng))
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_contradiction_found_by_shape_inference_names_the_input(rng):
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="classifier")],
        [value("x", ["N", "D"])],
        [value("y", ["N", 4])],
        [tensor("w", rng.standard_normal((3, 4)).astype(np.float32))],
    )
    with pytest.raises(
        ShapeSpecError, match=r"^input shape x:2x5 contradicts the graph: MatMul node 'classifier'"
    ) as caught:
        pin(model, x=(2, 5))
    assert "\n" not in str(caught.value)


def test_onnxsim_failure_is_a_one_line_error(monkeypatch):
    def fail(model, shapes):
        raise RuntimeError("[ONNXRuntimeError] folding failed\nstack trace")

    monkeypatch.setattr(static_shapes, "_simplify", fail)
    # onnxruntime runs the model at that shape: onnxsim's failure is no contradiction, nothing is folded.
    assert pin(flatten_chain(), x=(2, 3, 4, 5)).stats["folded_nodes"] == 0
    monkeypatch.setattr(static_shapes, "_runs_in_onnxruntime", lambda model, shapes: False)
    with pytest.raises(ShapeSpecError, match=r"^input shape x:2x3x4x5 contradicts the graph: folding failed$"):
        pin(flatten_chain(), x=(2, 3, 4, 5))


def test_data_dependent_output_is_reported():
    model = make_model(
        [helper.make_node("NonZero", ["x"], ["y"])],
        [value("x", ["N"])],
        [value("y", [1, "K"], TensorProto.INT64)],
    )
    result = pin(model, x=(4,))
    assert result.note is not None and "output 'y' keeps a dynamic shape" in result.note


def test_an_input_without_a_shape_stays_dynamic_and_the_pass_says_why(rng):
    model = conv_net(rng)
    result = PinStaticShapesPass()(model)
    assert not result.modified and result.model.SerializeToString() == model.SerializeToString()
    assert result.note is not None and "'x' keeps its dynamic dimensions" in result.note


def test_non_positive_dims_are_rejected():
    with pytest.raises(ShapeSpecError, match="positive"):
        PinStaticShapesPass(input_shapes={"x": (1, 0)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("input:1x3x480x640", ("input", (1, 3, 480, 640))),
        ("images:0:1x3x64x64", ("images:0", (1, 3, 64, 64))),
        ("x:7", ("x", (7,))),
    ],
)
def test_parse_input_shape(text, expected):
    assert parse_input_shape(text) == expected


@pytest.mark.parametrize("text", ["x:1x0x3", "1x3x4", ":1x3", "x:1x?", "x:", "x:1xx3", "x:-1x3", "x:1,3x"])
def test_parse_input_shape_rejects_bad_text(text):
    with pytest.raises(ShapeSpecError) as caught:
        parse_input_shape(text)
    assert f"'{text}'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_folding_keeps_the_metadata_of_the_nodes_that_stay() -> None:
    model = flatten_chain()
    relu = model.graph.node[0]
    relu.metadata_props.add(key="graphopt.precision", value="float32")
    result = pin(model, x=(2, 3, 4, 5))
    assert result.stats["folded_nodes"] > 0
    (kept,) = [n for n in result.model.graph.node if n.op_type == "Relu"]
    assert [(p.key, p.value) for p in kept.metadata_props] == [("graphopt.precision", "float32")]


def test_shapes_a_workload_filled_in_are_not_pinned(rng):
    options = OptimizeOptions(input_shapes={"x": (1, 3, 8, 10)}, shapes_from_workload=True)
    made = PinStaticShapesPass.from_options(options)
    assert made.input_shapes == {}
    with pytest.raises(PreconditionError, match="a concrete shape for 'x'"):
        made.requires(conv_net(rng))
    made.requires(conv_net(rng, (1, 3, 8, 10)))  # nothing dynamic: nothing needed
    assert PinStaticShapesPass.from_options(OptimizeOptions(input_shapes={"x": (1, 3, 8, 10)})).input_shapes == {
        "x": (1, 3, 8, 10)}
