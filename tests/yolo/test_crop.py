"""Fixed-camera row cropping: the band's rows, the cropped host pipeline and graph, and the crop_rows pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import graphopt
from graphopt.cli import cli
from graphopt.errors import ConfigError
from graphopt.model_io import save_model
from graphopt_yolo.config import parse_config
from graphopt_yolo.crop import CameraBand, crop_network, frame_band, input_rows
from graphopt_yolo.cropping import CropRowsPass, inside_band, outside_band_blanked
from graphopt_yolo.fused import FusedDetector, build_fused_model, fused_rows, network_of
from graphopt_yolo.fusion import compare
from graphopt_yolo.host import HostDetector
from graphopt_yolo.layout import find_layout
from graphopt_yolo.pictures import pictures

from .conftest import DDDDOCR, NUDENET, tiny_yolo

#: A fixed camera whose objects are in frame rows 150-400 (NudeNet: input rows 75-200 of 320).
BANDED = dataclasses.replace(NUDENET, crop_rows=(150, 400))


def test_the_band_is_letterboxed_widened_and_rounded_to_the_stride(nudenet: onnx.ModelProto) -> None:
    layout = find_layout(nudenet, BANDED)
    # gain 0.5, no top padding: rows 75-200; ±margin; out to multiples of 32
    assert input_rows(BANDED, layout, 0) == (64, 224)
    assert input_rows(BANDED, layout, 32) == (32, 256)
    assert input_rows(BANDED, layout, 96) == (0, 320)  # clipped to the input
    assert input_rows(NUDENET, layout, 32) is None  # no band in the config
    centred = dataclasses.replace(BANDED, pad="center")  # 40 rows of padding on top now
    assert input_rows(centred, layout, 0) == (96, 256)


def test_a_camera_gives_the_band_where_its_objects_can_be() -> None:
    camera = CameraBand(height_m=3.0, tilt_deg=20.0, object_height_m=(1.5, 1.9), object_px=(40.0, 480.0))
    top, bottom = frame_band(dataclasses.replace(NUDENET, camera=camera))
    horizon = 240 - 525 * np.tan(np.radians(20))
    # Heads of people 1.5-1.9 m tall seen from 3 m are below the horizon; feet reach the frame's bottom.
    assert horizon < top < 240 and bottom == 480
    near = CameraBand(height_m=3.0, tilt_deg=20.0, object_px=(150.0, 480.0))  # only people near the camera
    assert frame_band(dataclasses.replace(NUDENET, camera=near))[0] > top + 50
    nowhere = CameraBand(height_m=3.0, tilt_deg=80.0, object_height_m=(0.1, 0.1), object_px=(400.0, 480.0))
    with pytest.raises(ConfigError, match="sees no object"):
        frame_band(dataclasses.replace(NUDENET, camera=nowhere))


def test_config_keys_for_the_band() -> None:
    config = parse_config({"yolo": {"crop_rows": [100, 400], "crop_margin": 16}}, source="t.toml")
    assert (config.crop_rows, config.crop_margin) == ((100, 400), 16)
    camera = parse_config({"yolo": {"camera": {"height_m": 2.0, "object_px": [30, 300]}}}, source="t.toml").camera
    assert camera == CameraBand(height_m=2.0, object_px=(30.0, 300.0))
    for table, message in (({"crop_rows": [400, 100]}, "0 <= top < bottom"),
                           ({"crop_rows": [0, 100], "camera": {}}, "not both"),
                           ({"camera": {"height": 2}}, "unknown key 'height'"),
                           ({"camera": {"object_px": [0, 10]}}, "object_px must be"),
                           ({"crop_margin": -1}, "at least 0")):
        with pytest.raises(ConfigError, match=message):
            parse_config({"yolo": table}, source="t.toml")


@pytest.mark.parametrize(("model", "config", "band"), [("nudenet", NUDENET, (150, 400)),
                                                       ("ddddocr", DDDDOCR, (0, 300))])
def test_cropped_graph_finds_what_the_cropped_host_pipeline_finds(model: str, config, band, request) -> None:  # type: ignore[no-untyped-def]
    network = request.getfixturevalue(model)
    config = dataclasses.replace(config, crop_rows=band)
    layout = find_layout(network, config)
    rows = input_rows(config, layout, 32)
    cropped = layout.cropped(rows)
    assert cropped.predictions < layout.predictions and cropped.network_hw == (rows[1] - rows[0], layout.input_hw[1])
    host = HostDetector(network, config, rows=rows)
    fused = FusedDetector(build_fused_model(network, config, cropped), config)
    found = 0
    for name, frame in pictures(config, "test", 6):
        ours = fused.detect(frame)
        compare(ours, host.detect(frame), name)  # same count and classes, boxes within 0.5 px, scores 1e-4
        found += len(ours)
    assert found >= 3


def test_cropping_moves_boxes_back_to_the_frame(nudenet: onnx.ModelProto) -> None:
    """Inside the band, on frames blanked outside it, the cropped graph's boxes are the uncropped graph's.

    A decode that forgot the band's top (input row 32) would put every box 64 frame rows higher.
    """
    layout = find_layout(nudenet, BANDED)
    band = frame_band(BANDED)
    whole = FusedDetector(build_fused_model(nudenet, BANDED, layout), BANDED)
    rows = input_rows(BANDED, layout, 32)
    assert rows == (32, 256)
    cropped = FusedDetector(build_fused_model(nudenet, BANDED, layout.cropped(rows)), BANDED)
    expected = found = 0
    for _, frame in pictures(BANDED, "test", 16):
        frame = outside_band_blanked(frame, band, BANDED.pad_value)
        before, after = inside_band(whole.detect(frame), band), cropped.detect(frame)
        expected += len(before)
        found += sum(bool(len(after)) and np.min(np.max(np.abs(after.boxes - box), axis=1)) < 4.0
                     for box in before.boxes)
    assert expected >= 5 and found >= expected - 1  # the sweep's margin-32 row: at most a box lost at the edge


def test_the_network_comes_back_out_of_the_fused_graph(ddddocr: onnx.ModelProto) -> None:
    fused = build_fused_model(ddddocr, DDDDOCR)
    assert fused_rows(fused) == ((416, 416), None)
    network = network_of(fused)
    assert network is not None and len(network.graph.node) < len(fused.graph.node)
    layout = find_layout(network, DDDDOCR)
    assert (layout.predictions, layout.input_hw, layout.probabilities) == (3549, (416, 416), False)  # its logits
    cropped = build_fused_model(network, DDDDOCR, layout.cropped((0, 256)))
    assert fused_rows(cropped) == ((416, 416), (0, 256)) and network_of(cropped) is None


def test_a_network_with_its_input_size_inside_the_graph_cannot_be_cropped() -> None:
    tiny = tiny_yolo(anchor_free=True)  # its Reshape fixes the predictions of a 64x64 input
    config = dataclasses.replace(NUDENET, frame_width=64, frame_height=64, input_size=None, crop_rows=(0, 20))
    layout = find_layout(tiny, config)
    with pytest.raises(ConfigError, match="band of 32 input rows, not the 42 predictions of its grid"):
        crop_network(tiny, layout.cropped((0, 32)))


def test_crop_rows_pass_cuts_flops_and_sweeps_margins(nudenet: onnx.ModelProto) -> None:
    fused, _ = graphopt.optimize(nudenet, config=BANDED, passes=["fuse_host_stages"])
    result = CropRowsPass(config=BANDED, check_frames=3, sweep_frames=4)(fused)
    stats = result.stats
    assert result.modified and (stats["input_rows_before"], stats["input_rows_after"]) == (320, 224)
    assert stats["flops_after"] < 0.75 * stats["flops_before"] and stats["checked_frames"] == 3
    assert [row["input rows"] for row in result.details] == ["64-224", "32-224", "32-256", "0-288"]
    assert sum("(chosen)" in row["margin"] for row in result.details) == 1
    again = CropRowsPass(config=BANDED, check_frames=0, sweep_frames=0)(result.model)
    assert not again.modified and "already" in (again.note or "")
    unbanded = CropRowsPass(config=NUDENET)(fused)
    assert not unbanded.modified and "nothing to crop" in (unbanded.note or "")


def test_ground_plane_flag_crops_a_yolo_model(nudenet: onnx.ModelProto, tmp_path: Path) -> None:
    model, config = tmp_path / "320n.onnx", tmp_path / "yolo.toml"
    save_model(nudenet, model)
    config.write_text("[yolo]\nframe_size = [640, 480]\ninput_size = [320, 320]\npad = \"top-left\"\n"
                      "pad_value = 0\ndomain = \"photos\"\ncrop_rows = [150, 400]\n")
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(cli, ["optimize", str(model), "--config", str(config), "--ground-plane",
                                      "--ground-plane-margin", "0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "crop_rows: the network reads input rows 64-224 of 320" in result.output
    assert fused_rows(onnx.load(str(out))) == ((320, 320), (64, 224))
    config.write_text("[yolo]\nframe_size = [640, 480]\ninput_size = [320, 320]\n")
    result = CliRunner().invoke(cli, ["optimize", str(model), "--config", str(config), "--ground-plane",
                                      "-o", str(tmp_path / "none.onnx")])
    assert result.exit_code == 2 and "crop_rows" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "none.onnx").exists()
