"""Running a detector over the synthetic test set: accuracy, logit margins, timings.

The test set is ``scene_seeds("test", n)``: reproducible, never used for
training. Any object with ``detect(frame) -> Detections`` can be evaluated,
so the naive pipeline and every optimized form are measured the same way.

Logit margins (person logit minus background logit) at the true-positive
peaks say how far a detector's confident detections are from saturating a
two-class softmax: the probability ``1 / (1 + exp(-m))`` rounds to exactly
1.0 once ``exp(-m)`` falls below half a unit in the last place below 1, that
is for ``m > 12·ln 2 ≈ 8.32`` in float16 and ``m > 24·ln 2 ≈ 16.64`` in
float32. Past that, neighbouring windows tie at 1.0 and the max-pooling NMS
finds plateaus instead of peaks.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from graphopt.backends.onnxruntime import create_session, run_session
from graphopt.detections import Detections
from graphopt.errors import GraphoptError
from graphopt.evaluation import MissRateCurve, evaluate, match_frame
from graphopt.nms import fast_nms_differs

from .data import Scene, generate_scenes
from .grid import resize_bilinear
from .naive import preprocess_frame, resample_to_grid, scale_resamplings
from .network import build_naive_model
from .spec import DetectorConfig, DetectorSpec

__all__ = [
    "FLOAT16_SATURATION_MARGIN",
    "FLOAT32_SATURATION_MARGIN",
    "EvaluationResult",
    "FrameDetector",
    "MarginProbe",
    "MarginSummary",
    "evaluate_on_test_set",
    "format_evaluation",
]

logger = logging.getLogger(__name__)

FLOAT16_SATURATION_MARGIN = 12 * math.log(2)
FLOAT32_SATURATION_MARGIN = 24 * math.log(2)
MARGIN_BIN_EDGES = (-math.inf, 0.0, 2.0, 4.0, 6.0, FLOAT16_SATURATION_MARGIN, 12.0, FLOAT32_SATURATION_MARGIN, math.inf)

#: How each ``nms_iou_method`` is described in the evaluation's results.
_IOU_METHODS = {
    "fast": "Fast-NMS (one static step, on the host and in the fused graph)",
    "cluster": "greedy (Cluster-NMS, exact, in the fused graph)",
}


class FrameDetector(Protocol):
    def detect(self, frame: np.ndarray) -> Detections: ...


class MarginProbe:
    """Logit margins on the common grid, from the same weights as the detector under test.

    Runs the logits form of the network (:func:`build_naive_model` with
    ``output="logits"``) at every pyramid scale and resamples
    ``logit_person - logit_background`` onto the grid exactly as the
    detector resamples its scores.
    """

    def __init__(self, weights: Mapping[str, np.ndarray], spec: DetectorSpec) -> None:
        self.spec = spec
        self.resamplings = scale_resamplings(spec)
        self.session = create_session(build_naive_model(weights, output="logits"), what="the logits model")
        self._input = self.session.get_inputs()[0].name

    def maps(self, frame: np.ndarray) -> list[np.ndarray]:
        """Per-scale ``(rows, cols)`` margin maps, as the network computes them."""
        image = preprocess_frame(frame, self.spec)
        maps = []
        for resampling in self.resamplings:
            scaled = resize_bilinear(image, *resampling.frame_shape)
            outputs = run_session(self.session, {self._input: scaled})
            logits = next(iter(outputs.values()))
            maps.append(logits[0, 1] - logits[0, 0])
        return maps

    def volume(self, frame: np.ndarray) -> np.ndarray:
        """``(scales, rows, cols)`` float32 margins on the grid; NaN where a scale has no window."""
        planes = [
            np.where(resampling.valid, resample_to_grid(margin, resampling), np.nan)
            for margin, resampling in zip(self.maps(frame), self.resamplings, strict=True)
        ]
        return np.stack(planes).astype(np.float32)


@dataclass(frozen=True)
class MarginSummary:
    """The distribution of logit margins at true-positive NMS peaks."""

    margins: np.ndarray

    @property
    def count(self) -> int:
        return int(self.margins.size)

    def fraction_above(self, margin: float) -> float:
        return float(np.mean(self.margins > margin)) if self.margins.size else 0.0

    def histogram(self) -> list[dict[str, Any]]:
        counts, _ = np.histogram(self.margins, bins=np.array(MARGIN_BIN_EDGES))
        return [
            {"from": low, "to": high, "count": int(count)}
            for low, high, count in zip(MARGIN_BIN_EDGES[:-1], MARGIN_BIN_EDGES[1:], counts, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        quantiles = (
            {f"p{q}": float(np.percentile(self.margins, q)) for q in (5, 25, 50, 75, 95)} if self.margins.size else {}
        )
        return {
            "true_positive_peaks": self.count,
            "above_float16_saturation": self.fraction_above(FLOAT16_SATURATION_MARGIN),
            "above_float32_saturation": self.fraction_above(FLOAT32_SATURATION_MARGIN),
            "float16_saturation_margin": FLOAT16_SATURATION_MARGIN,
            "float32_saturation_margin": FLOAT32_SATURATION_MARGIN,
            **quantiles,
            "histogram": [
                {"from": _finite(b["from"]), "to": _finite(b["to"]), "count": b["count"]} for b in self.histogram()
            ],
        }


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


@dataclass(frozen=True)
class EvaluationResult:
    """A detector's results on the test set."""

    curve: MissRateCurve
    detections: tuple[Detections, ...]
    ground_truth: tuple[np.ndarray, ...]
    seeds: tuple[int, ...]
    frame_seconds: tuple[float, ...]
    margins: MarginSummary | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def miss_rate_at_01_fppi(self) -> float:
        return self.curve.miss_rate_at(0.1)

    def to_dict(self) -> dict[str, Any]:
        at_01 = self.curve.point_at_fppi(0.1)
        return {
            "frames": len(self.seeds),
            "ground_truths": self.curve.ground_truths,
            "miss_rate_at_0.1_fppi": self.miss_rate_at_01_fppi,
            "threshold_at_0.1_fppi": _finite(self.curve.threshold_at(0.1)),
            "true_positives_at_0.1_fppi": at_01["true_positives"],
            "false_positives_at_0.1_fppi": at_01["false_positives"],
            "miss_rate_at_1_fppi": self.curve.miss_rate_at(1.0),
            "log_average_miss_rate": self.curve.log_average_miss_rate(),
            "median_frame_seconds": float(np.median(self.frame_seconds)),
            "margins": None if self.margins is None else self.margins.to_dict(),
            **self.extra,
        }


def evaluate_on_test_set(
    detector: FrameDetector,
    config: DetectorConfig,
    *,
    frames: int = 200,
    probe: MarginProbe | None = None,
    scenes: Iterable[Scene] | None = None,
    iou_threshold: float = 0.5,
    split: str = "test",
) -> EvaluationResult:
    """Runs ``detector`` on the test scenes (or another ``split``'s) and scores it (miss rate versus FPPI).

    With a ``probe``, the logit margin at every true-positive peak is
    collected too. ``scenes`` replaces the generated test set (for tests).
    The result's extra data hold the operating point at the configured
    score threshold and, for a detector that keeps its candidates before
    IoU suppression (the host pipeline's ``last_candidates``), on how many
    frames Fast-NMS would keep other boxes than greedy among the candidates
    the deployed detector sees (the best ``max_detections`` at the
    configured threshold).
    """
    spec = config.detector
    fast_differs = audited = 0
    probe_margins = _MarginCollector(probe, iou_threshold)
    detections: list[Detections] = []
    ground_truth: list[np.ndarray] = []
    seeds: list[int] = []
    seconds: list[float] = []
    for scene in scenes if scenes is not None else generate_scenes(config, split, frames):
        start = time.perf_counter()
        found = detector.detect(scene.image)
        seconds.append(time.perf_counter() - start)
        detections.append(found)
        candidates = getattr(detector, "last_candidates", None)
        if isinstance(candidates, Detections):
            deployed = candidates.boxes[candidates.scores >= spec.score_threshold][: spec.max_detections]
            fast_differs += int(fast_nms_differs(deployed, spec.nms_iou_threshold))
            audited += 1
        ground_truth.append(scene.boxes)
        seeds.append(scene.seed)
        probe_margins.add(found, scene)
    if not any(len(boxes) for boxes in ground_truth):
        raise GraphoptError(
            f"the {len(ground_truth)} test frame(s) hold no people, so the miss rate is undefined; use more frames"
        )
    curve = evaluate(detections, ground_truth, iou_threshold=iou_threshold)
    return EvaluationResult(
        curve=curve,
        detections=tuple(detections),
        ground_truth=tuple(ground_truth),
        seeds=tuple(seeds),
        frame_seconds=tuple(seconds),
        margins=probe_margins.summary(),
        extra=_operating_point(spec, curve, audited, fast_differs),
    )


class _MarginCollector:
    """The logit margins at every true-positive peak, with a probe (else nothing)."""

    def __init__(self, probe: MarginProbe | None, iou_threshold: float) -> None:
        self.probe, self.iou_threshold = probe, iou_threshold
        self.margins: list[np.ndarray] = []

    def add(self, found: Detections, scene: Scene) -> None:
        if self.probe is None or not len(found):
            return
        match = match_frame(found, scene.boxes, iou_threshold=self.iou_threshold)
        cells = found.cells[match.true_positive]
        if len(cells):
            volume = self.probe.volume(scene.image)
            self.margins.append(volume[cells[:, 0], cells[:, 1], cells[:, 2]])

    def summary(self) -> MarginSummary | None:
        if self.probe is None:
            return None
        return MarginSummary(np.concatenate(self.margins) if self.margins else np.zeros((0,), dtype=np.float32))


def _operating_point(spec: DetectorSpec, curve: MissRateCurve, audited: int, fast_differs: int) -> dict[str, Any]:
    """The evaluation's extra data: the point at the configured threshold, and how the IoU suppression ran."""
    extra: dict[str, Any] = {
        "at_score_threshold": {"configured": spec.score_threshold, **curve.point_at_threshold(spec.score_threshold)},
    }
    if audited:
        extra["iou_suppression"] = {
            "method": _IOU_METHODS[spec.nms_iou_method] if spec.nms_iou_threshold < 1 else "off",
            "iou_threshold": spec.nms_iou_threshold,
            "candidates": spec.max_detections,
            "frames": audited,
            "fast_nms_differs_frames": fast_differs,
        }
    return extra


def format_evaluation(result: EvaluationResult, *, name: str = "detector") -> Sequence[str]:
    """Human-readable lines of an :class:`EvaluationResult`."""
    data = result.to_dict()
    lines = [
        f"{name}: {data['frames']} test frames, {data['ground_truths']} people",
        f"  miss rate at 0.1 FPPI: {data['miss_rate_at_0.1_fppi']:.3f} "
        f"(score threshold {data['threshold_at_0.1_fppi']}; {data['true_positives_at_0.1_fppi']} true, "
        f"{data['false_positives_at_0.1_fppi']} false positives)",
        f"  miss rate at 1 FPPI:   {data['miss_rate_at_1_fppi']:.3f}",
        f"  log-average miss rate: {data['log_average_miss_rate']:.3f}",
        f"  median time per frame: {1000 * data['median_frame_seconds']:.1f} ms",
    ]
    deployed = data.get("at_score_threshold")
    if deployed is not None:
        lines.insert(4, f"  at the configured threshold {deployed['configured']:g}: miss rate "
                        f"{deployed['miss_rate']:.3f}, {deployed['true_positives']} true, "
                        f"{deployed['false_positives']} false positives ({deployed['fppi']:.3f} FPPI)")
    suppression = data.get("iou_suppression")
    if suppression is not None:
        lines.append(f"  IoU suppression: {suppression['method']} at IoU {suppression['iou_threshold']:g}; Fast-NMS "
                     f"would differ on {suppression['fast_nms_differs_frames']} of {suppression['frames']} frames "
                     f"(the deployed top-{suppression['candidates']} at the configured threshold)")
    if result.margins is not None:
        m = result.margins.to_dict()
        lines.append(
            f"  logit margins at {m['true_positive_peaks']} true-positive peaks: "
            + (f"median {m['p50']:.1f}, 5-95% {m['p5']:.1f}..{m['p95']:.1f}, " if m["true_positive_peaks"] else "")
            + f"{100 * m['above_float16_saturation']:.0f}% above {FLOAT16_SATURATION_MARGIN:.2f} (float16 softmax "
            f"saturates), {100 * m['above_float32_saturation']:.0f}% above {FLOAT32_SATURATION_MARGIN:.2f} (float32)"
        )
        for b in m["histogram"]:
            lines.append(f"    [{b['from']}, {b['to']}): {b['count']}")
    return lines
