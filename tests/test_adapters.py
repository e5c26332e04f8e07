"""graphopt passes in an onnx-ir pass manager and onnx-ir passes in a graphopt pipeline, checked numerically."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from graphopt import Pipeline
from graphopt.errors import GraphoptError
from graphopt.passes import FunctionPass, PassResult, RemoveRedundantNodesPass
from tests.conftest import assert_same_outputs, make_model, op_types, tensor, value

ir = pytest.importorskip("onnx_ir", reason="the onnx-ir adapters need the ir extra (onnx-ir)")
common = pytest.importorskip("onnx_ir.passes.common", reason="the onnx-ir adapters need the ir extra (onnx-ir)")

from graphopt.adapters.onnx_ir import IrPass, as_ir_pass  # noqa: E402

EXAMPLE = Path(__file__).parents[1] / "examples" / "01_redundant_cnn" / "model.onnx"
SHAPES = {"input": (1, 3, 16, 24)}


def _chain() -> onnx.ModelProto:
    """x → Identity → Relu → Identity → Add(w) → y, and a dead Neg."""
    return make_model(
        [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
         helper.make_node("Identity", ["b"], ["c"]), helper.make_node("Add", ["c", "w"], ["y"]),
         helper.make_node("Neg", ["x"], ["dead"])],
        [value("x", [2, 3])], [value("y", [2, 3])], [tensor("w", np.full((2, 3), 0.5, np.float32))])


def test_a_graphopt_pass_runs_in_an_onnx_ir_pass_manager() -> None:
    adapter = as_ir_pass(RemoveRedundantNodesPass())
    assert isinstance(adapter, ir.passes.FunctionalPass)
    model = ir.serde.deserialize_model(_chain())
    result = ir.passes.PassManager([adapter])(model)
    assert result.modified and result.model is not model
    out = ir.serde.serialize_model(result.model)
    assert op_types(out) == ["Relu", "Add"]
    assert adapter.last_result.stats["identity"] == 2 and adapter.last_result.stats["dead_nodes"] == 1
    assert_same_outputs(_chain(), out, {"x": (2, 3)})
    assert [node.op_type for node in model.graph] == op_types(_chain())  # functional: the input is untouched
    assert not adapter(result.model).modified  # a second run finds nothing


def test_an_onnx_ir_pass_runs_in_a_graphopt_pipeline_and_is_reported() -> None:
    source = onnx.load(str(EXAMPLE))
    model, report = Pipeline([IrPass(common.IdentityEliminationPass()), RemoveRedundantNodesPass()]).run(source)
    row = report.passes[0]
    assert row.name == "ir.identity_elimination" and row.status == "modified"
    assert row.nodes_after < row.nodes_before and row.wall_ms > 0
    assert "Identity" not in op_types(model) and "Identity" in op_types(source)
    assert_same_outputs(source, model, SHAPES)
    again = IrPass(common.IdentityEliminationPass())(model)
    assert not again.modified


def test_an_onnx_ir_pass_is_verified_and_rolled_back_like_any_other() -> None:
    class BreakAdd(ir.passes.InPlacePass):
        """Turns every Add into a Sub (wrong on purpose)."""

        def call(self, model):  # type: ignore[no-untyped-def]
            for node in model.graph:
                if node.op_type == "Add":
                    node.op_type = "Sub"
            return ir.passes.PassResult(model, True)

    from graphopt.options import OptimizeOptions, VerifyOptions

    options = OptimizeOptions(verify=VerifyOptions(), keep_going=True)
    model, report = Pipeline([IrPass(BreakAdd(), name="break_add")], options=options).run(_chain())
    assert report.passes[0].name == "break_add" and report.passes[0].status == "rolled_back"
    assert "Add" in op_types(model)


def test_ir_pass_refuses_what_is_not_an_onnx_ir_pass() -> None:
    with pytest.raises(GraphoptError, match="is not an onnx-ir pass"):
        IrPass(RemoveRedundantNodesPass())


def test_without_onnx_ir_the_adapters_say_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx_ir", None)
    with pytest.raises(GraphoptError, match=r"pip install 'graphopt\[ir\]'"):
        as_ir_pass(RemoveRedundantNodesPass())


def test_a_callers_function_is_timed_and_reported_as_a_pass() -> None:
    def drop_dead_neg(model: onnx.ModelProto) -> onnx.ModelProto:
        kept = [n for n in model.graph.node if n.op_type != "Neg"]
        del model.graph.node[:]
        model.graph.node.extend(kept)
        return model

    model, report = Pipeline([FunctionPass(drop_dead_neg), FunctionPass(drop_dead_neg, name="again")]).run(_chain())
    assert [(r.name, r.status) for r in report.passes] == [("drop_dead_neg", "modified"), ("again", "unchanged")]
    assert "Neg" not in op_types(model)
    counted = FunctionPass(lambda m: PassResult(m, False, {"looked": 1}), name="looker")(_chain())
    assert counted.stats == {"looked": 1} and not counted.modified
    with pytest.raises(TypeError, match="returned NoneType"):
        FunctionPass(lambda m: None, name="broken")(_chain())  # type: ignore[arg-type, return-value]
