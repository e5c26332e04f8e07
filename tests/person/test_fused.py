"""Tests of the fused detector graph: structure, numerics against the host pipeline, and its errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest

import graphopt
from graphopt.errors import ConfigError
from graphopt.graph import infer_tensor_info
from graphopt.passes import RemoveRedundantNodesPass
from graphopt_person.data import generate_scenes, render_scene, scene_seeds
from graphopt_person.fused import (
    FRAME_INPUT,
    VOLUME_OUTPUT,
    FusedDetector,
    build_fused_model,
    fused_traffic,
    naive_host_stages,
    naive_traffic,
    network_interface,
)
from graphopt_person.naive import NaiveDetector
from graphopt_person.network import build_naive_model, random_weights
from graphopt_person.spec import DetectorSpec, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector"
CONFIG = load_config(EXAMPLE / "detector.toml")
SPEC = CONFIG.detector
DATA_DEPENDENT = {"NonZero", "NonMaxSuppression", "Loop", "If", "Scan", "Unique"}


@pytest.fixture(scope="module")
def network() -> onnx.ModelProto:
    return onnx.load(str(EXAMPLE / "model.onnx"))


@pytest.fixture(scope="module")
def fused_with_volume(network: onnx.ModelProto) -> onnx.ModelProto:
    return build_fused_model(network, SPEC, volume_output=True)


@pytest.fixture(scope="module")
def scenes() -> list:
    return list(generate_scenes(CONFIG, "test", 6))


def test_graph_takes_the_raw_frame_and_returns_fixed_size_detections(fused_with_volume: onnx.ModelProto) -> None:
    model = fused_with_volume
    onnx.checker.check_model(model, full_check=True)
    (frame,) = model.graph.input
    assert frame.name == FRAME_INPUT
    assert frame.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in frame.type.tensor_type.shape.dim] == [480, 640, 3]
    k = SPEC.max_detections
    outputs = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output}
    assert outputs == {"scores": [k], "boxes": [k, 4], "cells": [k, 3], "num_detections": [],
                       VOLUME_OUTPUT: list(SPEC.grid_shape)}
    ops = {node.op_type for node in model.graph.node}
    assert not ops & DATA_DEPENDENT
    assert {"Resize", "MatMul", "MaxPool", "TopK"} <= ops


def test_every_scale_reads_one_copy_of_the_weights(network: onnx.ModelProto) -> None:
    network = RemoveRedundantNodesPass()(network).model  # the export reads conv3.weight through an Identity
    fused = build_fused_model(network, SPEC, fold_normalization=False)  # conv1 keeps its own weights
    convs = [node for node in fused.graph.node if node.op_type == "Conv"]
    network_convs = [node for node in network.graph.node if node.op_type == "Conv"]
    assert len(convs) == len(SPEC.scales) * len(network_convs)
    weights = {node.input[1] for node in convs}
    assert len(weights) == len(network_convs)  # three copies of the nodes, one of the weights
    names = [init.name for init in fused.graph.initializer]
    assert len(names) == len(set(names))
    network_bytes = sum(init.ByteSize() for init in network.graph.initializer)
    fused_network_bytes = sum(init.ByteSize() for init in fused.graph.initializer if not init.name.startswith("fused/"))
    assert fused_network_bytes == network_bytes


def test_every_shape_is_static_after_the_default_pipeline(network: onnx.ModelProto) -> None:
    optimized, _ = graphopt.optimize(network, detector=CONFIG)
    infos = infer_tensor_info(optimized)
    values = [name for node in optimized.graph.node for name in node.output if name]
    assert values and all(infos[name].static_shape is not None for name in values)
    assert not any(node.op_type == "Shape" for node in optimized.graph.node)


def test_score_volume_and_detections_match_the_host_pipeline(
    network: onnx.ModelProto, fused_with_volume: onnx.ModelProto, scenes: list
) -> None:
    naive = NaiveDetector(network, SPEC)
    fused = FusedDetector(fused_with_volume, SPEC)
    found = 0
    for scene in scenes:
        volume = naive.score_volume(scene.image)
        np.testing.assert_allclose(fused.run(scene.image)[VOLUME_OUTPUT], volume, rtol=0, atol=1e-4)
        ours, theirs = fused.detect(scene.image), naive.detect(scene.image)
        np.testing.assert_array_equal(ours.cells, theirs.cells)
        np.testing.assert_array_equal(ours.boxes, theirs.boxes)
        np.testing.assert_allclose(ours.scores, theirs.scores, rtol=0, atol=1e-4)
        found += len(ours)
    assert found > 0  # the scenes have people: the NMS and top-K were exercised


@pytest.mark.parametrize("method", ["fast", "cluster"])
def test_both_iou_methods_match_the_host_pipeline(network: onnx.ModelProto, scenes: list, method: str) -> None:
    spec = dataclasses.replace(SPEC, nms_iou_method=method)
    fused = build_fused_model(network, spec)
    steps = sum(node.op_type == "Gemm" for node in fused.graph.node)
    assert steps == (spec.max_detections - 1 if method == "cluster" else 1)
    naive, detector = NaiveDetector(network, spec), FusedDetector(fused, spec)
    for scene in scenes:
        ours, theirs = detector.detect(scene.image), naive.detect(scene.image)
        np.testing.assert_array_equal(ours.cells, theirs.cells)
        np.testing.assert_array_equal(ours.boxes, theirs.boxes)


def test_empty_rows_are_zero_and_counted_out(fused_with_volume: onnx.ModelProto) -> None:
    frame = np.full((480, 640, 3), 128, np.uint8)  # a grey wall: no person anywhere
    outputs = FusedDetector(fused_with_volume, SPEC).run(frame)
    n = int(outputs["num_detections"])
    assert n < SPEC.max_detections
    assert np.all(outputs["scores"][n:] == 0) and np.all(outputs["boxes"][n:] == 0)
    assert np.all(outputs["cells"][n:] == -1)


def test_threshold_and_k_are_taken_from_the_arguments(network: onnx.ModelProto, scenes: list) -> None:
    model = build_fused_model(network, SPEC, threshold=0.5, max_detections=200)
    naive = NaiveDetector(network, SPEC, threshold=0.5, max_detections=200)
    fused = FusedDetector(model, SPEC)
    ours, theirs = fused.detect(scenes[4].image), naive.detect(scenes[4].image)
    assert len(ours) == len(theirs) > 5
    np.testing.assert_array_equal(ours.cells, theirs.cells)


def test_logits_network_with_classes_first(scenes: list) -> None:
    weights = random_weights(3)
    logits = build_naive_model(weights, output="logits")
    interface = network_interface(logits, SPEC)
    assert interface.class_axis == 1 and interface.classes == 2
    model = build_fused_model(logits, SPEC, threshold=0.0, volume_output=True)
    volume = FusedDetector(model, SPEC).run(scenes[0].image)[VOLUME_OUTPUT]
    # The same network's probabilities model, through the host pipeline, gives softmax(logits);
    # the fused logits volume is the person logit, so compare where both are defined.
    naive = NaiveDetector(build_naive_model(weights), SPEC)
    maps = naive.score_maps(scenes[0].image)
    assert volume.shape == SPEC.grid_shape and np.isfinite(volume).all()
    assert len(maps) == len(SPEC.scales)


def test_traffic_figures_match_what_the_detectors_measure(network: onnx.ModelProto, scenes: list) -> None:
    naive = NaiveDetector(network, SPEC)
    naive.detect(scenes[0].image)
    interface = network_interface(network, SPEC)
    assert naive_traffic(interface, SPEC) == naive.last_traffic
    model = build_fused_model(network, SPEC)
    fused = FusedDetector(model, SPEC)
    fused.detect(scenes[0].image)
    assert fused_traffic(model) == fused.last_traffic
    assert fused.last_traffic.calls == 1 and naive.last_traffic.calls == len(SPEC.scales)
    assert fused.last_traffic.bytes_in == 480 * 640 * 3
    assert fused.last_traffic.bytes_out < 2000 < naive.last_traffic.bytes_out


def test_host_stages_count_the_resize_and_resampling_products() -> None:
    stages = {stage.name: stage.ops for stage in naive_host_stages(SPEC)}
    assert list(stages) == ["preprocess", "resize", "resample", "nms", "top_k"]
    assert stages["preprocess"] == 4 * 3 * 480 * 640
    # 0.63 -> 302x403 and 0.4 -> 192x256: rows then columns, 3 channels, 2 FLOPs per multiply-add.
    assert stages["resize"] == sum(
        2 * 3 * (h * 480 * 640 + h * 640 * w) for h, w in ((302, 403), (192, 256))
    )
    assert all(ops > 0 for ops in stages.values())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda m: m.graph.input[0].type.tensor_type.shape.dim[2].__setattr__("dim_value", 480), ["fixed at 480"]),
        (lambda m: m.graph.input[0].type.tensor_type.__setattr__("elem_type", onnx.TensorProto.DOUBLE), ["float32"]),
        (lambda m: m.graph.output.append(onnx.helper.make_tensor_value_info("extra", 1, None)), ["one score output"]),
    ],
    ids=["fixed-size-input", "double-input", "two-outputs"],
)
def test_networks_that_do_not_fit_are_one_sentence(network: onnx.ModelProto, change, words) -> None:  # type: ignore[no-untyped-def]
    model = onnx.ModelProto()
    model.CopyFrom(network)
    change(model)
    with pytest.raises(ConfigError) as caught:
        build_fused_model(model, SPEC)
    assert "\n" not in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_a_spec_with_another_window_does_not_fit(network: onnx.ModelProto) -> None:
    spec = DetectorSpec(window_size=(64, 128))
    with pytest.raises(ConfigError, match="window 64x128"):
        build_fused_model(network, spec)


def test_fused_detector_rejects_a_network_model(network: onnx.ModelProto) -> None:
    with pytest.raises(ConfigError, match="takes one uint8"):
        FusedDetector(network, SPEC)


def test_detections_identical_on_the_whole_test_set(network: onnx.ModelProto) -> None:
    """The acceptance check: the default pipeline's fused graph against the naive pipeline, every test frame.

    200 frames (seeds 1000000-1000199), rendered one at a time; about half a minute.
    """
    optimized, _ = graphopt.optimize(network, detector=CONFIG)
    naive = NaiveDetector(network, SPEC)
    fused = FusedDetector(optimized, SPEC)
    detections = worst = 0.0
    for seed in scene_seeds("test", 200):
        frame = render_scene(CONFIG, seed).image
        ours, theirs = fused.detect(frame), naive.detect(frame)
        assert np.array_equal(ours.cells, theirs.cells), f"scene {seed}: {ours.cells} != {theirs.cells}"
        assert np.array_equal(ours.boxes, theirs.boxes), f"scene {seed}"
        if len(ours):
            worst = max(worst, float(np.max(np.abs(ours.scores - theirs.scores))))
        detections += len(ours)
    assert worst <= 1e-4
    assert detections > 200  # about two people per frame: the comparison is not between empty lists


def test_normalization_is_folded_into_the_first_conv_when_exact(network: onnx.ModelProto, scenes: list) -> None:
    clean = RemoveRedundantNodesPass()(network).model  # the image now feeds conv1 directly
    folded = build_fused_model(clean, SPEC, volume_output=True)
    kept = build_fused_model(clean, SPEC, volume_output=True, fold_normalization=False)
    preprocess = [n.op_type for n in folded.graph.node if n.name.startswith("fused/preprocess/")]
    assert preprocess == ["Cast", "Transpose", "Unsqueeze"]  # uint8 into the Cast only, as TensorRT requires
    assert {"Div", "Sub"} <= {n.op_type for n in kept.graph.node if n.name.startswith("fused/preprocess/")}
    assert "conv1.weight" not in {init.name for init in folded.graph.initializer}
    naive = NaiveDetector(network, SPEC)
    ours = FusedDetector(folded, SPEC)
    for scene in scenes[:3]:
        np.testing.assert_allclose(ours.run(scene.image)[VOLUME_OUTPUT], naive.score_volume(scene.image), atol=1e-4)
    # The raw export reads the image through an Identity: not a Conv, so normalization stays in the graph.
    raw = [n.op_type for n in build_fused_model(network, SPEC).graph.node if n.name.startswith("fused/preprocess/")]
    assert "Div" in raw


@pytest.mark.skipif(
    __import__("graphopt.backends.onnxruntime", fromlist=["gpu_provider"]).gpu_provider() is None,
    reason="this onnxruntime build has no GPU execution provider (CUDA/ROCm/DirectML), so it inserts no Memcpy nodes",
)
def test_fused_graph_needs_no_memcpy_on_a_gpu_provider(network: onnx.ModelProto) -> None:
    from graphopt.backends.onnxruntime import count_memcpy_nodes, gpu_provider

    provider = gpu_provider()
    assert provider is not None
    optimized, _ = graphopt.optimize(network, detector=CONFIG)
    # Only the frame in and the detections out cross; everything between stays on the device.
    assert count_memcpy_nodes(optimized, provider) <= count_memcpy_nodes(network, provider)
    assert count_memcpy_nodes(optimized, provider) <= 2
