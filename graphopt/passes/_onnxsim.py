"""onnx-optimizer rewrites run one at a time through onnxsim, leaving the rest of the model as it was.

graphopt does not re-implement the rewrites that onnx-optimizer already has
(BatchNormalization folding, common-subexpression elimination). onnxsim
bundles onnx-optimizer, but :func:`onnxsim.simplify` runs all of its rewrites
at once, names new tensors ``_v_69``, names unnamed nodes, drops initializers
from the graph inputs and records its options in the model's metadata.
:func:`run_onnx_optimizers` runs only the named rewrites and undoes those side
effects, so that its result differs from its input only by the rewrites.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import logging
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..graph import dead_node_indices, graph_output_names, rename_uses, subgraph_inputs, unique_name

__all__ = ["ONNX_OPTIMIZER_PASSES", "remove_dead_nodes", "run_onnx_optimizers"]

logger = logging.getLogger(__name__)

# onnx-optimizer's fuse and elimination passes, as onnxsim 0.8.1's private
# `onnxsim_cpp2py_export._list_optimizers()` lists them in a fresh process.
# Used only when that function is missing; the names onnxsim actually knows are
# asked for when it has it (after its first simplify() the list also holds
# onnxsim's own 25 passes, fuse_gelu to fuse_mul_into_conv).
ONNX_OPTIMIZER_PASSES: tuple[str, ...] = (
    "nop",
    "eliminate_nop_cast",
    "eliminate_nop_dropout",
    "eliminate_nop_flatten",
    "extract_constant_to_initializer",
    "eliminate_consecutive_idempotent_ops",
    "eliminate_if_with_const_cond",
    "eliminate_nop_monotone_argmax",
    "eliminate_nop_pad",
    "eliminate_nop_concat",
    "eliminate_nop_split",
    "eliminate_nop_expand",
    "eliminate_shape_gather",
    "eliminate_slice_after_shape",
    "eliminate_nop_transpose",
    "fuse_add_bias_into_conv",
    "fuse_bn_into_conv",
    "fuse_consecutive_concats",
    "fuse_consecutive_log_softmax",
    "fuse_consecutive_reduce_unsqueeze",
    "fuse_consecutive_squeezes",
    "fuse_consecutive_squeeze_unsqueeze",
    "fuse_consecutive_transposes",
    "fuse_matmul_add_bias_into_gemm",
    "fuse_pad_into_conv",
    "fuse_pad_into_pool",
    "fuse_transpose_into_gemm",
    "fuse_concat_into_reshape",
    "eliminate_nop_reshape",
    "eliminate_nop_with_unit",
    "eliminate_common_subexpression",
    "fuse_qkv",
    "fuse_consecutive_unsqueezes",
    "eliminate_deadend",
    "eliminate_identity",
    "eliminate_shape_op",
    "fuse_consecutive_slices",
    "eliminate_unused_initializer",
    "eliminate_duplicate_initializer",
    "rewrite_where",
)

_ONNX_DOMAINS = ("", "ai.onnx")
_CONVS = ("Conv", "ConvTranspose")


def run_onnx_optimizers(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """Runs exactly the named onnx-optimizer passes (through onnxsim) on ``model``; returns a new model.

    Everything else in onnxsim stays off: the other optimizer passes, shape
    inference, constant folding and its checks. Its side effects are undone:

    - the model's fields (opset imports, IR version, producer, doc strings,
      metadata, functions) are those of ``model``; only the graph is new;
    - ``graph.input`` and ``graph.output`` are those of ``model``, except
      initializers listed as inputs that the rewrites removed;
    - nodes keep their names (matched by op type and first output, then by
      name, then by op type and first input), unnamed ones stay unnamed;
    - nodes that a rewrite added but that compute only from initializers (the
      arithmetic some rewrites leave for onnxsim's constant folding, such as
      ``fuse_bn_into_conv`` on float16) are evaluated into initializers with
      onnx's reference evaluator;
    - nodes the rewrites left dead are removed (nodes that were dead before
      stay), and so are initializers that only those nodes read;
    - a new initializer a node reads where it read another value before takes
      that value's name when it is free, else ``<name>.folded``; a Conv bias
      that did not exist before is named after the weight (``conv1.weight`` →
      ``conv1.bias``);
    - ``value_info`` is that of ``model``, less the values that are gone.

    Only the main graph is rewritten by the passes graphopt uses; subgraphs see
    renames of the outer values they read.

    Raises:
        ValueError: a name is not an onnx-optimizer pass.
        RuntimeError: onnxsim changed the graph outputs.
    """
    simplified = _simplify(model, _other_passes(names))

    old, new = model.graph, simplified.graph
    output_names = [v.name for v in old.output]
    if [v.name for v in new.output] != output_names:
        raise RuntimeError(f"onnxsim changed the graph outputs from {output_names} to {[v.name for v in new.output]}")

    old_values = _value_names(old)
    _evaluate_new_constants(model, new, old_values)
    dead_before = {out for i in dead_node_indices(old) for out in old.node[i].output}
    newly_dead = [i for i in dead_node_indices(new) if not set(new.node[i].output) & dead_before]
    _remove_nodes(new, newly_dead, extra_initializers={t.name for t in new.initializer} - old_values)

    originals = _Originals(old)
    _restore_node_names(new, originals)
    _rename_new_initializers(new, old_values, originals)
    _restore_graph_fields(old, new)

    result = onnx.ModelProto()
    result.CopyFrom(model)
    result.graph.CopyFrom(new)
    return result


def _other_passes(names: Sequence[str]) -> list[str]:
    """The onnx-optimizer passes not in ``names``, sorted: those onnxsim must skip.

    Raises:
        ValueError: a name is not an onnx-optimizer pass.
    """
    known = _known_passes()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown onnx-optimizer pass {unknown[0]!r}")
    return sorted(known - set(names))


def _restore_node_names(new: onnx.GraphProto, originals: _Originals) -> None:
    """Gives every node of ``new`` that matches an original node that node's name, in subgraphs too."""
    for node in new.node:
        match = originals.match(node)
        if match is not None:
            _set_name(node, match.name)
    for sub in _subgraphs_of(new):
        for node in sub.node:
            if node.output:
                _set_name(node, originals.names.get((node.op_type, node.output[0]), node.name))


def _restore_graph_fields(old: onnx.GraphProto, new: onnx.GraphProto) -> None:
    """``new`` gets ``old``'s inputs (less removed initializers), outputs, live value_info, name and doc string."""
    old_initializers = {t.name for t in old.initializer}
    new_initializers = {t.name for t in new.initializer}
    alive = _value_names(new)
    new.ClearField("input")
    new.input.extend(v for v in old.input if v.name not in old_initializers or v.name in new_initializers)
    new.ClearField("output")
    new.output.extend(old.output)
    new.ClearField("value_info")
    new.value_info.extend(v for v in old.value_info if v.name in alive)
    for field in ("name", "doc_string"):  # proto2: an empty string set is not an absent one
        if old.HasField(field):
            setattr(new, field, getattr(old, field))
        else:
            new.ClearField(field)


def remove_dead_nodes(graph: onnx.GraphProto) -> int:
    """Removes the nodes no graph output needs, and the initializers only they read; returns how many nodes went.

    Reads from If/Loop/Scan bodies count as uses; initializers listed as graph
    inputs stay.
    """
    dead = dead_node_indices(graph)
    _remove_nodes(graph, dead)
    return len(dead)


@functools.cache
def _known_passes() -> frozenset[str]:
    """The pass names onnxsim's bundled onnx-optimizer knows, its own passes included."""
    from onnxsim import onnxsim_cpp2py_export as cpp

    names = set(ONNX_OPTIMIZER_PASSES)
    # `_list_optimizers` names the default passes, but onnxsim's own ones
    # (fuse_gelu, fuse_mul_into_conv, ...) join the default set only once
    # registered, which `_list_other_optimizers` does first; it also names
    # fuse_matmul_add_bias_into_gemm_batched, which onnxsim adds unless
    # skipped. Both are private; without them only the names above are skipped.
    for lister in ("_list_other_optimizers", "_list_optimizers"):
        if hasattr(cpp, lister):
            names.update(getattr(cpp, lister)())
    return frozenset(names)


def _simplify(model: onnx.ModelProto, skipped: Sequence[str]) -> onnx.ModelProto:
    """onnxsim with only the optimizer passes not in ``skipped``: no shape inference, folding or checks."""
    import onnxsim

    kwargs: dict[str, object] = {
        "perform_optimization": True,
        "skipped_optimizers": list(skipped),
        "skip_constant_folding": True,
        "skip_shape_inference": True,
        "check_n": 0,
    }
    # Initializers listed as graph inputs can be overridden at run time: they
    # stay inputs, and rewrites do not bake them in.
    if "mutable_initializer" in inspect.signature(onnxsim.simplify).parameters:
        kwargs["mutable_initializer"] = True
    return quiet_simplify(model, **kwargs)


def quiet_simplify(model: onnx.ModelProto, **kwargs: Any) -> onnx.ModelProto:
    """``onnxsim.simplify(model, **kwargs)`` without its printing and without a Z3 proof.

    Newer releases default to a Z3 proof of the result when z3 is installed;
    it proves nothing that matters here and may take minutes. onnxsim prints
    progress and warnings with rich; passes do not print, so it goes to the
    debug log. onnxsim gets a copy: its older releases (0.7, the last for
    Python 3.10) drop initializers from the given model's ``graph.input`` in place.
    """
    import onnxsim

    if "certify" in inspect.signature(onnxsim.simplify).parameters:
        kwargs["certify"] = False
    given = onnx.ModelProto()
    given.CopyFrom(model)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        simplified, _ = onnxsim.simplify(given, **kwargs)
    if printed.getvalue().strip():
        logger.debug("onnxsim: %s", printed.getvalue().strip())
    return simplified


def _subgraphs_of(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """Every If/Loop/Scan body under ``graph``, nested ones included."""
    for node in graph.node:
        for attr in node.attribute:
            bodies = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for body in bodies:
                yield body
                yield from _subgraphs_of(body)


def _value_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    return names | {out for node in graph.node for out in node.output if out}


class _Originals:
    """The nodes of the graph given to onnxsim, looked up the ways a rewritten node can be matched to its original."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        #: (op type, first output) -> node name, over the main graph and every subgraph.
        self.names = {
            (node.op_type, node.output[0]): node.name
            for sub in [graph, *_subgraphs_of(graph)]
            for node in sub.node
            if node.output
        }
        nodes = [node for node in graph.node if node.output]
        self._by_output = {(node.op_type, node.output[0]): node for node in nodes}
        self._by_name = _unambiguous(((node.op_type, node.name), node) for node in nodes if node.name)
        self._by_input = _unambiguous(
            ((node.op_type, node.input[0]), node) for node in nodes if node.input and node.input[0]
        )

    def match(self, node: onnx.NodeProto) -> onnx.NodeProto | None:
        """The original of a main-graph node: same first output, else same name, else same first input.

        The fallbacks find a node whose output took over the name of a node it
        absorbed (a Conv that now writes what the folded BatchNormalization
        wrote): by its name, or when it had none, by what it reads.
        """
        if not node.output:
            return None
        found = self._by_output.get((node.op_type, node.output[0]))
        if found is None and node.name:
            found = self._by_name.get((node.op_type, node.name))
        if found is None and node.input:
            found = self._by_input.get((node.op_type, node.input[0]))
        return found


def _set_name(node: onnx.NodeProto, name: str) -> None:
    """Names a node; an empty name is left absent, as exporters write unnamed nodes."""
    if name:
        node.name = name
    else:
        node.ClearField("name")


def _unambiguous(pairs: Iterator[tuple[tuple[str, str], onnx.NodeProto]]) -> dict[tuple[str, str], onnx.NodeProto]:
    """The pairs whose key occurs once."""
    found: dict[tuple[str, str], onnx.NodeProto] = {}
    repeated: set[tuple[str, str]] = set()
    for key, node in pairs:
        if key in found:
            repeated.add(key)
        found[key] = node
    return {key: node for key, node in found.items() if key not in repeated}


def _reads_of(nodes: Sequence[onnx.NodeProto]) -> set[str]:
    """The values ``nodes`` read, their subgraphs' reads of outer values included."""
    reads = {name for node in nodes for name in node.input if name}
    return reads | {name for node in nodes for name in subgraph_inputs(node)}


def _remove_nodes(graph: onnx.GraphProto, indices: Sequence[int], *, extra_initializers: Collection[str] = ()) -> None:
    """Removes nodes, then the initializers that only they read (and ``extra_initializers`` nothing reads)."""
    read_before = _reads_of(graph.node)
    for index in sorted(indices, reverse=True):
        del graph.node[index]
    candidates = (read_before | set(extra_initializers)) - _reads_of(graph.node) - graph_output_names(graph)
    candidates -= {v.name for v in graph.input}
    for index in reversed(range(len(graph.initializer))):
        if graph.initializer[index].name in candidates:
            del graph.initializer[index]


def _evaluate_new_constants(model: onnx.ModelProto, graph: onnx.GraphProto, old_values: set[str]) -> None:
    """Replaces the nodes onnxsim added that compute only from initializers by initializers of their results.

    ``fuse_bn_into_conv`` folds float and double parameters itself, but for
    other types (float16) it emits Cast/Add/Sqrt/Div/... nodes and leaves them
    to onnxsim's constant folding, which is off here.
    """
    from onnx.reference import ReferenceEvaluator

    constants = {t.name for t in graph.initializer} - {v.name for v in graph.input}
    foldable: list[onnx.NodeProto] = []
    for node in graph.node:
        if (
            node.domain not in _ONNX_DOMAINS
            or not node.input
            or not node.output
            or set(node.output) & old_values
            or any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute)
            or not all(name in constants for name in node.input if name)
        ):
            continue
        foldable.append(node)
        constants.update(out for out in node.output if out)
    if not foldable:
        return
    folded_ids = {id(node) for node in foldable}
    rest = [node for node in graph.node if id(node) not in folded_ids]
    read_later = _reads_of(rest) | graph_output_names(graph)
    needed = [out for node in foldable for out in node.output if out in read_later]
    if needed:
        read = {name for node in foldable for name in node.input if name}
        sub = onnx.helper.make_graph(
            foldable,
            "constants",
            [],
            [onnx.helper.make_empty_tensor_value_info(name) for name in needed],
            [t for t in graph.initializer if t.name in read],
        )
        evaluator = ReferenceEvaluator(
            onnx.helper.make_model(sub, opset_imports=list(model.opset_import), ir_version=model.ir_version)
        )
        values = evaluator.run(None, {})
    else:
        values = []
    graph.ClearField("node")
    graph.node.extend(rest)
    for name, array in zip(needed, values, strict=True):
        graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
    logger.debug("evaluated %d constant nodes added by onnx-optimizer", len(foldable))


def _rename_new_initializers(graph: onnx.GraphProto, old_values: set[str], originals: _Originals) -> None:
    """Gives the initializers onnxsim created (``_v_69``) names taken from what their readers read before."""
    new_names = {t.name for t in graph.initializer} - old_values
    if not new_names:
        return
    taken = _value_names(graph) | graph_output_names(graph)
    for sub in _subgraphs_of(graph):
        taken |= _value_names(sub)
    renames: dict[str, str] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name not in new_names or name in renames:
                continue
            base = _slot_name(node, index, originals.match(node))
            target = unique_name(base if base not in taken else f"{base}.folded", taken)
            renames[name] = target
    for init in graph.initializer:
        init.name = renames.get(init.name, init.name)
    rename_uses(graph, renames)
    logger.debug("renamed new initializers: %s", renames)


def _slot_name(node: onnx.NodeProto, index: int, original: onnx.NodeProto | None) -> str:
    """The name for a new initializer read at ``node.input[index]``: what the node read there before."""
    if original is not None and index < len(original.input) and original.input[index]:
        return original.input[index]
    if original is not None and original.op_type in _CONVS and index == 2 and len(original.input) > 1:
        weight = original.input[1]
        return weight[: -len("weight")] + "bias" if weight.endswith("weight") else f"{weight}.bias"
    return f"{node.name or node.output[0]}.input{index}"

