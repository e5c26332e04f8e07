"""onnxslim's eliminations, constant folding and fusions, run as a graphopt pass.

onnxslim (``inisis/OnnxSlim``) already has the clean-ups a real export needs
most: constant folding with shape inference on dynamic graphs, dead-code and
duplicate elimination, and fusions into standard operators (Conv+BN,
Conv+Add, Gemm, Pad into Conv, Concat/Reshape chains). Wrapping it rather than
rewriting it keeps graphopt's own passes for what no library does, while
onnxslim's rewrites are timed, checked, verified, rolled back and reported
like every other pass.
"""

from __future__ import annotations

import contextlib
import io
import logging

import onnx

from ..errors import ModelLoadError, first_line
from ..graph import count_nodes
from ..model_io import check_model
from .base import Pass, PassResult
from .rewrite import restore_node_metadata

__all__ = ["MAX_ROUNDS", "SlimGraphPass", "keep_interface"]

logger = logging.getLogger(__name__)

#: onnxslim is run again on its own output while that removes nodes, at most this often.
MAX_ROUNDS = 4


def keep_interface(source: onnx.ModelProto, graph: onnx.GraphProto) -> onnx.ModelProto:
    """``source`` with ``graph`` as its graph: the model's own opsets, IR version, metadata and functions kept.

    The graph inputs and outputs keep ``source``'s order; a tool that rewrites
    a graph may reorder them.
    """
    result = onnx.ModelProto()
    result.CopyFrom(source)
    result.graph.CopyFrom(graph)
    for field in ("input", "output"):
        by_name = {v.name: v for v in getattr(result.graph, field)}
        wanted = [v.name for v in getattr(source.graph, field) if v.name in by_name]
        if len(wanted) == len(by_name):
            ordered = [by_name[name] for name in wanted]
            result.graph.ClearField(field)
            getattr(result.graph, field).extend(ordered)
    return result


def _slim_once(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        slimmed = onnxslim.slim(model)
    if printed.getvalue().strip():
        logger.debug("onnxslim: %s", printed.getvalue().strip())
    if not isinstance(slimmed, onnx.ModelProto):
        raise RuntimeError(f"onnxslim returned {type(slimmed).__name__}, not a model")
    result = keep_interface(model, slimmed.graph)
    check_model(result, origin="onnxslim's output")
    return result


class SlimGraphPass(Pass):
    """onnxslim: constant folding, dead-code and duplicate elimination, fusions into standard operators.

    Rules applied:

    * ``onnxslim.slim`` with its defaults (shape inference on, every
      elimination and fusion pattern), on the model as it stands: dynamic
      dimensions stay dynamic;
    * the result is taken only when it has fewer nodes (inside subgraphs and
      functions counted too), and onnxslim is run again on it while that
      removes nodes (at most :data:`MAX_ROUNDS` rounds), so that a second run
      of the pass changes nothing;
    * the model's opsets, IR version, metadata and functions, and the order
      of its inputs and outputs, are kept; only the graph is onnxslim's.

    Stats: ``removed_nodes``, ``rounds`` (onnxslim runs whose result was taken).
    """

    name = "slim"

    def call(self, model: onnx.ModelProto) -> PassResult:
        start = count_nodes(model)
        current, nodes, rounds = model, start, 0
        note = None
        for _ in range(MAX_ROUNDS):
            try:
                candidate = _slim_once(current)
            except ModelLoadError as error:
                # onnxslim's own bug (e.g. on quantized graphs), not the model's: keep what there is.
                note = f"onnxslim's result left out: {error}"
                break
            except Exception as error:  # onnxslim raises whatever its folding meets (a custom op, say)
                note = f"left out: onnxslim failed on the model ({first_line(error)})"
                break
            found = count_nodes(candidate)
            if found >= nodes:
                break
            restore_node_metadata(current.graph, candidate.graph)
            current, nodes, rounds = candidate, found, rounds + 1
        logger.debug("slim: %d -> %d nodes in %d round(s)", start, nodes, rounds)
        return PassResult(current, rounds > 0, {"removed_nodes": start - nodes, "rounds": rounds}, note=note)
