"""The core camera geometry, on hand-computed cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graphopt.camera import PinholeCamera, feasible_rows, object_rows, rows_at


def test_a_level_camera_projects_the_floor_below_the_principal_point() -> None:
    camera = PinholeCamera(height_m=2.0, tilt_deg=0.0, focal_px=(100.0, 100.0), principal_point=(50.0, 40.0))
    # A floor point 10 m ahead is 2 m below the optical axis: 100 · 2 / 10 = 20 rows below the centre.
    assert rows_at(camera, np.array([10.0]), 0.0)[0] == pytest.approx(60.0)
    assert camera.horizon_v() == pytest.approx(40.0)
    np.testing.assert_allclose(camera.ground_point(np.array(50.0), np.array(60.0)), [0.0, 10.0, 0.0], atol=1e-9)
    foot, height = object_rows(camera, 1.8, np.array([10.0]))
    assert foot[0] == pytest.approx(60.0) and height[0] == pytest.approx(18.0)


def test_tilt_moves_the_horizon_up_by_f_tan() -> None:
    camera = PinholeCamera(tilt_deg=10.0, focal_px=(500.0, 500.0), principal_point=(320.0, 240.0))
    assert camera.horizon_v() == pytest.approx(240.0 - 500.0 * math.tan(math.radians(10.0)))


def test_feasible_rows_keep_exactly_the_box_heights_asked_for() -> None:
    camera = PinholeCamera(height_m=2.0, tilt_deg=0.0, focal_px=(100.0, 100.0), principal_point=(50.0, 40.0))
    # A 1.8 m object is h = 180/d px tall with its foot at 40 + 200/d: 15..30 px means d in [6, 12] m.
    feet, centres = feasible_rows(camera, (1.8, 1.8), 15.0, 30.0)
    assert feet.min() == pytest.approx(40 + 200 / 12, abs=1e-6) and feet.max() == pytest.approx(40 + 200 / 6, abs=1e-6)
    np.testing.assert_allclose(centres, feet - (feet - 40) * 0.9 / 2, rtol=1e-9)
