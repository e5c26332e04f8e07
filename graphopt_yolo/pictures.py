"""Frames for the yolo workload: real pictures and rendered text, fitted to the camera's frame.

Calibration, check and benchmark frames (``Workload.frames``) need pictures
that make a detector fire. The config's ``domain`` names the detector's
domain: ``photos`` (scikit-image's photographs of faces, cropped, scaled, lit
and placed), ``text`` (captcha-like lines of characters in Pillow's built-in
font) or ``mixed`` (both in turn, photo first). Every frame of a split is
distinct and a pure function of its index (:mod:`graphopt_yolo.frames`).
Nothing is downloaded; scikit-image is needed only for photo frames.

:func:`labelled_frame_at` gives the same frame with its ground truth: the
face in a photo frame, each character in a text frame (``mixed`` frames
carry whichever their kind holds).
"""

from __future__ import annotations

import numpy as np

from graphopt.imaging import paste_mask, text_mask

from .config import YoloConfig
from .frames import labelled_photo_frame, labelled_text_frame, photo_frame, text_frame

__all__ = ["frame_at", "labelled_frame_at", "pictures", "text_picture"]


def text_picture(text: str, *, height: int = 96, scale: int = 3) -> np.ndarray:
    """``text`` in dark grey on a light background, uint8 RGB, about ``height`` pixels high."""
    mask = text_mask(text, scale=scale)
    picture = np.full((max(height, mask.shape[0] + 16), mask.shape[1] + 32, 3), 235, np.uint8)
    paste_mask(picture, mask, (picture.shape[0] - mask.shape[0]) // 2, 16, (30, 30, 30))
    return picture


def _kind(config: YoloConfig, index: int) -> tuple[str, int]:
    """The kind of frame ``index`` in the config's domain, and its index among frames of that kind."""
    if config.domain == "mixed":
        return ("photos", "text")[index % 2], index // 2
    return config.domain, index


def frame_at(config: YoloConfig, split: str, index: int) -> tuple[str, np.ndarray]:
    """Frame ``index`` of ``split`` ("test" or "train") in the config's domain and frame size, with its name."""
    kind, index = _kind(config, index)
    make = photo_frame if kind == "photos" else text_frame
    return f"{kind}:{split}:{index}", make(split, index, config.frame_height, config.frame_width)


def labelled_frame_at(config: YoloConfig, split: str, index: int) -> tuple[str, np.ndarray, np.ndarray]:
    """:func:`frame_at` and its ground truth: ``(N, 4)`` float32 boxes, faces or characters, in frame pixels."""
    kind, index = _kind(config, index)
    make = labelled_photo_frame if kind == "photos" else labelled_text_frame
    frame, boxes = make(split, index, config.frame_height, config.frame_width)
    return f"{kind}:{split}:{index}", frame, boxes


def pictures(config: YoloConfig, split: str, count: int) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` named frames of ``split`` ("test" or "train"), all distinct."""
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    return [frame_at(config, split, i) for i in range(count)]
