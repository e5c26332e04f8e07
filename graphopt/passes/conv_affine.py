"""Folding a constant per-channel Mul or Add after a convolution into its weight and bias.

Exporters leave the scale and shift of a layer as separate nodes where the
framework kept them apart: paddle2onnx's DBNet head writes ``Mul`` by a
per-channel scale after its Convs and an ``Add`` of a constant after its last
ConvTranspose. onnx-optimizer folds Add into a Conv's bias only for Conv, and
neither onnxslim nor onnxruntime's basic level folds either into a
ConvTranspose; this pass does both, since no library does it for these cases.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import numpy_helper

from ..graph import attribute, consumers, graph_output_names, subgraph_inputs, unique_name
from .base import Pass, PassResult

__all__ = ["FoldConvAffinePass"]

logger = logging.getLogger(__name__)

_ONNX_DOMAINS = ("", "ai.onnx")


def _out_channels(conv: onnx.NodeProto, weight: np.ndarray) -> int:
    if conv.op_type == "Conv":
        return int(weight.shape[0])
    return int(weight.shape[1]) * int(attribute(conv, "group", 1))


def _per_channel(value: np.ndarray, rank: int, channels: int) -> np.ndarray | None:
    """``value`` as one number per output channel, if it broadcasts that way onto a rank-``rank`` output."""
    if value.ndim > rank or value.size == 0:
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).astype(value.dtype)


class FoldConvAffinePass(Pass):
    """Folds a constant per-channel Mul or Add after a Conv or ConvTranspose into its weight and bias.

    Rules applied, repeated until none applies:

    * the convolution's weight (and bias, if any) are initializers that are
      not graph inputs, its output is read by exactly one node and is not a
      graph output;
    * that node is a ``Mul`` or ``Add`` whose other operand is an initializer
      (not a graph input) of the weight's type that broadcasts per output
      channel (a scalar, ``[C]``-like ``[1, C, 1, 1]`` or all ones);
    * Mul by ``s``: the weight is scaled per output channel (a Conv's axis 0;
      a ConvTranspose's axis 1, only with ``group`` 1) and the bias by ``s``;
      Add of ``c``: ``c`` is added to the bias (created where missing);
    * the convolution takes over the Mul's or Add's output name; the new
      weight and bias keep the old names when nothing else reads those, else
      they are ``<name>.folded``; a new bias is named after the weight
      (``conv1.weight`` → ``conv1.bias``).

    Stats: ``mul`` and ``add`` (nodes folded).
    """

    name = "fold_conv_affine"

    def call(self, model: onnx.ModelProto) -> PassResult:
        stats = {"mul": 0, "add": 0}
        while (kind := _fold_one(model.graph)) is not None:
            stats[kind] += 1
        if any(stats.values()):
            _drop_unread_initializers(model.graph)
        logger.debug("%s: %s", self.name, stats)
        return PassResult(model, any(stats.values()), stats)


def _fold_one(graph: onnx.GraphProto) -> str | None:
    """Folds the first Mul or Add that fits; returns its kind, or ``None`` when none fits."""
    readers = consumers(graph)
    outputs = graph_output_names(graph)
    inputs = {v.name for v in graph.input}
    initializers = {t.name: t for t in graph.initializer if t.name not in inputs}
    for conv in graph.node:
        if conv.op_type not in ("Conv", "ConvTranspose") or conv.domain not in _ONNX_DOMAINS:
            continue
        if conv.output[0] in outputs or len(readers.get(conv.output[0], [])) != 1:
            continue
        follower = readers[conv.output[0]][0]
        if follower.op_type not in ("Mul", "Add") or follower.domain not in _ONNX_DOMAINS or len(follower.input) != 2:
            continue
        other = follower.input[1] if follower.input[0] == conv.output[0] else follower.input[0]
        if other == conv.output[0] or other not in initializers or conv.input[1] not in initializers:
            continue
        if len(conv.input) > 2 and conv.input[2] and conv.input[2] not in initializers:
            continue
        if _fold(graph, conv, follower, initializers, numpy_helper.to_array(initializers[other])):
            return "mul" if follower.op_type == "Mul" else "add"
    return None


def _fold(graph: onnx.GraphProto, conv: onnx.NodeProto, follower: onnx.NodeProto,
          initializers: dict[str, onnx.TensorProto], constant: np.ndarray) -> bool:
    weight = numpy_helper.to_array(initializers[conv.input[1]])
    if constant.dtype != weight.dtype or not np.issubdtype(weight.dtype, np.floating):
        return False
    channels = _out_channels(conv, weight)
    values = _per_channel(constant, weight.ndim, channels)
    if values is None:
        return False
    has_bias = len(conv.input) > 2 and bool(conv.input[2])
    bias = numpy_helper.to_array(initializers[conv.input[2]]) if has_bias else np.zeros(channels, weight.dtype)
    if follower.op_type == "Mul":
        if conv.op_type == "ConvTranspose" and int(attribute(conv, "group", 1)) != 1:
            return False
        axis = 0 if conv.op_type == "Conv" else 1
        shape = [1] * weight.ndim
        shape[axis] = channels
        weight, bias = weight * values.reshape(shape), bias * values
        _set_input(graph, conv, 1, weight)
    else:
        bias = bias + values
    _set_input(graph, conv, 2, bias.astype(weight.dtype))
    conv.output[0] = follower.output[0]
    graph.node.remove(follower)
    logger.debug("folded %s into %s %r", follower.op_type, conv.op_type, conv.name)
    return True


def _set_input(graph: onnx.GraphProto, node: onnx.NodeProto, index: int, array: np.ndarray) -> None:
    """Gives ``node`` the initializer ``array`` at input ``index``.

    It replaces the initializer read there when nothing else reads that one
    (same name); else it is ``<name>.folded``. A new bias is named after the
    weight (``conv1.weight`` → ``conv1.bias``).
    """
    old = node.input[index] if index < len(node.input) else ""
    if old:
        readers = sum(name == old for n in graph.node for name in [*n.input, *subgraph_inputs(n)])
        if readers == 1 and old not in graph_output_names(graph):
            for init in graph.initializer:
                if init.name == old:
                    init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), old))
                    return
    taken = {t.name for t in graph.initializer} | {out for n in graph.node for out in n.output}
    taken |= {v.name for v in graph.input}
    weight = node.input[1]
    base = f"{old}.folded" if old else (weight[: -len("weight")] + "bias" if weight.endswith("weight")
                                         else f"{weight}.bias")
    name = unique_name(base, taken)
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
    while len(node.input) <= index:
        node.input.append("")
    node.input[index] = name


def _drop_unread_initializers(graph: onnx.GraphProto) -> None:
    read = {name for node in graph.node for name in [*node.input, *subgraph_inputs(node)]} | graph_output_names(graph)
    inputs = {v.name for v in graph.input}
    for index in reversed(range(len(graph.initializer))):
        name = graph.initializer[index].name
        if name not in read and name not in inputs:
            del graph.initializer[index]
