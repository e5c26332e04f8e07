"""Labelled frames and graphopt evaluate for the yolo workload, on the two real exports."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

from graphopt.cli import cli
from graphopt.errors import ConfigError
from graphopt.model_io import save_model
from graphopt.workloads import load_config
from graphopt_yolo import pictures as yolo_pictures
from graphopt_yolo.config import YoloConfig, parse_config
from graphopt_yolo.frames import (
    FACES,
    labelled_photo_frame,
    labelled_text_frame,
    photo_frame,
    place_box,
    text_frame,
    text_ink,
)
from graphopt_yolo.fused import build_fused_model
from graphopt_yolo.pictures import labelled_frame_at, pictures

EXAMPLE = Path(__file__).parents[2] / "examples" / "06_yolo"
FRAMES = 50
#: Measured on the first 50 test frames (host pipeline down to score 0.01): ddddocr's AP@0.5 on the
#: characters' ink boxes 0.36 (its boxes are looser than the ink and often hold two close characters),
#: NudeNet's on the faces 0.95. With every box moved sideways by half its width both fall below 0.01.
#: The bounds leave room for onnxruntime's rounding, not for ground truth beside the objects.
AP_BOUND = {"ddddocr": 0.25, "nudenet": 0.85}
SHIFTED_AP_BOUND = 0.05


# ---------------------------------------------------------------- the frames and their ground truth


@pytest.mark.parametrize("size", [(480, 640), (120, 160)])
def test_labelled_frames_have_the_pixels_of_the_frames(size: tuple[int, int]) -> None:
    for index in range(6):
        np.testing.assert_array_equal(labelled_photo_frame("test", index, *size)[0], photo_frame("test", index, *size))
        np.testing.assert_array_equal(labelled_text_frame("train", index, *size)[0], text_frame("train", index, *size))
    config = YoloConfig(frame_width=size[1], frame_height=size[0])  # mixed: photos and text in turn
    labelled = config.labelled_frames("test", 4)
    for (_, frame), item in zip(pictures(config, "test", 4), labelled, strict=True):
        np.testing.assert_array_equal(item.image, frame)
    assert [item.seed for item in labelled] == [0, 1, 2, 3]
    assert [len(item.boxes) for item in labelled[::2]] == [1, 1]  # a face in each photo frame
    assert all(len(item.boxes) >= 3 for item in labelled[1::2])  # three characters or more in each text frame
    np.testing.assert_array_equal(config.labelled_frame(3).boxes, labelled[3].boxes)


def test_a_face_box_by_hand() -> None:
    # The astronaut's face (174, 85)-(272, 180); the crop rows 50-250, columns 100-400 (300 wide), mirrored:
    # x 74..172 in the crop becomes 300-172 = 128 .. 300-74 = 226; y 35..130. Resized to 600×400 (×2) and
    # placed at (10, 20): (266, 90)-(462, 280).
    box = place_box(FACES["astronaut"], (50, 100, 250, 400), True, (600, 400), (10, 20))
    np.testing.assert_array_equal(box, [[266, 90, 462, 280]])
    unmirrored = place_box(FACES["astronaut"], (50, 100, 250, 400), False, (600, 400), (10, 20))
    np.testing.assert_array_equal(unmirrored, [[158, 90, 354, 280]])


@pytest.mark.parametrize("index", range(8))
def test_the_face_box_holds_the_photo_s_face(index: int) -> None:
    """The frame inside the box is the photo's face, resized (mirrored or not) and lit: correlation near 1."""
    frame, boxes = labelled_photo_frame("test", index, 480, 640)
    x0, y0, x1, y1 = (round(float(v)) for v in boxes[0])
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    name = sorted(FACES)[index % len(FACES)]
    from skimage import data

    photo = np.asarray(getattr(data, name)())
    fx0, fy0, fx1, fy1 = FACES[name]
    face = Image.fromarray(photo[fy0:fy1, fx0:fx1]).convert("L").resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
    seen = np.asarray(Image.fromarray(frame[y0:y1, x0:x1]).convert("L"), np.float64).ravel()
    best = max(np.corrcoef(seen, np.asarray(candidate, np.float64).ravel())[0, 1]
               for candidate in (face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    assert best > 0.97, f"photos:test:{index}: the box's pixels correlate {best:.3f} with the face"
    beside = frame[y0:y1, min(x1, 640 - (x1 - x0)):][:, : x1 - x0]
    if beside.shape[1] == x1 - x0:  # the same size beside it is not the face
        other = np.asarray(Image.fromarray(beside).convert("L"), np.float64).ravel()
        assert np.corrcoef(other, np.asarray(face, np.float64).ravel())[0, 1] < best - 0.2


@pytest.mark.parametrize("size", [(480, 640), (120, 160)])
def test_character_boxes_are_the_ink_of_the_characters(size: tuple[int, int]) -> None:
    for index in range(30):
        _, boxes = labelled_text_frame("test", index, *size)
        ink = text_ink("test", index, *size)
        assert len(boxes), f"text:test:{index}"
        cover = np.zeros_like(ink)
        for x0, y0, x1, y1 in boxes.astype(int):
            assert 0 <= x0 < x1 <= size[1] and 0 <= y0 < y1 <= size[0]
            inside = ink[y0:y1, x0:x1]
            # Tight: ink on each of the box's four edges.
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            cover[y0:y1, x0:x1] = True
        assert not (ink & ~cover).any(), f"text:test:{index}: {(ink & ~cover).sum()} ink pixels outside the boxes"


def test_every_character_of_a_full_line_has_a_box() -> None:
    # At 640×480 every line fits in the frame: one box per character that is not a space.
    from graphopt_yolo.frames import _text_canvas

    for index in range(20):
        _, lines = _text_canvas("test", index, 480, 640)
        _, boxes = labelled_text_frame("test", index, 480, 640)
        assert len(boxes) == sum(len(line.text.replace(" ", "")) for line in lines)


# ---------------------------------------------------------------- evaluation on the real models


def _config(which: str) -> YoloConfig:
    config = load_config(EXAMPLE / ("ddddocr.toml" if which == "ddddocr" else "yolo.toml"))
    assert isinstance(config, YoloConfig)
    return config


def _evaluate(which: str, model: onnx.ModelProto, *, min_score: float = 0.01) -> dict[str, Any]:
    return dict(_config(which).evaluate_model(model, frames=FRAMES, min_score=min_score, weights=None,
                                              source=which).data)


@pytest.fixture(scope="module", params=["ddddocr", "nudenet"])
def evaluated(request: pytest.FixtureRequest) -> Iterator[tuple[str, onnx.ModelProto, dict[str, Any]]]:
    model: onnx.ModelProto = request.getfixturevalue(request.param)
    yield request.param, model, _evaluate(request.param, model)


def test_ap_is_well_above_chance(evaluated: tuple[str, onnx.ModelProto, dict[str, Any]]) -> None:
    which, _, data = evaluated
    assert data["frames"] == FRAMES and data["form"] == "host pipeline"
    assert data["objects"] == ("characters" if which == "ddddocr" else "faces")
    assert data["average_precision"] >= AP_BOUND[which], data
    deployed = data["at_score_threshold"]
    assert deployed["true_positives"] + deployed["misses"] == data["ground_truths"]
    assert 0 <= data["miss_rate_at_0.1_fppi"] <= 1 and 0 < data["log_average_miss_rate"] < 1


def test_the_bound_fails_with_boxes_beside_the_objects(evaluated: tuple[str, onnx.ModelProto, dict[str, Any]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    which, model, _ = evaluated

    def beside(config: YoloConfig, split: str, index: int) -> tuple[str, np.ndarray, np.ndarray]:
        name, frame, boxes = labelled_frame_at(config, split, index)
        return name, frame, boxes + ((boxes[:, 2] - boxes[:, 0]) / 2)[:, None] * np.array([1, 0, 1, 0], np.float32)

    monkeypatch.setattr(yolo_pictures, "labelled_frame_at", beside)  # what YoloConfig.labelled_frames reads
    assert _evaluate(which, model)["average_precision"] < SHIFTED_AP_BOUND


def test_host_pipeline_and_fused_graph_give_the_same_figures(
        evaluated: tuple[str, onnx.ModelProto, dict[str, Any]]) -> None:
    which, model, low = evaluated
    fused = _evaluate(which, build_fused_model(model, _config(which)))
    # Above the config's threshold (where a fused graph stops) the host pipeline keeps the same detections.
    host = _evaluate(which, model, min_score=0.99)
    assert fused["form"] == "fused graph" and host["lowest_score"] == fused["lowest_score"]
    for key in ("ground_truths", "true_positives_at_0.1_fppi", "false_positives_at_0.1_fppi", "at_score_threshold"):
        assert fused[key] == host[key], key
    for key in ("average_precision", "miss_rate_at_0.1_fppi", "miss_rate_at_1_fppi", "log_average_miss_rate"):
        assert fused[key] == pytest.approx(host[key], abs=1e-6), key
    # ... and the host pipeline evaluated further down says the same at the configured threshold.
    assert low["at_score_threshold"] == fused["at_score_threshold"]


# ---------------------------------------------------------------- the command line and bad input


def test_cli_evaluate_prints_the_figures(ddddocr: onnx.ModelProto, tmp_path: Path) -> None:
    model = tmp_path / "det.onnx"
    save_model(ddddocr, model)
    result = CliRunner().invoke(cli, ["evaluate", str(model), "--config", str(EXAMPLE / "ddddocr.toml"), "--frames",
                                      "4", "--json", str(tmp_path / "eval.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "no labelled frames" not in result.output
    for figure in ("AP@0.5 (all-point):", "miss rate at 0.1 FPPI:", "log-average miss rate:",
                   "at the configured threshold 0.1:", "characters"):
        assert figure in result.output
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["frames"] == 4 and 0 < data["average_precision"] <= 1


def test_cli_detect_scene_draws_the_ground_truth(nudenet: onnx.ModelProto, tmp_path: Path) -> None:
    model = tmp_path / "320n.onnx"
    save_model(nudenet, model)
    result = CliRunner().invoke(cli, ["detect", str(model), "--config", str(EXAMPLE / "yolo.toml"), "--scene", "2",
                                      "-o", str(tmp_path / "scene.png"), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    truth = _config("nudenet").labelled_frame(2).boxes
    np.testing.assert_allclose(data["ground_truth"], truth, atol=0.05)
    assert any(d["class"] in (1, 12) for d in data["detections"])  # a face found


def test_evaluate_classes_is_checked() -> None:
    assert parse_config({"yolo": {"evaluate_classes": [1, 12]}}).evaluate_classes == (1, 12)
    for bad, message in (("1", "must be a list of class ids"), ([1.5], "must be a list of class ids"),
                         ([], "distinct class ids from 0"), ([2, 2], "distinct class ids from 0"),
                         ([-1], "distinct class ids from 0")):
        with pytest.raises(ConfigError, match=message):
            parse_config({"yolo": {"evaluate_classes": bad}})
    with pytest.raises(ConfigError, match="names class 3, but the model has 3 classes"):
        parse_config({"yolo": {"classes": 3, "evaluate_classes": [0, 3]}})


def test_evaluate_classes_out_of_the_model_s_range_is_one_sentence(nudenet: onnx.ModelProto, tmp_path: Path) -> None:
    model, config = tmp_path / "320n.onnx", tmp_path / "faces.toml"
    save_model(nudenet, model)
    config.write_text((EXAMPLE / "yolo.toml").read_text().replace("evaluate_classes = [1, 12]",
                                                                    "evaluate_classes = [1, 18]"))
    result = CliRunner().invoke(cli, ["evaluate", str(model), "--config", str(config), "--frames", "2"])
    assert result.exit_code == 2, result.output
    assert "evaluate_classes names class 18, but the model has 18 classes (0 to 17)" in result.output
    assert "Traceback" not in result.output


def test_weights_are_the_person_detector_s() -> None:
    config = dataclasses.replace(_config("ddddocr"))
    with pytest.raises(ConfigError, match="takes none"):
        config.evaluate_model(onnx.ModelProto(), frames=1, min_score=0.1, weights=Path("w.npz"), source="m")
