"""Where float16 pays on this device: op-family microbenchmarks and a real graph's per-op-type times.

The original work measured, before converting its detector, how much
float16 helps each op family on the Jetson (:data:`ORIGINAL`). The same
table for the machine graphopt runs on:

* :func:`op_family_graphs` builds one small ONNX graph per op family at the
  original's sizes, in float32 and in float16 (every tensor of that type);
* :func:`profile_op_families` times each pair on every runtime available
  here: onnxruntime on each execution provider it offers (CPU always), and
  TensorRT where it is installed; float32 and float16 interleaved call by
  call, medians over the repeats, and their ratio;
* :func:`profile_graph` breaks a real graph's time down by operator type with
  onnxruntime's own profiler: the same runs are timed by the wall clock, so
  the breakdown is checked against the total it claims to divide.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import GraphoptError, RuntimeRunError, first_line
from .graph import concrete_input_shapes
from .timing import machine_description, measure_latency, measure_latency_interleaved

__all__ = [
    "ORIGINAL",
    "SCHEMA",
    "GraphProfile",
    "OpFamilyResult",
    "op_family_graphs",
    "profile_graph",
    "profile_op_families",
]

logger = logging.getLogger(__name__)

SCHEMA = "graphopt.profile/1"

#: The original work's Jetson TX1 times, float32 → float16, per op family (its units; only the ratio compares).
ORIGINAL: dict[str, tuple[float, float]] = {
    "matmul": (6, 4), "elementwise": (4, 2), "activation": (5, 3), "pooling": (3, 3),
    "convolution": (10.5, 7.5), "pooling_3d": (8, 8),
}

FLOAT_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}


@dataclass(frozen=True)
class OpBenchmark:
    """One microbenchmark: a family, a name, and how to build its graph in a float type."""

    family: str
    name: str
    build: Callable[[int], onnx.ModelProto]
    what: str


def _graph(name: str, nodes: list[onnx.NodeProto], inputs: Mapping[str, Sequence[int]], output: str,
           out_shape: Sequence[int], elem_type: int, initializers: Sequence[onnx.TensorProto] = ()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(k, elem_type, list(v)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(output, elem_type, list(out_shape))], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="graphopt-profile")
    model.ir_version = 8
    return model


def _conv(kernel: int) -> Callable[[int], onnx.ModelProto]:
    def build(elem_type: int) -> onnx.ModelProto:
        dtype = helper.tensor_dtype_to_np_dtype(elem_type)
        weight = (np.random.default_rng(0).standard_normal((200, 3, kernel, kernel)) * 0.1).astype(dtype)
        out = (1, 200, 320 - kernel + 1, 240 - kernel + 1)
        return _graph(f"conv{kernel}", [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[kernel, kernel])],
                      {"x": (1, 3, 320, 240)}, "y", out, elem_type, [numpy_helper.from_array(weight, "w")])
    return build


def _unary(op: str, **attributes: Any) -> Callable[[int], onnx.ModelProto]:
    return lambda t: _graph(op.lower(), [helper.make_node(op, ["x"], ["y"], **attributes)], {"x": (1000, 1000)}, "y",
                            (1000, 1000), t)


def _binary(op: str) -> Callable[[int], onnx.ModelProto]:
    return lambda t: _graph(op.lower(), [helper.make_node(op, ["a", "b"], ["y"])],
                            {"a": (1000, 1000), "b": (1000, 1000)}, "y", (1000, 1000), t)


BENCHMARKS: tuple[OpBenchmark, ...] = (
    OpBenchmark("matmul", "matmul", _binary("MatMul"), "1000×1000 · 1000×1000 matrix product"),
    OpBenchmark("elementwise", "add", _binary("Add"), "element-wise add, 1000×1000"),
    OpBenchmark("elementwise", "mul", _binary("Mul"), "element-wise multiply, 1000×1000"),
    OpBenchmark("activation", "relu", _unary("Relu"), "ReLU, 1000×1000"),
    OpBenchmark("activation", "softmax", _unary("Softmax", axis=-1), "softmax over rows, 1000×1000"),
    OpBenchmark("pooling", "maxpool_2x2", lambda t: _graph(
        "maxpool", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
        {"x": (1, 3, 320, 240)}, "y", (1, 3, 160, 120), t), "2×2 max-pooling, stride 2, on 3×320×240"),
    OpBenchmark("convolution", "conv_3x3", _conv(3), "3×3 convolution, 200 filters, no padding, on 3×320×240"),
    OpBenchmark("convolution", "conv_5x5", _conv(5), "5×5 convolution, 200 filters, no padding, on 3×320×240"),
    OpBenchmark("pooling_3d", "maxpool_3x7x3", lambda t: _graph(
        "maxpool3d", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 7, 3], strides=[1, 1, 1],
                                       pads=[1, 3, 1, 1, 3, 1])],
        {"x": (1, 1, 3, 320, 240)}, "y", (1, 1, 3, 320, 240), t),
        "3D max-pooling 3×7×3, stride 1, 'same' padding, on a 3×320×240 volume (the NMS window)"),
)


def op_family_graphs(elem_type: int) -> dict[str, onnx.ModelProto]:
    """Every microbenchmark's graph in ``elem_type`` (``TensorProto.FLOAT`` or ``FLOAT16``), by name."""
    return {b.name: b.build(elem_type) for b in BENCHMARKS}


@dataclass
class OpFamilyResult:
    """One microbenchmark on one runtime: medians in float32 and float16, and their ratio."""

    family: str
    name: str
    what: str
    runtime: str
    float32_ms: float | None = None
    float16_ms: float | None = None
    #: float16 / float32 median; below 1 where float16 pays.
    ratio: float | None = None
    error: str | None = None


def _inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    from .verify import random_inputs

    return random_inputs(model, concrete_input_shapes(model, {}), seed=seed)


def _runtimes() -> dict[str, Callable[[onnx.ModelProto], Callable[[dict[str, np.ndarray]], object]]]:
    """Each runtime available here, as model → (feeds → run once)."""
    from .backends.onnxruntime import create_session, default_providers
    from .backends.tensorrt import TensorRTBackend

    def onnxruntime_on(provider: str) -> Callable[[onnx.ModelProto], Callable[[dict[str, np.ndarray]], object]]:
        def prepare(model: onnx.ModelProto) -> Callable[[dict[str, np.ndarray]], object]:
            providers = (provider,) if provider == "CPUExecutionProvider" else (provider, "CPUExecutionProvider")
            session = create_session(model, providers=providers)
            return lambda feeds: session.run(None, feeds)
        return prepare

    runtimes = {f"onnxruntime {p.removesuffix('ExecutionProvider')}": onnxruntime_on(p) for p in default_providers()}
    if TensorRTBackend.unavailable_reason() is None:
        runtimes["TensorRT"] = _tensorrt_runner
    return runtimes


def _tensorrt_runner(model: onnx.ModelProto) -> Callable[[dict[str, np.ndarray]], object]:
    """One call of the model's TensorRT engine (built once; each call copies in, runs and copies out)."""
    from .backends.base import BuildOptions
    from .backends.tensorrt import TensorRTBackend, load_tensorrt, time_engine

    artifact = TensorRTBackend().build(model, BuildOptions(name=model.graph.name))
    if artifact.build is None:
        raise RuntimeRunError("TensorRT built no engine")
    plan, trt = artifact.build.plan, load_tensorrt()
    return lambda feeds: time_engine(plan, feeds, trt=trt, warmup=0, repeats=1)


def profile_op_families(
    *, repeats: int = 20, warmup: int = 3, runtimes: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[OpFamilyResult]:
    """Times every microbenchmark in float32 and float16 on every runtime here (or those named)."""
    say = progress or (lambda line: None)
    available = _runtimes()
    chosen = {name: prepare for name, prepare in available.items() if runtimes is None or name in runtimes}
    results = []
    graphs = {t: op_family_graphs(elem) for t, elem in FLOAT_TYPES.items()}
    for runtime, prepare in chosen.items():
        for bench in BENCHMARKS:
            say(f"{runtime}: {bench.name}")
            result = OpFamilyResult(bench.family, bench.name, bench.what, runtime)
            try:
                calls = []
                for precision in ("float32", "float16"):
                    model = graphs[precision][bench.name]
                    run, feeds = prepare(model), _inputs(model)
                    calls.append(lambda run=run, feeds=feeds: run(feeds))
                fp32, fp16 = measure_latency_interleaved(calls, warmup=warmup, repeats=repeats)
            except (GraphoptError, RuntimeError) as error:
                result.error = first_line(error)
            else:
                result.float32_ms, result.float16_ms = fp32.median_ms, fp16.median_ms
                result.ratio = fp16.median_ms / fp32.median_ms
            results.append(result)
    return results


@dataclass
class GraphProfile:
    """A graph's time by operator type, from onnxruntime's profiler, checked against the wall clock."""

    label: str
    runs: int
    #: Median wall-clock ms of the profiled runs (profiling itself slows a run down).
    wall_ms: float
    #: Median over the runs of the summed kernel times.
    kernels_ms: float
    #: Median wall-clock ms of the same graph without the profiler.
    unprofiled_ms: float
    #: Operator type → mean ms per run, largest first.
    by_op_type: dict[str, float] = field(default_factory=dict)
    provider: str = "CPUExecutionProvider"
    #: Node name (as onnxruntime names it after its own fusions) → ms in the median run.
    by_node: dict[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """The summed kernel times over the wall clock of the same runs (1.0: the breakdown is the whole)."""
        return self.kernels_ms / self.wall_ms if self.wall_ms else 0.0


def profile_graph(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], *, label: str = "", runs: int = 10,
                  warmup: int = 3) -> GraphProfile:
    """Per-operator-type time of ``model`` on ``feeds`` with onnxruntime's profiler (CPU).

    Each profiled run is also timed by the wall clock; its kernel events are
    those the profiler records inside that run's ``model_run`` span.

    Raises:
        RuntimeRunError: onnxruntime cannot load or run the model.
    """
    import onnxruntime as ort

    from .backends.onnxruntime import create_session

    plain = create_session(model, what="the profiled graph")
    unprofiled = measure_latency(lambda: plain.run(None, dict(feeds)), warmup=warmup, repeats=runs)
    with tempfile.TemporaryDirectory(prefix="graphopt-profile-") as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        try:
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            for _ in range(warmup):
                session.run(None, dict(feeds))
            walls = []
            for _ in range(runs):
                start = time.perf_counter()
                session.run(None, dict(feeds))
                walls.append(1000 * (time.perf_counter() - start))
            with open(session.end_profiling(), encoding="utf-8") as file:
                events = json.load(file)
        except Exception as error:  # onnxruntime raises its own pybind exception types
            raise RuntimeRunError(f"onnxruntime cannot profile {label or 'the graph'}: {first_line(error)}") from error
    spans = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"][-runs:]
    kernels = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
    runs_kernels = [[e for e in kernels if span["ts"] <= e["ts"] <= span["ts"] + span["dur"]] for span in spans]
    per_run = [sum(e["dur"] for e in inside) / 1000 for inside in runs_kernels]
    # The breakdown is the median run's (the run whose kernel total is the median), so that it adds up to
    # kernels_ms: a mean over runs would let one slow run on a busy machine outweigh the median.
    median_run = sorted(range(len(per_run)), key=per_run.__getitem__)[(len(per_run) - 1) // 2] if per_run else None
    by_type: dict[str, float] = {}
    by_node: dict[str, float] = {}
    for event in runs_kernels[median_run] if median_run is not None else []:
        op = event.get("args", {}).get("op_name", "?")
        by_type[op] = by_type.get(op, 0.0) + event["dur"] / 1000
        node = str(event["name"]).removesuffix("_kernel_time")
        by_node[node] = by_node.get(node, 0.0) + event["dur"] / 1000
    return GraphProfile(
        label=label, runs=len(spans), wall_ms=statistics.median(walls),
        kernels_ms=per_run[median_run] if median_run is not None else 0.0,
        unprofiled_ms=unprofiled.median_ms,
        by_op_type=dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        by_node=by_node,
    )


def family_summary(results: Sequence[OpFamilyResult]) -> list[dict[str, Any]]:
    """Per runtime and family: the summed float32 and float16 medians, their ratio, and the original's."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        if r.float32_ms is None or r.float16_ms is None:
            continue
        row = rows.setdefault((r.runtime, r.family), {"runtime": r.runtime, "family": r.family, "float32_ms": 0.0,
                                                      "float16_ms": 0.0})
        row["float32_ms"] += r.float32_ms
        row["float16_ms"] += r.float16_ms
    for row in rows.values():
        row["ratio"] = row["float16_ms"] / row["float32_ms"]
        original = ORIGINAL.get(row["family"])
        row["original_ratio"] = original[1] / original[0] if original else None
    return list(rows.values())


def to_json(results: Sequence[OpFamilyResult], graphs: Sequence[GraphProfile]) -> str:
    return json.dumps({
        "schema": SCHEMA, "machine": machine_description(),
        "op_families": [asdict(r) for r in results], "families": family_summary(results),
        "original": {k: list(v) for k, v in ORIGINAL.items()},
        "graphs": [{**{k: v for k, v in asdict(g).items() if k != "by_node"}, "coverage": g.coverage}
                   for g in graphs],
    }, indent=2)


def to_markdown(results: Sequence[OpFamilyResult], graphs: Sequence[GraphProfile]) -> str:
    m = machine_description()
    lines = [f"# Per-op precision profile ({m['cpu']}, {m['cores']} cores)", "",
             "| runtime | family | float32 ms | float16 ms | float16 / float32 | original (Jetson TX1) "
             "| float16 here |",
             "|---|---|---|---|---|---|---|"]
    for row in family_summary(results):
        original = ORIGINAL.get(row["family"])
        theirs = f"{original[0]:g} → {original[1]:g} ({row['original_ratio']:.2f})" if original else ""
        verdict = ("pays" if row["ratio"] < 0.9 else "no gain" if row["ratio"] <= 1.1 else "costs")
        lines.append(f"| {row['runtime']} | {row['family']} | {row['float32_ms']:.2f} | {row['float16_ms']:.2f} | "
                     f"{row['ratio']:.2f} | {theirs} | {verdict} |")
    lines += ["", "| runtime | benchmark | float32 ms | float16 ms | ratio |", "|---|---|---|---|---|"]
    for r in results:
        if r.error:
            lines.append(f"| {r.runtime} | {r.what} | | | failed: {r.error} |")
        else:
            lines.append(f"| {r.runtime} | {r.what} | {r.float32_ms:.3f} | {r.float16_ms:.3f} | {r.ratio:.2f} |")
    if len(graphs) == 2:
        first, second = graphs
        lines += ["", f"## {first.label} → {second.label}: which operators gain", "",
                  f"| operator | {first.label} ms | {second.label} ms | ratio |", "|---|---|---|---|"]
        for op in dict.fromkeys([*first.by_op_type, *second.by_op_type]):
            a, b = first.by_op_type.get(op), second.by_op_type.get(op)
            ratio = f"{b / a:.2f}" if a and b else ""
            lines.append(f"| {op} | {'' if a is None else f'{a:.2f}'} | {'' if b is None else f'{b:.2f}'} | {ratio} |")
        lines.append(f"| **total (unprofiled median)** | {first.unprofiled_ms:.1f} | {second.unprofiled_ms:.1f} | "
                     f"{second.unprofiled_ms / first.unprofiled_ms:.2f} |")
    for g in graphs:
        lines += ["", f"## {g.label}: time by operator type (onnxruntime profiler, {g.runs} runs)", "",
                  f"Unprofiled median {g.unprofiled_ms:.1f} ms; profiled runs {g.wall_ms:.1f} ms by the wall clock, "
                  f"{g.kernels_ms:.1f} ms in kernels ({g.coverage:.0%} of it).", "",
                  "| operator | ms per run | share |", "|---|---|---|"]
        total = sum(g.by_op_type.values()) or 1.0
        lines += [f"| {op} | {ms:.2f} | {ms / total:.0%} |" for op, ms in g.by_op_type.items()]
    return "\n".join(lines) + "\n"
