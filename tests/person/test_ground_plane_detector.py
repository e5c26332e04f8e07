"""The shipped detector sliced to the ground plane: the acceptance checks on the synthetic test set."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import pytest

import graphopt
from graphopt.detections import Detections
from graphopt.evaluation import evaluate, match_frame
from graphopt_person.data import render_scene, scene_seeds
from graphopt_person.fused import FusedDetector
from graphopt_person.slicing import GroundPlaneSlicePass
from graphopt_person.spec import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector"
CONFIG = load_config(EXAMPLE / "detector.toml")
# The miss rate at 0.1 FPPI is read off the whole curve, so the graphs are built at a low threshold.
LOW = dataclasses.replace(CONFIG, detector=dataclasses.replace(CONFIG.detector, score_threshold=0.5))


@pytest.fixture(scope="module")
def network() -> onnx.ModelProto:
    return onnx.load(str(EXAMPLE / "model.onnx"))


def test_sliced_detector_keeps_the_miss_rate_on_the_whole_test_set(network: onnx.ModelProto) -> None:
    """All 200 test frames (about 40 s): the miss rate at 0.1 FPPI within 0.5 points of the unsliced
    graph's, and every person the unsliced graph finds at the deployed threshold still found."""
    full_low, _ = graphopt.optimize(network, detector=LOW)
    full, _ = graphopt.optimize(network, detector=CONFIG)
    detectors = {
        "full_low": FusedDetector(full_low, LOW.detector),
        "sliced_low": FusedDetector(GroundPlaneSlicePass(config=LOW)(full_low).model, LOW.detector),
        "full": FusedDetector(full, CONFIG.detector),
        "sliced": FusedDetector(GroundPlaneSlicePass(config=CONFIG)(full).model, CONFIG.detector),
    }
    found: dict[str, list[Detections]] = {name: [] for name in detectors}
    truth = []
    people_found = lost = 0
    for seed in scene_seeds("test", 200):
        scene = render_scene(CONFIG, seed)
        truth.append(scene.boxes)
        for name, detector in detectors.items():
            found[name].append(detector.detect(scene.image))
        hit = match_frame(found["full"][-1], scene.boxes).gt_matched
        people_found += int(hit.sum())
        lost += int((hit & ~match_frame(found["sliced"][-1], scene.boxes).gt_matched).sum())
    full_curve, sliced_curve = evaluate(found["full_low"], truth), evaluate(found["sliced_low"], truth)
    assert abs(sliced_curve.miss_rate_at(0.1) - full_curve.miss_rate_at(0.1)) <= 0.005
    assert sliced_curve.log_average_miss_rate() <= full_curve.log_average_miss_rate() + 0.005
    assert people_found > 200 and lost == 0
