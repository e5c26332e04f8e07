"""The bundled examples: reproducible from their scripts, and their README commands run."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from graphopt.cli import cli
from graphopt.evaluation import iou_matrix

EXAMPLES = Path(__file__).parents[1] / "examples"


def _rebuilt_matches_shipped(folder: Path) -> bool:
    """Whether the example's ``make_model.py`` builds its ``model.onnx`` byte for byte."""
    spec = importlib.util.spec_from_file_location(f"make_model_{folder.name}", folder / "make_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return bool(module.build().SerializeToString() == (folder / "model.onnx").read_bytes())


def test_example_model_is_reproducible_from_its_script() -> None:
    assert _rebuilt_matches_shipped(EXAMPLES / "01_redundant_cnn")


def test_readme_command_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = EXAMPLES / "01_redundant_cnn"
    block = re.search(r"```bash\n(graphopt .*?)\n```", (folder / "README.md").read_text(), re.S)
    assert block is not None
    args = shlex.split(block.group(1))[1:]
    args = [str(folder / a) if a == "model.onnx" else str(tmp_path / a) if a == "optimized" else a for a in args]
    result = CliRunner().invoke(cli, [*args, "--repeats", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "optimized" / "report.json").read_text())
    nodes = {p["name"]: (p["nodes_before"], p["nodes_after"]) for p in report["passes"] if p["status"] == "modified"}
    assert nodes == {"remove_redundant_nodes": (25, 17), "pin_static_shapes": (17, 13)}  # the figures the README states
    assert all(p["status"] in ("modified", "unchanged", "skipped") for p in report["passes"])


def _detector_readme_command(command: str, tmp_path: Path) -> list[str]:
    """The arguments of the ``graphopt COMMAND`` block in the detector example's README, files resolved."""
    folder = EXAMPLES / "02_person_detector"
    block = re.search(rf"```bash\n(graphopt {command} .*?)\n```", (folder / "README.md").read_text(), re.S)
    assert block is not None
    args = shlex.split(block.group(1))[1:]
    return [str(folder / a) if (folder / a).is_file() else str(tmp_path / a) if a.endswith(".png") else a
            for a in args]


def test_detector_readme_command_runs(tmp_path: Path) -> None:
    args = _detector_readme_command("detect", tmp_path)
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (tmp_path / "detections.png").is_file()
    # What the README states: 4 boxes, one on each of the 4 people (the IoU suppression leaves no duplicate).
    assert len(data["detections"]) == len(data["ground_truth"]) == 4
    truth = np.array(data["ground_truth"], dtype=np.float32)
    boxes = np.array([d["box"] for d in data["detections"]], dtype=np.float32)
    assert int((iou_matrix(boxes, truth).max(axis=0) >= 0.5).sum()) == 4


def test_detector_readme_bands_command_runs(tmp_path: Path) -> None:
    args = _detector_readme_command("bands", tmp_path)
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (tmp_path / "bands.png").is_file()
    # The figures the README states.
    assert [(s["map_rows"], s["map_height"]) for s in data["scales"]] == [([29, 41], 89), ([11, 23], 44), ([0, 12], 17)]


def _run_example(script: Path, *args: str) -> str:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_plugin_example_model_is_reproducible_from_its_script() -> None:
    assert _rebuilt_matches_shipped(EXAMPLES / "03_custom_pass_plugin")


def test_onnx_ir_example_runs_both_ways(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("onnx_ir", reason="example 04 needs the ir extra (onnx-ir)")
    stdout = _run_example(EXAMPLES / "04_onnx_ir_pipeline" / "pipeline.py", str(tmp_path))
    # The figures its README states: both pipelines 25 → 13 nodes, outputs unchanged.
    assert "onnx-ir pass manager: 25 → 13 nodes, max |error| 0" in stdout
    assert "graphopt pipeline: 25 → 13 nodes, max |error| 0" in stdout
    assert "ir.identity_elimination: modified, 25 → 23 nodes" in stdout
    assert "pin_static_shapes: {'pinned_dims': 3, 'folded_nodes': 4}" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graphopt.onnx", "onnx-ir.onnx"]


def test_torch_export_example_matches_pytorch(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("torch", reason="example 05 needs PyTorch (the train extra, torch==2.13.0)")
    stdout = _run_example(EXAMPLES / "05_torch_export" / "export.py", str(tmp_path))
    assert "fold_batch_norm: modified, 5 → 4 nodes" in stdout
    assert "optimized: ['Conv', 'Relu', 'Flatten', 'Gemm']" in stdout
    error = float(re.search(r"max \|onnxruntime\(optimized\) − torch\| = (\S+)", stdout).group(1))  # type: ignore[union-attr]
    assert error < 1e-5
    assert (tmp_path / "small_net.onnx").is_file()


def _yolo_readme_commands() -> list[list[str]]:
    """The ``graphopt`` commands of the YOLO example's README, in order, as argument lists."""
    text = (EXAMPLES / "06_yolo" / "README.md").read_text()
    return [shlex.split(block)[1:] for block in re.findall(r"```bash\n(graphopt .*?)\n```", text, re.S)]


def test_yolo_readme_commands_run(tmp_path: Path) -> None:
    folder = EXAMPLES / "06_yolo"
    _run_example(folder / "fetch_model.py", str(tmp_path))  # the cached wheel's model, and the picture
    results = []
    evaluated: list[Path] = []
    for args in _yolo_readme_commands():
        args = [str(folder / a) if (folder / a).is_file() and a.endswith(".toml") else a for a in args]
        args = [str(tmp_path / a) if a.endswith((".onnx", ".png")) or a in ("fused", "cropped") else a for a in args]
        extra = ["--repeats", "2"] if args[0] == "optimize" else ["--json"]
        if args[0] == "evaluate":  # fewer frames than the README's, and the figures as JSON
            args = [*args[: args.index("--frames")], "--frames", "4"]
            evaluated.append(tmp_path / f"evaluate{len(evaluated)}.json")
            extra.append(str(evaluated[-1]))
        result = CliRunner().invoke(cli, [*args, *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        if args[0] == "detect":
            results.append(result.output)
    report = json.loads((tmp_path / "fused" / "report.json").read_text())
    fused = next(p for p in report["passes"] if p["name"] == "fuse_host_stages")
    assert fused["status"] == "modified" and "Cluster-NMS" in fused["message"]
    assert fused["stats"]["checked_frames"] == 2 and fused["stats"]["max_box_error"] <= 0.5
    cropped = json.loads((tmp_path / "cropped" / "report.json").read_text())
    crop = next(p for p in cropped["passes"] if p["name"] == "crop_rows")
    assert crop["status"] == "modified" and crop["stats"]["input_rows_after"] < crop["stats"]["input_rows_before"]
    assert len(crop["details"]) >= 2 and sum("(chosen)" in row["margin"] for row in crop["details"]) == 1
    # What the README states: one detection on each run, the face (class 1) at 0.83, the same box.
    host, graph = (json.loads(output)["detections"] for output in results)
    assert len(host) == len(graph) == 1 and host[0]["class"] == graph[0]["class"] == 1
    assert round(host[0]["score"], 2) == 0.83 and host[0]["box"] == graph[0]["box"]
    # The network and its fused graph evaluated on the labelled faces: the same figures at the threshold.
    network, fused = (json.loads(path.read_text()) for path in evaluated)
    assert (network["form"], fused["form"]) == ("host pipeline", "fused graph")
    assert network["at_score_threshold"] == fused["at_score_threshold"] and network["objects"] == "faces"
