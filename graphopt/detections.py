"""The detections one frame yields, in the same form whichever pipeline produced them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FUSED_DETECTOR_OUTPUTS", "Detections"]

#: The outputs of a fused detector graph, each of static shape: ``scores``
#: ``(K,)``, ``boxes`` ``(K, 4)``, ``cells`` ``(K, 3)`` and ``num_detections``
#: (how many of the K rows are detections, highest score first).
FUSED_DETECTOR_OUTPUTS = ("scores", "boxes", "cells", "num_detections")


@dataclass(frozen=True)
class Detections:
    """Detections of one frame, highest score first.

    Attributes:
        boxes: ``(N, 4)`` float32 ``(x0, y0, x1, y1)`` in frame pixels.
        scores: ``(N,)`` float32; what the pipeline thresholds (a probability
            for the naive pipeline, a logit margin for the logit forms).
        cells: ``(N, 3)`` int64 ``(scale index, grid row, grid column)`` of the
            NMS peak each detection comes from.
    """

    boxes: np.ndarray
    scores: np.ndarray
    cells: np.ndarray

    def __post_init__(self) -> None:
        n = self.scores.shape[0]
        if self.boxes.shape != (n, 4) or self.cells.shape != (n, 3):
            raise ValueError(
                f"inconsistent detections: boxes {self.boxes.shape}, scores {self.scores.shape}, "
                f"cells {self.cells.shape}"
            )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

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
    def from_arrays(cls, boxes: np.ndarray, scores: np.ndarray, cells: np.ndarray | None = None) -> Detections:
        """Detections from arrays in any order; sorted by descending score (stable)."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        cells = (
            np.full((scores.shape[0], 3), -1, dtype=np.int64)
            if cells is None
            else np.asarray(cells, dtype=np.int64).reshape(-1, 3)
        )
        order = np.argsort(-scores, kind="stable")
        return cls(boxes=boxes[order], scores=scores[order], cells=cells[order])
