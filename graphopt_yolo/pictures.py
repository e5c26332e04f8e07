"""Frames for the yolo workload: real pictures and rendered text, fitted to the camera's frame.

Calibration and check frames (``Workload.frames``) need pictures that make a
detector fire. Two kinds, alternating: the photographs scikit-image ships
(people, animals, objects; Ultralytics-style detectors fire on them) and
lines of text rendered in Pillow's built-in font (character and icon
detectors fire on them). Nothing is downloaded; scikit-image is needed only
when frames are asked for.
"""

from __future__ import annotations

import itertools

import numpy as np

from graphopt.errors import ConfigError
from graphopt.imaging import fit_frame, paste_mask, text_mask

from .config import YoloConfig

__all__ = ["PHOTOS", "TEXTS", "pictures", "text_picture"]

#: scikit-image pictures bundled with it (no download), by split.
PHOTOS = {"test": ("astronaut", "camera", "chelsea", "coffee", "rocket"),
          "train": ("horse", "moon", "colorwheel", "page")}
TEXTS = {"test": ("x7Kp2 QbR4", "ONNX 2026", "graphopt"), "train": ("TensorRT", "a3 Zm9 Ek")}


def text_picture(text: str, *, height: int = 96, scale: int = 3) -> np.ndarray:
    """``text`` in dark grey on a light background, uint8 RGB, about ``height`` pixels high."""
    mask = text_mask(text, scale=scale)
    picture = np.full((max(height, mask.shape[0] + 16), mask.shape[1] + 32, 3), 235, np.uint8)
    paste_mask(picture, mask, (picture.shape[0] - mask.shape[0]) // 2, 16, (30, 30, 30))
    return picture


def _photo(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise ConfigError("the yolo workload's frames are scikit-image's pictures: pip install scikit-image") from None
    picture = np.asarray(getattr(data, name)())
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    return picture[:, :, :3].astype(np.uint8)


def pictures(config: YoloConfig, split: str, count: int) -> list[tuple[str, np.ndarray]]:
    """``count`` named frames of ``split`` ("test" or "train") at the config's frame size, photos and text in turn."""
    if split not in PHOTOS:
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    names = [f"photo:{p}" for p in PHOTOS[split]]
    texts = [f"text:{t}" for t in TEXTS[split]]
    order = [name for pair in itertools.zip_longest(names, texts) for name in pair if name]
    frames = []
    for i in range(count):
        name = order[i % len(order)]
        kind, what = name.split(":", 1)
        picture = _photo(what) if kind == "photo" else text_picture(what)
        frame, _ = fit_frame(picture, config.frame_height, config.frame_width, letterbox=True)
        frames.append((name, frame))
    return frames
