"""ground_plane_slice: each scale's network computes only its band, and the band's scores are the full graph's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import graphopt
from graphopt.analysis import count_flops
from graphopt.backends.onnxruntime import create_session
from graphopt.errors import ConfigError, PassFailedError, PassRequirementError
from graphopt.passes import with_ground_plane
from graphopt.passes.nms_logits import log_odds
from graphopt_person import slicing as ground_plane_module
from graphopt_person.data import render_scene, scene_seeds
from graphopt_person.fused import FRAME_INPUT, VOLUME_OUTPUT, FusedDetector, build_fused_model
from graphopt_person.grid import resample_matrix
from graphopt_person.ground_plane import ground_plane_bands
from graphopt_person.slicing import (
    PAD_LOGIT,
    SLICE_KEY,
    GroundPlaneSlicePass,
    constant_values,
    find_scale_networks,
)
from graphopt_person.spec import CameraSpec, DetectorConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_person_detector"
CONFIG = load_config(EXAMPLE / "detector.toml")
SPEC = CONFIG.detector
# A level camera 3 m up: the medium and near scales' people would be centred below the frame
# (empty bands), and the far scale's band ends at the last window (see tests/detector/test_ground_plane.py).
HIGH_CAMERA = DetectorConfig(detector=SPEC, camera=CameraSpec(height_m=3.0, tilt_deg=0.0, focal_px=(500.0, 500.0),
                                                              person_height_m=(1.5, 1.5)))


@pytest.fixture(scope="module")
def network() -> onnx.ModelProto:
    return onnx.load(str(EXAMPLE / "model.onnx"))


CLEAN_UP = ["remove_redundant_nodes", "fold_batch_norm", "push_transposes", "merge_common_subexpressions"]


@pytest.fixture(scope="module")
def fused(network: onnx.ModelProto) -> onnx.ModelProto:
    """The cleaned-up network fused into the detector, with its score volume as an extra output."""
    clean, _ = graphopt.optimize(network, CLEAN_UP, input_shapes={"image": (1, 3, 480, 640)})
    return build_fused_model(clean, SPEC, volume_output=True)


def random_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 256, size=(SPEC.frame_height, SPEC.frame_width, 3), dtype=np.uint8) for _ in range(count)]


def volumes(model: onnx.ModelProto, frames: list[np.ndarray]) -> list[np.ndarray]:
    session = create_session(model)
    return [session.run([VOLUME_OUTPUT], {FRAME_INPUT: frame})[0] for frame in frames]


def test_band_scores_equal_the_unsliced_graph_on_random_frames(fused: onnx.ModelProto) -> None:
    result = GroundPlaneSlicePass(config=CONFIG, check_frames=0)(fused)
    assert result.modified
    onnx.checker.check_model(result.model, full_check=True)
    bands = ground_plane_bands(CONFIG)
    frames = random_frames(3)
    for full, sliced in zip(volumes(fused, frames), volumes(result.model, frames), strict=True):
        for band in bands:
            assert band.grid_rows is not None
            first, last = band.grid_rows
            # Inside the band: the same float32 numbers (the same arithmetic on the same rows).
            np.testing.assert_array_equal(sliced[band.index, first : last + 1], full[band.index, first : last + 1])
            assert np.any(full[band.index, first : last + 1] > 0)
            # Grid rows reading no computed window are probability 0, like cells no window reaches.
            assert band.map_rows is not None
            taps = resample_matrix(SPEC, band.scale, "y")[0] != 0
            outside = ~taps[:, band.map_rows[0] : band.map_rows[1] + 1].any(axis=1)
            assert np.all(sliced[band.index, outside] == 0)


def test_each_scale_reads_a_slice_of_its_rows_and_flops_fall(fused: onnx.ModelProto) -> None:
    result = GroundPlaneSlicePass(config=CONFIG, check_frames=2)(fused)
    slices = [n for n in result.model.graph.node if n.op_type == "Slice"]
    assert len(slices) == 3 and all(n.metadata_props[0].key == SLICE_KEY for n in slices)
    bands = ground_plane_bands(CONFIG)
    starts = {str(n.input[1]): n for n in slices}
    values = {t.name: onnx.numpy_helper.to_array(t) for t in result.model.graph.initializer}
    assert sorted((int(values[s][0]), int(values[n.input[2]][0])) for s, n in starts.items()) == sorted(
        band.input_rows for band in bands if band.input_rows is not None
    )
    stats = result.stats
    assert stats["scales_sliced"] == 3 and stats["scales_dropped"] == 0
    assert stats["score_rows_before"] == 89 + 44 + 17 and stats["score_rows_after"] == 13 + 13 + 13
    assert stats["checked_frames"] == 2 and stats["max_band_error"] <= 1e-5
    assert stats["flops_after"] < 0.4 * stats["flops_before"]
    assert stats["flops_before"] == count_flops(fused).total
    assert [row["score rows"] for row in result.details] == ["29-41 of 89", "11-23 of 44", "0-12 of 17"]
    assert "FLOPs per frame" in (result.note or "")
    # The padding is a very low person logit: Pad with zeros, then a per-row column added.
    pads = [n for n in result.model.graph.node if n.op_type == "Pad"]
    assert len(pads) == 3
    column = next(v for name, v in values.items() if name.endswith("pad_logit"))
    assert column.shape[:2] == (1, 2) and column.shape[3] == 1
    assert set(np.unique(column[0, 1])) == {0.0, PAD_LOGIT} and not np.any(column[0, 0])


def test_second_run_changes_nothing(fused: onnx.ModelProto) -> None:
    once = GroundPlaneSlicePass(config=CONFIG, check_frames=0)(fused).model
    again = GroundPlaneSlicePass(config=CONFIG)(once)
    assert not again.modified and "already" in (again.note or "")


def test_without_config_or_on_a_network_nothing_changes(network: onnx.ModelProto, fused: onnx.ModelProto) -> None:
    result = GroundPlaneSlicePass()(fused)
    assert not result.modified and "--config" in (result.note or "")
    result = GroundPlaneSlicePass(config=CONFIG)(network)
    assert not result.modified and "fuse_host_stages" in (result.note or "")


def test_an_empty_band_drops_the_scale_and_an_edge_band_needs_no_padding_below(fused: onnx.ModelProto) -> None:
    bands = ground_plane_bands(HIGH_CAMERA)
    assert bands[1].map_rows is None and bands[2].map_rows is None
    assert bands[0].map_rows is not None and bands[0].map_rows[1] == 88
    result = GroundPlaneSlicePass(config=HIGH_CAMERA, check_frames=2)(fused)
    assert result.stats["scales_dropped"] == 2 and result.stats["scales_sliced"] == 1
    model = result.model
    onnx.checker.check_model(model, full_check=True)
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 7 and all(name.startswith("scale0/") for name in convs)  # one network copy left
    assert not [n for n in model.graph.node if n.op_type == "Resize"]  # nor the resizes that fed the others
    assert result.details[2]["score rows"] == "none of 17"
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    values = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    (pad,) = pads
    assert values[pad.input[1]].tolist() == [0, 0, bands[0].map_rows[0], 0, 0, 0, 0, 0]  # nothing below row 88
    frames = random_frames(2, seed=1)
    for full, sliced in zip(volumes(fused, frames), volumes(model, frames), strict=True):
        assert not np.any(sliced[1:])  # no person of these scales' sizes can be in view
        first, last = bands[0].grid_rows  # type: ignore[misc]
        np.testing.assert_array_equal(sliced[0, first : last + 1], full[0, first : last + 1])


def test_slicing_works_after_nms_on_logits_and_in_float16(network: onnx.ModelProto) -> None:
    """Before or after the float16 passes, the sliced graph finds the unsliced graph's people."""
    fp16, _ = graphopt.optimize(network, detector=CONFIG, fp16=True)
    logits_first = GroundPlaneSlicePass(config=CONFIG, check_frames=2)(fp16)
    assert logits_first.modified and logits_first.stats["max_band_error"] == 0
    ground_first, report = graphopt.optimize(network, detector=CONFIG, fp16=True, ground_plane=True)
    names = [r.name for r in report.passes]
    assert names.index("fuse_host_stages") + 1 == names.index("ground_plane_slice") < names.index("convert_to_fp16")
    detectors = [FusedDetector(m, SPEC) for m in (fp16, logits_first.model, ground_first)]
    found = 0
    for seed in scene_seeds("test", 8):
        frame = render_scene(CONFIG, seed).image
        reference, *sliced = (d.detect(frame) for d in detectors)
        found += len(reference)
        for other in sliced:
            np.testing.assert_array_equal(other.cells, reference.cells)
            np.testing.assert_array_equal(other.boxes, reference.boxes)
            # Slicing is exact (max_band_error 0), so the scores are the same numbers; compared as log-odds,
            # since probabilities near 1 hardly move (an atol of 1e-3 on them passes a log-odds error of 0.5).
            np.testing.assert_allclose(log_odds(other.scores.astype(np.float64)),
                                       log_odds(reference.scores.astype(np.float64)), rtol=0, atol=1e-5)
    assert found >= 4


def test_pipeline_does_not_roll_back_the_changed_detections(network: onnx.ModelProto) -> None:
    plain, _ = graphopt.optimize(network, detector=CONFIG)
    model, report = graphopt.optimize(network, detector=CONFIG, ground_plane=True, verify=True)
    (record,) = [r for r in report.passes if r.name == "ground_plane_slice"]
    assert record.status == "modified" and len(record.details) == 3
    names = [r.name for r in report.passes]
    assert names[names.index("ground_plane_slice") + 1] == "pin_static_shapes"
    # The target: FLOPs per frame cut by at least 60% for the shipped camera.
    assert count_flops(model).total <= 0.4 * count_flops(plain).total
    # pin_static_shapes keeps node metadata (onnxsim alone drops it); without it the slices are still recognised.
    assert any(n.metadata_props for n in model.graph.node if n.op_type == "Slice")
    again = GroundPlaneSlicePass(config=CONFIG)(model)
    assert not again.modified and "already" in (again.note or "")
    for n in model.graph.node:
        n.ClearField("metadata_props")
    again = GroundPlaneSlicePass(config=CONFIG)(model)
    assert not again.modified and "already" in (again.note or "")


def test_with_ground_plane_places_the_pass_after_the_fusion() -> None:
    assert with_ground_plane(["fuse_host_stages", "pin_static_shapes"]) == [
        "fuse_host_stages", "ground_plane_slice", "pin_static_shapes"]
    assert with_ground_plane(["remove_redundant_nodes"]) == ["remove_redundant_nodes", "ground_plane_slice"]
    assert with_ground_plane(["ground_plane_slice", "fuse_host_stages"]) == ["ground_plane_slice", "fuse_host_stages"]


def test_a_band_that_differs_from_the_full_graph_is_rolled_back(
    network: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ground_plane_module, "BAND_TOLERANCE", -1.0)  # no difference, not even 0, is accepted
    with pytest.raises(PassFailedError, match=r"ground_plane_slice.*inside the band"):
        graphopt.optimize(network, detector=CONFIG, ground_plane=True)


def test_a_row_padded_first_convolution_is_refused(fused: onnx.ModelProto) -> None:
    padded = onnx.ModelProto()
    padded.CopyFrom(fused)
    first = next(n for n in padded.graph.node if n.op_type == "Conv" and n.name.startswith("scale0/"))
    kept = [a for a in first.attribute if a.name != "pads"]
    first.ClearField("attribute")
    first.attribute.extend([*kept, helper.make_attribute("pads", [2, 0, 2, 0])])
    with pytest.raises(ConfigError, match="pads its rows"):
        GroundPlaneSlicePass(config=CONFIG)(padded)


def test_a_network_not_cleaned_up_is_sliced_too(network: onnx.ModelProto) -> None:
    """The naive export's debris (weights read through Identity nodes) is constant: no clean-up needed first."""
    raw = build_fused_model(network, SPEC, volume_output=True)
    weights = {t.name for t in raw.graph.initializer}
    assert any(n.op_type == "Identity" and n.input[0] in weights for n in raw.graph.node)
    result = GroundPlaneSlicePass(config=CONFIG, check_frames=2)(raw)
    assert result.modified and result.stats["max_band_error"] == 0
    onnx.checker.check_model(result.model, full_check=True)


def test_constant_values_follow_nodes_that_read_constants_only() -> None:
    weight = onnx.numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    nodes = [helper.make_node("Identity", ["w"], ["w_id"]), helper.make_node("Neg", ["w_id"], ["w_neg"]),
             helper.make_node("Add", ["x", "w_neg"], ["y"]),
             helper.make_node("RandomUniformLike", ["w"], ["noise"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 2])], [weight])
    assert constant_values(graph) == {"w", "w_id", "w_neg"}


def test_a_graph_fused_for_another_pyramid_is_refused(fused: onnx.ModelProto) -> None:
    other = dataclasses.replace(CONFIG, detector=dataclasses.replace(SPEC, scales=(1.0, 0.7, 0.4)))
    with pytest.raises(ConfigError, match=r"cannot find the network of scale 0\.7"):
        find_scale_networks(fused, other)


def test_without_fusion_the_network_keeps_its_dynamic_size_and_slicing_is_not_applicable(
    network: onnx.ModelProto,
) -> None:
    """--config without fuse_host_stages: the host pipeline still runs the result, and the passes say why not."""
    from graphopt_person.naive import NaiveDetector

    model, report = graphopt.optimize(network, skip=["fuse_host_stages"], detector=CONFIG)
    NaiveDetector(model, SPEC).detect(render_scene(CONFIG, scene_seeds("test", 1)[0]).image)  # 302x403 and 192x256 too
    (pin,) = [r for r in report.passes if r.name == "pin_static_shapes"]
    assert pin.status == "skipped" and "the workload's shape is not pinned" in pin.message
    with pytest.raises(PassRequirementError, match=r"ground_plane_slice.*fused detector graph"):
        graphopt.optimize(network, [*CLEAN_UP, "ground_plane_slice"], detector=CONFIG)
