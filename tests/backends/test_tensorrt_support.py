"""The static check against TensorRT's ONNX support matrix: every refused node, by node, with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.backends.tensorrt_support import DEFAULT_TARGET, MATRICES, onnx_matrix, unsupported_by_tensorrt
from graphopt.errors import GraphoptError
from tests.conftest import make_model, tensor, value

DETECTOR = Path(__file__).parents[2] / "examples" / "02_person_detector"


def _one(node: onnx.NodeProto, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
         initializers: list[onnx.TensorProto] | None = None, **kwargs: object) -> list[str]:
    model = make_model([node], inputs, outputs, initializers or [], **kwargs)  # type: ignore[arg-type]
    return [str(finding) for finding in unsupported_by_tensorrt(model)]


def test_a_plain_cnn_passes() -> None:
    weight = tensor("w", np.full((4, 3, 3, 3), 0.1, np.float32))
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("MaxPool", ["r"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2])],
        [value("x", [1, 3, 8, 8])], [value("y", [1, 4, 4, 4])], [weight])
    assert unsupported_by_tensorrt(model) == []


def test_unsupported_operator_is_named_with_its_node() -> None:
    findings = _one(helper.make_node("Det", ["x"], ["y"], name="determinant"), [value("x", [3, 3])], [value("y", [])])
    assert findings == ["Det node 'determinant' (node 0): not supported by TensorRT 10.3's ONNX parser"]


def test_custom_domain_needs_a_plugin() -> None:
    node = helper.make_node("FusedConv", ["x"], ["y"], name="fc", domain="com.microsoft")
    model = make_model([node], [value("x", [1, 3])], [value("y", [1, 3])], check=False)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    (finding,) = unsupported_by_tensorrt(model)
    assert finding.index == 0 and finding.op_type == "FusedConv" and "custom domain 'com.microsoft'" in finding.reason
    assert "plugin" in finding.reason


def test_model_local_function_is_not_a_custom_operator() -> None:
    body = [helper.make_node("Relu", ["a"], ["b"])]
    function = helper.make_function("local", "MyRelu", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    node = helper.make_node("MyRelu", ["x"], ["y"], name="mine", domain="local")
    model = make_model([node], [value("x", [2])], [value("y", [2])], check=False)
    model.opset_import.append(helper.make_opsetid("local", 1))
    model.functions.append(function)
    assert unsupported_by_tensorrt(model) == []


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"mode": "cubic"}, "mode 'cubic' (TensorRT supports nearest, linear)"),
        ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"},
         "coordinate_transformation_mode 'tf_crop_and_resize'"),
        ({"mode": "nearest", "antialias": 1}, "antialias"),
        ({"mode": "linear", "keep_aspect_ratio_policy": "not_larger"}, "keep_aspect_ratio_policy 'not_larger'"),
    ],
)
def test_resize_modes(attributes: dict[str, object], expected: str) -> None:
    sizes = tensor("sizes", np.array([1, 3, 8, 8], np.int64))
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="up", **attributes)
    findings = _one(node, [value("x", [1, 3, 4, 4])], [value("y", [1, 3, 8, 8])], [sizes], opset=19, check=False)
    assert len(findings) == 1 and findings[0].startswith("Resize node 'up' (node 0): ") and expected in findings[0]


def test_linear_half_pixel_resize_passes() -> None:
    sizes = tensor("sizes", np.array([1, 3, 8, 8], np.int64))
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="up", mode="linear",
                            coordinate_transformation_mode="half_pixel")
    assert _one(node, [value("x", [1, 3, 4, 4])], [value("y", [1, 3, 8, 8])], [sizes]) == []


def test_pooling_restrictions() -> None:
    one_d = _one(helper.make_node("MaxPool", ["x"], ["y"], name="p1", kernel_shape=[2]),
                 [value("x", [1, 3, 8])], [value("y", [1, 3, 7])])
    assert one_d == ["MaxPool node 'p1' (node 0): 1D pooling (TensorRT pools in 2D or 3D only)"]
    dilated = _one(helper.make_node("MaxPool", ["x"], ["y"], name="p2", kernel_shape=[2, 2], dilations=[2, 2]),
                   [value("x", [1, 3, 8, 8])], [value("y", [1, 3, 6, 6])])
    assert dilated == ["MaxPool node 'p2' (node 0): dilations other than 1"]
    indices = _one(helper.make_node("MaxPool", ["x"], ["y", "i"], name="p3", kernel_shape=[2, 2]),
                   [value("x", [1, 3, 8, 8])], [value("y", [1, 3, 7, 7]), value("i", [1, 3, 7, 7], TensorProto.INT64)])
    assert indices == ["MaxPool node 'p3' (node 0): the Indices output"]


def test_topk_sorted_and_k() -> None:
    k = tensor("k", np.array([4000], np.int64))
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], name="top", sorted=0)
    (finding,) = _one(node, [value("x", [1, 5000])],
                      [value("v", [1, 4000]), value("i", [1, 4000], TensorProto.INT64)], [k])
    assert "sorted=0" in finding and "K=4000 (TensorRT's TopK takes K below 3840)" in finding


def test_reduction_axes_computed_at_run_time() -> None:
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="sum")
    (finding,) = _one(node, [value("x", [2, 3]), value("axes", [1], TensorProto.INT64)], [value("y", [2])],
                      check=False)
    assert finding == ("ReduceSum node 'sum' (node 0): its axes input 'axes' is computed at run time "
                       "(TensorRT needs a build-time constant)")
    constant_axes = tensor("axes", np.array([1], np.int64))
    assert _one(node, [value("x", [2, 3])], [value("y", [2])], [constant_axes], check=False) == []


def test_types_the_operator_does_not_take() -> None:
    integer = _one(helper.make_node("Relu", ["x"], ["y"], name="r"), [value("x", [4], TensorProto.INT32)],
                   [value("y", [4], TensorProto.INT32)])
    assert integer == []  # Relu takes int32 in TensorRT 10
    logical = _one(helper.make_node("Not", ["x"], ["y"], name="n"), [value("x", [4], TensorProto.BOOL)],
                   [value("y", [4], TensorProto.BOOL)])
    assert logical == []
    quantized = _one(helper.make_node("Relu", ["x"], ["y"], name="r8"), [value("x", [4], TensorProto.INT8)],
                     [value("y", [4], TensorProto.INT8)])
    assert quantized == ["Relu node 'r8' (node 0): input 'x' is int8 (TensorRT's Relu takes bfloat16, float, float16, "
                         "int32, int64)"]


def test_uint8_only_at_the_interface_and_into_a_cast() -> None:
    transpose_first = make_model(
        [helper.make_node("Transpose", ["frame"], ["t"], name="hwc_to_chw", perm=[2, 0, 1]),
         helper.make_node("Cast", ["t"], ["y"], name="to_float", to=TensorProto.FLOAT)],
        [value("frame", [4, 6, 3], TensorProto.UINT8)], [value("y", [3, 4, 6])])
    (finding,) = unsupported_by_tensorrt(transpose_first)
    assert finding.name == "hwc_to_chw" and finding.index == 0
    assert "input 'frame' is uint8" in finding.reason and "output 't' is uint8 inside the graph" in finding.reason
    cast_first = make_model(
        [helper.make_node("Cast", ["frame"], ["f"], name="to_float", to=TensorProto.FLOAT),
         helper.make_node("Transpose", ["f"], ["y"], name="hwc_to_chw", perm=[2, 0, 1])],
        [value("frame", [4, 6, 3], TensorProto.UINT8)], [value("y", [3, 4, 6])])
    assert unsupported_by_tensorrt(cast_first) == []


def test_opset_outside_the_parsers_range() -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    findings = _one(node, [value("x", [2])], [value("y", [2])], opset=8)
    assert findings == ["the graph's opset 8 is outside the 9 to 20 that TensorRT 10.3's ONNX parser reads"]


@pytest.mark.parametrize(("target", "accepted"), [("10.0.1", False), ("10.3.0", False), ("10.14.1", False),
                                                  ("10.15.1", True), ("10.16.1.11", True), ("11.4.0", True)])
def test_opset_21_is_read_from_10_15_on(target: str, accepted: bool) -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", [2])], [value("y", [2])], opset=21)
    findings = [str(f) for f in unsupported_by_tensorrt(model, target=target)]
    assert findings == ([] if accepted else
                        [f"the graph's opset 21 is outside the 9 to 20 that TensorRT {onnx_matrix(target).tensorrt}'s "
                         "ONNX parser reads"])


def test_operators_per_version() -> None:
    """STFT arrived in the 10.5 parser, DeformConv in 10.1, Swish in 11.0 (onnx-tensorrt's changelog, 11.0 notes)."""
    stft = make_model(
        [helper.make_node("STFT", ["signal", "step"], ["y"], name="stft")],
        [value("signal", [1, 64, 1])], [value("y", [1, 61, 4, 2])], [tensor("step", np.array(1, np.int64))],
        opset=17, check=False)
    assert [str(f) for f in unsupported_by_tensorrt(stft, target="10.3")] == [
        "STFT node 'stft' (node 0): not supported by TensorRT 10.3's ONNX parser"]
    assert unsupported_by_tensorrt(stft, target="10.15") == unsupported_by_tensorrt(stft, target="11.0") == []
    assert "DeformConv" not in onnx_matrix("10.0.1").supported and "DeformConv" in onnx_matrix("10.3.0").supported
    assert "Swish" in onnx_matrix("11.0.0").supported and "Swish" not in onnx_matrix("10.16.1").supported


@pytest.mark.parametrize(("version", "matrix"), [("10.0.1", "10.0"), ("10.2", "10.0"), ("10.3.0", "10.3"),
                                                 ("10.8.0.43", "10.3"), ("10.15.1.29", "10.15"),
                                                 ("10.16.1.11", "10.15"), ("11.0.0.114", "11.0"), ("11.4", "11.0")])
def test_the_matrix_of_a_version_is_the_newest_not_newer(version: str, matrix: str) -> None:
    assert onnx_matrix(version).tensorrt == matrix
    assert DEFAULT_TARGET == "10.3" and MATRICES == ("10.0", "10.3", "10.15", "11.0")


@pytest.mark.parametrize(("version", "message"), [
    ("9.3.0", "TensorRT 9.3.0 is not 10.x or 11.x, the versions graphopt's TensorRT backend supports"),
    ("12.0", "TensorRT 12.0 is not 10.x or 11.x, the versions graphopt's TensorRT backend supports"),
    ("jetson", "'jetson' is not a TensorRT version (e.g. 10.3 or 11.0.0)"),
])
def test_other_versions_are_refused_in_one_sentence(version: str, message: str) -> None:
    with pytest.raises(GraphoptError) as caught:
        onnx_matrix(version)
    assert str(caught.value) == message


def test_the_matrices_are_the_documents() -> None:
    """Spot checks against onnx-tensorrt's operators.md of each version (the JSON is written by a script)."""
    assert [onnx_matrix(v).opsets for v in MATRICES] == [(9, 20), (9, 20), (9, 24), (9, 24)]
    assert [len(onnx_matrix(v).supported) for v in MATRICES] == [149, 150, 158, 159]
    assert onnx_matrix("10.3").supported["Pow"] == {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}
    assert TensorProto.INT32 in onnx_matrix("10.15").supported["Pow"]
    assert "Split" in onnx_matrix("10.0").supported and TensorProto.BOOL in onnx_matrix("10.0").supported["Split"]


def test_every_finding_is_listed_in_graph_order() -> None:
    model = make_model(
        [helper.make_node("Relu", ["x"], ["a"], name="fine"),
         helper.make_node("Det", ["a"], ["b"], name="first"),
         helper.make_node("Unique", ["x"], ["c"], name="second")],
        [value("x", [3, 3])], [value("b", []), value("c", [9])], check=False)
    assert [(f.index, f.name) for f in unsupported_by_tensorrt(model)] == [(1, "first"), (2, "second")]


@pytest.mark.parametrize("fp16", [False, True])
def test_the_optimized_detector_passes(fp16: bool) -> None:
    """The default pipeline's detector, in float32 and float16 (the frame is cast before it is transposed)."""
    from graphopt import optimize

    network = onnx.load(str(DETECTOR / "model.onnx"))
    optimized, _ = optimize(network, detector=DETECTOR / "detector.toml", fp16=fp16)
    assert optimized.graph.node[0].op_type == "Cast" and optimized.graph.node[0].input[0] == "frame"
    assert unsupported_by_tensorrt(optimized) == []
