"""Running a detector's NMS on log-odds instead of probabilities.

In float16 a probability near 1 has few values left: above 0.9995 the next
float16 is 1.0, so every confident window of a detector rounds to the same
score, and a max-pooling NMS sees a plateau instead of a peak (duplicates) or
a threshold compare loses its margin (misses). The log-odds
``log(p / (1 − p))`` of the same scores is linear in the network's logits
(for a two-class softmax it *is* the person-minus-background logit
difference), keeps its resolution where probabilities saturate, and is a
strictly increasing function of ``p``: max-pooling, comparisons, ``Where`` and
``TopK`` pick the same cells from log-odds as from probabilities.

:class:`NmsOnLogitsPass` finds the Softmax (or Sigmoid) whose scores reach a
``MaxPool``, computes the log-odds from its logits instead, and carries them
through the head: every constant the scores meet there (the threshold ``t``,
fill values) becomes ``log(t / (1 − t))``; a linear resampling (a ``MatMul``
by a constant matrix whose rows hold at most two weights summing to one, as
the fused detector's grid resampling does) is carried out in the log domain,
so that the result is the log-odds of the resampled probability. Where a
score leaves the head (the ``K`` reported scores) a ``Sigmoid`` turns it back
into a probability; that node is pinned to float32 so that
:class:`~graphopt.passes.fp16.ConvertToFp16Pass` leaves it there. The rewrite
is exact in exact arithmetic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ConfigError, PreconditionError
from ..graph import attribute, consumers, graph_output_names, infer_tensor_info, prune_dead, unique_name
from .base import Pass, PassResult

__all__ = ["PRECISION_KEY", "RESAMPLINGS", "STAT_KEYS", "NmsOnLogitsPass", "log_odds", "odds", "pin_float32"]

logger = logging.getLogger(__name__)

STAT_KEYS = ("sources", "head_nodes", "resamplings", "constants", "exits", "on_odds")

#: How a resampling ``MatMul`` is carried out on log-odds (see :class:`NmsOnLogitsPass`).
RESAMPLINGS = ("linear", "linear_unstacked", "log_sum_exp")

#: Node metadata key that pins a node's precision; ConvertToFp16Pass keeps a
#: node whose value is "float32" in float32.
PRECISION_KEY = "graphopt.precision"

# Ops that only move, select or compare values: a strictly increasing map of
# every element commutes with them (max-pooling pads with -inf, which the
# map keeps). The index is the input that carries scores; None: all inputs.
_MOVES: dict[str, tuple[int, ...] | None] = {
    "Identity": (0,), "Reshape": (0,), "Squeeze": (0,), "Unsqueeze": (0,), "Flatten": (0,),
    "Transpose": (0,), "Slice": (0,), "Gather": (0,), "Expand": (0,), "Tile": (0,), "Split": (0,),
    "Concat": None, "MaxPool": (0,), "ReduceMax": (0,), "Max": None, "Min": None, "TopK": (0,),
}
_RESHAPES = frozenset({"Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose"})
_COMPARES = frozenset({"Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Equal"})
_ONE_TAP_TOLERANCE = 1e-5  # row sums of float32 interpolation weights


def log_odds(values: np.ndarray) -> np.ndarray:
    """``log(p / (1 − p))`` element-wise, with ``p ≤ 0 → −inf`` and ``p ≥ 1 → +inf``.

    The extension keeps the map increasing over all of a head's constants
    (fill values of ``−inf`` or 0 both become ``−inf``).
    """
    p = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(p) - np.log1p(-p)
    out = np.where(p <= 0, -np.inf, np.where(p >= 1, np.inf, out))
    return out.astype(np.asarray(values).dtype)


def odds(values: np.ndarray) -> np.ndarray:
    """``p / (1 − p)`` element-wise, with ``p ≥ 1 → +inf`` and ``p < 0`` kept (below every odds).

    The extension keeps the map increasing over all of a head's constants (a
    fill value of ``−inf`` stays the lowest value).
    """
    p = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p / (1 - p)
    out = np.where(p < 0, p, np.where(p >= 1, np.inf, out))
    return out.astype(np.asarray(values).dtype)


@dataclass
class _Taps:
    """A linear resampling as two taps per output: indices, log-weights and which outputs exist."""

    axis: int
    index: tuple[np.ndarray, np.ndarray]
    log_weight: tuple[np.ndarray, np.ndarray]
    valid: np.ndarray


def _taps(matrix: np.ndarray) -> _Taps | None:
    """Rows of ``matrix`` (outputs × sources) as at most two taps, or None if it is no interpolation."""
    if matrix.ndim != 2 or not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        return None
    rows = matrix.shape[0]
    index = (np.zeros(rows, np.int32), np.zeros(rows, np.int32))
    weight = (np.full(rows, 0.5), np.full(rows, 0.5))
    valid = np.zeros(rows, bool)
    for r, row in enumerate(matrix.astype(np.float64)):
        taps = np.flatnonzero(row)
        if taps.size == 0:
            continue
        if taps.size > 2 or abs(row.sum() - 1) > _ONE_TAP_TOLERANCE:
            return None
        taps = taps[np.argsort(-row[taps], kind="stable")]
        index[0][r], weight[0][r] = taps[0], row[taps[0]]
        index[1][r], weight[1][r] = (taps[1], row[taps[1]]) if taps.size == 2 else (taps[0], 0.0)
        valid[r] = True
    with np.errstate(divide="ignore"):
        log_weight = (np.log(weight[0]), np.log(weight[1]))
    return _Taps(axis=-2, index=index, log_weight=log_weight, valid=valid)


class _Writer:
    """New nodes and initializers, named under one prefix, unique in the graph."""

    def __init__(self, graph: onnx.GraphProto, prefix: str) -> None:
        self.graph = graph
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.taken = {n.name for n in graph.node} | {v for n in graph.node for v in n.output}
        self.taken |= {t.name for t in graph.initializer} | {v.name for v in graph.input}

    def unique(self, label: str) -> str:
        return unique_name(f"{self.prefix}/{label}", self.taken)

    def constant(self, label: str, value: np.ndarray) -> str:
        name = self.unique(label)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], *, output: str | None = None, **attrs: Any) -> str:
        name = self.unique(op_type)
        node = helper.make_node(op_type, list(inputs), [output or name], name=name, **attrs)
        self.nodes.append(node)
        return output or name


class NmsOnLogitsPass(Pass):
    """Runs the NMS and threshold of a detector head on log-odds; probabilities only for reported scores.

    Rules applied:

    * a ``Softmax`` over C classes read through a ``Gather`` of one class k
      becomes ``l_k − l_other`` (C = 2) or ``l_k − LogSumExp(others)``; a
      ``Sigmoid`` becomes its input;
    * data movement, max-pooling, ``Max``/``Min``, ``TopK``, comparisons and
      ``Where`` stay, their constant operands mapped to log-odds;
    * a ``MatMul`` by a constant interpolation matrix (at most two
      non-negative weights per output, summing to one, or none) resamples
      the probability and its complement, ``p = σ(m)`` and ``1 − p = σ(−m)``,
      by the same matrix (``resampling="linear"``: no cancellation in
      ``1 − p``; the two stacked on the batch axis through the first product of
      a separable resampling, rows or columns first, whichever needs fewer
      multiply-adds, then apart through the second, and outputs no source
      reaches read a padded source of probability 0; ``"linear_unstacked"``:
      each through each product, the unreached outputs' ``1 − p`` set by an
      added mask, the form before the stacked one) or carries ``(log p, log(1 − p))`` through a
      weighted log-sum-exp of the taps (``resampling="log_sum_exp"``: about
      twenty element-wise passes over the resampled grid, but no underflow
      at any logit); the log-odds of the result is ``log(p / (1 − p))``;
    * where scores leave the head, a float32-pinned ``Sigmoid``.

    A Softmax/Sigmoid whose scores reach no MaxPool is left alone.

    Args:
        scores: names of the Softmax/Sigmoid outputs to rewrite; by default
            every one whose scores reach a MaxPool.
        float32_head: pin the head's nodes (log-odds, resampling, NMS,
            threshold, TopK; a fraction of a percent of a detector's FLOPs) to
            float32, so that a float16 conversion feeds them the float16
            logits and leaves them there: in float16, neighbouring cells can
            tie at the resolution of their log-odds, and a tie is a duplicate
            peak. ``False`` leaves the head to the conversion.
        resampling: how a resampling is carried out on log-odds: ``"linear"``
            (default) or ``"linear_unstacked"`` (the same values, more nodes;
            both exact while the float32 complement ``σ(−m)`` does not
            underflow, i.e. for log-odds below about 87, where the float32
            probabilities of the plain head saturated long before, at 17) or
            ``"log_sum_exp"`` (exact at any log-odds, several times the
            element-wise work).
    """

    name = "nms_on_logits"

    def __init__(self, *, scores: Sequence[str] = (), float32_head: bool = True,
                 resampling: str = "linear") -> None:
        if resampling not in RESAMPLINGS:
            raise ConfigError(f"resampling must be one of {', '.join(RESAMPLINGS)}, not '{resampling}'")
        self.scores = tuple(scores)
        self.float32_head = float32_head
        self.resampling = resampling

    def __repr__(self) -> str:
        return (f"NmsOnLogitsPass(scores={self.scores!r}, float32_head={self.float32_head}, "
                f"resampling={self.resampling!r})")

    def requires(self, model: onnx.ModelProto) -> None:
        """A max-pooling NMS fed by Softmax or Sigmoid scores, or a head this pass rewrote already."""
        if any(node.name.startswith(f"{self.name}/") for node in model.graph.node):
            return  # rewritten already: the pass runs and reports nothing to do
        head = _Head(model)
        if not any(head.reaches_nms(node) for node in model.graph.node
                   if node.op_type in ("Softmax", "Sigmoid") and node.domain in ("", "ai.onnx")):
            raise PreconditionError("Softmax or Sigmoid scores that reach a max-pooling NMS in the graph "
                                    "(a fused detector: fuse_host_stages before it)")

    def call(self, model: onnx.ModelProto) -> PassResult:
        graph = model.graph
        producers = {out: node for node in graph.node for out in node.output if out}
        for name in self.scores:
            node = producers.get(name)
            if node is None or node.op_type not in ("Softmax", "Sigmoid"):
                raise ConfigError(f"'{name}' is not the output of a Softmax or Sigmoid node, so it has no logits")
        sources = [
            node for node in graph.node
            if node.op_type in ("Softmax", "Sigmoid") and node.domain in ("", "ai.onnx")
            and (not self.scores or node.output[0] in self.scores)
        ]
        head = _Head(model)
        chosen = [node for node in sources if head.reaches_nms(node)]
        if self.scores and len(chosen) != len(sources):
            missing = [n.output[0] for n in sources if n not in chosen]
            raise ConfigError(f"the scores '{missing[0]}' reach no MaxPool through ops whose order log-odds keep")
        if not chosen:
            return PassResult(model, False, dict.fromkeys(STAT_KEYS, 0),
                              note="no Softmax or Sigmoid output reaches a max-pooling NMS")
        stats = head.rewrite(chosen, pin=self.float32_head, resampling=self.resampling)
        return PassResult(model, True, stats)


def _stacked_complements(writer: _Writer, logits: str, rank: int, batch: int, dtype: np.dtype) -> str:
    """``p = σ(m)`` and ``1 − p = σ(−m)`` of the log-odds ``m``, stacked on the batch axis (``p`` first).

    As ``1 / (1 + e^∓m)``, not Sigmoid: onnxruntime's CPU Sigmoid clamps its input to ±18 or so, where the
    complement of a confident cell still has eight orders of magnitude of float32 to go.
    """
    if batch == 1:  # (2, …): −m and m by one broadcast product
        sign = np.array([-1, 1], dtype).reshape((2,) + (1,) * (rank - 1))
        signed = writer.op("Mul", [logits, writer.constant("sign", sign)])
    else:
        signed = writer.op("Concat", [writer.op("Neg", [logits]), logits], axis=0)
    one = writer.constant("one", np.array(1, dtype))
    return writer.op("Reciprocal", [writer.op("Add", [writer.op("Exp", [signed]), one])])


class _Head:
    """The scores region from the chosen sources to where the scores leave, and its rewrite."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.users = consumers(self.graph)
        self.outputs = graph_output_names(self.graph)
        self.constants = {t.name: t for t in self.graph.initializer}
        self.info = infer_tensor_info(model)
        self.producers = {out: node for node in self.graph.node for out in node.output if out}
        self.on_odds = False
        self.also_pinned: list[onnx.NodeProto] = []  # graph nodes outside the region that the head reads

    # -- finding the region ------------------------------------------------
    def _entry_paths(self, source: onnx.NodeProto) -> list[list[onnx.NodeProto]] | None:
        """How the scores of a Softmax reach single classes: ``[reshapes…, Gather]`` per reader path.

        Between the Softmax and each ``Gather`` of one class there may be
        reshapes and transposes that keep the class axis whole (an exporter's
        ``[N·H·W, C]`` softmax reshaped back to ``[N, H, W, C]``). Returns
        ``[]`` for a Sigmoid (its input is the log-odds already) and None when
        some reader of the probabilities is anything else.
        """
        if source.op_type == "Sigmoid":
            return []
        rank = self._rank(source.input[0])
        if rank is None:
            return None
        paths: list[list[onnx.NodeProto]] = []

        def follow(value: str, axis: int, chain: list[onnx.NodeProto]) -> bool:
            readers = self.users.get(value, [])
            if not readers or value in self.outputs:
                return False
            for reader in readers:
                if reader.input[0] != value or reader.domain not in ("", "ai.onnx"):
                    return False
                if reader.op_type == "Gather":
                    index = self.constants.get(reader.input[1])
                    out_rank = self._rank(value)
                    if index is None or numpy_helper.to_array(index).ndim != 0 or out_rank is None:
                        return False
                    if attribute(reader, "axis", 0) % out_rank != axis:
                        return False
                    paths.append([*chain, reader])
                    continue
                moved = self._moved_axis(reader, value, axis)
                if moved is None or not follow(reader.output[0], moved, [*chain, reader]):
                    return False
            return True

        return paths if follow(source.output[0], attribute(source, "axis", -1) % rank, []) else None

    def _rank(self, value: str) -> int | None:
        info = self.info.get(value)
        return None if info is None or info.shape is None else len(info.shape)

    def _moved_axis(self, node: onnx.NodeProto, value: str, axis: int) -> int | None:
        """Where the class axis of ``value`` lands in ``node``'s output, if ``node`` keeps it whole."""
        if node.op_type == "Transpose":
            perm = list(attribute(node, "perm", []))
            return perm.index(axis) if axis in perm else None
        if node.op_type not in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"):
            return None
        before, after = self.info.get(value), self.info.get(node.output[0])
        if before is None or after is None or before.static_shape is None or after.static_shape is None:
            return None
        shape_in, shape_out = before.static_shape, after.static_shape
        lead = int(np.prod(shape_in[:axis]))
        for moved in range(len(shape_out)):
            if int(np.prod(shape_out[:moved])) == lead and shape_out[moved] == shape_in[axis]:
                return moved
        return None

    def _starts(self, source: onnx.NodeProto) -> list[str] | None:
        paths = self._entry_paths(source)
        if paths is None:
            return None
        return [source.output[0]] if source.op_type == "Sigmoid" else [path[-1].output[0] for path in paths]

    def _walk(self, starts: Sequence[str]) -> tuple[list[onnx.NodeProto], set[str]]:
        """Nodes of the region (in graph order) and the score-carrying values it reaches."""
        values, todo, nodes = set(starts), list(starts), {}
        while todo:
            value = todo.pop()
            for node in self.users.get(value, []):
                kind = self._kind(node, value)
                if kind is None:
                    continue
                nodes[id(node)] = node
                carried = node.output[:1] if node.op_type in ("MaxPool", "TopK") else node.output
                if node.op_type in _COMPARES:
                    carried = []
                for out in carried:
                    if out and out not in values:
                        values.add(out)
                        todo.append(out)
        order = [node for node in self.graph.node if id(node) in nodes]
        return order, values

    def _kind(self, node: onnx.NodeProto, value: str) -> str | None:
        """How a head node treats the scores it reads from ``value``; None: the scores leave here."""
        if node.domain not in ("", "ai.onnx"):
            return None
        slots = [i for i, name in enumerate(node.input) if name == value]
        if node.op_type in _MOVES:
            allowed = _MOVES[node.op_type]
            return "move" if allowed is None or all(i in allowed for i in slots) else None
        if node.op_type in _COMPARES:
            return "compare"
        if node.op_type == "Where":
            return "move" if 0 not in slots else None
        if node.op_type == "MatMul" and self._resampling(node, value) is not None:
            return "resample"
        if self._mask(node, value) is not None:
            return "mask"
        return None

    def _mask(self, node: onnx.NodeProto, value: str) -> onnx.NodeProto | None:
        """The ``Cast`` of a bool that ``node`` multiplies the scores ``value`` by (``p·[c]``), or None.

        Selecting by a 0/1 mask keeps a probability or sets it to 0, which is
        ``Where(c, p, 0)``: on odds still a product (the odds of 0 is 0), on
        log-odds ``Where(c, m, −inf)``.
        """
        if node.op_type != "Mul" or len(node.input) != 2 or list(node.input).count(value) != 1:
            return None
        cast = self.producers.get(node.input[1] if node.input[0] == value else node.input[0])
        if cast is None or cast.op_type != "Cast" or cast.domain not in ("", "ai.onnx"):
            return None
        source = self.info.get(cast.input[0])
        floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
        if source is None or source.elem_type != onnx.TensorProto.BOOL or attribute(cast, "to", 0) not in floats:
            return None
        return cast

    def _resampling(self, node: onnx.NodeProto, value: str) -> _Taps | None:
        other = node.input[1] if node.input[0] == value else node.input[0]
        if other == value or other not in self.constants:
            return None
        matrix = numpy_helper.to_array(self.constants[other])
        if node.input[0] == value:  # scores @ B: outputs along the last axis, weights in B's columns
            taps = _taps(matrix.T) if matrix.ndim == 2 else None
            if taps is not None:
                taps.axis = -1
            return taps
        return _taps(matrix)  # A @ scores: outputs along the second-to-last axis

    def _entries_resampled(self, starts: Sequence[str]) -> bool:
        """Whether the entries' log-odds reach nothing but resamplings, through reshapes only.

        Then no log-odds value enters the NMS, leaves the head or meets a constant.
        """
        todo = list(starts)
        while todo:
            value = todo.pop()
            readers = self.users.get(value, [])
            if value in self.outputs or not readers:
                return False
            for node in readers:
                kind = self._kind(node, value)
                if kind == "move" and node.op_type in _RESHAPES:
                    todo.append(node.output[0])
                elif kind != "resample":
                    return False
        return True

    def reaches_nms(self, source: onnx.NodeProto) -> bool:
        starts = self._starts(source)
        if starts is None:
            return False
        nodes, _ = self._walk(starts)
        return any(node.op_type == "MaxPool" for node in nodes)

    # -- rewriting -----------------------------------------------------------
    def rewrite(self, sources: Sequence[onnx.NodeProto], *, pin: bool = True,
                resampling: str = "linear") -> dict[str, int]:
        starts = [value for source in sources for value in self._starts(source) or []]
        region, values = self._walk(starts)
        self._check_closed(region, values)
        writer = _Writer(self.graph, "nms_on_logits")
        stats = dict.fromkeys(STAT_KEYS, 0)
        stats["sources"], stats["head_nodes"] = len(sources), len(region)
        # A float32 head whose every entry is resampled runs on the odds p / (1 − p) of the resampled
        # probabilities: one division per cell instead of a division and a logarithm, the logarithm taken
        # of the K values that leave. (In float16 the odds would overflow at log-odds 11: log-odds there.)
        self.on_odds = pin and resampling != "log_sum_exp" and self._entries_resampled(starts)
        stats["on_odds"] = int(self.on_odds)
        placed: dict[int, list[onnx.NodeProto]] = {}  # nodes to insert before the graph node with this id
        replaced = self._rewrite_entries(writer, sources, values, placed)
        self._rewrite_region(writer, region, values, placed, replaced, stats, resampling)
        stats["exits"] = self._add_exits(writer, region, values, replaced)
        if pin:
            # The head stays float32 (a float16 conversion reads the float16 logits into it):
            # neighbouring cells interpolated between nearly equal logits can tie at float16's
            # resolution (0.008 at log-odds 8), and a tie is two peaks, a duplicate detection.
            for node in [*region, *self.also_pinned, *(n for nodes in placed.values() for n in nodes)]:
                if id(node) not in replaced:
                    pin_float32(node)
        self._rebuild(placed, replaced)
        logger.debug("log-odds head: %s", stats)
        return stats

    def _rewrite_entries(self, writer: _Writer, sources: Sequence[onnx.NodeProto], values: set[str],
                         placed: dict[int, list[onnx.NodeProto]]) -> set[int]:
        """Entries: the class's log-odds from the logits, in place of the Gather of its probability.

        Returns the ids of the graph nodes the new ones replace.
        """
        replaced: set[int] = set()
        for source in sources:
            if source.op_type == "Sigmoid":
                # The scores *are* the logits: every reader of the Sigmoid reads its input, under a name of
                # its own, so that other readers of the logits (or a logits graph output) get no exit Sigmoid.
                writer.nodes = []
                odds = writer.op("Identity", [source.input[0]], output=writer.unique("log_odds"))
                placed.setdefault(id(source), []).extend(writer.nodes)
                self._rename_readers(source.output[0], odds)
                values.discard(source.output[0])
                values.add(odds)
                continue
            clones: dict[int, str] = {}
            for path in self._entry_paths(source) or []:
                writer.nodes = []
                logits = source.input[0]
                for node in path[:-1]:  # the same reshapes, applied to the logits
                    if id(node) not in clones:
                        copy = writer.op(node.op_type, [logits, *node.input[1:]])
                        writer.nodes[-1].attribute.extend(node.attribute)
                        clones[id(node)] = copy
                    logits = clones[id(node)]
                gather = path[-1]
                self._class_log_odds(writer, source, logits, gather)
                placed.setdefault(id(gather), []).extend(writer.nodes)
                replaced.add(id(gather))
        return replaced

    def _rewrite_region(self, writer: _Writer, region: Sequence[onnx.NodeProto], values: set[str],
                        placed: dict[int, list[onnx.NodeProto]], replaced: set[int], stats: dict[str, int],
                        resampling: str) -> None:
        """Resamplings carried out on ``(p, 1 − p)``, masks kept or made selections, every constant the scores
        meet mapped to log-odds."""
        pairs: dict[str, tuple[str, str]] = {}
        resample = self._log_domain_resample if resampling == "log_sum_exp" else self._linear_resample
        for node in region:
            writer.nodes = []
            if id(node) in replaced:  # the second product of a separable resampling, written with the first
                continue
            if node.op_type == "MatMul":
                value = next(name for name in node.input if name in values)
                taps = self._resampling(node, value)
                assert taps is not None
                steps = self._separable(node, value, taps, values) if resampling == "linear" else None
                if steps is not None and value not in pairs:
                    self._stacked_resample(writer, value, steps, pairs)
                else:
                    steps = [(node, taps)]
                    resample(writer, node, value, taps, pairs)
                placed.setdefault(id(node), []).extend(writer.nodes)
                replaced.update(id(step) for step, _ in steps)
                stats["resamplings"] += len(steps)
                continue
            mask = next((m for name in node.input if name in values and (m := self._mask(node, name)) is not None),
                        None)
            if mask is not None:
                self._rewrite_mask(writer, node, mask, values)
                if writer.nodes:
                    placed.setdefault(id(node), []).extend(writer.nodes)
                    replaced.add(id(node))
                continue
            for i, name in enumerate(node.input):
                if name in self.constants and name not in values and self._maps_constant(node, i):
                    node.input[i] = self._mapped_constant(writer, name)
                    stats["constants"] += 1

    def _rewrite_mask(self, writer: _Writer, node: onnx.NodeProto, cast: onnx.NodeProto, values: set[str]) -> None:
        """``p·[c]`` on odds stays a product (its Cast pinned with the head); on log-odds ``Where(c, m, −inf)``."""
        if self.on_odds:
            self.also_pinned.append(cast)
            return
        value = next(name for name in node.input if name in values)
        info = self.info.get(value)
        dtype = np.float32 if info is None else helper.tensor_dtype_to_np_dtype(info.elem_type)
        writer.op("Where", [cast.input[0], value, writer.constant("masked", np.array(-np.inf, dtype))],
                  output=node.output[0])

    def _separable(self, node: onnx.NodeProto, value: str, taps: _Taps,
                   values: set[str]) -> list[tuple[onnx.NodeProto, _Taps]] | None:
        """``node`` and the product on the other axis that alone reads it, if any: one stacked resampling.

        None where the stacked form does not apply: a rank below 3 (no batch
        axis to stack ``p`` and ``1 − p`` on), an unknown batch size, or an
        opset before 13 (``Split`` sizes as an input).
        """
        info = self.info.get(value)
        opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 1)
        if (info is None or info.static_shape is None or len(info.static_shape) < 3 or opset < 13
                or info.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)):
            return None
        steps = [(node, taps)]
        readers = self.users.get(node.output[0], [])
        if len(readers) == 1 and node.output[0] not in self.outputs and node.output[0] in values:
            second = readers[0]
            other = self._resampling(second, node.output[0]) if second.op_type == "MatMul" else None
            if other is not None and other.axis != taps.axis:
                steps.append((second, other))
        return steps

    def _resample_plan(self, shape: Sequence[int], steps: Sequence[tuple[onnx.NodeProto, _Taps]]
                       ) -> tuple[dict[int, np.ndarray], list[int], list[int]]:
        """The resampling's matrices by axis (with the unreached outputs' padded source), the pads, the order.

        The order is the one that needs fewer multiply-adds per plane: rows first makes an
        ``out_rows × cols`` intermediate, columns first ``rows × out_cols``.
        """
        matrices: dict[int, np.ndarray] = {}
        pads = [0] * (2 * len(shape))
        for node, taps in steps:
            matrix = numpy_helper.to_array(self.constants[node.input[0] if taps.axis == -2 else node.input[1]])
            unreached = (~taps.valid).astype(matrix.dtype)
            if taps.axis == -2 and not taps.valid.all():  # A @ m: a source row that unreached outputs read
                matrix = np.concatenate([matrix, unreached[:, None]], axis=1)
                pads[len(shape) + len(shape) - 2] = 1
            elif taps.axis == -1 and not taps.valid.all():  # m @ B: a source column
                matrix = np.concatenate([matrix, unreached[None, :]], axis=0)
                pads[len(shape) + len(shape) - 1] = 1
            matrices[taps.axis] = matrix
        rows, cols = shape[-2] + pads[-2], shape[-1] + pads[-1]
        out_rows = matrices[-2].shape[0] if -2 in matrices else rows
        out_cols = matrices[-1].shape[1] if -1 in matrices else cols
        rows_first = out_rows * rows * cols + out_rows * cols * out_cols
        cols_first = rows * cols * out_cols + out_rows * rows * out_cols
        order = sorted(matrices, reverse=cols_first < rows_first)  # -2 (rows) first unless columns first is cheaper
        return matrices, pads, order

    def _stacked_resample(self, writer: _Writer, value: str, steps: Sequence[tuple[onnx.NodeProto, _Taps]],
                          pairs: dict[str, tuple[str, str]]) -> None:
        """A separable resampling (one product per axis, or one product) of ``p`` and ``1 − p`` stacked.

        ``σ(∓m)`` of the log-odds ``m`` stacked on the batch axis go through
        the first product together, then apart through the second (in the
        order that needs fewer multiply-adds), and the result is
        ``W·p / W·(1 − p)`` (its logarithm on log-odds). Outputs that no tap
        reaches (zero rows of a matrix) take ``p = 0`` and ``1 − p = 1`` from
        one padded source row or column of log-odds −inf, which such outputs
        read with weight 1; no element-wise pass over the resampled grid is
        needed for them.
        """
        info = self.info[value]
        shape = info.static_shape
        assert shape is not None
        dtype = helper.tensor_dtype_to_np_dtype(info.elem_type)
        matrices, pads, order = self._resample_plan(shape, steps)
        logits = value
        if any(pads):
            logits = writer.op("Pad", [value, writer.constant("pads", np.array(pads, np.int64)),
                                       writer.constant("unreached_log_odds", np.array(-np.inf, dtype))])
        batch = shape[0]
        stacked = _stacked_complements(writer, logits, len(shape), batch, dtype)
        constants = {axis: writer.constant("resample_rows" if axis == -2 else "resample_columns", matrix)
                     for axis, matrix in matrices.items()}

        def product(operand: str, axis: int) -> str:
            return writer.op("MatMul", [constants[axis], operand] if axis == -2 else [operand, constants[axis]])

        stacked = product(stacked, order[0])
        writer.op("Split", [stacked, writer.constant("halves", np.array([batch, batch], np.int64))], axis=0)
        split = writer.nodes[-1]
        split.output.append(writer.unique("complement"))
        p, q = split.output
        if len(order) == 2:
            p, q = product(p, order[1]), product(q, order[1])
        output = steps[-1][0].output[0]
        pairs[output] = (p, q)
        if self.on_odds:
            writer.op("Div", [p, q], output=output)
        else:
            writer.op("Log", [writer.op("Div", [p, q])], output=output)

    def _add_exits(self, writer: _Writer, region: Sequence[onnx.NodeProto], values: set[str],
                   replaced: set[int]) -> int:
        """Exits: probabilities again (in float32) wherever scores leave the head; returns how many."""
        exits = 0
        inside = {id(node) for node in region} | replaced
        for value in sorted(values):
            leaving = [n for n in self.users.get(value, []) if id(n) not in inside]
            if value in self.outputs:
                # The output keeps its name and its meaning; the head reads the log-odds under a new name.
                exits += 1
                odds = writer.unique("log_odds")
                self._rename_value(value, odds)
                writer.nodes = []
                self._pinned_sigmoid(writer, odds, value)
                self.graph.node.extend(writer.nodes)
                self._replace_input(leaving, odds, value)
            elif leaving:
                exits += 1
                writer.nodes = []
                probability = self._pinned_sigmoid(writer, value, None)
                self.graph.node.extend(writer.nodes)
                self._replace_input(leaving, value, probability)
        return exits

    def _rebuild(self, placed: dict[int, list[onnx.NodeProto]], replaced: set[int]) -> None:
        """The graph with the new nodes in place of the replaced ones, sorted, pruned and re-typed."""
        graph = self.graph
        rebuilt: list[onnx.NodeProto] = []
        for node in graph.node:
            rebuilt.extend(placed.get(id(node), []))
            if id(node) not in replaced:
                rebuilt.append(node)
        graph.ClearField("node")
        graph.node.extend(_toposorted(rebuilt, graph))
        prune_dead(graph)
        # Types and shapes of the head changed: declare them afresh.
        graph.ClearField("value_info")
        graph.value_info.extend(infer_value_info(self.model))

    def _check_closed(self, region: Sequence[onnx.NodeProto], values: set[str]) -> None:
        """Every other operand of a head node must be a constant (mapped) or carry scores too."""
        for node in region:
            if node.op_type == "MatMul" or any(self._mask(node, name) is not None for name in node.input
                                               if name in values):
                continue
            for i, name in enumerate(node.input):
                if not name or name in values or not self._maps_constant(node, i):
                    continue
                if name not in self.constants:
                    raise ConfigError(
                        f"node '{node.name}' ({node.op_type}) mixes the scores with '{name}', which is neither "
                        "a constant nor scores from the same logits, so the NMS cannot move to log-odds"
                    )

    @staticmethod
    def _maps_constant(node: onnx.NodeProto, index: int) -> bool:
        """Whether input ``index`` of a head node holds score values (not shapes, indices or a condition)."""
        if node.op_type == "Where":
            return index in (1, 2)
        allowed = _MOVES.get(node.op_type)
        if node.op_type in _COMPARES or allowed is None:
            return True
        return index in allowed

    def _mapped_constant(self, writer: _Writer, name: str) -> str:
        value = numpy_helper.to_array(self.constants[name])
        if self.on_odds:
            return writer.constant(f"{name.rsplit('/', 1)[-1]}.odds", odds(value))
        return writer.constant(f"{name.rsplit('/', 1)[-1]}.log_odds", log_odds(value))

    def _rename_readers(self, old: str, new: str) -> None:
        for node in self.graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        self.users.setdefault(new, []).extend(self.users.pop(old, []))

    def _rename_value(self, old: str, new: str) -> None:
        for node in self.graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
        self._rename_readers(old, new)

    @staticmethod
    def _replace_input(nodes: Sequence[onnx.NodeProto], old: str, new: str) -> None:
        for node in nodes:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new

    def _pinned_sigmoid(self, writer: _Writer, value: str, output: str | None) -> str:
        """The probability of log-odds (or odds) ``value``, in float32: ``σ(m)`` (or ``σ(log o)``)."""
        if self.on_odds:
            value = writer.op("Log", [value])
            pin_float32(writer.nodes[-1])
        out = writer.op("Sigmoid", [value], output=output or writer.unique("probability"))
        pin_float32(writer.nodes[-1])
        return out

    def _class_log_odds(self, writer: _Writer, softmax: onnx.NodeProto, logits: str,
                        gather: onnx.NodeProto) -> None:
        axis = attribute(gather, "axis", 0)
        index = int(numpy_helper.to_array(self.constants[gather.input[1]]))
        info = self.info.get(gather.input[0])
        classes = info.shape[axis] if info is not None and info.shape is not None else None
        if not isinstance(classes, int):
            raise ConfigError(f"the number of classes of the softmax '{softmax.name}' cannot be inferred")
        index %= classes
        own = writer.op("Gather", [logits, writer.constant("class", np.array(index, np.int64))], axis=axis)
        others = [c for c in range(classes) if c != index]
        if len(others) == 1:
            rest = writer.op("Gather", [logits, writer.constant("other", np.array(others[0], np.int64))], axis=axis)
        else:
            picked = writer.op("Gather", [logits, writer.constant("others", np.array(others, np.int64))], axis=axis)
            opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 1)
            if opset >= 18:  # axes became an input in opset 18; an attribute before
                rest = writer.op("ReduceLogSumExp", [picked, writer.constant("axes", np.array([axis], np.int64))],
                                 keepdims=0)
            else:
                rest = writer.op("ReduceLogSumExp", [picked], axes=[axis], keepdims=0)
        writer.op("Sub", [own, rest], output=gather.output[0])

    def _linear_resample(self, writer: _Writer, node: onnx.NodeProto, value: str, taps: _Taps,
                         pairs: dict[str, tuple[str, str]]) -> None:
        """``W·p`` and ``W·(1 − p)`` by the node's own matrix; the log-odds is ``log(W·p / W·(1 − p))``.

        ``1 − p`` is ``σ(−m) = 1 / (1 + e^m)``, never a difference, so it keeps
        its precision where ``p`` rounds to 1. Outputs no tap reaches get ``p = 0`` from the
        zero row and ``1 − p = 1`` from an added mask, so their log-odds is
        ``−inf`` as in the log-domain form.
        """
        info = self.info.get(value)
        dtype = np.float32 if info is None else helper.tensor_dtype_to_np_dtype(info.elem_type)
        if value in pairs:
            p, q = pairs[value]
        else:
            # 1 / (1 + e^∓m), not Sigmoid: onnxruntime's CPU Sigmoid clamps its input to ±18 or so, where the
            # complement of a confident cell still has eight orders of magnitude of float32 to go.
            one = writer.constant("one", np.array(1, dtype))
            p, q = (writer.op("Reciprocal", [writer.op("Add", [writer.op("Exp", [logit]), one])])
                    for logit in (writer.op("Neg", [value]), value))

        def resample(probability: str) -> str:
            return writer.op("MatMul", [probability if name == value else name for name in node.input])

        p, q = resample(p), resample(q)
        if not taps.valid.all():
            unreached = (~taps.valid).astype(dtype).reshape((-1, 1) if taps.axis == -2 else (-1,))
            q = writer.op("Add", [q, writer.constant("unreached", unreached)])
        pairs[node.output[0]] = (p, q)
        if self.on_odds:
            writer.op("Div", [p, q], output=node.output[0])
        else:
            writer.op("Log", [writer.op("Div", [p, q])], output=node.output[0])

    def _log_domain_resample(self, writer: _Writer, node: onnx.NodeProto, value: str, taps: _Taps,
                             pairs: dict[str, tuple[str, str]]) -> None:
        """``log(W·p)`` and ``log(W·(1 − p))`` by a log-sum-exp of two taps; their difference is the log-odds."""
        if value in pairs:
            log_p, log_q = pairs[value]
        else:  # log p = −softplus(−m), log(1 − p) = −softplus(m)
            log_p = writer.op("Neg", [writer.op("Softplus", [writer.op("Neg", [value])])])
            log_q = writer.op("Neg", [writer.op("Softplus", [value])])
        info = self.info.get(value)
        dtype = np.float32 if info is None else helper.tensor_dtype_to_np_dtype(info.elem_type)
        shape = (-1, 1) if taps.axis == -2 else (-1,)
        index = [writer.constant("tap_index", i) for i in taps.index]
        weight = [writer.constant("tap_log_weight", w.astype(dtype).reshape(shape)) for w in taps.log_weight]
        valid = None if taps.valid.all() else writer.constant("reached", taps.valid.reshape(shape))

        def resample(log_values: str, fill: float) -> str:
            a, b = (writer.op("Add", [writer.op("Gather", [log_values, i], axis=taps.axis), w])
                    for i, w in zip(index, weight, strict=True))
            # log(e^a + e^b) = max(a, b) + softplus(−|a − b|); a lone tap has b = −inf.
            spread = writer.op("Neg", [writer.op("Abs", [writer.op("Sub", [a, b])])])
            out = writer.op("Add", [writer.op("Max", [a, b]), writer.op("Softplus", [spread])])
            if valid is not None:
                out = writer.op("Where", [valid, out, writer.constant("unreached", np.array(fill, dtype))])
            return out

        # Outputs no tap reaches are probability 0: log p = −inf, log(1 − p) = 0.
        pair = (resample(log_p, -np.inf), resample(log_q, 0.0))
        pairs[node.output[0]] = pair
        writer.op("Sub", list(pair), output=node.output[0])


def pin_float32(node: onnx.NodeProto) -> None:
    """Marks ``node`` to stay float32 under ConvertToFp16Pass (node metadata :data:`PRECISION_KEY`)."""
    if not any(p.key == PRECISION_KEY for p in node.metadata_props):
        entry = node.metadata_props.add()
        entry.key, entry.value = PRECISION_KEY, "float32"


def infer_value_info(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The value_info ONNX shape inference finds for ``model`` (empty where it fails)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        return []
    return list(inferred.graph.value_info)


def _toposorted(nodes: Sequence[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """``nodes`` in an order where every value is produced before it is read (stable otherwise)."""
    ready = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(nodes)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ConfigError("the rewritten head has a cycle or reads a value nothing produces")
        pending = rest
    return ordered
