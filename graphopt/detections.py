"""The detections one frame yields, in the same form whichever pipeline produced them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CLASSED_DETECTOR_OUTPUTS", "FUSED_DETECTOR_OUTPUTS", "Detections"]

#: The outputs of a fused detector graph, each of static shape: ``scores``
#: ``(K,)``, ``boxes`` ``(K, 4)``, ``cells`` ``(K, 3)`` and ``num_detections``
#: (how many of the K rows are detections, highest score first).
FUSED_DETECTOR_OUTPUTS = ("scores", "boxes", "cells", "num_detections")

#: The outputs of a fused multi-class detector graph (the YOLO family): as
#: :data:`FUSED_DETECTOR_OUTPUTS`, with ``classes`` ``(K,)`` int32 in place
#: of ``cells`` (a box regressed per anchor has no grid peak to name).
CLASSED_DETECTOR_OUTPUTS = ("scores", "boxes", "classes", "num_detections")


def _no_classes() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


@dataclass(frozen=True)
class Detections:
    """Detections of one frame, highest score first.

    Attributes:
        boxes: ``(N, 4)`` float32 ``(x0, y0, x1, y1)`` in frame pixels.
        scores: ``(N,)`` float32; what the pipeline thresholds (a probability
            for the naive pipeline, a logit margin for the logit forms).
        cells: ``(N, 3)`` int64 ``(scale index, grid row, grid column)`` of the
            NMS peak each detection comes from (−1 where there is none).
        classes: ``(N,)`` int64 class of each detection; all 0 for a
            one-class detector (left out, it is filled so).
    """

    boxes: np.ndarray
    scores: np.ndarray
    cells: np.ndarray
    classes: np.ndarray = field(default_factory=_no_classes)

    def __post_init__(self) -> None:
        n = self.scores.shape[0]
        if n and self.classes.shape == (0,):
            object.__setattr__(self, "classes", np.zeros((n,), dtype=np.int64))
        if self.boxes.shape != (n, 4) or self.cells.shape != (n, 3) or self.classes.shape != (n,):
            raise ValueError(
                f"inconsistent detections: boxes {self.boxes.shape}, scores {self.scores.shape}, "
                f"cells {self.cells.shape}, classes {self.classes.shape}"
            )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def take(self, rows: np.ndarray) -> Detections:
        """The detections ``rows`` selects (a boolean mask or indices), in that order."""
        return Detections(boxes=self.boxes[rows], scores=self.scores[rows], cells=self.cells[rows],
                          classes=self.classes[rows])

    @property
    def scale_index(self) -> np.ndarray:
        return self.cells[:, 0]

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), dtype=np.float32),
            scores=np.zeros((0,), dtype=np.float32),
            cells=np.zeros((0, 3), dtype=np.int64),
        )

    @classmethod
    def from_arrays(cls, boxes: np.ndarray, scores: np.ndarray, cells: np.ndarray | None = None,
                    classes: np.ndarray | None = None) -> Detections:
        """Detections from arrays in any order; sorted by descending score (stable)."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        cells = (
            np.full((scores.shape[0], 3), -1, dtype=np.int64)
            if cells is None
            else np.asarray(cells, dtype=np.int64).reshape(-1, 3)
        )
        labels = (np.zeros(scores.shape[0], dtype=np.int64) if classes is None
                  else np.asarray(classes, dtype=np.int64).reshape(-1))
        order = np.argsort(-scores, kind="stable")
        return cls(boxes=boxes[order], scores=scores[order], cells=cells[order], classes=labels[order])
