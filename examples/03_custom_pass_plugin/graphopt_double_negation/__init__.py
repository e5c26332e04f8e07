"""An example graphopt pass plugin: ``Neg(Neg(x))`` is ``x``.

Installed (``pip install ./examples/03_custom_pass_plugin``), it is listed by
``graphopt passes`` and runs by name: ``graphopt optimize MODEL -o OUT
--passes fold_double_negation,remove_redundant_nodes``, with the same
instrumentation, verification, rollback and report as the built-in passes.
"""

from __future__ import annotations

import logging

import onnx

from graphopt.graph import consumers, graph_output_names, rename_uses
from graphopt.passes import Pass, PassResult

__all__ = ["FoldDoubleNegationPass"]

logger = logging.getLogger(__name__)


class FoldDoubleNegationPass(Pass):
    """Folds Neg(Neg(x)) into x (the outer Neg's readers read x; the Negs left unread are removed).

    A graph output produced by the outer Neg is left alone, since its name
    would change; the second run of the pass finds nothing.
    """

    name = "fold_double_negation"

    def call(self, model: onnx.ModelProto) -> PassResult:
        graph = model.graph
        producer = {out: node for node in graph.node for out in node.output}
        outputs = graph_output_names(graph)
        renames: dict[str, str] = {}
        for node in graph.node:
            inner = producer.get(node.input[0]) if node.op_type == "Neg" and node.input else None
            if inner is not None and inner.op_type == "Neg" and node.output[0] not in outputs:
                renames[node.output[0]] = inner.input[0]
        if not renames:
            return PassResult(model, False, {"folded": 0})
        rename_uses(graph, renames)
        removed = 0
        while True:  # the outer Negs are unread now; then the inner ones they read
            readers = consumers(graph)
            unread = [n for n in graph.node if n.op_type == "Neg" and not any(readers.get(o) for o in n.output)
                      and not set(n.output) & outputs]
            if not unread:
                break
            for node in unread:
                graph.node.remove(node)
            removed += len(unread)
        logger.debug("folded %d double negations, removed %d nodes", len(renames), removed)
        return PassResult(model, True, {"folded": len(renames), "removed_nodes": removed})
