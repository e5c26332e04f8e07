"""The two real YOLO-family exports of the benchmark set, their client code as configs, and tiny exports in code."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt_yolo.config import YoloConfig
from graphopt_yolo.fused import FusedDetector, build_fused_model
from graphopt_yolo.fusion import compare
from graphopt_yolo.host import HostDetector
from graphopt_yolo.layout import grid_cells

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import model_set

#: NudeNet's client (nudenet.py): the picture padded with black at the bottom/right, RGB, /255, 320×320,
#: cv2.dnn.NMSBoxes (class-agnostic) at score 0.25, IoU 0.45; photographs of faces.
NUDENET = YoloConfig(frame_width=640, frame_height=480, input_size=(320, 320), pad="top-left", pad_value=0,
                     score_threshold=0.25, iou_threshold=0.45, class_agnostic=True, max_detections=20,
                     pre_nms_top_k=40, domain="photos")
#: ddddocr's client (DetectionEngine.get_bbox): BGR, top-left letterbox with 114, raw 0–255 pixels, the
#: grid/stride decode on the host, obj·cls, class-agnostic NMS at 0.45, score above 0.1;
#: captcha-like text.
DDDDOCR = YoloConfig(frame_width=640, frame_height=480, pad="top-left", channels="bgr", scale=1.0, score_threshold=0.1,
                     iou_threshold=0.45, class_agnostic=True, max_detections=30, pre_nms_top_k=60,
                     domain="text")


def _real(name: str) -> onnx.ModelProto:
    entry = next(e for e in model_set.load_manifest() if e.name == name)
    return onnx.load(str(model_set.fetch(entry)))  # a failed download fails the test, as in test_model_set.py


@pytest.fixture(scope="session")
def nudenet() -> onnx.ModelProto:
    """NudeNet's 320n: Ultralytics YOLOv8n, [1, 22, N] (18 classes), dynamic input."""
    return _real("yolov8n")


@pytest.fixture(scope="session")
def ddddocr() -> onnx.ModelProto:
    """ddddocr's common_det: YOLOX, [1, 3549, 6] (one class), static 416×416, no decode in the graph."""
    return _real("yolox")


def tiny_yolo(*, anchor_free: bool, classes: int = 3, size: int = 64, seed: int = 0,
              output_shape: tuple[int, ...] | None = None) -> onnx.ModelProto:
    """A YOLO-shaped export of logits (no Sigmoid): the frame's mean colour moves fixed random predictions.

    ``anchor_free``: ``[1, 4+C, N]`` with decoded ``(cx, cy, w, h)``; else ``[1, N, 5+C]`` raw YOLOX
    ``(tx, ty, tw, th)`` with objectness. ``output_shape`` overrides the shape (a layout no family has).
    """
    rng = np.random.default_rng(seed)
    n = grid_cells(size, size)
    width = 4 + classes if anchor_free else 5 + classes
    table = np.empty((n, width), np.float32)
    if anchor_free:
        table[:, :2] = rng.uniform(4, size - 4, (n, 2))
        table[:, 2:4] = rng.uniform(6, 24, (n, 2))
    else:
        table[:, :2] = rng.uniform(-0.5, 0.5, (n, 2))
        table[:, 2:4] = rng.uniform(0.3, 1.2, (n, 2))
    table[:, 4:] = rng.normal(-2.0, 2.5, (n, width - 4))
    bias = table.T[None] if anchor_free else table[None]
    shape = output_shape or bias.shape
    bias = rng.normal(0, 1, shape).astype(np.float32) if output_shape else bias
    weight = rng.normal(0, 0.5, (3, int(np.prod(shape)))).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weight"], ["moved"]),
        helper.make_node("Reshape", ["moved", "out_shape"], ["shaped"]),
        helper.make_node("Add", ["shaped", "bias"], ["output"]),
    ]
    inits = [numpy_helper.from_array(np.array([1, 3], np.int64), "flat_shape"),
             numpy_helper.from_array(weight, "weight"),
             numpy_helper.from_array(np.array(shape, np.int64), "out_shape"),
             numpy_helper.from_array(bias.astype(np.float32), "bias")]
    graph = helper.make_graph(nodes, "tiny_yolo", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                                  [1, 3, size, size])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def agree(model: onnx.ModelProto, config: YoloConfig, frames: list[tuple[str, np.ndarray]]) -> list[int]:
    """Detections per frame, after checking that the fused graph finds what the host pipeline finds."""
    host = HostDetector(model, config)
    fused = FusedDetector(build_fused_model(model, config, host.layout), config)
    counts = []
    for name, frame in frames:
        ours, theirs = fused.detect(frame), host.detect(frame)
        compare(ours, theirs, name)  # same count and classes, boxes within 0.5 px, scores within 1e-4
        counts.append(len(ours))
    return counts
