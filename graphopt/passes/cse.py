"""Computing identical nodes once (common-subexpression elimination).

Exporters trace every use of a value separately: a model that asks for the
shape of a tensor twice gets two Shape nodes, one that needs the same constant
twice gets two Constant nodes. Such nodes compute the same values, so all but
one can go. The rewrite is onnx-optimizer's ``eliminate_common_subexpression``,
run through onnxsim (see :mod:`graphopt.passes._onnxsim`).
"""

from __future__ import annotations

import logging

import onnx

from ._onnxsim import remove_dead_nodes, run_onnx_optimizers
from .base import Pass, PassResult
from .rewrite import drop_stale_value_info

__all__ = ["STAT_KEYS", "MergeCommonSubexpressionsPass"]

logger = logging.getLogger(__name__)

# The keys of PassResult.stats, in the order the class docstring lists them.
STAT_KEYS = ("merged", "dead_nodes")

# Operators whose every run draws new values: two of them with the same inputs
# do not compute the same thing. onnx-optimizer's CSE merges them all the same.
_RANDOM_OPS = frozenset(
    {"Bernoulli", "Dropout", "Multinomial", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"}
)
_DETERMINISTIC_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")

# A node hidden from the CSE moves to this domain with a distinct attribute
# value, so that it equals no other node; both are undone afterwards.
_BARRIER_DOMAIN = "graphopt.cse_barrier"
_BARRIER_INDEX = "graphopt_cse_barrier_index"
_BARRIER_ORIGIN = "graphopt_cse_barrier_domain"


class MergeCommonSubexpressionsPass(Pass):
    """Computes identical nodes once: same operator, attributes and inputs.

    Of two such nodes in the main graph the later one is removed and its
    readers read the earlier one's outputs; merges repeat down chains
    (``Exp(Relu(x))`` twice becomes once). When the removed node's output is a
    graph output, the kept node takes over that name. Rules, found by
    experiment with onnxsim 0.8.1's onnx-optimizer:

    - inputs must be the same names in the same order: ``Add(a, b)`` and
      ``Add(b, a)`` are not merged, and neither are nodes whose attributes
      differ only by one spelling out a default;
    - Constant nodes with equal values are merged like any node; initializers
      with equal values are not (``remove_redundant_nodes`` merges those);
    - two nodes whose outputs are both graph outputs both stay;
    - nodes with subgraphs (If, Loop, Scan) are never merged, and nodes inside
      subgraphs are left alone; bodies reading a removed node's output read
      the kept one's instead;
    - random operators (RandomNormal[Like], RandomUniform[Like], Bernoulli,
      Multinomial, Dropout) and operators outside the ONNX domains (whose
      determinism graphopt cannot know) are never merged. onnx-optimizer
      would merge them; graphopt hides them from it.

    The nodes no graph output needs any more are then removed, with the
    initializers only they read.

    Stats (all keys always present): ``merged`` (nodes removed as duplicates
    of another) and ``dead_nodes`` (other nodes no graph output needed, which
    the graph had before the merge).
    """

    name = "merge_common_subexpressions"

    def call(self, model: onnx.ModelProto) -> PassResult:
        merged = 0
        if _has_candidates(model.graph):
            hidden = onnx.ModelProto()
            hidden.CopyFrom(model)
            _hide_from_cse(hidden)
            result = run_onnx_optimizers(hidden, ["eliminate_common_subexpression"])
            # The rewrite only removes nodes (it adds none).
            merged = len(model.graph.node) - len(result.graph.node)
            if merged:
                _unhide(result)
                model = result
        dead_nodes = remove_dead_nodes(model.graph)
        stats = {"merged": merged, "dead_nodes": dead_nodes}
        modified = any(stats.values())
        if modified:
            drop_stale_value_info(model.graph)
        logger.debug("%s: %s", self.name, stats)
        return PassResult(model, modified, stats)


def _has_candidates(graph: onnx.GraphProto) -> bool:
    """Whether two main-graph nodes share operator and inputs, which any merge starts from."""
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for node in graph.node:
        key = (node.domain, node.op_type, tuple(node.input))
        if key in seen:
            return True
        seen.add(key)
    return False


def _must_stay(node: onnx.NodeProto) -> bool:
    return node.domain not in _DETERMINISTIC_DOMAINS or node.op_type in _RANDOM_OPS


def _hide_from_cse(model: onnx.ModelProto) -> None:
    """Makes every random or custom node unequal to all others for the CSE (undone by :func:`_unhide`)."""
    hidden = [node for node in model.graph.node if _must_stay(node)]
    for index, node in enumerate(hidden):
        node.attribute.append(onnx.helper.make_attribute(_BARRIER_INDEX, index))
        if node.HasField("domain"):
            node.attribute.append(onnx.helper.make_attribute(_BARRIER_ORIGIN, node.domain))
        node.domain = _BARRIER_DOMAIN
    if hidden:
        model.opset_import.append(onnx.helper.make_opsetid(_BARRIER_DOMAIN, 1))


def _unhide(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        if node.domain != _BARRIER_DOMAIN:
            continue
        node.ClearField("domain")
        for attr in list(node.attribute):
            if attr.name == _BARRIER_ORIGIN:
                node.domain = attr.s.decode()
            if attr.name in (_BARRIER_INDEX, _BARRIER_ORIGIN):
                node.attribute.remove(attr)
    for index in reversed(range(len(model.opset_import))):
        if model.opset_import[index].domain == _BARRIER_DOMAIN:
            del model.opset_import[index]
