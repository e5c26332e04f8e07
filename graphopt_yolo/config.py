"""The ``[yolo]`` table of a ``--config`` file: the client code a YOLO export runs with, as settings.

A YOLO-family export is a network between pieces of client code: resize or
letterbox, normalization, decode, score threshold, NMS. The config names what
that code does, so that the fused graph reproduces it::

    [yolo]
    frame_size = [640, 480]     # width, height of the camera frame
    resize = "letterbox"        # or "stretch"
    pad = "center"              # Ultralytics; "top-left" as many client libraries
    channels = "rgb"
    score_threshold = 0.25
    domain = "photos"           # the frames: faces ("photos"), characters ("text") or both ("mixed")
    evaluate_classes = [1, 12]  # the classes that detect them (NudeNet: FACE_FEMALE, FACE_MALE); default all

Family, layout, class count and (for a static graph) the network's input size
are found from the graph when the config leaves them out; a config that
contradicts the graph is a :class:`~graphopt.errors.ConfigError`
(:mod:`graphopt_yolo.layout`). The workload methods the core calls
(:class:`graphopt.workloads.Workload`) load the heavier modules only when
called.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from graphopt.detections import Detections
from graphopt.errors import ConfigError
from graphopt.nms import METHODS

if TYPE_CHECKING:
    from graphopt.backends.base import LatencyStats
    from graphopt.passes.base import PassResult
    from graphopt.workloads import EvaluationReport, FrameDetector, LabelledFrame

    from .crop import CameraBand

__all__ = ["FAMILIES", "TABLE", "YoloConfig", "parse_config"]

TABLE = "yolo"
#: The families the workload knows, each one output layout (see :mod:`graphopt_yolo.layout`).
FAMILIES = ("yolov8", "yolov5", "yolox")
_CHOICES = {
    "family": FAMILIES,
    "resize": ("letterbox", "stretch"),
    "pad": ("center", "top-left"),
    "channels": ("rgb", "bgr"),
    "nms": ("static", "onnx"),
    "nms_method": METHODS,
    "domain": ("mixed", "photos", "text"),
}


@dataclass(frozen=True)
class YoloConfig:
    """A YOLO-family detector and the camera frames it runs on.

    Attributes:
        frame_width, frame_height: the camera frame (the fused graph's uint8 input); ``frame_size`` in TOML.
        input_size: width, height of the network's input; from the graph when it is static.
        family: ``yolov8`` (``[1, 4+C, N]``), ``yolov5`` or ``yolox`` (``[1, N, 5+C]``); from the graph if left out.
        classes: the class count; from the graph if left out.
        decoded: whether the graph decodes its boxes (grid and stride); from the graph if left out.
        resize: ``letterbox`` (aspect kept, padded) or ``stretch``.
        pad: where a letterboxed frame sits: ``center`` (Ultralytics) or ``top-left``.
        pad_value: the pixel value of the padding (114, Ultralytics').
        channels: the network's channel order, ``rgb`` or ``bgr`` (frames are RGB).
        scale, mean, std: normalization ``(pixel / scale − mean) / std``.
        score_threshold: the lowest score (a probability) kept.
        iou_threshold: NMS drops a box when a better kept one overlaps it with IoU above this.
        class_agnostic: NMS across classes (otherwise within each class).
        max_detections: the fixed number of rows of the fused graph's outputs.
        pre_nms_top_k: candidates taken, best first, into NMS.
        nms: ``static`` (pairwise IoU in static shapes) or ``onnx`` (``NonMaxSuppression``).
        nms_method: the static form: ``cluster`` (greedy exactly) or ``fast`` (Fast-NMS, one step).
        logit_scores: rank on the logits under the export's score Sigmoids when they can be bypassed
            (:mod:`graphopt_yolo.logits`), the sigmoid applied to the kept rows only; false ranks on the
            export's probabilities.
        domain: the workload's check, calibration and benchmark frames (:mod:`graphopt_yolo.frames`):
            ``photos`` (faces) for person and face detectors, ``text`` (captcha-like) for character
            detectors, ``mixed`` (the default, for a detector of unknown domain) both in turn. Their ground
            truth (``graphopt evaluate``, ``detect --scene``) is the faces and the characters.
        evaluate_classes: the model's classes that detect the labelled objects (``graphopt evaluate``
            matches only their detections to the ground truth); all classes if left out.
        crop_rows: the frame rows ``[top, bottom]`` where objects can be, for the ``crop_rows`` pass
            (:mod:`graphopt_yolo.crop`); ``camera`` (the ``[yolo.camera]`` table) finds them from a calibrated
            camera instead.
        crop_margin: input rows the ``crop_rows`` pass adds above and below the band before rounding it to
            the largest stride (``--ground-plane-margin`` overrides it).
    """

    frame_width: int = 640
    frame_height: int = 480
    input_size: tuple[int, int] | None = None
    family: str | None = None
    classes: int | None = None
    decoded: bool | None = None
    resize: str = "letterbox"
    pad: str = "center"
    pad_value: float = 114.0
    channels: str = "rgb"
    scale: float = 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    class_agnostic: bool = False
    max_detections: int = 100
    pre_nms_top_k: int = 100
    nms: str = "static"
    nms_method: str = "cluster"
    logit_scores: bool = True
    domain: str = "mixed"
    crop_rows: tuple[int, int] | None = None
    crop_margin: int = 32
    camera: CameraBand | None = None
    evaluate_classes: tuple[int, ...] | None = None
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        _validate(self)

    # What the core asks (graphopt.workloads.Workload).

    @property
    def workload_name(self) -> str:
        return TABLE

    @property
    def ground_plane_pass(self) -> str:
        """``--ground-plane``'s pass for this workload: the fixed camera's band of rows."""
        return "crop_rows"

    @property
    def frame_size(self) -> tuple[int, int]:
        """Height and width of the camera frame (the protocol's order; TOML's ``frame_size`` is width, height)."""
        return self.frame_height, self.frame_width

    def with_score_threshold(self, threshold: float) -> YoloConfig:
        return dataclasses.replace(self, score_threshold=threshold)

    def network_input_shapes(self, model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
        """``{input: (1, 3, h, w)}`` of an exported network; ``{}`` for a fused graph (its input is static)."""
        from .layout import find_layout

        if self.takes_frames(model):
            return {}
        layout = find_layout(model, self)
        return {layout.input: (1, 3, *layout.input_hw)}

    def takes_frames(self, model: onnx.ModelProto) -> bool:
        from graphopt.graph import takes_a_frame

        return takes_a_frame(model)

    def frames(self, split: str, count: int) -> list[dict[str, np.ndarray]]:
        from .fused import FRAME_INPUT
        from .pictures import pictures

        return [{FRAME_INPUT: frame} for _, frame in pictures(self, split, count)]

    def labelled_frames(self, split: str, count: int) -> list[LabelledFrame]:
        """The first ``count`` frames of ``split`` with their faces or characters; frame ``i`` has seed ``i``."""
        from graphopt.workloads import LabelledFrame

        from .pictures import labelled_frame_at

        labelled = [labelled_frame_at(self, split, index) for index in range(count)]
        return [LabelledFrame(frame, boxes, index) for index, (_, frame, boxes) in enumerate(labelled)]

    def labelled_frame(self, seed: int) -> LabelledFrame:
        """Test frame ``seed`` with its ground truth (``graphopt detect --scene SEED``)."""
        from graphopt.workloads import LabelledFrame

        from .pictures import labelled_frame_at

        _, frame, boxes = labelled_frame_at(self, "test", seed)
        return LabelledFrame(frame, boxes, seed)

    def frame_detector(self, model: onnx.ModelProto, *, threshold: float | None = None,
                       source: str = "the model") -> FrameDetector:
        from .host import detector_for_model

        return detector_for_model(self, model, threshold=threshold, source=source)

    def describe(self, detections: Detections) -> list[dict[str, Any]]:
        return [{"class": int(label)} for label in detections.classes]

    def evaluate_model(self, model: onnx.ModelProto, *, frames: int, min_score: float,
                       weights: os.PathLike[str] | None, source: str) -> EvaluationReport:
        """AP@0.5 and miss rate against FPPI on ``frames`` labelled test frames (:mod:`graphopt_yolo.evaluation`).

        ``weights`` is the person detector's; a YOLO export holds its own and takes none.
        """
        from .evaluation import evaluate_model

        if weights is not None:
            raise ConfigError("--weights is the person detector's (logit margins); a YOLO export takes none")
        return evaluate_model(self, model, frames=frames, min_score=min_score, source=source)

    def fuse_host_stages(self, network: onnx.ModelProto) -> PassResult:
        from .fusion import fuse

        return fuse(self, network)

    def check_host_fusion(self, network: onnx.ModelProto, *, frames: int) -> dict[str, float]:
        from .fusion import check

        return check(self, network, frames)

    def detector_for(self, model: onnx.ModelProto) -> tuple[str, Callable[[np.ndarray], Detections]]:
        detector = self.frame_detector(model)
        return ("fused graph" if self.takes_frames(model) else "host pipeline"), detector.detect

    def host_flops(self, model: onnx.ModelProto) -> int | None:
        return None

    def benchmark_per_frame(self, network: onnx.ModelProto, fused: onnx.ModelProto, *, warmup: int, repeats: int,
                            providers: Sequence[str] | None) -> tuple[LatencyStats, LatencyStats]:
        from .fusion import benchmark_per_frame

        return benchmark_per_frame(self, network, fused, warmup=warmup, repeats=repeats, providers=providers)


def _validate(config: YoloConfig) -> None:
    for key, allowed in _CHOICES.items():
        value = getattr(config, key)
        if value is not None and value not in allowed:
            raise ConfigError(f"{config.source}: [yolo] {key} must be one of {', '.join(allowed)}, got {value!r}")
    sizes = [(config.frame_width, config.frame_height), *([config.input_size] if config.input_size else [])]
    if any(len(size) != 2 or min(size) < 1 for size in sizes):
        raise ConfigError(f"{config.source}: [yolo] frame_size and input_size are [width, height], each at least 1")
    if not 0 < config.score_threshold < 1 or not 0 < config.iou_threshold <= 1:
        raise ConfigError(f"{config.source}: [yolo] score_threshold must lie in (0, 1) and iou_threshold in (0, 1]")
    if not 1 <= config.max_detections <= config.pre_nms_top_k:
        raise ConfigError(f"{config.source}: [yolo] max_detections must lie between 1 and pre_nms_top_k "
                          f"({config.pre_nms_top_k}), got {config.max_detections}")
    if config.classes is not None and config.classes < 1:
        raise ConfigError(f"{config.source}: [yolo] classes must be at least 1, got {config.classes}")
    if config.scale <= 0 or any(s <= 0 for s in config.std):
        raise ConfigError(f"{config.source}: [yolo] scale and std must be positive")
    if config.crop_rows is not None and not 0 <= config.crop_rows[0] < config.crop_rows[1]:
        raise ConfigError(f"{config.source}: [yolo] crop_rows must be [top, bottom] frame rows with "
                          f"0 <= top < bottom, got {list(config.crop_rows)}")
    if config.crop_rows is not None and config.camera is not None:
        raise ConfigError(f"{config.source}: [yolo] give crop_rows or a [yolo.camera], not both")
    if config.crop_margin < 0:
        raise ConfigError(f"{config.source}: [yolo] crop_margin must be at least 0, got {config.crop_margin}")
    if config.evaluate_classes is not None:
        check_evaluate_classes(config, config.classes)


def check_evaluate_classes(config: YoloConfig, classes: int | None) -> None:
    """Raises ConfigError unless ``evaluate_classes`` names distinct classes among ``classes`` (if known)."""
    chosen = config.evaluate_classes
    if chosen is None:
        return
    where = f"{config.source}: [yolo] evaluate_classes"
    if not chosen or len(set(chosen)) != len(chosen) or min(chosen) < 0:
        raise ConfigError(f"{where} must list distinct class ids from 0, got {list(chosen)}")
    if classes is not None and max(chosen) >= classes:
        raise ConfigError(f"{where} names class {max(chosen)}, but the model has {classes} classes "
                          f"(0 to {classes - 1})")


#: The TOML keys: the fields, with the frame as ``frame_size = [width, height]``.
_FIELDS = {"frame_size", *(f.name for f in dataclasses.fields(YoloConfig))} - {"source", "frame_width", "frame_height"}
_TRIPLES = ("mean", "std")
_PAIRS = ("frame_size", "input_size", "crop_rows")
_INTEGER_LISTS = ("evaluate_classes",)


def _converted(key: str, raw: Any, source: str) -> Any:
    """One TOML value as the field's type, or a ConfigError naming the key."""
    where = f"{source}: [yolo] {key}"
    if key in _PAIRS or key in _TRIPLES:
        length, kind = (2, int) if key in _PAIRS else (3, float)
        if not (isinstance(raw, list) and len(raw) == length
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)):
            raise ConfigError(f"{where} must be a list of {length} numbers, got {raw!r}")
        if kind is int and not all(isinstance(v, int) for v in raw):
            raise ConfigError(f"{where} must be a list of {length} integers, got {raw!r}")
        return tuple(kind(v) for v in raw)
    if key in _INTEGER_LISTS:
        if not (isinstance(raw, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)):
            raise ConfigError(f"{where} must be a list of class ids (integers), got {raw!r}")
        return tuple(raw)
    if key in ("class_agnostic", "decoded", "logit_scores"):
        if not isinstance(raw, bool):
            raise ConfigError(f"{where} must be true or false, got {raw!r}")
        return raw
    if key == "camera":
        from .crop import parse_camera

        return parse_camera(raw, source)
    if key in _CHOICES:
        if not isinstance(raw, str):
            raise ConfigError(f"{where} must be a string, got {raw!r}")
        return raw
    integer = key in ("classes", "max_detections", "pre_nms_top_k", "crop_margin")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (integer and not isinstance(raw, int)):
        raise ConfigError(f"{where} must be {'an integer' if integer else 'a number'}, got {raw!r}")
    return int(raw) if integer else float(raw)


def parse_config(data: Mapping[str, Any], *, source: str = "<config>") -> YoloConfig:
    """A :class:`YoloConfig` from parsed TOML (without the top-level ``workload`` key).

    Raises:
        ConfigError: an unknown table or key, a value of the wrong kind or out of range; one sentence.
    """
    unknown = sorted(set(data) - {TABLE})
    if unknown:
        raise ConfigError(f"{source}: unknown table [{unknown[0]}]; the yolo workload reads [{TABLE}]")
    table = data.get(TABLE, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [{TABLE}] must be a table")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in _FIELDS:
            raise ConfigError(f"{source}: unknown key '{key}' in [{TABLE}]; known keys: {', '.join(sorted(_FIELDS))}")
        values[key] = _converted(key, raw, source)
    if "frame_size" in values:
        values["frame_width"], values["frame_height"] = values.pop("frame_size")
    return YoloConfig(**values, source=source)
