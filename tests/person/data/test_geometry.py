"""The renderer's fast projection agrees with the camera model it is built from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphopt_person.data.geometry import SceneCamera
from graphopt_person.spec import load_config

CONFIG_PATH = Path(__file__).resolve().parents[3] / "examples" / "02_person_detector" / "detector.toml"


def test_fast_projection_agrees_with_the_camera() -> None:
    config = load_config(CONFIG_PATH)
    points = np.random.default_rng(0).uniform([-4, 1, 0], [4, 15, 3], size=(50, 3))
    uv, depth = SceneCamera(config.camera, 640, 480, 1.0, 0.2, 12.0).project(points)
    np.testing.assert_allclose(uv, config.camera.project(points), atol=1e-9)
    np.testing.assert_allclose(depth, config.camera.to_camera(points)[:, 2], atol=1e-12)
