"""Tests of NmsOnLogitsPass: a detector head's NMS on log-odds picks the cells the probabilities pick, and keeps
picking them in float16, where probabilities near 1 all round to 1."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import graphopt
from graphopt.errors import ConfigError, PassRequirementError, PreconditionError
from graphopt.passes.base import PassResult
from graphopt.passes.fp16 import convert_to_float16
from graphopt.passes.nms_logits import PRECISION_KEY, RESAMPLINGS, STAT_KEYS, NmsOnLogitsPass, log_odds
from graphopt.verify import run_onnxruntime
from tests.conftest import make_model, op_types, tensor, value

GRID = 8  # the score map is GRID × GRID cells
K = 5  # TopK's k
THRESHOLD = 0.9
SEEDS = range(3)

Outputs = Mapping[str, np.ndarray]


def node(op: str, inputs: list[str], output: str, **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def interpolation(rows: int, sources: int, *, zero_rows: int = 0) -> np.ndarray:
    """A (rows + zero_rows) × sources linear-interpolation matrix: weights (1 − f, f), half-pixel centres."""
    matrix = np.zeros((rows + zero_rows, sources), np.float32)
    for r in range(rows):
        s = min(max((r + 0.5) * sources / rows - 0.5, 0.0), sources - 1.0)
        i = int(np.floor(s))
        f = s - i
        matrix[r, i] += 1 - f
        matrix[r, min(i + 1, sources - 1)] += f
    return matrix


def three_taps(size: int) -> np.ndarray:
    """A size × size smoothing matrix with weights (¼, ½, ¼): three non-zeros per inner row."""
    matrix = np.zeros((size, size), np.float32)
    for r in range(size):
        for offset, weight in zip((-1, 0, 1), (0.25, 0.5, 0.25), strict=True):
            matrix[r, min(max(r + offset, 0), size - 1)] += weight
    return matrix


def head(
    *,
    classes: int = 2,
    klass: int = 1,
    sigmoid: bool = False,
    matrix: np.ndarray | None = None,
    matrix_first: bool = True,
    columns: np.ndarray | None = None,
    mask: bool = False,
    opset: int = 17,
) -> onnx.ModelProto:
    """A detector head: class probability → [resampling] → 3×3 max-pool NMS → threshold → TopK.

    ``columns`` resamples the columns after ``matrix`` resampled the rows;
    ``mask`` selects the peaks as ``value × Cast(peak)`` instead of a ``Where``.

    Outputs ``scores`` (the K best peak probabilities, 0 where below the
    threshold) and their flat cell ``indices``.
    """
    initializers = [
        tensor("threshold", np.array(THRESHOLD, np.float32)),
        tensor("minus_inf", np.array(-np.inf, np.float32)),
        tensor("zero", np.array(0.0, np.float32)),
        tensor("k", np.array([K], np.int64)),
    ]
    if sigmoid:
        nodes = [node("Sigmoid", ["x"], "probability")]
        channels = 1
    else:
        nodes = [
            node("Softmax", ["x"], "classes", axis=1),
            node("Gather", ["classes", "class"], "class_probability", axis=1),
            node("Unsqueeze", ["class_probability", "one"], "probability"),
        ]
        initializers += [tensor("class", np.array(klass, np.int64)), tensor("one", np.array([1], np.int64))]
        channels = classes
    grid, rows, cols = "probability", GRID, GRID
    if matrix is not None:
        inputs = ["resampling", "probability"] if matrix_first else ["probability", "resampling"]
        nodes.append(node("MatMul", inputs, "resampled"))
        initializers.append(tensor("resampling", matrix))
        grid = "resampled"
        rows, cols = (matrix.shape[0], GRID) if matrix_first else (GRID, matrix.shape[1])
    if columns is not None:
        nodes.append(node("MatMul", [grid, "resampling_columns"], "resampled_columns"))
        initializers.append(tensor("resampling_columns", columns))
        grid, cols = "resampled_columns", columns.shape[1]
    nodes += [
        node("MaxPool", [grid], "pooled", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Max", ["pooled", "threshold"], "floor"),
        node("GreaterOrEqual", [grid, "floor"], "peak"),
    ]
    if mask:
        nodes += [node("Cast", ["peak"], "peak_mask", to=TensorProto.FLOAT), node("Mul", [grid, "peak_mask"], "peaks")]
    else:
        nodes.append(node("Where", ["peak", grid, "minus_inf"], "peaks"))
    nodes += [
        node("Reshape", ["peaks", "flat"], "flat_peaks"),
        helper.make_node("TopK", ["flat_peaks", "k"], ["values", "indices"], name="topk"),
        node("GreaterOrEqual", ["values", "threshold"], "valid"),
        node("Where", ["valid", "values", "zero"], "scores"),
    ]
    initializers.append(tensor("flat", np.array([rows * cols], np.int64)))
    outputs = [value("scores", [K]), value("indices", [K], TensorProto.INT64)]
    return make_model(nodes, [value("x", [1, channels, GRID, GRID])], outputs, initializers, opset=opset)


def run_pass(model: onnx.ModelProto, **options: object) -> PassResult:
    """Runs the pass, checks the result is a valid model and that a second run changes nothing."""
    result = NmsOnLogitsPass(**options)(model)
    onnx.checker.check_model(result.model, full_check=True)
    assert set(result.stats) == set(STAT_KEYS)
    assert result.modified == any(result.stats.values())
    again = NmsOnLogitsPass(**options)(result.model)
    assert not again.modified, again.stats
    return result


def logits(seed: int, channels: int, *, scale: float = 3.0) -> np.ndarray:
    """Random non-zero logits; ×3 puts about a third of a two-class map above the threshold (log-odds > 2.2)
    while no margin comes near 16, where float32 probabilities would saturate at 1 and tie."""
    x = (np.random.default_rng(seed).normal(size=(1, channels, GRID, GRID)) * scale).astype(np.float32)
    assert np.all(x != 0)
    return x


def detections(outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
    """The reported (index, score) pairs above the threshold; below it the TopK order of −inf ties is arbitrary."""
    valid = outputs["scores"] > 0
    return outputs["indices"][valid], outputs["scores"][valid]


def assert_same_detections(before: onnx.ModelProto, after: onnx.ModelProto, x: np.ndarray, *, atol: float) -> None:
    expected_cells, expected_scores = detections(run_onnxruntime(before, {"x": x}))
    cells, scores = detections(run_onnxruntime(after, {"x": x}))
    assert len(expected_cells) >= 2, "the logits must give several detections"
    assert np.all(expected_scores < 1), "float32 probabilities saturated: the original itself sees ties"
    np.testing.assert_array_equal(cells, expected_cells)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=atol)


def initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))


def producer(model: onnx.ModelProto, output: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if output in n.output)


def test_two_class_softmax_head_runs_on_log_odds() -> None:
    model = head()
    result = run_pass(model)
    assert result.modified
    assert result.stats["sources"] == 1
    assert result.stats["exits"] == 1
    assert result.stats["resamplings"] == 0
    assert "Softmax" not in op_types(result.model)
    assert "ReduceLogSumExp" not in op_types(result.model)  # two classes: a plain logit difference
    # The reported scores come back through a Sigmoid pinned to float32, under the output's own name.
    sigmoids = [n for n in result.model.graph.node if n.op_type == "Sigmoid"]
    assert [list(n.output) for n in sigmoids] == [["scores"]]
    assert {p.key: p.value for p in sigmoids[0].metadata_props} == {PRECISION_KEY: "float32"}
    # Both uses of the threshold (the NMS floor and the validity test) compare log-odds now.
    floor, valid = producer(result.model, "floor"), producer(result.model, "valid")
    for threshold in (initializer(result.model, floor.input[1]), initializer(result.model, valid.input[1])):
        assert threshold.dtype == np.float32
        np.testing.assert_allclose(threshold, np.log(THRESHOLD / (1 - THRESHOLD)), rtol=1e-6)
    assert [v.name for v in result.model.graph.output] == ["scores", "indices"]
    for seed in SEEDS:
        assert_same_detections(model, result.model, logits(seed, 2), atol=1e-6)


@pytest.mark.parametrize("opset", [17, 18], ids=["axes_attribute", "axes_input"])
def test_three_class_softmax_uses_log_sum_exp(opset: int) -> None:
    model = head(classes=3, klass=1, opset=opset)
    result = run_pass(model)
    assert result.modified
    assert "Softmax" not in op_types(result.model)
    assert op_types(result.model).count("ReduceLogSumExp") == 1
    for seed in SEEDS:
        # Three classes spread the probability: a larger scale keeps several cells above the threshold.
        assert_same_detections(model, result.model, logits(seed, 3, scale=4.0), atol=1e-6)


@pytest.mark.parametrize("resampling", RESAMPLINGS)
@pytest.mark.parametrize("matrix_first", [True, False], ids=["rows", "columns"])
def test_linear_resampling_keeps_the_detections(matrix_first: bool, resampling: str) -> None:
    # Upsampling 8 → 15 with weights (1 − f, f), and two outputs that no source reaches (probability 0).
    matrix = interpolation(15, GRID, zero_rows=2)
    assert np.count_nonzero(matrix, axis=1).max() == 2
    model = head(matrix=matrix if matrix_first else matrix.T, matrix_first=matrix_first)
    result = run_pass(model, resampling=resampling)
    assert result.modified
    assert result.stats["resamplings"] >= 1
    # linear: p and 1 − p stacked through one product by the node's own matrix; linear_unstacked: one product
    # each; log_sum_exp: no product left.
    assert op_types(result.model).count("MatMul") == {"linear": 1, "linear_unstacked": 2}.get(resampling, 0)
    assert ("Pad" in op_types(result.model)) == (resampling == "linear")  # the unreached outputs' source
    # linear, float32 head, every entry resampled: the NMS runs on odds, the logarithm only at the exit.
    linear = resampling != "log_sum_exp"
    assert result.stats["on_odds"] == int(linear)
    assert op_types(result.model).count("Log") == (1 if linear else 0)
    assert "Softmax" not in op_types(result.model)
    for seed in SEEDS:
        assert_same_detections(model, result.model, logits(seed, 2), atol=1e-5)


@pytest.mark.parametrize(("rows", "cols", "first"), [(15, 30, "rows"), (30, 15, "columns")])
def test_separable_resampling_stacks_p_and_its_complement_in_the_cheaper_order(rows: int, cols: int,
                                                                                first: str) -> None:
    # Rows then columns, each with outputs no source reaches; p and 1 − p go through the first product together
    # (rows first costs rows·8·(8 + cols) multiply-adds a plane, columns first 8·cols·(8 + rows)).
    matrix, columns = interpolation(rows, GRID, zero_rows=2), interpolation(cols, GRID, zero_rows=3).T.copy()
    model = head(matrix=matrix, columns=columns)
    result = run_pass(model)
    assert result.stats["resamplings"] == 2 and result.stats["on_odds"] == 1
    types = op_types(result.model)
    assert types.count("MatMul") == 3 and types.count("Split") == 1 and types.count("Pad") == 1
    assert "Add" in types and types.count("Add") == 1  # 1 + e^∓m only: unreached outputs read the padded −inf
    split = next(n for n in result.model.graph.node if n.op_type == "Split")
    product = producer(result.model, split.input[0])
    matrix_side = 0 if first == "rows" else 1
    assert product.input[matrix_side] in {t.name for t in result.model.graph.initializer}
    for seed in SEEDS:
        assert_same_detections(model, result.model, logits(seed, 2), atol=1e-5)
    # Against float64: the log-odds of the resampled probabilities, unreached outputs at probability 0.
    x = logits(0, 2)
    margin = (x[0, 1] - x[0, 0]).astype(np.float64)
    p = matrix.astype(np.float64) @ (1 / (1 + np.exp(-margin))) @ columns.astype(np.float64)
    got = run_onnxruntime(result.model, {"x": x})
    valid = got["scores"] > 0
    np.testing.assert_allclose(got["scores"][valid], p.ravel()[got["indices"][valid]], rtol=1e-5)


@pytest.mark.parametrize("resampling", ["linear", None])
def test_a_peak_mask_product_is_kept_on_odds_and_a_where_on_log_odds(resampling: str | None) -> None:
    # value × Cast(peak) sets non-peaks to probability 0: odds 0 (the product stays), log-odds −inf (a Where).
    model = head(mask=True, matrix=interpolation(15, GRID, zero_rows=2) if resampling else None)
    result = run_pass(model)
    peaks = producer(result.model, "peaks")
    if resampling:
        assert result.stats["on_odds"] == 1 and peaks.op_type == "Mul"
        cast = producer(result.model, "peak_mask")
        assert {p.key: p.value for p in cast.metadata_props} == {PRECISION_KEY: "float32"}
    else:
        assert result.stats["on_odds"] == 0 and peaks.op_type == "Where"
        assert initializer(result.model, peaks.input[2]) == -np.inf
    assert result.stats["exits"] == 1  # the scores leave only as the reported values, not at the mask
    for seed in SEEDS:
        assert_same_detections(model, result.model, logits(seed, 2), atol=1e-5)


@pytest.mark.parametrize("resampling", RESAMPLINGS)
def test_saturated_logits_keep_their_order_through_the_resampling(resampling: str) -> None:
    # Two-class margins of 18 to 60: float32 probabilities round to 1 (the plain head sees one plateau), but
    # the rewritten head keeps every cell apart, as float64 log-odds of the resampled probabilities do.
    matrix = interpolation(15, GRID, zero_rows=2)
    model = head(matrix=matrix)
    rewritten = run_pass(model, resampling=resampling).model
    rng = np.random.default_rng(7)
    margin = rng.uniform(18, 60, size=(GRID, GRID))
    x = np.stack([np.zeros_like(margin), margin])[None].astype(np.float32)
    p, q = 1 / (1 + np.exp(-margin.astype(np.float64))), 1 / (1 + np.exp(margin.astype(np.float64)))
    weights = matrix.astype(np.float64)
    with np.errstate(divide="ignore"):
        exact = np.log(weights @ p) - np.log(weights @ q + (weights.sum(1) == 0)[:, None])
    padded = np.pad(exact, 1, constant_values=-np.inf)
    pooled = np.lib.stride_tricks.sliding_window_view(padded, (3, 3)).max(axis=(-2, -1))
    flat = np.where(exact >= pooled, exact, -np.inf).ravel()
    expected = np.argsort(-flat, kind="stable")[:K]
    got = run_onnxruntime(rewritten, {"x": x})
    np.testing.assert_array_equal(got["indices"], expected)
    assert np.all(got["scores"] == 1)  # the reported probabilities are 1 in float32: only their order survives
    plain = run_onnxruntime(model, {"x": x})
    assert not np.array_equal(plain["indices"], expected)  # the probability head cannot tell them apart


def test_resampling_with_three_taps_is_left_alone() -> None:
    # A weighted mean of three probabilities is no function of their log-odds that the head could carry.
    model = head(matrix=three_taps(GRID))
    result = run_pass(model)
    assert not result.modified
    assert "reaches a max-pooling NMS" in (result.note or "")
    assert result.model == model


def test_sigmoid_head_reads_its_logits() -> None:
    model = head(sigmoid=True)
    result = run_pass(model)
    assert result.modified
    assert result.stats["sources"] == 1
    assert result.stats["exits"] == 1
    # The only Sigmoid left is the float32 one that reports the scores; the max-pool reads the logits.
    sigmoids = [n for n in result.model.graph.node if n.op_type == "Sigmoid"]
    assert [list(n.output) for n in sigmoids] == [["scores"]]
    assert producer(result.model, "pooled").input[0] != "probability"
    for seed in SEEDS:
        assert_same_detections(model, result.model, logits(seed, 1), atol=1e-6)


def test_other_readers_of_sigmoid_logits_keep_reading_logits() -> None:
    model = head(sigmoid=True)
    model.graph.node.append(node("Neg", ["x"], "negated_logits"))
    model.graph.output.append(value("negated_logits", [1, 1, GRID, GRID]))
    onnx.checker.check_model(model, full_check=True)
    result = run_pass(model)
    assert result.stats["exits"] == 1
    assert list(producer(result.model, "negated_logits").input) == ["x"]
    x = logits(0, 1)
    expected, actual = run_onnxruntime(model, {"x": x}), run_onnxruntime(result.model, {"x": x})
    np.testing.assert_array_equal(actual["negated_logits"], expected["negated_logits"])
    assert_same_detections(model, result.model, x, atol=1e-6)


def test_softmax_that_reaches_no_max_pool_is_left_alone() -> None:
    # A classifier: the probabilities go straight to TopK and out.
    nodes = [
        node("Softmax", ["x"], "probabilities", axis=-1),
        helper.make_node("TopK", ["probabilities", "k"], ["scores", "indices"], axis=-1, name="topk"),
    ]
    model = make_model(
        nodes,
        [value("x", [2, 10])],
        [value("scores", [2, 3]), value("indices", [2, 3], TensorProto.INT64)],
        [tensor("k", np.array([3], np.int64))],
    )
    result = run_pass(model)
    assert not result.modified
    assert result.stats == dict.fromkeys(STAT_KEYS, 0)
    assert result.model == model
    # It says so before it runs: the pipeline skips it (a default or --fp16 pass) or stops (a named one).
    with pytest.raises(PreconditionError, match="reach a max-pooling NMS"):
        NmsOnLogitsPass().requires(model)


def test_a_missing_nms_is_a_skip_with_fp16_and_an_error_when_named() -> None:
    nodes = [node("Softmax", ["x"], "probabilities", axis=-1)]
    model = make_model(nodes, [value("x", [2, 10])], [value("probabilities", [2, 10])])
    _, report = graphopt.optimize(model, fp16=True, input_shapes={"x": (2, 10)})
    (record,) = [r for r in report.passes if r.name == "nms_on_logits"]
    assert record.status == "skipped" and "not applicable: needs Softmax or Sigmoid scores" in record.message
    with pytest.raises(PassRequirementError, match="nms_on_logits"):
        graphopt.optimize(model, ["nms_on_logits"])


def test_a_rewritten_head_meets_the_requirement_and_is_not_rewritten_again() -> None:
    once = NmsOnLogitsPass()(head()).model
    NmsOnLogitsPass().requires(once)
    assert not NmsOnLogitsPass()(once).modified


def test_scores_without_logits_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'x' is not the output of a Softmax or Sigmoid"):
        NmsOnLogitsPass(scores=["x"])(head())


def test_naming_the_softmax_rewrites_it() -> None:
    model = head()
    result = NmsOnLogitsPass(scores=["classes"])(model)
    onnx.checker.check_model(result.model, full_check=True)
    assert result.modified
    assert "Softmax" not in op_types(result.model)
    assert result.model == run_pass(model).model
    # Named again, the Softmax is gone: the configuration no longer fits the graph.
    with pytest.raises(ConfigError, match="'classes' is not the output"):
        NmsOnLogitsPass(scores=["classes"])(result.model)


def test_log_odds() -> None:
    p = np.array([0.0, 0.5, 0.9, 1.0, -np.inf])
    np.testing.assert_allclose(log_odds(p), [-np.inf, 0.0, np.log(9.0), np.inf, -np.inf], rtol=1e-12)
    assert log_odds(p.astype(np.float32)).dtype == np.float32


def nms_cluster() -> np.ndarray:
    """Two-class logits with a cluster of confident neighbours and one lone detection.

    Class-1 margins 10.0, 9.5 and 9.0 at cells (2, 2), (2, 3) and (3, 2):
    probabilities 0.99995, 0.99993 and 0.99988, distinct in float32 but all
    above 0.99976, the midpoint between float16's largest value below 1 and
    1, so all 1.0 in float16. One 3×3 window holds all three: float32 finds
    one peak there, a float16 max-pool a plateau of three. The lone margin
    3.0 at (6, 6) is found by all. Every other cell is below the threshold.
    """
    rng = np.random.default_rng(7)
    background = rng.uniform(0.5, 1.5, (GRID, GRID)) * rng.choice([-1.0, 1.0], (GRID, GRID))
    margin = rng.uniform(-6.0, -1.0, (GRID, GRID))
    margin[2, 2], margin[2, 3], margin[3, 2] = 10.0, 9.5, 9.0
    margin[6, 6] = 3.0
    x = np.stack([background, background + margin])[None].astype(np.float32)
    assert np.all(x != 0)
    return x


def _onnxruntime(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> Outputs:
    return run_onnxruntime(model, feeds)


def _reference(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> Outputs:
    names = [v.name for v in model.graph.output]
    return dict(zip(names, ReferenceEvaluator(model).run(None, dict(feeds)), strict=True))


# onnxruntime's CPU kernels run some float16 operators in float32 behind casts it
# adds itself; the ONNX reference evaluator computes float16 as float16.
# With float32_head=False the NMS itself runs in float16, on log-odds: the cluster's
# log-odds (10, 9.5, 9) stay distinct there, where its probabilities tie.
@pytest.mark.parametrize("run", [_onnxruntime, _reference], ids=["onnxruntime", "onnx_reference"])
@pytest.mark.parametrize("float32_head", [True, False], ids=["float32_head", "float16_head"])
def test_float16_nms_needs_log_odds(
    run: Callable[[onnx.ModelProto, Mapping[str, np.ndarray]], Outputs], float32_head: bool
) -> None:
    model = head()
    x = nms_cluster()
    cluster, lone = 2 * GRID + 2, 6 * GRID + 6
    expected_cells, expected_scores = detections(run_onnxruntime(model, {"x": x}))
    np.testing.assert_array_equal(expected_cells, [cluster, lone])

    on_logits = convert_to_float16(run_pass(model, float32_head=float32_head).model).model
    pinned = {n.name for n in on_logits.graph.node if any(p.key == PRECISION_KEY for p in n.metadata_props)}
    assert ("pooled" in pinned) == float32_head
    cells, scores = detections(run(on_logits, {"x": x}))
    np.testing.assert_array_equal(cells, expected_cells)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-3)

    # Probabilities in float16: the three neighbours tie at 1.0 and all pass as peaks.
    on_probabilities = convert_to_float16(model).model
    plateau_cells, plateau_scores = detections(run(on_probabilities, {"x": x}))
    assert sorted(plateau_cells) == sorted([cluster, cluster + 1, cluster + GRID, lone])
    assert np.count_nonzero(plateau_scores == 1.0) == 3
