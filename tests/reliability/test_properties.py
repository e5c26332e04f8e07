"""Properties of the passes on random small graphs, and reproducibility of whole runs.

The graphs are drawn by hypothesis (derandomized, so CI sees the same examples
every run) from ops the redundancy pass knows how to remove plus real ops
around them; every drawn model passes ``onnx.checker`` with ``full_check``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import graphopt
from graphopt.cli import cli
from graphopt.passes.redundancy import RemoveRedundantNodesPass
from graphopt.passes.static_shapes import PinStaticShapesPass
from tests.conftest import assert_same_outputs, make_model, tensor, value

EXAMPLES = Path(__file__).parents[2] / "examples"

# A fixed budget and derandomized draws: reproducible in CI, no deadline flakiness
# (onnxruntime session creation time varies a lot between machines).
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass
class _Builder:
    """A graph under construction: each value's axis order relative to ``x`` (Transposes permute it)."""

    dims: tuple[int, ...]
    dynamic_axes: frozenset[int]
    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    axes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{len(self.nodes)}_{len(self.initializers)}"

    def add_initializer(self, prefix: str, array: np.ndarray) -> str:
        name = self.fresh(prefix)
        self.initializers.append(tensor(name, array))
        return name

    def add_node(self, op: str, inputs: Sequence[str], axes: tuple[int, ...], **attrs: Any) -> str:
        out = f"v{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=f"n{len(self.nodes)}", **attrs))
        self.axes[out] = axes
        return out

    def nonzero(self, shape: Sequence[int]) -> np.ndarray:
        magnitude = self.rng.uniform(0.5, 1.5, size=tuple(shape))
        return (magnitude * self.rng.choice([-1.0, 1.0], size=tuple(shape))).astype(np.float32)


_UNARY = ("Identity", "Relu", "Sigmoid", "Dropout", "Cast")
_KINDS = (*_UNARY, "BinaryConst", "BinaryValue", "Transpose", "Reshape", "Pad", "Conv")


def _add_op(b: _Builder, kind: str, source: str, draw: st.DrawFn) -> None:
    axes = b.axes[source]
    rank = len(axes)
    if kind in ("Identity", "Relu", "Sigmoid"):
        b.add_node(kind, [source], axes)
    elif kind == "Dropout":
        inputs = [source]
        if draw(st.booleans()):  # explicit inference mode: ratio and training_mode=False
            inputs += [
                b.add_initializer("ratio", np.array(0.5, np.float32)),
                b.add_initializer("train", np.array(False)),
            ]
        b.add_node("Dropout", inputs, axes)
    elif kind == "Cast":
        b.add_node("Cast", [source], axes, to=TensorProto.FLOAT)
    elif kind == "BinaryConst":
        # Broadcastable constant: each axis 1 or its size; dynamic axes always 1.
        shape = [1 if a in b.dynamic_axes or draw(st.booleans()) else b.dims[a] for a in axes]
        shape = shape[draw(st.integers(0, rank)) :]  # sometimes fewer leading axes
        array = b.nonzero(shape)
        name = b.add_initializer("c", array)
        if draw(st.booleans()):  # the same bytes again under another name: a duplicate to merge
            name = b.add_initializer("dup", array.copy())
        b.add_node(draw(st.sampled_from(["Add", "Mul"])), [source, name], axes)
    elif kind == "BinaryValue":
        partners = [n for n, a in b.axes.items() if a == axes]
        b.add_node(draw(st.sampled_from(["Add", "Mul"])), [source, draw(st.sampled_from(partners))], axes)
    elif kind == "Transpose":
        perm = draw(st.permutations(range(rank)))
        out = b.add_node("Transpose", [source], tuple(axes[p] for p in perm), perm=list(perm))
        if draw(st.booleans()):
            inverse = [perm.index(i) for i in range(rank)]
            b.add_node("Transpose", [out], axes, perm=inverse)
    elif kind == "Reshape":
        # 0 copies the input's dimension: the way to keep a dynamic axis.
        target = [0 if a in b.dynamic_axes else b.dims[a] for a in axes]
        b.add_node("Reshape", [source, b.add_initializer("shape", np.array(target, np.int64))], axes)
    elif kind == "Pad":
        b.add_node("Pad", [source, b.add_initializer("pads", np.zeros(2 * rank, np.int64))], axes)
    elif kind == "Conv":
        channels = b.dims[1]
        weight = b.nonzero((channels, channels, 1, 1)) / channels
        inputs = [source, b.add_initializer("w", weight)]
        if draw(st.booleans()):
            inputs.append(b.add_initializer("bias", b.nonzero((channels,))))
        b.add_node("Conv", inputs, axes, kernel_shape=[1, 1])


@st.composite
def random_models(draw: st.DrawFn, *, dynamic: bool) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """A valid opset-17 model with one float input ``x`` and its concrete input shape.

    ``x`` is ``[1, C, H, W]``; with ``dynamic`` its H and W are symbolic dims.
    """
    dims = (1, draw(st.integers(1, 4)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    b = _Builder(
        dims, frozenset({2, 3}) if dynamic else frozenset(), np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    )
    b.axes["x"] = (0, 1, 2, 3)
    for _ in range(draw(st.integers(2, 12))):
        source = draw(st.sampled_from(sorted(b.axes)))
        kinds = [k for k in _KINDS if k != "Conv" or b.axes[source] == (0, 1, 2, 3)]
        _add_op(b, draw(st.sampled_from(kinds)), source, draw)
    produced = [n for n in b.axes if n != "x"]
    # The last value is an output; sometimes a second one. Branches reaching neither are dead.
    outputs = [produced[-1]]
    if len(produced) > 1 and draw(st.booleans()):
        outputs.append(draw(st.sampled_from(produced[:-1])))
    symbolic = [("N", "C", "H", "W")[a] if a in b.dynamic_axes else dims[a] for a in range(4)]
    model = make_model(
        b.nodes,
        [value("x", symbolic)],
        [value(name, [symbolic[a] for a in b.axes[name]]) for name in outputs],
        b.initializers,
    )
    return model, dims


def _checked(model: onnx.ModelProto) -> onnx.ModelProto:
    onnx.checker.check_model(model, full_check=True)
    return model


@PROPERTY_SETTINGS
@given(case=st.one_of(random_models(dynamic=False), random_models(dynamic=True)))
def test_remove_redundant_nodes_keeps_outputs_and_is_idempotent(case: tuple[onnx.ModelProto, tuple[int, ...]]) -> None:
    model, shape = case
    result = RemoveRedundantNodesPass()(model)
    _checked(result.model)
    assert len(result.model.graph.node) <= len(model.graph.node)
    assert [o.name for o in result.model.graph.output] == [o.name for o in model.graph.output]
    assert_same_outputs(model, result.model, {"x": shape})
    again = RemoveRedundantNodesPass()(result.model)
    assert not again.modified, again.stats


@PROPERTY_SETTINGS
@given(case=random_models(dynamic=True))
def test_pin_static_shapes_keeps_outputs_and_is_idempotent(case: tuple[onnx.ModelProto, tuple[int, ...]]) -> None:
    model, shape = case
    result = PinStaticShapesPass(input_shapes={"x": shape})(model)
    _checked(result.model)
    for graph_input in result.model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), graph_input
    assert [d.dim_value for d in result.model.graph.input[0].type.tensor_type.shape.dim] == list(shape)
    assert_same_outputs(model, result.model, {"x": shape})
    again = PinStaticShapesPass(input_shapes={"x": shape})(result.model)
    assert not again.modified, again.stats


@PROPERTY_SETTINGS
@given(case=st.one_of(random_models(dynamic=False), random_models(dynamic=True)))
def test_default_pipeline_keeps_outputs(case: tuple[onnx.ModelProto, tuple[int, ...]]) -> None:
    model, shape = case
    optimized, _ = graphopt.optimize(model, input_shapes={"x": shape}, verify=True)
    _checked(optimized)
    assert_same_outputs(model, optimized, {"x": shape})


# --- reproducibility -------------------------------------------------------------------------------------------

REPRO_CASES = [
    pytest.param(EXAMPLES / "01_redundant_cnn" / "model.onnx", "input", (1, 3, 240, 320), id="redundant_cnn"),
    pytest.param(EXAMPLES / "02_person_detector" / "model.onnx", "image", (1, 3, 480, 640), id="person_detector"),
]

# Report keys whose values are wall-clock measurements and so differ from run to run:
# per-pass "wall_ms" and "share", the totals "total_ms" and "overhead_ms", and the
# backend's "latency_before" / "latency_after" (median/p90/mean/min/max ms).
TIMING_KEYS = frozenset({"wall_ms", "share", "total_ms", "overhead_ms", "latency_before", "latency_after"})


def scrub_timings(data: Any) -> Any:
    """``data`` (parsed report JSON) without the keys in :data:`TIMING_KEYS`, at any depth."""
    if isinstance(data, dict):
        return {k: scrub_timings(v) for k, v in data.items() if k not in TIMING_KEYS}
    if isinstance(data, list):
        return [scrub_timings(v) for v in data]
    return data


@pytest.mark.parametrize(("path", "name", "shape"), REPRO_CASES)
def test_optimize_is_byte_reproducible(path: Path, name: str, shape: tuple[int, ...]) -> None:
    first, first_report = graphopt.optimize(path, input_shapes={name: shape})
    second, second_report = graphopt.optimize(path, input_shapes={name: shape})
    assert first.SerializeToString() == second.SerializeToString()
    assert scrub_timings(first_report.to_dict()) == scrub_timings(second_report.to_dict())


@pytest.mark.parametrize(("path", "name", "shape"), REPRO_CASES)
def test_cli_is_reproducible(tmp_path: Path, path: Path, name: str, shape: tuple[int, ...]) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        result = CliRunner().invoke(
            cli,
            [
                "optimize",
                str(path),
                "-o",
                str(out),
                "--input-shape",
                f"{name}:{'x'.join(map(str, shape))}",
                "--no-benchmark",
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
    model_file = f"{path.stem}.onnx"
    assert (outs[0] / model_file).read_bytes() == (outs[1] / model_file).read_bytes()
    # The reports name their own output directory; make that the same before comparing.
    reports = [scrub_timings(json.loads((out / "report.json").read_text().replace(str(out), "OUT"))) for out in outs]
    assert reports[0] == reports[1]
