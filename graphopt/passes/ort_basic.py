"""onnxruntime's basic offline graph optimizations, written back to ONNX, as a graphopt pass.

onnxruntime's ``ORT_ENABLE_BASIC`` level holds the semantics-preserving
rewrites it applies to every model: constant folding, redundant-node
elimination and fusions into standard operators (Conv with a following Add,
Mul or BatchNormalization, ...). Written to a file (``optimized_model_filepath``)
its result is an ONNX model any runtime can load. The extended and layout
levels are not used: they write ``com.microsoft`` fused operators that only
onnxruntime's CPU provider runs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx

from ..errors import first_line
from ..graph import count_nodes
from .base import Pass, PassResult
from .rewrite import restore_node_metadata
from .slim import keep_interface

__all__ = ["OnnxRuntimeBasicPass", "onnxruntime_basic"]

logger = logging.getLogger(__name__)

_STANDARD_DOMAINS = ("", "ai.onnx")


def onnxruntime_basic(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` as onnxruntime's basic offline level writes it (CPU provider, a private temporary file)."""
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="graphopt-ort-") as tmp:
        path = Path(tmp) / "basic.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(path)
        options.log_severity_level = 3
        onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        written = onnx.load(str(path))
    return keep_interface(model, written.graph)


def _foreign_ops(model: onnx.ModelProto, allowed: set[str]) -> list[str]:
    return sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in allowed})


class OnnxRuntimeBasicPass(Pass):
    """onnxruntime's basic offline level: constant folding, redundant-node elimination, standard-op fusions.

    Rules applied:

    * the model is loaded into onnxruntime (CPU provider) with
      ``ORT_ENABLE_BASIC`` and the optimized graph it writes is read back;
    * the result is taken only when it has fewer nodes (inside subgraphs and
      functions counted too) and every node is in a domain the input model
      already used, so that the output stays standard ONNX wherever the input
      was; otherwise the model is left as it was, with the reason as a note;
    * the model's opsets, IR version, metadata and functions are kept.

    Stats: ``removed_nodes``.
    """

    name = "onnxruntime_basic"

    def call(self, model: onnx.ModelProto) -> PassResult:
        before = count_nodes(model)
        try:
            written = onnxruntime_basic(model)
        except Exception as error:  # onnxruntime's own exception types; a custom op it has no kernel for
            note = f"left out: onnxruntime cannot load the model ({first_line(error)})"
            return PassResult(model, False, {"removed_nodes": 0}, note=note)
        after = count_nodes(written)
        allowed = {*_STANDARD_DOMAINS, *(n.domain for n in model.graph.node)}
        foreign = _foreign_ops(written, allowed)
        if foreign:
            note = f"left out: onnxruntime wrote operators outside the model's domains ({', '.join(foreign[:3])})"
            return PassResult(model, False, {"removed_nodes": 0}, note=note)
        if after >= before:
            logger.debug("onnxruntime basic level: %d -> %d nodes, not taken", before, after)
            return PassResult(model, False, {"removed_nodes": 0})
        restore_node_metadata(model.graph, written.graph)
        return PassResult(written, True, {"removed_nodes": before - after})
