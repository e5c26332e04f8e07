"""Tests of FoldBatchNormPass: Conv → BatchNormalization folded, and the cases that must stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphopt.passes.base import PassResult
from graphopt.passes.batch_norm import STAT_KEYS, FoldBatchNormPass
from graphopt.passes.redundancy import RemoveRedundantNodesPass
from tests.conftest import assert_same_outputs, make_model, op_types, tensor, value

DETECTOR = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector" / "model.onnx"

X_SHAPE = (1, 3, 8, 8)
Y_SHAPE = (1, 4, 8, 8)
FEED = {"x": X_SHAPE}

# Folding re-associates float32 arithmetic: the Conv sums (W·s)·x instead of
# scaling the sum of W·x afterwards. With onnxruntime's own Conv+BN fusion
# turned off the two differ by up to 6e-6 on outputs up to 22 (a few float32
# ulps); with it on (as here) onnxruntime folds the original the same way and
# the difference is 0. atol covers outputs near zero, rtol the large ones; a
# wrong fold (a channel off, epsilon lost) is off by 1e-3 or more.
RTOL, ATOL = 1e-5, 1e-4
# float16 keeps 11 significant bits: with onnxruntime's fusion off the outputs
# (up to 29) differ by one ulp, 2^-6 = 0.016, from rounding the folded weights.
RTOL16, ATOL16 = 1e-2, 1e-2


def run_pass(model: onnx.ModelProto) -> PassResult:
    """Runs the pass, checks the result is a valid model and that a second run changes nothing."""
    result = FoldBatchNormPass()(model)
    onnx.checker.check_model(result.model, full_check=True)
    assert set(result.stats) == set(STAT_KEYS)
    assert result.modified == bool(result.stats["folded"])
    again = FoldBatchNormPass()(result.model)
    assert not again.modified, again.stats
    assert again.stats == {"folded": 0, "kept": result.stats["kept"]}
    return result


def bn_parameters(prefix: str, channels: int, rng: np.random.Generator, dtype=np.float32) -> list[onnx.TensorProto]:
    """scale, B, mean, var of a BatchNormalization, none near zero."""
    arrays = {
        "scale": rng.uniform(0.5, 1.5, channels),
        "B": rng.normal(size=channels),
        "mean": rng.normal(size=channels),
        "var": rng.uniform(0.5, 1.5, channels),
    }
    return [tensor(f"{prefix}.{key}", array.astype(dtype)) for key, array in arrays.items()]


def batch_norm(source: str, prefix: str, output: str, **attrs: int) -> onnx.NodeProto:
    inputs = [source, *(f"{prefix}.{key}" for key in ("scale", "B", "mean", "var"))]
    return helper.make_node("BatchNormalization", inputs, [output], name=prefix, epsilon=1e-3, **attrs)


def conv(output: str = "c", *, bias: bool = True, weight: str = "conv.weight", name: str = "conv") -> onnx.NodeProto:
    inputs = ["x", weight, "conv.bias"] if bias else ["x", weight]
    return helper.make_node("Conv", inputs, [output], name=name, pads=[1, 1, 1, 1])


def conv_weights(rng: np.random.Generator, *, bias: bool = True, dtype=np.float32) -> list[onnx.TensorProto]:
    weights = [tensor("conv.weight", rng.normal(size=(4, 3, 3, 3)).astype(dtype))]
    if bias:
        weights.append(tensor("conv.bias", rng.normal(size=4).astype(dtype)))
    return weights


@pytest.mark.parametrize("bias", [True, False], ids=["with_bias", "without_bias"])
def test_conv_then_batch_norm_is_folded(rng: np.random.Generator, bias: bool) -> None:
    nodes = [conv(bias=bias), batch_norm("c", "bn", "y")]
    initializers = [*conv_weights(rng, bias=bias), *bn_parameters("bn", 4, rng)]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Conv"]
    assert result.stats == {"folded": 1, "kept": 0}
    folded = result.model.graph.node[0]
    assert folded.name == "conv"
    assert list(folded.input) == ["x", "conv.weight", "conv.bias"]
    assert list(folded.output) == ["y"]
    assert [t.name for t in result.model.graph.initializer] == ["conv.weight", "conv.bias"]
    assert_same_outputs(model, result.model, FEED, rtol=RTOL, atol=ATOL)


def test_folded_conv_keeps_its_output_when_the_batch_norm_output_is_not_a_graph_output(
    rng: np.random.Generator,
) -> None:
    nodes = [conv(), batch_norm("c", "bn", "b"), helper.make_node("Relu", ["b"], ["y"], name="relu")]
    initializers = [*conv_weights(rng), *bn_parameters("bn", 4, rng)]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers)
    model.graph.value_info.extend([value("c", Y_SHAPE), value("b", Y_SHAPE)])
    result = run_pass(model)
    assert op_types(result.model) == ["Conv", "Relu"]
    assert [list(node.output) for node in result.model.graph.node] == [["c"], ["y"]]
    assert [v.name for v in result.model.graph.value_info] == ["c"]
    assert_same_outputs(model, result.model, FEED, rtol=RTOL, atol=ATOL)


def test_conv_transpose_then_batch_norm_is_folded(rng: np.random.Generator) -> None:
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w"], ["c"], name="deconv", strides=[2, 2]),
        batch_norm("c", "bn", "y"),
    ]
    initializers = [tensor("w", rng.normal(size=(3, 4, 2, 2)).astype(np.float32)), *bn_parameters("bn", 4, rng)]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", (1, 4, 16, 16))], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["ConvTranspose"]
    assert list(result.model.graph.node[0].input) == ["x", "w", "w.bias"]
    assert_same_outputs(model, result.model, FEED, rtol=RTOL, atol=ATOL)


def test_two_batch_norms_after_one_conv_are_both_folded(rng: np.random.Generator) -> None:
    nodes = [conv(), batch_norm("c", "bn1", "b"), batch_norm("b", "bn2", "y")]
    initializers = [*conv_weights(rng), *bn_parameters("bn1", 4, rng), *bn_parameters("bn2", 4, rng)]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Conv"]
    assert result.stats == {"folded": 2, "kept": 0}
    assert_same_outputs(model, result.model, FEED, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("reader", ["node", "graph_output"])
def test_batch_norm_stays_when_the_conv_output_has_another_reader(rng: np.random.Generator, reader: str) -> None:
    nodes = [conv(), batch_norm("c", "bn", "b")]
    outputs = [value("y", Y_SHAPE)]
    if reader == "node":
        nodes.append(helper.make_node("Add", ["b", "c"], ["y"], name="add"))
    else:
        nodes[1].output[0] = "y"
        outputs.append(value("c", Y_SHAPE))
    model = make_model(nodes, [value("x", X_SHAPE)], outputs, [*conv_weights(rng), *bn_parameters("bn", 4, rng)])
    result = run_pass(model)
    assert not result.modified
    assert result.stats == {"folded": 0, "kept": 1}
    assert result.model == model


def test_batch_norm_without_a_conv_before_it_stays(rng: np.random.Generator) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), batch_norm("r", "bn", "y")]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", X_SHAPE)], bn_parameters("bn", 3, rng))
    result = run_pass(model)
    assert not result.modified
    assert result.stats == {"folded": 0, "kept": 1}
    assert op_types(result.model) == ["Relu", "BatchNormalization"]


@pytest.mark.parametrize("overridable", ["bn.scale", "conv.weight"])
def test_batch_norm_stays_when_a_parameter_is_a_graph_input(rng: np.random.Generator, overridable: str) -> None:
    # An initializer also listed as a graph input is a default the caller may override: not a constant.
    initializers = [*conv_weights(rng), *bn_parameters("bn", 4, rng)]
    shape = next(list(t.dims) for t in initializers if t.name == overridable)
    inputs = [value("x", X_SHAPE), value(overridable, shape)]
    model = make_model([conv(), batch_norm("c", "bn", "y")], inputs, [value("y", Y_SHAPE)], initializers)
    result = run_pass(model)
    assert not result.modified
    assert result.stats == {"folded": 0, "kept": 1}


def test_batch_norm_in_training_mode_stays(rng: np.random.Generator) -> None:
    nodes = [
        conv(),
        helper.make_node(
            "BatchNormalization",
            ["c", "bn.scale", "bn.B", "bn.mean", "bn.var"],
            ["y", "running_mean", "running_var"],
            training_mode=1,
        ),
    ]
    initializers = [*conv_weights(rng), *bn_parameters("bn", 4, rng)]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers, opset=15)
    result = run_pass(model)
    assert not result.modified
    assert result.stats == {"folded": 0, "kept": 1}


def test_parameters_from_constant_nodes_are_folded_and_the_constants_removed(rng: np.random.Generator) -> None:
    constants = [helper.make_node("Constant", [], [t.name], value=t) for t in bn_parameters("bn", 4, rng)]
    nodes = [*constants, conv(bias=False), batch_norm("c", "bn", "y")]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], conv_weights(rng, bias=False))
    result = run_pass(model)
    assert op_types(result.model) == ["Conv"]
    assert [t.name for t in result.model.graph.initializer] == ["conv.weight", "conv.bias"]
    assert_same_outputs(model, result.model, FEED, rtol=RTOL, atol=ATOL)


def test_a_weight_another_conv_reads_is_kept_and_the_folded_one_renamed(rng: np.random.Generator) -> None:
    nodes = [
        conv("c1", bias=False, name="conv1"),
        batch_norm("c1", "bn", "b"),
        conv("c2", bias=False, name="conv2"),
        helper.make_node("Add", ["b", "c2"], ["y"], name="add"),
    ]
    initializers = [*conv_weights(rng, bias=False), *bn_parameters("bn", 4, rng)]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Conv", "Conv", "Add"]
    first, second = result.model.graph.node[:2]
    assert list(first.input) == ["x", "conv.weight.folded", "conv.bias"]
    assert list(second.input) == ["x", "conv.weight"]
    assert_same_outputs(model, result.model, FEED, rtol=RTOL, atol=ATOL)


def test_dynamic_input_dims(rng: np.random.Generator) -> None:
    nodes = [conv(), batch_norm("c", "bn", "y")]
    initializers = [*conv_weights(rng), *bn_parameters("bn", 4, rng)]
    model = make_model(nodes, [value("x", ["N", 3, "H", "W"])], [value("y", ["N", 4, "H", "W"])], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Conv"]
    assert [v.name for v in result.model.graph.input] == ["x"]
    assert result.model.graph.input[0] == model.graph.input[0]
    for shape in [(1, 3, 8, 8), (3, 3, 5, 11)]:
        assert_same_outputs(model, result.model, {"x": shape}, rtol=RTOL, atol=ATOL)


def test_float16_is_folded_into_float16_weights(rng: np.random.Generator) -> None:
    # onnx-optimizer emits the float16 arithmetic as nodes; they are evaluated, not left in the graph.
    nodes = [conv(), batch_norm("c", "bn", "y")]
    initializers = [*conv_weights(rng, dtype=np.float16), *bn_parameters("bn", 4, rng, np.float16)]
    model = make_model(
        nodes,
        [value("x", X_SHAPE, TensorProto.FLOAT16)],
        [value("y", Y_SHAPE, TensorProto.FLOAT16)],
        initializers,
    )
    result = run_pass(model)
    assert op_types(result.model) == ["Conv"]
    assert [(t.name, t.data_type) for t in result.model.graph.initializer] == [
        ("conv.weight", TensorProto.FLOAT16),
        ("conv.bias", TensorProto.FLOAT16),
    ]
    assert_same_outputs(model, result.model, FEED, rtol=RTOL16, atol=ATOL16)


def test_if_branches_reading_the_batch_norm_output_read_the_conv(rng: np.random.Generator) -> None:
    def branch(name: str, op: str) -> onnx.GraphProto:
        body = [helper.make_node(op, ["b"], [f"{name}_out"])]
        return helper.make_graph(body, name, [], [value(f"{name}_out", Y_SHAPE)])

    nodes = [
        conv(),
        batch_norm("c", "bn", "b"),
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "threshold"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", "Relu"), else_branch=branch("else", "Neg")),
    ]
    initializers = [*conv_weights(rng), *bn_parameters("bn", 4, rng), tensor("threshold", np.array(0.0, np.float32))]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers)
    result = run_pass(model)
    assert op_types(result.model) == ["Conv", "ReduceSum", "Greater", "If"]
    for attr in result.model.graph.node[3].attribute:
        assert list(attr.g.node[0].input) == ["c"]
    for seed in range(4):
        assert_same_outputs(model, result.model, FEED, rtol=RTOL, atol=ATOL, seed=seed)


def test_model_fields_and_names_are_kept(rng: np.random.Generator) -> None:
    nodes = [conv(), batch_norm("c", "bn", "b"), helper.make_node("Relu", ["b"], ["y"])]
    initializers = [*conv_weights(rng), *bn_parameters("bn", 4, rng)]
    model = make_model(nodes, [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers)
    model.producer_name, model.doc_string = "exporter", "a model"
    onnx.helper.set_model_props(model, {"author": "someone"})
    result = run_pass(model)
    assert result.model.producer_name == "exporter"
    assert result.model.doc_string == "a model"
    assert [(p.key, p.value) for p in result.model.metadata_props] == [("author", "someone")]
    assert result.model.opset_import == model.opset_import
    assert result.model.ir_version == model.ir_version
    assert [node.name for node in result.model.graph.node] == ["conv", ""]
    assert not result.model.graph.node[1].HasField("name")


def test_graph_without_batch_norm_is_unchanged() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", X_SHAPE)], [value("y", X_SHAPE)])
    result = run_pass(model)
    assert not result.modified
    assert result.stats == {"folded": 0, "kept": 0}
    assert result.model == model


def test_the_model_passed_in_is_not_changed(rng: np.random.Generator) -> None:
    initializers = [*conv_weights(rng), *bn_parameters("bn", 4, rng)]
    model = make_model([conv(), batch_norm("c", "bn", "y")], [value("x", X_SHAPE)], [value("y", Y_SHAPE)], initializers)
    before = model.SerializeToString()
    assert FoldBatchNormPass()(model).modified
    assert model.SerializeToString() == before


def test_the_detector_folds_its_five_batch_norms() -> None:
    model = RemoveRedundantNodesPass()(onnx.load(DETECTOR)).model
    result = run_pass(model)
    assert result.stats == {"folded": 5, "kept": 0}
    assert "BatchNormalization" not in op_types(result.model)
    assert op_types(result.model).count("Conv") == 7
    assert [v.name for v in result.model.graph.output] == [v.name for v in model.graph.output]
    convs = [node for node in result.model.graph.node if node.op_type == "Conv"]
    assert [list(node.input[1:]) for node in convs[:5]] == [[f"conv{i}.weight", f"conv{i}.bias"] for i in range(1, 6)]
    assert not any(t.name.startswith(("bn", "_v_")) for t in result.model.graph.initializer)
    # Probabilities in [0, 1] after a Softmax, so RTOL and ATOL (float32 rounding, see above) are generous.
    assert_same_outputs(model, result.model, {"image": (1, 3, 160, 96)}, rtol=RTOL, atol=ATOL)
