"""The host side of the graph's Resize: both NumPy forms against onnxruntime's Resize (linear, half-pixel)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

from graphopt.resampling import resize_bilinear, resize_frame


def _onnxruntime_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                            coordinate_transformation_mode="half_pixel")
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, image.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 3, height, width])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what older onnxruntime builds (Python 3.10's) read
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": image})[0]


@pytest.mark.parametrize(("source", "target"), [((480, 640), (240, 320)), ((480, 640), (312, 416)),
                                                ((375, 500), (240, 320)), ((50, 60), (97, 131))])
def test_both_forms_match_onnxruntime(source: tuple[int, int], target: tuple[int, int]) -> None:
    image = np.random.default_rng(0).integers(0, 256, (1, 3, *source)).astype(np.float32)
    expected = _onnxruntime_resize(image, *target)
    found = resize_frame(image, *target)
    assert found.shape == expected.shape == (1, 3, *target) and found.dtype == np.float32
    if target[0] < source[0]:  # shrinking a frame to a network's input: bit for bit
        np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(found, expected, atol=1e-3)
    np.testing.assert_allclose(resize_bilinear(image, *target), expected, atol=0.05)


def test_at_its_own_size_the_image_is_returned() -> None:
    image = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    assert resize_frame(image, 3, 4) is image
