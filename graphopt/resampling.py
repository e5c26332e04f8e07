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

__all__ = ["interpolation_matrix", "resize_bilinear", "resize_frame", "resize_matrix"]


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


def _taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two source indices and the weight of the second, per output index, of half-pixel linear resizing."""
    coords = np.clip((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) / np.float32(out_size / in_size)
                     - np.float32(0.5), 0, in_size - 1)
    low = np.floor(coords).astype(np.int64)
    return low, np.minimum(low + 1, in_size - 1), (coords - low).astype(np.float32)


def resize_frame(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`resize_bilinear` computed as onnxruntime does: each output pixel from its four neighbours.

    ``image`` is ``(..., H, W)``. The source coordinate is
    ``(i + 0.5) / (out / in) − 0.5`` in float32 and the four weights are
    products of the two axes' in float32, the form of onnxruntime's kernel:
    on a frame shrunk to a network's input the result is bit for bit
    onnxruntime's (the matrix form differs in the last bits), and the work
    grows with the pixels, not with their product.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape[-2:] == (height, width):
        return image
    y0, y1, fy = _taps(image.shape[-2], height)
    x0, x1, fx = _taps(image.shape[-1], width)
    fy, fx = fy[:, None], fx[None, :]
    gy, gx = np.float32(1) - fy, np.float32(1) - fx
    top, bottom = image[..., y0, :], image[..., y1, :]
    return (top[..., x0] * (gy * gx) + top[..., x1] * (gy * fx)
            + bottom[..., x0] * (fy * gx) + bottom[..., x1] * (fy * fx))
