"""graphopt optimize and detect with a [yolo] config, and the one-sentence exits of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from click.testing import CliRunner

from graphopt.cli import cli
from graphopt.imaging import write_image
from graphopt.model_io import save_model
from graphopt_yolo.pictures import text_picture

from .conftest import tiny_yolo

DDDDOCR_TOML = """\
[yolo]
frame_size = [640, 480]
pad = "top-left"
channels = "bgr"
scale = 1.0
score_threshold = 0.1
class_agnostic = true
max_detections = 30
pre_nms_top_k = 60
"""


def test_optimize_then_detect_on_the_fused_graph(ddddocr: onnx.ModelProto, tmp_path: Path) -> None:
    model, config, picture = tmp_path / "det.onnx", tmp_path / "yolo.toml", tmp_path / "text.png"
    save_model(ddddocr, model)
    config.write_text(DDDDOCR_TOML)
    write_image(picture, text_picture("x7Kp2 QbR4"))
    result = CliRunner().invoke(cli, ["optimize", str(model), "--config", str(config), "-o", str(tmp_path / "out"),
                                      "--repeats", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = {}
    for name, path in (("host", model), ("fused", tmp_path / "out" / "det.onnx")):
        run = CliRunner().invoke(cli, ["detect", str(path), "--config", str(config), "--image", str(picture),
                                       "-o", str(tmp_path / f"{name}.png"), "--json"], catch_exceptions=False)
        assert run.exit_code == 0, run.output
        found[name] = json.loads(run.output)["detections"]
    assert len(found["host"]) >= 5  # ten characters; ddddocr's detector finds most of them
    assert [d["box"] for d in found["host"]] == [d["box"] for d in found["fused"]]
    again = CliRunner().invoke(cli, ["optimize", str(tmp_path / "out" / "det.onnx"), "--config", str(config), "-o",
                                     str(tmp_path / "again"), "--repeats", "2"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    report = json.loads((tmp_path / "again" / "report.json").read_text())
    assert all(p["status"] == "unchanged" for p in report["passes"]), report["passes"]  # a fixed point


def test_optimize_fp16_keeps_the_head_in_float32(ddddocr: onnx.ModelProto, tmp_path: Path) -> None:
    model, config = tmp_path / "det.onnx", tmp_path / "yolo.toml"
    save_model(ddddocr, model)
    config.write_text(DDDDOCR_TOML)
    result = CliRunner().invoke(cli, ["optimize", str(model), "--config", str(config), "--fp16", "-o",
                                      str(tmp_path / "out"), "--repeats", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    passes = {p["name"]: p for p in json.loads((tmp_path / "out" / "report.json").read_text())["passes"]}
    assert "scores on logits (6 score Sigmoids bypassed)" in passes["fuse_host_stages"]["message"]
    fp16 = passes["convert_to_fp16"]
    assert fp16["status"] == "modified" and fp16["stats"]["kept_by_guard"] == 0
    pinned = [k for k in fp16["details"] if k["name"].startswith("yolo/select/")]
    assert pinned and all("pinned to float32" in k["reason"] for k in pinned)


def _exit(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output.strip()


def test_bad_input_exits_2_with_one_sentence(nudenet: onnx.ModelProto, tmp_path: Path) -> None:
    odd, config = tmp_path / "odd.onnx", tmp_path / "yolo.toml"
    save_model(tiny_yolo(anchor_free=True, output_shape=(1, 7, 9)), odd)
    config.write_text("[yolo]\nframe_size = [64, 64]\n")
    code, output = _exit(["optimize", str(odd), "--config", str(config), "-o", str(tmp_path / "out")])
    assert code == 2 and "matches no known YOLO layout; looked for [1, 4+C, 84]" in output
    assert len(output.splitlines()) == 1 and not (tmp_path / "out").exists()
    model = tmp_path / "320n.onnx"
    save_model(nudenet, model)
    config.write_text("[yolo]\nframe_size = [640, 480]\ninput_size = [320, 320]\nclasses = 80\n")
    code, output = _exit(["optimize", str(model), "--config", str(config), "-o", str(tmp_path / "out")])
    assert code == 2 and "classes = 80 contradicts the model's output [1, 22, 2100], which has 18 classes" in output
    assert len(output.splitlines()) == 1
