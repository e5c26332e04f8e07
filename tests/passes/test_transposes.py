"""Tests of PushTransposesPass: one graph per rule, plus the cases where nothing may change."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.graph import attribute, declared_dims
from graphopt.passes.base import PassResult
from graphopt.passes.transposes import STAT_KEYS, PushTransposesPass
from tests.conftest import assert_same_outputs, make_model, op_types, tensor, value

SHAPE = (2, 4, 5, 3)  # NHWC
FEED = {"x": SHAPE}
TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]


def run_pass(model: onnx.ModelProto) -> PassResult:
    """Runs the pass, checks the result is a valid model and that a second run changes nothing."""
    result = PushTransposesPass()(model)
    onnx.checker.check_model(result.model, full_check=True)
    assert set(result.stats) == set(STAT_KEYS)
    assert all(isinstance(count, int) for count in result.stats.values())
    assert result.modified == any(result.stats.values())
    again = PushTransposesPass()(result.model)
    assert not again.modified, again.stats
    return result


def counts(pushed: int = 0, cancelled: int = 0, merged: int = 0) -> dict[str, int]:
    return {"pushed": pushed, "cancelled": cancelled, "merged": merged}


def positive(shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)


def sandwich(
    middle: Sequence[onnx.NodeProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    last: Sequence[int] = TO_NHWC,
    opset: int = 17,
    elem_type: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """x → Transpose ``first`` (to NCHW) → t, ``middle`` from t to m, m → Transpose ``last`` → b → Neg → y.

    Shapes are inferred into ``value_info``, as exported models carry them.
    """
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW, name="first"),
        *middle,
        helper.make_node("Transpose", ["m"], ["b"], perm=list(last), name="last"),
        helper.make_node("Neg", ["b"], ["y"], name="neg"),
    ]
    shape = np.empty(SHAPE).transpose(TO_NCHW).transpose(last).shape
    model = make_model(nodes, [value("x", SHAPE, elem_type)], [value("y", shape)], initializers, opset=opset)
    return onnx.shape_inference.infer_shapes(model)


def test_inverse_transposes_around_relu_vanish() -> None:
    model = sandwich([helper.make_node("Relu", ["t"], ["m"], name="relu")])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Neg"]
    assert result.stats == counts(pushed=1, cancelled=1)
    relu = result.model.graph.node[0]
    assert (relu.name, list(relu.input), list(relu.output)) == ("relu", ["x"], ["b"])
    assert {v.name for v in result.model.graph.value_info} == {"b"}
    assert_same_outputs(model, result.model, FEED)


@pytest.mark.parametrize(
    "node",
    [
        helper.make_node("Sigmoid", ["t"], ["m"]),
        helper.make_node("LeakyRelu", ["t"], ["m"], alpha=0.3),
        helper.make_node("HardSwish", ["t"], ["m"]),
        helper.make_node("Erf", ["t"], ["m"]),
        helper.make_node("Softplus", ["t"], ["m"]),
        helper.make_node("Floor", ["t"], ["m"]),
        helper.make_node("Identity", ["t"], ["m"]),
        helper.make_node("Clip", ["t", "lo", "hi"], ["m"]),
    ],
    ids=lambda node: node.op_type,
)
def test_unary_ops_let_the_transpose_through(node: onnx.NodeProto) -> None:
    bounds = [tensor("lo", np.array(-0.7, np.float32)), tensor("hi", np.array(0.9, np.float32))]
    model = sandwich([node], bounds if node.op_type == "Clip" else [])
    result = run_pass(model)
    assert op_types(result.model) == [node.op_type, "Neg"]
    assert result.stats == counts(pushed=1, cancelled=1)
    assert [t.name for t in result.model.graph.initializer] == [t.name for t in model.graph.initializer]
    assert_same_outputs(model, result.model, FEED)


@pytest.mark.parametrize(
    ("op", "shape", "constant_first", "transposed_shape"),
    [
        ("Add", (3, 1, 1), False, (1, 1, 1, 3)),  # a per-channel bias in NCHW
        ("Mul", (1, 5), False, (1, 1, 5, 1)),
        ("Max", (4, 1), False, (1, 4, 1, 1)),
        ("Div", (2, 3, 4, 5), True, (2, 4, 5, 3)),
        ("Pow", (3, 1, 1), True, (1, 1, 1, 3)),
        ("Sub", (), True, None),  # a scalar needs no change
        ("Sub", (1, 1), False, None),
    ],
)
def test_constant_operand_is_transposed_with_the_op(
    op: str,
    shape: tuple[int, ...],
    constant_first: bool,
    transposed_shape: tuple[int, ...] | None,
    rng: np.random.Generator,
) -> None:
    inputs = ["c", "t"] if constant_first else ["t", "c"]
    model = sandwich([helper.make_node(op, inputs, ["m"], name="op")], [tensor("c", positive(shape, rng))])
    result = run_pass(model)
    assert op_types(result.model) == [op, "Neg"]
    assert result.stats == counts(pushed=1, cancelled=1)
    (init,) = result.model.graph.initializer
    node = result.model.graph.node[0]
    assert node.name == "op"
    if transposed_shape is None:
        assert (init.name, tuple(init.dims)) == ("c", shape)
    else:
        assert (init.name, tuple(init.dims)) == ("c_transposed", transposed_shape)
    assert list(node.input) == [init.name, "x"] if constant_first else ["x", init.name]
    assert_same_outputs(model, result.model, FEED)


def test_constant_node_operand_becomes_an_initializer(rng: np.random.Generator) -> None:
    bias = helper.make_node("Constant", [], ["c"], value=onnx.numpy_helper.from_array(positive((3, 1, 1), rng)))
    model = sandwich([bias, helper.make_node("Add", ["t", "c"], ["m"])])
    result = run_pass(model)
    assert op_types(result.model) == ["Add", "Neg"]
    assert result.stats == counts(pushed=1, cancelled=1)
    assert [(t.name, tuple(t.dims)) for t in result.model.graph.initializer] == [("c_transposed", (1, 1, 1, 3))]
    assert_same_outputs(model, result.model, FEED)


def test_constant_with_another_reader_is_kept(rng: np.random.Generator) -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Mul", ["t", "c"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=TO_NHWC),
        helper.make_node("Neg", ["c"], ["z"]),
    ]
    model = make_model(
        nodes, [value("x", SHAPE)], [value("y", SHAPE), value("z", (3, 1, 1))], [tensor("c", positive((3, 1, 1), rng))]
    )
    result = run_pass(model)
    assert op_types(result.model) == ["Mul", "Neg"]
    assert [t.name for t in result.model.graph.initializer] == ["c", "c_transposed"]
    assert_same_outputs(model, result.model, FEED)


def test_constant_read_twice_in_a_chain_is_transposed_once(rng: np.random.Generator) -> None:
    middle = [helper.make_node("Add", ["t", "c"], ["a"]), helper.make_node("Mul", ["c", "a"], ["m"])]
    model = sandwich(middle, [tensor("c", positive((3, 1, 1), rng))])
    result = run_pass(model)
    assert op_types(result.model) == ["Add", "Mul", "Neg"]
    assert result.stats == counts(pushed=2, cancelled=1)
    assert [t.name for t in result.model.graph.initializer] == ["c_transposed"]
    assert_same_outputs(model, result.model, FEED)


def test_constant_that_is_also_the_transposed_value_stays(rng: np.random.Generator) -> None:
    nodes = [
        helper.make_node("Transpose", ["c"], ["t"], perm=[1, 0]),
        helper.make_node("Add", ["t", "c"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=[1, 0]),
    ]
    model = make_model(nodes, [], [value("y", (3, 3))], [tensor("c", positive((3, 3), rng))])
    result = run_pass(model)
    assert op_types(result.model) == ["Add"]
    assert list(result.model.graph.node[0].input) == ["c", "c_transposed"]
    assert [t.name for t in result.model.graph.initializer] == ["c", "c_transposed"]
    assert_same_outputs(model, result.model, {})


def test_where_with_constant_condition_and_branch(rng: np.random.Generator) -> None:
    initializers = [
        tensor("cond", np.array([True, False, True]).reshape(3, 1, 1)),
        tensor("other", positive((5,), rng)),
    ]
    model = sandwich([helper.make_node("Where", ["cond", "t", "other"], ["m"])], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Where", "Neg"]
    assert result.stats == counts(pushed=1, cancelled=1)
    assert [t.name for t in result.model.graph.initializer] == ["cond_transposed", "other_transposed"]
    assert_same_outputs(model, result.model, FEED)


def test_comparison_logic_and_cast_chain(rng: np.random.Generator) -> None:
    middle = [
        helper.make_node("Greater", ["t", "threshold"], ["g"]),
        helper.make_node("Not", ["g"], ["n"]),
        helper.make_node("And", ["n", "mask"], ["a"]),
        helper.make_node("Cast", ["a"], ["m"], to=TensorProto.FLOAT),
    ]
    initializers = [
        tensor("threshold", rng.uniform(-0.5, 0.5, size=(3, 1, 1)).astype(np.float32)),
        tensor("mask", np.array([[True], [False], [True], [True]])),
    ]
    model = sandwich(middle, initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Greater", "Not", "And", "Cast", "Neg"]
    assert result.stats == counts(pushed=4, cancelled=1)
    assert_same_outputs(model, result.model, FEED)


@pytest.mark.parametrize(("op", "axis", "moved_axis"), [("Softmax", -1, 2), ("LogSoftmax", 1, 3)])
def test_softmax_axis_is_remapped(op: str, axis: int, moved_axis: int) -> None:
    model = sandwich([helper.make_node(op, ["t"], ["m"], axis=axis)])
    result = run_pass(model)
    assert op_types(result.model) == [op, "Neg"]
    assert result.stats == counts(pushed=1, cancelled=1)
    assert attribute(result.model.graph.node[0], "axis") == moved_axis
    assert_same_outputs(model, result.model, FEED)


def test_softmax_before_opset_13_stays() -> None:
    # Before opset 13 Softmax normalizes over all axes from `axis` on, flattened.
    model = sandwich([helper.make_node("Softmax", ["t"], ["m"], axis=3)], opset=12)
    result = run_pass(model)
    assert not result.modified
    assert result.model == model


def test_chain_ending_at_another_permutation_merges_into_one_transpose(rng: np.random.Generator) -> None:
    middle = [
        helper.make_node("Relu", ["t"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "scale"], ["s"], name="mul"),
        helper.make_node("Sigmoid", ["s"], ["m"], name="sigmoid"),
    ]
    swap_hw = [0, 1, 3, 2]
    model = sandwich(middle, [tensor("scale", positive((3, 1, 1), rng))], last=swap_hw)
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Mul", "Sigmoid", "Transpose", "Neg"]
    assert [node.name for node in result.model.graph.node] == ["relu", "mul", "sigmoid", "last", "neg"]
    assert result.stats == counts(pushed=3, merged=1)
    transpose = result.model.graph.node[3]
    assert (list(transpose.input), list(transpose.output)) == (["m"], ["b"])
    assert attribute(transpose, "perm") == [TO_NCHW[axis] for axis in swap_hw]
    # The moved ops' outputs are now NHWC, and their value_info says so.
    shapes = {v.name: declared_dims(v) for v in result.model.graph.value_info}
    assert shapes == {"r": list(SHAPE), "s": list(SHAPE), "m": list(SHAPE), "b": [2, 3, 5, 4]}
    assert_same_outputs(model, result.model, FEED)


def test_merged_transpose_moves_on_to_the_next_one() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Relu", ["t"], ["r"]),
        helper.make_node("Transpose", ["r"], ["u"], perm=[0, 1, 3, 2]),
        helper.make_node("Exp", ["u"], ["e"]),
        # [0, 3, 2, 1] undoes the two above (and is its own inverse).
        helper.make_node("Transpose", ["e"], ["y"], perm=[0, 3, 2, 1]),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu", "Exp"]
    assert result.stats == counts(pushed=2, cancelled=1, merged=1)
    assert_same_outputs(model, result.model, FEED)


def test_graph_output_at_the_end_of_the_chain_keeps_its_name() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Tanh", ["t"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=TO_NHWC),
    ]
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Tanh"]
    assert (list(result.model.graph.node[0].input), list(result.model.graph.node[0].output)) == (["x"], ["y"])
    assert [v.name for v in result.model.graph.output] == ["y"]
    assert_same_outputs(model, result.model, FEED)


def test_transposes_without_perm_take_the_rank_from_shape_inference() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"]),
        helper.make_node("Exp", ["t"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"]),
    ]
    model = make_model(nodes, [value("x", (2, 3, 4))], [value("y", (2, 3, 4))])
    result = run_pass(model)
    assert op_types(result.model) == ["Exp"]
    assert result.stats == counts(pushed=1, cancelled=1)
    assert_same_outputs(model, result.model, {"x": (2, 3, 4)})


def test_many_pairs_go_in_one_call() -> None:
    nodes, previous = [], "x"
    for i in range(100):
        nodes += [
            helper.make_node("Transpose", [previous], [f"t{i}"], perm=TO_NCHW),
            helper.make_node("Relu", [f"t{i}"], [f"r{i}"]),
            helper.make_node("Transpose", [f"r{i}"], [f"n{i}"], perm=TO_NHWC),
        ]
        previous = f"n{i}"
    nodes.append(helper.make_node("Neg", [previous], ["y"]))
    model = make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Relu"] * 100 + ["Neg"]
    assert result.stats == counts(pushed=100, cancelled=100)
    assert_same_outputs(model, result.model, FEED)


def _no_second_transpose() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Relu", ["t"], ["r"]),
        helper.make_node("Flatten", ["r"], ["y"]),
    ]
    return make_model(nodes, [value("x", SHAPE)], [value("y", (2, 60))])


def _middle_read_twice() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Relu", ["t"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=TO_NHWC),
        helper.make_node("Neg", ["m"], ["z"]),
    ]
    return make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE), value("z", (2, 3, 4, 5))])


def _transposed_value_read_twice() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Relu", ["t"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=TO_NHWC),
        helper.make_node("Neg", ["t"], ["z"]),
    ]
    return make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE), value("z", (2, 3, 4, 5))])


def _middle_is_an_output() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Relu", ["t"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=TO_NHWC),
    ]
    return make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE), value("m", (2, 3, 4, 5))])


def _operand(*, listed_as_input: bool, initializer: bool) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Add", ["t", "bias"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=TO_NHWC),
    ]
    inputs = [value("x", SHAPE)] + ([value("bias", (3, 1, 1))] if listed_as_input else [])
    initializers = [tensor("bias", np.ones((3, 1, 1), np.float32))] if initializer else []
    return make_model(nodes, inputs, [value("y", SHAPE)], initializers)


def _operand_of_higher_rank() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
        helper.make_node("Add", ["t", "c"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=[0, 2, 1]),
    ]
    c = tensor("c", np.ones((2, 3, 4), np.float32))
    return make_model(nodes, [value("x", (4, 3))], [value("y", (2, 4, 3))], [c])


def _adjacent_pair() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=TO_NCHW),
        helper.make_node("Transpose", ["t"], ["y"], perm=TO_NHWC),
    ]
    return make_model(nodes, [value("x", SHAPE)], [value("y", SHAPE)])


def _unknown_rank() -> onnx.ModelProto:
    # The Reshape's target shape is an input of unknown length, so "v" has no known rank.
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["v"]),
        helper.make_node("Transpose", ["v"], ["t"]),
        helper.make_node("Relu", ["t"], ["m"]),
        helper.make_node("Transpose", ["m"], ["w"]),
        helper.make_node("ReduceSum", ["w"], ["y"], keepdims=0),
    ]
    inputs = [value("x", SHAPE), value("shape", ("rank",), TensorProto.INT64)]
    return make_model(nodes, inputs, [value("y", ())])


@pytest.mark.parametrize(
    "build",
    [
        _no_second_transpose,
        _middle_read_twice,
        _transposed_value_read_twice,
        _middle_is_an_output,
        lambda: _operand(listed_as_input=True, initializer=False),
        lambda: _operand(listed_as_input=True, initializer=True),
        _operand_of_higher_rank,
        _adjacent_pair,
        _unknown_rank,
    ],
    ids=[
        "no_second_transpose",
        "middle_read_twice",
        "transposed_value_read_twice",
        "middle_is_an_output",
        "operand_is_an_input",
        "operand_is_an_overridable_initializer",
        "operand_of_higher_rank",
        "adjacent_pair",
        "unknown_rank",
    ],
)
def test_nothing_changes_without_a_transpose_to_meet(build: Callable[[], onnx.ModelProto]) -> None:
    model = build()
    result = run_pass(model)
    assert not result.modified
    assert result.stats == counts()
    assert result.model == model


def test_empty_graph() -> None:
    model = make_model([], [value("x", SHAPE)], [value("x", SHAPE)])
    result = run_pass(model)
    assert not result.modified
    assert result.stats == counts()
    assert result.model == model


def test_the_pass_describes_itself() -> None:
    assert PushTransposesPass.name == "push_transposes"
    assert repr(PushTransposesPass()) == "PushTransposesPass()"
    assert PushTransposesPass.description().startswith("Moves Transposes down")
