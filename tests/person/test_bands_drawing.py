"""The ground-plane band picture: one panel per scale, darkened where the network does not look."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from graphopt_person import draw
from graphopt_person.draw import draw_bands
from graphopt_person.ground_plane import ScaleBand, ground_plane_bands
from graphopt_person.spec import CameraSpec, DetectorConfig, DetectorSpec, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector" / "detector.toml"
CONFIG = load_config(EXAMPLE)
SPEC = CONFIG.detector
BANDS = ground_plane_bands(CONFIG)
HORIZON = CONFIG.camera.horizon_v()
HEIGHT, WIDTH = SPEC.frame_height, SPEC.frame_width
GAP = 4
# Columns far from the centred example box, where only the rows' shading is drawn.
EDGE_COLUMNS = slice(0, 100)


def random_frame(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)


def panels(image: np.ndarray, count: int) -> tuple[int, list[np.ndarray]]:
    """The label strip's height and the frame part of each panel."""
    strip = image.shape[0] - HEIGHT
    return strip, [image[strip:, k * (WIDTH + GAP) : k * (WIDTH + GAP) + WIDTH] for k in range(count)]


def pixel_rows(low: float, high: float) -> tuple[int, int]:
    """The half-open pixel rows of an edge-based interval, clipped to the frame (as drawn)."""
    return tuple(min(max(int(np.floor(edge + 0.5)), 0), HEIGHT) for edge in (low, high))  # type: ignore[return-value]


def rows_seen(band: ScaleBand) -> tuple[int, int]:
    seen = band.frame_rows(SPEC)
    assert seen is not None
    return pixel_rows(*seen)


def test_one_panel_per_scale_side_by_side_under_a_label_strip() -> None:
    frame = random_frame()
    image = draw_bands(frame, BANDS, SPEC, HORIZON)
    assert image.dtype == np.uint8
    assert image.shape[1] == len(BANDS) * WIDTH + (len(BANDS) - 1) * GAP
    strip, parts = panels(image, len(BANDS))
    assert 14 <= strip <= 60
    for k in range(len(BANDS) - 1):
        gap = image[:, (k + 1) * WIDTH + k * GAP : (k + 1) * (WIDTH + GAP)]
        assert gap.shape[1] == GAP and int(gap.max()) < 40  # dark
    # Each panel is the frame: rows the network reads, away from the drawings, are untouched.
    for band, part in zip(BANDS, parts, strict=True):
        top, _ = rows_seen(band)
        assert band.foot_rows is not None
        foot_top, _ = pixel_rows(*band.foot_rows)
        row = top + 5
        assert row < foot_top - 1 and row != round(HORIZON)
        np.testing.assert_array_equal(part[row, EDGE_COLUMNS], frame[row, EDGE_COLUMNS])
    # The label strip carries text (it is not a flat background).
    assert len(np.unique(image[:strip, :WIDTH].reshape(-1, 3), axis=0)) > 1
    assert not np.shares_memory(image, frame)


def test_rows_outside_what_the_network_reads_are_darkened() -> None:
    frame = random_frame()
    image = draw_bands(frame, BANDS, SPEC, HORIZON)
    _, parts = panels(image, len(BANDS))
    darkened = np.rint(frame.astype(np.float64) * 0.3)
    for band, part in zip(BANDS, parts, strict=True):
        top, bottom = rows_seen(band)
        outside = [row for row in range(HEIGHT) if not top <= row < bottom]
        assert outside, band  # every shipped scale leaves some rows out
        assert np.abs(part[outside, EDGE_COLUMNS].astype(int) - darkened[outside, EDGE_COLUMNS]).max() <= 1
        inside = [row for row in range(top, bottom) if row != round(HORIZON)]
        seen = part[inside, EDGE_COLUMNS].astype(int)
        # Inside the band nothing is darkened (the foot rows are tinted, which keeps them bright on average).
        assert seen.mean() > frame[inside, EDGE_COLUMNS].mean() * 0.8


def test_foot_rows_are_tinted_in_each_scales_colour_with_edge_lines() -> None:
    frame = np.full((HEIGHT, WIDTH, 3), 100, dtype=np.uint8)
    image = draw_bands(frame, BANDS, SPEC, HORIZON)
    _, parts = panels(image, len(BANDS))
    colours = []
    for k, (band, part) in enumerate(zip(BANDS, parts, strict=True)):
        colour = np.array(draw._BAND_COLORS[k % len(draw._BAND_COLORS)])
        colours.append(tuple(colour))
        assert band.foot_rows is not None
        first, stop = pixel_rows(*band.foot_rows)
        top, bottom = rows_seen(band)
        assert top <= first < stop <= bottom  # the foot band lies where the network looks
        middle = (first + stop) // 2
        tinted = np.rint(0.65 * 100 + 0.35 * colour)
        assert np.abs(part[middle, 5].astype(int) - tinted).max() <= 1
        # Solid one-pixel lines at the band's edges, in the scale's colour.
        np.testing.assert_array_equal(part[first, EDGE_COLUMNS], np.broadcast_to(colour, (100, 3)))
        np.testing.assert_array_equal(part[stop - 1, EDGE_COLUMNS], np.broadcast_to(colour, (100, 3)))
        # The example box of the scale's person, in its colour, is centred horizontally.
        centre_column = part[:, WIDTH // 2 - 60 : WIDTH // 2 + 60]
        assert np.any(np.all(centre_column == colour, axis=2))
    assert len(set(colours)) == len(BANDS)


def test_horizon_is_a_dashed_white_line_and_truth_boxes_are_blue() -> None:
    frame = np.full((HEIGHT, WIDTH, 3), 100, dtype=np.uint8)
    truth = np.array([[20.0, 150.0, 60.0, 260.0]])
    image = draw_bands(frame, BANDS, SPEC, HORIZON, truth=truth)
    _, parts = panels(image, len(BANDS))
    horizon = round(HORIZON)
    for part in parts:
        line = np.all(part[horizon, 100:200] == 255, axis=1)
        assert 0.3 < line.mean() < 0.9  # dashed, not solid
        np.testing.assert_array_equal(part[200, 20], (40, 120, 255))  # the box's left edge


def test_a_band_without_rows_darkens_its_whole_panel() -> None:
    frame = random_frame(5)
    empty = dataclasses.replace(BANDS[0], map_rows=None, input_rows=None, grid_rows=None)
    image = draw_bands(frame, [empty, BANDS[1]], SPEC, -5.0)  # the horizon above the frame draws nothing
    assert image.shape[1] == 2 * WIDTH + GAP
    _, parts = panels(image, 2)
    darkened = np.rint(frame.astype(np.float64) * 0.3)
    assert np.abs(parts[0].astype(int) - darkened).max() <= 1


def test_captions_fall_back_to_the_small_font_on_narrow_frames() -> None:
    spec = DetectorSpec(frame_size=(272, 204), scales=(1.0, 0.63))
    camera = CameraSpec(height_m=1.0, tilt_deg=5.0, focal_px=(223.125, 223.125), principal_point=(136.0, 102.0))
    config = DetectorConfig(detector=spec, camera=camera)
    bands = ground_plane_bands(config)
    frame = np.zeros((204, 272, 3), dtype=np.uint8)
    wide = draw_bands(random_frame(), BANDS, SPEC, HORIZON)
    narrow = draw_bands(frame, bands, spec, camera.horizon_v())
    assert narrow.shape[1] == 2 * 272 + GAP
    assert narrow.shape[0] - 204 < wide.shape[0] - HEIGHT


@pytest.mark.parametrize(
    ("frame", "bands", "horizon", "truth", "message"),
    [
        (np.zeros((HEIGHT, WIDTH, 3), np.float32), BANDS, HORIZON, None, "uint8 RGB frame"),
        (np.zeros((HEIGHT, WIDTH), np.uint8), BANDS, HORIZON, None, "uint8 RGB frame"),
        (np.zeros((240, 320, 3), np.uint8), BANDS, HORIZON, None, "the frame is 320x240, but the bands are for"),
        (np.zeros((HEIGHT, WIDTH, 3), np.uint8), (), HORIZON, None, "at least one scale"),
        (np.zeros((HEIGHT, WIDTH, 3), np.uint8), BANDS, float("nan"), None, "horizon row must be a finite"),
        (np.zeros((HEIGHT, WIDTH, 3), np.uint8), BANDS, HORIZON, np.zeros((2, 5)), r"shape \(N, 4\)"),
    ],
    ids=["float-frame", "grey-frame", "wrong-size", "no-bands", "nan-horizon", "bad-truth"],
)
def test_bad_inputs_raise_value_error(
    frame: np.ndarray, bands: tuple[ScaleBand, ...], horizon: float, truth: np.ndarray | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        draw_bands(frame, bands, SPEC, horizon, truth=truth)


def test_an_empty_truth_array_draws_nothing_extra() -> None:
    frame = random_frame()
    np.testing.assert_array_equal(
        draw_bands(frame, BANDS, SPEC, HORIZON, truth=np.zeros((0, 4))), draw_bands(frame, BANDS, SPEC, HORIZON)
    )
