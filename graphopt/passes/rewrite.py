"""Helpers shared by rewrite passes: small edits of an ``onnx.GraphProto`` after nodes changed.

A helper lives here when more than one pass needs it; one pass's own helpers
stay private to its module.
"""

from __future__ import annotations

import onnx

__all__ = ["drop_stale_value_info"]


def drop_stale_value_info(graph: onnx.GraphProto) -> None:
    """Drops value_info of values the main graph no longer has (full_check rejects some)."""
    alive = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    alive |= {out for node in graph.node for out in node.output}
    for index in reversed(range(len(graph.value_info))):
        if graph.value_info[index].name not in alive:
            del graph.value_info[index]
