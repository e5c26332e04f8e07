"""Folding inference BatchNormalization into the convolution before it.

At inference a BatchNormalization is a per-channel scale and shift with
constant parameters. After a Conv it can be folded into the Conv's weight and
bias, so the network computes the same with one node and one pass over the
activations fewer. The rewrite is onnx-optimizer's ``fuse_bn_into_conv``, run
through onnxsim (see :mod:`graphopt.passes._onnxsim`).
"""

from __future__ import annotations

import logging

import onnx

from ._onnxsim import run_onnx_optimizers
from .base import Pass, PassResult

__all__ = ["STAT_KEYS", "FoldBatchNormPass"]

logger = logging.getLogger(__name__)

# The keys of PassResult.stats, in the order the class docstring lists them.
STAT_KEYS = ("folded", "kept")

_ONNX_DOMAINS = ("", "ai.onnx")
_CONVS = ("Conv", "ConvTranspose")


class FoldBatchNormPass(Pass):
    """Folds inference BatchNormalization into the Conv or ConvTranspose before it.

    The convolution gets the weight ``W·s`` and the bias ``(b - mean)·s + B``
    with ``s = scale / sqrt(var + epsilon)``, per output channel, and takes
    over the BatchNormalization's readers. The new weight and bias take the
    names of the old ones when nothing else reads those, else
    ``<name>.folded``; a convolution that had no bias gets one named after
    its weight (``conv1.weight`` → ``conv1.bias``).

    A BatchNormalization stays when:

    - its input is not a Conv or ConvTranspose output (after a Relu, say);
    - that output has another reader, is a graph output or is read inside an
      If/Loop/Scan body: the convolution's own result is still needed;
    - it runs in training mode (``training_mode=1``) or has more than one
      output (the running statistics of opset < 14);
    - a parameter, the convolution's weight or its bias is not a constant (an
      initializer that is not a graph input, or a Constant node's output);
    - its channel count is not the convolution's (a ConvTranspose with
      ``group > 1``), or the parameters' element types differ;
    - it sits inside an If/Loop/Scan body: only the main graph is rewritten.

    float and double parameters are folded directly. For other types (float16)
    onnx-optimizer emits the arithmetic as nodes, which are evaluated into the
    new weight and bias (in that type).

    Stats (all keys always present): ``folded`` (BatchNormalization nodes
    removed) and ``kept`` (BatchNormalization nodes still in the main graph).
    """

    name = "fold_batch_norm"

    def call(self, model: onnx.ModelProto) -> PassResult:
        before = _count_batch_norms(model.graph)
        stats = {"folded": 0, "kept": before}
        if not _has_candidate(model.graph):
            return PassResult(model, False, stats)
        # Run to a fixed point: onnx-optimizer's older builds (onnxsim 0.7, the last for Python 3.10) fold only
        # one of two BatchNormalizations that follow each other after a Conv per run.
        folded_model, kept = model, before
        while _has_candidate(folded_model.graph):
            again = run_onnx_optimizers(folded_model, ["fuse_bn_into_conv"])
            if _count_batch_norms(again.graph) == kept:
                break
            folded_model, kept = again, _count_batch_norms(again.graph)
        if kept == before:
            return PassResult(model, False, stats)
        stats = {"folded": before - kept, "kept": kept}
        logger.debug("%s: %s", self.name, stats)
        return PassResult(folded_model, True, stats)


def _is_onnx(node: onnx.NodeProto, *op_types: str) -> bool:
    return node.domain in _ONNX_DOMAINS and node.op_type in op_types


def _count_batch_norms(graph: onnx.GraphProto) -> int:
    return sum(_is_onnx(node, "BatchNormalization") for node in graph.node)


def _has_candidate(graph: onnx.GraphProto) -> bool:
    """Whether some BatchNormalization reads a convolution's output (onnxsim decides the rest)."""
    conv_outputs = {node.output[0] for node in graph.node if _is_onnx(node, *_CONVS) and node.output}
    return any(_is_onnx(node, "BatchNormalization") and node.input[0] in conv_outputs for node in graph.node)
