"""What TensorRT's ONNX parser accepts, checked on the graph before any build, for the TensorRT version targeted.

An engine build is slow and, where TensorRT is missing, impossible; its
parser's errors name one node at a time. :func:`unsupported_by_tensorrt`
reads the whole graph against the operator support matrix of the TensorRT
ONNX parser of one version (:func:`onnx_matrix`: onnx-tensorrt's
``docs/operators.md`` as published for 10.0, 10.3, 10.15 and 11.0, written to
``onnx_matrix/<version>.json`` by ``tools/trt_onnx_matrix.py``; 10.3's
parser reads opsets 9 to 20 and lacks, e.g., ``Attention`` and ``STFT``,
which 10.15 reads up to opset 24) and returns every node it would refuse,
with the reason:

* an operator the matrix marks unsupported, one it does not list, or one from
  a custom domain that is not a model-local function (those need a plugin);
* an input type the operator does not support (UINT8 only as a network input
  or output and into ``Cast``; INT8/FP8/INT4 only through Q/DQ);
* the restrictions the matrix states on attributes and inputs: 2D/3D pooling
  without dilation, no ``Indices`` output of ``MaxPool``, ``Resize`` modes,
  ``TopK`` sorted with K below 3840, build-time constant ``axes`` of the
  reductions and ``axis``/``depth``/``is_training`` of ``CumSum``/``OneHot``/
  ``Dropout``, ``ScatterND`` without reduction, ``LSTM``
  ``layout``/``input_forget``, ``Constant`` string or sparse values (as
  10.15 states them; every version is held to them);
* the opset outside the parser's range.

It is a static check: a graph it passes can still fail in the builder (for
example for lack of workspace), and that error is reported too.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from ..errors import GraphoptError
from ..graph import TensorInfo, attribute, constant_value, infer_tensor_info

__all__ = ["DEFAULT_TARGET", "MATRICES", "OnnxMatrix", "UnsupportedNode", "onnx_matrix", "unsupported_by_tensorrt"]

logger = logging.getLogger(__name__)

_MATRIX_DIR = Path(__file__).parent / "onnx_matrix"
#: The TensorRT versions whose parser's matrix is shipped, oldest first.
MATRICES = ("10.0", "10.3", "10.15", "11.0")
#: The version checked against where none is installed or given: JetPack 6's TensorRT.
DEFAULT_TARGET = "10.3"

_U8, _F64 = TensorProto.UINT8, TensorProto.DOUBLE
# Their input is a shape (ConstantOfShape) or absent (Constant): the matrix's types are those of the value made.
_TYPE_UNCHECKED = frozenset({"Constant", "ConstantOfShape"})


@dataclass(frozen=True)
class OnnxMatrix:
    """The ONNX support matrix of one TensorRT version's parser."""

    tensorrt: str
    opsets: tuple[int, int]
    #: Operator → the types of its data input the parser accepts.
    supported: Mapping[str, frozenset[int]]
    #: Operators the matrix marks "N".
    unsupported: frozenset[str]
    source: str


def _release(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(\.\d+){0,3}([.a-z].*)?", text.strip()):
        raise GraphoptError(f"'{text}' is not a TensorRT version (e.g. 10.3 or 11.0.0)")
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


@functools.cache
def _load(name: str) -> OnnxMatrix:
    data = json.loads((_MATRIX_DIR / f"{name}.json").read_text())
    return OnnxMatrix(
        tensorrt=name,
        opsets=(int(data["opsets"][0]), int(data["opsets"][1])),
        supported={op: frozenset(TensorProto.DataType.Value(t) for t in types)
                   for op, types in data["supported"].items()},
        unsupported=frozenset(data["unsupported"]),
        source=str(data["source"]),
    )


def onnx_matrix(version: str) -> OnnxMatrix:
    """The matrix of TensorRT ``version``'s parser: the newest shipped one not newer than it, in the same major.

    Raises:
        GraphoptError: not a version, or not 10.x or 11.x.
    """
    wanted = _release(version)
    if wanted[0] not in (10, 11):
        raise GraphoptError(f"TensorRT {version} is not 10.x or 11.x, the versions graphopt's TensorRT backend "
                            "supports")
    below = [name for name in MATRICES if _release(name) <= wanted and _release(name)[0] == wanted[0]]
    return _load(below[-1])


_RESIZE_COORDINATES = ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners")
_RESIZE_MODES = ("nearest", "linear")
_RESIZE_NEAREST = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
_TOPK_MAX = 3840
_REDUCE = frozenset(["ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
                     "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare"])
# Operator → (input index, what it is) that must be a build-time constant when given.
_CONSTANT_INPUTS = {
    "CumSum": (1, "axis"), "OneHot": (1, "depth"), "Dropout": (2, "is_training"),
    **{op: (1, "axes") for op in _REDUCE},
}
_TYPE_NAMES = {value: name for name, value in TensorProto.DataType.items()}


@dataclass(frozen=True)
class UnsupportedNode:
    """A node TensorRT's ONNX parser would refuse, and why (``index`` -1: the model as a whole)."""

    index: int
    name: str
    op_type: str
    reason: str

    def __str__(self) -> str:
        if self.index < 0:
            return self.reason
        return f"{self.op_type} node '{self.name or self.index}' (node {self.index}): {self.reason}"


def _type_name(elem_type: int) -> str:
    return _TYPE_NAMES.get(elem_type, str(elem_type)).lower()


def _text(node: onnx.NodeProto, name: str, default: str) -> str:
    value = attribute(node, name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _data_input(node: onnx.NodeProto) -> str | None:
    """The input whose type the matrix speaks of: the first, or the first value input of ``Where``."""
    index = 1 if node.op_type == "Where" else 0
    return node.input[index] if len(node.input) > index and node.input[index] else None


# One flat branch per operator of TensorRT's support matrix, each its restrictions: read as a table, which
# splitting would scatter.
def _restrictions(node: onnx.NodeProto, constants: set[str], graph: onnx.GraphProto) -> Iterator[str]:  # noqa: C901
    """The matrix's restrictions on this node's attributes and inputs that it breaks."""
    op = node.op_type
    if op in ("AveragePool", "MaxPool", "LpPool"):
        kernel = attribute(node, "kernel_shape", [])
        if op != "LpPool" and len(kernel) not in (2, 3):
            yield f"{len(kernel)}D pooling (TensorRT pools in 2D or 3D only)"
        if any(d != 1 for d in attribute(node, "dilations", [])):
            yield "dilations other than 1"
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            yield "the Indices output"
    elif op == "Resize":
        checks = (("coordinate_transformation_mode", "half_pixel", _RESIZE_COORDINATES),
                  ("mode", "nearest", _RESIZE_MODES), ("nearest_mode", "round_prefer_floor", _RESIZE_NEAREST),
                  ("keep_aspect_ratio_policy", "stretch", ("stretch",)))
        for name, default, allowed in checks:
            value = _text(node, name, default)
            if value not in allowed:
                yield f"{name} '{value}' (TensorRT supports {', '.join(allowed)})"
        if attribute(node, "antialias", 0):
            yield "antialias (not supported)"
    elif op == "TopK":
        if attribute(node, "sorted", 1) != 1:
            yield "sorted=0 (TensorRT returns the top K sorted only)"
        k = constant_value(graph, node.input[1]) if len(node.input) > 1 and node.input[1] in constants else None
        if k is not None and k.size == 1 and int(k.reshape(-1)[0]) >= _TOPK_MAX:
            yield f"K={int(k.reshape(-1)[0])} (TensorRT's TopK takes K below {_TOPK_MAX})"
    elif op == "ScatterND" and _text(node, "reduction", "none") != "none":
        yield f"reduction '{_text(node, 'reduction', 'none')}' (only 'none' is supported)"
    elif op == "LSTM":
        for name in ("layout", "input_forget"):
            if attribute(node, name, 0) != 0:
                yield f"{name}={attribute(node, name, 0)} (must be 0)"
    elif op == "Constant":
        for attr in node.attribute:
            if attr.name in ("sparse_value", "value_string", "value_strings"):
                yield f"a {attr.name} (not supported)"
    elif op == "LayerNormalization" and any(node.output[1:]):
        yield "outputs other than Y (only the first output is supported)"
    if op in _CONSTANT_INPUTS:
        index, what = _CONSTANT_INPUTS[op]
        if len(node.input) > index and node.input[index]:
            name = node.input[index]
            if name not in constants:
                yield f"its {what} input '{name}' is computed at run time (TensorRT needs a build-time constant)"
            elif op == "Dropout":
                training = constant_value(graph, name)
                if training is not None and bool(training.reshape(-1)[0]):
                    yield "is_training is true (must be false)"


def _node_reasons(
    node: onnx.NodeProto,
    types: Mapping[str, TensorInfo],
    interface: set[str],
    constants: set[str],
    graph: onnx.GraphProto,
    local_functions: set[tuple[str, str]],
    matrix: OnnxMatrix,
) -> Iterator[str]:
    """Why the parser of ``matrix``'s version would refuse this node (nothing when it would not)."""
    op = node.op_type
    if (node.domain, op) in local_functions:
        return  # the parser expands model-local functions into their nodes
    if node.domain not in ("", "ai.onnx"):
        yield f"an operator of the custom domain '{node.domain}' (TensorRT needs a plugin for it)"
        return
    if op in matrix.unsupported:
        yield f"not supported by TensorRT {matrix.tensorrt}'s ONNX parser"
        return
    if op not in matrix.supported:
        yield f"not in TensorRT {matrix.tensorrt}'s ONNX operator support matrix"
        return
    data = _data_input(node) if op not in _TYPE_UNCHECKED else None
    info = types.get(data) if data is not None else None
    if info is not None and info.elem_type != _F64 and info.elem_type not in matrix.supported[op]:
        allowed = ", ".join(sorted(_type_name(t) for t in matrix.supported[op]))
        yield f"input '{data}' is {_type_name(info.elem_type)} (TensorRT's {op} takes {allowed})"
    for value in node.output:
        out = types.get(value)
        if out is not None and out.elem_type == _U8 and value not in interface:
            yield (f"output '{value}' is uint8 inside the graph (TensorRT has uint8 only at the network's inputs "
                   "and outputs)")
    yield from _restrictions(node, constants, graph)


def unsupported_by_tensorrt(model: onnx.ModelProto, *, target: str = DEFAULT_TARGET) -> list[UnsupportedNode]:
    """Every node of ``model``'s main graph that TensorRT ``target``'s ONNX parser would refuse, in graph order.

    Returns an empty list for a graph the parser accepts as far as a static
    check can tell.

    Raises:
        GraphoptError: ``target`` is not a TensorRT 10.x or 11.x version.
    """
    matrix = onnx_matrix(target)
    findings: list[UnsupportedNode] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    low, high = matrix.opsets
    if opset is not None and not low <= opset <= high:
        findings.append(UnsupportedNode(-1, "", "", f"the graph's opset {opset} is outside the {low} to {high} that "
                                                    f"TensorRT {matrix.tensorrt}'s ONNX parser reads"))
    graph = model.graph
    local_functions = {(f.domain, f.name) for f in model.functions}
    types = infer_tensor_info(model)
    interface = {v.name for v in [*graph.input, *graph.output]}
    constants = {init.name for init in graph.initializer}
    constants.update(node.output[0] for node in graph.node if node.op_type == "Constant" and node.output)

    for index, node in enumerate(graph.node):
        reasons = list(_node_reasons(node, types, interface, constants, graph, local_functions, matrix))
        if reasons:
            findings.append(UnsupportedNode(index, node.name, node.op_type, "; ".join(reasons)))
    logger.debug("TensorRT support check: %d finding(s) in %d nodes", len(findings), len(graph.node))
    return findings
