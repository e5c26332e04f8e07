"""Static analysis of a model: node counts, op histogram, parameter bytes, FLOPs.

FLOPs are counted from shapes inferred by ONNX shape inference, two per
multiply-accumulate, so that a Conv of ``O`` output elements reading
``C×kh×kw`` weights per output costs ``2·O·C·kh·kw`` (plus ``O`` for a bias).
The rules, per op family:

========================  =====================================================
Conv                      2·out·(C_in/group)·∏k (+ out with bias)
ConvTranspose             2·in·(C_out/group)·∏k (+ out with bias)
Gemm                      2·M·N·K (+ M·N with C)
MatMul                    2·out·K
Max/Average/LpPool        out·∏k; Global*Pool: in
elementwise               out per output element (n−1 per element for n-ary Sum/Max/Min/Mean)
Softmax, LogSoftmax       3 per element (exp, sum, divide)
BatchNormalization        2 per element (scale and shift once folded)
Reduce*                   in
Resize                    0 for nearest; 2·taps per output element otherwise
data movement             0 (Reshape, Transpose, Concat, Slice, Gather, Cast, …)
========================  =====================================================

Ops outside these rules, and nodes whose shapes could not be inferred, are
listed in :attr:`FlopCount.uncounted` rather than silently counted as zero.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from .graph import TensorInfo, attribute, infer_tensor_info, set_dims
from .model_io import iter_tensors

__all__ = ["FlopCount", "GraphStats", "count_flops", "float16_flop_share", "graph_stats", "parameter_bytes"]

_ELEMENTWISE = {
    "Abs", "Acos", "Acosh", "Add", "And", "Asin", "Asinh", "Atan", "Atanh", "BitShift", "Ceil", "Celu",
    "Clip", "Cos", "Cosh", "Div", "Elu", "Equal", "Erf", "Exp", "Floor", "Gelu", "Greater",
    "GreaterOrEqual", "HardSigmoid", "HardSwish", "IsInf", "IsNaN", "LeakyRelu", "Less", "LessOrEqual",
    "Log", "Mish", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "PRelu", "Reciprocal", "Relu", "Round",
    "Selu", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Sub", "Tan", "Tanh",
    "ThresholdedRelu", "Where", "Xor",
}
_NARY = {"Sum", "Max", "Min", "Mean"}
_POOL = {"MaxPool", "AveragePool", "LpPool"}
_GLOBAL_POOL = {"GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"}
_REDUCE = {
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
    "ReduceProd", "ReduceSum", "ReduceSumSquare", "ArgMax", "ArgMin", "TopK",
}
_DATA_MOVEMENT = {
    "Cast", "CastLike", "Concat", "Constant", "ConstantOfShape", "DepthToSpace", "Dropout", "Expand",
    "Flatten", "Gather", "GatherElements", "GatherND", "Identity", "NonZero", "OneHot", "Pad", "Range",
    "Reshape", "ScatterElements", "ScatterND", "Shape", "Size", "Slice", "SpaceToDepth", "Split",
    "Squeeze", "Tile", "Transpose", "Trilu", "Unsqueeze",
}


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of a model: the total, per op type, and what could not be counted."""

    total: int
    by_op: dict[str, int]
    uncounted: dict[str, int] = field(default_factory=dict)


def _numel(shape: tuple[int, ...] | None) -> int | None:
    return None if shape is None else math.prod(shape)


# One flat branch per operator family, each its own formula: read as a table, which splitting would scatter.
def _node_flops(node: onnx.NodeProto, shapes: Mapping[str, tuple[int, ...] | None]) -> int | None:  # noqa: C901
    """FLOPs of one node, ``None`` when its op is unknown or its shapes are."""
    op = node.op_type
    inputs = [shapes.get(name) if name else None for name in node.input]
    outputs = [shapes.get(name) for name in node.output]
    out = _numel(outputs[0]) if outputs else None
    if op in _DATA_MOVEMENT:
        return 0
    if op == "Conv":
        weight = inputs[1] if len(inputs) > 1 else None
        if out is None or weight is None:
            return None
        bias = out if len(inputs) > 2 and node.input[2] else 0
        return 2 * out * math.prod(weight[1:]) + bias
    if op == "ConvTranspose":
        weight = inputs[1] if len(inputs) > 1 else None
        numel_in = _numel(inputs[0])
        if out is None or weight is None or numel_in is None:
            return None
        bias = out if len(inputs) > 2 and node.input[2] else 0
        return 2 * numel_in * math.prod(weight[1:]) + bias
    if op == "Gemm":
        a = inputs[0]
        if a is None or outputs[0] is None or len(a) != 2:
            return None
        k = a[0] if attribute(node, "transA", 0) else a[1]
        m, n = outputs[0]
        bias = m * n if len(inputs) > 2 and node.input[2] else 0
        return 2 * m * n * k + bias
    if op == "MatMul":
        a = inputs[0]
        if a is None or out is None:
            return None
        return 2 * out * a[-1]
    if op in _POOL:
        kernel = attribute(node, "kernel_shape")
        return None if out is None or kernel is None else out * math.prod(kernel)
    if op in _GLOBAL_POOL or op in _REDUCE:
        return _numel(inputs[0])
    if op in _ELEMENTWISE:
        return out
    if op in _NARY:
        return None if out is None else out * max(len(node.input) - 1, 1)
    if op in ("Softmax", "LogSoftmax"):
        return None if out is None else 3 * out
    if op == "BatchNormalization":
        return None if out is None else 2 * out
    if op == "Resize":
        mode = attribute(node, "mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode == "nearest":
            return 0
        if out is None or inputs[0] is None or outputs[0] is None:
            return None
        resized = sum(1 for a, b in zip(inputs[0], outputs[0], strict=False) if a != b)
        taps = (2 if mode == "linear" else 4) ** resized
        return 2 * taps * out
    return None


def count_flops(model: onnx.ModelProto, infos: Mapping[str, TensorInfo] | None = None) -> FlopCount:
    """FLOPs of one run of the main graph (subgraph bodies are listed as uncounted)."""
    infos = infer_tensor_info(model) if infos is None else infos
    shapes = {name: info.static_shape for name, info in infos.items()}
    by_op: Counter[str] = Counter()
    uncounted: Counter[str] = Counter()
    for node in model.graph.node:
        flops = _node_flops(node, shapes)
        if flops is None:
            uncounted[node.op_type] += 1
        else:
            by_op[node.op_type] += flops
    return FlopCount(
        total=sum(by_op.values()), by_op=dict(sorted(by_op.items())), uncounted=dict(sorted(uncounted.items()))
    )


def float16_flop_share(model: onnx.ModelProto, infos: Mapping[str, TensorInfo] | None = None) -> float:
    """The share of the counted FLOPs done by nodes whose first output is float16 (0 when none are counted)."""
    infos = infer_tensor_info(model) if infos is None else infos
    shapes = {name: info.static_shape for name, info in infos.items()}
    total = half = 0
    for node in model.graph.node:
        flops = _node_flops(node, shapes)
        if not flops:
            continue
        total += flops
        info = infos.get(node.output[0]) if node.output else None
        if info is not None and info.elem_type == onnx.TensorProto.FLOAT16:
            half += flops
    return half / total if total else 0.0


def parameter_bytes(model: onnx.ModelProto) -> int:
    """Bytes of all stored tensors: initializers and Constant values, subgraphs included."""
    total = 0
    for tensor in iter_tensors(model.graph):
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        total += math.prod(tensor.dims) * itemsize
    return total


@dataclass(frozen=True)
class GraphStats:
    """A snapshot of a model's size and cost."""

    nodes: int
    op_histogram: dict[str, int]
    param_bytes: int
    flops: FlopCount

    def to_dict(self) -> dict[str, object]:
        return {
            "nodes": self.nodes,
            "param_bytes": self.param_bytes,
            "flops": self.flops.total,
            "flops_by_op": self.flops.by_op,
            "flops_uncounted_ops": self.flops.uncounted,
            "op_histogram": self.op_histogram,
        }


def _with_input_shapes(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    """A copy of ``model`` whose named graph inputs declare the given shapes."""
    shaped = onnx.ModelProto()
    shaped.CopyFrom(model)
    for value in shaped.graph.input:
        shape = input_shapes.get(value.name)
        if shape is not None and value.type.HasField("tensor_type"):
            set_dims(value, shape)
    return shaped


def graph_stats(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]] | None = None) -> GraphStats:
    """Node count, op histogram, parameter bytes and FLOPs of the main graph.

    Args:
        input_shapes: concrete shapes for inputs the graph leaves dynamic, so
            that FLOPs of a dynamic model are counted at the shapes it will run
            at (the model itself is not changed).
    """
    histogram = Counter(node.op_type for node in model.graph.node)
    shaped = _with_input_shapes(model, input_shapes) if input_shapes else model
    return GraphStats(
        nodes=len(model.graph.node),
        op_histogram=dict(sorted(histogram.items())),
        param_bytes=parameter_bytes(model),
        flops=count_flops(shaped),
    )
