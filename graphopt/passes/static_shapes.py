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
from ..shapes import dynamic_inputs_without_shape, parse_input_shape
from ._onnxsim import quiet_simplify
from .base import Pass, PassResult

__all__ = ["PinStaticShapesPass", "parse_input_shape"]

logger = logging.getLogger(__name__)

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
      fixed dimensions must agree; a shape for a name that is not (or no
      longer) an input is left out (the pipeline checks the names before its
      first pass);
    * when an input with a dynamic dimension (a ``dim_param``, an unknown
      dimension or ``dim_value: -1``) has no given shape, the pass changes
      nothing and its note names the input: dynamic models stay dynamic;
    * the shapes are written into ``graph.input``, exporters' stale
      ``value_info`` and output shapes are dropped; onnxsim (shape inference
      and constant folding only, no fusions) then folds what became
      constant, such as Shape → Gather → Concat chains feeding a Reshape —
      its result is taken only when onnxruntime runs it;
    * ONNX shape inference (strict, with data propagation; lenient where only
      strict inference fails and onnxruntime runs the model) gives the
      shapes stored as ``value_info`` and on ``graph.output``; an output whose
      size depends on the data keeps a dynamic shape, and the note says so;
    * a model already static, with nothing left to fold (a pipeline's own
      output), is left exactly as it is;
    * a shape the graph cannot take (a Reshape to a size that does not fit, a
      Conv whose channels differ from its weight's, a failure of strict shape
      inference that onnxruntime confirms) is a :class:`ShapeSpecError`.

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
        given = {k: v for k, v in self.input_shapes.items() if k in names}
        unpinned = dynamic_inputs_without_shape(model, given)
        if unpinned:
            listed = ", ".join(f"'{name}'" for name in unpinned)
            return PassResult(model, False, {"pinned_dims": 0, "folded_nodes": 0}, note=(
                f"skipped: input {listed} keeps its dynamic dimensions (no --input-shape given for it), "
                "so there are no concrete shapes to pin"))
        shapes = concrete_input_shapes(model, given)
        pinned_dims = 0
        for value in graph_inputs(model):
            if value.name not in shapes:
                continue
            declared = declared_dims(value)
            dynamic = len(shapes[value.name]) if declared is None else sum(not isinstance(d, int) for d in declared)
            if dynamic:
                pinned_dims += dynamic
                set_dims(value, shapes[value.name])

        # Declared value_info is rebuilt from scratch: exporters leave stale shapes
        # in it (dimension -1, a rank that no longer holds) that mislead folding
        # and that strict inference rejects.
        untouched = onnx.ModelProto()
        untouched.CopyFrom(model)
        model.graph.ClearField("value_info")
        folded_nodes = _fold_constants(model, shapes)
        if not pinned_dims and not folded_nodes:
            # Static already, nothing left to fold (a pipeline's own output):
            # the model stays exactly as it is, its value_info included.
            return PassResult(untouched, False, {"pinned_dims": 0, "folded_nodes": 0})
        _store_inferred_shapes(model, shapes)
        dynamic_outputs = _check_fits(model, shapes)
        onnx.checker.check_model(model, full_check=True)

        modified = _fingerprint(model.graph) != before
        stats = {"pinned_dims": pinned_dims, "folded_nodes": folded_nodes}
        logger.debug("pinned %s: %s", _describe(shapes), stats)
        note = None
        if dynamic_outputs:
            listed = ", ".join(f"'{name}'" for name in dynamic_outputs)
            note = f"output {listed} keeps a dynamic shape: it depends on the data, not only on the input shapes"
        return PassResult(model, modified, stats, note=note)


def _runs_in_onnxruntime(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether onnxruntime runs ``model`` once on random inputs of ``shapes``: the judge of a contradiction."""
    from ..errors import GraphoptError
    from ..verify import random_inputs, run_onnxruntime

    try:
        run_onnxruntime(model, random_inputs(model, dict(shapes)))
    except GraphoptError as error:
        logger.debug("onnxruntime cannot run the model at %s: %s", _describe(shapes), error)
        return False
    return True


def _infer(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> onnx.ModelProto:
    """Strict ONNX shape inference (with data propagation, else without), or lenient where only it fails.

    ONNX's inference is stricter than onnxruntime, and data propagation has
    gaps (paddle2onnx exports trip it on an Add whose operands it cannot
    resolve). A model onnxruntime runs at these shapes is no contradiction:
    it gets lenient inference.

    Raises:
        ShapeSpecError: strict inference fails and onnxruntime cannot run the model either.
    """
    errors: list[Exception] = []
    for data_prop in (True, False):
        try:
            return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=data_prop)
        except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as error:
            errors.append(error)
    if not _runs_in_onnxruntime(model, shapes):
        raise _contradiction(shapes, first_line(errors[0])) from errors[0]
    logger.debug("strict shape inference failed (%s), onnxruntime runs the model: lenient inference", errors[0])
    return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=False)


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
        # onnxsim runs ONNX's strict shape inference first; a model that
        # onnxruntime runs at these shapes is no contradiction, only unfoldable here.
        if not _runs_in_onnxruntime(model, shapes):
            raise _contradiction(shapes, first_line(error)) from error
        logger.debug("onnxsim cannot fold at %s (%s); onnxruntime runs the model", _describe(shapes), error)
        return 0

    folded = len(model.graph.node) - len(simplified.graph.node)
    if folded <= 0:
        return 0
    if not _runs_in_onnxruntime(simplified, shapes):
        # onnxsim's folding has broken graphs that its shape inference
        # misreads (paddle2onnx's text recognizer); its result is then left out.
        logger.debug("onnxsim's folded graph does not run in onnxruntime; folding left out")
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
    model.graph.ClearField("value_info")
    declared = [onnx.TypeProto() for _ in model.graph.output]
    for copy, value in zip(declared, model.graph.output, strict=True):
        copy.CopyFrom(value.type)
    _forget_output_shapes(model.graph)
    inferred = _infer(model, shapes)

    graph = model.graph
    known = {v.name: v for v in inferred.graph.value_info}
    outputs = {v.name for v in graph.output}
    values = [name for node in graph.node for name in node.output if name and name not in outputs]
    graph.ClearField("value_info")
    graph.value_info.extend(known[name] for name in values if name in known)

    for value, found, old in zip(graph.output, inferred.graph.output, declared, strict=True):
        if found.type.tensor_type.HasField("shape"):
            value.type.CopyFrom(found.type)
            continue
        # Inference could not tell (a data-dependent size): the declaration stays, less its -1 dimensions.
        value.type.CopyFrom(old)
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value < 0:
                dim.Clear()
        if not value.type.tensor_type.elem_type:
            value.type.tensor_type.elem_type = found.type.tensor_type.elem_type


def _forget_output_shapes(graph: onnx.GraphProto) -> None:
    """Clears the declared shapes of the graph outputs, for inference to fill in.

    Exporters declare output shapes that do not hold (paddle2onnx's dimension
    -1, a rank that a Reshape no longer gives); with every input static,
    inference knows better.
    """
    for value in graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")


def _check_fits(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Checks what ONNX shape inference lets through (Reshape sizes, Conv channels); returns the dynamic outputs.

    Raises:
        ShapeSpecError: naming the first node the shapes do not fit.
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

    return [v.name for v in graph.output if infos.get(v.name) is None or infos[v.name].static_shape is None]
