"""The naive host-driven detector: NMS, resampling and the end-to-end pipeline."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest

from graphopt.detections import Detections
from graphopt.errors import ConfigError
from graphopt.nms import suppress_overlapping
from graphopt.verify import run_onnxruntime
from graphopt_person.grid import grid_boxes
from graphopt_person.naive import (
    STAGES,
    BoundaryTraffic,
    NaiveDetector,
    inferred_output_dims,
    max_pool3d,
    nms3d,
    peaks_to_detections,
    preprocess_frame,
    resample_to_grid,
    scale_resamplings,
)
from graphopt_person.network import build_naive_model, random_weights
from graphopt_person.spec import DetectorSpec

SPEC = DetectorSpec()


def _reference_nms(volume: np.ndarray, window: tuple[int, int, int], threshold: float) -> np.ndarray:
    """Every cell against every cell of its window, with explicit bounds."""
    peaks = np.zeros(volume.shape, dtype=bool)
    halves = [k // 2 for k in window]
    for s, y, x in itertools.product(*(range(n) for n in volume.shape)):
        best = -np.inf
        for ds, dy, dx in itertools.product(*(range(-h, h + 1) for h in halves)):
            ss, yy, xx = s + ds, y + dy, x + dx
            if 0 <= ss < volume.shape[0] and 0 <= yy < volume.shape[1] and 0 <= xx < volume.shape[2]:
                best = max(best, float(volume[ss, yy, xx]))
        peaks[s, y, x] = volume[s, y, x] == best and volume[s, y, x] >= threshold
    return peaks


@pytest.mark.parametrize("window", [(1, 1, 1), (3, 3, 3), (3, 7, 3), (5, 1, 3), (1, 5, 1)])
@pytest.mark.parametrize("shape", [(3, 10, 12), (2, 4, 5), (1, 3, 9)])
def test_nms3d_matches_reference(window: tuple[int, int, int], shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(window) * 100 + sum(shape))
    smooth = rng.uniform(0, 1, size=shape).astype(np.float32)
    # Few distinct values: ties and plateaus everywhere, including at the edges.
    plateaus = (rng.integers(0, 4, size=shape) / 4).astype(np.float32)
    for volume in (smooth, plateaus):
        for threshold in (0.0, 0.5):
            expected = _reference_nms(volume, window, threshold)
            np.testing.assert_array_equal(nms3d(volume, window, threshold), expected)


def test_nms3d_plateau_and_threshold() -> None:
    volume = np.zeros((1, 3, 5), dtype=np.float32)
    volume[0, 1, 1:3] = 0.8  # a two-cell plateau: both are peaks
    volume[0, 0, 4] = 0.3  # an edge peak below threshold
    peaks = nms3d(volume, (1, 3, 3), 0.5)
    assert np.argwhere(peaks).tolist() == [[0, 1, 1], [0, 1, 2]]
    assert nms3d(volume, (1, 3, 3), 0.25)[0, 0, 4]


def test_max_pool3d_rejects_bad_windows() -> None:
    volume = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="odd"):
        max_pool3d(volume, (2, 3, 3))
    with pytest.raises(ValueError, match="3D"):
        max_pool3d(volume[0], (3, 3, 3))
    assert max_pool3d(volume, (3, 3, 3)).shape == volume.shape


def test_peaks_to_detections_orders_by_score_then_cell() -> None:
    spec = DetectorSpec(frame_size=(16, 12), window_size=(4, 8), person_height_px=6, scales=(1.0, 0.9))
    boxes = grid_boxes(spec)
    volume = np.zeros(spec.grid_shape, dtype=np.float32)
    cells = [(1, 0, 0), (0, 5, 7), (0, 2, 3), (1, 4, 1), (0, 0, 5)]
    for cell, score in zip(cells, [0.7, 0.9, 0.7, 0.2, 0.7], strict=True):
        volume[cell] = score
    peaks = volume > 0
    found = peaks_to_detections(volume, peaks, boxes, max_detections=10)
    assert isinstance(found, Detections)
    # Equal scores in flat-index order: (0, 0, 5) < (0, 2, 3) < (1, 0, 0).
    assert found.cells.tolist() == [[0, 5, 7], [0, 0, 5], [0, 2, 3], [1, 0, 0], [1, 4, 1]]
    np.testing.assert_array_equal(found.scores, np.array([0.9, 0.7, 0.7, 0.7, 0.2], dtype=np.float32))
    np.testing.assert_array_equal(found.boxes, boxes[tuple(found.cells.T)])
    assert found.scores.dtype == np.float32 and found.cells.dtype == np.int64

    top = peaks_to_detections(volume, peaks, boxes, max_detections=2)
    assert top.cells.tolist() == [[0, 5, 7], [0, 0, 5]]
    none = peaks_to_detections(volume, np.zeros_like(peaks), boxes, max_detections=3)
    assert len(none) == 0 and none.boxes.shape == (0, 4) and none.cells.shape == (0, 3)
    with pytest.raises(ValueError, match="same grid"):
        peaks_to_detections(volume, peaks, boxes[:1], max_detections=3)


@pytest.mark.parametrize("scale_index", range(len(SPEC.scales)))
def test_linear_score_map_resamples_to_linear_grid(scale_index: int) -> None:
    resampling = scale_resamplings(SPEC)[scale_index]
    rows, cols = resampling.map_shape
    assert resampling.weights_y.shape == (SPEC.grid_shape[1], rows)
    assert resampling.weights_x.shape == (SPEC.grid_shape[2], cols)
    score_map = 0.5 + 0.003 * np.arange(rows)[:, None] - 0.002 * np.arange(cols)[None, :]
    grid = resample_to_grid(score_map.astype(np.float32), resampling)
    assert grid.dtype == np.float32 and grid.shape == SPEC.grid_shape[1:]

    # Where the windows reach, the grid samples the same plane at the map coordinates of its cell centres.
    scaled_h, scaled_w = resampling.frame_shape
    gy = (SPEC.grid_stride * (np.arange(SPEC.grid_shape[1]) + 0.5) * scaled_h / SPEC.frame_height - 64) / 4
    gx = (SPEC.grid_stride * (np.arange(SPEC.grid_shape[2]) + 0.5) * scaled_w / SPEC.frame_width - 24) / 4
    plane = 0.5 + 0.003 * gy[:, None] - 0.002 * gx[None, :]
    valid = resampling.valid
    assert valid.any() and (SPEC.scales[scale_index] == 1.0 or not valid.all())
    np.testing.assert_allclose(grid[valid], plane[valid], atol=1e-5)
    assert np.all(grid[~valid] == 0)
    inside = (gy[:, None] >= 0) & (gy[:, None] <= rows - 1) & (gx[None, :] >= 0) & (gx[None, :] <= cols - 1)
    np.testing.assert_array_equal(valid, inside)


def test_preprocess_normalizes_per_channel() -> None:
    spec = DetectorSpec(mean=(0.1, 0.5, 0.9), std=(0.2, 0.25, 0.5))
    frame = np.random.default_rng(0).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    image = preprocess_frame(frame, spec)
    assert image.shape == (1, 3, 480, 640) and image.dtype == np.float32 and image.flags.c_contiguous
    for c in range(3):
        expected = (frame[:, :, c] / 255.0 - spec.mean[c]) / spec.std[c]
        np.testing.assert_allclose(image[0, c], expected, atol=1e-5)


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return build_naive_model(random_weights(3))


@pytest.fixture(scope="module")
def detector(model: onnx.ModelProto) -> NaiveDetector:
    return NaiveDetector(model, SPEC, threshold=0.01, max_detections=200)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(11).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)


def test_model_map_shapes_fit_the_spec(model: onnx.ModelProto) -> None:
    for scale in SPEC.scales:
        assert inferred_output_dims(model, *SPEC.scaled_frame_shape(scale)) == [1, *SPEC.score_map_shape(scale), 2]


def test_detector_end_to_end(detector: NaiveDetector, frame: np.ndarray) -> None:
    volume = detector.score_volume(frame)
    assert volume.shape == (3, 240, 320) and volume.dtype == np.float32
    assert volume.min() >= 0 and volume.max() <= 1 and volume.max() > 0
    for k, resampling in enumerate(detector.resamplings):
        assert np.all(volume[k][~resampling.valid] == 0)
        assert np.all(volume[k][resampling.valid] > 0)  # softmax probabilities never reach 0

    traffic = detector.last_traffic
    assert isinstance(traffic, BoundaryTraffic)
    assert traffic.calls == 3
    assert traffic.bytes_in == sum(4 * 3 * h * w for h, w in (SPEC.scaled_frame_shape(s) for s in SPEC.scales))
    assert traffic.bytes_out == sum(4 * 2 * r * c for r, c in (SPEC.score_map_shape(s) for s in SPEC.scales))

    detections, times = detector.detect_timed(frame)
    assert list(times) == list(STAGES) and all(t >= 0 for t in times.values())
    assert 0 < len(detections) <= 200
    assert np.all(np.diff(detections.scores) <= 0) and detections.scores.min() >= 0.01
    candidates = peaks_to_detections(volume, nms3d(volume, SPEC.nms_window, 0.01), grid_boxes(SPEC), 200)
    np.testing.assert_array_equal(detector.last_candidates.cells, candidates.cells)
    expected = suppress_overlapping(candidates, SPEC.nms_iou_threshold, method=SPEC.nms_iou_method)  # type: ignore[arg-type]
    assert len(expected) < len(candidates)  # random weights: overlapping peaks across scales, which it removes
    np.testing.assert_array_equal(detections.cells, expected.cells)
    np.testing.assert_array_equal(detections.scores, expected.scores)
    np.testing.assert_array_equal(detections.boxes, expected.boxes)


def test_score_map_matches_the_network_on_a_crop(detector: NaiveDetector, frame: np.ndarray) -> None:
    # The network is fully convolutional: a crop's map is the corresponding part of the full map.
    maps = detector.score_maps(frame)
    assert [m.shape for m in maps] == [SPEC.score_map_shape(s) for s in SPEC.scales]
    image = detector.preprocess(frame)
    crop = run_onnxruntime(detector.model, {"image": image[:, :, 40:176, 8:68]})["probabilities"]
    assert crop.shape == (1, 3, 4, 2)
    np.testing.assert_allclose(maps[0][10:13, 2:6], crop[0, :, :, 1], atol=1e-5)


def test_detect_uses_the_spec_defaults(model: onnx.ModelProto, frame: np.ndarray) -> None:
    detector = NaiveDetector(model, SPEC)
    assert detector.threshold == SPEC.score_threshold and detector.max_detections == SPEC.max_detections
    assert detector.last_traffic == BoundaryTraffic(0, 0, 0)
    found = detector.detect(frame)
    assert len(found) <= SPEC.max_detections
    assert np.all(found.scores >= SPEC.score_threshold)


def test_detector_loads_a_model_file(tmp_path: Path, model: onnx.ModelProto) -> None:
    path = tmp_path / "naive.onnx"
    onnx.save_model(model, path)
    detector = NaiveDetector(path, SPEC)
    assert detector.model.SerializeToString() == model.SerializeToString()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((480, 640, 3), dtype=np.float32), "uint8"),
        (np.zeros((640, 480, 3), dtype=np.uint8), "shape"),
        (np.zeros((480, 640), dtype=np.uint8), "shape"),
        (np.zeros((480, 640, 4), dtype=np.uint8), "shape"),
        ([[0, 0, 0]], "NumPy array"),
    ],
)
def test_bad_frames_are_rejected(detector: NaiveDetector, bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        detector.detect(bad)  # type: ignore[arg-type]


def test_model_that_does_not_fit_the_spec(model: onnx.ModelProto) -> None:
    with pytest.raises(ConfigError, match="window or stride"):
        NaiveDetector(model, DetectorSpec(stride=8))
    with pytest.raises(ConfigError, match="window or stride"):
        NaiveDetector(model, DetectorSpec(window_size=(40, 128)))


def test_logits_model_is_not_a_probabilities_model() -> None:
    logits = build_naive_model(random_weights(3), output="logits")
    with pytest.raises(ConfigError, match="not probabilities"):
        NaiveDetector(logits, SPEC)


def test_bad_detector_settings(model: onnx.ModelProto) -> None:
    with pytest.raises(ValueError, match="threshold"):
        NaiveDetector(model, SPEC, threshold=0.0)
    with pytest.raises(ValueError, match="max_detections"):
        NaiveDetector(model, SPEC, max_detections=0)
