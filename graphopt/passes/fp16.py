"""Float16 conversion with every value's type written in the graph.

A strongly typed TensorRT build (the only kind TensorRT 11 has) takes each
layer's precision from the ONNX types, so the conversion decides, node by
node, whether the node runs in float16 and writes that down: float16
initializers, ``Cast`` nodes where a float16 value meets a float32 reader,
``Cast(to=…)`` attributes adjusted, and value types re-inferred.

Rules:

* only ``tensor(float)`` values change; an input slot of an operator whose
  schema does not allow float16 there (``Resize`` scales, say) keeps float32,
  and shape, index and boolean values are untouched;
* nodes stay in float32 when named in ``keep_nodes``, of a type in
  ``keep_op_types``, pinned by node metadata ``graphopt.precision=float32``
  (as :class:`~graphopt.passes.nms_logits.NmsOnLogitsPass` pins the reported
  probabilities), outside the default ONNX domain or carrying subgraphs, when
  they read a constant beyond float16's range, and when all their float
  inputs are float32 constants or values computed from constants only (table
  lookups such as a detector's box tables: float16 would only round them);
* with ``keep_io_types``, float graph inputs and outputs keep float32 behind
  one ``Cast`` each;
* no ``Cast`` pair is left that float32 would not need: a cast to the type a
  value already has is dropped, and a chain of casts through an exact
  intermediate type becomes one.

The precision guard (on by default when calibration inputs are known) then
runs the float32 and float16 graphs on a few calibration inputs: a node whose
float32 output exceeds float16's range is kept in float32, and if the
outputs still differ beyond tolerance (for a fused detector: other
detections, or scores differing by more than ``score_tolerance``), the
fewest nodes nearest the outputs that restore them are kept in float32 too.
The report lists every kept node and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..analysis import float16_flop_share
from ..detections import CLASSED_DETECTOR_OUTPUTS, FUSED_DETECTOR_OUTPUTS
from ..errors import ConfigError, RuntimeRunError
from ..graph import consumers, dead_node_indices, graph_inputs, graph_output_names, infer_tensor_info, unique_name
from ..options import OptimizeOptions
from ..verify import run_onnxruntime
from .base import Pass, PassResult
from .nms_logits import PRECISION_KEY, infer_value_info, pin_float32

__all__ = [
    "CLASSED_BOX_TOLERANCE",
    "FLOAT16_MAX",
    "STAT_KEYS",
    "ConvertToFp16Pass",
    "Fp16Conversion",
    "KeptNode",
    "convert_to_float16",
    "default_accept",
    "detections_accept",
    "outputs_accept",
]

logger = logging.getLogger(__name__)

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
#: Pixels a classed detector's box may move under float16 and still be the same box (the guard's default).
CLASSED_BOX_TOLERANCE = 0.5
STAT_KEYS = ("float16_nodes", "float32_nodes", "kept_by_guard", "casts", "initializers", "calibration_inputs",
             "float16_flop_share")

_FLOAT, _HALF = TensorProto.FLOAT, TensorProto.FLOAT16
# Casts into these types from the first are exact, so a second cast after them is the same as one.
_EXACT_INTO: dict[int, set[int]] = {
    TensorProto.FLOAT: {TensorProto.UINT8, TensorProto.INT8, TensorProto.UINT16, TensorProto.INT16,
                        TensorProto.BOOL, TensorProto.FLOAT16},
    TensorProto.DOUBLE: {TensorProto.UINT8, TensorProto.INT8, TensorProto.UINT16, TensorProto.INT16,
                         TensorProto.INT32, TensorProto.UINT32, TensorProto.BOOL, TensorProto.FLOAT16,
                         TensorProto.FLOAT},
}
# Operators whose output type comes from an attribute other than Cast's: left in float32.
_ATTRIBUTE_TYPED = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                              "EyeLike", "Multinomial", "Bernoulli", "ConstantOfShape"})


@dataclass(frozen=True)
class KeptNode:
    """A node the conversion left in float32, and why (one phrase for the report)."""

    name: str
    op_type: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "op_type": self.op_type, "reason": self.reason}


@dataclass
class Fp16Conversion:
    """A converted model and what the conversion did (``converted``: the nodes now in float16, in graph order)."""

    model: onnx.ModelProto
    converted: list[str]
    kept: list[KeptNode] = field(default_factory=list)
    casts: int = 0
    initializers: int = 0


@dataclass
class _Slots:
    """The float input and output positions of a node that float16 may take."""

    inputs: set[int]
    outputs: set[int]


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _float_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value of the main graph whose type is known (inferred where not declared)."""
    return {name: info.elem_type for name, info in infer_tensor_info(model).items() if info.elem_type}


def _schema_of_convertible(node: onnx.NodeProto, opset: int) -> onnx.defs.OpSchema | None:
    """The schema of ``node`` if the conversion may consider it at all, else None.

    Not considered: nodes outside the default domain, whose output type comes
    from an attribute, that carry subgraphs, or that cast to float16 already.
    """
    if node.domain not in ("", "ai.onnx") or node.op_type in _ATTRIBUTE_TYPED:
        return None
    if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute):
        return None
    if node.op_type == "Cast" and any(a.name == "to" and a.i == _HALF for a in node.attribute):
        return None  # casts to float16 already: a float16 input would only put a second Cast in front of it
    try:
        return onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return None


def _half_slots(node: onnx.NodeProto, types: Mapping[str, int], opset: int) -> _Slots | None:
    """Which float inputs/outputs of ``node`` its schema lets carry float16; None if the node cannot."""
    schema = _schema_of_convertible(node, opset)
    if schema is None:
        return None
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

    def formal(params: Sequence[onnx.defs.OpSchema.FormalParameter], i: int) -> str | None:
        return params[min(i, len(params) - 1)].type_str if params else None

    half_params: set[str] = set()
    slots = _Slots(set(), set())
    for i, name in enumerate(node.input):
        type_str = formal(schema.inputs, i)
        if (name and types.get(name) == _FLOAT and type_str is not None
                and "tensor(float16)" in allowed.get(type_str, {type_str})):
            slots.inputs.add(i)
            half_params.add(type_str)
    for i, name in enumerate(node.output):
        type_str = formal(schema.outputs, i)
        if not name or type_str is None:
            continue
        if name not in types:
            return None  # an output of unknown type: leave the node alone
        if types[name] == _FLOAT and "tensor(float16)" in allowed.get(type_str, {type_str}):
            if node.op_type == "Cast" or type_str in half_params or type_str not in allowed:
                slots.outputs.add(i)
            elif not any(types.get(n) == _FLOAT for n in node.input):
                slots.outputs.add(i)  # float output from non-float inputs only (a Cast-like op)
    for i in list(slots.inputs):
        # A type parameter shared with a float32-only output keeps its inputs in float32 too.
        type_str = formal(schema.inputs, i)
        shared_out = [j for j, name in enumerate(node.output) if formal(schema.outputs, j) == type_str and name
                      and types.get(name) == _FLOAT and j not in slots.outputs]
        if shared_out:
            slots.inputs.discard(i)
    return slots if slots.inputs or slots.outputs else None


def _constant_derived(graph: onnx.GraphProto, types: Mapping[str, int]) -> set[str]:
    """Float values computed from float constants only (and integer/boolean values)."""
    derived = {t.name for t in graph.initializer if t.data_type == _FLOAT}
    for node in graph.node:
        floats = [name for name in node.input if name and types.get(name) == _FLOAT]
        if node.op_type == "Constant" or (floats and all(name in derived for name in floats)):
            derived.update(out for out in node.output if types.get(out) == _FLOAT)
    return derived


def _out_of_range(tensor: onnx.TensorProto) -> float | None:
    values = numpy_helper.to_array(tensor)
    finite = values[np.isfinite(values)]
    peak = float(np.max(np.abs(finite))) if finite.size else 0.0
    return peak if peak > FLOAT16_MAX else None


def convert_to_float16(
    model: onnx.ModelProto,
    *,
    keep_nodes: Mapping[str, str] | Collection[str] = (),
    keep_op_types: Collection[str] = (),
    keep_io_types: bool = True,
) -> Fp16Conversion:
    """Converts ``model`` to float16 as the module docstring says; ``model`` is not changed.

    Args:
        model: a model whose nodes all have unique names.
        keep_nodes: names of nodes to keep in float32 (a mapping gives the reason for each).
        keep_op_types: operator types to keep in float32.
        keep_io_types: keep float graph inputs and outputs in float32.
    """
    work = onnx.ModelProto()
    work.CopyFrom(model)
    graph = work.graph
    types = _float_types(work)
    reasons = dict(keep_nodes) if isinstance(keep_nodes, Mapping) else dict.fromkeys(keep_nodes, "kept by name")
    constants = {t.name: t for t in graph.initializer}
    # 1. Which nodes run in float16, and which of their slots change.
    half, kept = _choose_half_nodes(graph, types, _opset(work), reasons, keep_op_types, constants)
    # 2. The type every float value is produced in, and the type each reader wants.
    produced = _produced_types(graph, types, half, keep_io_types)
    half_copies, converted_constants = _convert_constants(graph, constants, half, produced)
    # 3. Casts where a value meets a reader that wants the other type.
    casts = _Casts(graph, constants)
    _cast_inputs(graph, types, half, produced, half_copies, casts)
    outputs = graph_output_names(graph)
    renames = _cast_outputs(graph, produced, keep_io_types, casts)
    nodes = casts.placed(graph, constants)
    graph.ClearField("node")
    graph.node.extend(nodes)
    added = sum(1 for n in nodes if n.op_type == "Cast") - sum(1 for n in model.graph.node if n.op_type == "Cast")
    known = {**types, **produced, **dict.fromkeys(half_copies.values(), _HALF)}
    known.update({new: produced.get(old, _FLOAT) for old, new in renames.items()})
    known.update({out: to for (_, to), out in casts.made.items()})
    known.update(dict.fromkeys(renames, _FLOAT))
    _collapse_casts(graph, outputs, known)
    for node in graph.node:
        if node.name not in half and any(known.get(out) == _FLOAT for out in node.output):
            pin_float32(node)  # float32 on purpose: a second conversion leaves it
    graph.ClearField("value_info")
    graph.value_info.extend(infer_value_info(work))
    return Fp16Conversion(
        model=work,
        converted=[node.name for node in model.graph.node if node.name in half],
        kept=kept,
        casts=max(added, 0),
        initializers=converted_constants,
    )


def _choose_half_nodes(
    graph: onnx.GraphProto,
    types: Mapping[str, int],
    opset: int,
    reasons: Mapping[str, str],
    keep_op_types: Collection[str],
    constants: Mapping[str, onnx.TensorProto],
) -> tuple[dict[str, _Slots], list[KeptNode]]:
    """The nodes that run in float16 (with the slots that change), and those kept in float32 with why."""
    table = _constant_derived(graph, types)
    half: dict[str, _Slots] = {}
    kept: list[KeptNode] = []
    for node in graph.node:
        slots = _half_slots(node, types, opset)
        if slots is None:
            continue
        reason = _keep_reason(node, slots, reasons, keep_op_types, table, constants)
        if reason is not None:
            kept.append(KeptNode(node.name, node.op_type, reason))
            continue
        half[node.name] = slots
    return half, kept


def _keep_reason(
    node: onnx.NodeProto,
    slots: _Slots,
    reasons: Mapping[str, str],
    keep_op_types: Collection[str],
    table: set[str],
    constants: Mapping[str, onnx.TensorProto],
) -> str | None:
    """Why a node that float16 could take stays in float32 (the first rule that applies), or None."""
    reason = reasons.get(node.name)
    if reason is not None:
        return reason
    if node.op_type in keep_op_types:
        return f"kept by op type {node.op_type}"
    if any(p.key == PRECISION_KEY and p.value == "float32" for p in node.metadata_props):
        return f"pinned to float32 in the graph ({PRECISION_KEY})"
    if node.op_type != "Cast":
        floats = [node.input[i] for i in slots.inputs]
        if floats and all(name in table for name in floats):
            return "reads float32 constants only (a table lookup): float16 would only round them"
    for i in slots.inputs:
        peak = _out_of_range(constants[node.input[i]]) if node.input[i] in constants else None
        if peak is not None:
            return f"its constant '{node.input[i]}' reaches {peak:.3g}, beyond float16's {FLOAT16_MAX:g}"
    return None


def _produced_types(
    graph: onnx.GraphProto, types: Mapping[str, int], half: Mapping[str, _Slots], keep_io_types: bool
) -> dict[str, int]:
    """The type each float input and node output is produced in; float16 graph inputs and Casts retyped."""
    produced: dict[str, int] = {}
    for value in graph.input:
        if types.get(value.name) == _FLOAT:
            produced[value.name] = _FLOAT if keep_io_types else _HALF
            if not keep_io_types:
                value.type.tensor_type.elem_type = _HALF
    for node in graph.node:
        slots = half.get(node.name)
        for i, name in enumerate(node.output):
            if types.get(name) == _FLOAT:
                produced[name] = _HALF if slots is not None and i in slots.outputs else _FLOAT
        if slots is not None and node.op_type == "Cast" and 0 in slots.outputs:
            for attr in node.attribute:
                if attr.name == "to":
                    attr.i = _HALF
    return produced


def _convert_constants(
    graph: onnx.GraphProto,
    constants: Mapping[str, onnx.TensorProto],
    half: Mapping[str, _Slots],
    produced: dict[str, int],
) -> tuple[dict[str, str], int]:
    """Float constants read in float16 converted (a float16 copy beside one also read in float32).

    Records each constant's type in ``produced``; returns the copies' names by
    original and how many constants were converted.
    """
    users = consumers(graph)

    def wanted(name: str) -> set[bool]:
        """Whether each read of ``name`` wants float16."""
        return {node.name in half and i in half[node.name].inputs
                for node in users.get(name, []) for i, v in enumerate(node.input) if v == name}

    reads = {name: wanted(name) for name, tensor in constants.items() if tensor.data_type == _FLOAT}
    wanted_half_constant = {name for name, kinds in reads.items() if True in kinds}
    float_readers = {name for name in wanted_half_constant if False in reads[name]}
    converted_constants = 0
    half_copies: dict[str, str] = {}
    for name in wanted_half_constant:
        tensor = constants[name]
        values = numpy_helper.to_array(tensor).astype(np.float16)
        if name in float_readers:  # read in both types: a float16 copy beside the original
            copy = numpy_helper.from_array(values, f"{name}/float16")
            graph.initializer.append(copy)
            half_copies[name] = copy.name
        else:
            tensor.CopyFrom(numpy_helper.from_array(values, name))
        converted_constants += 1
    for name in wanted_half_constant - float_readers:
        produced[name] = _HALF
    for name, tensor in constants.items():
        if name not in wanted_half_constant and tensor.data_type == _FLOAT:
            produced[name] = _FLOAT
    return half_copies, converted_constants


class _Casts:
    """The Casts a conversion adds: one per value and type, each to be placed right after the value it reads."""

    def __init__(self, graph: onnx.GraphProto, constants: Mapping[str, onnx.TensorProto]) -> None:
        self.taken = {n.name for n in graph.node} | {v for n in graph.node for v in n.output} | set(constants)
        #: The cast of each (value, type) to its output name.
        self.made: dict[tuple[str, int], str] = {}
        #: The Casts that go right after each value's producer.
        self.after: dict[str, list[onnx.NodeProto]] = {}

    def unique(self, base: str) -> str:
        return unique_name(base, self.taken)

    def cast(self, value: str, to: int) -> str:
        """The name of ``value`` cast to ``to``, the Cast made on first use."""
        key = (value, to)
        if key not in self.made:
            suffix = "float16" if to == _HALF else "float32"
            out = self.unique(f"{value}/to_{suffix}")
            node = helper.make_node("Cast", [value], [out], name=out, to=to)
            self.after.setdefault(value, []).append(node)
            self.made[key] = out
        return self.made[key]

    def placed(self, graph: onnx.GraphProto, constants: Mapping[str, onnx.TensorProto]) -> list[onnx.NodeProto]:
        """The graph's nodes with every Cast right after what it reads (graph inputs' and constants' first)."""
        nodes: list[onnx.NodeProto] = []
        for value in [v.name for v in graph.input] + list(constants):
            nodes.extend(self.after.pop(value, []))
        for node in graph.node:
            nodes.append(node)
            for out in node.output:
                nodes.extend(self.after.pop(out, []))
        return nodes


def _cast_inputs(
    graph: onnx.GraphProto,
    types: Mapping[str, int],
    half: Mapping[str, _Slots],
    produced: Mapping[str, int],
    half_copies: Mapping[str, str],
    casts: _Casts,
) -> None:
    """Points every float input at a value of the type its node wants: a float16 copy or a Cast."""
    for node in graph.node:
        slots = half.get(node.name)
        for i, name in enumerate(node.input):
            if not name or types.get(name) != _FLOAT:
                continue
            want = _HALF if slots is not None and i in slots.inputs else _FLOAT
            if want == _HALF and name in half_copies:
                node.input[i] = half_copies[name]
            elif produced.get(name, _FLOAT) != want:
                node.input[i] = casts.cast(name, want)


def _cast_outputs(
    graph: onnx.GraphProto, produced: Mapping[str, int], keep_io_types: bool, casts: _Casts
) -> dict[str, str]:
    """Float16 graph outputs: retyped, or (``keep_io_types``) renamed and cast back to float32 under their name.

    Returns the renames, output name to the float16 value's new name.
    """
    renames: dict[str, str] = {}
    for value in graph.output:
        if produced.get(value.name) == _HALF:
            if keep_io_types:
                renames[value.name] = casts.unique(f"{value.name}/float16")
            else:
                value.type.tensor_type.elem_type = _HALF
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    for value, _to in list(casts.made):
        if value in renames:
            for node in casts.after.pop(value, []):
                node.input[0] = renames[value]
                casts.after.setdefault(renames[value], []).append(node)
    for old, new in renames.items():
        node = helper.make_node("Cast", [new], [old], name=casts.unique(f"{old}/to_float32"), to=_FLOAT)
        casts.after.setdefault(new, []).append(node)
    return renames


def _collapse_casts(graph: onnx.GraphProto, outputs: set[str], known: Mapping[str, int]) -> None:
    """Drops casts to a value's own type and merges cast chains through an exact intermediate type."""
    types = dict(known)
    producer = {out: node for node in graph.node for out in node.output}
    for node in graph.node:  # the type each Cast writes, in graph order
        if node.op_type == "Cast":
            types[node.output[0]] = next(a.i for a in node.attribute if a.name == "to")
        if node.op_type == "Cast" and node.input[0] in producer and producer[node.input[0]].op_type == "Cast":
            first = producer[node.input[0]]
            source = types.get(first.input[0])
            middle = types.get(first.output[0])
            if source is not None and middle is not None and source in _EXACT_INTO.get(int(middle), set()):
                node.input[0] = first.input[0]
    renames: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "Cast" and node.output[0] not in outputs:
            to = next(a.i for a in node.attribute if a.name == "to")
            if types.get(node.input[0]) == to:
                renames[node.output[0]] = renames.get(node.input[0], node.input[0])
    for node in graph.node:
        for i, name in enumerate(node.input):
            while name in renames:
                name = renames[name]
            node.input[i] = name
    for index in reversed(dead_node_indices(graph)):
        del graph.node[index]


# --- the precision guard --------------------------------------------------------------------------

Feeds = Mapping[str, np.ndarray]
#: ``accept(reference_outputs, candidate_outputs)`` -> None when the candidate is good enough, else why not.
Acceptance = Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], "str | None"]


def outputs_accept(*, rtol: float = 1e-2) -> Acceptance:
    """Accepts outputs within ``rtol`` of each output's largest reference magnitude (exact for non-floats)."""

    def accept(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> str | None:
        for name, ref in reference.items():
            new = candidate[name]
            if not np.issubdtype(ref.dtype, np.floating):
                if not np.array_equal(ref, new):
                    return f"output '{name}' changes"
                continue
            ref64, new64 = ref.astype(np.float64), new.astype(np.float64)
            scale = float(np.max(np.abs(ref64[np.isfinite(ref64)]), initial=0.0))
            same_inf = (ref64 == new64) | (np.isnan(ref64) & np.isnan(new64))
            err = np.where(same_inf, 0.0, np.abs(new64 - ref64))
            worst = float(np.max(err, initial=0.0))
            if not worst <= rtol * max(scale, 1e-6):
                return f"output '{name}' changes by {worst:.3g} (more than {rtol:g} of its range {scale:.3g})"
        return None

    return accept


def detections_accept(*, score_tolerance: float = 1e-2, box_tolerance: float = 0.0) -> Acceptance:
    """Accepts a fused detector's outputs when its detections are the same.

    The same count, the same ``cells`` (the person detector's peaks) or
    ``classes`` (:data:`~graphopt.detections.CLASSED_DETECTOR_OUTPUTS`), whichever
    the outputs hold, boxes within ``box_tolerance`` (0: equal; the person
    detector's come from tables, a YOLO's are regressed by the network) and
    scores within ``score_tolerance``.
    """

    def accept(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> str | None:
        count = int(reference["num_detections"])
        if int(candidate["num_detections"]) != count:
            return f"{int(candidate['num_detections'])} detections instead of {count}"
        for key, what in (("cells", "detections at other cells"), ("classes", "detections of other classes")):
            if key in reference and not np.array_equal(reference[key][:count], candidate[key][:count]):
                return what
        box = np.abs(reference["boxes"][:count].astype(np.float64) - candidate["boxes"][:count])
        if box.size and not float(box.max()) <= box_tolerance:
            return "other boxes" if box_tolerance == 0 else (
                f"boxes moving by {float(box.max()):.3g} (more than {box_tolerance:g})")
        diff = np.abs(reference["scores"][:count].astype(np.float64) - candidate["scores"][:count])
        if diff.size and not float(diff.max()) <= score_tolerance:
            return f"scores differing by {float(diff.max()):.3g} (more than {score_tolerance:g})"
        return None

    return accept


def _run(model: onnx.ModelProto, feeds: Sequence[Feeds], what: str) -> list[dict[str, np.ndarray]]:
    return [run_onnxruntime(model, dict(f), what=what) for f in feeds]


def _float32_run(
    model: onnx.ModelProto, feeds: Sequence[Feeds]
) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
    """One float32 run over ``feeds``: each node's largest finite |output|, and the graph's outputs per feed."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    types = _float_types(work)
    owner = {out: node.name for node in work.graph.node for out in node.output
             if out and types.get(out) == _FLOAT}
    present = [v.name for v in work.graph.output]
    for name in owner:
        if name not in present:
            work.graph.output.append(helper.make_tensor_value_info(name, _FLOAT, None))
    peaks: dict[str, float] = {}
    outputs = _run(work, feeds, "the float32 model (precision guard)")
    for values_by_name in outputs:
        for name, node in owner.items():
            values = values_by_name[name]
            # ±float32 max is the "lowest" some kernels start a max from (an all -inf
            # window pools to it): an infinity in disguise, and float16 has infinities.
            finite = values[np.isfinite(values) & (np.abs(values) < np.finfo(np.float32).max)]
            peak = float(np.max(np.abs(finite), initial=0.0))
            peaks[node] = max(peaks.get(node, 0.0), peak)
    return peaks, [{name: run[name] for name in present} for run in outputs]


def _guarded(
    model: onnx.ModelProto,
    feeds: Sequence[Feeds],
    accept: Acceptance,
    *,
    keep: Mapping[str, str],
    keep_op_types: Collection[str],
    keep_io_types: bool,
) -> tuple[Fp16Conversion, list[KeptNode]]:
    """The conversion with the guard's additions to ``keep``, and the nodes the guard kept."""
    keep = dict(keep)
    first = convert_to_float16(model, keep_nodes=keep, keep_op_types=keep_op_types, keep_io_types=keep_io_types)
    candidates = list(first.converted)
    ops = {n.name: n.op_type for n in model.graph.node}
    # Every node's outputs, kept ones too: a kept node's value is still cast for its float16 readers.
    activations, reference = _float32_run(model, feeds)
    guard = _keep_overflowing(model, activations, candidates, keep)
    trial = _Trial(model, feeds, reference, accept, keep_op_types, keep_io_types)
    half = [name for name in candidates if name not in keep]
    why = trial.failure(keep)
    if why is not None:
        for name in _fewest_float32(model, half, lambda extra: trial.failure(keep, extra), why):
            reason = f"float16 here changes the outputs ({why})"
            keep[name] = reason
            guard.append(KeptNode(name, ops[name], reason))
    final = convert_to_float16(model, keep_nodes=keep, keep_op_types=keep_op_types, keep_io_types=keep_io_types)
    return final, guard


def _keep_overflowing(
    model: onnx.ModelProto, activations: Mapping[str, float], candidates: Sequence[str], keep: dict[str, str]
) -> list[KeptNode]:
    """Adds to ``keep`` every candidate whose output exceeds float16's range on the calibration inputs.

    Such a value overflows wherever it is cast for a float16 reader, so its
    readers stay in float32 too. Returns the nodes added, with why.
    """
    guard: list[KeptNode] = []
    ops = {n.name: n.op_type for n in model.graph.node}
    overflowing = {name: peak for name, peak in activations.items() if peak > FLOAT16_MAX}
    for name, peak in overflowing.items():
        if name in candidates and name not in keep:
            reason = f"its output reaches {peak:.3g} on the calibration inputs, beyond float16's {FLOAT16_MAX:g}"
            keep[name] = reason
            guard.append(KeptNode(name, ops[name], reason))
    users = consumers(model.graph)
    for node in model.graph.node:
        if node.name not in overflowing:
            continue
        for out in node.output:
            for reader in users.get(out, []):
                if reader.name in candidates and reader.name not in keep:
                    reason = (f"reads '{out}', which reaches {overflowing[node.name]:.3g} on the calibration "
                              f"inputs, beyond float16's {FLOAT16_MAX:g}")
                    keep[reader.name] = reason
                    guard.append(KeptNode(reader.name, reader.op_type, reason))
    return guard


@dataclass
class _Trial:
    """A conversion tried on the calibration inputs against the float32 outputs (``reference``)."""

    model: onnx.ModelProto
    feeds: Sequence[Feeds]
    reference: Sequence[Mapping[str, np.ndarray]]
    accept: Acceptance
    keep_op_types: Collection[str]
    keep_io_types: bool

    def failure(self, keep: Mapping[str, str], extra: Collection[str] = ()) -> str | None:
        """Why the conversion keeping ``keep`` and ``extra`` in float32 changes the outputs; None if it does not."""
        trial = {**keep, **dict.fromkeys(extra, "")}
        converted = convert_to_float16(self.model, keep_nodes=trial, keep_op_types=self.keep_op_types,
                                       keep_io_types=self.keep_io_types)
        # Without keep_io_types the float inputs are float16: the calibration inputs must be too.
        half_inputs = {v.name for v in converted.model.graph.input if v.type.tensor_type.elem_type == _HALF}
        trial_feeds = [{k: v.astype(np.float16) if k in half_inputs else v for k, v in f.items()}
                       for f in self.feeds]
        try:
            outputs = _run(converted.model, trial_feeds, "the float16 model (precision guard)")
        except RuntimeRunError as error:
            return str(error)
        for number, (ref, new) in enumerate(zip(self.reference, outputs, strict=True)):
            why = self.accept(ref, new)
            if why is not None:
                return f"calibration input {number + 1}: {why}"
        return None


def _fewest_float32(
    model: onnx.ModelProto, half: Sequence[str], failure: Callable[[Collection[str]], str | None], why: str
) -> list[str]:
    """The float16 nodes to keep in float32 so that ``failure`` reports none.

    First the fewest nodes nearest the outputs (in steps) whose float32
    restores the outputs (bisection), then each of them returned to float16
    where the outputs allow it.

    Raises:
        ConfigError: the outputs change even with every node in float32.
    """
    tail = sorted(half, key=_distance_to_outputs(model).__getitem__)
    low, high = 0, len(tail)
    while low < high:
        middle = (low + high) // 2
        if failure(tail[:middle]) is None:
            high = middle
        else:
            low = middle + 1
    chosen = tail[:low]
    if low == len(tail) and failure(chosen) is not None:
        raise ConfigError(f"the float16 graph fails even with every node in float32 ({why})")
    needed = list(chosen)
    if len(chosen) <= 64:
        for name in chosen:
            rest = [n for n in needed if n != name]
            if failure(rest) is None:
                needed = rest
    return needed


def _distance_to_outputs(model: onnx.ModelProto) -> dict[str, int]:
    """Each node's fewest steps to a graph output (0: it writes one); unreachable nodes last."""
    graph = model.graph
    users = consumers(graph)
    outputs = graph_output_names(graph)
    distance: dict[str, int] = {}
    for node in reversed(graph.node):  # readers come after writers: one reverse pass suffices
        steps = [0] if any(out in outputs for out in node.output) else []
        steps += [distance[user.name] + 1 for out in node.output for user in users.get(out, [])
                  if user.name in distance]
        distance[node.name] = min(steps, default=len(graph.node))
    return distance


def _name_nodes(model: onnx.ModelProto) -> None:
    """Gives every unnamed node a unique name (the conversion keeps nodes by name)."""
    taken = {n.name for n in model.graph.node if n.name}
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = unique_name(f"{node.op_type}_{index}", taken)
        seen.add(node.name)


class ConvertToFp16Pass(Pass):
    """Converts weights and activations to float16, typed explicitly, with a precision guard.

    See the module docstring for the rules. Args:
        keep_io_types: keep float graph inputs and outputs in float32.
        keep_nodes: names of nodes to keep in float32.
        keep_op_types: operator types to keep in float32.
        calibration: inputs for the precision guard (a few frames); without
            them the guard does not run and only the static rules apply.
        accept: what counts as unchanged outputs for the guard; default
            :func:`detections_accept` for a fused detector, else
            :func:`outputs_accept`.
    """

    name = "convert_to_fp16"
    changes_precision = True

    def __init__(
        self,
        *,
        keep_io_types: bool = True,
        keep_nodes: Sequence[str] = (),
        keep_op_types: Sequence[str] = (),
        calibration: Sequence[Feeds] = (),
        accept: Acceptance | None = None,
    ) -> None:
        self.keep_io_types = keep_io_types
        self.keep_nodes = tuple(keep_nodes)
        self.keep_op_types = tuple(keep_op_types)
        self.calibration = list(calibration)
        self.accept = accept
        self._input_shapes: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_options(cls, options: OptimizeOptions) -> Pass:
        made = cls(keep_nodes=options.keep_fp32, keep_op_types=options.keep_fp32_ops,
                   calibration=calibration_inputs(options))
        made._input_shapes = dict(options.input_shapes)
        return made

    def __repr__(self) -> str:
        return (f"ConvertToFp16Pass(keep_io_types={self.keep_io_types}, keep_nodes={self.keep_nodes!r}, "
                f"keep_op_types={self.keep_op_types!r}, calibration={len(self.calibration)} inputs)")

    def call(self, model: onnx.ModelProto) -> PassResult:
        _name_nodes(model)
        names = {n.name for n in model.graph.node}
        unknown = [name for name in self.keep_nodes if name not in names]
        if unknown:
            raise ConfigError(f"--keep-fp32 names node '{unknown[0]}', which the graph does not have")
        if not any(t == _FLOAT for t in _float_types(model).values()):
            return PassResult(model, False, dict.fromkeys(STAT_KEYS, 0), note="the graph has no float32 values")
        keep = dict.fromkeys(self.keep_nodes, "kept by name")
        needed = {v.name for v in graph_inputs(model)}
        feeds: list[Feeds] = [f for f in self.calibration if set(f) >= needed]
        if not feeds and not self.calibration:
            feeds = list(_random_calibration(model, self._input_shapes))
        note = None
        if feeds:
            accept = self.accept or default_accept(model)
            conversion, guard = _guarded(model, feeds, accept, keep=keep, keep_op_types=self.keep_op_types,
                                         keep_io_types=self.keep_io_types)
        else:
            conversion = convert_to_float16(model, keep_nodes=keep, keep_op_types=self.keep_op_types,
                                            keep_io_types=self.keep_io_types)
            guard = []
            note = "no calibration inputs (give --config or --input-shape), so the precision guard did not run"
        kept = [*conversion.kept]
        names_kept = {k.name for k in kept}
        kept.extend(k for k in guard if k.name not in names_kept)
        for k in kept:
            logger.info("kept in float32: %s (%s): %s", k.name, k.op_type, k.reason)
        stats = {
            "float16_nodes": len(conversion.converted),
            "float32_nodes": len(kept),
            "kept_by_guard": len(guard),
            "casts": conversion.casts,
            "initializers": conversion.initializers,
            "calibration_inputs": len(feeds),
            # The share of the graph's counted FLOPs that now runs in float16 (the rest: kept float32).
            "float16_flop_share": round(float16_flop_share(conversion.model), 4),
        }
        details = [k.to_dict() for k in kept]
        return PassResult(conversion.model, len(conversion.converted) > 0, stats, note=note, details=details)


def default_accept(model: onnx.ModelProto) -> Acceptance:
    """What the guard accepts by default: the same detections for a fused detector, else close outputs.

    A classed detector's boxes (:data:`~graphopt.detections.CLASSED_DETECTOR_OUTPUTS`)
    come out of the network, so float16 moves them a little: within
    :data:`CLASSED_BOX_TOLERANCE` pixels they are the same boxes.
    """
    outputs = graph_output_names(model.graph)
    if set(FUSED_DETECTOR_OUTPUTS) <= outputs:
        return detections_accept()
    if set(CLASSED_DETECTOR_OUTPUTS) <= outputs:
        return detections_accept(box_tolerance=CLASSED_BOX_TOLERANCE)
    return outputs_accept()


def _random_calibration(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]],
                        count: int = 2) -> list[Feeds]:
    """Random non-zero inputs when every input's shape is known, else none."""
    from ..errors import GraphoptError
    from ..verify import concrete_input_shapes, random_inputs

    try:
        concrete = concrete_input_shapes(model, shapes)
        return [random_inputs(model, concrete, seed=seed) for seed in range(count)]
    except GraphoptError:
        return []


def calibration_inputs(options: OptimizeOptions, count: int = 4) -> list[dict[str, np.ndarray]]:
    """Calibration inputs a pipeline run can make: the workload's training-split frames, else none (random inputs).

    Frames come from the training split, so that no test frame decides precision.
    """
    if options.workload is not None:
        return options.workload.frames("train", count)
    return []
