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
"""

from __future__ import annotations

import hashlib
import string
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from graphopt.errors import ConfigError
from graphopt.imaging import builtin_font

__all__ = ["FACES", "photo_frame", "text_frame"]

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


def photo_frame(split: str, index: int, height: int, width: int) -> np.ndarray:
    """Frame ``index`` of ``split``: a face photograph cropped, scaled, lit and placed (uint8 RGB ``H×W×3``)."""
    rng = _rng("photos", split, index)
    names = sorted(FACES)
    name = names[index % len(names)]
    picture, face = _photo(name), FACES[name]
    # The face 17–33% of the frame's height: smaller faces are where NudeNet's 320×320 input stops seeing them.
    scale = rng.uniform(0.17, 0.33) * height / (face[3] - face[1])
    top, left, bottom, right = _face_crop(rng, picture.shape, face, (height / scale, width / scale))
    crop = Image.fromarray(picture[top:bottom, left:right])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    size = (min(width, max(1, round(crop.width * scale))), min(height, max(1, round(crop.height * scale))))
    pixels = np.asarray(crop.resize(size, Image.Resampling.BILINEAR), np.float32)
    gain, contrast = rng.uniform(0.8, 1.2), rng.uniform(0.85, 1.15)
    pixels = (pixels - 128) * contrast + 128 + (gain - 1) * 128
    frame = np.empty((height, width, 3), np.float32)
    frame[:] = rng.integers(0, 256, 3)
    y, x = int(rng.integers(0, height - size[1] + 1)), int(rng.integers(0, width - size[0] + 1))
    frame[y : y + size[1], x : x + size[0]] = pixels
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


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


def text_frame(split: str, index: int, height: int, width: int) -> np.ndarray:
    """Frame ``index`` of ``split``: one or two lines of random characters, captcha-like (uint8 RGB ``H×W×3``)."""
    rng = _rng("text", split, index)
    canvas = Image.fromarray(np.clip(_background(rng, height, width), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    lines = int(rng.integers(1, 3))
    band = height // lines
    for line in range(lines):
        size = int(rng.integers(40, min(97, max(41, band - 4))))
        font = builtin_font(size)
        text = "".join(rng.choice(list(_CHARACTERS), int(rng.integers(3, 9))))
        if rng.random() < 0.3:
            text = " ".join([text[: len(text) // 2], text[len(text) // 2 :]])
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        x = float(rng.uniform(0, max(1, width - (x1 - x0)))) - x0
        y = line * band + float(rng.uniform(0, max(1, band - (y1 - y0)))) - y0
        draw.text((x, y), text, font=font, fill=tuple(int(v) for v in rng.integers(0, 90, 3)),
                  stroke_width=int(rng.integers(0, 3)))
    _draw_noise(draw, rng, height, width)
    return np.asarray(canvas, np.uint8).copy()
