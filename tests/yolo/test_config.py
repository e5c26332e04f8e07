"""The [yolo] table, and what the workload finds from the graph: layout, classes, input size, score form."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from graphopt.errors import ConfigError
from graphopt.workloads import default_workload, load_config
from graphopt_yolo.config import YoloConfig, parse_config
from graphopt_yolo.layout import find_layout

from .conftest import DDDDOCR, NUDENET, tiny_yolo


def test_a_yolo_table_is_claimed_and_parsed(tmp_path: Path) -> None:
    path = tmp_path / "yolo.toml"
    path.write_text('[yolo]\nframe_size = [800, 600]\ninput_size = [320, 320]\npad = "top-left"\n'
                    'channels = "bgr"\nscale = 1\nmean = [0, 0, 0]\nclasses = 18\nclass_agnostic = true\n'
                    'nms = "onnx"\nscore_threshold = 0.3\n')
    config = load_config(path)
    assert isinstance(config, YoloConfig) and config.workload_name == "yolo"
    assert (config.frame_width, config.frame_height) == (800, 600) and config.frame_size == (600, 800)
    assert config.input_size == (320, 320) and config.pad == "top-left" and config.channels == "bgr"
    assert config.scale == 1.0 and config.classes == 18 and config.class_agnostic and config.nms == "onnx"
    assert config.score_threshold == 0.3 and config.source == str(path)
    named = tmp_path / "named.toml"
    named.write_text('workload = "yolo"\n[yolo]\nframe_size = [64, 48]\n')
    assert load_config(named).frame_size == (48, 64)


@pytest.mark.parametrize(("table", "message"), [
    ({"yolo": {"frame_size": [640]}}, "frame_size must be a list of 2 numbers"),
    ({"yolo": {"resize": "crop"}}, "resize must be one of letterbox, stretch"),
    ({"yolo": {"classes": 2.5}}, "classes must be an integer"),
    ({"yolo": {"class_agnostic": 1}}, "class_agnostic must be true or false"),
    ({"yolo": {"max_detections": 50, "pre_nms_top_k": 10}}, "max_detections must lie between 1 and pre_nms_top_k"),
    ({"yolo": {"score_threshold": 1.5}}, "score_threshold must lie in (0, 1)"),
    ({"yolo": {"anchors": 3}}, "unknown key 'anchors' in [yolo]"),
    ({"yolo": {}, "camera": {}}, "unknown table [camera]"),
])
def test_bad_config_values_are_one_sentence(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as error:
        parse_config(table, source="y.toml")
    assert message in str(error.value) and str(error.value).startswith("y.toml: ")
    assert "\n" not in str(error.value)


def test_the_person_detector_stays_the_default_without_a_config() -> None:
    assert default_workload().workload_name == "person"


def test_layouts_found_from_the_real_graphs(nudenet, ddddocr) -> None:  # type: ignore[no-untyped-def]
    v8 = find_layout(nudenet, NUDENET)
    assert (v8.family, v8.classes, v8.predictions, v8.input_hw) == ("yolov8", 18, 2100, (320, 320))
    assert v8.decoded and v8.probabilities  # Ultralytics decodes (DFL, anchors, strides) and applies the sigmoid
    yolox = find_layout(ddddocr, DDDDOCR)
    assert (yolox.family, yolox.classes, yolox.predictions, yolox.input_hw) == ("yolox", 1, 3549, (416, 416))
    assert not yolox.decoded and yolox.probabilities  # grid/stride left to the client, sigmoids inside


def test_logit_exports_are_recognised() -> None:
    config = YoloConfig(frame_width=64, frame_height=64)
    assert not find_layout(tiny_yolo(anchor_free=True), config).probabilities
    layout = find_layout(tiny_yolo(anchor_free=False), config)
    assert (layout.family, layout.classes, layout.decoded, layout.probabilities) == ("yolox", 3, False, False)


def test_a_config_that_contradicts_the_graph_is_one_sentence(nudenet, ddddocr) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"classes = 80 contradicts the model's output \[1, 22, 2100\], which has 18"):
        find_layout(nudenet, dataclasses.replace(NUDENET, classes=80))
    with pytest.raises(ConfigError, match=r"input_size \[640, 640\] \(width, height\) contradicts the model's input"):
        find_layout(ddddocr, dataclasses.replace(DDDDOCR, input_size=(640, 640)))
    with pytest.raises(ConfigError, match="family 'yolov8' contradicts the model's output"):
        find_layout(ddddocr, dataclasses.replace(DDDDOCR, family="yolov8"))
    with pytest.raises(ConfigError, match=r"has a dynamic size; give input_size = \[width, height\]"):
        find_layout(nudenet, dataclasses.replace(NUDENET, input_size=None))


def test_an_output_of_no_known_layout_names_those_looked_for() -> None:
    model = tiny_yolo(anchor_free=True, output_shape=(1, 7, 9))
    with pytest.raises(ConfigError) as error:
        find_layout(model, YoloConfig(frame_width=64, frame_height=64))
    message = str(error.value)
    assert message.startswith("the model's output [1, 7, 9] on a 64x64 input matches no known YOLO layout")
    assert "[1, 4+C, 84] (YOLOv8/v11, anchor-free), [1, 84, 5+C] (YOLOX) and [1, 252, 5+C] (YOLOv5)" in message
