"""What crosses the boundary between the host program and the runtime, per frame.

Every inference call costs a launch, a copy of its inputs into the runtime and
a copy of its outputs back; every stage the host computes between calls is
work the device never sees (and, on a GPU, one more round trip). A pass that
moves host stages into the graph reports the traffic before and after as a
:class:`TrafficChange`, which the per-pass report prints beside the node
counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper

from .graph import declared_dims, graph_inputs

__all__ = ["BoundaryTraffic", "HostStage", "TrafficChange", "graph_traffic"]


@dataclass(frozen=True)
class BoundaryTraffic:
    """What crossed the host/runtime boundary for one frame.

    Attributes:
        calls: inference calls into the runtime.
        bytes_in: bytes of the tensors fed into the runtime.
        bytes_out: bytes of the tensors the runtime returned to the host.
        memcpy_nodes: Memcpy nodes onnxruntime inserted between device and
            host partitions of the graph(s), where a GPU execution provider
            was there to ask; ``None`` otherwise.
    """

    calls: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    memcpy_nodes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "memcpy_nodes": self.memcpy_nodes,
        }


@dataclass(frozen=True)
class HostStage:
    """One stage of host-side work per frame.

    Attributes:
        name: the stage (``preprocess``, ``resize``, ...).
        ops: arithmetic operations per frame (FLOPs for the matrix products,
            element operations or comparisons otherwise).
        what: a few words on what the host computed.
    """

    name: str
    ops: int
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ops": self.ops, "what": self.what}


@dataclass(frozen=True)
class TrafficChange:
    """Boundary traffic per frame before and after a pass, and the host stages it moved into the graph."""

    before: BoundaryTraffic
    after: BoundaryTraffic
    host_stages_removed: tuple[HostStage, ...] = ()

    @property
    def host_ops_removed(self) -> int:
        return sum(stage.ops for stage in self.host_stages_removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "host_stages_removed": [stage.to_dict() for stage in self.host_stages_removed],
            "host_ops_removed": self.host_ops_removed,
        }


def graph_traffic(model: onnx.ModelProto) -> BoundaryTraffic:
    """One call of a graph with static shapes: its inputs in, its outputs out (a fused detector's traffic)."""

    def size(values: Sequence[onnx.ValueInfoProto]) -> int:
        total = 0
        for value in values:
            dims = declared_dims(value) or []
            itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)).itemsize
            total += math.prod(int(d) for d in dims if isinstance(d, int)) * itemsize
        return total

    return BoundaryTraffic(calls=1, bytes_in=size(graph_inputs(model)), bytes_out=size(list(model.graph.output)))
