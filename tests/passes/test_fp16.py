"""Tests of the float16 conversion: explicit types, Casts only where types meet, float32 kept where float16 fails."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from graphopt.errors import ConfigError
from graphopt.passes.base import PassResult
from graphopt.passes.fp16 import STAT_KEYS, ConvertToFp16Pass, convert_to_float16, detections_accept
from graphopt.verify import random_inputs, run_onnxruntime
from tests.conftest import make_model, op_types, tensor, value

FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
# Float16 keeps 11 significant bits (relative rounding 5e-4 per operation); a
# few operations and sums of tens of terms stay well inside 1e-2 of the range.
RTOL = 1e-2

Feeds = Mapping[str, np.ndarray]


def node(op: str, inputs: list[str], output: str, **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def run_pass(model: onnx.ModelProto, **options: object) -> PassResult:
    """Runs the pass, checks the result is a valid, clean model and that a second run changes nothing."""
    result = ConvertToFp16Pass(**options)(model)
    onnx.checker.check_model(result.model, full_check=True)
    assert set(result.stats) == set(STAT_KEYS)
    assert_clean_casts(result.model)
    again = ConvertToFp16Pass(**options)(result.model)
    assert not again.modified, again.stats
    return result


def value_types(model: onnx.ModelProto) -> dict[str, int]:
    """The element type of every value, as ONNX shape inference reads the graph."""
    graph = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def cast_to(cast: onnx.NodeProto) -> int:
    return next(a.i for a in cast.attribute if a.name == "to")


def assert_clean_casts(model: onnx.ModelProto) -> None:
    """No Cast to the type its input has, and no float16 → float32 → float16 round trip."""
    types = value_types(model)
    producers = {out: n for n in model.graph.node for out in n.output}
    for cast in (n for n in model.graph.node if n.op_type == "Cast"):
        assert types[cast.input[0]] != cast_to(cast), f"'{cast.name}' casts to the type it reads"
        first = producers.get(cast.input[0])
        if first is not None and first.op_type == "Cast":
            round_trip = (types[first.input[0]], cast_to(first), cast_to(cast)) == (HALF, FLOAT, HALF)
            assert not round_trip, f"'{first.name}' and '{cast.name}' cast float16 → float32 → float16"


def feeds_for(model: onnx.ModelProto, feeds: Feeds) -> dict[str, np.ndarray]:
    """``feeds`` in the element types ``model`` declares for its inputs."""
    declared = {v.name: helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type) for v in model.graph.input}
    return {name: array.astype(declared[name]) for name, array in feeds.items()}


def assert_close(before: onnx.ModelProto, after: onnx.ModelProto, feeds: Feeds, *, rtol: float = RTOL) -> None:
    """Outputs of ``after`` within ``rtol`` of each output's largest float32 magnitude."""
    assert all(np.all(f != 0) for f in feeds.values())
    expected = run_onnxruntime(before, feeds)
    actual = run_onnxruntime(after, feeds_for(after, feeds))
    assert set(actual) == set(expected)
    for name, ref in expected.items():
        assert np.all(np.isfinite(actual[name])), name
        scale = float(np.max(np.abs(ref)))
        np.testing.assert_allclose(actual[name].astype(np.float32), ref, rtol=0, atol=rtol * scale, err_msg=name)


def conv_chain(rng: np.random.Generator) -> onnx.ModelProto:
    """Conv → Relu → MaxPool → Flatten → Gemm on a [1, 3, 8, 8] image."""
    nodes = [
        node("Conv", ["x", "w", "b"], "conv", pads=[1, 1, 1, 1]),
        node("Relu", ["conv"], "relu"),
        node("MaxPool", ["relu"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["pool"], "flat"),
        node("Gemm", ["flat", "w2", "b2"], "y"),
    ]
    initializers = [
        tensor("w", (rng.normal(size=(4, 3, 3, 3)) * 0.3).astype(np.float32)),
        tensor("b", rng.normal(size=4).astype(np.float32)),
        tensor("w2", (rng.normal(size=(64, 5)) * 0.2).astype(np.float32)),
        tensor("b2", rng.normal(size=5).astype(np.float32)),
    ]
    return make_model(nodes, [value("x", [1, 3, 8, 8])], [value("y", [1, 5])], initializers)


def test_conv_chain_runs_in_float16(rng: np.random.Generator) -> None:
    model = conv_chain(rng)
    result = run_pass(model)
    assert result.modified
    assert result.stats["float16_nodes"] == 5
    assert result.stats["float32_nodes"] == 0
    assert not result.details
    converted = {t.name: t.data_type for t in result.model.graph.initializer}
    assert converted == dict.fromkeys(["w", "b", "w2", "b2"], HALF)
    # The interface stays float32, behind one Cast at each end.
    assert [v.type.tensor_type.elem_type for v in result.model.graph.input] == [FLOAT]
    assert [v.type.tensor_type.elem_type for v in result.model.graph.output] == [FLOAT]
    casts = [n for n in result.model.graph.node if n.op_type == "Cast"]
    assert len(casts) == 2
    assert [cast_to(n) for n in casts if list(n.input) == ["x"]] == [HALF]
    assert [cast_to(n) for n in casts if list(n.output) == ["y"]] == [FLOAT]
    assert op_types(result.model) == ["Cast", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Cast"]
    types = value_types(result.model)
    for n in result.model.graph.node:
        if n.op_type != "Cast":
            assert {types[name] for name in [*n.input, *n.output]} == {HALF}, n.name
    for seed in range(2):
        assert_close(model, result.model, random_inputs(model, {"x": (1, 3, 8, 8)}, seed=seed))


def test_without_keep_io_types_the_interface_is_float16(rng: np.random.Generator) -> None:
    model = conv_chain(rng)
    result = run_pass(model, keep_io_types=False)
    # The precision guard ran on (random) calibration inputs, fed to the float16 graph as float16.
    assert result.stats["calibration_inputs"] > 0
    assert [v.type.tensor_type.elem_type for v in result.model.graph.input] == [HALF]
    assert [v.type.tensor_type.elem_type for v in result.model.graph.output] == [HALF]
    assert "Cast" not in op_types(result.model)
    assert_close(model, result.model, random_inputs(model, {"x": (1, 3, 8, 8)}))


def test_nodes_kept_by_name_and_op_type_stay_float32(rng: np.random.Generator) -> None:
    model = conv_chain(rng)
    result = run_pass(model, keep_nodes=["conv"], keep_op_types=["Relu"])
    types = value_types(result.model)
    kept = {n.name: n for n in result.model.graph.node if n.name in ("conv", "relu")}
    for n in kept.values():
        assert {types[name] for name in [*n.input, *n.output]} == {FLOAT}, n.name
    assert types["pool"] == HALF
    reasons = {d["name"]: d["reason"] for d in result.details}
    assert reasons == {"conv": "kept by name", "relu": "kept by op type Relu"}
    assert result.stats["float32_nodes"] == 2
    assert_close(model, result.model, random_inputs(model, {"x": (1, 3, 8, 8)}))


def test_keeping_an_unknown_node_is_a_config_error(rng: np.random.Generator) -> None:
    with pytest.raises(ConfigError, match="'no_such_node'"):
        ConvertToFp16Pass(keep_nodes=["no_such_node"])(conv_chain(rng))


def test_resize_scales_stay_float32() -> None:
    # Resize's scales input is tensor(float) only; the image it resizes may be float16.
    nodes = [
        node("Mul", ["x", "gain"], "scaled"),
        node("Resize", ["scaled", "", "scales"], "resized"),
        node("Add", ["resized", "bias"], "y"),
    ]
    initializers = [
        tensor("gain", np.array(0.7, np.float32)),
        tensor("scales", np.array([1, 1, 2, 2], np.float32)),
        tensor("bias", np.array(0.3, np.float32)),
    ]
    model = make_model(nodes, [value("x", [1, 2, 4, 4])], [value("y", [1, 2, 8, 8])], initializers)
    result = run_pass(model)
    types = value_types(result.model)
    assert types["scales"] == FLOAT
    resize = next(n for n in result.model.graph.node if n.op_type == "Resize")
    assert (types[resize.input[0]], types[resize.output[0]]) == (HALF, HALF)
    assert_close(model, result.model, random_inputs(model, {"x": (1, 2, 4, 4)}))


def test_shape_and_index_values_are_untouched() -> None:
    nodes = [
        node("Relu", ["x"], "relu"),
        node("Shape", ["x"], "shape"),
        node("Gather", ["shape", "first"], "batch", axis=0),
        node("Concat", ["batch", "rest"], "new_shape", axis=0),
        node("Reshape", ["relu", "new_shape"], "y"),
    ]
    initializers = [tensor("first", np.array([0], np.int64)), tensor("rest", np.array([-1], np.int64))]
    model = make_model(nodes, [value("x", [2, 3, 4])], [value("y", [2, 12])], initializers)
    result = run_pass(model)
    assert list(result.model.graph.initializer) == list(model.graph.initializer)
    types = value_types(result.model)
    assert [types[name] for name in ("shape", "batch", "new_shape")] == [TensorProto.INT64] * 3
    assert types["relu"] == HALF
    assert_close(model, result.model, random_inputs(model, {"x": (2, 3, 4)}))


def float16_run(model: onnx.ModelProto, feeds: Feeds) -> dict[str, np.ndarray]:
    """Outputs with float16 computed as float16 (the ONNX reference evaluator).

    onnxruntime's CPU provider runs operators that have no float16 kernel (Mul,
    say) in float32 behind Casts of its own and then drops the Cast pairs, so
    a value beyond float16's range can pass through it unharmed.
    """
    names = [v.name for v in model.graph.output]
    with np.errstate(over="ignore"):
        return dict(zip(names, ReferenceEvaluator(model).run(None, feeds_for(model, feeds)), strict=True))


def test_constant_beyond_float16_range_keeps_its_node() -> None:
    nodes = [node("Mul", ["x", "million"], "big"), node("Mul", ["big", "tiny"], "y"), node("Relu", ["x"], "z")]
    initializers = [tensor("million", np.array(1e6, np.float32)), tensor("tiny", np.array(1e-5, np.float32))]
    model = make_model(nodes, [value("x", [2, 4])], [value("y", [2, 4]), value("z", [2, 4])], initializers)

    static = convert_to_float16(model)
    assert [(k.name, k.op_type) for k in static.kept] == [("big", "Mul")]
    assert "beyond float16's 65504" in static.kept[0].reason
    assert "'million' reaches 1e+06" in static.kept[0].reason
    assert onnx.numpy_helper.to_array(next(t for t in static.model.graph.initializer if t.name == "million")) == 1e6

    # Its output (around 1e6) overflows where a float16 reader would get it: the guard keeps that reader too.
    feeds = random_inputs(model, {"x": (2, 4)})
    result = run_pass(model, calibration=[feeds])
    reasons = {d["name"]: d["reason"] for d in result.details}
    assert set(reasons) == {"big", "y"}
    assert "beyond float16" in reasons["y"]
    types = value_types(result.model)
    assert (types["big"], types["z"]) == (FLOAT, FLOAT)
    assert_close(model, result.model, feeds)
    expected = run_onnxruntime(model, feeds)
    np.testing.assert_allclose(float16_run(result.model, feeds)["y"], expected["y"], rtol=RTOL)


def test_guard_keeps_nodes_whose_activations_overflow() -> None:
    # Constants within range, an activation beyond it: ×1000 then ×100 of inputs around 1 reaches 1.5e5.
    nodes = [node("Mul", ["x", "thousand"], "a"), node("Mul", ["a", "hundred"], "b"), node("Mul", ["b", "small"], "y")]
    initializers = [
        tensor("thousand", np.array(1000, np.float32)),
        tensor("hundred", np.array(100, np.float32)),
        tensor("small", np.array(1e-4, np.float32)),
    ]
    model = make_model(nodes, [value("x", [2, 8])], [value("y", [2, 8])], initializers)
    feeds = random_inputs(model, {"x": (2, 8)})
    assert np.abs(feeds["x"] * 1e5).max() > 65504
    assert not convert_to_float16(model).kept  # no constant is out of range: only running it shows the overflow

    result = run_pass(model, calibration=[feeds])
    reasons = {d["name"]: d["reason"] for d in result.details}
    assert "b" in reasons
    assert "on the calibration inputs, beyond float16" in reasons["b"]
    assert result.stats["kept_by_guard"] == len(reasons)
    assert value_types(result.model)["a"] == HALF
    assert_close(model, result.model, feeds)
    expected = run_onnxruntime(model, feeds)["y"]
    strict = float16_run(result.model, feeds)["y"]
    assert np.all(np.isfinite(strict))
    np.testing.assert_allclose(strict, expected, rtol=RTOL)


def test_uint8_frame_is_cast_once_to_float16(rng: np.random.Generator) -> None:
    nodes = [
        node("Cast", ["frame"], "pixels", to=FLOAT),
        node("Mul", ["pixels", "scale"], "normalized"),
        node("Conv", ["normalized", "w"], "y"),
    ]
    initializers = [
        tensor("scale", np.array(1 / 255, np.float32)),
        tensor("w", rng.normal(size=(2, 3, 1, 1)).astype(np.float32)),
    ]
    model = make_model(
        nodes, [value("frame", [1, 3, 4, 4], TensorProto.UINT8)], [value("y", [1, 2, 4, 4])], initializers
    )
    result = run_pass(model)
    casts = [n for n in result.model.graph.node if n.op_type == "Cast"]
    frame_casts = [n for n in casts if list(n.input) == ["frame"]]
    assert [cast_to(n) for n in frame_casts] == [HALF]
    assert not any(c.input[0] == frame_casts[0].output[0] for c in casts)
    assert op_types(result.model) == ["Cast", "Mul", "Conv", "Cast"]
    frame = np.random.default_rng(0).integers(1, 256, size=(1, 3, 4, 4)).astype(np.uint8)
    assert_close(model, result.model, {"frame": frame})


def test_table_lookup_stays_float32() -> None:
    # Box tables and the like: float16 would only round values the graph reads unchanged.
    table = np.random.default_rng(3).normal(size=(10, 4)).astype(np.float32)
    assert not np.array_equal(table.astype(np.float16).astype(np.float32), table)
    nodes = [node("Gather", ["table", "index"], "y", axis=0), node("Relu", ["x"], "z")]
    model = make_model(
        nodes,
        [value("index", [3], TensorProto.INT64), value("x", [3, 4])],
        [value("y", [3, 4]), value("z", [3, 4])],
        [tensor("table", table)],
    )
    result = run_pass(model)
    assert result.stats["float16_nodes"] == 1
    reasons = {d["name"]: d["reason"] for d in result.details}
    assert list(reasons) == ["y"]
    assert "table lookup" in reasons["y"]
    types = value_types(result.model)
    assert (types["table"], types["y"], types["z/float16"]) == (FLOAT, FLOAT, HALF)
    feeds = random_inputs(model, {"index": (3,), "x": (3, 4)}, seed=1)
    expected, actual = run_onnxruntime(model, feeds), run_onnxruntime(result.model, feeds)
    np.testing.assert_array_equal(actual["y"], expected["y"])
    assert_close(model, result.model, feeds)


def detector_outputs(count: int = 2) -> dict[str, np.ndarray]:
    return {
        "num_detections": np.array(count, np.int64),
        "cells": np.array([[3, 4], [7, 1], [0, 0]], np.int64),
        "boxes": np.array([[1.0, 2.0, 5.0, 6.0], [8.0, 0.5, 9.5, 3.0], [0.0, 0.0, 0.0, 0.0]], np.float32),
        "scores": np.array([0.97, 0.91, 0.0], np.float32),
    }


def test_detections_accept() -> None:
    accept = detections_accept()
    reference = detector_outputs()
    assert accept(reference, detector_outputs()) is None

    fewer = detector_outputs(count=1)
    assert "1 detections instead of 2" in (accept(reference, fewer) or "")

    moved = detector_outputs()
    moved["cells"][1] = [7, 2]
    assert accept(reference, moved) == "detections at other cells"

    boxes = detector_outputs()
    boxes["boxes"][0, 0] += 0.5
    assert accept(reference, boxes) == "other boxes"

    close, far = detector_outputs(), detector_outputs()
    close["scores"][0] += 5e-3
    far["scores"][1] -= 5e-2
    assert accept(reference, close) is None
    assert "scores differing by 0.05" in (accept(reference, far) or "")

    # Rows past the count are padding: they may differ.
    padding = detector_outputs()
    padding["cells"][2], padding["scores"][2] = [5, 5], 0.5
    assert accept(reference, padding) is None


def test_detections_accept_for_classed_detectors() -> None:
    """A YOLO graph's outputs: classes in place of cells, boxes regressed by the network within a tolerance."""
    accept = detections_accept(box_tolerance=0.5)
    reference = {**detector_outputs(), "classes": np.array([3, 0, -1], np.int32)}
    del reference["cells"]

    def changed(**values: np.ndarray) -> dict[str, np.ndarray]:
        return {**{k: v.copy() for k, v in reference.items()}, **values}

    assert accept(reference, changed()) is None
    nudged = changed()
    nudged["boxes"][0] += 0.4
    assert accept(reference, nudged) is None
    nudged["boxes"][1, 2] -= 0.75
    assert "boxes moving by 0.75 (more than 0.5)" in (accept(reference, nudged) or "")
    assert accept(reference, changed(classes=np.array([3, 1, -1], np.int32))) == "detections of other classes"
