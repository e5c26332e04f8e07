"""DetectorSpec / CameraSpec: the bundled file, validation messages, camera geometry and the common grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from graphopt.errors import ConfigError
from graphopt_person.grid import grid_boxes, resample_matrix, resize_bilinear, resize_matrix
from graphopt_person.spec import CameraSpec, DetectorSpec, load_config, parse_config

CONFIG = Path(__file__).parents[2] / "examples" / "02_person_detector" / "detector.toml"


def test_bundled_config_is_the_default_detector() -> None:
    config = load_config(CONFIG)
    assert config.detector == DetectorSpec()
    assert config.camera == CameraSpec()
    assert config.detector.grid_shape == (3, 240, 320)
    assert config.detector.nms_window == (3, 13, 7)
    assert config.detector.score_map_shape(1.0) == (89, 149)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[detector]\nstrde = 4\n", "unknown key 'strde' in [detector]"),
        ("[detectr]\n", "unknown table [detectr]"),
        ("[detector]\nstride = 'four'\n", "[detector] stride must be an integer, got 'four'"),
        ("[detector]\nstride = 2.5\n", "[detector] stride must be an integer"),
        ("[detector]\nscales = [0.5, 1.0]\n", "decreasing order"),
        ("[detector]\nscales = []\n", "must be a non-empty list"),
        ("[detector]\nnms_window = [3, 6, 3]\n", "three odd positive sizes"),
        ("[detector]\nnms_window = [3, 7]\n", "must be a list of 3 integers"),
        ("[detector]\nscore_threshold = 1.5\n", "probability in (0, 1)"),
        ("[detector]\nnms_iou_method = 'greedy'\n", "nms_iou_method must be one of 'cluster', 'fast'"),
        ("[detector]\nnms_iou_method = 1\n", "nms_iou_method must be a string, got 1"),
        ("[detector]\nscales = [0.1]\n", "smaller than the window"),
        ("[detector]\ngrid_stride = 7\n", "must divide the frame size"),
        ("[camera]\nheight_m = -1.0\n", "[camera] height_m must be above the floor"),
        ("[camera]\ntilt_deg = -50.0\n", "the camera sees no floor"),
        ("[camera]\nperson_height_m = [1.9, 1.5]\n", "person_height_m must be [min, max]"),
        ("[camera]\nprincipal_point = [900.0, 240.0]\n", "lies outside the 640x480 frame"),
        ("[camera]\nfocal_px = [true, 525.0]\n", "must be a number, got True"),
        ("detector = 3\n", "[detector] must be a table"),
        ("[detector\n", "not a valid TOML file"),
    ],
)
def test_bad_config_gives_one_sentence_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_partial_config_keeps_defaults() -> None:
    config = parse_config({"detector": {"stride": 8}, "camera": {"tilt_deg": 10.0}})
    assert config.detector.stride == 8 and config.detector.scales == DetectorSpec().scales
    assert config.camera.tilt_deg == 10.0 and config.camera.height_m == CameraSpec().height_m


def test_projection_and_floor_back_projection_are_inverse() -> None:
    camera = CameraSpec(height_m=1.2, tilt_deg=8.0)
    points = np.array([[x, y, 0.0] for x in (-2.0, 0.0, 1.5) for y in (2.0, 5.0, 9.0)])
    u, v = camera.project(points).T
    np.testing.assert_allclose(camera.ground_point(u, v), points, atol=1e-9)


def test_projection_matches_pinhole_formula_without_tilt() -> None:
    camera = CameraSpec(height_m=1.0, tilt_deg=0.0, focal_px=(500.0, 400.0), principal_point=(320.0, 240.0))
    u, v = camera.project(np.array([1.0, 4.0, 2.0]))
    assert u == pytest.approx(320 + 500 * 1.0 / 4.0)
    assert v == pytest.approx(240 - 400 * 1.0 / 4.0)
    assert camera.horizon_v() == pytest.approx(240)


def test_person_box_height_follows_distance() -> None:
    camera = CameraSpec(tilt_deg=0.0)
    near = camera.person_box(0.0, 4.0, 1.8, 0.41)
    far = camera.person_box(0.0, 8.0, 1.8, 0.41)
    assert near[3] - near[1] == pytest.approx(525 * 1.8 / 4.0)
    assert far[3] - far[1] == pytest.approx((near[3] - near[1]) / 2)
    assert near[2] - near[0] == pytest.approx(0.41 * (near[3] - near[1]))
    assert far[3] == pytest.approx(camera.project(np.array([0.0, 8.0, 0.0]))[1])


def test_point_above_horizon_has_no_floor_point() -> None:
    camera = CameraSpec()
    assert np.isnan(camera.ground_point(np.array([320.0]), np.array([camera.horizon_v() - 10]))).all()


def test_detectable_heights_cover_each_scale_by_half_a_step() -> None:
    spec = DetectorSpec()
    low, high = spec.detectable_heights()
    step = math.sqrt(1 / 0.63)
    assert low == pytest.approx(100 / step)
    assert high == pytest.approx(100 / 0.4 * step)


def test_resize_matrix_rows_sum_to_one_and_identity_at_same_size() -> None:
    np.testing.assert_allclose(resize_matrix(7, 7), np.eye(7), atol=1e-7)
    weights = resize_matrix(480, 302)
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-6)
    image = np.random.default_rng(0).random((3, 20, 30)).astype(np.float32) + 0.5
    # Halving with half-pixel centres averages each 2x2 block.
    expected = image.reshape(3, 10, 2, 15, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(resize_bilinear(image, 10, 15), expected, rtol=1e-6)


def test_resample_matrix_puts_window_centres_on_grid_centres() -> None:
    spec = DetectorSpec()
    weights, valid = resample_matrix(spec, 1.0, "y")
    # At scale 1 window i is centred at 4i + 64; grid row g at 2g + 1.
    # Grid row 31 (centre 63) lies before window 0; row 32 (centre 65) is 1/4 past it.
    assert not valid[31] and valid[32]
    np.testing.assert_allclose(weights[32, :2], [0.75, 0.25])
    assert weights.shape == (240, 89)
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-6)
    ramp = np.arange(89, dtype=np.float32)
    resampled = weights @ ramp
    centres = 2 * np.arange(240) + 1
    np.testing.assert_allclose(resampled[valid], ((centres - 64) / 4)[valid], atol=1e-5)


def test_grid_boxes_are_person_boxes_centred_on_cells() -> None:
    spec = DetectorSpec()
    boxes = grid_boxes(spec)
    assert boxes.shape == (3, 240, 320, 4)
    x0, y0, x1, y1 = boxes[2, 100, 50]
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (pytest.approx(101), pytest.approx(201))
    assert y1 - y0 == pytest.approx(100 / 0.4)
    assert x1 - x0 == pytest.approx(0.41 * 250)
