"""``graphopt profile-ops``: the op-family graphs at the original's sizes, and a profile that adds up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto

from graphopt.cli import cli
from graphopt.graph import infer_tensor_info
from graphopt.profile import BENCHMARKS, ORIGINAL, family_summary, op_family_graphs, profile_graph, profile_op_families
from graphopt.verify import run_onnxruntime

DETECTOR = Path(__file__).parents[1] / "examples" / "02_person_detector"

#: The stated sizes: input shapes and the output shape of every microbenchmark.
SHAPES = {
    "matmul": ({"a": (1000, 1000), "b": (1000, 1000)}, (1000, 1000)),
    "add": ({"a": (1000, 1000), "b": (1000, 1000)}, (1000, 1000)),
    "mul": ({"a": (1000, 1000), "b": (1000, 1000)}, (1000, 1000)),
    "relu": ({"x": (1000, 1000)}, (1000, 1000)),
    "softmax": ({"x": (1000, 1000)}, (1000, 1000)),
    "maxpool_2x2": ({"x": (1, 3, 320, 240)}, (1, 3, 160, 120)),
    "conv_3x3": ({"x": (1, 3, 320, 240)}, (1, 200, 318, 238)),
    "conv_5x5": ({"x": (1, 3, 320, 240)}, (1, 200, 316, 236)),
    "maxpool_3x7x3": ({"x": (1, 1, 3, 320, 240)}, (1, 1, 3, 320, 240)),
}


@pytest.mark.parametrize("elem_type", [TensorProto.FLOAT, TensorProto.FLOAT16])
def test_microbenchmarks_are_valid_graphs_of_the_stated_shapes(elem_type: int) -> None:
    graphs = op_family_graphs(elem_type)
    assert set(graphs) == set(SHAPES) and {b.family for b in BENCHMARKS} == set(ORIGINAL)
    for name, model in graphs.items():
        onnx.checker.check_model(model, full_check=True)
        inputs, output = SHAPES[name]
        assert {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in model.graph.input} == inputs
        info = infer_tensor_info(model)[model.graph.output[0].name]
        assert info.shape == output and info.elem_type == elem_type, name
        for init in model.graph.initializer:
            assert init.data_type == elem_type


def test_the_3d_pooling_is_the_nms_window_and_runs() -> None:
    model = op_family_graphs(TensorProto.FLOAT)["maxpool_3x7x3"]
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 320, 240)).astype(np.float32)
    y = run_onnxruntime(model, {"x": x})["y"]
    assert y[0, 0, 1, 100, 100] == x[0, 0, 0:3, 97:104, 99:102].max()


def test_op_families_are_timed_in_both_precisions() -> None:
    results = profile_op_families(repeats=2, warmup=0, runtimes=["onnxruntime CPU"])
    assert [r.name for r in results] == [b.name for b in BENCHMARKS]
    for r in results:
        assert r.error is None and r.float32_ms > 0 and r.float16_ms > 0
        assert r.ratio == pytest.approx(r.float16_ms / r.float32_ms)
    rows = {row["family"]: row for row in family_summary(results)}
    assert rows["convolution"]["original_ratio"] == pytest.approx(7.5 / 10.5)
    assert rows["elementwise"]["float32_ms"] == pytest.approx(sum(r.float32_ms for r in results
                                                                  if r.family == "elementwise"))


def test_the_profilers_breakdown_adds_up_to_the_measured_total() -> None:
    import graphopt
    from graphopt_person import load_config
    from graphopt_person.fused import first_test_frame

    config = load_config(DETECTOR / "detector.toml")
    fused, _ = graphopt.optimize(DETECTOR / "model.onnx", config=config)
    profile = profile_graph(fused, {"frame": first_test_frame(config)}, label="fused", runs=5, warmup=2)
    assert profile.runs == 5
    assert 0.9 <= profile.coverage <= 1.1, profile  # the kernels' times are the run's time, within 10%
    assert {"Conv", "MaxPool", "Resize", "TopK"} <= set(profile.by_op_type)
    assert next(iter(profile.by_op_type)) == "Conv"  # the convolutions dominate the detector
    assert sum(profile.by_op_type.values()) == pytest.approx(profile.kernels_ms, rel=0.1)


def test_profile_ops_cli_writes_json_and_markdown(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["profile-ops", str(DETECTOR / "model.onnx"), "--config",
                                      str(DETECTOR / "detector.toml"), "-o", str(tmp_path / "out"), "--repeats", "1",
                                      "--warmup", "0", "--runs", "2", "--results-dir",
                                      str(tmp_path / "results")], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    data = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert data["schema"] == "graphopt.profile/1"
    assert [g["label"] for g in data["graphs"]] == ["model.onnx, float32", "model.onnx, float16"]
    assert len(data["op_families"]) == len(BENCHMARKS)
    markdown = (tmp_path / "out" / "profile.md").read_text()
    assert "| onnxruntime CPU | convolution |" in markdown and "time by operator type" in markdown
    assert "## model.onnx, float32 → model.onnx, float16: which operators gain" in markdown
    conv = next(line for line in markdown.splitlines() if line.startswith("| Conv |"))
    assert len(conv.split("|")) == 6 and float(conv.split("|")[4]) > 0  # both precisions timed, and their ratio
    assert "profile-ops: profiling model.onnx in float16" in result.stderr
    (page,) = (tmp_path / "results").glob("*/profile-ops.md")
    assert "| Conv |" in page.read_text() and "Generated by `" in page.read_text()
