"""Helpers shared by rewrite passes: small edits of an ``onnx.GraphProto`` after nodes changed.

A helper lives here when more than one pass needs it; one pass's own helpers
stay private to its module.
"""

from __future__ import annotations

import onnx

__all__ = ["drop_stale_value_info", "restore_node_metadata"]


def drop_stale_value_info(graph: onnx.GraphProto) -> int:
    """Drops value_info no node output needs; returns how many entries went.

    Stale are entries of values the main graph no longer has (full_check
    rejects some), of graph inputs and outputs (declared there already), and
    repeats of a name (tools that rewrite graphs leave them). An entry for
    an initializer stays: onnx-ir writes those.
    """
    kept = {out for node in graph.node for out in node.output if out} | {t.name for t in graph.initializer}
    declared = {v.name for v in graph.input} | {v.name for v in graph.output}
    seen: set[str] = set()
    stale = []
    for index, value in enumerate(graph.value_info):
        if value.name not in kept or value.name in declared or value.name in seen:
            stale.append(index)
        seen.add(value.name)
    for index in reversed(stale):
        del graph.value_info[index]
    return len(stale)


def restore_node_metadata(before: onnx.GraphProto, after: onnx.GraphProto) -> int:
    """Puts back node metadata a library's rewrite dropped; returns how many nodes got theirs back.

    Node metadata carries contracts between passes (a float32 pin that the
    float16 conversion honours, a sliced scale's mark); onnxsim, onnxslim and
    onnxruntime write their graphs without it. A node of ``after`` that writes
    the same first output with the same operator as a node of ``before`` gets
    that node's metadata.
    """
    originals = {node.output[0]: node for node in before.node if node.output and node.metadata_props}
    restored = 0
    for node in after.node:
        original = originals.get(node.output[0]) if node.output else None
        if original is not None and original.op_type == node.op_type and not node.metadata_props:
            node.metadata_props.extend(original.metadata_props)
            restored += 1
    return restored
