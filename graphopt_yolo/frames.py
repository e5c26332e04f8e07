"""Many distinct, deterministic frames that make a detector fire: photographs of people, or captcha-like text.

A detector checked or timed on a handful of pictures repeated says little;
these generators give any number of distinct frames per split, each a pure
function of ``(split, index)`` and the frame size, so that runs and machines
see the same pixels.

``photos``
    The scikit-image photographs with a face in them (``astronaut``,
    ``camera``): a crop that keeps the face, scaled so that the face is
    17–33% of the frame's height, mirrored or not, its brightness and
    contrast changed, placed anywhere in the camera frame on a plain
    background. Person and face detectors (NudeNet's YOLOv8n) fire on them.
``text``
    Strings of letters and digits in Pillow's built-in font (nothing is
    downloaded), 40–96 px high, outlined 0–2 px, one or two lines at random
    places, dark on a light background with a gradient, pixel noise and
    captcha-like strokes and dots. Character detectors (ddddocr's YOLOX) fire on them.

The split picks disjoint seeds: ``test`` and ``train`` frames never coincide.

The generators know where their objects are: :func:`labelled_photo_frame` and
:func:`labelled_text_frame` return the same pixels as :func:`photo_frame` and
:func:`text_frame` (they share the code and draw the same random numbers)
with the ground truth, ``(N, 4)`` float32 boxes ``(x0, y0, x1, y1)`` in
frame pixels (continuous coordinates: a box covers ``x0 <= x < x1``):

* the face: ``FACES``' box carried through the crop, the mirroring, the
  scaling and the placement, the same arithmetic the pixels went through;
* each character (spaces have none): the extent of its ink, outline
  included, where its anti-aliased coverage reaches one half, found by
  drawing it alone at its place in the line. A character detector boxes the
  glyph it sees, not the font's advance cell (whose empty side bearings and
  ascender/descender space would make every box too wide and too tall for
  IoU 0.5 on narrow letters such as ``i`` or ``l``). Each pixel of the
  text's ink (:func:`text_ink`) then goes to the nearest character's box, so
  that the boxes' union holds all of it even where Pillow moves a glyph by a
  pixel (a line that starts above or left of the frame).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from graphopt.errors import ConfigError
from graphopt.imaging import builtin_font

__all__ = ["FACES", "labelled_photo_frame", "labelled_text_frame", "photo_frame", "place_box", "text_frame", "text_ink"]

#: scikit-image's photographs with a face, and the face's box ``(x0, y0, x1, y1)`` in the photo's pixels.
FACES = {"astronaut": (174, 85, 272, 180), "camera": (186, 128, 262, 194)}
_CHARACTERS = string.ascii_letters + string.digits
_SPLITS = ("test", "train")


def _rng(kind: str, split: str, index: int) -> np.random.Generator:
    if split not in _SPLITS:
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    if index < 0:
        raise ValueError(f"a frame index is at least 0, got {index}")
    digest = hashlib.sha256(f"{kind}:{split}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@lru_cache(maxsize=len(FACES))
def _photo(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise ConfigError("the yolo workload's photo frames are scikit-image's: pip install scikit-image") from None
    picture = np.asarray(getattr(data, name)())
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    picture = picture[:, :, :3].astype(np.uint8)
    picture.setflags(write=False)
    return picture


def _face_crop(rng: np.random.Generator, shape: tuple[int, ...], face: tuple[int, int, int, int],
               most: tuple[float, float]) -> tuple[int, int, int, int]:
    """A window ``(top, left, bottom, right)`` of the photo that holds the whole face, at most ``most`` (rows, cols)."""
    rows, cols = shape[:2]
    height = max(face[3] - face[1], min(rows, int(most[0] * rng.uniform(0.6, 1.0))))
    width = max(face[2] - face[0], min(cols, int(most[1] * rng.uniform(0.6, 1.0))))
    top = int(rng.integers(max(0, face[3] - height), min(face[1], rows - height) + 1))
    left = int(rng.integers(max(0, face[2] - width), min(face[0], cols - width) + 1))
    return top, left, top + height, left + width


def labelled_photo_frame(split: str, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`photo_frame` and the face's box, ``(1, 4)`` float32 in frame pixels."""
    rng = _rng("photos", split, index)
    names = sorted(FACES)
    name = names[index % len(names)]
    picture, face = _photo(name), FACES[name]
    # The face 17–33% of the frame's height: smaller faces are where NudeNet's 320×320 input stops seeing them.
    scale = rng.uniform(0.17, 0.33) * height / (face[3] - face[1])
    window = _face_crop(rng, picture.shape, face, (height / scale, width / scale))
    top, left, bottom, right = window
    crop = Image.fromarray(picture[top:bottom, left:right])
    mirrored = rng.random() < 0.5
    if mirrored:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    size = (min(width, max(1, round(crop.width * scale))), min(height, max(1, round(crop.height * scale))))
    pixels = np.asarray(crop.resize(size, Image.Resampling.BILINEAR), np.float32)
    gain, contrast = rng.uniform(0.8, 1.2), rng.uniform(0.85, 1.15)
    pixels = (pixels - 128) * contrast + 128 + (gain - 1) * 128
    frame = np.empty((height, width, 3), np.float32)
    frame[:] = rng.integers(0, 256, 3)
    y, x = int(rng.integers(0, height - size[1] + 1)), int(rng.integers(0, width - size[0] + 1))
    frame[y : y + size[1], x : x + size[0]] = pixels
    box = place_box(face, window, mirrored, size, (x, y))
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8), box


def place_box(face: tuple[int, int, int, int], window: tuple[int, int, int, int], mirrored: bool,
              size: tuple[int, int], origin: tuple[int, int]) -> np.ndarray:
    """A photo's box through a photo frame's steps, as ``(1, 4)`` float32 frame pixels.

    Args:
        face: ``(x0, y0, x1, y1)`` in the photo.
        window: the crop, ``(top, left, bottom, right)``.
        mirrored: whether the crop was flipped left to right.
        size: the crop's size once resized, ``(width, height)``.
        origin: where the resized crop's top-left corner lies in the frame, ``(x, y)``.
    """
    top, left, bottom, right = window
    x0, y0, x1, y1 = face[0] - left, face[1] - top, face[2] - left, face[3] - top
    if mirrored:
        x0, x1 = (right - left) - x1, (right - left) - x0
    # Pillow's resize maps pixel edges to pixel edges: x ↦ x · new / old, each axis on its own.
    gain_x, gain_y = size[0] / (right - left), size[1] / (bottom - top)
    box = [origin[0] + x0 * gain_x, origin[1] + y0 * gain_y, origin[0] + x1 * gain_x, origin[1] + y1 * gain_y]
    return np.array([box], np.float32)


def photo_frame(split: str, index: int, height: int, width: int) -> np.ndarray:
    """Frame ``index`` of ``split``: a face photograph cropped, scaled, lit and placed (uint8 RGB ``H×W×3``)."""
    return labelled_photo_frame(split, index, height, width)[0]


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A light colour with a horizontal gradient and pixel noise, float32 ``H×W×3``."""
    base = rng.uniform(170, 250, 3)
    ramp = np.linspace(-1, 1, width, dtype=np.float32)[None, :, None] * rng.uniform(-30, 30, 3)
    noise = rng.normal(0, rng.uniform(0, 12), (height, width, 1))
    return np.broadcast_to(base + ramp + noise, (height, width, 3)).astype(np.float32)


def _draw_noise(draw: ImageDraw.ImageDraw, rng: np.random.Generator, height: int, width: int) -> None:
    """Captcha-like strokes across the frame and dots."""
    for _ in range(int(rng.integers(0, 5))):
        points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(2)]
        draw.line(points, fill=tuple(int(v) for v in rng.integers(60, 200, 3)), width=int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(0, 150))):
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        draw.ellipse((x, y, x + 2, y + 2), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))


@dataclass(frozen=True)
class _Line:
    """A line of text as drawn: its characters, font, origin and outline width."""

    text: str
    font: Any
    origin: tuple[float, float]
    stroke: int


def _text_canvas(split: str, index: int, height: int, width: int) -> tuple[np.ndarray, list[_Line]]:
    """Text frame ``index`` of ``split`` and the lines drawn on it."""
    rng = _rng("text", split, index)
    canvas = Image.fromarray(np.clip(_background(rng, height, width), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    lines = int(rng.integers(1, 3))
    band = height // lines
    drawn = []
    for line in range(lines):
        size = int(rng.integers(40, min(97, max(41, band - 4))))
        font = builtin_font(size)
        text = "".join(rng.choice(list(_CHARACTERS), int(rng.integers(3, 9))))
        if rng.random() < 0.3:
            text = " ".join([text[: len(text) // 2], text[len(text) // 2 :]])
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        x = float(rng.uniform(0, max(1, width - (x1 - x0)))) - x0
        y = line * band + float(rng.uniform(0, max(1, band - (y1 - y0)))) - y0
        fill = tuple(int(v) for v in rng.integers(0, 90, 3))
        stroke = int(rng.integers(0, 3))  # drawn after the fill: the order of today's frames
        draw.text((x, y), text, font=font, fill=fill, stroke_width=stroke)
        drawn.append(_Line(text, font, (x, y), stroke))
    _draw_noise(draw, rng, height, width)
    return np.asarray(canvas, np.uint8).copy(), drawn


def text_frame(split: str, index: int, height: int, width: int) -> np.ndarray:
    """Frame ``index`` of ``split``: one or two lines of random characters, captcha-like (uint8 RGB ``H×W×3``)."""
    return _text_canvas(split, index, height, width)[0]


def labelled_text_frame(split: str, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`text_frame` and each visible character's ink box, ``(N, 4)`` float32 in frame pixels, in reading order."""
    frame, lines = _text_canvas(split, index, height, width)
    drawn = [box for line in lines for box in _character_boxes(line.text, line.font, line.origin, line.stroke)]
    return frame, _owned_extents(_ink(lines, height, width), np.array(drawn, np.float64).reshape(-1, 4))


def text_ink(split: str, index: int, height: int, width: int) -> np.ndarray:
    """Where :func:`text_frame` draws its characters: bool ``H×W``, coverage at least 128 of 255 (no noise)."""
    return _ink(_text_canvas(split, index, height, width)[1], height, width)


def _ink(lines: list[_Line], height: int, width: int) -> np.ndarray:
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for line in lines:  # the text alone, drawn exactly as on the frame
        draw.text(line.origin, line.text, font=line.font, fill=255, stroke_width=line.stroke)
    return np.asarray(canvas) >= 128


def _owned_extents(ink: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The extent of the ``ink`` pixels nearest each of ``boxes``; boxes that own no ink are left out.

    The characters drawn one by one are the line's pixels exactly, except where Pillow draws a line
    whose origin lies above or left of the frame: it rounds that origin otherwise and moves the glyphs
    by a pixel or two. Giving every ink pixel of the line as drawn to the nearest box (each box it lies
    in, on ties) keeps the boxes where the ink is, and the ink inside their union.
    """
    rows, cols = np.nonzero(ink)
    if not len(boxes) or not rows.size:
        return np.zeros((0, 4), np.float32)
    x, y = cols[:, None] + 0.5, rows[:, None] + 0.5
    away = np.maximum(np.maximum(boxes[None, :, 0] - x, x - boxes[None, :, 2]), 0) \
        + np.maximum(np.maximum(boxes[None, :, 1] - y, y - boxes[None, :, 3]), 0)
    owns = away <= away.min(axis=1, keepdims=True)
    extents = [(cols[o].min(), rows[o].min(), cols[o].max() + 1, rows[o].max() + 1) for o in owns.T if o.any()]
    return np.array(extents, np.float32).reshape(-1, 4)


def _character_boxes(text: str, font: Any, origin: tuple[float, float], stroke: int) -> list[tuple[float, ...]]:
    """The ink box of each non-space character of ``text`` drawn at ``origin`` (frame pixels, unclipped).

    Character ``i`` starts where the line's advance up to it ends (``getlength`` of the text through ``i``
    less its own advance, so that a kerned pair would count too). It is drawn alone on a canvas that starts
    an integer number of pixels before it, so that it is drawn at the same fraction of a pixel as in the
    line (Pillow splits a coordinate into ``int`` and ``modf`` parts, so the shift keeps the coordinate's
    sign), and its box is where its coverage reaches 128 of 255.
    """
    boxes: list[tuple[float, ...]] = []
    y = origin[1]
    for i, character in enumerate(text):
        if character.isspace():
            continue
        x = origin[0] + font.getlength(text[: i + 1]) - font.getlength(character)
        left, top, right, bottom = font.getbbox(character, stroke_width=stroke)
        shift_x = max(0, min(int(np.floor(x)), int(np.floor(x + left))) - 1)
        shift_y = max(0, min(int(np.floor(y)), int(np.floor(y + top))) - 1)
        canvas = Image.new("L", (int(np.ceil(x + right)) - shift_x + 2, int(np.ceil(y + bottom)) - shift_y + 2), 0)
        ImageDraw.Draw(canvas).text((x - shift_x, y - shift_y), character, font=font, fill=255, stroke_width=stroke)
        rows, cols = np.nonzero(np.asarray(canvas) >= 128)
        if rows.size:
            boxes.append((float(shift_x + cols.min()), float(shift_y + rows.min()),
                          float(shift_x + cols.max() + 1), float(shift_y + rows.max() + 1)))
    return boxes
