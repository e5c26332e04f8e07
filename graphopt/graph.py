"""Small helpers over ``onnx.GraphProto``, the one representation of a pipeline run.

graphopt passes work on ``onnx.ModelProto`` directly: it is what the checker,
shape inference, onnxsim, onnxruntime and TensorRT's parser all take, so a
pipeline converts nothing between passes. These helpers give the few views
passes need: who consumes a value, constant values, inferred
types and shapes, and renaming a value everywhere it is used; and the graph
inputs a caller feeds, with their concrete shapes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import ShapeSpecError

__all__ = [
    "TensorInfo",
    "attribute",
    "check_input_names",
    "concrete_input_shapes",
    "constant_value",
    "consumers",
    "count_nodes",
    "dead_node_indices",
    "declared_dims",
    "format_dims",
    "graph_inputs",
    "graph_output_names",
    "infer_tensor_info",
    "live_values",
    "prune_dead",
    "rename_uses",
    "resolve",
    "set_dims",
    "subgraph_inputs",
    "takes_a_frame",
]


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The value of a node attribute, or ``default`` when absent."""
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Names that a node's subgraphs (If/Loop/Scan bodies) read from outer scopes."""
    used: set[str] = set()
    for sub in _subgraphs(node):
        local = {v.name for v in sub.input} | {t.name for t in sub.initializer}
        local |= {out for n in sub.node for out in n.output}
        for n in sub.node:
            used |= {name for name in n.input if name and name not in local}
            used |= subgraph_inputs(n) - local
        used |= {v.name for v in sub.output if v.name not in local}
    return used


def consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """Maps each value name to the nodes that read it, subgraph reads included."""
    users: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in dict.fromkeys(list(node.input) + sorted(subgraph_inputs(node))):
            if name:
                users[name].append(node)
    return users


def graph_output_names(graph: onnx.GraphProto) -> set[str]:
    return {v.name for v in graph.output}


def resolve(renames: Mapping[str, str], name: str) -> str:
    """Follows a chain of renames (``a → b → c``) to its end."""
    while name in renames:
        name = renames[name]
    return name


def rename_uses(graph: onnx.GraphProto, renames: Mapping[str, str]) -> None:
    """Makes every reader of a renamed value (in subgraphs too) read its new name, in one walk.

    Chains are followed, so ``{"a": "b", "b": "c"}`` makes readers of ``a``
    read ``c``. A subgraph that declares a name of its own (input or
    initializer) shadows the outer value, and its readers are left alone.
    """
    if not renames:
        return
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = resolve(renames, name)
        for sub in _subgraphs(node):
            local = {v.name for v in sub.input} | {t.name for t in sub.initializer}
            visible = {old: new for old, new in renames.items() if old not in local}
            rename_uses(sub, visible)
            for v in sub.output:
                if v.name in visible:
                    v.name = resolve(visible, v.name)


def constant_value(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    """The value of ``name`` if it is an initializer or a Constant node's output."""
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
                if attr.name in ("value_int", "value_float"):
                    return np.array(onnx.helper.get_attribute_value(attr))
                if attr.name in ("value_ints", "value_floats"):
                    return np.array(onnx.helper.get_attribute_value(attr))
            return None
    return None


@dataclass(frozen=True)
class TensorInfo:
    """Element type and shape of a value; a dimension is an int or a symbol name (or ``None``)."""

    elem_type: int
    shape: tuple[int | str | None, ...] | None

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        if self.shape is None or not all(isinstance(d, int) for d in self.shape):
            return None
        return tuple(int(d) for d in self.shape)  # type: ignore[arg-type]


def declared_dims(value: onnx.ValueInfoProto) -> list[int | str | None] | None:
    """A value's declared dimensions (int, symbol name or ``None``); ``None`` when its rank is unknown."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            # Some exporters (paddle2onnx) write a dynamic dimension as dim_value -1.
            dims.append(dim.dim_value if dim.dim_value >= 0 else None)
        else:
            dims.append(dim.dim_param or None)
    return dims


def set_dims(value: onnx.ValueInfoProto, shape: Sequence[int]) -> None:
    """Declares a static shape on a tensor value."""
    shape_proto = value.type.tensor_type.shape
    shape_proto.ClearField("dim")
    for size in shape:
        shape_proto.dim.add().dim_value = int(size)


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The graph inputs a caller must feed (initializers listed as inputs excluded)."""
    initializers = {init.name for init in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in initializers]


def format_dims(dims: Sequence[int | str | None]) -> str:
    """Dimensions as ``1x3xHxW`` (``?`` for an unknown one)."""
    return "x".join("?" if d is None else str(d) for d in dims)


def check_input_names(model: onnx.ModelProto, names: Iterable[str]) -> None:
    """Raises :class:`ShapeSpecError` for the first name that is not a graph input."""
    inputs = [value.name for value in graph_inputs(model)]
    for name in names:
        if name not in inputs:
            raise ShapeSpecError(
                f"input shape given for '{name}', which is not an input of the graph; "
                f"its inputs are: {', '.join(inputs) or '(none)'}"
            )


def concrete_input_shapes(
    model: onnx.ModelProto, given: Mapping[str, Sequence[int]] | None = None
) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every tensor input: the given one, else the graph's static one.

    Given shapes are checked against what the graph declares: the name must be
    a graph input, the rank must match and fixed dimensions must agree.

    Raises:
        ShapeSpecError: a given shape names no input or contradicts the graph, or
            an input with a dynamic dimension has no given shape.
    """
    wanted = {name: tuple(int(d) for d in dims) for name, dims in (given or {}).items()}
    check_input_names(model, wanted)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in graph_inputs(model):
        if not value.type.HasField("tensor_type"):
            if value.name in wanted:
                raise ShapeSpecError(f"input shape given for '{value.name}', which is not a tensor input")
            continue
        declared = declared_dims(value)
        shape = wanted.get(value.name)
        if shape is None:
            if declared is None or not all(isinstance(d, int) for d in declared):
                example = (
                    "DxDx..." if declared is None else format_dims([d if isinstance(d, int) else "D" for d in declared])
                )
                shown = "unknown rank" if declared is None else format_dims(declared)
                raise ShapeSpecError(
                    f"input '{value.name}' has a dynamic shape ({shown}); give its concrete shape with "
                    f"--input-shape {value.name}:{example}"
                )
            shapes[value.name] = tuple(int(d) for d in declared)  # type: ignore[arg-type]
            continue
        if declared is not None:
            if len(shape) != len(declared):
                raise ShapeSpecError(
                    f"input shape {value.name}:{format_dims(shape)} has rank {len(shape)}, but input "
                    f"'{value.name}' of the graph has rank {len(declared)} ({format_dims(declared)})"
                )
            for axis, (want, have) in enumerate(zip(declared, shape, strict=True)):
                if isinstance(want, int) and want != have:
                    raise ShapeSpecError(
                        f"input shape {value.name}:{format_dims(shape)} contradicts the graph, whose input "
                        f"'{value.name}' is {format_dims(declared)}: dimension {axis} must be {want}, not {have}"
                    )
        shapes[value.name] = shape
    return shapes


def _info(value: onnx.ValueInfoProto) -> TensorInfo | None:
    if not value.type.HasField("tensor_type"):
        return None
    dims = declared_dims(value)
    return TensorInfo(value.type.tensor_type.elem_type, None if dims is None else tuple(dims))


def infer_tensor_info(model: onnx.ModelProto) -> dict[str, TensorInfo]:
    """Types and shapes of every value of the main graph, from ONNX shape inference.

    Inference runs with data propagation so that shapes computed by
    Shape/Gather/Concat chains resolve. A model that shape inference rejects
    yields what the model itself declares.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        inferred = model
    graph = inferred.graph
    infos: dict[str, TensorInfo] = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        info = _info(value)
        if info is not None:
            infos[value.name] = info
    for init in graph.initializer:
        infos[init.name] = TensorInfo(init.data_type, tuple(init.dims))
    return infos


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``… if taken; the name returned is added to ``taken``."""
    name, suffix = base, 1
    while name in taken:
        name, suffix = f"{base}_{suffix}", suffix + 1
    taken.add(name)
    return name


def dead_node_indices(graph: onnx.GraphProto) -> list[int]:
    """Indices of the nodes none of whose outputs reach a graph output (reads from subgraphs count)."""
    live, _ = live_values(graph)
    return [i for i in range(len(graph.node)) if i not in live]


def prune_dead(graph: onnx.GraphProto) -> None:
    """Removes, in place, the nodes no graph output needs and the initializers nothing reads any more."""
    for index in reversed(dead_node_indices(graph)):
        del graph.node[index]
    read = {name for node in graph.node for name in [*node.input, *subgraph_inputs(node)]}
    live = read | set(graph_output_names(graph))
    kept = [t for t in graph.initializer if t.name in live]
    graph.ClearField("initializer")
    graph.initializer.extend(kept)


def live_values(graph: onnx.GraphProto) -> tuple[set[int], set[str]]:
    """The indices of the nodes that reach a graph output, and every value they (or the outputs) read."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output if out}
    used = set(graph_output_names(graph))
    pending = list(used)
    live: set[int] = set()
    while pending:
        index = producer.get(pending.pop())
        if index is None or index in live:
            continue
        live.add(index)
        node = graph.node[index]
        for name in [*node.input, *subgraph_inputs(node)]:
            if name and name not in used:
                used.add(name)
                pending.append(name)
    return live, used


def takes_a_frame(model: onnx.ModelProto) -> bool:
    """Whether the model's one input is a uint8 ``H×W×3`` camera frame (a fused detector's input)."""
    inputs = graph_inputs(model)
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.UINT8:
        return False
    dims = declared_dims(inputs[0])
    return dims is not None and len(dims) == 3 and dims[2] == 3


def count_nodes(model: onnx.ModelProto) -> int:
    """Nodes of the model: the main graph's, every If/Loop/Scan body's (nested too) and every function's."""

    def in_graph(graph: onnx.GraphProto) -> int:
        return sum(1 + sum(in_graph(sub) for sub in _subgraphs(node)) for node in graph.node)

    total = in_graph(model.graph)
    for function in model.functions:
        total += sum(1 + sum(in_graph(sub) for sub in _subgraphs(node)) for node in function.node)
    return total
