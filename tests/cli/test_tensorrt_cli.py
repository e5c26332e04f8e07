"""``optimize --backend tensorrt``: the ONNX is always written, the engine where TensorRT can build it.

Without TensorRT (every CI machine) the run still writes the optimized graph
and its report, then ends with one sentence; a graph TensorRT's parser would
refuse is reported by node before any build; with TensorRT (here the
recording stand-in of tests/backends) the CLI's options reach the builder and
the engine is written beside the ONNX.
"""

from __future__ import annotations

import json
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

from ..backends.fake_tensorrt import PLAN, FakeTensorRT, MemoryPoolType
from ..conftest import make_model, tensor, value

EXAMPLE = Path(__file__).parents[2] / "examples" / "01_redundant_cnn" / "model.onnx"
SHAPE = ["--input-shape", "input:1x3x48x64"]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_without_tensorrt_the_onnx_is_written_and_the_run_says_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without it, even where it is installed
    out = tmp_path / "out"
    code, stdout, stderr = _run("optimize", str(EXAMPLE), "-o", str(out), *SHAPE, "--backend", "tensorrt",
                                "--no-benchmark")
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("graphopt: error: TensorRT is not installed")
    assert "pip install tensorrt-cu12" in stderr and "the optimized ONNX is written, the engine is not" in stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "report.json", "report.md"]
    onnx.checker.check_model(onnx.load(str(out / "model.onnx")))
    report = json.loads((out / "report.json").read_text())
    assert report["backend"]["name"] == "tensorrt" and report["backend"]["artifact"] == str(out / "model.onnx")
    assert "tensorrt (nothing built here)" in stdout


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
    assert len(notes) == 1 and "mode 'cubic'" in notes[0]


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
    assert config.pool_limits == {MemoryPoolType.WORKSPACE: 64 << 20}
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
    assert backend["notes"] == ["the engine was built but not run here: the CUDA runtime library (libcudart) was not "
                                "found"]


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
    from ..backends.fake_tensorrt import ErrorCode, FakeParserError

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
    assert notes == [f"TensorRT's ONNX parser: Conv 'node{i}': reason {i}" for i in range(5)]
