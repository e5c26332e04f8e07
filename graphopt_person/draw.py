"""The ground-plane band panels: what each pyramid scale computes, drawn over a camera frame.

:func:`draw_bands` shows, one panel per pyramid scale, the rows the
ground-plane geometry (:mod:`.ground_plane`) keeps, so that a user can check a
camera's calibration against a real frame at a glance. Boxes, labels and image
files come from the core's :mod:`graphopt.imaging` (Pillow).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from graphopt.imaging import draw_boxes, paste_mask, read_image, text_mask, text_size, write_image

if TYPE_CHECKING:
    from .ground_plane import ScaleBand
    from .spec import DetectorSpec

__all__ = ["draw_bands", "draw_boxes", "read_png", "write_png"]

logger = logging.getLogger(__name__)


def read_png(path: str | os.PathLike[str]) -> np.ndarray:
    """The pixels of an image file as ``(H, W, 3)`` uint8 RGB (any format Pillow reads; the earlier name)."""
    return read_image(path)


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Writes ``image`` atomically, as PNG unless the file name says otherwise (the earlier name)."""
    write_image(path, image)


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
    """The two label lines of a scale's panel."""
    low, high = band.person_px
    title = f"scale {band.scale:g}: people {low:.0f}-{high:.0f} px"
    if band.map_rows is None or band.input_rows is None:
        return title, "no rows: no such person in view"
    start, stop = band.input_rows
    share = (stop - start) / band.input_height
    return title, f"input rows {start}-{stop} of {band.input_height} ({share:.0%})"


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


def _caption_layout(captions: Sequence[tuple[str, str]], width: int) -> tuple[int, int, int, int]:
    """Font scale, padding, line height and strip height of the panels' two caption lines."""
    widest = max(text_size(line, scale=2)[0] for lines in captions for line in lines)
    # The font at twice its size where every caption fits the panel, else at its own size (clipped if need be).
    text_scale = 2 if widest + 2 * 8 <= width else 1
    pad = 2 * text_scale
    line_h = max(text_size(line, scale=text_scale)[1] for lines in captions for line in lines)
    return text_scale, pad, line_h, 3 * pad + 2 * line_h


def _check_band_inputs(frame: np.ndarray, bands: Sequence[ScaleBand], spec: DetectorSpec, horizon_v: float,
                       truth: np.ndarray | None) -> np.ndarray:
    """The ground-truth boxes as ``(N, 4)``, after checking :func:`draw_bands`'s arguments (``ValueError``)."""
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
    return boxes


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
    boxes = _check_band_inputs(frame, bands, spec, horizon_v, truth)
    height, width = frame.shape[:2]
    captions = [_band_caption(band) for band in bands]
    text_scale, pad, line_h, strip = _caption_layout(captions, width)
    count = len(bands)
    out = np.empty((strip + height, count * width + (count - 1) * _PANEL_GAP, 3), dtype=np.uint8)
    out[:] = _GAP_COLOR
    for k, (band, (title, detail)) in enumerate(zip(bands, captions, strict=True)):
        color = _BAND_COLORS[k % len(_BAND_COLORS)]
        left = k * (width + _PANEL_GAP)
        out[:strip, left : left + width] = _STRIP_COLOR
        label = out[:strip, left : left + width]
        paste_mask(label, text_mask(title, scale=text_scale), pad, 2 * pad, np.asarray(color, dtype=np.uint8))
        paste_mask(label, text_mask(detail, scale=text_scale), 2 * pad + line_h, 2 * pad,
                   np.asarray(_CAPTION_COLOR, dtype=np.uint8))
        out[strip:, left : left + width] = _band_panel(frame, band, spec, float(horizon_v), boxes, color)
    return out
