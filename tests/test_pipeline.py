"""The pipeline: hook order, transactions (rollback), verification and the report it builds."""

from __future__ import annotations

import json
from collections.abc import Callable

import onnx
import pytest
from onnx import helper

import graphopt
from graphopt import GraphoptError, OptimizeOptions, Pass, PassFailedError, PassResult, Pipeline, VerifyOptions
from graphopt.errors import PassRequirementError, PreconditionError
from graphopt.instrument import PassInstrumentation, PassRecord
from graphopt.passes.base import PostconditionError
from tests.conftest import make_model, op_types, value


class _Rewrite(Pass):
    """Test pass applying a function to the model."""

    def __init__(self, name: str, rewrite: Callable[[onnx.ModelProto], None] | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.rewrite = rewrite

    def call(self, model: onnx.ModelProto) -> PassResult:
        if self.rewrite is not None:
            self.rewrite(model)
        return PassResult(model, self.rewrite is not None, {"calls": 1})


def _relu_relu() -> onnx.ModelProto:
    return make_model(
        [helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
        [value("x", [2, 3])], [value("y", [2, 3])],
    )


def _drop_second_relu(model: onnx.ModelProto) -> None:
    model.graph.node[0].output[0] = "y"
    del model.graph.node[1]


def _to_sigmoid(model: onnx.ModelProto) -> None:
    model.graph.node[1].op_type = "Sigmoid"


def _dangle(model: onnx.ModelProto) -> None:
    model.graph.node[1].input[0] = "nothing_produces_this"


def _explode(model: onnx.ModelProto) -> None:
    raise ZeroDivisionError("bad pass")


class _Recorder(PassInstrumentation):
    def __init__(self) -> None:
        self.events: list[str] = []

    def before_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self.events.append(f"before {record.name}")

    def after_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self.events.append(f"after {record.name}")

    def after_pass_failed(self, record: PassRecord, model: onnx.ModelProto, reason: str) -> None:
        self.events.append(f"failed {record.name}")


def test_hooks_wrap_every_pass_in_order() -> None:
    recorder = _Recorder()
    passes = [_Rewrite("noop"), _Rewrite("fuse", _drop_second_relu), _Rewrite("boom", _explode)]
    model, report = Pipeline(passes, options=OptimizeOptions(keep_going=True), instruments=[recorder]).run(_relu_relu())
    assert recorder.events == ["before noop", "after noop", "before fuse", "after fuse", "before boom", "failed boom"]
    assert [r.status for r in report.passes] == ["unchanged", "modified", "rolled_back"]
    assert op_types(model) == ["Relu"]


def test_records_nodes_ops_and_time() -> None:
    _, report = Pipeline([_Rewrite("fuse", _drop_second_relu)]).run(_relu_relu())
    (record,) = report.passes
    assert (record.nodes_before, record.nodes_after) == (2, 1)
    assert record.op_delta == {"Relu": -1}
    assert record.flops_before == 12 and record.flops_after == 6
    assert record.checks is True and record.wall_ms > 0
    assert record.stats == {"calls": 1}
    assert report.total_ms == pytest.approx(sum(r.wall_ms for r in report.passes))
    assert report.before is not None and report.before.nodes == 2
    assert report.after is not None and report.after.nodes == 1


def test_raising_pass_is_rolled_back_and_stops() -> None:
    original = _relu_relu()
    with pytest.raises(PassFailedError, match="'boom' was rolled back: it raised ZeroDivisionError"):
        Pipeline([_Rewrite("boom", _explode)]).run(original)


def test_checker_failure_is_rolled_back() -> None:
    model, report = Pipeline([_Rewrite("dangle", _dangle)], options=OptimizeOptions(keep_going=True)).run(_relu_relu())
    (record,) = report.passes
    assert record.status == "rolled_back" and record.checks is False
    assert "fails the ONNX checker" in (record.message or "")
    assert model == _relu_relu()
    assert record.nodes_after == record.nodes_before == 2


def test_verification_rolls_back_a_numeric_change() -> None:
    options = OptimizeOptions(verify=VerifyOptions(), keep_going=True)
    passes = [_Rewrite("sigmoid", _to_sigmoid), _Rewrite("fuse", _drop_second_relu)]
    model, report = Pipeline(passes, options=options).run(_relu_relu())
    bad, good = report.passes
    assert bad.status == "rolled_back" and "output 'y' changed by up to" in (bad.message or "")
    assert bad.max_abs_error is not None and bad.max_abs_error > 0.1
    assert good.status == "modified" and good.max_abs_error == 0.0
    assert op_types(model) == ["Relu"]


def test_without_verification_a_numeric_change_is_accepted() -> None:
    model, report = Pipeline([_Rewrite("sigmoid", _to_sigmoid)]).run(_relu_relu())
    assert op_types(model) == ["Relu", "Sigmoid"] and report.passes[0].max_abs_error is None


def test_input_model_is_never_modified() -> None:
    original = _relu_relu()
    snapshot = original.SerializeToString()
    Pipeline([_Rewrite("fuse", _drop_second_relu)]).run(original)
    assert original.SerializeToString() == snapshot


def test_report_json_and_markdown() -> None:
    _, report = Pipeline([_Rewrite("noop"), _Rewrite("fuse", _drop_second_relu)],
                         options=OptimizeOptions(verify=VerifyOptions())).run(_relu_relu())
    data = json.loads(report.to_json())
    assert data["schema"] == "graphopt.report/1"
    assert [p["name"] for p in data["passes"]] == ["noop", "fuse"]
    for entry in data["passes"]:
        for key in ("name", "wall_ms", "nodes_before", "nodes_after", "flops_before", "flops_after", "max_abs_error"):
            assert key in entry
    assert sum(p["wall_ms"] for p in data["passes"]) == pytest.approx(data["total_ms"])
    assert sum(p["share"] for p in data["passes"]) == pytest.approx(1.0)
    markdown = report.to_markdown()
    assert "| fuse | modified |" in markdown and "| total |" in markdown


def _to_custom_op(model: onnx.ModelProto) -> None:
    # Valid ONNX (the checker does not know custom domains) that onnxruntime cannot load.
    model.graph.node[1].domain = "com.example"
    model.graph.node[1].op_type = "Mystery"
    model.opset_import.append(helper.make_opsetid("com.example", 1))


def test_output_onnxruntime_cannot_load_is_rolled_back() -> None:
    options = OptimizeOptions(verify=VerifyOptions(), keep_going=True)
    model, report = Pipeline([_Rewrite("custom", _to_custom_op)], options=options).run(_relu_relu())
    (record,) = report.passes
    assert record.status == "rolled_back" and record.checks is True
    assert (record.message or "").startswith("onnxruntime cannot load its output:")
    assert model == _relu_relu()


def test_input_onnxruntime_cannot_run_is_an_input_error() -> None:
    model = _relu_relu()
    _to_custom_op(model)
    with pytest.raises(GraphoptError, match=r"cannot load the input model \(for --verify\)"):
        Pipeline([], options=OptimizeOptions(verify=VerifyOptions())).run(model)


def test_optimize_takes_the_detector_description_as_config() -> None:
    from pathlib import Path

    import graphopt
    from graphopt.errors import GraphoptError

    folder = Path(__file__).parents[1] / "examples" / "02_person_detector"
    fused, report = graphopt.optimize(folder / "model.onnx", config=folder / "detector.toml",
                                      passes=["remove_redundant_nodes", "fuse_host_stages"])
    assert [r.status for r in report.passes] == ["modified", "modified"]
    assert fused.graph.input[0].name == "frame"
    with pytest.raises(GraphoptError, match="config= or detector=, not both"):
        graphopt.optimize(folder / "model.onnx", config=folder / "detector.toml", detector=folder / "detector.toml")


class _NeedsAConfig(Pass):
    """Stands for a workload pass: needs something the run does not have."""

    name = "needs_a_config"

    def requires(self, model: onnx.ModelProto) -> None:
        raise PreconditionError("a workload configuration (--config)")

    def call(self, model: onnx.ModelProto) -> PassResult:  # pragma: no cover - never reached
        raise AssertionError("a pass whose requirement is missing must not run")


class _BreaksItsPromise(Pass):
    name = "breaks_its_promise"

    def call(self, model: onnx.ModelProto) -> PassResult:
        return PassResult(model, False)

    def ensures(self, before: onnx.ModelProto, result: PassResult) -> None:
        raise PostconditionError("the outputs moved")


def _identity_model() -> onnx.ModelProto:
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", [1, 4])], [value("y", [1, 4])])


def test_a_named_pass_whose_requirement_is_missing_is_an_error_naming_it() -> None:
    with pytest.raises(PassRequirementError, match=r"'needs_a_config' cannot run: it needs a workload configuration"):
        Pipeline([_NeedsAConfig()]).run(_identity_model())


def test_a_default_pass_whose_requirement_is_missing_is_skipped_with_the_reason() -> None:
    _, report = Pipeline([_NeedsAConfig()], optional={"needs_a_config"}).run(_identity_model())
    record = report.passes[0]
    assert record.status == "skipped" and record.message == "not applicable: needs a workload configuration (--config)"
    assert "skipped" in report.to_markdown()


def test_the_default_pipeline_skips_host_fusion_without_a_config() -> None:
    _, report = graphopt.optimize(_identity_model())
    fusion = next(r for r in report.passes if r.name == "fuse_host_stages")
    assert fusion.status == "skipped" and "--config" in (fusion.message or "")
    with pytest.raises(PassRequirementError, match="fuse_host_stages"):
        graphopt.optimize(_identity_model(), ["fuse_host_stages"])


def test_a_pass_that_fails_its_ensures_is_rolled_back() -> None:
    with pytest.raises(PassFailedError, match="failed its own check: the outputs moved"):
        Pipeline([_BreaksItsPromise()]).run(_identity_model())


class _HalvesTheWork(Pass):
    """Stands for a slicing pass: drops a node, so each frame costs less."""

    name = "halves_the_work"
    changes_work = True

    def call(self, model: onnx.ModelProto) -> PassResult:
        del model.graph.node[1]
        model.graph.node[0].output[0] = "y"
        return PassResult(model, True, note="one Relu fewer")


def test_the_latency_instrument_times_a_pass_that_changes_the_work_and_the_pass_times_nothing() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                       [value("x", [1, 64])], [value("y", [1, 64])])
    _, report = Pipeline([_HalvesTheWork()], options=OptimizeOptions(latency_repeats=3)).run(model)
    record = report.passes[0]
    assert record.stats["latency_before_ms"] > 0 and record.stats["latency_after_ms"] > 0
    assert record.message is not None and record.message.startswith("one Relu fewer; latency ")
    assert "medians of 3 interleaved rounds" in record.message
    # The change is judged against the noise: a ratio with its interval, or "no measurable change".
    assert "95% interval" in record.message
    _, untimed = Pipeline([_HalvesTheWork()]).run(model)
    assert "latency_before_ms" not in untimed.passes[0].stats and untimed.passes[0].message == "one Relu fewer"
