"""Latency statistics: timing callables, and what the times were measured on.

Used wherever graphopt measures wall time: the backends' ``benchmark``, the
ablation study, the per-operator profile and the benchmark scripts.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "LatencyStats",
    "latency_stats",
    "machine_description",
    "measure_latency",
    "measure_latency_interleaved",
    "time_calls_interleaved",
]


def machine_description() -> dict[str, str | int]:
    """What a latency was measured on: CPU model, cores usable by this process, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
    return {"cpu": cpu, "cores": cores, "os": platform.platform(terse=True), "python": platform.python_version()}


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock latency of repeated runs, in milliseconds."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    warmup: int
    repeats: int
    #: The timed runs in order (rounds of an interleaved timing line up with the other call's), so that a
    #: comparison can judge a change against the noise; not part of the report's JSON.
    samples_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, float | int]:
        return {k: v for k, v in asdict(self).items() if k != "samples_ms"}


def measure_latency(run: Callable[[], object], *, warmup: int = 5, repeats: int = 30) -> LatencyStats:
    """Calls ``run`` ``warmup`` times untimed, then ``repeats`` times timed one by one."""
    return measure_latency_interleaved([run], warmup=warmup, repeats=repeats)[0]


def measure_latency_interleaved(
    runs: Sequence[Callable[[], object]], *, warmup: int = 5, repeats: int = 30
) -> list[LatencyStats]:
    """Times several callables round by round (one call of each per round), so that drift hits them alike.

    Each is called ``warmup`` times untimed first; then ``repeats`` rounds
    time one call of each, in the given order.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for run in runs:
        for _ in range(warmup):
            run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, samples in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            samples.append((time.perf_counter() - start) * 1e3)
    return [latency_stats(samples, warmup=warmup) for samples in times]


def time_calls_interleaved(
    calls: Mapping[str, Callable[[Any], object]],
    inputs: Sequence[Any],
    *,
    warmup: Sequence[Any] = (),
    settle_ms: float = 0.0,
    rotate: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
    """Milliseconds of each call on each input, the calls interleaved input by input.

    Every call first runs on each of ``warmup`` untimed. Then, input by
    input, each call runs after a pause of ``settle_ms`` (so that one does
    not inherit the previous one's busy threads or cache state) and the call
    alone is timed; with ``rotate`` the order of the calls shifts by one from
    input to input, so that none always follows the same one. ``progress``
    is told ``(done, total)`` after each input.
    """
    for call in calls.values():
        for item in warmup:
            call(item)
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index, item in enumerate(inputs):
        shift = index % len(names) if rotate and names else 0
        for name in names[shift:] + names[:shift]:
            time.sleep(settle_ms / 1000)
            start = time.perf_counter()
            calls[name](item)
            times[name].append(1000 * (time.perf_counter() - start))
        if progress is not None:
            progress(index + 1, len(inputs))
    return times


def latency_stats(times: Sequence[float], *, warmup: int) -> LatencyStats:
    """Median, p90, mean, min and max of timed runs (ms), and how they were taken."""
    return LatencyStats(
        median_ms=statistics.median(times),
        p90_ms=float(np.percentile(times, 90)),
        mean_ms=statistics.fmean(times),
        min_ms=min(times),
        max_ms=max(times),
        warmup=warmup,
        repeats=len(times),
        samples_ms=tuple(float(t) for t in times),
    )
