"""The latency verdict (graphopt/latency.py): a ratio only when it stands out of the noise."""

from __future__ import annotations

import time

import numpy as np
import onnx

from graphopt.backends.base import DeployRequest
from graphopt.backends.onnxruntime import OnnxRuntimeBackend
from graphopt.latency import compare_interleaved, judge
from graphopt.report import BackendResult
from graphopt.timing import LatencyStats


def test_same_distribution_is_no_measurable_change():
    rng = np.random.default_rng(0)
    before = rng.normal(10.0, 2.0, 30)
    after = rng.permutation(before) * 1.06  # a 0.94× median ratio, well within the spread of 30 such runs
    change = judge(before, after)
    assert not change.measurable
    assert change.verdict.startswith("no measurable change")
    assert "faster" not in change.verdict and "slower" not in change.verdict


def test_a_clear_speed_up_is_a_ratio_with_its_interval():
    rng = np.random.default_rng(1)
    before = rng.normal(20.0, 0.5, 30)
    after = rng.normal(10.0, 0.5, 30)
    change = judge(before, after)
    assert change.measurable and 1.8 < change.ratio < 2.2
    assert change.low <= change.ratio <= change.high
    assert change.verdict.startswith(f"{change.ratio:.2f}× faster")


def test_a_clear_slow_down_says_slower():
    change = judge([10.0, 10.1, 9.9] * 10, [20.0, 20.2, 19.8] * 10)
    assert change.measurable and change.verdict.startswith("2.00× slower")


def test_compare_interleaved_alternates_and_counts():
    order: list[str] = []
    before, after, change = compare_interleaved(lambda: order.append("b"), lambda: order.append("a"),
                                                warmup=1, repeats=4)
    assert before.repeats == after.repeats == 4
    assert order[2:] == ["b", "a", "a", "b", "b", "a", "a", "b"]  # the order rotates round by round
    assert change.verdict


def test_the_per_frame_latency_of_a_fused_detector_is_judged_against_the_noise() -> None:
    def per_frame(_providers: object) -> tuple[LatencyStats, LatencyStats]:
        before, after, _ = compare_interleaved(lambda: time.sleep(0.004), lambda: time.sleep(0.001), repeats=8)
        return before, after

    model = onnx.ModelProto()
    request = DeployRequest(source=model, optimized=model, name="model", feeds=lambda: None, source_feeds=None,
                            per_frame=per_frame)
    result = BackendResult(name="onnxruntime", artifact="model.onnx")
    OnnxRuntimeBackend().time_against_source(request, None, result)  # type: ignore[arg-type]
    assert result.latency_change is not None and result.latency_change.measurable
    assert result.latency_change.verdict.startswith(f"{result.latency_change.ratio:.2f}× faster")
    assert result.latency_what.endswith("timed interleaved")
