"""The synthetic scene generator: determinism, image format, and ground truth that agrees with the camera."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphopt_person.data import Scene, generate_scenes, render_scene, scene_seeds
from graphopt_person.spec import DetectorConfig, load_config, parse_config

CONFIG_PATH = Path(__file__).resolve().parents[3] / "examples" / "02_person_detector" / "detector.toml"


@pytest.fixture(scope="module")
def config() -> DetectorConfig:
    return load_config(CONFIG_PATH)


@pytest.fixture(scope="module")
def scenes(config: DetectorConfig) -> list[Scene]:
    return [render_scene(config, seed) for seed in range(50)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def test_same_seed_renders_the_same_scene(config: DetectorConfig) -> None:
    first, second = render_scene(config, 7), render_scene(config, 7)
    assert first.image.tobytes() == second.image.tobytes()
    np.testing.assert_array_equal(first.boxes, second.boxes)
    assert first.persons == second.persons
    assert first.seed == second.seed == 7


def test_different_seeds_render_different_scenes(scenes: list[Scene]) -> None:
    assert len({scene.image.tobytes() for scene in scenes[:10]}) == 10


def test_scene_seeds_splits_are_disjoint() -> None:
    train, test = scene_seeds("train", 500), scene_seeds("test", 500)
    assert len(train) == len(test) == 500
    assert len(set(train)) == 500 and not set(train) & set(test)
    assert scene_seeds("train", 3) == train[:3]
    assert scene_seeds("test", 0) == []


@pytest.mark.parametrize(("split", "count"), [("val", 3), ("", 1), ("train", -1), ("test", 1_000_001)])
def test_scene_seeds_rejects_bad_arguments(split: str, count: int) -> None:
    with pytest.raises(ValueError):
        scene_seeds(split, count)


def test_generate_scenes_renders_the_split_seeds(config: DetectorConfig) -> None:
    generated = list(generate_scenes(config, "test", 2))
    assert [scene.seed for scene in generated] == scene_seeds("test", 2)
    assert generated[1].image.tobytes() == render_scene(config, scene_seeds("test", 2)[1]).image.tobytes()


def test_image_format(scenes: list[Scene]) -> None:
    for scene in scenes[:5]:
        assert scene.image.shape == (480, 640, 3)
        assert scene.image.dtype == np.uint8
        assert scene.image.std() > 10
        assert scene.boxes.dtype == np.float32 and scene.boxes.shape == (len(scene.persons), 4)


def test_boxes_follow_the_camera_model(scenes: list[Scene], config: DetectorConfig) -> None:
    camera, spec = config.camera, config.detector
    low, high = spec.detectable_heights()
    fy = camera.focal_px[1]
    count = 0
    for scene in scenes:
        np.testing.assert_array_equal(scene.boxes, np.array([p.box for p in scene.persons], np.float32).reshape(-1, 4))
        for person in scene.persons:
            count += 1
            box = np.array(person.box)
            expected = camera.person_box(person.x_m, person.y_m, person.height_m, spec.box_aspect)
            np.testing.assert_allclose(box, expected, atol=1e-9)
            x0, y0, x1, y1 = box
            ground = camera.ground_point(np.array((x0 + x1) / 2), np.array(y1))
            assert np.hypot(ground[0] - person.x_m, ground[1] - person.y_m) < 0.06
            depth = camera.to_camera(np.array([person.x_m, person.y_m, person.height_m / 2]))[2]
            assert (y1 - y0) == pytest.approx(fy * person.height_m / depth, rel=0.03)
            assert low <= y1 - y0 <= high
            assert x0 >= 0 and x1 <= spec.frame_width and y0 >= 0 and y1 <= spec.frame_height
            lo_h, hi_h = camera.person_height_m
            assert lo_h <= person.height_m <= hi_h
            assert 0.6 <= person.visible_fraction <= 1.0
        for i in range(len(scene.boxes)):
            for j in range(i):
                assert _iou(scene.boxes[i], scene.boxes[j]) < 0.3
    assert count > 50


def test_people_counts_and_occlusion_vary(scenes: list[Scene]) -> None:
    counts = [len(scene.persons) for scene in scenes]
    assert 0 in counts and max(counts) >= 3
    assert 0.03 < counts.count(0) / len(counts) < 0.35
    heights = [p.box[3] - p.box[1] for scene in scenes for p in scene.persons]
    assert min(heights) < 120 and max(heights) > 220
    assert any(p.visible_fraction < 1 for scene in scenes for p in scene.persons)


def test_max_people_limits_the_count(config: DetectorConfig, scenes: list[Scene]) -> None:
    for seed in range(5):
        assert len(render_scene(config, seed, max_people=1).persons) <= 1
    empty = render_scene(config, 0, max_people=0)
    assert empty.persons == () and empty.boxes.shape == (0, 4)
    with pytest.raises(ValueError):
        render_scene(config, 0, max_people=-1)


def test_people_are_drawn_on_an_identical_background(config: DetectorConfig, scenes: list[Scene]) -> None:
    checked = 0
    for scene in scenes[:12]:
        if not scene.persons:
            continue
        background = render_scene(config, scene.seed, draw_people=False)
        np.testing.assert_array_equal(background.boxes, scene.boxes)
        diff = np.abs(scene.image.astype(np.int16) - background.image.astype(np.int16)).max(axis=2)
        outside = np.ones(diff.shape, dtype=bool)
        for person in scene.persons:
            x0, y0, x1, y1 = person.box
            # Limbs and the shadow may reach a little beyond the standardized box.
            pad = 0.3 * (y1 - y0)
            outside[max(int(y0 - pad), 0) : int(y1 + pad) + 1, max(int(x0 - pad), 0) : int(x1 + pad) + 1] = False
            if person.visible_fraction == 1.0:
                inside = diff[int(y0) + 1 : int(y1), int(x0) + 1 : int(x1)]
                assert (inside > 12).mean() > 0.15, f"seed {scene.seed}: person at {person.box} not drawn"
                checked += 1
        assert diff[outside].max() == 0
    assert checked >= 5


def test_other_cameras_and_frames(config: DetectorConfig) -> None:
    other = parse_config(
        {
            "detector": {"frame_size": [480, 360], "scales": [1.0, 0.7], "grid_stride": 2},
            "camera": {
                "height_m": 1.6,
                "tilt_deg": 12.0,
                "focal_px": [400.0, 400.0],
                "principal_point": [240.0, 180.0],
            },
        }
    )
    low, high = other.detector.detectable_heights()
    people = 0
    for seed in range(8):
        scene = render_scene(other, seed)
        assert scene.image.shape == (360, 480, 3)
        for x0, y0, x1, y1 in scene.boxes:
            people += 1
            assert low - 1e-3 <= y1 - y0 <= high + 1e-3
            assert x0 >= 0 and x1 <= 480 and y0 >= 0 and y1 <= 360
    assert people > 0


def test_the_old_module_path_reexports_the_public_names() -> None:
    import graphopt_person.data
    import graphopt_person.scenes

    assert graphopt_person.scenes.__all__ == graphopt_person.data.__all__
    for name in graphopt_person.data.__all__:
        assert getattr(graphopt_person.scenes, name) is getattr(graphopt_person.data, name)
