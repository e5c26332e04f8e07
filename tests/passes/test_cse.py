"""Tests of MergeCommonSubexpressionsPass: identical nodes computed once, and the nodes that must stay apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.passes.base import PassResult
from graphopt.passes.cse import STAT_KEYS, MergeCommonSubexpressionsPass
from graphopt.passes.redundancy import RemoveRedundantNodesPass
from graphopt.verify import random_inputs
from tests.conftest import assert_same_outputs, make_model, op_types, tensor, value

DETECTOR = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector" / "model.onnx"

SHAPE = (2, 3, 4)
FEED = {"x": SHAPE}
# Merging computes the same operators on the same values, only once, so the
# outputs are the same up to how onnxruntime's own fusions treat the two
# graphs: a value read twice instead of once can fuse differently (Conv + Mul
# below), which moves float32 results by an ulp (5e-7 on values near 6).
TOL = {"rtol": 1e-6, "atol": 1e-6}


def run_pass(model: onnx.ModelProto) -> PassResult:
    """Runs the pass, checks the result is a valid model and that a second run changes nothing."""
    result = MergeCommonSubexpressionsPass()(model)
    onnx.checker.check_model(result.model, full_check=True)
    assert set(result.stats) == set(STAT_KEYS)
    assert result.modified == any(result.stats.values())
    again = MergeCommonSubexpressionsPass()(result.model)
    assert not again.modified, again.stats
    return result


def node(op: str, inputs: list[str], output: str, **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def simple_model(nodes: list[onnx.NodeProto], initializers=(), *, outputs=("y",), opset: int = 17) -> onnx.ModelProto:
    return make_model(nodes, [value("x", SHAPE)], [value(name, SHAPE) for name in outputs], initializers, opset=opset)


@pytest.mark.parametrize(("op", "inputs"), [("Relu", ["x"]), ("Add", ["x", "x"])])
def test_two_identical_nodes_become_one(op: str, inputs: list[str]) -> None:
    model = simple_model([node(op, inputs, "a"), node(op, inputs, "b"), node("Mul", ["a", "b"], "y")])
    model.graph.value_info.extend([value("a", SHAPE), value("b", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == [op, "Mul"]
    assert result.stats == {"merged": 1, "dead_nodes": 0}
    assert [n.name for n in result.model.graph.node] == ["a", "y"]
    assert list(result.model.graph.node[1].input) == ["a", "a"]
    assert [v.name for v in result.model.graph.value_info] == ["a"]
    assert_same_outputs(model, result.model, FEED, **TOL)


@pytest.mark.parametrize(
    "pair",
    [
        [node("LeakyRelu", ["r"], "a", alpha=0.1), node("LeakyRelu", ["r"], "b", alpha=0.2)],
        [node("LeakyRelu", ["r"], "a"), node("LeakyRelu", ["r"], "b", alpha=0.01)],
        [node("Add", ["x", "r"], "a"), node("Add", ["r", "x"], "b")],
    ],
    ids=["attributes_differ", "default_spelled_out", "operands_swapped"],
)
def test_nodes_that_differ_are_not_merged(pair: list[onnx.NodeProto]) -> None:
    model = simple_model([node("Relu", ["x"], "r"), *pair, node("Add", ["a", "b"], "y")])
    result = run_pass(model)
    assert not result.modified
    assert result.model == model


def test_merges_repeat_down_a_chain() -> None:
    nodes = [
        node("Relu", ["x"], "a"),
        node("Relu", ["x"], "b"),
        node("Exp", ["a"], "c"),
        node("Exp", ["b"], "d"),
        node("Add", ["c", "d"], "y"),
    ]
    model = simple_model(nodes)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Exp", "Add"]
    assert result.stats == {"merged": 2, "dead_nodes": 0}
    assert_same_outputs(model, result.model, FEED, **TOL)


def test_graph_output_names_are_kept() -> None:
    # The later duplicate writes a graph output: the kept node takes over its name.
    nodes = [node("Relu", ["x"], "a"), node("Relu", ["x"], "b"), node("Neg", ["a"], "y")]
    model = simple_model(nodes, outputs=("b", "y"))
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert [v.name for v in result.model.graph.output] == ["b", "y"]
    assert [list(n.output) for n in result.model.graph.node] == [["b"], ["y"]]
    assert list(result.model.graph.node[1].input) == ["b"]
    assert_same_outputs(model, result.model, FEED, **TOL)


def test_duplicates_that_are_both_graph_outputs_stay() -> None:
    model = simple_model([node("Relu", ["x"], "a"), node("Relu", ["x"], "b")], outputs=("a", "b"))
    assert not run_pass(model).modified


def test_constants_with_equal_values_are_merged_but_initializers_are_not() -> None:
    def constant(name: str, values: list[float]) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [4], values))

    nodes = [
        constant("c1", [1, 2, 3, 4]),
        constant("c2", [1, 2, 3, 4]),
        constant("c3", [1, 2, 3, 5]),
        node("Add", ["x", "c1"], "a"),
        node("Add", ["x", "c2"], "b"),
        node("Mul", ["a", "c3"], "m"),
        node("Add", ["x", "w1"], "p"),
        node("Add", ["x", "w2"], "q"),
        node("Sum", ["b", "m", "p", "q"], "y"),
    ]
    weight = np.array([1, 2, 3, 4], np.float32)
    model = simple_model(nodes, [tensor("w1", weight), tensor("w2", weight)])
    result = run_pass(model)
    # c2 merges into c1, which makes Add(x, c2) a duplicate of Add(x, c1).
    assert result.stats == {"merged": 2, "dead_nodes": 0}
    assert [list(n.output) for n in result.model.graph.node] == [["c1"], ["c3"], ["a"], ["m"], ["p"], ["q"], ["y"]]
    assert [t.name for t in result.model.graph.initializer] == ["w1", "w2"]
    assert_same_outputs(model, result.model, FEED, **TOL)


def test_multi_output_nodes_are_merged() -> None:
    nodes = [
        helper.make_node("Split", ["x"], ["a1", "a2"], axis=2, num_outputs=2),
        helper.make_node("Split", ["x"], ["b1", "b2"], axis=2, num_outputs=2),
        helper.make_node("Concat", ["a1", "b2"], ["y"], axis=2),
    ]
    model = simple_model(nodes, opset=18)
    result = run_pass(model)
    assert op_types(result.model) == ["Split", "Concat"]
    assert list(result.model.graph.node[1].input) == ["a1", "a2"]
    assert_same_outputs(model, result.model, FEED, **TOL)


@pytest.mark.parametrize("seed", [None, 1.0], ids=["unseeded", "seeded"])
def test_random_nodes_are_never_merged(seed: float | None) -> None:
    attrs = {} if seed is None else {"seed": seed}
    nodes = [
        node("RandomUniformLike", ["x"], "a", **attrs),
        node("RandomUniformLike", ["x"], "b", **attrs),
        node("Relu", ["x"], "r1"),
        node("Relu", ["x"], "r2"),
        node("Sum", ["a", "b", "r1", "r2"], "y"),
    ]
    model = simple_model(nodes)
    result = run_pass(model)
    # The Relus merge; the random nodes come back exactly as they were.
    assert result.stats == {"merged": 1, "dead_nodes": 0}
    assert list(result.model.graph.node[:2]) == list(model.graph.node[:2])
    assert result.model.opset_import == model.opset_import


def test_custom_domain_nodes_are_never_merged() -> None:
    nodes = [
        helper.make_node("Scramble", ["x"], ["a"], domain="vendor"),
        helper.make_node("Scramble", ["x"], ["b"], domain="vendor"),
        node("Add", ["a", "b"], "y"),
    ]
    # Built by hand: the checker knows no schema for vendor.Scramble, and onnxruntime cannot run it.
    graph = helper.make_graph(nodes, "test", [value("x", SHAPE)], [value("y", SHAPE)])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("vendor", 1)], ir_version=8
    )
    result = MergeCommonSubexpressionsPass()(model)
    assert not result.modified
    assert result.model == model


def test_dynamic_input_dims() -> None:
    nodes = [
        node("Shape", ["x"], "s1"),
        node("Shape", ["x"], "s2"),
        node("Relu", ["x"], "r"),
        node("Reshape", ["r", "s1"], "a"),
        node("Reshape", ["a", "s2"], "y"),
    ]
    dims = ["N", 3, "H", "W"]
    model = make_model(nodes, [value("x", dims)], [value("y", dims)])
    result = run_pass(model)
    assert op_types(result.model) == ["Shape", "Relu", "Reshape", "Reshape"]
    assert result.model.graph.input[0] == model.graph.input[0]
    assert list(result.model.graph.node[3].input) == ["a", "s1"]
    for shape in [(1, 3, 2, 2), (2, 3, 5, 7)]:
        assert_same_outputs(model, result.model, {"x": shape}, **TOL)


def test_dead_nodes_are_removed_and_counted_apart() -> None:
    nodes = [
        node("Relu", ["x"], "a"),
        node("Relu", ["x"], "b"),
        node("Mul", ["x", "w"], "dead1"),
        node("Exp", ["dead1"], "dead2"),
        node("Add", ["a", "b"], "y"),
    ]
    model = simple_model(nodes, [tensor("w", np.ones(4, np.float32))])
    model.graph.value_info.extend([value("dead1", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Add"]
    assert result.stats == {"merged": 1, "dead_nodes": 2}
    assert not result.model.graph.initializer
    assert not result.model.graph.value_info
    assert_same_outputs(model, result.model, FEED, **TOL)


def test_if_branches_read_the_kept_node_and_are_otherwise_left_alone() -> None:
    def branch(name: str, op: str, first: str, second: str) -> onnx.GraphProto:
        # Two identical Relus inside the body: bodies are not rewritten.
        body = [
            helper.make_node("Relu", [first], [f"{name}_r1"]),
            helper.make_node("Relu", [first], [f"{name}_r2"]),
            helper.make_node(op, [f"{name}_r1", f"{name}_r2"], [f"{name}_s"]),
            helper.make_node("Add", [f"{name}_s", second], [f"{name}_out"]),
        ]
        return helper.make_graph(body, name, [], [value(f"{name}_out", SHAPE)])

    then_branch, else_branch = branch("then", "Add", "a", "b"), branch("else", "Mul", "b", "a")
    nodes = [
        node("Relu", ["x"], "a"),
        node("Relu", ["x"], "b"),
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "threshold"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
    ]
    model = simple_model(nodes, [tensor("threshold", np.array(2.0, np.float32))])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "ReduceSum", "Greater", "If"]
    assert result.stats == {"merged": 1, "dead_nodes": 0}
    for attr, op in zip(result.model.graph.node[3].attribute, ["Mul", "Add"], strict=True):  # else, then
        body = attr.g
        assert [list(n.input) for n in body.node] == [
            ["a"],
            ["a"],
            [f"{body.name}_r1", f"{body.name}_r2"],
            [f"{body.name}_s", "a"],
        ]
        assert [n.op_type for n in body.node] == ["Relu", "Relu", op, "Add"]
        assert not any(n.HasField("name") for n in body.node)
    seeds = range(4)
    taken = {bool(random_inputs(model, FEED, seed=seed)["x"].sum() > 2.0) for seed in seeds}
    assert taken == {True, False}, "the seeds must take both branches"
    for seed in seeds:
        assert_same_outputs(model, result.model, FEED, seed=seed, **TOL)


def test_everything_but_the_merged_node_is_kept() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], doc_string="first"),
        helper.make_node("Relu", ["x"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["c"], name="add"),
        helper.make_node("Mul", ["c", "w"], ["y"]),
    ]
    inputs = [value("x", SHAPE), value("w", (4,))]
    model = make_model(nodes, inputs, [value("y", SHAPE)], [tensor("w", np.full(4, 0.5, np.float32))])
    model.graph.value_info.extend([value("a", SHAPE), value("c", SHAPE)])
    model.graph.doc_string = "graph"
    model.producer_name, model.doc_string = "exporter", "a model"
    onnx.helper.set_model_props(model, {"author": "someone"})

    result = run_pass(model)
    expected = onnx.ModelProto()
    expected.CopyFrom(model)
    del expected.graph.node[1]
    expected.graph.node[1].input[1] = "a"
    assert result.model == expected


def test_no_other_onnx_optimizer_rewrite_runs() -> None:
    # onnxsim's own passes (fuse_mul_into_conv here) join its default set once
    # registered; they must be skipped like onnx-optimizer's.
    nodes = [
        node("Identity", ["x"], "i"),
        node("MatMul", ["i", "m"], "mm"),
        node("Add", ["mm", "bias"], "a"),
        node("Transpose", ["a"], "t1", perm=[0, 2, 1]),
        node("Transpose", ["t1"], "t2", perm=[0, 2, 1]),
        node("Reshape", ["t2", "shape"], "r"),
        node("Conv", ["r", "w"], "c1"),
        node("Conv", ["r", "w"], "c2"),
        node("Mul", ["c1", "scale"], "s"),
        node("Add", ["s", "c2"], "y"),
    ]
    initializers = [
        tensor("m", np.full((4, 4), 0.25, np.float32)),
        tensor("bias", np.ones(4, np.float32)),
        tensor("shape", np.array([2, 3, 4, 1], np.int64)),
        tensor("w", np.full((5, 3, 1, 1), 0.5, np.float32)),
        tensor("scale", np.full((1, 5, 1, 1), 2.0, np.float32)),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", (2, 5, 4, 1))], initializers)
    result = run_pass(model)
    assert result.stats == {"merged": 1, "dead_nodes": 0}
    expected = onnx.ModelProto()
    expected.CopyFrom(model)
    del expected.graph.node[7]
    expected.graph.node[8].input[1] = "c1"
    assert result.model == expected
    assert_same_outputs(model, result.model, FEED, **TOL)


@pytest.mark.parametrize("nodes", [[], [node("Relu", ["x"], "y")], [node("Relu", ["x"], "a"), node("Neg", ["a"], "y")]])
def test_graph_with_nothing_to_merge(nodes: list[onnx.NodeProto]) -> None:
    model = make_model(nodes, [value("x", SHAPE)], [value("y" if nodes else "x", SHAPE)])
    result = run_pass(model)
    assert not result.modified
    assert result.stats == {"merged": 0, "dead_nodes": 0}
    assert result.model == model


def test_the_model_passed_in_is_not_changed() -> None:
    model = simple_model([node("Relu", ["x"], "a"), node("Relu", ["x"], "b"), node("Add", ["a", "b"], "y")])
    before = model.SerializeToString()
    result = MergeCommonSubexpressionsPass()(model)
    assert result.modified
    assert model.SerializeToString() == before


def test_the_detector_computes_its_shape_once() -> None:
    model = RemoveRedundantNodesPass()(onnx.load(DETECTOR)).model
    assert op_types(model).count("Shape") == 2
    result = run_pass(model)
    assert result.stats == {"merged": 1, "dead_nodes": 0}
    assert op_types(result.model).count("Shape") == 1
    assert len(result.model.graph.node) == len(model.graph.node) - 1
    assert [v.name for v in result.model.graph.output] == [v.name for v in model.graph.output]
    assert_same_outputs(model, result.model, {"image": (1, 3, 160, 96)}, **TOL)
