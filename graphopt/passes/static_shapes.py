"""Pinning dynamic input shapes to concrete ones, and folding what that makes constant.

A detector exported with dynamic batch and image size carries Shape → Gather →
Concat → Reshape chains that only exist to compute sizes at run time. Once the
deployment shape is known (``--input-shape input:1x3x480x640``) those chains
are constants: this pass writes the shape into the graph inputs, lets onnxsim
re-infer shapes and fold them, and records every inferred shape in the model so
that later passes and FLOP counting see a fully static graph.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence

import onnx

from ..errors import PreconditionError, ShapeSpecError, first_line
from ..graph import (
    attribute,
    concrete_input_shapes,
    constant_value,
    declared_dims,
    format_dims,
    graph_inputs,
    infer_tensor_info,
    set_dims,
)
from ..options import OptimizeOptions
from ._onnxsim import quiet_simplify
from .base import Pass, PassResult

__all__ = ["PinStaticShapesPass", "parse_input_shape"]

logger = logging.getLogger(__name__)

_DIMS = re.compile(r"[0-9]+(x[0-9]+)*")


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """Parses a CLI shape such as ``input:1x3x480x640`` into ``("input", (1, 3, 480, 640))``.

    Input names may themselves contain ``:`` (``images:0:1x3x640x640``): the
    dimensions follow the last one.

    Raises:
        ShapeSpecError: the text is not ``NAME:DxDx...`` with positive integer dimensions.
    """
    name, sep, dims = text.strip().rpartition(":")
    if not sep or not name:
        raise ShapeSpecError(f"--input-shape '{text}': expected NAME:DIMS, for example input:1x3x480x640")
    shape = tuple(int(d) for d in dims.split("x")) if _DIMS.fullmatch(dims) else ()
    if not shape or 0 in shape:
        raise ShapeSpecError(f"--input-shape '{text}': dimensions must be positive integers separated by 'x'")
    return name, shape


def _describe(shapes: Mapping[str, Sequence[int]]) -> str:
    listed = ", ".join(f"{name}:{format_dims(dims)}" for name, dims in shapes.items())
    return f"input shape{'s' if len(shapes) > 1 else ''} {listed}" if shapes else "a graph without inputs"


def _contradiction(shapes: Mapping[str, Sequence[int]], detail: str) -> ShapeSpecError:
    """The error for shapes the graph cannot take, naming the inputs so the user knows what to fix."""
    verb = "contradict" if len(shapes) > 1 else "contradicts"
    return ShapeSpecError(f"{_describe(shapes)} {verb} the graph: {detail}")


def _fingerprint(graph: onnx.GraphProto) -> bytes:
    """Serialized graph with ``value_info`` in name order, so that order alone is no change."""
    canonical = onnx.GraphProto()
    canonical.CopyFrom(graph)
    infos = sorted(canonical.value_info, key=lambda v: v.name)
    canonical.ClearField("value_info")
    canonical.value_info.extend(infos)
    return canonical.SerializeToString(deterministic=True)


class PinStaticShapesPass(Pass):
    """Pins dynamic input shapes to concrete ones and folds the shape computations that become constant.

    Rules applied:

    * each given shape is checked against the graph: the rank must match and
      fixed dimensions must agree; every input left with a dynamic dimension
      must be given a shape; a shape for a name that is not (or no longer) an
      input is left out (the pipeline checks the names before its first pass);
    * the shapes are written into ``graph.input``; onnxsim (shape inference and
      constant folding only, no fusions) then folds what became constant, such
      as Shape → Gather → Concat chains feeding a Reshape;
    * ONNX shape inference (strict, with data propagation) must then give every
      graph output a static shape; the inferred shapes are stored as
      ``value_info`` and on ``graph.output``;
    * a shape the graph cannot take (a Reshape to a size that does not fit, a
      Conv whose channels differ from its weight's) is a :class:`ShapeSpecError`.

    Stats: ``pinned_dims`` (input dimensions that were dynamic and are now
    fixed) and ``folded_nodes`` (nodes removed by folding).
    """

    name = "pin_static_shapes"

    def __init__(self, *, input_shapes: Mapping[str, Sequence[int]] | None = None) -> None:
        self._workload_shapes_withheld = False
        self.input_shapes = {name: tuple(int(d) for d in dims) for name, dims in (input_shapes or {}).items()}
        for name, dims in self.input_shapes.items():
            if any(d <= 0 for d in dims):
                raise ShapeSpecError(f"input shape {name}:{format_dims(dims)}: dimensions must be positive integers")

    @classmethod
    def from_options(cls, options: OptimizeOptions) -> PinStaticShapesPass:
        # Shapes a workload filled in are for verification and counting; pinning them would fix an
        # unfused network at one size, which its host pipeline (a pyramid) cannot feed.
        made = cls(input_shapes={} if options.shapes_from_workload else options.input_shapes)
        made._workload_shapes_withheld = options.shapes_from_workload
        return made

    def requires(self, model: onnx.ModelProto) -> None:
        if not self._workload_shapes_withheld:
            return  # a dynamic input without a given shape is the user's error, said by call()
        dynamic = [v.name for v in graph_inputs(model) if v.type.HasField("tensor_type")
                   and v.name not in self.input_shapes
                   and not all(isinstance(d, int) for d in declared_dims(v) or [None])]
        if dynamic:
            raise PreconditionError(
                f"a concrete shape for '{dynamic[0]}' (--input-shape): the workload's shape is not pinned, "
                "because its host pipeline feeds the unfused network other sizes (fuse_host_stages gives static ones)"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_shapes={self.input_shapes!r})"

    def call(self, model: onnx.ModelProto) -> PassResult:
        before = _fingerprint(model.graph)
        names = {value.name for value in graph_inputs(model)}
        # Shapes of inputs an earlier pass replaced (the network input after
        # fuse_host_stages) no longer apply; the pipeline checked the names
        # against the model it started from.
        shapes = concrete_input_shapes(model, {k: v for k, v in self.input_shapes.items() if k in names})
        pinned_dims = 0
        for value in graph_inputs(model):
            if value.name not in shapes:
                continue
            declared = declared_dims(value)
            dynamic = len(shapes[value.name]) if declared is None else sum(not isinstance(d, int) for d in declared)
            if dynamic:
                pinned_dims += dynamic
                set_dims(value, shapes[value.name])

        folded_nodes = _fold_constants(model, shapes)
        _store_inferred_shapes(model, shapes)
        _check_fits(model, shapes)
        onnx.checker.check_model(model, full_check=True)

        modified = _fingerprint(model.graph) != before
        stats = {"pinned_dims": pinned_dims, "folded_nodes": folded_nodes}
        logger.debug("pinned %s: %s", _describe(shapes), stats)
        return PassResult(model, modified, stats)


def _simplify(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> onnx.ModelProto:
    """onnxsim's shape inference and constant folding, without its fusions and side effects."""
    kwargs: dict[str, object] = {
        "overwrite_input_shapes": {name: list(dims) for name, dims in shapes.items()},
        "perform_optimization": False,
        "check_n": 0,
    }
    return quiet_simplify(model, **kwargs)


def _fold_constants(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Folds what the pinned shapes made constant into ``model``; returns how many nodes went.

    Only onnxsim's graph is taken, and only when it removed nodes: the model's
    opset, IR version, metadata and functions stay as they were, onnxsim's
    generated node names are replaced by the original ones (and the nodes'
    metadata, which onnxsim drops, is put back), and initializers
    listed as graph inputs that onnxsim dropped from ``graph.input`` are put back.
    """
    try:
        simplified = _simplify(model, shapes)
    except Exception as error:  # onnxsim raises anything from RuntimeError to checker errors
        raise _contradiction(shapes, first_line(error)) from error

    folded = len(model.graph.node) - len(simplified.graph.node)
    if folded <= 0:
        return 0
    graph, new = model.graph, simplified.graph

    output_names = [v.name for v in graph.output]
    if [v.name for v in new.output] != output_names:
        raise RuntimeError(f"onnxsim changed the graph outputs from {output_names} to {[v.name for v in new.output]}")

    originals = {node.output[0]: node for node in graph.node if node.output}
    for node in new.node:
        original = originals.get(node.output[0]) if node.output else None
        if original is not None:
            node.name = original.name
            # Node metadata carries contracts (a pin to float32, a slice's mark); onnxsim drops it.
            if not node.metadata_props and original.op_type == node.op_type:
                node.metadata_props.extend(original.metadata_props)

    old_initializers = {init.name for init in graph.initializer}
    new_initializers = {init.name for init in new.initializer}
    kept_inputs = [v for v in graph.input if v.name not in old_initializers or v.name in new_initializers]
    new.ClearField("input")
    new.input.extend(kept_inputs)

    graph.CopyFrom(new)
    logger.debug("folded %d nodes", folded)
    return folded


def _store_inferred_shapes(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Writes the shapes from strict ONNX shape inference into ``value_info`` and ``graph.output``.

    ``value_info`` is rebuilt in node order, so that a second run writes the same.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as error:
        raise _contradiction(shapes, first_line(error)) from error

    graph = model.graph
    known = {v.name: v for v in inferred.graph.value_info}
    outputs = {v.name for v in graph.output}
    values = [name for node in graph.node for name in node.output if name and name not in outputs]
    graph.ClearField("value_info")
    graph.value_info.extend(known[name] for name in values if name in known)

    for value, found in zip(graph.output, inferred.graph.output, strict=True):
        dims = declared_dims(found)
        if dims is not None and all(isinstance(d, int) for d in dims):
            value.type.tensor_type.elem_type = found.type.tensor_type.elem_type
            set_dims(value, dims)  # type: ignore[arg-type]


def _check_fits(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Checks what ONNX shape inference lets through: Reshape sizes, Conv channels, static outputs.

    Raises:
        ShapeSpecError: naming the first node the shapes do not fit, or the first
            output that is still dynamic.
    """
    graph = model.graph
    infos = infer_tensor_info(model)

    def static(name: str) -> tuple[int, ...] | None:
        info = infos.get(name)
        return info.static_shape if info else None

    for node in graph.node:
        label = f"{node.op_type} node '{node.name or node.output[0]}'"
        data = static(node.input[0]) if node.input else None
        if data is None:
            continue
        if node.op_type == "Reshape":
            target = constant_value(graph, node.input[1])
            if target is None:
                continue
            target_dims = [int(d) for d in target.reshape(-1)]
            if not attribute(node, "allowzero", 0):
                target_dims = [data[i] if d == 0 and i < len(data) else d for i, d in enumerate(target_dims)]
            known = math.prod(d for d in target_dims if d != -1)
            size = math.prod(data)
            fits = size == known if -1 not in target_dims else known > 0 and size % known == 0
            if not fits:
                raise _contradiction(
                    shapes,
                    f"{label} cannot reshape a {format_dims(data)} tensor ({size} elements) "
                    f"to {format_dims(target_dims)}",
                )
        elif node.op_type in ("Conv", "ConvTranspose") and len(data) >= 2:
            weight = static(node.input[1])
            if weight is None:
                continue
            group = int(attribute(node, "group", 1))
            channels = weight[1] * group if node.op_type == "Conv" else weight[0]
            if data[1] != channels:
                raise _contradiction(
                    shapes, f"{label} takes {channels} input channels, but gets a {format_dims(data)} tensor"
                )

    for value in graph.output:
        info = infos.get(value.name)
        if info is None or info.static_shape is None:
            shown = "unknown" if info is None or info.shape is None else format_dims(info.shape)
            raise ShapeSpecError(
                f"with {_describe(shapes)}, output '{value.name}' still has a dynamic shape ({shown}): "
                "it depends on data, not only on the input shapes"
            )
