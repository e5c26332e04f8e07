"""``graphopt evaluate`` for a YOLO export or its fused graph: AP@0.5 and miss rate against FPPI on labelled frames.

The workload's test frames carry their ground truth (:func:`graphopt_yolo.pictures.labelled_frame_at`):
the face in a photo frame, each character in a text frame. The detections of the config's
``evaluate_classes`` (all classes if left out) are matched to it at IoU 0.5 by :mod:`graphopt.evaluation`,
which gives both views of the same matching:

* precision against recall and its average precision (AP@0.5, the area under the precision
  envelope over all recall points), what YOLO users read;
* miss rate against false positives per image, read at 0.1 and 1 FPPI, and the log-average miss
  rate, as the person detector reports;

and the true positives, false positives and misses at the config's ``score_threshold``.

The exported network runs in the host pipeline down to ``--min-score`` (or the config's threshold,
if that is lower), so the curves reach far. A fused graph has its threshold, ``pre_nms_top_k`` and
``max_detections`` in the graph: its curves stop at its threshold, and the report says so. Above
that threshold both forms keep the same detections (a lower threshold only adds candidates after
the ones kept, and a lower-scoring box suppresses none above it), so their figures agree there.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import onnx

from graphopt.detections import Detections
from graphopt.errors import ConfigError, GraphoptError
from graphopt.evaluation import MissRateCurve, PrecisionRecallCurve, evaluate, precision_recall
from graphopt.workloads import EvaluationReport

from .config import YoloConfig, check_evaluate_classes

__all__ = ["OBJECTS", "evaluate_model", "evaluation_data", "format_lines"]

logger = logging.getLogger(__name__)

#: What the ground truth of each domain's frames holds.
OBJECTS = {"photos": "faces", "text": "characters", "mixed": "faces and characters"}
_IOU = 0.5


def _class_filter(config: YoloConfig, model: onnx.ModelProto, source: str) -> np.ndarray | None:
    """The evaluated class ids (None: all), checked against the network's class count where it is known."""
    if config.evaluate_classes is None:
        return None
    if not config.takes_frames(model):
        from .layout import find_layout

        try:
            check_evaluate_classes(config, find_layout(model, config).classes)
        except ConfigError as error:
            raise ConfigError(f"{error} ({source})") from None
    return np.array(config.evaluate_classes, np.int64)


def evaluate_model(config: YoloConfig, model: onnx.ModelProto, *, frames: int, min_score: float,
                   source: str) -> EvaluationReport:
    """``model`` (network or fused graph) on the first ``frames`` labelled test frames of the config's domain.

    Raises:
        ConfigError: ``evaluate_classes`` names a class the network lacks, or the model does not fit.
        GraphoptError: the frames hold no labelled object.
    """
    fused = config.takes_frames(model)
    classes = _class_filter(config, model, source)
    lowest = config.score_threshold if fused else min(min_score, config.score_threshold)
    detector = config.frame_detector(model, threshold=None if fused else lowest, source=source)
    detections: list[Detections] = []
    truth: list[np.ndarray] = []
    seconds: list[float] = []
    for scene in config.labelled_frames("test", frames):
        start = time.perf_counter()
        found = detector.detect(scene.image)
        seconds.append(time.perf_counter() - start)
        detections.append(found if classes is None else found.take(np.isin(found.classes, classes)))
        truth.append(scene.boxes)
    if not any(len(boxes) for boxes in truth):
        raise GraphoptError(f"the {frames} test frame(s) hold no {OBJECTS[config.domain]}; use more frames")
    pr_curve = precision_recall(detections, truth, iou_threshold=_IOU)
    mr_curve = evaluate(detections, truth, iou_threshold=_IOU)
    data = evaluation_data(config, pr_curve, mr_curve, form="fused graph" if fused else "host pipeline",
                           lowest_score=lowest, seconds=seconds)
    logger.debug("evaluated %s on %d frames: AP %.4f", source, frames, data["average_precision"])
    return EvaluationReport(lines=format_lines(data, source=source, min_score=min_score), data=data)


def evaluation_data(config: YoloConfig, pr_curve: PrecisionRecallCurve, mr_curve: MissRateCurve, *, form: str,
                    lowest_score: float, seconds: list[float]) -> dict[str, Any]:
    """The figures of an evaluation, for JSON and for :func:`format_lines`."""
    deployed = mr_curve.point_at_threshold(config.score_threshold)
    at_01 = mr_curve.point_at_fppi(0.1)
    threshold_01 = mr_curve.threshold_at(0.1)
    return {
        "form": form,
        "domain": config.domain,
        "objects": OBJECTS[config.domain],
        "evaluated_classes": "all" if config.evaluate_classes is None else list(config.evaluate_classes),
        "iou_threshold": _IOU,
        "lowest_score": lowest_score,
        "frames": mr_curve.frames,
        "ground_truths": mr_curve.ground_truths,
        "average_precision": pr_curve.average_precision(),
        "miss_rate_at_0.1_fppi": mr_curve.miss_rate_at(0.1),
        "threshold_at_0.1_fppi": threshold_01 if np.isfinite(threshold_01) else "inf",
        "true_positives_at_0.1_fppi": at_01["true_positives"],
        "false_positives_at_0.1_fppi": at_01["false_positives"],
        "miss_rate_at_1_fppi": mr_curve.miss_rate_at(1.0),
        "log_average_miss_rate": mr_curve.log_average_miss_rate(),
        "at_score_threshold": {
            "configured": config.score_threshold,
            "true_positives": deployed["true_positives"],
            "false_positives": deployed["false_positives"],
            "misses": mr_curve.ground_truths - deployed["true_positives"],
            **{k: v for k, v in pr_curve.point_at_threshold(config.score_threshold).items() if k != "threshold"},
        },
        "median_frame_seconds": float(np.median(seconds)),
    }


def format_lines(data: dict[str, Any], *, source: str, min_score: float) -> list[str]:
    """The terminal lines of :func:`evaluation_data`'s figures."""
    classes = data["evaluated_classes"]
    deployed = data["at_score_threshold"]
    if data["form"] == "fused graph":
        scope = (f"  scores: the fused graph's own detections, above the score threshold built into it "
                 f"({data['lowest_score']:g} in the config), so the curves stop there (--min-score {min_score:g} "
                 "not used)")
    else:
        scope = f"  scores: down to {data['lowest_score']:g} (the host pipeline at --min-score or the config's, lower)"
    return [
        f"{source} ({data['form']}): {data['frames']} test frames ({data['domain']}), {data['ground_truths']} "
        f"{data['objects']}; classes evaluated: {'all' if classes == 'all' else ', '.join(map(str, classes))}; "
        f"IoU {data['iou_threshold']:g}",
        f"  AP@{data['iou_threshold']:g} (all-point): {data['average_precision']:.3f}",
        f"  miss rate at 0.1 FPPI: {data['miss_rate_at_0.1_fppi']:.3f} (score threshold "
        f"{data['threshold_at_0.1_fppi']:.4g}; {data['true_positives_at_0.1_fppi']} true, "
        f"{data['false_positives_at_0.1_fppi']} false positives)"
        if data["threshold_at_0.1_fppi"] != "inf" else "  miss rate at 0.1 FPPI: 1.000 (no threshold stays within it)",
        f"  miss rate at 1 FPPI:   {data['miss_rate_at_1_fppi']:.3f}",
        f"  log-average miss rate: {data['log_average_miss_rate']:.3f}",
        f"  at the configured threshold {deployed['configured']:g}: {deployed['true_positives']} true positives, "
        f"{deployed['false_positives']} false positives, {deployed['misses']} misses (precision "
        f"{deployed['precision']:.3f}, recall {deployed['recall']:.3f})",
        scope,
        f"  median time per frame: {1000 * data['median_frame_seconds']:.1f} ms",
    ]
