"""Frames from and to image files, fitted to a detector's input, with boxes and labels drawn on them.

Images are read and written with Pillow: any format it reads (PNG, JPEG,
BMP, TIFF, WebP, …) comes in as ``(H, W, 3)`` uint8 RGB, and a drawing is
written in the format its file name says. :func:`fit_frame` brings a picture
of any size to a detector's frame size, stretched or letterboxed (the aspect
kept, the rest padded), and :class:`FrameFit` maps the detections back onto
the picture. :func:`draw_boxes` draws box outlines in edge-based pixel
coordinates with labels in Pillow's built-in font.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from .errors import GraphoptError, ModelSaveError

__all__ = [
    "FrameFit",
    "builtin_font",
    "draw_boxes",
    "fill",
    "fit_frame",
    "paste_mask",
    "read_image",
    "text_mask",
    "text_size",
    "write_image",
]

logger = logging.getLogger(__name__)

#: Height in pixels of label text at ``label_scale`` 1.
FONT_PX = 11
_LABEL_PADDING = 1


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The pixels of an image file as ``(H, W, 3)`` uint8 RGB (grey and alpha images converted).

    Raises:
        GraphoptError: there is no such file, or Pillow cannot read it; the message names the file.
    """
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise GraphoptError(f"{os.fspath(path)}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise GraphoptError(f"{os.fspath(path)} is not an image file Pillow can read ({error})") from None


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Writes ``(H, W, 3)`` or ``(H, W)`` uint8 pixels atomically, in the format the file name says (PNG if none).

    The file is written under a temporary name beside ``path`` and renamed over
    it, so readers see the old file or the whole new one, and nothing is left
    behind when writing fails.

    Raises:
        ModelSaveError: the file cannot be written or the format is unknown.
        ValueError: the array is not an 8-bit image.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"write_image needs (H, W[, 1|3|4]) uint8 pixels, got {image.dtype} {image.shape}")
    target = Path(path)
    picture = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    kind = Image.registered_extensions().get(target.suffix.lower(), "PNG")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise ModelSaveError(f"{target}: cannot write the image ({error.strerror or error})") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            picture.save(handle, format=kind)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except (OSError, KeyError, ValueError) as error:
        Path(temporary).unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or error
        raise ModelSaveError(f"{target}: cannot write the image ({reason})") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.debug("wrote %s", target)


@dataclass(frozen=True)
class FrameFit:
    """How a picture was brought to a frame size: ``frame = picture · scale + offset`` per axis."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def to_picture(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` ``(x0, y0, x1, y1)`` in frame pixels, mapped back to the picture's pixels."""
        out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        out[:, 0::2] = (out[:, 0::2] - self.offset_x) / self.scale_x
        out[:, 1::2] = (out[:, 1::2] - self.offset_y) / self.scale_y
        return out


def fit_frame(
    picture: np.ndarray, height: int, width: int, *, letterbox: bool = True, pad: tuple[int, int, int] = (114, 114, 114)
) -> tuple[np.ndarray, FrameFit]:
    """``picture`` at ``height × width``: letterboxed (aspect kept, centred, padded with ``pad``) or stretched.

    A picture of that size already is returned as it is.
    """
    rows, cols = picture.shape[:2]
    if (rows, cols) == (height, width):
        return picture, FrameFit(1.0, 1.0, 0.0, 0.0)
    if not letterbox:
        resized = Image.fromarray(picture).resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8), FrameFit(width / cols, height / rows, 0.0, 0.0)
    scale = min(width / cols, height / rows)
    new_w, new_h = max(1, round(cols * scale)), max(1, round(rows * scale))
    left, top = (width - new_w) // 2, (height - new_h) // 2
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = pad
    resized = Image.fromarray(picture).resize((new_w, new_h), Image.Resampling.BILINEAR)
    frame[top : top + new_h, left : left + new_w] = np.asarray(resized, dtype=np.uint8)
    return frame, FrameFit(new_w / cols, new_h / rows, float(left), float(top))


@lru_cache(maxsize=64)
def builtin_font(size: int) -> Any:
    """Pillow's built-in font at ``size`` pixels (nothing is downloaded); its fixed bitmap font without FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def text_mask(text: str, *, scale: int = 1) -> np.ndarray:
    """A boolean mask of ``text`` in Pillow's built-in font, ``FONT_PX · scale`` pixels high."""
    font = builtin_font(FONT_PX * scale)
    left, top, right, bottom = font.getbbox(text or " ")
    canvas = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(canvas).text((-left, -top), text, fill=255, font=font)
    return np.asarray(canvas) >= 128


def text_size(text: str, *, scale: int = 1) -> tuple[int, int]:
    """Width and height in pixels of ``text`` as :func:`text_mask` draws it (0, 0 for no text)."""
    if not text:
        return 0, 0
    mask = text_mask(text, scale=scale)
    return mask.shape[1], mask.shape[0]


def fill(image: np.ndarray, top: int, left: int, bottom: int, right: int, color: Any) -> None:
    """Fill rows ``[top, bottom)`` and columns ``[left, right)``, clipped to the image."""
    height, width = image.shape[:2]
    top, bottom = max(top, 0), min(bottom, height)
    left, right = max(left, 0), min(right, width)
    if top < bottom and left < right:
        image[top:bottom, left:right] = color


def paste_mask(image: np.ndarray, mask: np.ndarray, top: int, left: int, color: Any) -> None:
    """Set the pixels where ``mask`` is true, with the mask's corner at ``(top, left)``, clipped."""
    height, width = image.shape[:2]
    rows, cols = mask.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + rows, height), min(left + cols, width)
    if y0 >= y1 or x0 >= x1:
        return
    region = image[y0:y1, x0:x1]
    region[mask[y0 - top : y1 - top, x0 - left : x1 - left]] = color


def _pixel_span(low: float, high: float) -> tuple[int, int]:
    """The first and last pixel index an edge-based interval ``[low, high)`` covers, at least one pixel."""
    first = int(np.floor(low + 0.5))
    last = int(np.floor(high + 0.5)) - 1
    return first, max(last, first)


def _check_boxes(image: np.ndarray, boxes: np.ndarray, labels: Sequence[str] | None, thickness: int,
                 label_scale: int) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"draw_boxes needs an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    box_array = np.asarray(boxes, dtype=np.float64)
    if box_array.size == 0:
        box_array = box_array.reshape(0, 4)
    if box_array.ndim != 2 or box_array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as (x0, y0, x1, y1), got {box_array.shape}")
    if labels is not None and len(labels) != box_array.shape[0]:
        raise ValueError(f"got {len(labels)} labels for {box_array.shape[0]} boxes")
    if thickness < 1 or label_scale < 1:
        raise ValueError(f"thickness and label scale must be at least 1, got {thickness} and {label_scale}")
    return box_array


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    thickness: int = 2,
    labels: Sequence[str] | None = None,
    label_scale: int = 1,
) -> np.ndarray:
    """A copy of ``image`` with the outline of every box drawn on it.

    Box ``(x0, y0, x1, y1)`` is in edge-based pixel coordinates (pixel
    ``(r, c)`` covers ``[c, c + 1) × [r, r + 1)``); its edges are rounded to
    the nearest pixel boundary and the outline, ``thickness`` pixels wide, is
    drawn inside it. Parts of a box outside the image are clipped; a box
    entirely outside, or with a non-finite coordinate, draws nothing. A label
    goes on a filled background just above its box (inside its top edge when
    there is no room above), in black on light colours and white on dark ones.

    Raises:
        ValueError: the image is not ``(H, W, 3)`` uint8, the boxes are not
            ``(N, 4)``, the labels do not match the boxes, or thickness or
            scale is below 1.
    """
    box_array = _check_boxes(image, boxes, labels, thickness, label_scale)
    out = image.copy()
    paint = np.asarray(color, dtype=np.uint8).reshape(3)
    luma = 0.299 * float(paint[0]) + 0.587 * float(paint[1]) + 0.114 * float(paint[2])  # ITU-R BT.601
    ink = np.zeros(3, dtype=np.uint8) if luma >= 128 else np.full(3, 255, dtype=np.uint8)
    height, width = out.shape[:2]
    for index, (x0, y0, x1, y1) in enumerate(box_array):
        if not np.all(np.isfinite((x0, y0, x1, y1))):
            continue
        left, right = _pixel_span(min(x0, x1), max(x0, x1))
        top, bottom = _pixel_span(min(y0, y1), max(y0, y1))
        if right < 0 or bottom < 0 or left >= width or top >= height:
            continue
        t = thickness
        fill(out, top, left, top + t, right + 1, paint)  # top edge
        fill(out, bottom - t + 1, left, bottom + 1, right + 1, paint)  # bottom edge
        fill(out, top, left, bottom + 1, left + t, paint)  # left edge
        fill(out, top, right - t + 1, bottom + 1, right + 1, paint)  # right edge
        if labels is not None and labels[index]:
            mask = text_mask(labels[index], scale=label_scale)
            label_h, label_w = mask.shape[0] + 2 * _LABEL_PADDING, mask.shape[1] + 2 * _LABEL_PADDING
            label_top = top - label_h if top - label_h >= 0 else top
            fill(out, label_top, left, label_top + label_h, left + label_w, paint)
            paste_mask(out, mask, label_top + _LABEL_PADDING, left + _LABEL_PADDING, ink)
    return out
