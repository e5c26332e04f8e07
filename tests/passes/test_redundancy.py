"""Tests of RemoveRedundantNodesPass: one graph per rewrite, plus the boundary cases."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.passes.base import PassResult
from graphopt.passes.redundancy import STAT_KEYS, RemoveRedundantNodesPass
from graphopt.verify import random_inputs
from tests.conftest import assert_same_outputs, make_model, op_types, tensor, value

SHAPE = (2, 3, 4)
FEED = {"x": SHAPE}


def run_pass(model: onnx.ModelProto, **config: bool) -> PassResult:
    """Runs the pass, checks the result is a valid model and that a second run changes nothing."""
    result = RemoveRedundantNodesPass(**config)(model)
    onnx.checker.check_model(result.model, full_check=True)
    assert set(result.stats) == set(STAT_KEYS)
    assert result.modified == any(result.stats.values())
    again = RemoveRedundantNodesPass(**config)(result.model)
    assert not again.modified, again.stats
    return result


def nonzero(result: PassResult) -> dict[str, int | float]:
    return {key: count for key, count in result.stats.items() if count}


def counts(**expected: int) -> dict[str, int]:
    return {key: count for key, count in expected.items() if count}


def relu_around(middle: list[onnx.NodeProto], *, into: str = "a", out_of: str = "b") -> list[onnx.NodeProto]:
    """x -> Relu -> ``into`` ... ``out_of`` -> Neg -> y: real ops on both sides of ``middle``."""
    return [helper.make_node("Relu", ["x"], [into]), *middle, helper.make_node("Neg", [out_of], ["y"])]


def simple_model(middle: list[onnx.NodeProto], initializers=(), *, opset: int = 17) -> onnx.ModelProto:
    return make_model(relu_around(middle), [value("x", SHAPE)], [value("y", SHAPE)], initializers, opset=opset)


def test_identity_is_bypassed() -> None:
    model = simple_model([helper.make_node("Identity", ["a"], ["b"])])
    model.graph.value_info.extend([value("a", SHAPE), value("b", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"identity": 1, "stale_value_info": 1}
    assert [v.name for v in result.model.graph.value_info] == ["a"]
    assert_same_outputs(model, result.model, FEED)


@pytest.mark.parametrize("opset", [10, 13, 17])
def test_inference_dropout_is_bypassed(opset: int) -> None:
    inputs = ["a", "ratio", "training"] if opset >= 12 else ["a"]
    initializers = [tensor("ratio", np.array(0.5, np.float32)), tensor("training", np.array(False))][: len(inputs) - 1]
    model = simple_model([helper.make_node("Dropout", inputs, ["b", "mask"])], initializers, opset=opset)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == counts(dropout=1, unused_initializers=len(initializers))
    assert not result.model.graph.initializer
    assert_same_outputs(model, result.model, FEED)


def test_dropout_whose_mask_is_used_stays() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Dropout", ["a"], ["b", "mask"]),
        helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["b", "m"], ["y"]),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    result = run_pass(model)
    assert not result.modified
    assert op_types(result.model) == ["Relu", "Dropout", "Cast", "Add"]


def test_dropout_in_training_mode_stays() -> None:
    training = tensor("training", np.array(True))
    model = simple_model([helper.make_node("Dropout", ["a", "", "training"], ["b"])], [training])
    result = run_pass(model)
    assert not result.modified
    assert "Dropout" in op_types(result.model)


def test_noop_cast_and_castlike_are_bypassed() -> None:
    nodes = [
        helper.make_node("Cast", ["a"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("CastLike", ["c", "like"], ["b"]),
    ]
    model = simple_model(nodes, [tensor("like", np.array([1.0], np.float32))])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"noop_cast": 2, "unused_initializers": 1}
    assert_same_outputs(model, result.model, FEED)


def test_cast_that_changes_the_type_stays() -> None:
    nodes = [
        helper.make_node("Cast", ["a"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["h"], ["b"], to=TensorProto.FLOAT),
    ]
    model = simple_model(nodes)
    result = run_pass(model)
    assert not result.modified
    assert op_types(result.model) == ["Relu", "Cast", "Cast", "Neg"]


def test_noop_reshape_is_bypassed() -> None:
    model = simple_model(
        [helper.make_node("Reshape", ["a", "shape"], ["b"])], [tensor("shape", np.array([2, -1, 4], np.int64))]
    )
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"noop_reshape": 1, "unused_initializers": 1}
    assert_same_outputs(model, result.model, FEED)


def test_reshape_that_changes_the_shape_stays() -> None:
    nodes = [helper.make_node("Reshape", ["a", "shape"], ["b"])]
    model = make_model(
        relu_around(nodes), [value("x", SHAPE)], [value("y", (6, 4))], [tensor("shape", np.array([6, 4], np.int64))]
    )
    assert not run_pass(model).modified


def test_noop_transpose_is_bypassed() -> None:
    model = simple_model([helper.make_node("Transpose", ["a"], ["b"], perm=[0, 1, 2])])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"noop_transpose": 1}
    assert_same_outputs(model, result.model, FEED)


def test_transpose_without_perm_is_a_noop_only_on_rank_1() -> None:
    rank1 = make_model(
        relu_around([helper.make_node("Transpose", ["a"], ["b"])]), [value("x", (5,))], [value("y", (5,))]
    )
    result = run_pass(rank1)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"noop_transpose": 1}
    assert_same_outputs(rank1, result.model, {"x": (5,)})

    rank2 = make_model(
        relu_around([helper.make_node("Transpose", ["a"], ["b"])]), [value("x", (2, 5))], [value("y", (5, 2))]
    )
    assert not run_pass(rank2).modified


@pytest.mark.parametrize(("opset", "mode"), [(17, "constant"), (17, "reflect"), (10, "edge")])
def test_zero_pad_is_bypassed(opset: int, mode: str) -> None:
    if opset >= 11:
        pad = helper.make_node("Pad", ["a", "pads"], ["b"], mode=mode)
        initializers = [tensor("pads", np.zeros(6, np.int64))]
    else:
        pad = helper.make_node("Pad", ["a"], ["b"], mode=mode, pads=[0] * 6)
        initializers = []
    model = simple_model([pad], initializers, opset=opset)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == counts(noop_pad=1, unused_initializers=len(initializers))
    assert_same_outputs(model, result.model, FEED)


def test_nonzero_pad_stays() -> None:
    nodes = [helper.make_node("Pad", ["a", "pads"], ["b"])]
    pads = tensor("pads", np.array([0, 0, 1, 0, 0, 1], np.int64))
    model = make_model(relu_around(nodes), [value("x", SHAPE)], [value("y", (2, 3, 6))], [pads])
    assert not run_pass(model).modified


def test_inverse_transpose_pair_disappears() -> None:
    nodes = [
        helper.make_node("Transpose", ["a"], ["t"], perm=[2, 0, 1]),
        helper.make_node("Transpose", ["t"], ["b"], perm=[1, 2, 0]),
    ]
    model = simple_model(nodes)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"transpose_pairs": 1, "dead_nodes": 1}
    assert_same_outputs(model, result.model, FEED)


def test_transpose_pairs_without_perm_cancel() -> None:
    nodes = [helper.make_node("Transpose", ["a"], ["t"]), helper.make_node("Transpose", ["t"], ["b"])]
    model = simple_model(nodes)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert result.stats["transpose_pairs"] == 1
    assert_same_outputs(model, result.model, FEED)


def test_transpose_pair_composes_into_one_transpose() -> None:
    nodes = [
        helper.make_node("Transpose", ["a"], ["t"], perm=[1, 0, 2]),
        helper.make_node("Transpose", ["t"], ["b"], perm=[0, 2, 1]),
    ]
    model = make_model(relu_around(nodes), [value("x", SHAPE)], [value("y", (3, 4, 2))])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Transpose", "Neg"]
    assert nonzero(result) == {"transpose_pairs": 1, "dead_nodes": 1}
    transpose = result.model.graph.node[1]
    assert list(transpose.input) == ["a"]
    assert list(helper.get_attribute_value(transpose.attribute[0])) == [1, 2, 0]
    assert_same_outputs(model, result.model, FEED)


def test_duplicate_initializers_are_merged() -> None:
    weight = np.linspace(0.5, 1.5, 4, dtype=np.float32)
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Mul", ["a", "w1"], ["b"]),
        helper.make_node("Add", ["b", "w2"], ["c"]),
        helper.make_node("Sub", ["c", "w3"], ["y"]),
    ]
    initializers = [
        tensor("w1", weight),
        tensor("w2", weight.copy()),
        tensor("w3", weight + 1),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Mul", "Add", "Sub"]
    assert nonzero(result) == {"duplicate_initializers": 1}
    assert [t.name for t in result.model.graph.initializer] == ["w1", "w3"]
    assert list(result.model.graph.node[2].input) == ["b", "w1"]
    assert_same_outputs(model, result.model, FEED)


def test_initializers_listed_as_inputs_are_not_merged() -> None:
    weight = np.full(4, 0.75, np.float32)
    nodes = [helper.make_node("Mul", ["x", "w1"], ["b"]), helper.make_node("Add", ["b", "w2"], ["y"])]
    model = make_model(
        nodes,
        [value("x", SHAPE), value("w1", (4,))],
        [value("y", SHAPE)],
        [tensor("w1", weight), tensor("w2", weight)],
    )
    assert not run_pass(model).modified


def test_dead_nodes_and_unused_values_are_removed() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Mul", ["a", "w"], ["dead1"]),
        helper.make_node("Exp", ["dead1"], ["dead2"]),
        helper.make_node("Neg", ["a"], ["y"]),
    ]
    inputs = [value("x", SHAPE), value("unused", (1,)), value("w", (4,))]
    initializers = [tensor("w", np.ones(4, np.float32)), tensor("spare", np.ones(3, np.float32))]
    model = make_model(nodes, inputs, [value("y", SHAPE)], initializers)
    model.graph.value_info.extend([value("dead1", SHAPE)])

    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"dead_nodes": 2, "unused_initializers": 2, "unused_inputs": 2, "stale_value_info": 1}
    assert [v.name for v in result.model.graph.input] == ["x"]
    assert not result.model.graph.initializer
    assert not result.model.graph.value_info
    assert_same_outputs(model, result.model, {"x": SHAPE, "unused": (1,)})

    kept = run_pass(model, remove_unused_inputs=False)
    assert nonzero(kept) == {"dead_nodes": 2, "unused_initializers": 1, "stale_value_info": 1}
    assert [v.name for v in kept.model.graph.input] == ["x", "unused", "w"]
    assert [t.name for t in kept.model.graph.initializer] == ["w"]


def test_redundant_node_feeding_an_output_takes_over_its_name() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["y"])]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu"]
    assert list(result.model.graph.node[0].output) == ["y"]
    assert nonzero(result) == {"identity": 1}
    assert_same_outputs(model, result.model, FEED)


def test_output_taking_over_a_name_renames_all_its_readers() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Identity", ["a"], ["y"]),
        helper.make_node("Neg", ["a"], ["z"]),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE), value("z", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert list(result.model.graph.node[1].input) == ["y"]
    assert_same_outputs(model, result.model, FEED)


@pytest.mark.parametrize("source", ["input", "initializer", "output"])
def test_redundant_node_between_fixed_names_stays(source: str) -> None:
    if source == "input":
        nodes = [helper.make_node("Identity", ["x"], ["y"])]
        model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
        expected = ["Identity"]
    elif source == "initializer":
        nodes = [helper.make_node("Identity", ["w"], ["y"])]
        model = make_model(nodes, [], [value("y", (4,))], [tensor("w", np.ones(4, np.float32))])
        expected = ["Identity"]
    else:
        nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Dropout", ["a"], ["y"])]
        model = make_model(nodes, [value("x", SHAPE)], [value("a", SHAPE), value("y", SHAPE)])
        expected = ["Relu", "Dropout"]
    result = run_pass(model)
    assert not result.modified
    assert op_types(result.model) == expected


def test_transpose_pair_between_an_input_and_an_output_becomes_one_node() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
        helper.make_node("Transpose", ["t"], ["y"], perm=[1, 2, 0]),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Transpose"]
    assert list(result.model.graph.node[0].input) == ["x"]
    assert_same_outputs(model, result.model, FEED)


@pytest.mark.parametrize("nodes", [[], [helper.make_node("Relu", ["x"], ["y"])]], ids=["empty", "nothing_to_do"])
def test_graph_with_nothing_to_remove(nodes: list[onnx.NodeProto]) -> None:
    output = "y" if nodes else "x"
    model = make_model(nodes, [value("x", SHAPE)], [value(output, SHAPE)])
    result = run_pass(model)
    assert not result.modified
    assert result.stats == dict.fromkeys(STAT_KEYS, 0)
    assert result.model == model


def test_chain_of_identities_and_inverse_transposes_collapses() -> None:
    nodes = [
        helper.make_node("Identity", ["a"], ["i1"]),
        helper.make_node("Identity", ["i1"], ["i2"]),
        helper.make_node("Transpose", ["i2"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Transpose", ["t"], ["b"], perm=[0, 2, 1]),
    ]
    model = simple_model(nodes)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert nonzero(result) == {"identity": 2, "transpose_pairs": 1, "dead_nodes": 1}
    assert_same_outputs(model, result.model, FEED)


def test_the_model_passed_in_is_not_changed() -> None:
    model = simple_model([helper.make_node("Identity", ["a"], ["b"])])
    before = model.SerializeToString()
    result = RemoveRedundantNodesPass()(model)
    assert result.modified
    assert result.model is not model
    assert model.SerializeToString() == before


def test_renames_reach_if_branches() -> None:
    def branch(name: str, op: str) -> onnx.GraphProto:
        # Reads the outer value "v", which an Identity produces.
        body = [helper.make_node(op, ["v", "x"], [f"{name}_out"])]
        return helper.make_graph(body, name, [], [value(f"{name}_out", SHAPE)])

    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Identity", ["a"], ["v"]),
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "threshold"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", "Add"), else_branch=branch("else", "Mul")),
    ]
    threshold = tensor("threshold", np.array(2.0, np.float32))
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)], [threshold])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "ReduceSum", "Greater", "If"]
    assert nonzero(result) == {"identity": 1}
    graph_of_if = result.model.graph.node[3]
    for attr in graph_of_if.attribute:
        assert list(attr.g.node[0].input) == ["a", "x"]
    seeds = range(4)
    taken = {bool(random_inputs(model, FEED, seed=seed)["x"].sum() > 2.0) for seed in seeds}
    assert taken == {True, False}, "the seeds must take both branches"
    for seed in seeds:
        assert_same_outputs(model, result.model, FEED, seed=seed)


def test_identity_inside_a_branch_is_left_alone() -> None:
    def branch(name: str) -> onnx.GraphProto:
        body = [helper.make_node("Identity", ["a"], [f"{name}_out"])]
        return helper.make_graph(body, name, [], [value(f"{name}_out", SHAPE)])

    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
        helper.make_node("If", ["cond"], ["y"], then_branch=branch("then"), else_branch=branch("else")),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    assert not run_pass(model).modified


def test_readers_placed_before_the_renamed_output_are_renamed_too() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Neg", ["a"], ["z"]),  # reads `a` before the Identity that renames it
        helper.make_node("Identity", ["a"], ["y"]),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE), value("z", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert list(result.model.graph.node[1].input) == ["y"]
    assert_same_outputs(model, result.model, FEED)


def test_long_chain_collapses_in_one_sweep() -> None:
    nodes, previous = [], "x"
    for i in range(400):
        nodes += [helper.make_node("Identity", [previous], [f"i{i}"]), helper.make_node("Relu", [f"i{i}"], [f"r{i}"])]
        previous = f"r{i}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu"] * 400
    assert result.stats["identity"] == 401
    assert_same_outputs(model, result.model, FEED)
