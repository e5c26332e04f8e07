"""``graphopt bands``: the ground-plane picture, its JSON, and one-sentence errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from graphopt.cli.app import _Group
from graphopt_person.cli import bands
from graphopt_person.data import render_scene
from graphopt_person.draw import draw_bands, read_png, write_png
from graphopt_person.ground_plane import DEFAULT_MARGIN_ROWS, ground_plane_bands
from graphopt_person.spec import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector" / "detector.toml"
SCENE = "1000004"
# The command under the CLI group's error handling (GraphoptError → one sentence, exit 2), as `graphopt bands`.
CLI = _Group("graphopt", commands=[bands])


def run(*args: str) -> Result:
    return CliRunner().invoke(CLI, ["bands", *args])


def test_writes_one_panel_per_scale_and_describes_each_band(tmp_path: Path) -> None:
    out = tmp_path / "bands.png"
    result = run("--config", str(EXAMPLE), "--scene", SCENE, "-o", str(out))
    assert result.exit_code == 0, result.output
    image = read_png(out)
    config = load_config(EXAMPLE)
    spec = config.detector
    assert image.shape[1] == 3 * spec.frame_width + 2 * 4
    assert spec.frame_height < image.shape[0] <= spec.frame_height + 60  # the frame under a label strip
    # Exactly the library's picture of the scene with its ground truth.
    scene = render_scene(config, int(SCENE))
    expected = draw_bands(scene.image, ground_plane_bands(config), spec, config.camera.horizon_v(), truth=scene.boxes)
    np.testing.assert_array_equal(image, expected)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("scale 1 (people 79-126 px): score rows 29-41 of 89")
    assert lines[-1] == f"wrote {out}"


def test_json_lists_every_scale(tmp_path: Path) -> None:
    out = tmp_path / "bands.png"
    result = run("--config", str(EXAMPLE), "--scene", SCENE, "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out) and out.exists()
    assert data["margin_rows"] == DEFAULT_MARGIN_ROWS
    assert [entry["scale"] for entry in data["scales"]] == [1.0, 0.63, 0.4]
    first = data["scales"][0]
    assert first["map_rows"] == [29, 41] and first["map_height"] == 89
    assert first["input_rows"] == [116, 292] and first["input_height"] == 480
    for entry in data["scales"]:
        assert set(entry) == {"scale", "person_px", "foot_rows", "centre_rows", "map_rows", "map_height",
                              "input_rows", "input_height", "grid_rows"}


def test_margin_rows_widens_the_bands(tmp_path: Path) -> None:
    result = run("--config", str(EXAMPLE), "--scene", SCENE, "-o", str(tmp_path / "b.png"), "--json",
                 "--margin-rows", "0")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scales"][0]["map_rows"] == [29 + DEFAULT_MARGIN_ROWS, 41 - DEFAULT_MARGIN_ROWS]
    assert f"default {DEFAULT_MARGIN_ROWS}" in run("--help").output


def test_draws_on_a_camera_frame_without_changing_it(tmp_path: Path) -> None:
    frame = tmp_path / "frame.png"
    write_png(frame, np.full((480, 640), 120, dtype=np.uint8))  # a grey frame is drawn as RGB
    before = frame.read_bytes()
    out = tmp_path / "bands.png"
    result = run("--config", str(EXAMPLE), "--image", str(frame), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert read_png(out).shape[1] == 3 * 640 + 2 * 4
    assert frame.read_bytes() == before


def test_a_camera_without_tilt_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "detector.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    config.write_text("\n".join(line for line in text.splitlines() if not line.startswith("tilt_deg")) + "\n")
    out = tmp_path / "bands.png"
    result = run("--config", str(config), "--scene", SCENE, "-o", str(out))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "tilt_deg" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_config_is_required(tmp_path: Path) -> None:
    out = tmp_path / "bands.png"
    result = run("--scene", SCENE, "-o", str(out))
    assert result.exit_code == 2 and "--config" in result.output
    assert not out.exists()


def test_needs_exactly_one_frame_source(tmp_path: Path) -> None:
    out = tmp_path / "bands.png"
    for extra in ([], ["--scene", SCENE, "--image", str(tmp_path / "f.png")]):
        result = run("--config", str(EXAMPLE), "-o", str(out), *extra)
        assert result.exit_code == 2 and "exactly one of --image and --scene" in result.output
    assert not out.exists()


def test_bad_images_and_outputs_are_one_sentence_and_exit_2(tmp_path: Path) -> None:
    small = tmp_path / "small.png"
    write_png(small, np.zeros((10, 20, 3), np.uint8))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    frame = tmp_path / "frame.png"
    write_png(frame, np.zeros((480, 640, 3), np.uint8))
    out = tmp_path / "bands.png"
    cases = [
        (["--image", str(small), "-o", str(out)], "is 20x10, but the detector takes 640x480 frames"),
        (["--image", str(tmp_path / "missing.png"), "-o", str(out)], "no such image file"),
        (["--image", str(corrupt), "-o", str(out)], "is not an image file Pillow can read"),
        (["--image", str(frame), "-o", str(frame)], "refusing to write the drawing over the input image"),
        (["--scene", SCENE, "-o", str(tmp_path / "no" / "dir" / "b.png")], "cannot write the image"),
    ]
    for args, message in cases:
        result = run("--config", str(EXAMPLE), *args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
        assert "Traceback" not in result.output
    assert not out.exists()
    assert np.array_equal(read_png(frame), np.zeros((480, 640, 3), np.uint8))
