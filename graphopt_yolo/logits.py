"""The score logits under an export's Sigmoid: the network's output with its score channels before the sigmoid.

Both reference exports apply the sigmoid inside the graph (YOLOv8: one
``Sigmoid`` over the class channels before the final ``Concat``; YOLOX: one
over objectness and one over the classes at each stride, then ``Concat``,
``Reshape``, ``Concat`` and ``Transpose``). Ranking on those probabilities
loses resolution where they saturate (float16 has no value between 0.9995 and
1); ranking on the logits does not, and is the same order (the sigmoid is
strictly increasing).

:func:`logit_output` writes a twin of the output: every node on the path from
a score ``Sigmoid`` to the output that only moves values (``Concat``,
``Reshape``, ``Transpose``, ``Slice``, ``Split``…) is copied to read the
``Sigmoid``'s input instead of its output; nodes off that path (the box
channels) are shared, not copied. The twin is checked on one input: its
other channels equal the output's, and the sigmoid of its score channels
gives the output's score channels — else there is no twin, and the reason
says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx

from .layout import MOVING_OPS, Layout

__all__ = ["LOGIT_OUTPUT", "LogitOutput", "logit_output"]

logger = logging.getLogger(__name__)

#: The name of the twin output's value in the fused graph.
LOGIT_OUTPUT = "yolo/logits/output"
# Float32 sigmoids of the same logit in two runtimes' kernels (the check's tolerance).
_SIGMOID_TOLERANCE = 1e-5


@dataclass(frozen=True)
class LogitOutput:
    """The twin of the network's output with logit scores: its nodes and the name of its value, or why none."""

    nodes: tuple[onnx.NodeProto, ...]
    name: str | None
    reason: str

    @property
    def found(self) -> bool:
        return self.name is not None


class _Twin:
    """Copies of the moving nodes between the score Sigmoids and the output, reading the Sigmoids' inputs."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.producer = {out: node for node in model.graph.node for out in node.output if out}
        self.renamed: dict[str, str] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.bypassed = 0

    def of(self, name: str) -> str:
        """The logit twin of value ``name`` (``name`` itself where no Sigmoid lies above it)."""
        if name in self.renamed:
            return self.renamed[name]
        node = self.producer.get(name)
        if node is not None and node.op_type == "Sigmoid" and node.domain in ("", "ai.onnx"):
            self.bypassed += 1
            self.renamed[name] = node.input[0]
        elif node is not None and node.op_type in MOVING_OPS and node.domain in ("", "ai.onnx"):
            self._copy(node)
        else:
            self.renamed[name] = name
        return self.renamed[name]

    def _copy(self, node: onnx.NodeProto) -> None:
        carried = MOVING_OPS[node.op_type]
        inputs = [self.of(value) if value and (carried is None or i in carried) else value
                  for i, value in enumerate(node.input)]
        if inputs == list(node.input):
            self.renamed.update({out: out for out in node.output})
            return
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"yolo/logits/{node.name or node.output[0]}"
        copy.input[:] = inputs
        copy.output[:] = [f"yolo/logits/{out}" if out else out for out in node.output]
        self.renamed.update(zip(node.output, copy.output, strict=True))
        self.nodes.append(copy)


def logit_output(model: onnx.ModelProto, layout: Layout) -> LogitOutput:
    """The logit twin of ``layout.output`` in ``model``, checked on one random input (see the module docstring)."""
    if not layout.probabilities:
        return LogitOutput((), None, "the export's scores are logits already")
    twin = _Twin(model)
    name = twin.of(layout.output)
    if name == layout.output or twin.bypassed == 0:
        return LogitOutput((), None, "no Sigmoid reaches the output through layout ops only")
    nodes = tuple(twin.nodes)
    why = _check(model, layout, nodes, name)
    if why is not None:
        return LogitOutput((), None, why)
    plural = "" if twin.bypassed == 1 else "s"
    reason = f"{twin.bypassed} score Sigmoid{plural} bypassed"
    if not any(name in node.output for node in nodes):  # the output is a Sigmoid's: its input is the twin
        return LogitOutput(nodes, name, reason)
    return LogitOutput(_renamed(nodes, name, LOGIT_OUTPUT), LOGIT_OUTPUT, reason)


def _renamed(nodes: tuple[onnx.NodeProto, ...], old: str, new: str) -> tuple[onnx.NodeProto, ...]:
    """Copies of ``nodes`` with the value ``old`` named ``new``."""
    out = []
    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.output[:] = [new if v == old else v for v in copy.output]
        copy.input[:] = [new if v == old else v for v in copy.input]
        out.append(copy)
    return tuple(out)


def _check(model: onnx.ModelProto, layout: Layout, nodes: tuple[onnx.NodeProto, ...], name: str) -> str | None:
    """Why the twin ``name`` is not the output with logit scores on one random input; None when it is."""
    from onnx import helper

    from graphopt.backends.onnxruntime import create_session, run_session

    work = onnx.ModelProto()
    work.CopyFrom(model)
    work.graph.node.extend(nodes)
    work.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = create_session(work, what="the YOLO network with its logit twin")
    image = np.random.default_rng(1).uniform(0, 1, (1, 3, *layout.network_hw)).astype(np.float32)
    outputs = run_session(session, {layout.input: image})
    probabilities, logits = outputs[layout.output], outputs[name]
    if probabilities.shape != logits.shape:
        return f"the logit twin has shape {list(logits.shape)}, the output {list(probabilities.shape)}"
    n, c = layout.predictions, layout.classes
    width = 4 + c + int(layout.objectness)
    table = (lambda x: x.reshape(n, width)) if layout.objectness else (lambda x: x.reshape(width, n).T)
    before, after = table(probabilities), table(logits)
    if not np.array_equal(before[:, :4], after[:, :4]):
        return "the Sigmoid bypass changes the box channels"
    scores = 1 / (1 + np.exp(-after[:, 4:].astype(np.float64)))
    worst = float(np.max(np.abs(scores - before[:, 4:]), initial=0.0))
    if not worst <= _SIGMOID_TOLERANCE:
        return f"the sigmoid of the bypassed scores differs from the export's by {worst:.3g}"
    return None
