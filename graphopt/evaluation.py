"""Detector evaluation as in pedestrian-detection practice: miss rate against false positives per image.

:func:`evaluate` follows the Caltech protocol of Dollár et al.: in every frame
the detections, highest score first, are matched greedily to the ground truth
(each takes the still-unmatched ground-truth box it overlaps most, if the IoU
reaches the threshold; otherwise it is a false positive). Lowering the score
threshold only appends detections to that order, so one matching per frame
serves every threshold, and the curve is swept over the sorted union of the
scores. Detections with equal scores enter the curve together, because no
threshold keeps one of them without the others.

:func:`compare_detections` answers a different question: does a rewritten
detector (another graph form, another backend, reduced precision) find the
same boxes with the same scores as the reference? It matches the two sets of
detections one-to-one, frame by frame, and reports what is missing, what is
extra and how far matched scores moved, in the spirit of an output comparator.

:func:`precision_recall` reads the same matching as object-detection practice
does (PASCAL VOC, COCO): precision against recall, and the average precision
(AP) as the area under the precision envelope over all recall points.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .detections import Detections

__all__ = [
    "LOG_AVERAGE_FPPI",
    "DetectorComparison",
    "FrameComparison",
    "FrameMatch",
    "MatchedPair",
    "MissRateCurve",
    "PrecisionRecallCurve",
    "compare_detections",
    "evaluate",
    "iou_matrix",
    "match_frame",
    "precision_recall",
]

logger = logging.getLogger(__name__)

#: The nine FPPI points, evenly spaced in log space over [1e-2, 1e0], at which
#: the log-average miss rate samples the curve (Dollár et al., PAMI 2012).
LOG_AVERAGE_FPPI: tuple[float, ...] = tuple(float(v) for v in np.logspace(-2.0, 0.0, 9))

# A miss rate of exactly zero would send the geometric mean to zero; Dollár's
# toolbox clamps each sample to this floor before taking logarithms.
_MISS_RATE_FLOOR = 1e-10


def _as_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{what} must have shape (N, 4) as (x0, y0, x1, y1), got {array.shape}")
    return array


def _check_iou_threshold(iou_threshold: float) -> None:
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"the IoU threshold must lie in (0, 1], got {iou_threshold}")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``.

    Boxes are ``(x0, y0, x1, y1)`` in continuous coordinates, so a box's area
    is ``(x1 - x0) * (y1 - y0)``. Pairs whose union is empty have IoU 0.

    Returns:
        ``(len(a), len(b))`` float64.
    """
    a = _as_boxes(a, "boxes a")
    b = _as_boxes(b, "boxes b")
    area_a = np.clip(a[:, 2] - a[:, 0], 0.0, None) * np.clip(a[:, 3] - a[:, 1], 0.0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0.0, None) * np.clip(b[:, 3] - b[:, 1], 0.0, None)
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
    intersection = width * height
    union = area_a[:, None] + area_b[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0.0, intersection / np.where(union > 0.0, union, 1.0), 0.0)
    return iou


def _greedy_match(iou: np.ndarray, order: np.ndarray, iou_threshold: float) -> np.ndarray:
    """For each row taken in ``order``, the still-free column of highest IoU ≥ threshold, or -1.

    Ties between columns go to the lowest column index.
    """
    rows, cols = iou.shape
    matched = np.full(rows, -1, dtype=np.int64)
    free = np.ones(cols, dtype=bool)
    if cols == 0:
        return matched
    for row in order:
        candidates = np.where(free, iou[row], -1.0)
        col = int(np.argmax(candidates))  # first maximum: lowest index on ties
        if candidates[col] >= iou_threshold:
            matched[row] = col
            free[col] = False
    return matched


@dataclass(frozen=True)
class FrameMatch:
    """The greedy matching of one frame's detections to its ground truth.

    Attributes:
        true_positive: ``(N,)`` bool, per detection (in the order of the
            :class:`Detections`): whether it matched a ground-truth box.
        matched_gt: ``(N,)`` int64, the index of the ground-truth box each
            detection matched, or -1 for a false positive.
        gt_matched: ``(M,)`` bool, per ground-truth box: whether it was found.
    """

    true_positive: np.ndarray
    matched_gt: np.ndarray
    gt_matched: np.ndarray

    @property
    def true_positives(self) -> int:
        return int(self.true_positive.sum())

    @property
    def false_positives(self) -> int:
        return int((~self.true_positive).sum())

    @property
    def misses(self) -> int:
        return int((~self.gt_matched).sum())


def match_frame(detections: Detections, gt_boxes: np.ndarray, *, iou_threshold: float = 0.5) -> FrameMatch:
    """Match one frame's detections to its ground-truth boxes, greedily by descending score.

    Each detection, highest score first (equal scores in their given order),
    takes the still-unmatched ground-truth box with the highest IoU if that
    IoU is at least ``iou_threshold`` (ties go to the lowest ground-truth
    index); otherwise it is a false positive. A second detection of an
    already-found person is therefore a false positive.
    """
    _check_iou_threshold(iou_threshold)
    gt = _as_boxes(gt_boxes, "ground-truth boxes")
    iou = iou_matrix(detections.boxes, gt)
    order = np.argsort(-np.asarray(detections.scores, dtype=np.float64), kind="stable")
    matched_gt = _greedy_match(iou, order, iou_threshold)
    gt_matched = np.zeros(gt.shape[0], dtype=bool)
    gt_matched[matched_gt[matched_gt >= 0]] = True
    return FrameMatch(true_positive=matched_gt >= 0, matched_gt=matched_gt, gt_matched=gt_matched)


def _check_curve(thresholds: np.ndarray, **values: np.ndarray) -> None:
    """Raises ValueError unless every array of ``values`` has one value per threshold."""
    n = thresholds.shape[0]
    if any(array.shape != (n,) for array in values.values()):
        shapes = ", ".join(f"{name.replace('_', ' ')} {array.shape}" for name, array in values.items())
        raise ValueError(f"inconsistent curve: thresholds {thresholds.shape}, {shapes}")


@dataclass(frozen=True)
class MissRateCurve:
    """Miss rate against false positives per image (FPPI), one point per distinct score.

    Point ``i`` keeps the detections with score ≥ ``thresholds[i]``;
    thresholds run from the highest score to the lowest, so FPPI rises and
    the miss rate falls along the arrays.

    Attributes:
        thresholds: ``(P,)`` float64, the distinct detection scores, descending.
        fppi: ``(P,)`` float64, false positives per frame at each threshold.
        miss_rate: ``(P,)`` float64, the share of ground-truth boxes not found.
        frames: how many frames were evaluated.
        ground_truths: how many ground-truth boxes they hold.
    """

    thresholds: np.ndarray
    fppi: np.ndarray
    miss_rate: np.ndarray
    frames: int
    ground_truths: int

    def __post_init__(self) -> None:
        _check_curve(self.thresholds, fppi=self.fppi, miss_rate=self.miss_rate)

    def __len__(self) -> int:
        return int(self.thresholds.shape[0])

    def _best_index(self, fppi: float) -> int | None:
        """The point of lowest miss rate with FPPI ≤ ``fppi`` (highest threshold on ties), or None."""
        within = np.flatnonzero(self.fppi <= fppi)
        if within.size == 0:
            return None
        # argmin returns the first minimum, i.e. the highest threshold reaching it.
        return int(within[np.argmin(self.miss_rate[within])])

    def miss_rate_at(self, fppi: float) -> float:
        """The miss rate read off the curve at ``fppi`` false positives per image.

        That is the lowest miss rate among the operating points whose FPPI does
        not exceed the target; 1.0 when even the highest threshold exceeds it.
        """
        index = self._best_index(fppi)
        return 1.0 if index is None else float(self.miss_rate[index])

    def threshold_at(self, fppi: float) -> float:
        """The score threshold of the point :meth:`miss_rate_at` reads.

        Among points with that miss rate, the highest threshold (fewest false
        positives). ``inf`` when no point qualifies: no threshold reaching a
        detection stays within the target, so keep none.
        """
        index = self._best_index(fppi)
        return math.inf if index is None else float(self.thresholds[index])

    def _point(self, index: int | None, threshold: float) -> dict[str, float]:
        if index is None:  # no detection kept
            return {"threshold": threshold, "true_positives": 0, "false_positives": 0, "fppi": 0.0, "miss_rate": 1.0}
        return {
            "threshold": float(self.thresholds[index]),
            "true_positives": round((1.0 - float(self.miss_rate[index])) * self.ground_truths),
            "false_positives": round(float(self.fppi[index]) * self.frames),
            "fppi": float(self.fppi[index]),
            "miss_rate": float(self.miss_rate[index]),
        }

    def point_at_fppi(self, fppi: float) -> dict[str, float]:
        """The operating point :meth:`miss_rate_at` reads: threshold, true and false positives, FPPI, miss rate."""
        return self._point(self._best_index(fppi), math.inf)

    def point_at_threshold(self, threshold: float) -> dict[str, float]:
        """The operating point that keeps the detections scoring at least ``threshold``."""
        within = np.flatnonzero(self.thresholds >= threshold)
        return self._point(int(within[-1]) if within.size else None, threshold)

    def log_average_miss_rate(self) -> float:
        """Dollár's log-average miss rate: the geometric mean of the miss rate at :data:`LOG_AVERAGE_FPPI`.

        Each sample is the miss rate at the largest FPPI not exceeding the
        sample point (1.0 if there is none), floored at 1e-10 before the
        logarithm as in the Caltech toolbox.
        """
        samples = [max(self.miss_rate_at(point), _MISS_RATE_FLOOR) for point in LOG_AVERAGE_FPPI]
        return float(math.exp(sum(math.log(s) for s in samples) / len(samples)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "ground_truths": self.ground_truths,
            "log_average_miss_rate": self.log_average_miss_rate(),
            "miss_rate_at_0.1_fppi": self.miss_rate_at(0.1),
            "miss_rate_at_1_fppi": self.miss_rate_at(1.0),
            "thresholds": [float(v) for v in self.thresholds],
            "fppi": [float(v) for v in self.fppi],
            "miss_rate": [float(v) for v in self.miss_rate],
        }


@dataclass(frozen=True)
class _Sweep:
    """True and false positives at every distinct score, highest first (the matching both curves share)."""

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    frames: int
    ground_truths: int


def _sweep(detections: Sequence[Detections], ground_truth: Sequence[np.ndarray], iou_threshold: float) -> _Sweep:
    _check_iou_threshold(iou_threshold)
    if len(detections) != len(ground_truth):
        raise ValueError(f"there are detections for {len(detections)} frames but ground truth for {len(ground_truth)}")
    if len(detections) == 0:
        raise ValueError("there are no frames to evaluate")

    scores: list[np.ndarray] = []
    hits: list[np.ndarray] = []
    ground_truths = 0
    for frame_detections, gt in zip(detections, ground_truth, strict=True):
        match = match_frame(frame_detections, gt, iou_threshold=iou_threshold)
        scores.append(np.asarray(frame_detections.scores, dtype=np.float64).reshape(-1))
        hits.append(match.true_positive)
        ground_truths += int(match.gt_matched.shape[0])
    if ground_truths == 0:
        raise ValueError("the ground truth holds no boxes, so the miss rate and recall are undefined")

    all_scores = np.concatenate(scores)
    if np.isnan(all_scores).any():
        raise ValueError("some detection scores are NaN, so no threshold can order them")
    all_hits = np.concatenate(hits)
    order = np.argsort(-all_scores, kind="stable")
    sorted_scores = all_scores[order]
    tp_cumulative = np.cumsum(all_hits[order])
    fp_cumulative = np.cumsum(~all_hits[order])
    thresholds = np.unique(all_scores)[::-1].copy()
    # The last detection with score ≥ t: equal scores enter together.
    last = np.searchsorted(-sorted_scores, -thresholds, side="right") - 1
    logger.debug(
        "evaluated %d frames, %d ground-truth boxes, %d detections, %d operating points",
        len(detections),
        ground_truths,
        all_scores.shape[0],
        thresholds.shape[0],
    )
    return _Sweep(thresholds=thresholds, true_positives=tp_cumulative[last].astype(np.float64),
                  false_positives=fp_cumulative[last].astype(np.float64), frames=len(detections),
                  ground_truths=ground_truths)


def evaluate(
    detections: Sequence[Detections], ground_truth: Sequence[np.ndarray], *, iou_threshold: float = 0.5
) -> MissRateCurve:
    """The miss-rate/FPPI curve of a detector over a set of frames.

    Args:
        detections: one :class:`Detections` per frame.
        ground_truth: one ``(M, 4)`` array of ``(x0, y0, x1, y1)`` person
            boxes per frame (``M`` may be 0).
        iou_threshold: the overlap a detection needs to count as finding a
            person (0.5 in the Caltech protocol).

    Raises:
        ValueError: the two sequences differ in length, there are no frames,
            no frame holds a ground-truth box (the miss rate is undefined), or
            a score is NaN.
    """
    sweep = _sweep(detections, ground_truth, iou_threshold)
    return MissRateCurve(
        thresholds=sweep.thresholds,
        fppi=sweep.false_positives / sweep.frames,
        miss_rate=1.0 - sweep.true_positives / sweep.ground_truths,
        frames=sweep.frames,
        ground_truths=sweep.ground_truths,
    )


@dataclass(frozen=True)
class PrecisionRecallCurve:
    """Precision against recall, one point per distinct score (the object-detection view of a detector).

    Point ``i`` keeps the detections with score ≥ ``thresholds[i]``;
    thresholds run from the highest score to the lowest, so recall rises
    along the arrays.

    Attributes:
        thresholds: ``(P,)`` float64, the distinct detection scores, descending.
        precision: ``(P,)`` float64, true positives over detections kept.
        recall: ``(P,)`` float64, true positives over ground-truth boxes.
        frames: how many frames were evaluated.
        ground_truths: how many ground-truth boxes they hold.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    frames: int
    ground_truths: int

    def __post_init__(self) -> None:
        _check_curve(self.thresholds, precision=self.precision, recall=self.recall)

    def __len__(self) -> int:
        return int(self.thresholds.shape[0])

    def average_precision(self) -> float:
        """The area under the precision envelope, all points (PASCAL VOC 2010+, and COCO without its 101 samples).

        The envelope at recall ``r`` is the highest precision at any recall
        ≥ ``r``; the area sums it over each step in recall from 0 to the
        curve's last recall (recall never reached adds nothing). 0.0 for an
        empty curve.
        """
        if not len(self):
            return 0.0
        envelope = np.maximum.accumulate(self.precision[::-1])[::-1]
        steps = np.diff(np.concatenate([[0.0], self.recall]))
        return float(np.sum(steps * envelope))

    def point_at_threshold(self, threshold: float) -> dict[str, float]:
        """Precision and recall keeping the detections scoring at least ``threshold`` (precision 1 if none)."""
        within = np.flatnonzero(self.thresholds >= threshold)
        if not within.size:
            return {"threshold": threshold, "precision": 1.0, "recall": 0.0}
        index = int(within[-1])
        return {"threshold": float(self.thresholds[index]), "precision": float(self.precision[index]),
                "recall": float(self.recall[index])}

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "ground_truths": self.ground_truths,
            "average_precision": self.average_precision(),
            "thresholds": [float(v) for v in self.thresholds],
            "precision": [float(v) for v in self.precision],
            "recall": [float(v) for v in self.recall],
        }


def precision_recall(
    detections: Sequence[Detections], ground_truth: Sequence[np.ndarray], *, iou_threshold: float = 0.5
) -> PrecisionRecallCurve:
    """The precision/recall curve of a detector over a set of frames, matched as :func:`evaluate` matches.

    Detections with equal scores enter the curve together, as in
    :func:`evaluate` (the VOC and COCO tools take them one by one in an
    arbitrary order, which can move the AP a little where scores tie).

    Raises:
        ValueError: as :func:`evaluate`.
    """
    sweep = _sweep(detections, ground_truth, iou_threshold)
    return PrecisionRecallCurve(
        thresholds=sweep.thresholds,
        precision=sweep.true_positives / (sweep.true_positives + sweep.false_positives),
        recall=sweep.true_positives / sweep.ground_truths,
        frames=sweep.frames,
        ground_truths=sweep.ground_truths,
    )


@dataclass(frozen=True)
class MatchedPair:
    """A reference detection and the candidate detection matched to it.

    Attributes:
        reference: index into the frame's reference detections.
        candidate: index into the frame's candidate detections.
        iou: their overlap.
        score_difference: candidate score − reference score, or None when
            scores were not compared.
    """

    reference: int
    candidate: int
    iou: float
    score_difference: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "iou": self.iou,
            "score_difference": self.score_difference,
        }


@dataclass(frozen=True)
class FrameComparison:
    """One frame of a :func:`compare_detections` run.

    Attributes:
        frame: the frame's index.
        reference_count: how many reference detections the frame has.
        candidate_count: how many candidate detections it has.
        pairs: the matched pairs, in descending reference score.
        missing: reference detections no candidate matched.
        extra: candidate detections that matched no reference.
        identical: same count, everything matched, every IoU and score
            difference within the comparison's tolerances.
    """

    frame: int
    reference_count: int
    candidate_count: int
    pairs: tuple[MatchedPair, ...]
    missing: tuple[int, ...]
    extra: tuple[int, ...]
    identical: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "reference_count": self.reference_count,
            "candidate_count": self.candidate_count,
            "identical": self.identical,
            "pairs": [pair.to_dict() for pair in self.pairs],
            "missing": list(self.missing),
            "extra": list(self.extra),
        }


@dataclass(frozen=True)
class DetectorComparison:
    """How a candidate detector's output differs from a reference's, over a set of frames.

    The score statistics are over the absolute score differences of matched
    pairs; they and ``mean_iou`` are None when there is nothing to average
    (no matches, or scores not compared).
    """

    frames: int
    identical_frames: int
    matched: int
    missing: int
    extra: int
    max_abs_score_difference: float | None
    mean_abs_score_difference: float | None
    median_abs_score_difference: float | None
    mean_iou: float | None
    iou_threshold: float
    compare_scores: bool
    per_frame: tuple[FrameComparison, ...]

    @property
    def identical(self) -> bool:
        """Whether every frame is identical within the tolerances."""
        return self.identical_frames == self.frames

    def summary(self) -> str:
        """One line for a log or a terminal."""
        parts = [
            f"{self.identical_frames}/{self.frames} frames identical",
            f"{self.matched} matched, {self.missing} missing, {self.extra} extra",
        ]
        if self.mean_iou is not None:
            parts.append(f"mean IoU {self.mean_iou:.4f}")
        if self.max_abs_score_difference is not None:
            parts.append(
                f"|score diff| max {self.max_abs_score_difference:.3g}, mean {self.mean_abs_score_difference:.3g}, "
                f"median {self.median_abs_score_difference:.3g}"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "identical_frames": self.identical_frames,
            "matched": self.matched,
            "missing": self.missing,
            "extra": self.extra,
            "max_abs_score_difference": self.max_abs_score_difference,
            "mean_abs_score_difference": self.mean_abs_score_difference,
            "median_abs_score_difference": self.median_abs_score_difference,
            "mean_iou": self.mean_iou,
            "iou_threshold": self.iou_threshold,
            "compare_scores": self.compare_scores,
            "per_frame": [frame.to_dict() for frame in self.per_frame],
        }


def _compare_frame(
    index: int,
    reference: Detections,
    candidate: Detections,
    *,
    iou_threshold: float,
    compare_scores: bool,
    identical_iou: float,
    score_tolerance: float,
) -> FrameComparison:
    iou = iou_matrix(reference.boxes, candidate.boxes)
    reference_scores = np.asarray(reference.scores, dtype=np.float64)
    candidate_scores = np.asarray(candidate.scores, dtype=np.float64)
    order = np.argsort(-reference_scores, kind="stable")
    matched = _greedy_match(iou, order, iou_threshold)
    pairs = []
    for ref in order:
        cand = int(matched[ref])
        if cand < 0:
            continue
        difference = float(candidate_scores[cand] - reference_scores[ref]) if compare_scores else None
        pairs.append(
            MatchedPair(reference=int(ref), candidate=cand, iou=float(iou[ref, cand]), score_difference=difference)
        )
    missing = tuple(int(i) for i in np.flatnonzero(matched < 0))
    taken = np.zeros(len(candidate), dtype=bool)
    taken[matched[matched >= 0]] = True
    extra = tuple(int(i) for i in np.flatnonzero(~taken))
    identical = (
        len(reference) == len(candidate)
        and not missing
        and not extra
        and all(pair.iou >= identical_iou for pair in pairs)
        and all(pair.score_difference is None or abs(pair.score_difference) <= score_tolerance for pair in pairs)
    )
    return FrameComparison(
        frame=index,
        reference_count=len(reference),
        candidate_count=len(candidate),
        pairs=tuple(pairs),
        missing=missing,
        extra=extra,
        identical=identical,
    )


def compare_detections(
    reference: Sequence[Detections],
    candidate: Sequence[Detections],
    *,
    iou_threshold: float = 0.5,
    compare_scores: bool = True,
    identical_iou: float = 0.99,
    score_tolerance: float = 1e-6,
) -> DetectorComparison:
    """Compare a candidate detector's detections with a reference's, frame by frame.

    In each frame the reference detections, highest score first, take the
    still-unmatched candidate detection they overlap most, if that IoU
    reaches ``iou_threshold`` (ties go to the lowest candidate index).

    Args:
        reference: the reference detector's detections, one per frame.
        candidate: the candidate's, for the same frames.
        iou_threshold: the overlap two detections need to be the same one.
        compare_scores: False when the two detectors score on different
            scales (a probability against a logit margin): score differences
            are then not computed and are None throughout.
        identical_iou: a frame is identical only if every pair overlaps at
            least this much ...
        score_tolerance: ... and (when scores are compared) every score
            differs by at most this much.

    Raises:
        ValueError: the two sequences differ in length.
    """
    _check_iou_threshold(iou_threshold)
    if len(reference) != len(candidate):
        raise ValueError(
            f"there are reference detections for {len(reference)} frames but candidate detections for {len(candidate)}"
        )
    per_frame = tuple(
        _compare_frame(index, ref, cand, iou_threshold=iou_threshold, compare_scores=compare_scores,
                       identical_iou=identical_iou, score_tolerance=score_tolerance)
        for index, (ref, cand) in enumerate(zip(reference, candidate, strict=True))
    )
    pairs = [pair for frame in per_frame for pair in frame.pairs]
    ious = np.array([pair.iou for pair in pairs], dtype=np.float64)
    differences = np.array(
        [abs(pair.score_difference) for pair in pairs if pair.score_difference is not None], dtype=np.float64
    )
    has_scores = compare_scores and differences.size > 0
    return DetectorComparison(
        frames=len(per_frame),
        identical_frames=sum(frame.identical for frame in per_frame),
        matched=len(pairs),
        missing=sum(len(frame.missing) for frame in per_frame),
        extra=sum(len(frame.extra) for frame in per_frame),
        max_abs_score_difference=float(differences.max()) if has_scores else None,
        mean_abs_score_difference=float(differences.mean()) if has_scores else None,
        median_abs_score_difference=float(np.median(differences)) if has_scores else None,
        mean_iou=float(ious.mean()) if ious.size else None,
        iou_threshold=iou_threshold,
        compare_scores=compare_scores,
        per_frame=per_frame,
    )
