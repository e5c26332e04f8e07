"""Moving Transposes down through layout-agnostic ops until they meet another Transpose.

Graphs converted from channels-last frameworks, and attention blocks, wrap
elementwise work in Transposes: NHWC → NCHW, a Relu or a bias Add, and back
again. ``remove_redundant_nodes`` folds Transposes that are adjacent, but not
a pair with such ops in between. An elementwise op does not care about layout:
running it before the Transpose computes the same values, provided its
constant operands are transposed once, here, instead of at every inference.
Each Transpose is a full copy of its tensor, so moving one down until it meets
its partner saves both copies when the two cancel and one when they compose.
A push that ends anywhere else would only move the copy, and is not made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from ..graph import attribute, consumers, graph_output_names, infer_tensor_info
from .base import Pass, PassResult
from .rewrite import drop_stale_value_info

__all__ = ["STAT_KEYS", "PushTransposesPass"]

logger = logging.getLogger(__name__)

# The keys of PassResult.stats, in the order the class docstring lists them.
STAT_KEYS = ("pushed", "cancelled", "merged")

_ONNX_DOMAINS = ("", "ai.onnx")

_UNARY_OPS = frozenset(
    {
        "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Log", "Neg", "Abs", "Sqrt", "Reciprocal", "Elu", "Selu",
        "Softplus", "Erf", "HardSigmoid", "HardSwish", "Cast", "Identity", "Clip", "Floor", "Ceil", "Round", "Sign",
        "Not",
    }
)  # fmt: skip
_BROADCAST_OPS = frozenset(
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual",
        "And", "Or", "Where",
    }
)  # fmt: skip
_SOFTMAX_OPS = frozenset({"Softmax", "LogSoftmax"})
# Before opset 13 Softmax flattens the input to 2-D at `axis`, which no single axis of the transposed input matches.
_SOFTMAX_MIN_OPSET = 13


class PushTransposesPass(Pass):
    """Moves Transposes down through elementwise ops and Softmax until they cancel or merge with another Transpose.

    A Transpose is moved down, one op at a time, past the ops below that do not
    care about layout, and the move is made only when it ends at another
    Transpose; the two then become one Transpose with the composed
    permutation, or disappear when that permutation is the identity. Moving
    it past an op makes the op read the Transpose's input:

    - unary elementwise ops (Relu, LeakyRelu, Sigmoid, Tanh, Exp, Log, Neg,
      Abs, Sqrt, Reciprocal, Elu, Selu, Softplus, Erf, HardSigmoid, HardSwish,
      Cast, Identity, Clip, Floor, Ceil, Round, Sign, Not) stay as they are;
      Clip's min and max are scalars;
    - broadcasting elementwise ops (Add, Sub, Mul, Div, Pow, Max, Min, Equal,
      Greater, Less, GreaterOrEqual, LessOrEqual, And, Or, Where) qualify when
      every other operand is a constant (an initializer that is not a graph
      input, or a Constant node's output) of no higher rank. Each constant
      that is not a single value is replaced by a new initializer: padded to
      full rank with leading 1s, then transposed by the inverse permutation;
      a constant nothing else reads is removed;
    - Softmax and LogSoftmax (opset >= 13) get ``axis`` set to ``perm[axis]``.

    Every value the Transpose moves past must have exactly one reader and must
    not be a graph output. Moved ops keep their names and output names (those
    values now hold the data in the Transpose's input layout, and their
    ``value_info`` is permuted to match). Two Transposes that merge become the
    second one, reading the last moved op; two that cancel leave the last
    moved op writing the second one's output, so a graph output keeps its
    name. An absent ``perm`` reverses the axes; a Transpose whose rank shape
    inference cannot tell is left alone. Adjacent Transposes are
    ``remove_redundant_nodes``' job.

    Only the main graph is rewritten, and only ops of the default ONNX domain.

    Stats (all keys always present): ``pushed`` (op positions a Transpose was
    moved past), ``cancelled`` (Transpose pairs that disappeared) and
    ``merged`` (Transpose pairs that became one Transpose).
    """

    name = "push_transposes"

    def call(self, model: onnx.ModelProto) -> PassResult:
        stats = dict.fromkeys(STAT_KEYS, 0)
        # A merged Transpose may be pushed on in the same sweep; another sweep
        # only confirms that nothing is left to do.
        while _Sweep(model).run(stats):
            pass
        modified = any(stats.values())
        if modified:
            drop_stale_value_info(model.graph)
        logger.debug("%s: %s", self.name, stats)
        return PassResult(model, modified, stats)


@dataclass
class _Step:
    """An op a Transpose moves past: where it reads the moving value, and its constants by input index."""

    node: onnx.NodeProto
    data_index: int
    constants: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class _Push:
    """A Transpose (``first``), the ops it can move past, and the Transpose it then meets (``last``)."""

    first: onnx.NodeProto
    perm: list[int]
    steps: list[_Step]
    last: onnx.NodeProto
    last_perm: list[int]


class _Sweep:
    """One pass over the main graph's Transposes, in node order.

    Readers and producers are kept up to date as pushes are made; removed
    nodes and initializers leave the graph when the sweep ends, so that the
    node objects held stay valid meanwhile.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.graph = graph
        self.opset = _onnx_opset(model)
        self.readers = consumers(graph)
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.outputs = graph_output_names(graph)
        self.inputs = {v.name for v in graph.input}
        self.initializers = {t.name: t for t in graph.initializer}
        self.value_info = {v.name: v for v in graph.value_info}
        # Ranks never change in a sweep (pushes only reorder axes), so shape
        # inference, needed only for a Transpose without `perm`, runs at most once.
        transposes = [node for node in graph.node if _is_transpose(node)]
        needs_ranks = any(attribute(node, "perm") is None for node in transposes)
        self.infos = infer_tensor_info(model) if needs_ranks else {}
        self.removed_nodes: dict[int, onnx.NodeProto] = {}
        self.removed_initializers: set[str] = set()
        self.transposed: dict[tuple[str, tuple[int, ...]], str] = {}
        self._names: set[str] | None = None

    def run(self, stats: dict[str, int]) -> bool:
        """Makes every push the graph offers; returns whether there was one."""
        changed = False
        for node in list(self.graph.node):
            if id(node) in self.removed_nodes or not _is_transpose(node):
                continue
            push = self.match(node)
            if push is not None:
                self.apply(push, stats)
                changed = True
        self.commit()
        return changed

    # Matching.

    def match(self, first: onnx.NodeProto) -> _Push | None:
        """The push starting at ``first``, or ``None`` when it does not end at a Transpose."""
        if not first.input or not first.input[0] or len(first.output) != 1:
            return None
        perm = self.perm(first)
        if perm is None:
            return None
        steps: list[_Step] = []
        moving = first.output[0]
        while True:
            reader = self.sole_reader(moving)
            if reader is None:
                return None
            if _is_transpose(reader):
                last_perm = attribute(reader, "perm")
                last_perm = list(reversed(range(len(perm)))) if last_perm is None else list(last_perm)
                if not steps or len(reader.output) != 1 or not reader.output[0]:
                    return None
                if not _is_permutation(last_perm, len(perm)):
                    return None
                return _Push(first, perm, steps, reader, last_perm)
            step = self.step(reader, moving, len(perm))
            if step is None:
                return None
            steps.append(step)
            moving = reader.output[0]

    def perm(self, node: onnx.NodeProto) -> list[int] | None:
        """A Transpose's permutation; an absent one reverses the axes (``None`` if the rank is unknown)."""
        perm = attribute(node, "perm")
        if perm is None:
            info = self.infos.get(node.input[0])
            if info is None or info.shape is None:
                return None
            perm = list(reversed(range(len(info.shape))))
        perm = list(perm)
        return perm if _is_permutation(perm, len(perm)) else None

    def sole_reader(self, name: str) -> onnx.NodeProto | None:
        readers = self.readers.get(name, [])
        if name in self.outputs or len(readers) != 1 or readers[0].domain not in _ONNX_DOMAINS:
            return None
        return readers[0]

    def step(self, node: onnx.NodeProto, moving: str, rank: int) -> _Step | None:
        """How ``node`` reads ``moving`` if a Transpose of rank ``rank`` can move past it, else ``None``."""
        if len(node.output) != 1 or not node.output[0] or list(node.input).count(moving) != 1:
            return None
        step = _Step(node, list(node.input).index(moving))
        if node.op_type in _UNARY_OPS:
            return step if step.data_index == 0 else None
        if node.op_type in _SOFTMAX_OPS:
            axis = attribute(node, "axis", -1)
            if self.opset < _SOFTMAX_MIN_OPSET or step.data_index != 0 or not -rank <= axis < rank:
                return None
            return step
        if node.op_type in _BROADCAST_OPS:
            for index, name in enumerate(node.input):
                if index == step.data_index or not name:
                    continue
                array = self.constant(name)
                if array is None or array.ndim > rank:
                    return None
                step.constants[index] = array
            return step
        return None

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant node output, with its own element type."""
        # An initializer that is also a graph input can be overridden at run time.
        if name in self.inputs:
            return None
        init = self.initializers.get(name)
        if init is not None:
            return None if init.data_location == onnx.TensorProto.EXTERNAL else numpy_helper.to_array(init)
        node = self.producer.get(name)
        if node is None or node.op_type != "Constant" or node.domain not in _ONNX_DOMAINS:
            return None
        return _constant_node_value(node)

    # Rewriting.

    def apply(self, push: _Push, stats: dict[str, int]) -> None:
        first, steps, last = push.first, push.steps, push.last
        rank = len(push.perm)
        inverse = _inverse(push.perm)

        source, moved = first.input[0], first.output[0]
        head = steps[0].node
        head.input[steps[0].data_index] = source
        self.readers[source] = [n for n in self.readers.get(source, []) if n is not first and n is not head] + [head]
        del self.readers[moved]
        del self.producer[moved]
        self.remove_node(first)

        for step in steps:
            for index, array in step.constants.items():
                if array.size != 1:
                    self.replace_constant(step.node, index, array, inverse)
            if step.node.op_type in _SOFTMAX_OPS:
                axis = attribute(step.node, "axis", -1)
                _set_attribute(step.node, "axis", push.perm[axis % rank])

        composed = [push.perm[axis] for axis in push.last_perm]
        tail = steps[-1].node
        if composed == list(range(rank)):
            # The last moved op takes over the second Transpose's output, which
            # may be a graph output, and its readers need no change.
            old, new = tail.output[0], last.output[0]
            tail.output[0] = new
            del self.readers[old]
            del self.producer[old]
            self.producer[new] = tail
            self.remove_node(last)
            relaid = steps[:-1]
            stats["cancelled"] += 1
            outcome = "cancelled with"
        else:
            _set_attribute(last, "perm", composed)
            relaid = steps
            stats["merged"] += 1
            outcome = f"merged into perm={composed} with"
        for step in relaid:
            self.permute_value_info(step.node.output[0], inverse)
        stats["pushed"] += len(steps)
        logger.debug(
            "moved Transpose %r past %s; %s Transpose %r",
            first.name,
            [step.node.name or step.node.op_type for step in steps],
            outcome,
            last.name,
        )

    def replace_constant(self, node: onnx.NodeProto, index: int, array: np.ndarray, inverse: list[int]) -> None:
        """Makes ``node`` read, at ``index``, the full-rank constant transposed by ``inverse``."""
        name = node.input[index]
        key = (name, tuple(inverse))
        new = self.transposed.get(key)
        if new is None or new not in self.initializers:
            full = array.reshape((1,) * (len(inverse) - array.ndim) + array.shape)
            new = self.fresh_name(f"{name}_transposed")
            self.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(full.transpose(inverse)), new))
            self.initializers[new] = self.graph.initializer[-1]
            self.transposed[key] = new
        node.input[index] = new
        readers = self.readers.setdefault(new, [])
        if not any(n is node for n in readers):
            readers.append(node)
        if name in node.input:  # read at another index too
            return
        self.readers[name] = [n for n in self.readers.get(name, []) if n is not node]
        if self.readers[name] or name in self.outputs:
            return
        del self.readers[name]
        if name in self.initializers:
            del self.initializers[name]
            self.removed_initializers.add(name)
        else:
            self.remove_node(self.producer.pop(name))

    def permute_value_info(self, name: str, inverse: list[int]) -> None:
        """Gives a moved op's output the shape it has in the Transpose's input layout."""
        info = self.value_info.get(name)
        if info is None or not info.type.tensor_type.HasField("shape"):
            return
        shape = info.type.tensor_type.shape
        if len(shape.dim) != len(inverse):
            info.type.tensor_type.ClearField("shape")
            return
        permuted = onnx.TensorShapeProto()
        permuted.dim.extend(shape.dim[axis] for axis in inverse)
        shape.CopyFrom(permuted)

    def fresh_name(self, base: str) -> str:
        if self._names is None:
            self._names = _names(self.graph)
        name, suffix = base, 0
        while name in self._names:
            suffix += 1
            name = f"{base}_{suffix}"
        self._names.add(name)
        return name

    def remove_node(self, node: onnx.NodeProto) -> None:
        self.removed_nodes[id(node)] = node

    def commit(self) -> None:
        """Takes the removed nodes and initializers out of the graph."""
        for index in reversed(range(len(self.graph.node))):
            if id(self.graph.node[index]) in self.removed_nodes:
                del self.graph.node[index]
        for index in reversed(range(len(self.graph.initializer))):
            if self.graph.initializer[index].name in self.removed_initializers:
                del self.graph.initializer[index]


def _is_transpose(node: onnx.NodeProto) -> bool:
    return node.op_type == "Transpose" and node.domain in _ONNX_DOMAINS


def _is_permutation(perm: list[int], rank: int) -> bool:
    return sorted(perm) == list(range(rank))


def _inverse(perm: list[int]) -> list[int]:
    inverse = [0] * len(perm)
    for axis, source in enumerate(perm):
        inverse[source] = axis
    return inverse


def _set_attribute(node: onnx.NodeProto, name: str, value: int | list[int]) -> None:
    for attr in node.attribute:
        if attr.name == name:
            node.attribute.remove(attr)
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    """A Constant node's value; ``value_float(s)`` are float32, as the node's output is."""
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_floats"):
            return np.asarray(onnx.helper.get_attribute_value(attr), np.float32)
        if attr.name in ("value_int", "value_ints"):
            return np.asarray(onnx.helper.get_attribute_value(attr), np.int64)
    return None


def _names(graph: onnx.GraphProto) -> set[str]:
    """Every value name of ``graph`` and its subgraphs, so that a new one clashes with none."""
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info]}
    names |= {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                names |= _names(sub)
    return names


def _onnx_opset(model: onnx.ModelProto) -> int:
    for opset in model.opset_import:
        if opset.domain in _ONNX_DOMAINS:
            return opset.version
    return 0
