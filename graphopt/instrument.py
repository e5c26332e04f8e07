"""Instrumentation hooked around every pass of a pipeline.

Timing and graph statistics are not code inside passes: the pipeline calls
each :class:`PassInstrumentation` before a pass, after it returns, and after
it fails or is rolled back (MLIR's ``runBeforePass`` / ``runAfterPass`` /
``runAfterPassFailed``). Before-hooks run in registration order and
after-hooks in reverse, so the instrument registered last sits closest to the
pass: :class:`TimingInstrumentation` goes last so that the wall time it
records is the pass alone, not the other instruments' work.

Both hooks receive the :class:`PassRecord` for the pass, which instruments
fill in and the report is built from. A caller's own passes get the same
records by running them in a :class:`~graphopt.pipeline.Pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from .analysis import GraphStats, graph_stats
from .latency import compare_interleaved
from .traffic import TrafficChange

if TYPE_CHECKING:  # verify runs models in onnxruntime; the record only holds its results
    from .verify import OutputError

__all__ = [
    "GraphStatsInstrumentation",
    "LatencyInstrumentation",
    "PassInstrumentation",
    "PassRecord",
    "TimingInstrumentation",
    "record_as_dict",
]

logger = logging.getLogger(__name__)


@dataclass
class PassRecord:
    """Everything measured about one pass of one pipeline run.

    ``status`` is ``"modified"``, ``"unchanged"``, ``"rolled_back"`` or
    ``"skipped"`` (a default pass whose requirement is missing; ``message`` says which). Fields
    stay ``None`` when no instrument measured them (e.g. errors without
    ``--verify``).
    """

    name: str
    index: int
    status: str = "unchanged"
    modified: bool = False
    wall_ms: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)
    nodes_before: int | None = None
    nodes_after: int | None = None
    op_delta: dict[str, int] = field(default_factory=dict)
    param_bytes_before: int | None = None
    param_bytes_after: int | None = None
    flops_before: int | None = None
    flops_after: int | None = None
    checks: bool | None = None
    output_errors: dict[str, OutputError] | None = None
    message: str | None = None
    traffic: TrafficChange | None = None
    details: list[dict[str, str]] = field(default_factory=list)

    @property
    def max_abs_error(self) -> float | None:
        if not self.output_errors:
            return None
        return max(e.max_abs for e in self.output_errors.values())

    @property
    def max_rel_error(self) -> float | None:
        if not self.output_errors:
            return None
        return max(e.max_rel for e in self.output_errors.values())


class PassInstrumentation:
    """Hooks around each pass; subclasses override the ones they need."""

    def before_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        """Called before the pass runs on ``model``."""

    def after_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        """Called when the pass has returned ``model``, before validation."""

    def after_pass_failed(self, record: PassRecord, model: onnx.ModelProto, reason: str) -> None:
        """Called when the pass raised or was rejected; ``model`` is the rolled-back one."""


class TimingInstrumentation(PassInstrumentation):
    """Records the pass's wall time (``time.perf_counter``) in ``record.wall_ms``."""

    def __init__(self) -> None:
        self._start: float | None = None

    def before_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self._start = time.perf_counter()

    def _stop(self, record: PassRecord) -> None:
        if self._start is not None:
            record.wall_ms = (time.perf_counter() - self._start) * 1e3
            self._start = None

    def after_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self._stop(record)

    def after_pass_failed(self, record: PassRecord, model: onnx.ModelProto, reason: str) -> None:
        self._stop(record)


class GraphStatsInstrumentation(PassInstrumentation):
    """Records nodes, op-histogram delta, parameter bytes and FLOPs before and after.

    The statistics of a pass's output are reused as the next pass's input
    statistics, so each model is analysed once. FLOPs are counted at
    ``input_shapes`` where the graph leaves inputs dynamic, so that the rows
    before and after shapes are pinned compare like with like.
    """

    def __init__(self, input_shapes: Mapping[str, Sequence[int]] | None = None) -> None:
        self.input_shapes = dict(input_shapes or {})
        self._cache: tuple[onnx.ModelProto, GraphStats] | None = None
        self._before: GraphStats | None = None

    def stats_of(self, model: onnx.ModelProto) -> GraphStats:
        if self._cache is not None and self._cache[0] is model:
            return self._cache[1]
        stats = graph_stats(model, self.input_shapes)
        self._cache = (model, stats)
        return stats

    def before_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self._before = self.stats_of(model)
        record.nodes_before = record.nodes_after = self._before.nodes
        record.param_bytes_before = record.param_bytes_after = self._before.param_bytes
        record.flops_before = record.flops_after = self._before.flops.total

    def after_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        assert self._before is not None
        after = self.stats_of(model)
        record.nodes_after = after.nodes
        record.param_bytes_after = after.param_bytes
        record.flops_after = after.flops.total
        delta = Counter(after.op_histogram)
        delta.subtract(self._before.op_histogram)
        record.op_delta = {op: n for op, n in sorted(delta.items()) if n}

    def after_pass_failed(self, record: PassRecord, model: onnx.ModelProto, reason: str) -> None:
        rolled_back = self.stats_of(model)
        record.nodes_after = rolled_back.nodes
        record.param_bytes_after = rolled_back.param_bytes
        record.flops_after = rolled_back.flops.total
        record.op_delta = {}


class LatencyInstrumentation(PassInstrumentation):
    """Times the graph before and after each pass that changes the work per frame (``Pass.changes_work``).

    Both graphs run on onnxruntime's CPU provider, interleaved round by round,
    on the workload's first test frame for a graph that takes frames, else on
    random non-zero inputs; the medians go to the record's stats
    (``latency_before_ms``, ``latency_after_ms``) and a sentence to its message.

    Args:
        passes: names of the passes to time.
        repeats: timed runs of each graph.
        feeds: the inputs of a model (called with the model before the pass).
    """

    def __init__(self, passes: Collection[str], repeats: int,
                 feeds: Callable[[onnx.ModelProto], dict[str, np.ndarray]]) -> None:
        self.passes = frozenset(passes)
        self.repeats = repeats
        self.feeds = feeds
        self._before: onnx.ModelProto | None = None

    def before_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self._before = model if record.name in self.passes else None

    def after_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        if self._before is None or not record.modified:
            return
        from .backends.onnxruntime import create_session  # the backends' report imports this module

        feeds = self.feeds(self._before)
        sessions = [create_session(m, what=what) for m, what in ((self._before, f"the graph before {record.name}"),
                                                                  (model, f"the graph after {record.name}"))]
        first, second = sessions
        stats_before, stats_after, change = compare_interleaved(
            lambda: first.run(None, feeds), lambda: second.run(None, feeds), warmup=3, repeats=self.repeats)
        before, after = stats_before.median_ms, stats_after.median_ms
        record.stats.update(latency_before_ms=before, latency_after_ms=after)
        record.message = (f"{record.message}; " if record.message else "") + (
            f"latency {before:.1f} → {after:.1f} ms per frame ({change.verdict}; onnxruntime CPU, "
            f"medians of {self.repeats} interleaved rounds)")
        self._before = None


def record_as_dict(record: PassRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "status": record.status,
        "modified": record.modified,
        "wall_ms": record.wall_ms,
        "nodes_before": record.nodes_before,
        "nodes_after": record.nodes_after,
        "op_delta": record.op_delta,
        "param_bytes_before": record.param_bytes_before,
        "param_bytes_after": record.param_bytes_after,
        "flops_before": record.flops_before,
        "flops_after": record.flops_after,
        "checks": record.checks,
        "max_abs_error": record.max_abs_error,
        "max_rel_error": record.max_rel_error,
        "output_errors": (
            {name: err.to_dict() for name, err in record.output_errors.items()}
            if record.output_errors is not None
            else None
        ),
        "stats": record.stats,
        "message": record.message,
        "traffic": record.traffic.to_dict() if record.traffic is not None else None,
        "details": record.details,
    }
