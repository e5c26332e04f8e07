"""Geometry shared by every form of the detector: pyramid resizes and the common score grid.

Both the naive host pipeline and the in-graph forms use these functions, so
that "the same detector" means the same numbers:

* :func:`resize_matrix` is ONNX ``Resize`` with ``mode="linear"`` and
  ``coordinate_transformation_mode="half_pixel"`` (no antialiasing) along one
  axis, written as a matrix; :func:`resize_bilinear` applies it to a frame
  (both the core's, :mod:`graphopt.resampling`, re-exported here).
* :func:`resample_matrix` maps one pyramid scale's score map onto the common
  grid by linear interpolation. Window ``(i, j)`` of the score map at scale
  ``s`` is centred at ``(stride·i + window_h/2, stride·j + window_w/2)`` in
  the resized frame; grid cell ``(gy, gx)`` is centred at
  ``(grid_stride·(gy + 1/2), grid_stride·(gx + 1/2))`` in the frame. Linear
  interpolation never creates a new maximum, so the 3D max-pooling NMS still
  finds the network's own peaks, and it creates no plateaus (nearest
  neighbour would copy every peak into a block of equal values).
* :func:`grid_boxes` is the person box each grid cell stands for at each scale.
"""

from __future__ import annotations

import numpy as np

from graphopt.resampling import interpolation_matrix, resize_bilinear, resize_matrix

from .spec import DetectorSpec

__all__ = ["grid_boxes", "resample_matrix", "resize_bilinear", "resize_matrix"]


def resample_matrix(spec: DetectorSpec, scale: float, axis: str) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation from one scale's score map onto the common grid along ``axis`` ("y" or "x").

    Returns:
        ``(weights, valid)``: weights ``(grid_size, map_size)`` float32 and a
        boolean mask of the grid positions whose window centre the scale's
        score map reaches (the others have no window at this scale).
    """
    scaled_h, scaled_w = spec.scaled_frame_shape(scale)
    map_h, map_w = spec.score_map_shape(scale)
    if axis == "y":
        grid_size, map_size, factor, half_window = (
            spec.frame_height // spec.grid_stride, map_h, scaled_h / spec.frame_height, spec.window_height / 2
        )
    elif axis == "x":
        grid_size, map_size, factor, half_window = (
            spec.frame_width // spec.grid_stride, map_w, scaled_w / spec.frame_width, spec.window_width / 2
        )
    else:
        raise ValueError(f"axis must be 'y' or 'x', got {axis!r}")
    centres = spec.grid_stride * (np.arange(grid_size) + 0.5)
    coords = (centres * factor - half_window) / spec.stride
    weights, valid = interpolation_matrix(coords, map_size)
    return weights.astype(np.float32), valid


def grid_boxes(spec: DetectorSpec) -> np.ndarray:
    """Person boxes ``(scales, rows, cols, 4)`` as ``(x0, y0, x1, y1)`` in frame pixels."""
    scales, rows, cols = spec.grid_shape
    cy = spec.grid_stride * (np.arange(rows) + 0.5)
    cx = spec.grid_stride * (np.arange(cols) + 0.5)
    boxes = np.empty((scales, rows, cols, 4), dtype=np.float32)
    for k, scale in enumerate(spec.scales):
        height = spec.person_height_at(scale)
        width = spec.box_aspect * height
        boxes[k, :, :, 0] = cx[None, :] - width / 2
        boxes[k, :, :, 1] = cy[:, None] - height / 2
        boxes[k, :, :, 2] = cx[None, :] + width / 2
        boxes[k, :, :, 3] = cy[:, None] + height / 2
    return boxes
