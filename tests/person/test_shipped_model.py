"""The trained detector shipped in examples/02_person_detector: what it is and that it detects people."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graphopt.evaluation import match_frame
from graphopt.graph import declared_dims
from graphopt.model_io import load_model
from graphopt_person.data import generate_scenes
from graphopt_person.naive import NaiveDetector
from graphopt_person.network import build_naive_model, load_weights
from graphopt_person.spec import load_config

FOLDER = Path(__file__).parents[2] / "examples" / "02_person_detector"


def test_shipped_files_are_small_and_complete() -> None:
    for name in ("model.onnx", "weights.npz", "detector.toml", "training_log.json", "train.py"):
        assert (FOLDER / name).is_file(), name
    assert (FOLDER / "model.onnx").stat().st_size < 5_000_000
    log = json.loads((FOLDER / "training_log.json").read_text())
    assert log["seconds"] < 30 * 60 and log["threads"] == 2


def test_shipped_model_is_the_naive_export_of_the_shipped_weights() -> None:
    model = load_model(FOLDER / "model.onnx")
    assert model.SerializeToString() == build_naive_model(load_weights(FOLDER / "weights.npz")).SerializeToString()


def test_shipped_model_carries_exporter_debris_and_dynamic_shapes() -> None:
    model = load_model(FOLDER / "model.onnx")
    ops = {node.op_type for node in model.graph.node}
    assert {"Dropout", "Identity", "BatchNormalization", "Transpose", "Shape", "Gather", "Reshape", "Softmax"} <= ops
    dims = declared_dims(model.graph.input[0])
    assert dims is not None and not isinstance(dims[2], int) and not isinstance(dims[3], int)


def test_shipped_detector_at_its_operating_point_on_the_first_test_scenes() -> None:
    # The full 200-frame evaluation (benchmarks/operating_point.py) gives a miss
    # rate of 0.045 at 0.1 FPPI (pinned by tests/person/test_workload.py). The
    # bounds leave room for onnxruntime versions, not for a broken detector
    # (random weights find none).
    config = load_config(FOLDER / "detector.toml")
    detector = NaiveDetector(FOLDER / "model.onnx", config.detector)
    found = people = false_positives = 0
    for scene in generate_scenes(config, "test", 40):
        match = match_frame(detector.detect(scene.image), scene.boxes)
        found += int(np.sum(match.gt_matched))
        people += len(scene.boxes)
        false_positives += match.false_positives
    assert found / people >= 0.6
    assert false_positives / 40 <= 0.3
