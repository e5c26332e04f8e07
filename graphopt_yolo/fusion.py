"""The yolo workload's host-stage fusion: what the core ``fuse_host_stages`` pass runs for it.

The network is replaced by the whole detector as one static graph
(:func:`graphopt_yolo.fused.build_fused_model`); the pass's ``ensures`` has
the host pipeline (:mod:`graphopt_yolo.host`) and the fused graph compared
on the workload's frames (:func:`check`): the same detections, boxes within
:data:`BOX_TOLERANCE` pixels, scores within :data:`SCORE_TOLERANCE`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnx

from graphopt.backends.base import LatencyStats
from graphopt.detections import Detections
from graphopt.nms import fast_nms, greedy_nms
from graphopt.passes.base import PassResult
from graphopt.passes.host_stages import HostFusionMismatch
from graphopt.timing import measure_latency_interleaved

from .config import YoloConfig
from .fused import FusedDetector, build_fused_model
from .host import HostDetector
from .layout import find_layout
from .pictures import pictures

__all__ = ["BOX_TOLERANCE", "SCORE_TOLERANCE", "benchmark_per_frame", "check", "compare", "fuse", "nms_description"]

logger = logging.getLogger(__name__)

# Host and graph resize in float32 with sums in another order, and exp/softplus may round differently: the
# network's outputs differ in the last bits, not by a visible amount.
BOX_TOLERANCE = 0.5
SCORE_TOLERANCE = 1e-4


def nms_description(config: YoloConfig) -> str:
    """Which NMS the fused graph computes, and why, for the report."""
    scope = "across classes" if config.class_agnostic else "within each class"
    if config.nms == "onnx":
        return (f"ONNX NonMaxSuppression {scope} at IoU {config.iou_threshold:g} over the best "
                f"{config.pre_nms_top_k} candidates (nms = \"onnx\" in the config: TensorRT's parser maps it to "
                "its NMS layer; the graph scatters its picks back into fixed-size outputs)")
    if config.nms_method == "cluster":
        return (f"static Cluster-NMS {scope} at IoU {config.iou_threshold:g} over the best {config.pre_nms_top_k} "
                f"candidates ({config.pre_nms_top_k - 1} iterations: greedy NMS exactly; the default, "
                "for fixed shapes end to end on TensorRT)")
    return (f"static Fast-NMS {scope} at IoU {config.iou_threshold:g} over the best {config.pre_nms_top_k} "
            "candidates (nms_method = \"fast\" in the config: one step, so a suppressed box still suppresses "
            "and boxes greedy NMS keeps may drop)")


def fuse(config: YoloConfig, network: onnx.ModelProto) -> PassResult:
    """The fused detector graph for the exported ``network``, with its stats and a note on the NMS used."""
    layout = find_layout(network, config)
    fused = build_fused_model(network, config, layout)
    stats: dict[str, float] = {
        "network_nodes": len(network.graph.node),
        "fused_nodes": len(fused.graph.node),
        "classes": layout.classes,
        "predictions": layout.predictions,
        "decode_added": int(not layout.decoded),
        "scores_are_logits": int(not layout.probabilities),
        "nms_static": int(config.nms == "static"),
        "nms_exact": int(config.nms == "onnx" or config.nms_method == "cluster"),
        "calls_before": 1,
        "calls_after": 1,
    }
    note = (f"{layout.family} layout, {layout.classes} classes, {layout.predictions} predictions, decode "
            f"{'in the export' if layout.decoded else 'added (grid and strides)'}, scores "
            f"{'probabilities (sigmoid inside the export)' if layout.probabilities else 'logits'}; "
            + nms_description(config))
    return PassResult(fused, True, stats, note=note)


def compare(ours: Detections, theirs: Detections, where: str) -> tuple[float, float]:
    """The largest box and score differences of two detection sets that must agree.

    Raises:
        HostFusionMismatch: other counts or classes, or differences past the tolerances.
    """
    if len(ours) != len(theirs) or not np.array_equal(ours.classes, theirs.classes):
        raise HostFusionMismatch(f"the fused graph finds {len(ours)} detections on {where} (classes "
                                 f"{ours.classes.tolist()}), the host pipeline {len(theirs)} "
                                 f"({theirs.classes.tolist()})")
    if not len(ours):
        return 0.0, 0.0
    box = float(np.max(np.abs(ours.boxes - theirs.boxes)))
    score = float(np.max(np.abs(ours.scores - theirs.scores)))
    if not (box <= BOX_TOLERANCE and score <= SCORE_TOLERANCE):
        raise HostFusionMismatch(f"the fused graph's detections on {where} differ from the host pipeline's by "
                                 f"{box:.3g} px and {score:.3g} in score (tolerances {BOX_TOLERANCE:g} px, "
                                 f"{SCORE_TOLERANCE:g})")
    return box, score


def check(config: YoloConfig, network: onnx.ModelProto, frames: int) -> dict[str, float]:
    """The host pipeline around ``network`` and its fused graph on ``frames`` test frames; their figures.

    Raises:
        HostFusionMismatch: they disagree on some frame (the pass is rolled back).
    """
    host = HostDetector(network, config)
    fused = FusedDetector(build_fused_model(network, config, host.layout), config)
    worst_box = worst_score = 0.0
    found = fast_differs = 0
    for name, frame in pictures(config, "test", frames):
        ours, theirs = fused.detect(frame), host.detect(frame)
        box, score = compare(ours, theirs, name)
        worst_box, worst_score = max(worst_box, box), max(worst_score, score)
        found += len(ours)
        fast_differs += int(_fast_nms_differs(host, frame))
    logger.debug("fused YOLO graph checked on %d frames: %d detections, worst %.3g px, %.3g", frames, found,
                 worst_box, worst_score)
    return {"checked_frames": frames, "checked_detections": found, "max_box_error": worst_box,
            "max_score_error": worst_score, "fast_nms_differs_frames": fast_differs}


def _fast_nms_differs(host: HostDetector, frame: np.ndarray) -> bool:
    """Whether Fast-NMS keeps other candidates than greedy NMS on ``frame`` (the graph's choice audited)."""
    boxes, _, labels, valid = host.candidates(frame)
    classes = None if host.config.class_agnostic else labels
    threshold = host.config.iou_threshold
    return not np.array_equal(fast_nms(boxes, threshold, valid, classes=classes),
                              greedy_nms(boxes, threshold, valid, classes=classes))


def benchmark_per_frame(config: YoloConfig, network: onnx.ModelProto, fused: onnx.ModelProto, *, warmup: int,
                        repeats: int, providers: Sequence[str] | None) -> tuple[LatencyStats, LatencyStats]:
    """Time per frame of the host pipeline and of the fused graph on the first test frame, interleaved.

    A ``network`` that is a fused graph already (``graphopt optimize`` run on its own output) is timed as one.
    """
    chosen = tuple(providers) if providers else ("CPUExecutionProvider",)
    _, frame = pictures(config, "test", 1)[0]
    before_detector, after_detector = (
        FusedDetector(model, config, providers=chosen) if config.takes_frames(model)
        else HostDetector(model, config, providers=chosen)
        for model in (network, fused)
    )
    before, after = measure_latency_interleaved(
        [lambda: before_detector.detect(frame), lambda: after_detector.detect(frame)], warmup=warmup, repeats=repeats)
    return before, after
