"""The naive host-driven deployment of the detector: the baseline the in-graph forms are measured against.

It is the pipeline a reasonable engineer writes first, honest but host-bound:

1. NumPy pre-processing: uint8 HWC → float32 ``/255`` → ``(x − mean) / std``
   → NCHW with a batch axis;
2. per pyramid scale, one :func:`~graphopt_person.grid.resize_bilinear` of
   the frame to ``spec.scaled_frame_shape(scale)`` (skipped at the frame's own
   size, where it is the identity) and one onnxruntime call on the
   dynamic-shape probabilities model;
3. the person probability map ``probabilities[0, :, :, 1]`` back on the host,
   resampled onto the common grid as ``Ry @ P @ Rx.T`` (see
   :func:`~graphopt_person.grid.resample_matrix`), cells the scale's
   windows do not reach set to 0, stacked into the ``(S, Gh, Gw)`` volume;
4. 3D max-pooling NMS and thresholding in NumPy, then the top-K peaks;
5. greedy IoU suppression across scales over those K (:func:`graphopt.nms.greedy_nms`).

The resampling, NMS and top-K steps are small functions of their own so that
the in-graph forms can be checked against exactly the same math.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

from graphopt.backends.onnxruntime import create_session, run_session
from graphopt.detections import Detections
from graphopt.errors import ConfigError
from graphopt.graph import declared_dims, set_dims
from graphopt.model_io import load_model
from graphopt.nms import suppress_overlapping
from graphopt.traffic import BoundaryTraffic
from graphopt.verify import format_dims, graph_inputs

from .grid import grid_boxes, resample_matrix, resize_bilinear
from .spec import DetectorSpec

__all__ = [
    "STAGES",
    "BoundaryTraffic",
    "NaiveDetector",
    "ScaleResampling",
    "check_frame",
    "inferred_output_dims",
    "max_pool3d",
    "nms3d",
    "peaks_to_detections",
    "preprocess_frame",
    "resample_to_grid",
    "scale_resamplings",
    "top_k_cells",
]

logger = logging.getLogger(__name__)

# The stages :meth:`NaiveDetector.detect_timed` reports, in pipeline order.
STAGES = ("preprocess", "resize", "inference", "resample", "nms")


@dataclass(frozen=True)
class ScaleResampling:
    """How one pyramid scale's score map lands on the common grid.

    Attributes:
        scale: the pyramid scale.
        frame_shape: ``(height, width)`` of the frame resized for the scale.
        map_shape: ``(rows, cols)`` of the network's score map there.
        weights_y: ``(Gh, rows)`` float32 interpolation weights along y.
        weights_x: ``(Gw, cols)`` float32 interpolation weights along x.
        valid: ``(Gh, Gw)`` cells whose window centre the scale reaches on both axes.
    """

    scale: float
    frame_shape: tuple[int, int]
    map_shape: tuple[int, int]
    weights_y: np.ndarray
    weights_x: np.ndarray
    valid: np.ndarray


def scale_resamplings(spec: DetectorSpec) -> tuple[ScaleResampling, ...]:
    """The resampling of every pyramid scale of ``spec``, in the spec's scale order."""
    result = []
    for scale in spec.scales:
        weights_y, valid_y = resample_matrix(spec, scale, "y")
        weights_x, valid_x = resample_matrix(spec, scale, "x")
        result.append(
            ScaleResampling(
                scale=scale,
                frame_shape=spec.scaled_frame_shape(scale),
                map_shape=spec.score_map_shape(scale),
                weights_y=weights_y,
                weights_x=weights_x,
                valid=valid_y[:, None] & valid_x[None, :],
            )
        )
    return tuple(result)


def resample_to_grid(score_map: np.ndarray, resampling: ScaleResampling) -> np.ndarray:
    """One scale's ``(rows, cols)`` score map on the common ``(Gh, Gw)`` grid, 0 where the scale has no window."""
    grid = resampling.weights_y @ np.asarray(score_map, dtype=np.float32) @ resampling.weights_x.T
    return np.where(resampling.valid, grid, np.float32(0)).astype(np.float32, copy=False)


def max_pool3d(volume: np.ndarray, window: tuple[int, int, int]) -> np.ndarray:
    """Max over the ``window`` centred on every cell ("same" size, −inf padding, stride 1).

    A box maximum is separable, so it is taken one axis at a time.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"the score volume must be 3D (scales, rows, cols), got shape {volume.shape}")
    if len(window) != 3 or any(int(k) < 1 or int(k) % 2 == 0 for k in window):
        raise ValueError(f"the NMS window must be three odd positive sizes, got {tuple(window)}")
    pooled = volume if np.issubdtype(volume.dtype, np.floating) else volume.astype(np.float64)
    for axis, size in enumerate(int(k) for k in window):
        if size == 1:
            continue
        pad = [(0, 0)] * 3
        pad[axis] = (size // 2, size // 2)
        padded = np.pad(pooled, pad, constant_values=-np.inf)
        pooled = np.lib.stride_tricks.sliding_window_view(padded, size, axis=axis).max(axis=-1)
    return pooled


def nms3d(volume: np.ndarray, window: tuple[int, int, int], threshold: float) -> np.ndarray:
    """Boolean mask of the peaks of ``volume``: cells equal to the max of their window and ≥ ``threshold``."""
    volume = np.asarray(volume)
    return (volume == max_pool3d(volume, window)) & (volume >= threshold)


def top_k_cells(volume: np.ndarray, peaks: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of at most ``k`` peak cells by descending value; ties go to the lower flat index."""
    flat = np.flatnonzero(peaks)
    order = np.argsort(-np.asarray(volume).reshape(-1)[flat], kind="stable")  # flat is ascending already
    return flat[order[: max(int(k), 0)]]


def peaks_to_detections(volume: np.ndarray, peaks: np.ndarray, boxes: np.ndarray, max_detections: int) -> Detections:
    """The detections at the peak cells, best first, at most ``max_detections``.

    Args:
        volume: ``(S, Gh, Gw)`` scores.
        peaks: ``(S, Gh, Gw)`` boolean peak mask (see :func:`nms3d`).
        boxes: ``(S, Gh, Gw, 4)`` boxes of the cells (see :func:`~graphopt_person.grid.grid_boxes`).
        max_detections: how many detections at most.
    """
    volume = np.asarray(volume)
    if peaks.shape != volume.shape or boxes.shape != (*volume.shape, 4):
        raise ValueError(
            f"volume {volume.shape}, peaks {peaks.shape} and boxes {boxes.shape} do not describe the same grid"
        )
    cells = top_k_cells(volume, peaks, max_detections)
    return Detections(
        boxes=boxes.reshape(-1, 4)[cells].astype(np.float32),
        scores=volume.reshape(-1)[cells].astype(np.float32),
        cells=np.stack(np.unravel_index(cells, volume.shape), axis=-1).astype(np.int64).reshape(-1, 3),
    )


def check_frame(frame: object, spec: DetectorSpec) -> np.ndarray:
    """``frame`` as an array if it is a uint8 ``(H, W, 3)`` image of the spec's size, else :class:`ValueError`."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"a frame must be a NumPy array, got {type(frame).__name__}")
    expected = (spec.frame_height, spec.frame_width, 3)
    if frame.shape != expected:
        raise ValueError(
            f"a frame must be a {spec.frame_width}x{spec.frame_height} RGB image of shape {expected}, "
            f"got shape {frame.shape}"
        )
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8, got {frame.dtype}")
    return frame


def preprocess_frame(frame: np.ndarray, spec: DetectorSpec) -> np.ndarray:
    """A uint8 ``(H, W, 3)`` frame as the network's ``(1, 3, H, W)`` float32 input: ``(x / 255 − mean) / std``."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    image: np.ndarray = (frame.astype(np.float32) / np.float32(255) - mean) / std
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None])


def inferred_output_dims(model: onnx.ModelProto, height: int, width: int) -> list[int | str | None] | None:
    """The dimensions of the model's first output on a ``1×3×height×width`` input.

    From ONNX shape inference with data propagation (so that Shape → Reshape
    chains resolve); ``None`` when inference fails or cannot tell the rank.
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inputs = graph_inputs(probe)
    if not inputs or not probe.graph.output:
        return None
    set_dims(inputs[0], (1, 3, height, width))
    probe.graph.output[0].type.tensor_type.ClearField("shape")  # the declared symbols would stay
    del probe.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as error:
        logger.debug("shape inference failed on the probe model: %s", error)
        return None
    return declared_dims(inferred.graph.output[0])


class NaiveDetector:
    """The naive host-driven detector: NumPy around one onnxruntime call per pyramid scale.

    Args:
        model: the dynamic-shape probabilities model (see
            :func:`~graphopt_person.network.build_naive_model`) or its file.
        spec: what the detector computes.
        providers: onnxruntime execution providers; default CPU.
        threshold: score threshold in (0, 1]; default ``spec.score_threshold``.
        max_detections: detections at most per frame; default ``spec.max_detections``.
        session: a prepared onnxruntime session for ``model`` (made with other
            session options, e.g. on a file onnxruntime optimized offline);
            used instead of creating one, and ``providers`` is then ignored.

    Attributes:
        last_traffic: the :class:`BoundaryTraffic` of the last frame processed.
        last_candidates: the last frame's top-K peaks before IoU suppression.

    Raises:
        ModelLoadError: the model file cannot be loaded.
        ConfigError: the model's input is not ``[N, 3, H, W]`` with dynamic
            height and width, or its score map at some scale does not have the
            spec's shape (its window or stride differs from the spec's).
        RuntimeRunError: onnxruntime cannot load the model.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | onnx.ModelProto,
        spec: DetectorSpec,
        *,
        providers: Sequence[str] | None = None,
        threshold: float | None = None,
        max_detections: int | None = None,
        session: onnxruntime.InferenceSession | None = None,
    ) -> None:
        self.model = model if isinstance(model, onnx.ModelProto) else load_model(Path(model))
        self.spec = spec
        self.threshold = spec.score_threshold if threshold is None else float(threshold)
        self.max_detections = spec.max_detections if max_detections is None else int(max_detections)
        if not (math.isfinite(self.threshold) and 0 < self.threshold <= 1):
            raise ValueError(f"threshold must be a probability in (0, 1], got {threshold}")
        if self.max_detections < 1:
            raise ValueError(f"max_detections must be at least 1, got {max_detections}")
        self.resamplings = scale_resamplings(spec)
        self.boxes = grid_boxes(spec)
        self._check_model()
        self.session = session if session is not None else create_session(
            self.model, providers=tuple(providers or ("CPUExecutionProvider",)), what="the naive detector's model"
        )
        self._input_name = self.session.get_inputs()[0].name
        self.last_traffic = BoundaryTraffic()
        self.last_candidates = Detections.empty()

    def _check_model(self) -> None:
        inputs = graph_inputs(self.model)
        dims = declared_dims(inputs[0]) if len(inputs) == 1 else None
        if dims is None or len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != 3):
            shown = "none" if dims is None else format_dims(dims)
            raise ConfigError(f"the naive detector needs a model with one [N, 3, H, W] image input, got {shown}")
        for resampling in self.resamplings:
            height, width = resampling.frame_shape
            if (isinstance(dims[2], int) and dims[2] != height) or (isinstance(dims[3], int) and dims[3] != width):
                raise ConfigError(
                    f"the model's input is fixed at {dims[2]}x{dims[3]}, but the naive detector feeds it "
                    f"{height}x{width} at scale {resampling.scale}; it needs dynamic height and width"
                )
            found = inferred_output_dims(self.model, height, width)
            if found is None:
                continue  # checked on the first run instead
            if len(found) != 4 or (isinstance(found[3], int) and found[3] != 2):
                raise ConfigError(
                    f"the model's output is {format_dims(found)} at scale {resampling.scale}, "
                    "not probabilities of shape [1, rows, cols, 2]"
                )
            if isinstance(found[1], int) and isinstance(found[2], int):
                self._check_map_shape(resampling, (found[1], found[2]))

    def _check_map_shape(self, resampling: ScaleResampling, found: tuple[int, ...]) -> None:
        if tuple(found) != resampling.map_shape:
            spec = self.spec
            raise ConfigError(
                f"the model's score map at scale {resampling.scale} is {format_dims(found)}, but the spec "
                f"(window {spec.window_width}x{spec.window_height}, stride {spec.stride}) expects "
                f"{format_dims(resampling.map_shape)}; the model's window or stride does not fit the spec"
            )

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """The frame as the network's ``(1, 3, H, W)`` float32 input (after checking it)."""
        return preprocess_frame(check_frame(frame, self.spec), self.spec)

    def _score_maps(self, frame: np.ndarray, times: dict[str, float]) -> list[np.ndarray]:
        start = time.perf_counter()
        image = self.preprocess(frame)
        times["preprocess"] += time.perf_counter() - start
        maps: list[np.ndarray] = []
        calls = bytes_in = bytes_out = 0
        for resampling in self.resamplings:
            start = time.perf_counter()
            scaled = resize_bilinear(image, *resampling.frame_shape)
            times["resize"] += time.perf_counter() - start

            start = time.perf_counter()
            outputs = run_session(self.session, {self._input_name: scaled}, what="the naive detector's model")
            times["inference"] += time.perf_counter() - start
            calls += 1
            bytes_in += scaled.nbytes
            bytes_out += sum(value.nbytes for value in outputs.values())

            probabilities = next(iter(outputs.values()))
            if probabilities.ndim != 4 or probabilities.shape[0] != 1 or probabilities.shape[3] != 2:
                raise ConfigError(
                    f"the model returned {probabilities.shape}, not probabilities of shape [1, rows, cols, 2]"
                )
            self._check_map_shape(resampling, probabilities.shape[1:3])
            maps.append(probabilities[0, :, :, 1])
        self.last_traffic = BoundaryTraffic(calls=calls, bytes_in=bytes_in, bytes_out=bytes_out)
        return maps

    def _volume(self, maps: list[np.ndarray], times: dict[str, float]) -> np.ndarray:
        start = time.perf_counter()
        volume = np.stack(
            [
                resample_to_grid(score_map, resampling)
                for score_map, resampling in zip(maps, self.resamplings, strict=True)
            ]
        )
        times["resample"] += time.perf_counter() - start
        return volume

    def _detect(self, volume: np.ndarray, times: dict[str, float]) -> Detections:
        start = time.perf_counter()
        peaks = nms3d(volume, self.spec.nms_window, self.threshold)
        self.last_candidates = peaks_to_detections(volume, peaks, self.boxes, self.max_detections)
        detections = self.last_candidates
        if self.spec.nms_iou_threshold < 1:  # IoU > 1 never holds: at 1 the suppression is off
            detections = suppress_overlapping(detections, self.spec.nms_iou_threshold,
                                              method=self.spec.nms_iou_method)  # type: ignore[arg-type]
        times["nms"] += time.perf_counter() - start
        return detections

    def score_maps(self, frame: np.ndarray) -> list[np.ndarray]:
        """The person probability map ``(rows, cols)`` of every scale, in the spec's scale order."""
        return self._score_maps(frame, dict.fromkeys(STAGES, 0.0))

    def score_volume(self, frame: np.ndarray) -> np.ndarray:
        """The ``(S, Gh, Gw)`` float32 probability volume on the common grid (0 where a scale has no window)."""
        times = dict.fromkeys(STAGES, 0.0)
        return self._volume(self._score_maps(frame, times), times)

    def detect(self, frame: np.ndarray) -> Detections:
        """The detections of one uint8 ``(H, W, 3)`` frame, best first."""
        return self.detect_timed(frame)[0]

    def detect_timed(self, frame: np.ndarray) -> tuple[Detections, dict[str, float]]:
        """:meth:`detect` and the seconds spent in each of :data:`STAGES`."""
        times = dict.fromkeys(STAGES, 0.0)
        volume = self._volume(self._score_maps(frame, times), times)
        return self._detect(volume, times), times
