"""The detector and camera descriptions, and the TOML file they are loaded from.

A :class:`DetectorSpec` says what the sliding-window detector computes: the
frame it takes, the window its network classifies, the network's stride, the
pyramid scales it runs at, the common grid its score maps are resampled to,
the 3D max-pooling NMS window over (scale, y, x), the IoU above which a
lower-scored box is suppressed after it, the score threshold and the number of
detections it returns. A :class:`CameraSpec` says where the camera
is (height above the floor, downward tilt, pinhole intrinsics) and how tall
people are; the scene generator renders with it and the ground-plane pass
uses it to find the rows where a person of each size can stand.

World coordinates are metres with X to the right, Y forward along the floor
and Z up; the camera sits at ``(0, 0, height_m)``. Image coordinates are
pixels with ``u`` to the right and ``v`` down, edge-based: pixel ``(r, c)``
covers ``[c, c + 1) × [r, r + 1)``.

The file format (every key optional; the defaults are the original work's
detector on a Kinect-like camera)::

    [detector]
    frame_size = [640, 480]        # width, height
    window_size = [48, 128]        # width, height
    stride = 4
    scales = [1.0, 0.63, 0.4]      # far, medium, near
    grid_stride = 2                # common half-resolution grid
    nms_window = [3, 13, 7]        # scale, y, x
    nms_iou_threshold = 0.5        # then greedy IoU suppression across scales; 1 turns it off
    nms_iou_method = "fast"        # its static form: "fast" (Fast-NMS) or "cluster" (greedy exactly)
    score_threshold = 0.9457734823226929  # 0.1 FPPI on the validation scenes
    max_detections = 32
    person_height_px = 100         # person height inside a window
    box_aspect = 0.41              # person box width / height
    mean = [0.5, 0.5, 0.5]
    std = [0.25, 0.25, 0.25]

    [camera]
    height_m = 1.0
    tilt_deg = 5.0
    focal_px = [525.0, 525.0]      # fx, fy
    principal_point = [320.0, 240.0]
    person_height_m = [1.5, 1.95]
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from graphopt.camera import PinholeCamera
from graphopt.errors import ConfigError
from graphopt.nms import METHODS
from graphopt.workloads import read_toml

if TYPE_CHECKING:
    from graphopt.backends.base import LatencyStats
    from graphopt.detections import Detections
    from graphopt.passes.base import PassResult
    from graphopt.workloads import EvaluationReport, FrameDetector, LabelledFrame

__all__ = ["CameraSpec", "DetectorConfig", "DetectorSpec", "load_config", "parse_config"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorSpec:
    """What the sliding-window detector computes (see the module docstring for units)."""

    frame_size: tuple[int, int] = (640, 480)
    window_size: tuple[int, int] = (48, 128)
    stride: int = 4
    scales: tuple[float, ...] = (1.0, 0.63, 0.4)
    grid_stride: int = 2
    nms_window: tuple[int, int, int] = (3, 13, 7)
    nms_iou_threshold: float = 0.5
    #: The static form of the IoU suppression, in the graph and on the host alike: "fast" (Fast-NMS,
    #: one step: a suppressed box still suppresses) or "cluster" (Cluster-NMS, max_detections − 1
    #: steps: greedy exactly, at the price of two small nodes a step; see benchmarks/bench_head.py).
    nms_iou_method: str = "fast"
    # The shipped network's threshold at 0.1 FPPI on the 200 validation scenes (benchmarks/operating_point.py).
    score_threshold: float = 0.9457734823226929
    max_detections: int = 32
    person_height_px: float = 100.0
    box_aspect: float = 0.41
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def __post_init__(self) -> None:
        _validate_detector(self)

    @property
    def frame_width(self) -> int:
        return self.frame_size[0]

    @property
    def frame_height(self) -> int:
        return self.frame_size[1]

    @property
    def window_width(self) -> int:
        return self.window_size[0]

    @property
    def window_height(self) -> int:
        return self.window_size[1]

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """``(scales, rows, cols)`` of the common score volume the NMS runs over."""
        return (len(self.scales), self.frame_height // self.grid_stride, self.frame_width // self.grid_stride)

    def scaled_frame_shape(self, scale: float) -> tuple[int, int]:
        """``(height, width)`` of the frame resized for one pyramid scale."""
        return (round(self.frame_height * scale), round(self.frame_width * scale))

    def score_map_shape(self, scale: float) -> tuple[int, int]:
        """``(rows, cols)`` of the network's output on the frame resized for ``scale``."""
        height, width = self.scaled_frame_shape(scale)
        return (
            (height - self.window_height) // self.stride + 1,
            (width - self.window_width) // self.stride + 1,
        )

    def person_height_at(self, scale: float) -> float:
        """Height in frame pixels of the person a window at ``scale`` is trained to fit."""
        return self.person_height_px / scale

    def detectable_heights(self) -> tuple[float, float]:
        """Person heights in frame pixels the pyramid covers.

        Each scale covers the heights within the geometric half-step to its
        neighbours; the ends get the same half-step.
        """
        ordered = sorted(self.scales, reverse=True)
        half_step = math.sqrt(ordered[0] / ordered[1]) if len(ordered) > 1 else 1.25
        return (self.person_height_at(ordered[0]) / half_step, self.person_height_at(ordered[-1]) * half_step)


@dataclass(frozen=True)
class CameraSpec(PinholeCamera):
    """A calibrated pinhole camera above a flat floor (:class:`graphopt.camera.PinholeCamera`), and the people on it."""

    person_height_m: tuple[float, float] = (1.5, 1.95)

    def __post_init__(self) -> None:
        _validate_camera(self)

    def person_box(self, x_m: float, y_m: float, height_m: float, aspect: float) -> tuple[float, float, float, float]:
        """The standardized box ``(x0, y0, x1, y1)`` of a person standing at floor point ``(x_m, y_m)``."""
        return self.object_box(x_m, y_m, height_m, aspect)


@dataclass(frozen=True)
class DetectorConfig:
    """A detector and the camera it runs on, as loaded from one TOML file."""

    detector: DetectorSpec = field(default_factory=DetectorSpec)
    camera: CameraSpec = field(default_factory=CameraSpec)
    source: str = "<defaults>"
    #: The ``[camera]`` keys the file gave (the others took example defaults);
    #: ``None`` for a config built in code, whose camera is taken as given.
    #: Ground-plane slicing needs every key: a default is not a calibration.
    camera_keys: frozenset[str] | None = None

    # The graphopt.workloads.Workload protocol: what the compiler core asks of
    # this workload, answered by graphopt_person.plugin.

    @property
    def workload_name(self) -> str:
        return "person"

    @property
    def ground_plane_pass(self) -> str:
        return "ground_plane_slice"

    @property
    def score_threshold(self) -> float:
        return self.detector.score_threshold

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.detector.frame_height, self.detector.frame_width

    def labelled_frame(self, seed: int) -> LabelledFrame:
        from . import plugin

        return plugin.labelled_frame(self, seed)

    def frame_detector(self, model: onnx.ModelProto, *, threshold: float | None = None,
                       source: str = "the model") -> FrameDetector:
        from . import plugin

        return plugin.frame_detector(self, model, threshold=threshold, source=source)

    def describe(self, detections: Detections) -> list[dict[str, Any]]:
        from . import plugin

        return plugin.describe(self, detections)

    def evaluate_model(self, model: onnx.ModelProto, *, frames: int, min_score: float,
                       weights: os.PathLike[str] | None, source: str) -> EvaluationReport:
        from . import plugin

        return plugin.evaluate_model(self, model, frames=frames, min_score=min_score, weights=weights, source=source)

    def with_score_threshold(self, threshold: float) -> DetectorConfig:
        from . import plugin

        return plugin.with_score_threshold(self, threshold)

    def network_input_shapes(self, model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
        from . import plugin

        return plugin.network_input_shapes(self, model)

    def takes_frames(self, model: onnx.ModelProto) -> bool:
        from . import plugin

        return plugin.takes_frames(model)

    def frames(self, split: str, count: int) -> list[dict[str, np.ndarray]]:
        from . import plugin

        return plugin.frames(self, split, count)

    def labelled_frames(self, split: str, count: int) -> list[LabelledFrame]:
        from . import plugin

        return plugin.labelled_frames(self, split, count)

    def fuse_host_stages(self, network: onnx.ModelProto) -> PassResult:
        from . import plugin

        return plugin.fuse_host_stages(self, network)

    def check_host_fusion(self, network: onnx.ModelProto, *, frames: int) -> dict[str, float]:
        from . import plugin

        return plugin.check_host_fusion(self, network, frames)

    def detector_for(self, model: onnx.ModelProto) -> tuple[str, Callable[[np.ndarray], Detections]]:
        from . import plugin

        return plugin.detector(self, model)

    def host_flops(self, model: onnx.ModelProto) -> int | None:
        from . import plugin

        return plugin.host_flops(self, model)

    def benchmark_per_frame(
        self, network: onnx.ModelProto, fused: onnx.ModelProto, *, warmup: int, repeats: int,
        providers: Sequence[str] | None,
    ) -> tuple[LatencyStats, LatencyStats]:
        from . import plugin

        return plugin.benchmark_per_frame(self, network, fused, warmup=warmup, repeats=repeats, providers=providers)


def load_config(path: str | Path) -> DetectorConfig:
    """Loads and validates a detector/camera TOML file.

    Raises:
        ConfigError: the file is missing, is not TOML, has unknown keys or
            wrongly typed values, or describes an impossible geometry; the
            message names the file and the key.
    """
    data = read_toml(path)
    if data.get("workload") == "person":
        del data["workload"]
    return parse_config(data, source=str(Path(path)))


def parse_config(data: Mapping[str, Any], *, source: str = "<config>") -> DetectorConfig:
    """A :class:`DetectorConfig` from already-parsed TOML data (see :func:`load_config`)."""
    unknown = sorted(set(data) - {"detector", "camera"})
    if unknown:
        raise ConfigError(f"{source}: unknown table [{unknown[0]}]; expected [detector] and [camera]")
    try:
        detector = DetectorSpec(**_convert(DetectorSpec, data.get("detector", {}), "detector", source))
        camera = CameraSpec(**_convert(CameraSpec, data.get("camera", {}), "camera", source))
        _validate_pair(detector, camera)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(source) else f"{source}: {message}") from None
    camera_table = data.get("camera", {})
    return DetectorConfig(detector=detector, camera=camera, source=source, camera_keys=frozenset(camera_table))


# Value kinds of the config keys: scalar type, or (element type, required length or None).
_KINDS: dict[str, Any] = {
    "frame_size": (int, 2),
    "window_size": (int, 2),
    "stride": int,
    "scales": (float, None),
    "grid_stride": int,
    "nms_window": (int, 3),
    "nms_iou_threshold": float,
    "nms_iou_method": str,
    "score_threshold": float,
    "max_detections": int,
    "person_height_px": float,
    "box_aspect": float,
    "mean": (float, 3),
    "std": (float, 3),
    "height_m": float,
    "tilt_deg": float,
    "focal_px": (float, 2),
    "principal_point": (float, 2),
    "person_height_m": (float, 2),
}


def _convert(cls: type, table: Any, table_name: str, source: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [{table_name}] must be a table")
    known = {f.name for f in fields(cls)}
    converted: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key '{key}' in [{table_name}]; known keys: {', '.join(sorted(known))}"
            )
        converted[key] = _value(raw, _KINDS[key], f"[{table_name}] {key}", source)
    return converted


def _scalar(raw: Any, kind: type, where: str, source: str) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or (kind is int and not isinstance(raw, int)):
        expected = "an integer" if kind is int else "a number"
        raise ConfigError(f"{source}: {where} must be {expected}, got {raw!r}")
    return kind(raw)


def _value(raw: Any, kind: Any, where: str, source: str) -> Any:
    if kind is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{source}: {where} must be a string, got {raw!r}")
        return raw
    if isinstance(kind, type):
        return _scalar(raw, kind, where, source)
    element, length = kind
    if not isinstance(raw, list) or (length is not None and len(raw) != length) or not raw:
        expected = f"a list of {length}" if length else "a non-empty list of"
        noun = "integers" if element is int else "numbers"
        raise ConfigError(f"{source}: {where} must be {expected} {noun}, got {raw!r}")
    return tuple(_scalar(item, element, where, source) for item in raw)


def _validate_detector(spec: DetectorSpec) -> None:
    width, height = spec.frame_size
    if width < 1 or height < 1:
        raise ConfigError(f"[detector] frame_size must be positive, got {list(spec.frame_size)}")
    if min(spec.window_size) < 1:
        raise ConfigError(f"[detector] window_size must be positive, got {list(spec.window_size)}")
    if spec.stride < 1 or spec.grid_stride < 1:
        raise ConfigError("[detector] stride and grid_stride must be at least 1")
    if width % spec.grid_stride or height % spec.grid_stride:
        raise ConfigError(f"[detector] grid_stride {spec.grid_stride} must divide the frame size {width}x{height}")
    if not spec.scales or any(not 0 < s <= 4 for s in spec.scales):
        raise ConfigError(f"[detector] scales must be in (0, 4], got {list(spec.scales)}")
    if list(spec.scales) != sorted(set(spec.scales), reverse=True):
        raise ConfigError(f"[detector] scales must be distinct and in decreasing order, got {list(spec.scales)}")
    for scale in spec.scales:
        rows, cols = spec.score_map_shape(scale)
        if rows < 1 or cols < 1:
            raise ConfigError(
                f"[detector] at scale {scale} the frame ({'x'.join(map(str, spec.scaled_frame_shape(scale)))}) "
                f"is smaller than the window {spec.window_width}x{spec.window_height}"
            )
    _validate_head(spec)


def _validate_head(spec: DetectorSpec) -> None:
    """The detection head's settings: NMS, thresholds, count, box geometry, normalization."""
    if any(k < 1 or k % 2 == 0 for k in spec.nms_window):
        raise ConfigError(f"[detector] nms_window must be three odd positive sizes, got {list(spec.nms_window)}")
    if spec.nms_iou_method not in METHODS:
        raise ConfigError(f"[detector] nms_iou_method must be one of {', '.join(map(repr, METHODS))}, "
                          f"got {spec.nms_iou_method!r}")
    if not 0 < spec.nms_iou_threshold <= 1:
        raise ConfigError(f"[detector] nms_iou_threshold must be in (0, 1], got {spec.nms_iou_threshold}")
    if not 0 < spec.score_threshold < 1:
        raise ConfigError(f"[detector] score_threshold is a probability in (0, 1), got {spec.score_threshold}")
    if spec.max_detections < 1:
        raise ConfigError(f"[detector] max_detections must be at least 1, got {spec.max_detections}")
    if not 0 < spec.person_height_px <= spec.window_height:
        raise ConfigError(
            f"[detector] person_height_px must be in (0, {spec.window_height}] (the window height), "
            f"got {spec.person_height_px}"
        )
    if not 0 < spec.box_aspect <= 2:
        raise ConfigError(f"[detector] box_aspect must be in (0, 2], got {spec.box_aspect}")
    if any(s <= 0 for s in spec.std):
        raise ConfigError(f"[detector] std must be positive, got {list(spec.std)}")


def _validate_camera(camera: CameraSpec) -> None:
    if camera.height_m <= 0:
        raise ConfigError(f"[camera] height_m must be above the floor (> 0), got {camera.height_m}")
    if not -60 < camera.tilt_deg < 89:
        raise ConfigError(f"[camera] tilt_deg must be in (-60, 89) degrees, got {camera.tilt_deg}")
    if min(camera.focal_px) <= 0:
        raise ConfigError(f"[camera] focal_px must be positive, got {list(camera.focal_px)}")
    low, high = camera.person_height_m
    if not 0 < low <= high <= 3:
        raise ConfigError(
            f"[camera] person_height_m must be [min, max] with 0 < min <= max <= 3 metres, "
            f"got {list(camera.person_height_m)}"
        )


def _validate_pair(detector: DetectorSpec, camera: CameraSpec) -> None:
    width, height = detector.frame_size
    u, v = camera.principal_point
    if not (0 <= u <= width and 0 <= v <= height):
        raise ConfigError(f"[camera] principal_point ({u}, {v}) lies outside the {width}x{height} frame")
    if camera.horizon_v() >= height:
        raise ConfigError(
            f"[camera] with tilt_deg {camera.tilt_deg} the horizon lies below the frame, "
            "so the camera sees no floor for people to stand on"
        )
