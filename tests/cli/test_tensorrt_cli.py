"""``optimize --backend tensorrt``: the ONNX is always written, the engine where TensorRT can build it.

Without TensorRT (every CI machine) the run still writes the optimized graph
and its report, then ends with one sentence; a graph TensorRT's parser would
refuse is reported by node before any build; with TensorRT (here the
recording stand-in of tests/backends) the CLI's options reach the builder and
the engine is written beside the ONNX.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

import graphopt.backends.tensorrt
from graphopt.backends.onnxruntime import default_providers
from graphopt.cli import cli
from graphopt.errors import BackendUnavailableError

from ..backends.fake_tensorrt import CACHE, PLAN, FakeTensorRT, real_enum
from ..conftest import make_model, tensor, value

EXAMPLE = Path(__file__).parents[2] / "examples" / "01_redundant_cnn" / "model.onnx"
SHAPE = ["--input-shape", "input:1x3x48x64"]
CHECKED_103 = ("checked against the ONNX support matrix of TensorRT 10.3's parser (opsets 9 to 20) for TensorRT "
               "10.3.0, installed here")


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_without_tensorrt_the_onnx_is_written_and_the_run_says_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without it, even where it is installed
    out = tmp_path / "out"
    code, stdout, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                                "--no-benchmark", "--trt-workspace-mb", "512", "--trt-opt-level", "4")
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("graphopt: error: TensorRT is not installed")
    assert "pip install tensorrt-cu12" in stderr and "the optimized ONNX is written, the engine is not" in stderr
    assert stderr.rstrip().endswith("(model.trtexec.sh beside it builds it where TensorRT is)")
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.trtexec.sh", "report.json", "report.md"]
    onnx.checker.check_model(onnx.load(str(out / "model.onnx")))
    report = json.loads((out / "report.json").read_text())
    assert report["backend"]["name"] == "tensorrt" and report["backend"]["artifact"] == str(out / "model.onnx")
    assert "tensorrt (nothing built here)" in stdout
    command = ("trtexec --onnx=model.onnx --saveEngine=model.engine --stronglyTyped --shapes=input:1x3x48x64 "
               "--memPoolSize=workspace:512 --builderOptimizationLevel=4 --profilingVerbosity=detailed "
               "--timingCacheFile=model.timing-cache")
    assert report["backend"]["notes"] == [
        "checked against the ONNX support matrix of TensorRT 10.3's parser (opsets 9 to 20) for TensorRT 10.3, the "
        "default target, JetPack 6's; none is installed here",
        "no engine was built here; model.trtexec.sh beside the ONNX builds it where TensorRT and the GPU are: "
        + command,
    ]
    assert f"model.trtexec.sh beside the ONNX builds it where TensorRT and the GPU are: {command}" in (
        out / "report.md").read_text()
    script = out / "model.trtexec.sh"
    assert script.stat().st_mode & 0o111 == 0o111 and str(script) in report["outputs"]
    assert script.read_text().startswith("#!/bin/sh\n# Builds model.engine from model.onnx with TensorRT's trtexec")


def test_the_trtexec_script_runs_trtexec_with_the_command_of_the_report(tmp_path: Path, monkeypatch) -> None:
    """The script, run with TRTEXEC pointing at a recorder, passes exactly the report's arguments from its folder."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    out = tmp_path / "out"
    code, _, _ = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt", "--no-benchmark")
    assert code == 2
    recorder = tmp_path / "trtexec"
    recorder.write_text('#!/bin/sh\npwd > "$0.cwd"\nfor a in "$@"; do echo "$a"; done > "$0.args"\n')
    recorder.chmod(0o755)
    subprocess.run([str(out / "model.trtexec.sh")], check=True, env={**os.environ, "TRTEXEC": str(recorder)},
                   cwd=tmp_path)
    note = json.loads((out / "report.json").read_text())["backend"]["notes"][-1]
    assert (tmp_path / "trtexec.args").read_text().split() == note.split(": ", 1)[1].split()[1:]
    assert Path((tmp_path / "trtexec.cwd").read_text().strip()) == out


def test_without_a_cuda_device_the_run_says_so_and_writes_the_trtexec_command(tmp_path: Path, monkeypatch) -> None:
    fake = FakeTensorRT("10.3.0")
    fake.no_device = True  # real TensorRT: "factory function returned nullptr" at Builder()
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    out = tmp_path / "out"
    code, _, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                           "--no-benchmark")
    assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith("graphopt: error: TensorRT 10.3.0 found no usable CUDA device (its Builder could not be "
                             "created; check that the GPU and its driver are visible")
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.trtexec.sh", "report.json", "report.md"]


@pytest.mark.parametrize(("version", "code", "expected"), [
    ("10.15", 0, "TensorRT 10.15's parser (opsets 9 to 24) for TensorRT 10.15, given"),
    ("9.2", 2, "graphopt: error: TensorRT 9.2 is not 10.x or 11.x, the versions graphopt's TensorRT backend supports"),
])
def test_trt_version_chooses_the_matrix(tmp_path: Path, monkeypatch, version: str, code: int, expected: str) -> None:
    fake = FakeTensorRT("10.3.0")
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    out = tmp_path / "out"
    result, _, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                             "--no-benchmark", "--trt-version", version)
    assert result == code
    if code == 0:
        assert expected in json.loads((out / "report.json").read_text())["backend"]["notes"][0]
    else:
        assert stderr.strip() == expected and not out.exists()


def _cubic_upsampler(path: Path) -> Path:
    sizes = tensor("sizes", np.array([1, 3, 16, 16], np.int64))
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Resize", ["r", "", "", "sizes"], ["y"], name="upsample", mode="cubic")],
        [value("x", [1, 3, 8, 8])], [value("y", [1, 3, 16, 16])], [sizes])
    onnx.save(model, str(path))
    return path


def test_nodes_tensorrt_would_refuse_are_reported_before_any_build(tmp_path: Path, monkeypatch) -> None:
    fake = FakeTensorRT()
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    out = tmp_path / "out"
    code, _, stderr = _run("optimize", str(_cubic_upsampler(tmp_path / "up.onnx")), "-o", str(out),
                           "--backend", "tensorrt", "--no-benchmark")
    assert code == 2
    assert stderr.strip() == (
        "graphopt: error: 1 node(s) of the optimized graph are not supported by TensorRT's ONNX parser, first "
        "Resize node 'upsample' (node 1): mode 'cubic' (TensorRT supports nearest, linear) (all in report.md); "
        "the optimized ONNX is written, the engine is not"
    )
    assert fake.parsed == []  # refused before TensorRT was asked
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "up.onnx"]
    assert "TensorRT's ONNX parser would refuse Resize node 'upsample'" in (out / "report.md").read_text()
    notes = json.loads((out / "report.json").read_text())["backend"]["notes"]
    assert len(notes) == 2 and notes[0] == CHECKED_103 and "mode 'cubic'" in notes[1]


def test_the_cli_options_reach_the_builder_and_the_engine_is_written(tmp_path: Path, monkeypatch) -> None:
    engine_json = json.dumps({"Layers": [
        {"Name": "conv1 + relu1", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": "input", "Format/Datatype": "Row major linear FP32"}],
         "Outputs": [{"Name": "r1", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]},
    ]})
    fake = FakeTensorRT(version="10.3.0", engine_json=engine_json)
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    out, cache = tmp_path / "out", tmp_path / "timings.cache"
    code, stdout, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                                "--no-benchmark", "--trt-workspace-mb", "64", "--trt-opt-level", "1",
                                "--trt-timing-cache", str(cache))
    assert code == 0, stderr
    config = fake.configs[0]
    assert config.pool_limits == {real_enum("10.3.0", "MemoryPoolType").WORKSPACE: 64 << 20}
    assert config.builder_optimization_level == 1
    assert [p.shapes for p in config.profiles] == [{"input": ((1, 3, 48, 64),) * 3}]
    assert fake.parsed == [onnx.load(str(out / "model.onnx")).SerializeToString()]  # the graph written is the one built
    assert (out / "model.engine").read_bytes() == PLAN and cache.is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["backend"]["runtime_version"] == "TensorRT 10.3.0"
    assert report["backend"]["layers"] == [
        {"name": "conv1 + relu1", "type": "CaskConvolution", "precisions": ["float32", "float16"], "median_ms": None}
    ]
    assert "engine: 1 layers after the runtime's fusions (tensors by precision: float32 1, float16 1)" in stdout
    assert f"wrote {out / 'model.onnx'}, {out / 'model.engine'}" in stdout


def test_an_engine_that_cannot_run_here_is_still_written(tmp_path: Path, monkeypatch) -> None:
    fake = FakeTensorRT()
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)

    def no_gpu(*args, **kwargs):
        raise BackendUnavailableError("the CUDA runtime library (libcudart) was not found")

    monkeypatch.setattr(graphopt.backends.tensorrt, "time_engine", no_gpu)
    out = tmp_path / "out"
    code, _, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                           "--repeats", "2", "--warmup", "0")
    assert code == 0, stderr
    assert (out / "model.engine").read_bytes() == PLAN
    backend = json.loads((out / "report.json").read_text())["backend"]
    assert backend["latency_after"] is None
    assert backend["notes"] == [CHECKED_103, "the engine was built but not run here: the CUDA runtime library "
                                "(libcudart) was not found"]


def test_backends_lists_each_with_what_it_builds_with_or_what_is_missing(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    code, stdout, _ = _run("backends")
    assert code == 0
    lines = dict(line.split(None, 1) for line in stdout.splitlines())
    assert lines["onnxruntime"].startswith("onnxruntime ") and "CPUExecutionProvider" in lines["onnxruntime"]
    assert lines["tensorrt"].startswith("unavailable: TensorRT is not installed")


@pytest.mark.parametrize(
    ("available", "nvinfer", "expected"),
    [
        (["CPUExecutionProvider"], None, ("CPUExecutionProvider",)),
        (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], None,
         ("CUDAExecutionProvider", "CPUExecutionProvider")),
        (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], "libnvinfer.so.10",
         ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")),
    ],
)
def test_onnxruntime_takes_the_gpu_providers_its_build_has(monkeypatch, available, nvinfer, expected) -> None:
    import ctypes.util

    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(available))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: nvinfer if name == "nvinfer" else None)
    assert default_providers() == expected


def test_the_report_names_the_slowest_engine_layers_with_their_share() -> None:
    from graphopt.report import BackendResult, Report

    layers = [{"name": f"layer{i}", "type": "CaskConvolution", "precisions": ["float16"], "median_ms": ms}
              for i, ms in enumerate([0.5, 2.0, 0.25, 1.0, 0.125, 0.125])]
    layers.append({"name": "untimed", "type": "Reformat", "precisions": [], "median_ms": None})
    report = Report(backend=BackendResult(name="tensorrt", artifact="m.engine", layers=layers))
    lines = [line for line in report.to_markdown().splitlines() if "engine" in line]
    assert any("engine: 7 layers after the runtime's fusions (tensors by precision: float16 6, unknown 1)" in line
               for line in lines)
    slowest = [line for line in lines if "engine layer " in line]
    assert len(slowest) == 5
    assert "engine layer layer1 (CaskConvolution, float16): 2.000 ms (50% of the layer time)" in slowest[0]
    assert "layer3" in slowest[1] and "layer0" in slowest[2] and "layer2" in slowest[3]


def test_every_parser_error_reaches_the_report_when_tensorrt_refuses(tmp_path: Path, monkeypatch) -> None:
    from ..backends.fake_tensorrt import FakeParserError

    ErrorCode = real_enum("10.3.0", "ErrorCode")
    fake = FakeTensorRT()
    fake.parser_errors = [FakeParserError(ErrorCode.UNSUPPORTED_NODE, f"reason {i}", i, f"node{i}", "Conv")
                          for i in range(5)]
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    out = tmp_path / "out"
    code, _, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                           "--no-benchmark")
    assert code == 2
    assert stderr.startswith("graphopt: error: TensorRT's ONNX parser refused the graph: Conv 'node0': reason 0;")
    assert "(and 2 more); the optimized ONNX is written, the engine is not" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "report.json", "report.md"]
    notes = json.loads((out / "report.json").read_text())["backend"]["notes"]
    assert notes == [CHECKED_103, *(f"TensorRT's ONNX parser: Conv 'node{i}': reason {i}" for i in range(5))]


def test_a_corrupt_timing_cache_is_set_aside_and_the_report_says_so(tmp_path: Path, monkeypatch) -> None:
    fake = FakeTensorRT("10.3.0")
    fake.cache_behaviour = "raise"  # create_timing_cache refuses the bytes
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    cache = tmp_path / "timings.cache"
    cache.write_bytes(b"truncated")
    out = tmp_path / "out"
    code, _, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                           "--no-benchmark", "--trt-timing-cache", str(cache))
    assert code == 0, stderr
    notes = json.loads((out / "report.json").read_text())["backend"]["notes"]
    assert notes == [CHECKED_103, f"the timing cache {cache} was not used (TensorRT could not read it: Timing cache is "
                     "corrupted: magic tag mismatch); moved to timings.cache.rejected, a new one is written"]
    assert (tmp_path / "timings.cache.rejected").read_bytes() == b"truncated" and cache.is_file()
    fake.cache_behaviour = "accept"
    assert _run("optimize", str(EXAMPLE), "-o", str(tmp_path / "again"), *SHAPE, "--backend", "tensorrt",
                "--no-benchmark", "--trt-timing-cache", str(cache))[0] == 0
    assert fake.cache_reads[-1] == CACHE and len(fake.configs) == 2  # the second build read the rebuilt cache
    assert json.loads((tmp_path / "again" / "report.json").read_text())["backend"]["notes"] == [CHECKED_103]
