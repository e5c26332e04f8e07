"""The person detector as a graphopt workload: what the core asks of it, answered from its modules.

The ``graphopt.workloads`` entry point ``person`` names :data:`WORKLOAD`; its
configuration object is :class:`~graphopt_person.spec.DetectorConfig`, whose
workload methods delegate to the functions here, so that the configuration
module itself stays free of the heavier modules (scenes, fused graph, host
pipeline).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from graphopt.backends.base import LatencyStats
from graphopt.detections import Detections
from graphopt.errors import ConfigError
from graphopt.passes.base import PassResult
from graphopt.workloads import EvaluationReport, FrameDetector, LabelledFrame

from .spec import DetectorConfig, parse_config

__all__ = ["WORKLOAD", "PersonWorkloadType"]


class PersonWorkloadType:
    """The sliding-window person detector on an image pyramid (``[detector]`` and ``[camera]`` tables)."""

    name = "person"

    def claims(self, data: Mapping[str, Any]) -> bool:
        return "detector" in data or "camera" in data

    def parse(self, data: Mapping[str, Any], *, source: str) -> DetectorConfig:
        return parse_config(data, source=source)

    def default(self) -> DetectorConfig:
        return DetectorConfig()


WORKLOAD = PersonWorkloadType()


def with_score_threshold(config: DetectorConfig, threshold: float) -> DetectorConfig:
    return dataclasses.replace(config, detector=dataclasses.replace(config.detector, score_threshold=threshold))


def network_input_shapes(config: DetectorConfig, model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    from .fused import network_input_shapes as shapes

    return shapes(model, config.detector)


def takes_frames(model: onnx.ModelProto) -> bool:
    from graphopt.graph import takes_a_frame

    return takes_a_frame(model)


def frames(config: DetectorConfig, split: str, count: int) -> list[dict[str, np.ndarray]]:
    from .data import render_scene, scene_seeds
    from .fused import FRAME_INPUT

    return [{FRAME_INPUT: render_scene(config, seed).image} for seed in scene_seeds(split, count)]


def labelled_frames(config: DetectorConfig, split: str, count: int) -> list[LabelledFrame]:
    from .data import generate_scenes

    return [LabelledFrame(scene.image, scene.boxes, scene.seed) for scene in generate_scenes(config, split, count)]


def fuse_host_stages(config: DetectorConfig, network: onnx.ModelProto) -> PassResult:
    from .fusion import fuse

    return fuse(config, network)


def check_host_fusion(config: DetectorConfig, network: onnx.ModelProto, frames: int) -> dict[str, float]:
    from .fusion import check

    return check(config, network, frames)


def detector(config: DetectorConfig, model: onnx.ModelProto) -> tuple[str, Callable[[np.ndarray], Detections]]:
    if takes_frames(model):
        from .fused import FusedDetector

        return "fused graph", FusedDetector(model, config.detector).detect
    from .naive import NaiveDetector

    return "host pipeline", NaiveDetector(model, config.detector).detect


def host_flops(config: DetectorConfig, model: onnx.ModelProto) -> int:
    """The network's FLOPs at every pyramid scale plus the host stages' work, per frame."""
    from graphopt.analysis import graph_stats
    from graphopt.verify import graph_inputs

    from .fused import naive_host_stages

    spec = config.detector
    name = graph_inputs(model)[0].name
    network = sum(graph_stats(model, {name: (1, 3, *spec.scaled_frame_shape(s))}).flops.total for s in spec.scales)
    return network + sum(stage.ops for stage in naive_host_stages(spec))


def benchmark_per_frame(config: DetectorConfig, network: onnx.ModelProto, fused: onnx.ModelProto, *, warmup: int,
                        repeats: int, providers: Sequence[str] | None) -> tuple[LatencyStats, LatencyStats]:
    from .fused import benchmark_per_frame as per_frame

    return per_frame(network, fused, config, warmup=warmup, repeats=repeats, providers=providers)


def labelled_frame(config: DetectorConfig, seed: int) -> LabelledFrame:
    from .data import render_scene

    scene = render_scene(config, seed)
    return LabelledFrame(scene.image, scene.boxes, scene.seed)


def frame_detector(config: DetectorConfig, model: onnx.ModelProto, *, threshold: float | None,
                   source: str) -> FrameDetector:
    """The naive pipeline for a network model, the fused graph for a fused detector (frame in, detections out)."""
    if not takes_frames(model):
        from .naive import NaiveDetector

        return NaiveDetector(model, config.detector, threshold=threshold)
    if threshold is not None:
        raise ConfigError(
            f"{source} is a fused detector, whose score threshold is part of the graph; "
            "set score_threshold in the config before 'graphopt optimize' instead of --threshold"
        )
    from .fused import FusedDetector

    return FusedDetector(model, config.detector)


def describe(config: DetectorConfig, detections: Detections) -> list[dict[str, Any]]:
    return [{"scale": float(config.detector.scales[int(cell[0])])} for cell in detections.cells]


def evaluate_model(config: DetectorConfig, model: onnx.ModelProto, *, frames: int, min_score: float,
                   weights: os.PathLike[str] | None, source: str) -> EvaluationReport:
    """The naive pipeline on the synthetic test scenes, and the logit margins at true positives with ``weights``."""
    from .naive import NaiveDetector
    from .network import load_weights
    from .workload import MarginProbe, evaluate_on_test_set, format_evaluation

    if takes_frames(model):
        raise ConfigError(
            f"{source} is a fused detector with its threshold and detection count built in; "
            "evaluate the network model it was made from (the miss-rate curve needs every score)"
        )
    detector = NaiveDetector(model, config.detector, threshold=min_score, max_detections=256)
    probe = MarginProbe(load_weights(weights), config.detector) if weights is not None else None
    result = evaluate_on_test_set(detector, config, frames=frames, probe=probe)
    return EvaluationReport(lines=list(format_evaluation(result, name=source)), data=result.to_dict())
