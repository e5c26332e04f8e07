"""graphopt's default pipeline on the benchmark set of real exports (benchmarks/models.toml).

Per model: no more nodes than the fewest of the peers (onnxruntime's basic
offline level, onnxsim, onnxslim, Polygraphy), all given the same pinned
shape; standard ONNX operators only, and the TensorRT pre-check passed where
the input passes it; outputs within 1e-4 + 1e-4·|b| of the original's on a
real input; a fixed point (the pipeline on its own output changes nothing);
and onnxruntime loads the output without a warning. The wheels are
downloaded on first use and cached; a failed download fails the test. The
latency comparison belongs to ``benchmarks/bench_peers.py``, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime
import pytest

import graphopt
from graphopt.backends.tensorrt_support import unsupported_by_tensorrt
from graphopt.graph import count_nodes
from graphopt.native_output import capture_native_output

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import model_set

ENTRIES = model_set.load_manifest()


def _input_name(model: onnx.ModelProto) -> str:
    initializers = {t.name for t in model.graph.initializer}
    return next(v.name for v in model.graph.input if v.name not in initializers)


def test_the_set_covers_what_it_promises() -> None:
    assert len(ENTRIES) >= 8
    assert len({e.wheel for e in ENTRIES}) >= 3
    assert all(len(e.sha256) == 64 for e in ENTRIES)


def _onnxruntime_warnings(model: onnx.ModelProto) -> list[str]:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 1  # warnings and above
    with capture_native_output() as captured:
        onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [line for line in captured.lines if "W:onnxruntime" in line or "E:onnxruntime" in line]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_default_pipeline_is_as_clean_as_the_best_peer(entry: model_set.ModelEntry) -> None:
    original = onnx.load(str(model_set.fetch(entry)))
    shapes = {_input_name(original): entry.shape}
    ours, _ = graphopt.optimize(original, input_shapes=shapes)

    pinned = model_set.pinned(original, entry.shape)
    peers = {name: count_nodes(tool(pinned)) for name, tool in model_set.PEERS.items()}
    assert count_nodes(ours) <= min(peers.values()), (count_nodes(ours), peers)

    assert model_set.standard_ops_only(ours) == model_set.standard_ops_only(original) == []
    if entry.tensorrt:
        assert unsupported_by_tensorrt(ours) == []

    feeds = model_set.real_inputs(entry, original)
    ok, worst = model_set.within_tolerance(model_set.run(original, feeds), model_set.run(ours, feeds))
    assert ok, f"max |a-b| {worst:.3g}"

    again, report = graphopt.optimize(ours, input_shapes=shapes)
    assert again.SerializeToString() == ours.SerializeToString(), [
        (r.name, r.status) for r in report.passes if r.status != "unchanged"]
    # Every pass ran and changed nothing (fuse_host_stages, for a detector's config, is not applicable here).
    assert all(r.status == "unchanged" or (r.status == "skipped" and r.name == "fuse_host_stages")
               for r in report.passes)
    assert _onnxruntime_warnings(ours) == []


def test_cli_captures_onnxsim_warnings_into_the_report(tmp_path: Path) -> None:
    # onnxsim's C++ core prints "failed to run "Concat" op … skip" lines for YOLOv8n's head.
    entry = next(e for e in ENTRIES if e.name == "yolov8n")
    path = model_set.fetch(entry)
    out = tmp_path / "yolo.onnx"
    proc = subprocess.run([sys.executable, "-m", "graphopt", "optimize", str(path), str(out), "--input-shape",
                           "1,3,320,320", "--no-benchmark", "-v"], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "failed to run" not in proc.stderr + proc.stdout
    assert "] slim …" in proc.stderr  # -v: progress on stderr
    report = json.loads((tmp_path / "yolo.report.json").read_text())
    # Summarised, never raw (onnxsim 0.8 prints 11 such lines here; 0.7 on Python 3.10 none).
    assert not any("failed to run" in line for line in report["native_output"])
