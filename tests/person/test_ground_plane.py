"""Ground-plane geometry on hand-computed cameras: level, tilted, and a band at the frame's edge."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from graphopt.errors import ConfigError
from graphopt_person.ground_plane import ground_plane_bands, scale_height_ranges
from graphopt_person.spec import CameraSpec, DetectorConfig, DetectorSpec, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector"
ONE_SCALE = DetectorSpec(scales=(1.0,))  # people 80-125 px (a half-step of 1.25 each way)


def config(spec: DetectorSpec = ONE_SCALE, **camera: object) -> DetectorConfig:
    values = {"height_m": 1.0, "tilt_deg": 0.0, "focal_px": (500.0, 500.0), "principal_point": (320.0, 240.0)}
    values.update(camera)
    return DetectorConfig(detector=spec, camera=CameraSpec(**values))  # type: ignore[arg-type]


def test_scale_height_ranges_tile_the_detectable_heights() -> None:
    spec = DetectorSpec()
    ranges = scale_height_ranges(spec)
    assert len(ranges) == 3
    for (_, high), (low, _) in itertools.pairwise(ranges):
        assert high == pytest.approx(low)  # neighbours meet at the geometric mean of their heights
    assert ranges[0][0] == pytest.approx(spec.detectable_heights()[0])
    assert ranges[-1][1] == pytest.approx(spec.detectable_heights()[1])
    assert ranges[0][0] < spec.person_height_at(1.0) < ranges[0][1]
    assert scale_height_ranges(ONE_SCALE) == ((80.0, 125.0),)


def test_level_camera_one_body_height() -> None:
    """Level camera 1 m up, f = 500, a 1.8 m person: box height h = f·H/y and foot row 240 + f·1/y,
    so the foot row is 240 + h/1.8 and the box centre 240 + h·(1/1.8 − 1/2)."""
    (band,) = ground_plane_bands(config(person_height_m=(1.8, 1.8)), margin_rows=0)
    assert band.person_px == (80.0, 125.0)
    assert band.foot_rows == pytest.approx((240 + 80 / 1.8, 240 + 125 / 1.8), abs=1e-6)
    centre = (1 / 1.8 - 0.5)
    assert band.centre_rows == pytest.approx((240 + 80 * centre, 240 + 125 * centre), abs=1e-6)
    # Window i is centred at 4i + 64: centres 244.4-246.9 are windows 45.1-45.7, so rows 45 and 46.
    assert band.map_rows == (45, 46)
    assert band.input_rows == (180, 4 * 46 + 128)
    # Grid row g is centred at 2g + 1, between windows (2g + 1 − 64)/4: only g = 122, 123 read rows 45-46 alone.
    assert band.grid_rows == (122, 123)
    assert band.map_height == 89 and band.input_height == 480
    assert band.sliced and band.rows_kept == 2


def test_level_camera_body_height_range_takes_the_extreme_corners() -> None:
    """Centre − 240 = h·(1/H − 1/2) is extreme at the corners of (h, H): (80, 1.95) and (125, 1.5)."""
    (band,) = ground_plane_bands(config(person_height_m=(1.5, 1.95)), margin_rows=2)
    low, high = 240 + 80 * (1 / 1.95 - 0.5), 240 + 125 * (1 / 1.5 - 0.5)
    assert band.centre_rows == pytest.approx((low, high), abs=1e-6)
    assert band.foot_rows == pytest.approx((240 + 80 / 1.95, 240 + 125 / 1.5), abs=1e-6)
    first, last = math.floor((low - 64) / 4) - 2, math.ceil((high - 64) / 4) + 2
    assert band.map_rows == (first, last)
    assert band.input_rows == (4 * first, 4 * last + 128)


def _row(height_m: float, distance: float, camera_height: float, tilt_deg: float) -> float:
    """Image row of a point by plain trigonometry: depression angle minus the tilt, through the lens."""
    return 240 + 500 * math.tan(math.atan((camera_height - height_m) / distance) - math.radians(tilt_deg))


def _distance_for(box: float, body: float, camera_height: float, tilt_deg: float) -> float:
    near, far = 0.3, 100.0  # box height falls with distance
    for _ in range(200):
        mid = (near + far) / 2
        height = _row(0, mid, camera_height, tilt_deg) - _row(body, mid, camera_height, tilt_deg)
        near, far = (mid, far) if height > box else (near, mid)
    return (near + far) / 2


def test_tilted_camera() -> None:
    """Camera 1.2 m up, pitched down 10°, a 1.7 m person: the band's ends are the people whose box is
    80 and 125 px tall, found by trigonometry independently of CameraSpec's rotation."""
    camera = {"height_m": 1.2, "tilt_deg": 10.0, "person_height_m": (1.7, 1.7)}
    (band,) = ground_plane_bands(config(**camera), margin_rows=0)
    ends = []
    for box in (80.0, 125.0):
        distance = _distance_for(box, 1.7, 1.2, 10.0)
        foot, head = _row(0, distance, 1.2, 10.0), _row(1.7, distance, 1.2, 10.0)
        assert foot - head == pytest.approx(box, abs=1e-6)
        ends.append((foot, (foot + head) / 2))
    assert band.foot_rows == pytest.approx((ends[0][0], ends[1][0]), abs=1e-5)
    assert band.centre_rows == pytest.approx(sorted(c for _, c in ends), abs=1e-5)
    low, high = band.centre_rows
    assert band.map_rows == (math.floor((low - 64) / 4), math.ceil((high - 64) / 4))
    assert config(**camera).camera.horizon_v() == pytest.approx(240 - 500 * math.tan(math.radians(10)))


def test_band_at_the_frame_edge_is_clipped_and_an_unreachable_scale_is_empty() -> None:
    """A level camera 3 m up sees a 1.5 m person's box centre 1.5·h below the horizon: the
    near scale's people (199-317 px) would be centred below the frame; the far scale's
    (79-126 px) between rows 359 and 429, i.e. windows 73.8-91.2, clipped at the last window (88)."""
    spec = DetectorSpec()  # scales 1.0, 0.63, 0.4
    bands = ground_plane_bands(config(spec, height_m=3.0, person_height_m=(1.5, 1.5)), margin_rows=3)
    far, _, near = bands
    low, high = scale_height_ranges(spec)[0]
    assert far.centre_rows == pytest.approx((240 + 1.5 * low, 240 + 1.5 * high), abs=1e-6)
    assert far.map_rows == (math.floor((240 + 1.5 * low - 64) / 4) - 3, 88)
    assert far.input_rows is not None and far.input_rows[1] == 480  # the frame's last row
    assert near.map_rows is None and near.input_rows is None and near.grid_rows is None
    assert near.rows_kept == 0 and "no rows" in near.describe()


def test_shipped_camera_bands() -> None:
    bands = ground_plane_bands(load_config(EXAMPLE / "detector.toml"))
    assert [band.map_rows for band in bands] == [(29, 41), (11, 23), (0, 12)]
    assert [band.map_height for band in bands] == [89, 44, 17]
    # Every band's box centres sit just below the horizon (row 194): a person's middle is near the camera's height.
    horizon = load_config(EXAMPLE / "detector.toml").camera.horizon_v()
    for band in bands:
        assert band.centre_rows is not None and horizon - 1 < band.centre_rows[0] < band.centre_rows[1] < horizon + 50


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ({"tilt_deg": 40.0}, "above the 640x480 frame"),
        ({"tilt_deg": -40.0}, "below the 640x480 frame"),
        ({"height_m": 2.9, "person_height_m": (0.5, 0.5)}, "no pyramid scale has a row"),
    ],
)
def test_geometry_that_does_not_fit_is_one_clear_error(camera: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ground_plane_bands(config(DetectorSpec(), **camera))


def test_a_camera_description_missing_a_field_is_refused() -> None:
    partial = parse_config({"camera": {"height_m": 1.2, "focal_px": [525.0, 525.0]}}, source="robot.toml")
    with pytest.raises(ConfigError, match=r"robot.toml: \[camera\] has no tilt_deg, principal_point, person_height_m"):
        ground_plane_bands(partial)
    with pytest.raises(ConfigError, match=r"\[camera\] is missing"):
        ground_plane_bands(parse_config({}, source="robot.toml"))
    # A config built in code is taken as given, and the shipped file gives every key.
    ground_plane_bands(DetectorConfig())
    ground_plane_bands(load_config(EXAMPLE / "detector.toml"))


def test_negative_margin_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 0"):
        ground_plane_bands(DetectorConfig(), margin_rows=-1)
