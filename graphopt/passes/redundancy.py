"""Removal of nodes, initializers and inputs that do not change what a model computes.

Exported graphs carry a lot of such debris: Identity and Dropout nodes left by
the training framework, Casts and Reshapes to what a value already is,
Transposes that undo each other, weights stored twice and branches nothing
reads. Removing it is always safe and makes every later pattern easier to
match, so this pass usually runs first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..graph import (
    TensorInfo,
    attribute,
    constant_value,
    consumers,
    graph_output_names,
    infer_tensor_info,
    live_values,
    rename_uses,
    resolve,
)
from .base import Pass, PassResult
from .rewrite import drop_stale_value_info

__all__ = ["STAT_KEYS", "RemoveRedundantNodesPass"]

logger = logging.getLogger(__name__)

# The old private name, for code that imported it from here; the helper lives in .rewrite.
_drop_stale_value_info = drop_stale_value_info

# The keys of PassResult.stats, one per rewrite, in the order the class docstring lists them.
STAT_KEYS = (
    "identity",
    "dropout",
    "noop_cast",
    "noop_reshape",
    "noop_transpose",
    "noop_pad",
    "transpose_pairs",
    "duplicate_initializers",
    "dead_nodes",
    "unused_initializers",
    "unused_inputs",
    "stale_value_info",
)

_ONNX_DOMAINS = ("", "ai.onnx")


class RemoveRedundantNodesPass(Pass):
    """Removes no-op nodes, transpose pairs, duplicate weights and everything no output needs.

    Rewrites, repeated until none applies; each is counted in ``stats`` under
    its key (all keys are always present):

    - ``identity``: Identity is bypassed.
    - ``dropout``: Dropout at inference is bypassed, unless its mask output is
      used or (opset >= 12) its ``training_mode`` input is not a constant False.
    - ``noop_cast``: Cast to the type its input already has, and CastLike
      between values of the same type, are bypassed.
    - ``noop_reshape``: Reshape whose inferred static output shape equals its
      input's is bypassed.
    - ``noop_transpose``: Transpose with the identity permutation is bypassed.
    - ``noop_pad``: Pad with all pads zero (a constant) is bypassed, any mode.
    - ``transpose_pairs``: Transpose of a Transpose becomes one Transpose of
      the first one's input with the composed permutation, or disappears when
      that permutation is the identity. An absent ``perm`` reverses the axes;
      a pair whose rank shape inference cannot tell is left alone.
    - ``duplicate_initializers``: initializers with the same type, shape and
      bytes are merged into the first one. Initializers that are also graph
      inputs (the caller may override them) or graph outputs are left alone.
    - ``dead_nodes``: nodes none of whose outputs reach a graph output.
    - ``unused_initializers``: initializers nothing reads.
    - ``unused_inputs``: graph inputs nothing reads (when
      ``remove_unused_inputs``). An initializer that is also listed as a graph
      input is an input: it is removed only then, and counts under both keys.
    - ``stale_value_info``: ``value_info`` entries of values the graph no
      longer has, of graph inputs or outputs, and repeated names.

    Bypassing a node makes the readers of its output read its data input. When
    the output is a graph output it must keep its name, so the data input is
    renamed to it instead; that is impossible when the data input is a graph
    input, an initializer or another graph output, and the node then stays.

    Only the main graph is rewritten: If/Loop/Scan bodies are left as they are.
    They do see renames of the outer values they read, and those reads keep
    outer values alive.

    Args:
        remove_unused_inputs: also remove graph inputs nothing reads. This
            changes the model's interface, hence the switch.
    """

    name = "remove_redundant_nodes"

    def __init__(self, *, remove_unused_inputs: bool = True) -> None:
        self.remove_unused_inputs = remove_unused_inputs

    def __repr__(self) -> str:
        return f"{type(self).__name__}(remove_unused_inputs={self.remove_unused_inputs})"

    def call(self, model: onnx.ModelProto) -> PassResult:
        stats = dict.fromkeys(STAT_KEYS, 0)
        while True:
            before = sum(stats.values())
            _rewrite_nodes(model, stats)
            _merge_duplicate_initializers(model.graph, stats)
            _remove_unused(model.graph, stats, remove_inputs=self.remove_unused_inputs)
            if sum(stats.values()) == before:
                break
        stats["stale_value_info"] = drop_stale_value_info(model.graph)
        modified = any(stats.values())
        logger.debug("%s: %s", self.name, stats)
        return PassResult(model, modified, stats)


@dataclass
class _Context:
    """What the node matchers need to know about the graph during one sweep.

    ``infos`` stays valid across the rewrites of a sweep: a bypass only merges
    two names of the same type and shape, and no rewrite changes a shape.
    """

    graph: onnx.GraphProto
    infos: dict[str, TensorInfo]
    opset: int
    _used: set[str] | None = None

    def constant(self, name: str) -> np.ndarray | None:
        # An initializer that is also a graph input can be overridden at run time.
        if name in {v.name for v in self.graph.input}:
            return None
        return constant_value(self.graph, name)

    def is_used(self, name: str) -> bool:
        # Read once per sweep: a value read when the sweep began counts as used
        # (conservative, and linear instead of a graph walk per question).
        if self._used is None:
            self._used = graph_output_names(self.graph) | set(consumers(self.graph))
        return name in self._used

    def rank(self, name: str) -> int | None:
        info = self.infos.get(name)
        return None if info is None or info.shape is None else len(info.shape)


def _identity_input(ctx: _Context, node: onnx.NodeProto) -> str | None:
    return node.input[0]


def _dropout_input(ctx: _Context, node: onnx.NodeProto) -> str | None:
    if len(node.output) > 1 and node.output[1] and ctx.is_used(node.output[1]):
        return None
    if ctx.opset >= 12:
        if len(node.input) > 2 and node.input[2]:
            mode = ctx.constant(node.input[2])
            if mode is None or mode.size != 1 or bool(mode.reshape(())):
                return None
    elif ctx.opset < 7 and not attribute(node, "is_test", 0):
        # Before opset 7 Dropout trains unless told it is a test run.
        return None
    return node.input[0]


def _cast_input(ctx: _Context, node: onnx.NodeProto) -> str | None:
    info = ctx.infos.get(node.input[0])
    if info is None or not info.elem_type:
        return None
    return node.input[0] if attribute(node, "to") == info.elem_type else None


def _cast_like_input(ctx: _Context, node: onnx.NodeProto) -> str | None:
    if len(node.input) < 2:
        return None
    source, target = ctx.infos.get(node.input[0]), ctx.infos.get(node.input[1])
    if source is None or target is None or not source.elem_type:
        return None
    return node.input[0] if source.elem_type == target.elem_type else None


def _reshape_input(ctx: _Context, node: onnx.NodeProto) -> str | None:
    source, result = ctx.infos.get(node.input[0]), ctx.infos.get(node.output[0])
    if source is None or result is None or source.static_shape is None:
        return None
    return node.input[0] if source.static_shape == result.static_shape else None


def _transpose_input(ctx: _Context, node: onnx.NodeProto) -> str | None:
    perm = _perm(ctx, node)
    return node.input[0] if perm is not None and _is_identity(perm) else None


def _pad_input(ctx: _Context, node: onnx.NodeProto) -> str | None:
    if ctx.opset >= 11:
        pads = ctx.constant(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    else:
        pads = attribute(node, "pads", attribute(node, "paddings"))
    if pads is None:
        return None
    return node.input[0] if not np.any(np.asarray(pads)) else None


# op_type -> (stats key, matcher returning the data input to bypass to, or None).
_NOOP_MATCHERS: dict[str, tuple[str, Callable[[_Context, onnx.NodeProto], str | None]]] = {
    "Identity": ("identity", _identity_input),
    "Dropout": ("dropout", _dropout_input),
    "Cast": ("noop_cast", _cast_input),
    "CastLike": ("noop_cast", _cast_like_input),
    "Reshape": ("noop_reshape", _reshape_input),
    "Transpose": ("noop_transpose", _transpose_input),
    "Pad": ("noop_pad", _pad_input),
}


def _perm(ctx: _Context, node: onnx.NodeProto) -> list[int] | None:
    """A Transpose's permutation; an absent one reverses the dimensions (None if the rank is unknown)."""
    perm = attribute(node, "perm")
    if perm is not None:
        return list(perm)
    rank = ctx.rank(node.input[0])
    return None if rank is None else list(reversed(range(rank)))


def _is_identity(perm: list[int]) -> bool:
    return perm == list(range(len(perm)))


def _onnx_opset(model: onnx.ModelProto) -> int:
    for opset in model.opset_import:
        if opset.domain in _ONNX_DOMAINS:
            return opset.version
    return 0


def _rewrite_nodes(model: onnx.ModelProto, stats: dict[str, int]) -> None:
    """One sweep of the node rewrites over the main graph, in order (linear in its size)."""
    graph = model.graph
    sweep = _Sweep(model)
    for node in list(graph.node):
        for i, name in enumerate(node.input):
            if name in sweep.renames:
                node.input[i] = resolve(sweep.renames, name)
        if not sweep.rewrite(node, stats):
            sweep.keep(node)
    if len(sweep.kept) != len(graph.node):
        kept = sweep.kept
        graph.ClearField("node")
        graph.node.extend(kept)
    # Readers reached before a rename was made (a value renamed to a graph
    # output's name) and reads from subgraph bodies.
    rename_uses(graph, sweep.renames)


class _Sweep:
    """State of one sweep: the nodes kept so far, who produces what, and the renames made.

    A bypassed node is dropped and its output renamed to its data input. When
    that output is a graph output its name must survive, so the data input is
    renamed to it instead; that is impossible when the data input is a graph
    input, an initializer, another graph output, or a value no kept node
    produces, and the node then stays.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.ctx = _Context(graph, infer_tensor_info(model), _onnx_opset(model))
        self.outputs = graph_output_names(graph)
        self.fixed = self.outputs | {v.name for v in graph.input} | {t.name for t in graph.initializer}
        self.renames: dict[str, str] = {}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.kept: list[onnx.NodeProto] = []

    def keep(self, node: onnx.NodeProto) -> None:
        self.kept.append(node)
        for name in node.output:
            if name:
                self.producer[name] = node

    def rewrite(self, node: onnx.NodeProto, stats: dict[str, int]) -> bool:
        """Applies the first rewrite that fits ``node``; returns whether the node is gone."""
        if node.domain not in _ONNX_DOMAINS or not node.input or not node.output or not node.output[0]:
            return False
        match = _NOOP_MATCHERS.get(node.op_type)
        if match is not None:
            key, data_input = match[0], match[1](self.ctx, node)
            if data_input and self.bypass(node, data_input):
                stats[key] += 1
                return True
        if node.op_type == "Transpose":
            folded = self.fold_transpose_pair(node)
            if folded is not None:
                stats["transpose_pairs"] += 1
                return folded == "removed"
        return False

    def bypass(self, node: onnx.NodeProto, data_input: str) -> bool:
        """Drops ``node`` so that what read its first output reads ``data_input``, if possible."""
        output = node.output[0]
        if output not in self.outputs:
            self.renames[output] = data_input
            logger.debug("bypassed %s %r", node.op_type, node.name)
            return True
        producer = self.producer.get(data_input)
        if data_input in self.fixed or producer is None:
            return False
        producer.output[list(producer.output).index(data_input)] = output
        self.producer[output] = producer
        self.renames[data_input] = output
        logger.debug("bypassed %s %r, renaming %r to graph output %r", node.op_type, node.name, data_input, output)
        return True

    def fold_transpose_pair(self, second: onnx.NodeProto) -> str | None:
        """Folds ``second`` into the Transpose producing its input, if any.

        Returns:
            ``"removed"`` when the pair cancelled out and ``second`` is gone,
            ``"merged"`` when it became one Transpose, ``None`` when it is not
            the second of a pair (or a rank is unknown).
        """
        first = self.producer.get(second.input[0])
        if first is None or first.op_type != "Transpose" or first.domain not in _ONNX_DOMAINS:
            return None
        p1, p2 = _perm(self.ctx, first), _perm(self.ctx, second)
        if p1 is None or p2 is None or len(p1) != len(p2):
            return None
        composed = [p1[axis] for axis in p2]
        source = first.input[0]
        if _is_identity(composed) and self.bypass(second, source):
            return "removed"
        # Not the identity, or the pair feeds a graph output that cannot take
        # over the name of `source`: keep one Transpose reading `source`.
        second.input[0] = source
        for attr in second.attribute:
            if attr.name == "perm":
                second.attribute.remove(attr)
                break
        second.attribute.append(onnx.helper.make_attribute("perm", composed))
        logger.debug("folded Transpose pair into perm=%s", composed)
        return "merged"


def _content_key(init: onnx.TensorProto) -> tuple[int, tuple[int, ...], bytes]:
    array = numpy_helper.to_array(init)
    digest = hashlib.sha256()
    if array.dtype == object:  # strings: tobytes() would hash object pointers
        for item in array.ravel():
            data = item if isinstance(item, bytes) else str(item).encode()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    else:
        digest.update(array.tobytes())
    return init.data_type, tuple(init.dims), digest.digest()


def _merge_duplicate_initializers(graph: onnx.GraphProto, stats: dict[str, int]) -> None:
    protected = {v.name for v in graph.input} | graph_output_names(graph)
    first_by_key: dict[tuple[int, tuple[int, ...], bytes], str] = {}
    duplicates: list[tuple[int, str, str]] = []
    for index, init in enumerate(graph.initializer):
        if init.name in protected or init.data_location == onnx.TensorProto.EXTERNAL:
            continue
        kept = first_by_key.setdefault(_content_key(init), init.name)
        if kept != init.name:
            duplicates.append((index, init.name, kept))
    for index, name, kept in reversed(duplicates):
        del graph.initializer[index]
        logger.debug("merged initializer %r into %r", name, kept)
    rename_uses(graph, {name: kept for _, name, kept in duplicates})
    stats["duplicate_initializers"] += len(duplicates)


def _remove_unused(graph: onnx.GraphProto, stats: dict[str, int], *, remove_inputs: bool) -> None:
    """Removes dead nodes, then initializers and (optionally) graph inputs nothing reads."""
    live, used = live_values(graph)
    dead = [i for i in range(len(graph.node)) if i not in live]
    for index in reversed(dead):
        del graph.node[index]
    stats["dead_nodes"] += len(dead)

    input_names = {v.name for v in graph.input}
    unused_inputs = input_names - used if remove_inputs else set()
    for index in reversed(range(len(graph.initializer))):
        name = graph.initializer[index].name
        if name not in used and (name not in input_names or name in unused_inputs):
            del graph.initializer[index]
            stats["unused_initializers"] += 1
    for index in reversed(range(len(graph.input))):
        if graph.input[index].name in unused_inputs:
            del graph.input[index]
            stats["unused_inputs"] += 1

