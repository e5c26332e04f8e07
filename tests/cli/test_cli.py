"""The command line: outputs, the JSON report, and one-sentence errors with exit code 2."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from graphopt.cli import cli
from graphopt.passes import DEFAULT_PASSES

EXAMPLE = Path(__file__).parents[2] / "examples" / "01_redundant_cnn" / "model.onnx"
SHAPE = ["--input-shape", "input:1x3x48x64"]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_optimize_example_writes_model_and_report(tmp_path: Path) -> None:
    before = _digest(EXAMPLE)
    out = tmp_path / "out"
    code, stdout, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--verify", "--repeats", "3",
                                "--report-json", str(tmp_path / "extra" / "r.json"))
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "report.json", "report.md"]
    assert _digest(EXAMPLE) == before
    report = json.loads((out / "report.json").read_text())
    assert (tmp_path / "extra" / "r.json").read_text() == (out / "report.json").read_text()
    assert [p["name"] for p in report["passes"]] == list(DEFAULT_PASSES)
    # A plain CNN: no workload configuration, so the host-stage fusion is not applicable and says why.
    fusion = next(entry for entry in report["passes"] if entry["name"] == "fuse_host_stages")
    assert fusion["status"] == "skipped" and "needs a workload configuration (--config)" in fusion["message"]
    for entry in report["passes"]:
        assert entry["flops_before"] > 0 and entry["flops_after"] > 0
        if entry["status"] in ("unchanged", "skipped"):
            assert entry["nodes_after"] == entry["nodes_before"]
            continue
        assert entry["status"] == "modified"
        assert entry["nodes_after"] < entry["nodes_before"]
        assert entry["max_abs_error"] is not None and entry["max_abs_error"] <= 1e-4
    assert {"remove_redundant_nodes", "pin_static_shapes"} <= {
        entry["name"] for entry in report["passes"] if entry["status"] == "modified"
    }
    assert report["before"]["nodes"] > report["after"]["nodes"]
    assert report["backend"]["latency_after"]["repeats"] == 3
    assert "total" in stdout and "remove_redundant_nodes" in stdout


def test_rows_add_up_to_the_total(tmp_path: Path) -> None:
    code, _, _ = _run("optimize", str(EXAMPLE), "-o", str(tmp_path), *SHAPE, "--no-benchmark")
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert sum(p["wall_ms"] for p in report["passes"]) == pytest.approx(report["total_ms"])
    assert report["backend"]["latency_after"] is None


def test_passes_and_skip(tmp_path: Path) -> None:
    code, _, _ = _run("optimize", str(EXAMPLE), "-o", str(tmp_path), *SHAPE, "--skip", "pin_static_shapes",
                      "--no-benchmark")
    assert code == 0
    assert [p["name"] for p in json.loads((tmp_path / "report.json").read_text())["passes"]] == [
        name for name in DEFAULT_PASSES if name != "pin_static_shapes"
    ]


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.onnx"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes())
    return {"missing": tmp_path / "missing.onnx", "empty": empty, "random": noise}


@pytest.mark.parametrize("kind", ["missing", "empty", "random"])
def test_bad_model_files_exit_2_with_one_line(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]
    digest = _digest(path) if path.exists() else None
    out = tmp_path / "out"
    # Run the installed entry point in a subprocess: what a user sees, traceback or not.
    proc = subprocess.run([sys.executable, "-m", "graphopt", "optimize", str(path), "-o", str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".graphopt")] == []
    if digest is not None:
        assert _digest(path) == digest


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--passes", "remove_redundant_node"], "did you mean 'remove_redundant_nodes'"),
        (["--skip", "nope"], "unknown pass 'nope'"),
        (["--input-shape", "image:1x3x4x4"], "not an input of the graph"),
        (["--input-shape", "input:1x4x48x64"], "input"),
        (["--input-shape", "input:1x3x?"], "expected [NAME:]DIMS"),
    ],
    ids=["typo-pass", "unknown-skip", "unknown-input", "contradicting-shape", "bad-shape-text"],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    out = tmp_path / "out"
    code, _, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), "--no-benchmark", *args)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and expected in stderr, stderr
    assert not out.exists()


def test_dynamic_model_without_shapes_is_kept_dynamic_and_says_what_to_give(tmp_path: Path) -> None:
    code, stdout, stderr = _run("optimize", str(EXAMPLE), "-o", str(tmp_path / "out"))
    assert code == 0, stderr
    assert "no --input-shape was given" in stdout and "keeps its dynamic dimensions" in stdout
    assert (tmp_path / "out" / "model.onnx").exists()
    # Verification needs concrete inputs: asked for, it says which shape to give.
    code, _, stderr = _run("optimize", str(EXAMPLE), "-o", str(tmp_path / "v"), "--verify")
    assert code == 2 and "--input-shape input:" in stderr and not (tmp_path / "v").exists()


def test_refuses_to_overwrite_the_input(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(EXAMPLE.read_bytes())
    code, _, stderr = _run("optimize", str(model), "-o", str(tmp_path), *SHAPE)
    assert code == 2 and "refusing to write" in stderr
    assert model.read_bytes() == EXAMPLE.read_bytes()


def test_internal_errors_are_one_line_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graphopt.cli.app as cli_main

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(cli_main, "optimize_model", broken)
    result = CliRunner().invoke(cli, ["optimize", str(EXAMPLE), "-o", str(tmp_path / "o"), *SHAPE])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "graphopt: internal error: RuntimeError: simulated bug (rerun with --debug for the traceback)"
    )
    assert not (tmp_path / "o").exists()


def test_passes_lists_the_registry() -> None:
    code, stdout, _ = _run("passes")
    assert code == 0
    assert "* remove_redundant_nodes" in stdout and "* pin_static_shapes" in stdout


def test_inspect(tmp_path: Path) -> None:
    code, stdout, _ = _run("inspect", str(EXAMPLE))
    assert code == 0
    assert "input: float32 batchx3xheightxwidth" in stdout and "Conv" in stdout
    # On dynamic dimensions FLOPs cannot be counted: it says so instead of a partial sum.
    assert "FLOPs: unknown: input 'input' has dynamic dimensions" in stdout and "FLOPs: 0" not in stdout
    code, stdout, _ = _run("inspect", str(EXAMPLE), "--json")
    assert code == 0 and json.loads(stdout)["flops"] is None
    code, stdout, _ = _run("inspect", str(EXAMPLE), "--input-shape", "1,3,48,64")
    assert code == 0 and "FLOPs: unknown" not in stdout
    code, stdout, _ = _run("inspect", str(EXAMPLE), "--json", *SHAPE)
    assert code == 0
    data = json.loads(stdout)
    assert data["nodes"] == 25 and data["flops"] > 0 and data["flops_by_op"]["Conv"] > 0
    code, _, stderr = _run("inspect", str(tmp_path / "missing.onnx"))
    assert code == 2 and "no such file" in stderr


DETECTOR = Path(__file__).parents[2] / "examples" / "02_person_detector"


def test_optimize_ground_plane_slices_the_fused_detector_and_reports_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = _run("optimize", str(DETECTOR / "model.onnx"), "-o", str(out), "--config",
                                str(DETECTOR / "detector.toml"), "--ground-plane", "--repeats", "3")
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    names = [p["name"] for p in report["passes"]]
    assert names[names.index("fuse_host_stages") + 1] == "ground_plane_slice"
    record = report["passes"][names.index("ground_plane_slice")]
    assert record["status"] == "modified"
    assert [row["score rows"] for row in record["details"]] == ["29-41 of 89", "11-23 of 44", "0-12 of 17"]
    stats = record["stats"]
    assert stats["flops_after"] < 0.4 * stats["flops_before"]
    assert stats["latency_before_ms"] > 0 and stats["latency_after_ms"] > 0
    assert record["flops_after"] < 0.4 * record["flops_before"]  # the report's own FLOPs column agrees
    assert "ground_plane_slice: FLOPs per frame" in stdout and "score rows 29-41 of 89" in stdout


def test_optimize_ground_plane_needs_a_complete_camera(tmp_path: Path) -> None:
    code, _, stderr = _run("optimize", str(DETECTOR / "model.onnx"), "-o", str(tmp_path / "a"), "--ground-plane")
    assert code == 2 and "--ground-plane needs --config" in stderr
    partial = tmp_path / "robot.toml"
    partial.write_text("[camera]\nheight_m = 1.2\nfocal_px = [525.0, 525.0]\nprincipal_point = [320.0, 240.0]\n"
                       "person_height_m = [1.5, 1.95]\n")
    code, _, stderr = _run("optimize", str(DETECTOR / "model.onnx"), "-o", str(tmp_path / "b"), "--config",
                           str(partial), "--ground-plane", "--no-benchmark")
    assert code == 2
    assert stderr.count("\n") == 1 and "robot.toml: [camera] has no tilt_deg" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "b").exists()
