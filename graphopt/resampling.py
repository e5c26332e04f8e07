"""Bilinear resizing in NumPy with the graph's ``Resize`` semantics: the host side of :func:`graphopt.blocks.resize`.

A host reference pipeline and its fused graph must resize a frame the same
way, so the host does not use cv2's or Pillow's resize (Pillow antialiases
when it shrinks; cv2 rounds to uint8) but ONNX ``Resize`` with
``mode="linear"`` and ``coordinate_transformation_mode="half_pixel"``, no
antialiasing — a mode TensorRT's ONNX parser maps to its resize layer —
written as one interpolation matrix per axis. The results agree with
onnxruntime's to float32 rounding (the sums run in another order).
"""

from __future__ import annotations

import numpy as np

__all__ = ["interpolation_matrix", "resize_bilinear", "resize_matrix"]


def interpolation_matrix(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of linear-interpolation weights at fractional ``coords`` into ``size`` samples.

    Returns the weight matrix ``(len(coords), size)`` and a mask of the
    coordinates that lie inside ``[0, size - 1]`` (outside ones are clamped).
    """
    tolerance = 1e-6
    inside = (coords >= -tolerance) & (coords <= size - 1 + tolerance)
    clamped = np.clip(coords, 0, size - 1)
    low = np.floor(clamped).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    frac = clamped - low
    weights = np.zeros((coords.shape[0], size), dtype=np.float64)
    rows = np.arange(coords.shape[0])
    np.add.at(weights, (rows, low), 1 - frac)
    np.add.at(weights, (rows, high), frac)
    return weights, inside


def resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)`` weights of ONNX linear ``half_pixel`` resizing along one axis."""
    scale = out_size / in_size
    coords = (np.arange(out_size) + 0.5) / scale - 0.5
    weights, _ = interpolation_matrix(coords, in_size)
    return weights.astype(np.float32)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes ``(..., H, W)`` (channel-first) to ``(..., height, width)``, float32.

    Matches onnxruntime's ``Resize(mode="linear", coordinate_transformation_mode="half_pixel")``.
    At the image's own size that resize is the identity, so the image is returned as it is.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape[-2:] == (height, width):
        return image
    rows = resize_matrix(image.shape[-2], height)
    cols = resize_matrix(image.shape[-1], width)
    return np.matmul(np.matmul(rows, image), cols.T)
