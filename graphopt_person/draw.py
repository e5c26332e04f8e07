"""Drawing detections on frames, and reading and writing PNG files, with numpy and zlib only.

graphopt does not depend on an imaging library, yet a person checking a
detector wants to see its boxes. :func:`draw_boxes` draws rectangle outlines
and short labels (a built-in 5×7 bitmap font: digits, upper-case letters and
a little punctuation) onto a copy of an RGB frame; :func:`write_png` writes it.
:func:`draw_bands` shows, one panel per pyramid scale, the rows the
ground-plane geometry (:mod:`.ground_plane`) keeps, so that a user can check a
camera's calibration against a real frame at a glance.

The PNG codec covers what these uses need: :func:`encode_png` writes 8-bit
grey, grey+alpha, RGB or RGBA images (no filtering, zlib-compressed);
:func:`decode_png` reads 8-bit non-interlaced grey, grey+alpha, RGB, RGBA and
palette images with any of the five row filters, checking every chunk's CRC.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .ground_plane import ScaleBand
    from .spec import DetectorSpec

__all__ = ["decode_png", "draw_bands", "draw_boxes", "encode_png", "read_png", "text_size", "write_png"]

logger = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Channels per pixel of each 8-bit colour type (the palette type has one index).
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}

_GLYPH_WIDTH = 5
_GLYPH_HEIGHT = 7
_GLYPH_SPACING = 1
_LABEL_PADDING = 1

# 5×7 glyphs, one string of five bits per row, top row first.
_FONT_ROWS: dict[str, tuple[str, ...]] = {
    " ": ("00000",) * 7,
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    ",": ("00000", "00000", "00000", "00000", "01100", "00100", "01000"),
    "%": ("11000", "11001", "00010", "00100", "01000", "10011", "00011"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    "+": ("00000", "00100", "00100", "11111", "00100", "00100", "00000"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    "/": ("00000", "00001", "00010", "00100", "01000", "10000", "00000"),
    "=": ("00000", "00000", "11111", "00000", "11111", "00000", "00000"),
    "#": ("01010", "01010", "11111", "01010", "11111", "01010", "01010"),
    "(": ("00010", "00100", "01000", "01000", "01000", "00100", "00010"),
    ")": ("01000", "00100", "00010", "00010", "00010", "00100", "01000"),
    "_": ("00000", "00000", "00000", "00000", "00000", "00000", "11111"),
    "?": ("01110", "10001", "00001", "00010", "00100", "00000", "00100"),
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11100", "10010", "10001", "10001", "10001", "10010", "11100"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "Q": ("01110", "10001", "10001", "10001", "10101", "10010", "01101"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "10001", "01010", "00100", "00100", "00100"),
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
}

_FONT: dict[str, np.ndarray] = {
    char: np.array([[bit == "1" for bit in row] for row in rows], dtype=bool) for char, rows in _FONT_ROWS.items()
}


def _glyph(char: str) -> np.ndarray:
    """The bitmap of one character; lower case is drawn as upper case, anything unknown as '?'."""
    return _FONT.get(char.upper(), _FONT["?"])


def text_size(text: str, *, scale: int = 1) -> tuple[int, int]:
    """Width and height in pixels of ``text`` in the built-in font (without the label's padding)."""
    if not text:
        return 0, 0
    width = len(text) * (_GLYPH_WIDTH + _GLYPH_SPACING) - _GLYPH_SPACING
    return width * scale, _GLYPH_HEIGHT * scale


def _render_text(text: str, scale: int) -> np.ndarray:
    """A boolean mask of ``text``, ``(7·scale, width·scale)``."""
    width, height = text_size(text)
    mask = np.zeros((height, width), dtype=bool)
    for i, char in enumerate(text):
        x = i * (_GLYPH_WIDTH + _GLYPH_SPACING)
        mask[:, x : x + _GLYPH_WIDTH] = _glyph(char)
    return np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool) if scale > 1 else mask


def _fill(image: np.ndarray, top: int, left: int, bottom: int, right: int, color: np.ndarray) -> None:
    """Fill rows ``[top, bottom)`` and columns ``[left, right)``, clipped to the image."""
    height, width = image.shape[:2]
    top, bottom = max(top, 0), min(bottom, height)
    left, right = max(left, 0), min(right, width)
    if top < bottom and left < right:
        image[top:bottom, left:right] = color


def _paste_mask(image: np.ndarray, mask: np.ndarray, top: int, left: int, color: np.ndarray) -> None:
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
    entirely outside draws nothing. Boxes with non-finite coordinates are
    skipped.

    Args:
        image: ``(H, W, 3)`` uint8 RGB; not modified.
        boxes: ``(N, 4)`` ``(x0, y0, x1, y1)``.
        color: the outline and label background colour.
        thickness: outline width in pixels.
        labels: optional text per box, drawn on a filled background just above
            the box (inside its top edge when there is no room above).
        label_scale: the font's magnification (the font is 5×7 pixels).

    Raises:
        ValueError: the image is not ``(H, W, 3)`` uint8, the boxes are not
            ``(N, 4)``, the labels do not match the boxes, or thickness or
            scale is below 1.
    """
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

    out = image.copy()
    fill = np.asarray(color, dtype=np.uint8).reshape(3)
    # Label text in black on light colours and white on dark ones (ITU-R BT.601 luma).
    luma = 0.299 * float(fill[0]) + 0.587 * float(fill[1]) + 0.114 * float(fill[2])
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
        _fill(out, top, left, top + t, right + 1, fill)  # top edge
        _fill(out, bottom - t + 1, left, bottom + 1, right + 1, fill)  # bottom edge
        _fill(out, top, left, bottom + 1, left + t, fill)  # left edge
        _fill(out, top, right - t + 1, bottom + 1, right + 1, fill)  # right edge
        if labels is not None and labels[index]:
            mask = _render_text(labels[index], label_scale)
            label_h = mask.shape[0] + 2 * _LABEL_PADDING
            label_w = mask.shape[1] + 2 * _LABEL_PADDING
            label_top = top - label_h if top - label_h >= 0 else top
            _fill(out, label_top, left, label_top + label_h, left + label_w, fill)
            _paste_mask(out, mask, label_top + _LABEL_PADDING, left + _LABEL_PADDING, ink)
    return out


# Ground-plane band panels: the darkening of what the network does not see is
# strong enough to read at a glance, the tint light enough to see the floor through.
_DARKEN = 0.3
_TINT_ALPHA = 0.35
_BAND_COLORS: tuple[tuple[int, int, int], ...] = ((255, 150, 0), (40, 210, 80), (230, 60, 230))
_TRUTH_COLOR = (40, 120, 255)
_PANEL_GAP = 4
_GAP_COLOR = (16, 16, 16)
_STRIP_COLOR = (40, 40, 40)
_CAPTION_COLOR = (225, 225, 225)
_DASH_ON, _DASH_PERIOD = 6, 10


def _band_caption(band: ScaleBand) -> tuple[str, str]:
    """The two label lines of a scale's panel (upper case: the font has no lower case)."""
    low, high = band.person_px
    title = f"SCALE {band.scale:g}: PEOPLE {low:.0f}-{high:.0f} PX"
    if band.map_rows is None or band.input_rows is None:
        return title, "NO ROWS: NO SUCH PERSON IN VIEW"
    start, stop = band.input_rows
    share = (stop - start) / band.input_height
    return title, f"INPUT ROWS {start}-{stop} OF {band.input_height} ({share:.0%})"


def _band_panel(
    frame: np.ndarray,
    band: ScaleBand,
    spec: DetectorSpec,
    horizon_v: float,
    truth: np.ndarray,
    color: tuple[int, int, int],
) -> np.ndarray:
    """The frame with one scale's band drawn on it (see :func:`draw_bands`)."""
    height, width = frame.shape[:2]
    pixels = frame.astype(np.float32)
    kept = band.map_rows is not None
    seen = band.frame_rows(spec) if kept else None
    dark = np.ones(height, dtype=bool)
    if seen is not None:
        top, bottom = (min(max(int(np.floor(edge + 0.5)), 0), height) for edge in seen)
        dark[top:bottom] = False
    pixels[dark] *= _DARKEN
    feet = band.foot_rows if kept else None
    if feet is not None:
        first = int(np.floor(feet[0] + 0.5))
        last = int(np.floor(feet[1] + 0.5)) - 1
        top, bottom = max(first, 0), min(last + 1, height)
        if top < bottom:
            tint = np.asarray(color, dtype=np.float32)
            pixels[top:bottom] = (1 - _TINT_ALPHA) * pixels[top:bottom] + _TINT_ALPHA * tint
    out = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if feet is not None:
        # A line marks only an edge of the band that lies in the frame, not where the frame cuts it off.
        for row in (first, last):
            if first <= last and 0 <= row < height:
                out[row] = color
    horizon = round(horizon_v)
    if 0 <= horizon < height:
        dashes = np.arange(width) % _DASH_PERIOD < _DASH_ON
        out[horizon, dashes] = 255
    if len(truth):
        out = draw_boxes(out, truth, color=_TRUTH_COLOR, thickness=1)
    if kept and band.centre_rows is not None:
        box_h = spec.person_height_at(band.scale)
        box_w = spec.box_aspect * box_h
        centre_v = (band.centre_rows[0] + band.centre_rows[1]) / 2
        centre_u = width / 2
        example = np.array([[centre_u - box_w / 2, centre_v - box_h / 2, centre_u + box_w / 2, centre_v + box_h / 2]])
        out = draw_boxes(out, example, color=color, thickness=2)
    return out


def draw_bands(
    frame: np.ndarray,
    bands: Sequence[ScaleBand],
    spec: DetectorSpec,
    horizon_v: float,
    *,
    truth: np.ndarray | None = None,
) -> np.ndarray:
    """One panel per pyramid scale showing the frame rows its network computes.

    The panels stand side by side in the bands' order, 4 pixels apart, each
    under a label strip naming the scale, the box heights it detects and the
    rows of its resized frame its network reads. On each panel:

    * rows outside the band's :meth:`~.ground_plane.ScaleBand.frame_rows`
      (what the network does not see) are darkened to 30 %; a band without
      rows darkens the whole panel and draws nothing else of its own;
    * the rows where the feet of the people this scale detects can be are
      tinted with the scale's colour (orange, green, magenta, then again),
      with a 1-pixel line at each edge of that band that lies in the frame;
    * the horizon is a dashed white line;
    * the ground-truth boxes, if given, are outlined in blue;
    * the box of the person the scale's window is trained for is drawn in the
      scale's colour, centred horizontally and on the middle of the band's box
      centres: people of about that size should stand about there.

    Args:
        frame: ``(H, W, 3)`` uint8 RGB, the detector's frame size; not modified.
        bands: the scales' bands, as :func:`~.ground_plane.ground_plane_bands` returns them.
        spec: the detector the bands were computed for.
        horizon_v: the horizon's row in frame pixels (:meth:`~.spec.CameraSpec.horizon_v`).
        truth: optional ``(N, 4)`` ground-truth boxes ``(x0, y0, x1, y1)``.

    Returns:
        uint8 RGB, ``(strip + H, n·W + 4·(n − 1), 3)`` for ``n`` bands.

    Raises:
        ValueError: the frame is not an ``(H, W, 3)`` uint8 image of the
            detector's frame size, there are no bands, the horizon row is not
            finite, or the ground truth is not ``(N, 4)``.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"draw_bands needs an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
    height, width = frame.shape[:2]
    if (height, width) != (spec.frame_height, spec.frame_width):
        raise ValueError(
            f"the frame is {width}x{height}, but the bands are for the detector's "
            f"{spec.frame_width}x{spec.frame_height} frames"
        )
    if len(bands) == 0:
        raise ValueError("draw_bands needs at least one scale's band")
    if not np.isfinite(horizon_v):
        raise ValueError(f"the horizon row must be a finite number, got {horizon_v}")
    boxes = np.zeros((0, 4)) if truth is None else np.asarray(truth, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"ground-truth boxes must have shape (N, 4) as (x0, y0, x1, y1), got {boxes.shape}")

    captions = [_band_caption(band) for band in bands]
    widest = max(text_size(line)[0] for lines in captions for line in lines)
    # The font at twice its size where every caption fits the panel, else at its own size (clipped if need be).
    text_scale = 2 if 2 * widest + 2 * 8 <= width else 1
    pad = 2 * text_scale
    line_h = _GLYPH_HEIGHT * text_scale
    strip = 3 * pad + 2 * line_h
    count = len(bands)
    out = np.empty((strip + height, count * width + (count - 1) * _PANEL_GAP, 3), dtype=np.uint8)
    out[:] = _GAP_COLOR
    for k, (band, (title, detail)) in enumerate(zip(bands, captions, strict=True)):
        color = _BAND_COLORS[k % len(_BAND_COLORS)]
        left = k * (width + _PANEL_GAP)
        out[:strip, left : left + width] = _STRIP_COLOR
        label = out[:strip, left : left + width]
        _paste_mask(label, _render_text(title, text_scale), pad, 2 * pad, np.asarray(color, dtype=np.uint8))
        _paste_mask(label, _render_text(detail, text_scale), 2 * pad + line_h, 2 * pad,
                    np.asarray(_CAPTION_COLOR, dtype=np.uint8))
        out[strip:, left : left + width] = _band_panel(frame, band, spec, float(horizon_v), boxes, color)
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, *, compression: int = 6) -> bytes:
    """The PNG file of an 8-bit image: ``(H, W)`` or ``(H, W, 1)`` grey, ``(H, W, 2)`` grey+alpha, RGB, RGBA.

    Rows are stored unfiltered (filter type 0) and zlib-compressed at level
    ``compression``.

    Raises:
        ValueError: the image is not uint8, has another shape, or is empty.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"PNG encoding needs a uint8 image, got {image.dtype}")
    pixels = image[:, :, None] if image.ndim == 2 else image
    if pixels.ndim != 3 or pixels.shape[2] not in _COLOR_TYPE:
        raise ValueError(f"PNG encoding needs an (H, W), (H, W, 1|2|3|4) image, got shape {image.shape}")
    height, width, channels = pixels.shape
    if height == 0 or width == 0:
        raise ValueError(f"a PNG image cannot be empty, got shape {image.shape}")
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)
    rows[:, 1:] = np.ascontiguousarray(pixels).reshape(height, width * channels)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), compression))
        + _chunk(b"IEND", b"")
    )


def _unfilter_average(line: bytearray, prior: bytes, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        line[i] = (line[i] + ((left + prior[i]) >> 1)) & 0xFF


def _unfilter_paeth(line: bytearray, prior: bytes, bpp: int) -> None:
    for i in range(len(line)):
        if i >= bpp:
            a, c = line[i - bpp], prior[i - bpp]
        else:
            a = c = 0
        b = prior[i]
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        line[i] = (line[i] + predictor) & 0xFF


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-row filters of a non-interlaced image: ``(height, stride)`` uint8."""
    if len(raw) != height * (stride + 1):
        raise ValueError(f"its image data holds {len(raw)} bytes where {height * (stride + 1)} were expected")
    data = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for row in range(height):
        kind = int(data[row, 0])
        line = data[row, 1:]
        if kind == 0:
            out[row] = line
        elif kind == 1:
            # Sub is a running sum along each channel, modulo 256.
            pixels = line.reshape(-1, bpp).astype(np.uint64)
            out[row] = (np.cumsum(pixels, axis=0) & 0xFF).astype(np.uint8).reshape(-1)
        elif kind == 2:
            out[row] = line + prior  # uint8 arithmetic wraps modulo 256
        elif kind in (3, 4):
            buffer = bytearray(line.tobytes())
            (_unfilter_average if kind == 3 else _unfilter_paeth)(buffer, prior.tobytes(), bpp)
            out[row] = np.frombuffer(bytes(buffer), dtype=np.uint8)
        else:
            raise ValueError(f"row {row} uses unknown filter type {kind}")
        prior = out[row]
    return out


def decode_png(data: bytes) -> np.ndarray:
    """The pixels of an 8-bit, non-interlaced PNG file.

    Returns:
        uint8 ``(H, W)`` for grey, ``(H, W, 2)`` grey+alpha, ``(H, W, 3)``
        RGB or palette, ``(H, W, 4)`` RGBA. Ancillary chunks are ignored
        (including a palette's transparency).

    Raises:
        ValueError: the data is not a PNG, is truncated or corrupt (a CRC
            mismatch), or uses what this reader does not support (another bit
            depth, interlacing).
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("it does not start with the PNG signature")
    position = len(PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    palette: np.ndarray | None = None
    compressed = bytearray()
    ended = False
    while position < len(data):
        if position + 8 > len(data):
            raise ValueError("it is truncated inside a chunk header")
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body_end = position + 8 + length
        if body_end + 4 > len(data):
            raise ValueError(f"it is truncated inside its {kind.decode('latin-1')!r} chunk")
        body = data[position + 8 : body_end]
        (crc,) = struct.unpack(">I", data[body_end : body_end + 4])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"its {kind.decode('latin-1')!r} chunk fails its CRC check")
        position = body_end + 4
        if kind == b"IHDR":
            if length != 13:
                raise ValueError("its IHDR chunk has the wrong length")
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            if length % 3 != 0:
                raise ValueError("its palette length is not a multiple of 3")
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            ended = True
            break
        elif header is None:
            raise ValueError("its first chunk is not IHDR")
    if header is None:
        raise ValueError("it has no IHDR chunk")
    if not ended:
        raise ValueError("it is truncated (no IEND chunk)")
    width, height, bit_depth, color_type, compression, filter_method, interlace = header
    if color_type not in _CHANNELS:
        raise ValueError(f"its colour type {color_type} is not a valid PNG colour type")
    if bit_depth != 8:
        raise ValueError(f"it has bit depth {bit_depth}; only 8-bit images are supported")
    if compression != 0 or filter_method != 0:
        raise ValueError("it uses an unknown compression or filter method")
    if interlace != 0:
        raise ValueError("it is interlaced, which is not supported")
    if width == 0 or height == 0:
        raise ValueError("it declares an empty image")
    channels = _CHANNELS[color_type]
    try:
        raw = zlib.decompress(bytes(compressed))
    except zlib.error as error:
        raise ValueError(f"its image data does not decompress ({error})") from error
    pixels = _unfilter(raw, height, width * channels, channels)
    if color_type == 3:
        if palette is None:
            raise ValueError("it is a palette image without a palette")
        if int(pixels.max()) >= palette.shape[0]:
            raise ValueError("it refers to colours beyond its palette")
        colours: np.ndarray = palette[pixels.reshape(height, width)]
        return colours
    if channels == 1:
        return pixels.reshape(height, width)
    return pixels.reshape(height, width, channels)


def write_png(path: str | os.PathLike[str], image: np.ndarray, *, compression: int = 6) -> None:
    """Write ``image`` as a PNG file atomically.

    The file is written under a temporary name in the same directory and
    renamed over ``path``, so readers see the old file or the whole new one,
    and nothing is left behind if encoding or writing fails.
    """
    target = Path(path)
    data = encode_png(image, compression=compression)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.debug("wrote %s (%d bytes)", target, len(data))


def read_png(path: str | os.PathLike[str]) -> np.ndarray:
    """The pixels of a PNG file, as :func:`decode_png` returns them.

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: the file is not a PNG this reader supports; the message
            names the file and says why.
    """
    data = Path(path).read_bytes()
    try:
        return decode_png(data)
    except ValueError as error:
        raise ValueError(f"{os.fspath(path)} is not a PNG file graphopt can read: {error}") from error
