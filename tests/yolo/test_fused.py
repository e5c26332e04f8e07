"""The fused YOLO graph against the host reference pipeline: real exports on real pictures, tiny exports in code."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

from graphopt.passes.host_stages import FuseHostStagesPass
from graphopt_yolo.config import YoloConfig
from graphopt_yolo.decode import score_form
from graphopt_yolo.fused import FusedDetector, build_fused_model
from graphopt_yolo.host import HostDetector
from graphopt_yolo.layout import find_layout
from graphopt_yolo.pictures import pictures

from .conftest import DDDDOCR, NUDENET, agree, tiny_yolo

#: Ops whose output shape depends on data: none may be in the static form.
DYNAMIC_OPS = {"NonZero", "NonMaxSuppression", "Loop", "If", "Scan"}


@pytest.mark.parametrize("which", ["nudenet", "ddddocr"])
def test_fused_graph_matches_the_host_pipeline_on_real_pictures(which: str, request: pytest.FixtureRequest) -> None:
    model, config = request.getfixturevalue(which), {"nudenet": NUDENET, "ddddocr": DDDDOCR}[which]
    fused = build_fused_model(model, config)
    assert not DYNAMIC_OPS & {node.op_type for node in fused.graph.node}
    assert [o.name for o in fused.graph.output] == ["scores", "boxes", "classes", "num_detections"]
    counts = agree(model, config, pictures(config, "test", 4))  # faces for NudeNet, text for ddddocr
    assert all(counts), counts


@pytest.mark.parametrize(("resize", "pad"), [("letterbox", "center"), ("letterbox", "top-left"), ("stretch", "center")])
def test_every_placement_matches_the_host_pipeline(nudenet: onnx.ModelProto, resize: str, pad: str) -> None:
    config = dataclasses.replace(NUDENET, resize=resize, pad=pad, frame_width=500, frame_height=375)
    assert agree(nudenet, config, pictures(config, "test", 2))[0] > 0


def test_static_and_onnx_nmsagree(ddddocr: onnx.ModelProto) -> None:
    frames = pictures(DDDDOCR, "test", 2)
    found = {}
    for nms in ("static", "onnx"):
        config = dataclasses.replace(DDDDOCR, nms=nms)
        model = build_fused_model(ddddocr, config)
        assert ("NonMaxSuppression" in {n.op_type for n in model.graph.node}) == (nms == "onnx")
        detector = FusedDetector(model, config)
        found[nms] = [detector.detect(frame) for _, frame in frames]
        assert agree(ddddocr, config, frames[1:])[0] > 0
    for static, onnx_form in zip(found["static"], found["onnx"], strict=True):
        assert len(static) > 0
        np.testing.assert_array_equal(static.boxes, onnx_form.boxes)
        np.testing.assert_array_equal(static.scores, onnx_form.scores)


@pytest.mark.parametrize("anchor_free", [True, False], ids=["anchor-free", "objectness"])
@pytest.mark.parametrize("nms", ["cluster", "fast", "onnx"])
@pytest.mark.parametrize("agnostic", [True, False], ids=["agnostic", "class-aware"])
def test_logit_exports_match_in_every_nms_form(anchor_free: bool, nms: str, agnostic: bool) -> None:
    model = tiny_yolo(anchor_free=anchor_free)
    config = YoloConfig(frame_width=96, frame_height=72, class_agnostic=agnostic,
                        nms="onnx" if nms == "onnx" else "static", nms_method="fast" if nms == "fast" else "cluster",
                        max_detections=12, pre_nms_top_k=24, iou_threshold=0.3)
    rng = np.random.default_rng(1)
    frames = [(f"random {i}", rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)) for i in range(3)]
    counts = agree(model, config, frames)
    assert all(count > 1 for count in counts), counts


def test_logit_ranking_gives_the_probabilities_of_the_client_formula() -> None:
    """−softplus(−obj) − softplus(−cls), thresholded at log t and exponentiated, is σ(obj)·σ(cls)."""
    model = tiny_yolo(anchor_free=False, classes=1)
    config = YoloConfig(frame_width=64, frame_height=64, score_threshold=0.2, class_agnostic=True, iou_threshold=1.0,
                        max_detections=50, pre_nms_top_k=50)
    host = HostDetector(model, config)
    frame = np.full((64, 64, 3), 90, np.uint8)
    output = next(iter(host.session.run(None, {host.layout.input: host.preprocess(frame)})))
    table = output.reshape(-1, 6).astype(np.float64)
    client = 1 / (1 + np.exp(-table[:, 4])) / (1 + np.exp(-table[:, 5]))
    expected = np.sort(client[client >= 0.2])[::-1][:50]
    found = host.detect(frame)
    assert len(found) == len(expected) > 0
    np.testing.assert_allclose(found.scores, expected, rtol=1e-5)
    assert score_form(host.layout, 0.2).final_op == "Exp"


def test_the_pass_fuses_and_checks_on_the_workload_frames(ddddocr: onnx.ModelProto) -> None:
    result = FuseHostStagesPass(config=DDDDOCR, check_frames=3)(ddddocr)
    assert result.modified and DDDDOCR.takes_frames(result.model)
    assert result.stats["checked_frames"] == 3 and result.stats["checked_detections"] > 0
    assert result.stats["max_box_error"] <= 0.5 and result.stats["max_score_error"] <= 1e-4
    assert result.stats["decode_added"] == 1 and result.stats["scores_are_logits"] == 0
    # One call either way; 416×416 float32 in and 3549×6 float32 out before, the frame in and 30 rows out after.
    assert result.traffic is not None and result.traffic.before.bytes_out == 3549 * 6 * 4
    assert result.traffic.after.bytes_in == 480 * 640 * 3 and result.traffic.after.bytes_out == 30 * 6 * 4 + 4
    assert result.stats["host_ops_removed"] == result.traffic.host_ops_removed > 0
    assert result.note is not None and "Cluster-NMS" in result.note and "decode added" in result.note
    assert find_layout(ddddocr, DDDDOCR).family == "yolox"
