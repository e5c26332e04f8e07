"""``bench_peers.py --set``: graphopt against every peer on the model set of benchmarks/models.toml.

Per model, every tool gets the same pinned model (the manifest's shape);
then the original, graphopt's default output and each peer's output run in
onnxruntime with the same session options on the same real input, timed
call by call, interleaved (the order rotating), after untimed warm-up calls.
Per variant: nodes (subgraphs and functions counted), max |error| against
the original and whether it is within 1e-4 + 1e-4·|b|, median and p90 ms.
graphopt against the fastest peer is judged with the bootstrap interval of
the ratio of medians (:func:`graphopt.latency.judge`): "no measurable
change" when it holds 1. ``ort_extended`` (onnxruntime's extended level,
``com.microsoft`` fused operators that only its CPU provider runs) is a
peer for speed, not for node count.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import model_set
import numpy as np
import onnx
import onnxruntime

import graphopt
from graphopt.backends.base import time_calls_interleaved
from graphopt.graph import count_nodes
from graphopt.latency import judge
from graphopt.native_output import capture_native_output

__all__ = ["bench_set", "render_markdown"]

NODE_PEERS = tuple(model_set.PEERS)


def _ort_extended(model: onnx.ModelProto) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(tmp) / "x.onnx")
        onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return onnx.load(str(Path(tmp) / "x.onnx"))


def _session(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()  # the same defaults for every variant
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _variants(entry: model_set.ModelEntry) -> tuple[dict[str, onnx.ModelProto], dict[str, str], onnx.ModelProto]:
    original = onnx.load(str(model_set.fetch(entry)))
    pinned = model_set.pinned(original, entry.shape)
    initializers = {t.name for t in original.graph.initializer}
    name = next(v.name for v in original.graph.input if v.name not in initializers)
    with capture_native_output():  # onnxsim's C++ warnings
        variants = {"original": original, "graphopt": graphopt.optimize(original, input_shapes={name: entry.shape})[0]}
        failed: dict[str, str] = {}
        tools: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {**model_set.PEERS,
                                                                         "ort_extended": _ort_extended}
        for peer, tool in tools.items():
            try:
                variants[peer] = tool(pinned)
            except Exception as error:  # each tool raises its own types; the row says why
                failed[peer] = str(error).splitlines()[0] if str(error) else type(error).__name__
    return variants, failed, original


def _caller(session: onnxruntime.InferenceSession, feeds: dict[str, np.ndarray]) -> Callable[[object], object]:
    return lambda _: session.run(None, feeds)


def bench_model(entry: model_set.ModelEntry, *, calls: int, warmup: int) -> dict[str, Any]:
    variants, failed, original = _variants(entry)
    feeds = model_set.real_inputs(entry, original)
    reference = model_set.run(original, feeds)
    sessions = {name: _session(model) for name, model in variants.items()}
    rows: dict[str, dict[str, Any]] = {}
    for name, model in variants.items():
        ok, worst = model_set.within_tolerance(reference, sessions[name].run(None, feeds))
        rows[name] = {"nodes": count_nodes(model), "max_abs_error": worst, "within_tolerance": ok,
                      "standard_ops": not model_set.standard_ops_only(model)}
    times = time_calls_interleaved({n: _caller(s, feeds) for n, s in sessions.items()},
                                   range(calls), warmup=range(warmup), rotate=True)
    for name, samples in times.items():
        rows[name].update(median_ms=float(np.median(samples)), p90_ms=float(np.percentile(samples, 90)))
    node_peers = [p for p in NODE_PEERS if p in rows]
    speed_peers = [p for p in (*NODE_PEERS, "ort_extended") if p in rows]
    fastest = min(speed_peers, key=lambda p: rows[p]["median_ms"])
    verdict = judge(times[fastest], times["graphopt"])
    return {
        "model": entry.name, "about": entry.about, "wheel": f"{entry.wheel}=={entry.version}", "path": entry.path,
        "shape": list(entry.shape), "input": entry.input, "calls": calls, "warmup": warmup,
        "variants": rows, "failed": failed,
        "fewest_peer_nodes": min(rows[p]["nodes"] for p in node_peers),
        "fastest_peer": fastest, "graphopt_vs_fastest_peer": verdict.to_dict(),
    }


def bench_set(*, calls: int, warmup: int, only: list[str] | None = None) -> list[dict[str, Any]]:
    entries = [e for e in model_set.load_manifest() if not only or e.name in only]
    results = []
    for entry in entries:
        print(f"bench_peers: {entry.name} …", flush=True)
        results.append(bench_model(entry, calls=calls, warmup=warmup))
    return results


def render_markdown(result: dict[str, Any]) -> str:
    """The page docs/results/<machine>/peers.md: written by the script, never by hand."""
    m = result["machine"]
    lines = [
        "# graphopt against the peer tools on the model set",
        "",
        "Generated by `benchmarks/bench_peers.py --set`; do not edit by hand.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}, Python {m['python']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".",
        "",
        "Nodes count subgraphs and functions. Error: max |a−b| against the original on a real input "
        "(✓ within 1e-4 + 1e-4·|b|). Latency: median (p90) ms per call in onnxruntime, default session "
        "options, all variants interleaved call by call. `ort_extended` writes `com.microsoft` operators: a peer "
        "for speed only.",
        "",
    ]
    for section in result["set"]:
        lines += [f"## {section['model']}", "", f"{section['about']} — `{section['wheel']}`, `{section['path']}`, "
                  f"shape {'×'.join(map(str, section['shape']))}, input `{section['input']}`, "
                  f"{section['calls']} timed calls after {section['warmup']}.", "",
                  "| variant | nodes | max abs err | median ms | p90 ms |", "|---|---:|---:|---:|---:|"]
        for name, v in section["variants"].items():
            mark = "✓" if v["within_tolerance"] else "✗"
            lines.append(f"| {name} | {v['nodes']} | {v['max_abs_error']:.2g} {mark} | {v['median_ms']:.2f} "
                         f"| {v['p90_ms']:.2f} |")
        for name, reason in section["failed"].items():
            lines.append(f"| {name} | failed: {reason} | | | |")
        verdict = section["graphopt_vs_fastest_peer"]["verdict"]
        lines += ["", f"graphopt {section['variants']['graphopt']['nodes']} nodes, fewest peer "
                  f"{section['fewest_peer_nodes']}; against the fastest peer ({section['fastest_peer']}): {verdict}.",
                  ""]
    return "\n".join(lines)
