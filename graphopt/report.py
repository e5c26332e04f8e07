"""The per-pass report: one row per pass, a total, and the model before and after.

The same :class:`Report` object is returned to library callers and rendered by
the CLI as a terminal table, JSON (schema ``graphopt.report/1``, documented in
the README) and Markdown. The total is the sum of the pass rows, so the rows
add up to it; the time spent by instrumentation, checking and verification is
reported beside it as overhead.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from . import __version__
from .analysis import GraphStats
from .instrument import PassRecord, record_as_dict
from .latency import LatencyChange
from .options import OptimizeOptions
from .timing import LatencyStats, machine_description
from .traffic import BoundaryTraffic, TrafficChange

__all__ = ["SCHEMA", "BackendResult", "Report"]

SCHEMA = "graphopt.report/1"


@dataclass
class BackendResult:
    """The final stage: which backend built what, and latency before/after."""

    name: str
    artifact: str
    providers: tuple[str, ...] = ()
    runtime_version: str = ""
    machine: dict[str, str | int] = field(default_factory=machine_description)
    latency_before: LatencyStats | None = None
    latency_after: LatencyStats | None = None
    latency_what: str = "per call, same random inputs"
    #: Why the latency was not measured (a dynamic input without a given shape), if so.
    latency_skipped: str | None = None
    #: The change from before to after judged against the timing noise (interleaved timing only).
    latency_change: LatencyChange | None = None
    memcpy_provider: str | None = None
    memcpy_before: int | None = None
    memcpy_after: int | None = None
    #: Sentences about the build (e.g. ops the TensorRT parser does not support, by node).
    notes: list[str] = field(default_factory=list)
    #: An engine's layers after the runtime's fusions: name, type, precisions and median ms when it was run.
    layers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "artifact": self.artifact,
            "providers": list(self.providers),
            "runtime_version": self.runtime_version,
            "machine": dict(self.machine),
            "latency_before": self.latency_before.to_dict() if self.latency_before else None,
            "latency_after": self.latency_after.to_dict() if self.latency_after else None,
            "latency_what": self.latency_what,
            "latency_change": self.latency_change.to_dict() if self.latency_change else None,
            "latency_skipped": self.latency_skipped,
            "memcpy_provider": self.memcpy_provider,
            "memcpy_before": self.memcpy_before,
            "memcpy_after": self.memcpy_after,
            "notes": list(self.notes),
            "layers": [dict(layer) for layer in self.layers],
        }


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _flops(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return str(value)


def _bytes(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value} B"


def _traffic(t: BoundaryTraffic) -> str:
    calls = f"{t.calls} call{'s' if t.calls != 1 else ''}"
    memcpy = f", {t.memcpy_nodes} Memcpy nodes" if t.memcpy_nodes is not None else ""
    return f"{calls}, {_bytes(t.bytes_in)} in, {_bytes(t.bytes_out)} out{memcpy}"


def _traffic_lines(name: str, change: TrafficChange) -> list[str]:
    lines = [f"{name}: boundary traffic per frame {_traffic(change.before)} → {_traffic(change.after)}"]
    if change.host_stages_removed:
        stages = ", ".join(f"{s.name} ({_flops(s.ops)} ops)" for s in change.host_stages_removed)
        lines.append(f"{name}: host work moved into the graph per frame: {stages}")
    return lines


def _error(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _detail_lines(record: PassRecord) -> list[str]:
    """A pass's detail rows; nodes kept in float32 grouped by reason (the JSON report lists every one)."""
    kept: dict[str, list[str]] = {}
    lines = []
    for row in record.details:
        if {"name", "op_type", "reason"} <= set(row):
            kept.setdefault(row["reason"], []).append(f"{row['name']} ({row['op_type']})")
        else:
            lines.append(f"{record.name}: " + ", ".join(f"{key} {value}" for key, value in row.items()))
    for reason, nodes in kept.items():
        shown = ", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
        lines.append(f"{record.name}: kept in float32, {len(nodes)} node{'s' * (len(nodes) > 1)}: {shown}: {reason}")
    return lines


def _layer_lines(layers: list[dict[str, Any]]) -> list[str]:
    """An engine's layers: how many, in which precisions, and the slowest when they were timed."""
    counts: dict[str, int] = {}
    for layer in layers:
        for precision in layer.get("precisions") or ["unknown"]:
            counts[precision] = counts.get(precision, 0) + 1
    mix = ", ".join(f"{precision} {count}" for precision, count in sorted(counts.items(), key=lambda kv: -kv[1]))
    lines = [f"engine: {len(layers)} layers after the runtime's fusions (tensors by precision: {mix})"]
    timed = sorted((layer for layer in layers if layer.get("median_ms") is not None),
                   key=lambda layer: -float(layer["median_ms"]))
    if timed:
        total = sum(float(layer["median_ms"]) for layer in timed)
        for layer in timed[:5]:
            share = float(layer["median_ms"]) / total if total > 0 else 0.0
            lines.append(f"engine layer {layer['name']} ({layer['type']}, {'/'.join(layer['precisions']) or '?'}): "
                         f"{float(layer['median_ms']):.3f} ms ({share:.0%} of the layer time)")
    return lines


@dataclass
class Report:
    """What a pipeline run did, pass by pass."""

    options: OptimizeOptions = field(default_factory=OptimizeOptions)
    passes: list[PassRecord] = field(default_factory=list)
    before: GraphStats | None = None
    after: GraphStats | None = None
    pipeline_ms: float = 0.0
    source: str | None = None
    outputs: list[str] = field(default_factory=list)
    backend: BackendResult | None = None
    #: What third-party C/C++ code printed while the CLI ran (captured, not shown raw), summarised.
    native_output: list[str] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        """Sum of the passes' wall times: the total the rows add up to."""
        return sum(r.wall_ms for r in self.passes)

    @property
    def overhead_ms(self) -> float:
        """Pipeline time outside the passes: statistics, checking, verification."""
        return max(self.pipeline_ms - self.total_ms, 0.0)

    def share(self, record: PassRecord) -> float:
        total = self.total_ms
        return record.wall_ms / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        verify = self.options.verify
        data = {
            "schema": SCHEMA,
            "graphopt_version": __version__,
            "source": self.source,
            "outputs": list(self.outputs),
            "options": {
                "input_shapes": {k: list(v) for k, v in self.options.input_shapes.items()},
                "verify": (
                    {"rtol": verify.rtol, "atol": verify.atol, "samples": verify.samples, "seed": verify.seed}
                    if verify
                    else None
                ),
                "keep_going": self.options.keep_going,
            },
            "passes": [{**record_as_dict(r), "share": self.share(r)} for r in self.passes],
            "total_ms": self.total_ms,
            "overhead_ms": self.overhead_ms,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "backend": self.backend.to_dict() if self.backend else None,
            "native_output": list(self.native_output),
        }
        return _finite(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def _rows(self) -> list[list[str]]:
        rows = []
        for r in self.passes:
            rows.append([
                r.name,
                r.status.replace("_", " "),
                f"{r.wall_ms:.1f}",
                f"{100 * self.share(r):.1f}%",
                f"{r.nodes_before} → {r.nodes_after}",
                f"{_flops(r.flops_before)} → {_flops(r.flops_after)}",
                _error(r.max_abs_error),
            ])
        return rows

    _HEADER = ("pass", "status", "time ms", "share", "nodes", "FLOPs", "max abs err")

    def _total_row(self) -> list[str]:
        nodes = flops = ""
        if self.before and self.after:
            nodes = f"{self.before.nodes} → {self.after.nodes}"
            flops = f"{_flops(self.before.flops.total)} → {_flops(self.after.flops.total)}"
        return ["total", "", f"{self.total_ms:.1f}", "100.0%" if self.passes else "", nodes, flops, ""]

    def _summary_lines(self) -> list[str]:
        lines = []
        if self.before and self.after:
            lines.append(f"parameters: {_bytes(self.before.param_bytes)} → {_bytes(self.after.param_bytes)}")
        lines.append(f"checking, statistics and verification outside the passes: {self.overhead_ms:.1f} ms")
        for r in self.passes:
            if r.message:
                lines.append(f"{r.name}: {r.message}")
            if r.status != "rolled_back" and r.stats and any(r.stats.values()):
                # Traffic counts are printed in full on their own lines below.
                shown = {k: v for k, v in r.stats.items() if r.traffic is None or not k.endswith(("_before", "_after"))}
                counts = ", ".join(f"{key} {value:g}" for key, value in shown.items() if value)
                ops = ", ".join(f"{op} {n:+d}" for op, n in r.op_delta.items())
                lines.append(f"{r.name}: {counts}" + (f" (ops {ops})" if ops else ""))
            if r.traffic is not None:
                lines.extend(_traffic_lines(r.name, r.traffic))
            sizes = (_bytes(r.param_bytes_before), _bytes(r.param_bytes_after))
            if r.status != "rolled_back" and r.param_bytes_before is not None and sizes[0] != sizes[1]:
                lines.append(f"{r.name}: parameters {sizes[0]} → {sizes[1]}")
            lines.extend(_detail_lines(r))
        lines.extend(f"third-party output (captured): {line}" for line in self.native_output)
        if self.backend:
            b = self.backend
            built_with = ", ".join(part for part in (b.runtime_version, *b.providers) if part) or "nothing built here"
            lines.append(f"backend: {b.name} ({built_with}) → {b.artifact}")
            m = b.machine
            lines.append(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}")
            if b.latency_before and b.latency_after:
                ratio = b.latency_before.median_ms / b.latency_after.median_ms
                verdict = b.latency_change.verdict if b.latency_change else (
                    f"ratio {ratio:.2f}, timed one after the other: no noise verdict")
                lines.append(
                    f"latency {b.latency_what} (median / p90 over {b.latency_after.repeats} runs): "
                    f"{b.latency_before.median_ms:.2f} / {b.latency_before.p90_ms:.2f} ms → "
                    f"{b.latency_after.median_ms:.2f} / {b.latency_after.p90_ms:.2f} ms ({verdict})"
                )
            elif b.latency_skipped:
                lines.append(f"latency: not measured: {b.latency_skipped}")
            lines.extend(f"backend: {note}" for note in b.notes)
            if b.layers:
                lines.extend(_layer_lines(b.layers))
            if b.memcpy_provider is not None:
                lines.append(
                    f"Memcpy nodes onnxruntime inserts for {b.memcpy_provider}: "
                    f"{b.memcpy_before} → {b.memcpy_after}"
                )
        return lines

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self._HEADER) + " |", "|" + "---|" * len(self._HEADER)]
        for row in [*self._rows(), self._total_row()]:
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        lines.append("")
        lines.extend(f"- {line}" for line in self._summary_lines())
        return "\n".join(lines) + "\n"

    def render(self, console: Console | None = None) -> None:
        """Prints the table and summary to ``console`` (stdout by default)."""
        console = console or Console(width=max(shutil.get_terminal_size().columns, 120))
        table = Table(title=f"graphopt report{': ' + self.source if self.source else ''}")
        for i, name in enumerate(self._HEADER):
            table.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
        for row in self._rows():
            table.add_row(*row)
        table.add_section()
        table.add_row(*self._total_row(), style="bold")
        console.print(table)
        for line in self._summary_lines():
            console.print(line, highlight=False, markup=False, soft_wrap=True)
