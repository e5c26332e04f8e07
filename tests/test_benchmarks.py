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
