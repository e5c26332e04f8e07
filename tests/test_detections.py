"""Detections: one-class detectors leave the classes out, multi-class ones carry them through every selection."""

from __future__ import annotations

import numpy as np
import pytest

from graphopt.detections import Detections
from graphopt.nms import suppress_overlapping


def test_classes_default_to_zero_and_follow_every_selection() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    one_class = Detections(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.full((3, 3), -1))
    assert one_class.classes.tolist() == [0, 0, 0] and Detections.empty().classes.shape == (0,)
    found = Detections.from_arrays(boxes, np.array([0.5, 0.9, 0.7]), classes=np.array([2, 5, 7]))
    assert found.classes.tolist() == [5, 7, 2] and found.take(np.array([2, 0])).classes.tolist() == [2, 5]
    assert suppress_overlapping(found, 0.5).classes.tolist() == [5, 7]
    with pytest.raises(ValueError, match="classes"):
        Detections(boxes, np.zeros(3, np.float32), np.zeros((3, 3)), classes=np.zeros(2))
