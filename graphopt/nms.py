"""IoU suppression of overlapping boxes: the NumPy reference of the graph block.

A max-pooling NMS over a score volume (:func:`graphopt.blocks.max_pool_peaks`)
keeps one peak per window, but a window fixed in grid cells can be smaller
than an object: two true local maxima of one object survive, a few cells or
one pyramid scale apart. Greedy IoU suppression removes them: candidates are
taken best first (the ``TopK`` order, ties in that order) and a candidate is
kept unless a *kept* earlier candidate overlaps it with IoU above the
threshold.

The graph form (:func:`graphopt.blocks.iou_suppression`) has static shapes
only, so it computes the same result as a fixed point (Cluster-NMS,
Zheng et al. 2021): ``keep_i = no kept j < i with IoU(i, j) > t``, iterated
from "everything kept"; after ``K − 1`` iterations over ``K`` candidates it
equals greedy exactly. Fast-NMS (Bolya et al. 2019) is one iteration: it also
lets a suppressed candidate suppress, and so may drop boxes greedy keeps.

Overlap is decided as ``intersection > t · union`` in float32, with the same
operations in the same order as the graph, so that host and graph agree
bit for bit (no division whose rounding could flip a pair at ``IoU == t``).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from .detections import Detections

__all__ = ["METHODS", "cluster_nms", "fast_nms", "fast_nms_differs", "greedy_nms", "overlaps", "suppress_overlapping"]

logger = logging.getLogger(__name__)

#: The static forms of IoU suppression the graph block writes: ``"cluster"``
#: (greedy exactly) and ``"fast"`` (one Fast-NMS step).
METHODS = ("cluster", "fast")

Method = Literal["cluster", "fast"]


def _check(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float32)
    if array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (K, 4) as (x0, y0, x1, y1), got {array.shape}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"the IoU threshold must lie in (0, 1], got {iou_threshold}")
    return array


def overlaps(boxes: np.ndarray, iou_threshold: float, classes: np.ndarray | None = None) -> np.ndarray:
    """``(K, K)`` bool: ``IoU(i, j) > iou_threshold``, computed in float32 exactly as the graph block does.

    With ``classes`` (``(K,)`` labels), only boxes of the same class overlap (class-aware suppression).
    """
    b = _check(boxes, iou_threshold)
    x0, y0, x1, y1 = (b[:, i] for i in range(4))
    zero = np.float32(0)
    width = np.maximum(np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :]), zero)
    height = np.maximum(np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :]), zero)
    intersection = width * height
    area = np.maximum(x1 - x0, zero) * np.maximum(y1 - y0, zero)
    union = (area[:, None] + area[None, :]) - intersection
    over = intersection > union * np.float32(iou_threshold)
    if classes is not None:
        labels = np.asarray(classes).reshape(-1)
        over &= labels[:, None] == labels[None, :]
    return over


def _valid(valid: np.ndarray | None, count: int) -> np.ndarray:
    return np.ones(count, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(count)


def greedy_nms(boxes: np.ndarray, iou_threshold: float, valid: np.ndarray | None = None, *,
               classes: np.ndarray | None = None) -> np.ndarray:
    """Greedy suppression of ``boxes`` taken in their given (best-first) order; returns the keep mask.

    Args:
        boxes: ``(K, 4)`` ``(x0, y0, x1, y1)``, best first.
        iou_threshold: a box is dropped when a kept earlier box overlaps it with IoU above this.
        valid: ``(K,)`` which rows are candidates at all (default: all); others are neither kept nor suppress.
        classes: ``(K,)`` class labels: a box suppresses only boxes of its class (default: class-agnostic).
    """
    over = overlaps(boxes, iou_threshold, classes)
    keep = _valid(valid, over.shape[0]).copy()
    for i in range(keep.shape[0]):
        if keep[i] and np.any(over[i, :i] & keep[:i]):
            keep[i] = False
    return keep


def cluster_nms(boxes: np.ndarray, iou_threshold: float, valid: np.ndarray | None = None, *,
                iterations: int | None = None, classes: np.ndarray | None = None) -> np.ndarray:
    """The fixed-point iteration the graph block unrolls; ``iterations`` defaults to ``K − 1`` (greedy exactly)."""
    over = overlaps(boxes, iou_threshold, classes)
    count = over.shape[0]
    valid_mask = _valid(valid, count)
    earlier = np.tril(over, k=-1) & valid_mask[None, :]
    keep = valid_mask.copy()
    for _ in range(max(count - 1, 0) if iterations is None else iterations):
        keep = ~np.any(earlier & keep[None, :], axis=1)
    return keep & valid_mask


def fast_nms(boxes: np.ndarray, iou_threshold: float, valid: np.ndarray | None = None, *,
             classes: np.ndarray | None = None) -> np.ndarray:
    """Fast-NMS: drop a box when any earlier candidate, kept or not, overlaps it above the threshold."""
    return cluster_nms(boxes, iou_threshold, valid, iterations=1, classes=classes)


def fast_nms_differs(boxes: np.ndarray, iou_threshold: float) -> bool:
    """Whether Fast-NMS keeps other rows of ``boxes`` (best first) than greedy suppression (never at IoU 1)."""
    if iou_threshold >= 1:
        return False
    return not np.array_equal(fast_nms(boxes, iou_threshold), greedy_nms(boxes, iou_threshold))


def suppress_overlapping(detections: Detections, iou_threshold: float, *, method: Method = "cluster") -> Detections:
    """The detections greedy IoU suppression keeps (``method="fast"``: Fast-NMS's), in their order."""
    if method not in METHODS:
        raise ValueError(f"unknown IoU suppression method {method!r}; expected one of {', '.join(METHODS)}")
    keep = (greedy_nms if method == "cluster" else fast_nms)(detections.boxes, iou_threshold)
    return detections.take(keep)
