"""Tests of FuseHostStagesPass and of how the pipeline handles a pass that changes the model's interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import graphopt
from graphopt.errors import ConfigError, PassFailedError
from graphopt.options import OptimizeOptions, VerifyOptions
from graphopt.passes import FuseHostStagesPass, Pass, PassResult
from graphopt.passes.host_stages import STAT_KEYS, HostFusionMismatch, takes_a_frame
from graphopt.pipeline import Pipeline
from graphopt_person.data import render_scene, scene_seeds
from graphopt_person.fused import OUTPUTS, FusedDetector
from graphopt_person.naive import NaiveDetector
from graphopt_person.spec import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector"
CONFIG = load_config(EXAMPLE / "detector.toml")


@pytest.fixture(scope="module")
def network() -> onnx.ModelProto:
    return onnx.load(str(EXAMPLE / "model.onnx"))


def test_without_a_detector_description_nothing_changes(network: onnx.ModelProto) -> None:
    result = FuseHostStagesPass()(network)
    assert not result.modified and result.traffic is None
    assert result.note is not None and "--config" in result.note
    assert result.model.SerializeToString() == network.SerializeToString()
    assert set(result.stats) == set(STAT_KEYS)


def test_fusion_reports_the_boundary_traffic_before_and_after(network: onnx.ModelProto) -> None:
    result = FuseHostStagesPass(config=CONFIG)(network)
    assert result.modified and takes_a_frame(result.model)
    assert [v.name for v in result.model.graph.output] == list(OUTPUTS)
    traffic = result.traffic
    assert traffic is not None
    # What the naive pipeline measures on a real frame is what the pass predicts.
    naive = NaiveDetector(network, CONFIG.detector)
    frame = render_scene(CONFIG, scene_seeds("test", 1)[0]).image
    naive.detect(frame)
    assert traffic.before == naive.last_traffic
    fused = FusedDetector(result.model, CONFIG.detector)
    fused.detect(frame)
    assert traffic.after == fused.last_traffic
    assert [s.name for s in traffic.host_stages_removed] == ["preprocess", "resize", "resample", "nms", "top_k"]
    stats = result.stats
    assert (stats["calls_before"], stats["calls_after"]) == (3, 1)
    assert stats["bytes_in_before"] == traffic.before.bytes_in and stats["bytes_out_after"] == traffic.after.bytes_out
    assert stats["host_ops_removed"] == traffic.host_ops_removed > 1e9
    assert stats["checked_frames"] == 0


def test_a_second_run_changes_nothing(network: onnx.ModelProto) -> None:
    fused = FuseHostStagesPass(config=CONFIG)(network).model
    again = FuseHostStagesPass(config=CONFIG)(fused)
    assert not again.modified and again.note is not None and "already" in again.note


def test_check_against_the_host_pipeline(network: onnx.ModelProto) -> None:
    result = FuseHostStagesPass(config=CONFIG, check_frames=1)(network)
    assert result.stats["checked_frames"] == 1
    assert 0 <= result.stats["max_volume_error"] <= 1e-4


def test_a_fusion_that_disagrees_with_the_host_is_caught(network: onnx.ModelProto, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import graphopt_person.naive as naive_module

    real = naive_module.NaiveDetector.score_volume
    monkeypatch.setattr(naive_module.NaiveDetector, "score_volume", lambda self, frame: real(self, frame) + 0.01)
    with pytest.raises(HostFusionMismatch, match="differs from the host pipeline"):
        FuseHostStagesPass(config=CONFIG, check_frames=1)(network)


def test_a_network_the_spec_does_not_describe_is_a_config_error(network: onnx.ModelProto) -> None:
    model = onnx.ModelProto()
    model.CopyFrom(network)
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 640
    with pytest.raises(ConfigError, match="fixed at"):
        FuseHostStagesPass(config=CONFIG)(model)


def test_default_pipeline_with_verification_fuses_and_verifies_after(network: onnx.ModelProto) -> None:
    optimized, report = graphopt.optimize(network, detector=CONFIG, verify=True)
    rows = {r.name: r for r in report.passes}
    fusion = rows["fuse_host_stages"]
    assert fusion.status == "modified" and fusion.traffic is not None
    assert fusion.stats["checked_frames"] == 2  # --verify makes the pass check itself on scenes
    assert fusion.output_errors is None  # different inputs: nothing to compare element-wise
    # The passes after the fusion are verified against the fused graph.
    assert rows["pin_static_shapes"].output_errors is not None
    assert rows["pin_static_shapes"].max_abs_error == 0
    data = report.to_dict()
    traffic = next(p for p in data["passes"] if p["name"] == "fuse_host_stages")["traffic"]
    assert traffic["before"]["calls"] == 3 and traffic["after"]["calls"] == 1
    markdown = report.to_markdown()
    assert "boundary traffic per frame 3 calls" in markdown and "→ 1 call," in markdown
    assert takes_a_frame(optimized)


class _RenamesTheOutput(Pass):
    """Renames the graph output without saying it changes the interface."""

    name = "renames_the_output"

    def call(self, model: onnx.ModelProto) -> PassResult:
        old = model.graph.output[0].name
        for node in model.graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = "renamed"
        model.graph.output[0].name = "renamed"
        return PassResult(model, True)


def test_an_undeclared_interface_change_is_rolled_back() -> None:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(PassFailedError, match="changed the model's inputs or outputs"):
        Pipeline([_RenamesTheOutput()], options=OptimizeOptions(verify=VerifyOptions())).run(model)
    kept, report = Pipeline([_RenamesTheOutput()], options=OptimizeOptions(keep_going=True)).run(model)
    assert report.passes[0].status == "rolled_back" and kept.graph.output[0].name == "y"


def test_fused_model_outputs_are_small_and_static(network: onnx.ModelProto) -> None:
    optimized, _ = graphopt.optimize(network, detector=CONFIG)
    outputs = FusedDetector(optimized, CONFIG.detector).run(np.zeros((480, 640, 3), np.uint8) + 7)
    assert sum(v.nbytes for v in outputs.values()) < 2000
