"""The yolo workload's host-stage fusion: what the core ``fuse_host_stages`` pass runs for it.

The network is replaced by the whole detector as one static graph
(:func:`graphopt_yolo.fused.build_fused_model`); the pass's ``ensures`` has
the host pipeline (:mod:`graphopt_yolo.host`) and the fused graph compared
on the workload's frames (:func:`check`): the same detections, boxes within
:data:`BOX_TOLERANCE` pixels, scores within :data:`SCORE_TOLERANCE`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import onnx

from graphopt.backends.base import LatencyStats
from graphopt.detections import Detections
from graphopt.nms import fast_nms, greedy_nms
from graphopt.passes.base import PassResult
from graphopt.passes.host_stages import HostFusionMismatch
from graphopt.timing import measure_latency_interleaved
from graphopt.traffic import BoundaryTraffic, HostStage, TrafficChange, graph_traffic

from .config import YoloConfig
from .decode import placement
from .fused import FusedDetector, build_fused_model, fused_detector
from .host import HostDetector
from .layout import Layout, find_layout
from .pictures import pictures

__all__ = [
    "BOX_TOLERANCE",
    "SCORE_TOLERANCE",
    "benchmark_per_frame",
    "check",
    "compare",
    "fuse",
    "host_stages",
    "nms_description",
    "traffic",
]

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


def host_stages(config: YoloConfig, layout: Layout) -> tuple[HostStage, ...]:
    """The host pipeline's work per frame, stage by stage, as element operations and comparisons (estimates)."""
    frame = 3 * config.frame_height * config.frame_width
    rows, cols = placement(config, layout.input_hw).resized_hw
    pixels = 3 * layout.input_hw[0] * layout.input_hw[1]
    steps = int(config.scale != 1) + int(any(config.mean)) + int(any(s != 1 for s in config.std))
    n, k = layout.predictions, config.pre_nms_top_k
    scores = layout.classes + int(layout.objectness)
    return (
        HostStage("preprocess", frame, "uint8 HWC frame to float32 NCHW"),
        HostStage("resize", 7 * 3 * rows * cols if (rows, cols) != (config.frame_height, config.frame_width) else 0,
                  "half-pixel bilinear resize, four taps per pixel"),
        HostStage("pad_normalize", pixels * (1 + steps), "letterbox padding and normalization"),
        HostStage("decode", n * (scores + 8 + (0 if layout.decoded else 6)), "best class, score, corners"),
        HostStage("select", n + n * math.ceil(math.log2(max(k, 2))), f"threshold and the best {k}"),
        HostStage("nms", 12 * k * k, f"pairwise IoU of {k} candidates and greedy suppression"),
        HostStage("boxes", 8 * config.max_detections, "boxes back to frame pixels, clipped"),
    )


def traffic(config: YoloConfig, layout: Layout, fused: onnx.ModelProto) -> TrafficChange:
    """One call either way: a float32 input and the raw predictions before, a uint8 frame and K rows after."""
    width = layout.classes + (5 if layout.objectness else 4)
    before = BoundaryTraffic(calls=1, bytes_in=4 * 3 * layout.input_hw[0] * layout.input_hw[1],
                             bytes_out=4 * layout.predictions * width)
    return TrafficChange(before=before, after=graph_traffic(fused), host_stages_removed=host_stages(config, layout))


def fuse(config: YoloConfig, network: onnx.ModelProto) -> PassResult:
    """The fused detector graph for the exported ``network``, with its stats and a note on the NMS used."""
    layout = find_layout(network, config)
    fused, logits = fused_detector(network, config, layout)
    on_logits = logits.found or not layout.probabilities
    change = traffic(config, layout, fused)
    stats: dict[str, float] = {
        "network_nodes": len(network.graph.node),
        "fused_nodes": len(fused.graph.node),
        "classes": layout.classes,
        "predictions": layout.predictions,
        "decode_added": int(not layout.decoded),
        "scores_are_logits": int(not layout.probabilities),
        "scores_on_logits": int(on_logits),
        "nms_static": int(config.nms == "static"),
        "nms_exact": int(config.nms == "onnx" or config.nms_method == "cluster"),
        "calls_before": change.before.calls,
        "calls_after": change.after.calls,
        "bytes_in_before": change.before.bytes_in,
        "bytes_in_after": change.after.bytes_in,
        "bytes_out_before": change.before.bytes_out,
        "bytes_out_after": change.after.bytes_out,
        "host_ops_removed": change.host_ops_removed,
    }
    note = (f"{layout.family} layout, {layout.classes} classes, {layout.predictions} predictions, decode "
            f"{'in the export' if layout.decoded else 'added (grid and strides)'}, scores "
            f"{'probabilities (sigmoid inside the export)' if layout.probabilities else 'logits'}; "
            + _score_description(on_logits, logits.reason) + "; " + nms_description(config))
    return PassResult(fused, True, stats, traffic=change, note=note)


def _score_description(on_logits: bool, reason: str) -> str:
    if on_logits:
        return f"scores on logits ({reason}): threshold, top-K and NMS order before the sigmoid, exact"
    return f"scores on probabilities ({reason})"


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
