"""A latency comparison to trust: both models timed interleaved, and the change judged against the noise.

Timing the input model and then the optimized one lets drift (clock boost,
caches, other processes) land on one of them; on a shared 2-core machine
that alone made a 1.07× difference read "1.76× faster". Here the two are
timed round by round, alternating which goes first
(:func:`~graphopt.backends.base.time_calls_interleaved`), and the ratio of
their medians comes with a bootstrap 95% interval over the rounds. When that
interval holds 1, the report says "no measurable change" instead of a ratio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .timing import LatencyStats, latency_stats, time_calls_interleaved

__all__ = ["LatencyChange", "compare_interleaved", "judge"]

logger = logging.getLogger(__name__)

#: Bootstrap resamples of the timed rounds for the interval of the median ratio.
RESAMPLES = 400


@dataclass(frozen=True)
class LatencyChange:
    """``before`` median over ``after`` median, its 95% interval, and the sentence the report prints."""

    ratio: float
    low: float
    high: float
    measurable: bool
    verdict: str

    def to_dict(self) -> dict[str, float | bool | str]:
        return asdict(self)


def judge(before_ms: Sequence[float], after_ms: Sequence[float], *, seed: int = 0) -> LatencyChange:
    """The speed-up of ``after`` over ``before`` (paired rounds), with a bootstrap interval of the median ratio."""
    before, after = np.asarray(before_ms, np.float64), np.asarray(after_ms, np.float64)
    ratio = float(np.median(before) / np.median(after))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(before), size=(RESAMPLES, len(before)))
    ratios = np.median(before[picks], axis=1) / np.median(after[picks], axis=1)
    low, high = (float(v) for v in np.percentile(ratios, [2.5, 97.5]))
    measurable = not (low <= 1.0 <= high)
    if not measurable:
        verdict = f"no measurable change (ratio {ratio:.2f}, 95% interval {low:.2f}–{high:.2f})"
    elif ratio > 1:
        verdict = f"{ratio:.2f}× faster (95% interval {low:.2f}–{high:.2f})"
    else:
        verdict = f"{1 / ratio:.2f}× slower (95% interval {1 / high:.2f}–{1 / low:.2f})"
    return LatencyChange(ratio, low, high, measurable, verdict)


def compare_interleaved(
    before: Callable[[], object], after: Callable[[], object], *, warmup: int = 5, repeats: int = 30
) -> tuple[LatencyStats, LatencyStats, LatencyChange]:
    """Times ``before`` and ``after`` round by round (the order alternating) and judges the change."""
    calls = {"before": lambda _: before(), "after": lambda _: after()}
    times = time_calls_interleaved(calls, range(repeats), warmup=range(warmup), rotate=True)
    return (
        latency_stats(times["before"], warmup=warmup),
        latency_stats(times["after"], warmup=warmup),
        judge(times["before"], times["after"]),
    )
