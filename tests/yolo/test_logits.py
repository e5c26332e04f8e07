"""Scores in logit space: the export's score Sigmoids bypassed, and the float16 graph of ``--fp16``."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import graphopt
from graphopt.passes.fp16 import convert_to_float16
from graphopt.passes.nms_logits import PRECISION_KEY
from graphopt_yolo.config import YoloConfig
from graphopt_yolo.fused import FusedDetector, build_fused_model, fused_detector
from graphopt_yolo.fusion import fuse
from graphopt_yolo.layout import find_layout, grid_cells
from graphopt_yolo.logits import logit_output
from graphopt_yolo.pictures import pictures

from .conftest import DDDDOCR, NUDENET, agree, tiny_yolo

CONFIGS = {"nudenet": NUDENET, "ddddocr": DDDDOCR}
#: Float16 moves a kept box by a fraction of a pixel and a score by a few thousandths on these frames
#: (bench_yolo_fp16.py: 0.2 px and 3e-3 at most); these bounds are the benchmark's "identical".
FP16_BOX_TOLERANCE = 0.5
FP16_SCORE_TOLERANCE = 5e-3


def _sigmoids_before_top_k(model: onnx.ModelProto) -> list[str]:
    """The Sigmoid nodes above the ``TopK``'s input, up to the network's last convolutions."""
    producer = {out: node for node in model.graph.node for out in node.output}
    (top_k,) = [node for node in model.graph.node if node.op_type == "TopK" and node.name.startswith("yolo/select/")]
    pending, seen, found = [top_k.input[0]], set(), []
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen or node.op_type == "Conv":
            continue
        seen.add(node.name)
        found += [node.name] if node.op_type == "Sigmoid" else []
        pending.extend(node.input)
    return found


@pytest.mark.parametrize("which", ["nudenet", "ddddocr"])
def test_the_fused_graph_ranks_logits_and_matches_the_host(which: str, request: pytest.FixtureRequest) -> None:
    model, config = request.getfixturevalue(which), CONFIGS[which]
    fused, logits = fused_detector(model, config)
    assert logits.found, logits.reason
    assert _sigmoids_before_top_k(fused) == []
    # The export's score Sigmoids are gone; the probability is taken of the kept rows only, after NMS.
    final = {node.op_type for node in fused.graph.node if node.name.startswith("yolo/outputs/")}
    assert ("Sigmoid" in final, "Exp" in final) == ((True, False) if which == "nudenet" else (False, True))
    head = [node for node in fused.graph.node if node.name.startswith(("yolo/decode/", "yolo/select/", "yolo/nms/"))]
    assert head and all(any(p.key == PRECISION_KEY and p.value == "float32" for p in node.metadata_props)
                        for node in head)
    counts = agree(model, config, pictures(config, "test", 4))  # the host ranks the export's probabilities
    assert counts[0] > 0, counts
    # Without the rewrite the ranking reads the export's Sigmoid output.
    probabilities, none = fused_detector(model, dataclasses.replace(config, logit_scores=False))
    assert not none.found and none.reason == "logit_scores = false in the config"
    assert _sigmoids_before_top_k(probabilities)


def test_the_pass_says_scores_on_logits(nudenet: onnx.ModelProto) -> None:
    result = fuse(NUDENET, nudenet)
    assert result.stats["scores_on_logits"] == 1 and result.stats["scores_are_logits"] == 0
    assert result.note is not None and "scores on logits (1 score Sigmoid bypassed)" in result.note
    off = fuse(dataclasses.replace(NUDENET, logit_scores=False), nudenet)
    assert off.stats["scores_on_logits"] == 0
    assert off.note is not None and "scores on probabilities (logit_scores = false in the config)" in off.note


def _with_sigmoid(model: onnx.ModelProto, sigmoid_channels: int) -> onnx.ModelProto:
    """``tiny_yolo`` (anchor-free) with a Sigmoid over the first ``sigmoid_channels`` score channels, as exports do."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    channels = work.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    work.graph.node[-1].output[0] = "raw"
    sizes = [4, sigmoid_channels, channels - 4 - sigmoid_channels]
    work.graph.initializer.append(numpy_helper.from_array(np.array([s for s in sizes if s], np.int64), "sizes"))
    parts = ["box", "cls", "rest"][: len([s for s in sizes if s])]
    work.graph.node.extend([
        helper.make_node("Split", ["raw", "sizes"], parts, axis=1),
        helper.make_node("Sigmoid", ["cls"], ["cls_p"]),
        helper.make_node("Concat", ["box", "cls_p", *parts[2:]], ["output"], axis=1),
    ])
    return work


def test_a_sigmoid_over_part_of_the_scores_is_not_bypassed() -> None:
    config = YoloConfig(frame_width=96, frame_height=72, max_detections=12, pre_nms_top_k=24)
    whole = _with_sigmoid(tiny_yolo(anchor_free=True), 3)
    found = logit_output(whole, find_layout(whole, config))
    assert found.found and found.reason == "1 score Sigmoid bypassed"
    part = _with_sigmoid(tiny_yolo(anchor_free=True), 2)
    layout = find_layout(part, config)
    assert layout.probabilities  # a Sigmoid reaches the output
    mixed = logit_output(part, layout)
    assert not mixed.found and mixed.reason.startswith("the sigmoid of the bypassed scores differs")
    rng = np.random.default_rng(2)
    frames = [(f"random {i}", rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)) for i in range(2)]
    assert all(count > 0 for count in agree(whole, config, frames))
    # A Sigmoid over the whole output, boxes included: bypassing it would change the boxes.
    everything = tiny_yolo(anchor_free=True)
    everything.graph.node[-1].output[0] = "raw"
    everything.graph.node.append(helper.make_node("Sigmoid", ["raw"], ["output"]))
    assert logit_output(everything, find_layout(everything, config)).reason == (
        "the Sigmoid bypass changes the box channels")


@pytest.mark.parametrize("which", ["nudenet", "ddddocr"])
def test_fp16_finds_what_fp32_finds(which: str, request: pytest.FixtureRequest) -> None:
    model, config = request.getfixturevalue(which), CONFIGS[which]
    fp32, _ = graphopt.optimize(model, config=config)
    fp16, report = graphopt.optimize(model, config=config, fp16=True)
    stats = next(p.stats for p in report.passes if p.name == "convert_to_fp16")
    # The network runs in float16; the guard may keep a few nodes in float32 (each named in the report).
    assert stats["float16_flop_share"] > 0.99 and stats["kept_by_guard"] < 0.02 * stats["float16_nodes"]
    (top_k,) = [node for node in fp16.graph.node if node.op_type == "TopK" and node.name.startswith("yolo/select/")]
    types = {v.name: v.type.tensor_type.elem_type for v in fp16.graph.value_info}
    assert types[top_k.input[0]] == onnx.TensorProto.FLOAT  # the head ranks in float32
    reference, half = FusedDetector(fp32, config), FusedDetector(fp16, config)
    found = 0
    for name, frame in pictures(config, "test", 4):
        ours, theirs = half.detect(frame), reference.detect(frame)
        assert len(ours) == len(theirs) and np.array_equal(ours.classes, theirs.classes), name
        found += len(ours)
        if len(ours):
            assert np.abs(ours.boxes - theirs.boxes).max() <= FP16_BOX_TOLERANCE, name
            assert np.abs(ours.scores - theirs.scores).max() <= FP16_SCORE_TOLERANCE, name
    assert found > 0


def _confident_export(logits: list[float], size: int = 64) -> onnx.ModelProto:
    """A YOLOv8-shaped export with its Sigmoid inside: one class, the first boxes overlapping, given logits.

    The logits move with the frame's mean by a thousandth, so that they are computed (a float16 conversion
    leaves values made of constants alone); the other predictions sit far below any threshold.
    """
    n = grid_cells(size, size)
    boxes = np.tile(np.array([[8.0], [8.0], [6.0], [6.0]], np.float32), (1, n))
    boxes[0, : len(logits)] = 30 + np.arange(len(logits))  # cx 30, 31, 32…: one cluster for the NMS
    boxes[1:, : len(logits)] = [[30.0], [20.0], [20.0]]
    bias = np.full((1, 1, n), -10.0, np.float32)
    bias[0, 0, : len(logits)] = logits
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "scalar_shape"], ["shift"]),
        helper.make_node("Mul", ["shift", "thousandth"], ["small"]),
        helper.make_node("Add", ["bias", "small"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
        helper.make_node("Concat", ["box_table", "probabilities"], ["output"], axis=1),
    ]
    inits = [numpy_helper.from_array(np.array([1, 1, 1], np.int64), "scalar_shape"),
             numpy_helper.from_array(np.array(1e-3, np.float32), "thousandth"),
             numpy_helper.from_array(bias, "bias"), numpy_helper.from_array(boxes[None], "box_table")]
    graph = helper.make_graph(nodes, "confident", [helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT,
                                                                                  [1, 3, size, size])],
                              [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 5, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_float16_probabilities_tie_where_logits_do_not() -> None:
    """σ(9), σ(9.5) and σ(10) all round to 1 in float16: ranked as probabilities the first box wins the NMS."""
    model = _confident_export([9.0, 9.5, 10.0])
    config = YoloConfig(frame_width=64, frame_height=64, score_threshold=0.5, class_agnostic=True,
                        max_detections=5, pre_nms_top_k=10)
    frame = np.full((64, 64, 3), 128, np.uint8)
    found = {}
    for logit_scores in (True, False):
        fused = build_fused_model(model, dataclasses.replace(config, logit_scores=logit_scores))
        for precision, graph in (("fp32", fused), ("fp16", convert_to_float16(fused).model)):
            found[precision, logit_scores] = FusedDetector(graph, config).detect(frame)
    reference = found["fp32", True]
    assert len(reference) == 1 and reference.boxes[0, 0] == pytest.approx(22.0)  # cx 32, the σ(10) box
    for key in [("fp32", False), ("fp16", True)]:
        np.testing.assert_allclose(found[key].boxes, reference.boxes, atol=0.05)
        np.testing.assert_allclose(found[key].scores, reference.scores, atol=1e-4)
    tied = found["fp16", False]
    assert len(tied) == 1 and tied.boxes[0, 0] == pytest.approx(20.0) and tied.scores[0] == 1.0  # cx 30: a tie
