"""The benchmark scripts run end to end and write what they promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def test_bench_overhead_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out" / "bench_overhead.json"
    # The smallest run the script accepts: 20 frames, no warm-up or pauses, one run per Conv layer (about 15 s).
    argv = ["--frames", "20", "--warmup", "0", "--conv-repeats", "1", "--settle-ms", "0", "--json", str(out)]
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_overhead.py"), *argv],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "peak Conv rate" in proc.stdout
    data = json.loads(out.read_text())
    assert list(data["variants"]) == ["naive", "ort_offline", "onnxsim", "graphopt"]
    assert all(v["median_ms"] > 0 and len(v["times_ms"]) == 20 for v in data["variants"].values())
    assert data["variants"]["graphopt"]["calls_per_frame"] == 1
    assert data["variants"]["naive"]["calls_per_frame"] == 3
    assert data["frames"] == 20
    assert data["matches"]["graphopt"] == data["frames"], data["mismatches"]
    assert data["conv"]["layers"] and all(row["median_ms"] > 0 for row in data["conv"]["layers"])
    assert data["floor"]["ms"] > 0 and data["floor"]["peak_ms"] > 0
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left beside it


def test_bench_overhead_refuses_too_few_frames() -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_overhead.py"), "--frames", "5"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "--frames must be at least 20" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_peers_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out" / "bench_peers.json"
    example = Path(__file__).parents[1] / "examples" / "01_redundant_cnn" / "model.onnx"
    argv = [str(example), "--input-shape", "input:1x3x64x96", "--frames", "20", "--warmup", "0", "--settle-ms", "0",
            "--json", str(out)]
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_peers.py"), *argv],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    detector, generic = data["detector"], data["models"][0]
    # Every peer is measured, or (onnxslim and Polygraphy come with the bench extra) says why not.
    for section in (detector, generic):
        assert set(section["variants"]) | set(section["failed"]) >= {"ort_offline", "onnxsim", "onnxslim",
                                                                       "polygraphy"}
        assert {"ort_offline", "onnxsim"} <= set(section["variants"])
        assert all(v["median_ms"] > 0 and v["over_graphopt"] > 0 for v in section["variants"].values())
    assert next(iter(detector["variants"])) == "naive" and detector["graphopt_reference"] == "graphopt_full"
    assert detector["variants"]["graphopt_full"]["over_graphopt"] == 1.0
    # Each peer's network is checked against the export, and graphopt's fused graphs by their detections.
    assert all(detector["variants"][p]["max_network_error"] < 1e-4 for p in ("ort_offline", "onnxsim"))
    assert detector["variants"]["graphopt"]["identical_frames"] == 20
    assert detector["variants"]["graphopt_ground"]["identical_frames"] == 20
    assert generic["input_shapes"] == {"input": [1, 3, 64, 96]}
    assert all(v["max_output_error"] < 1e-4 for v in generic["variants"].values())
    assert "ratios = variant / graphopt_full" in proc.stdout


def test_bench_peers_refuses_too_few_frames() -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_peers.py"), "--frames", "5"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "--frames must be at least 20" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_peers_set_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results" / "peers.json"
    argv = ["--set", "--only", "ppocr_cls", "--frames", "20", "--warmup", "0", "--json", str(out)]
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_peers.py"), *argv],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    (section,) = data["set"]
    variants = section["variants"]
    assert list(variants) == ["original", "graphopt", "ort_basic", "onnxsim", "onnxslim", "polygraphy",
                              "ort_extended"]
    assert all(v["median_ms"] > 0 and v["nodes"] > 0 for v in variants.values())
    assert variants["graphopt"]["nodes"] <= section["fewest_peer_nodes"]
    assert variants["graphopt"]["within_tolerance"]
    assert section["graphopt_vs_fastest_peer"]["verdict"]
    page = out.with_suffix(".md").read_text()
    assert "Generated by `benchmarks/bench_peers.py --set`" in page and "| graphopt |" in page
    assert sorted(p.name for p in out.parent.iterdir()) == ["peers.json", "peers.md"]
