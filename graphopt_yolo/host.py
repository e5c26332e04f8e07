"""The host reference pipeline: NumPy around an onnxruntime call, as a YOLO client runs it.

1. the uint8 RGB frame as float32, channels swapped for a BGR network,
   ``1×3×H×W``; resized with the graph's own ``Resize`` semantics
   (:func:`graphopt.resampling.resize_frame`: linear, half-pixel, no
   antialiasing — not cv2's uint8 rounding nor Pillow's antialiasing, so
   that the fused graph can match it), padded with ``pad_value``;
   ``(x / scale − mean) / std``;
2. the network;
   with row cropping, only the band of rows the network reads;
3. decode (:func:`graphopt_yolo.decode.decode`), score threshold, the best
   ``pre_nms_top_k`` candidates (ties: the earlier prediction first, as
   onnxruntime's ``TopK``), NMS (greedy, class-aware or not; Fast-NMS when
   the config asks for it), the best ``max_detections`` kept;
4. boxes mapped back to frame pixels and clipped to the frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnx

from graphopt.backends.onnxruntime import create_session, run_session
from graphopt.detections import Detections
from graphopt.errors import ConfigError
from graphopt.nms import fast_nms, greedy_nms
from graphopt.resampling import resize_frame
from graphopt.workloads import FrameDetector

from .config import YoloConfig
from .decode import decode, placement, score_form
from .layout import Layout, find_layout

__all__ = ["CPU", "HostDetector", "check_frame", "detector_for_model", "to_frame"]

logger = logging.getLogger(__name__)

CPU = ("CPUExecutionProvider",)


def check_frame(frame: np.ndarray, config: YoloConfig) -> None:
    """Raises ConfigError unless ``frame`` is a uint8 RGB frame of the config's size."""
    expected = (config.frame_height, config.frame_width, 3)
    if frame.dtype != np.uint8 or frame.shape != expected:
        raise ConfigError(f"a frame must be uint8 {expected}, got {frame.dtype} {frame.shape}")


def to_frame(boxes: np.ndarray, config: YoloConfig, layout: Layout) -> np.ndarray:
    """Boxes in input pixels mapped to frame pixels and clipped to the frame (the graph's ops, in its order)."""
    place = placement(config, layout.input_hw)
    mapped = (boxes - place.box_offset(layout.row_offset)) / place.box_gain()
    limit = np.array([config.frame_width, config.frame_height] * 2, np.float32)
    return np.minimum(np.maximum(mapped, np.float32(0)), limit)


class HostDetector:
    """The exported network between NumPy stages: frame in, detections out.

    With ``rows``, the network reads only that band of the letterboxed input's rows (row cropping,
    :mod:`graphopt_yolo.crop`).
    """

    def __init__(self, model: onnx.ModelProto, config: YoloConfig, *, threshold: float | None = None,
                 providers: Sequence[str] = CPU, rows: tuple[int, int] | None = None) -> None:
        from .crop import crop_network

        self.config = config
        self.layout = find_layout(model, config).cropped(rows)
        self.threshold = config.score_threshold if threshold is None else threshold
        self.form = score_form(self.layout, self.threshold)
        self.place = placement(config, self.layout.input_hw)
        self.session = create_session(crop_network(model, self.layout), providers=providers,
                                      what="the YOLO network")

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """The network's ``1×3×h×w`` float32 input for a frame."""
        check_frame(frame, self.config)
        config = self.config
        x = frame.astype(np.float32)
        if config.channels == "bgr":
            x = x[:, :, ::-1]
        x = resize_frame(np.ascontiguousarray(x.transpose(2, 0, 1))[None], *self.place.resized_hw)
        top, left, bottom, right = self.place.pads
        if any(self.place.pads):
            x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=config.pad_value)
        if self.layout.rows is not None:
            x = x[:, :, self.layout.rows[0] : self.layout.rows[1]]
        if config.scale != 1:
            x = x / np.float32(config.scale)
        mean, std = (np.asarray(v, np.float32).reshape(1, 3, 1, 1) for v in (config.mean, config.std))
        if np.any(mean != 0):
            x = x - mean
        if np.any(std != 1):
            x = x / std
        return x.astype(np.float32)

    def candidates(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The best ``pre_nms_top_k`` predictions: boxes (input pixels), rank, classes, and which pass the threshold."""
        output = next(iter(run_session(self.session, {self.layout.input: self.preprocess(frame)}).values()))
        boxes, rank, labels = decode(output, self.layout)
        passing = rank >= self.form.threshold
        masked = np.where(passing, rank, np.float32(-np.inf))
        top = np.argsort(-masked, kind="stable")[: self.config.pre_nms_top_k]
        return boxes[top], rank[top], labels[top], passing[top]

    def detect(self, frame: np.ndarray) -> Detections:
        boxes, rank, labels, valid = self.candidates(frame)
        config = self.config
        classes = None if config.class_agnostic else labels
        if config.nms == "static" and config.nms_method == "fast":
            keep = fast_nms(boxes, config.iou_threshold, valid, classes=classes)
        else:
            keep = greedy_nms(boxes, config.iou_threshold, valid, classes=classes)
        kept = np.flatnonzero(keep)[: config.max_detections]
        return Detections(
            boxes=to_frame(boxes[kept], config, self.layout),
            scores=self.form.probability(rank[kept]),
            cells=np.full((kept.size, 3), -1, np.int64),
            classes=labels[kept].astype(np.int64),
        )


def detector_for_model(config: YoloConfig, model: onnx.ModelProto, *, threshold: float | None,
                       source: str) -> FrameDetector:
    """The host pipeline for an exported network, the fused graph for a fused one."""
    from graphopt.graph import takes_a_frame

    if not takes_a_frame(model):
        return HostDetector(model, config, threshold=threshold)
    if threshold is not None:
        raise ConfigError(f"{source} is a fused detector, whose score threshold is part of the graph; "
                          "set score_threshold in the config before 'graphopt optimize' instead of --threshold")
    from .fused import FusedDetector

    return FusedDetector(model, config)
