"""The workload's frames: many, distinct, deterministic, and in each real model's domain enough to make it fire."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import onnx
import pytest

from graphopt_yolo.config import YoloConfig
from graphopt_yolo.frames import photo_frame, text_frame
from graphopt_yolo.host import HostDetector
from graphopt_yolo.pictures import pictures

from .conftest import DDDDOCR, NUDENET

FRAMES = 100
#: Measured: NudeNet fires on 96 of the first 100 photo frames, ddddocr on 96 of the text frames (at the
#: conftest configs' thresholds, 0.25 and 0.1). 90 leaves room for onnxruntime's rounding, not for a domain
#: that stopped working.
FIRING = 90


def _digest(frame: np.ndarray) -> str:
    return hashlib.sha256(frame.tobytes()).hexdigest()


@pytest.mark.parametrize("which", ["nudenet", "ddddocr"])
def test_each_model_fires_on_its_own_domain(which: str, request: pytest.FixtureRequest) -> None:
    model: onnx.ModelProto = request.getfixturevalue(which)
    config = {"nudenet": NUDENET, "ddddocr": DDDDOCR}[which]
    detector = HostDetector(model, config)
    frames = pictures(config, "test", FRAMES)
    fired = sum(len(detector.detect(frame)) > 0 for _, frame in frames)
    assert fired >= FIRING, f"{which} fires on {fired} of {FRAMES} {config.domain} frames"


@pytest.mark.parametrize("kind", ["photos", "text", "mixed"])
def test_frames_are_distinct_deterministic_and_of_the_frame_size(kind: str) -> None:
    config = YoloConfig(frame_width=320, frame_height=240, domain=kind)
    first = pictures(config, "test", FRAMES)
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for _, f in first)
    assert len({name for name, _ in first}) == FRAMES
    assert len({_digest(f) for _, f in first}) == FRAMES
    again = pictures(config, "test", 3)
    assert [_digest(f) for _, f in again] == [_digest(f) for _, f in first[:3]]
    train = {_digest(f) for _, f in pictures(config, "train", 10)}
    assert not train & {_digest(f) for _, f in first}


def test_mixed_frames_alternate_photos_and_text() -> None:
    config = YoloConfig(frame_width=160, frame_height=120)
    assert config.domain == "mixed"
    names = [name for name, _ in pictures(config, "test", 4)]
    assert names == ["photos:test:0", "text:test:0", "photos:test:1", "text:test:1"]
    np.testing.assert_array_equal(pictures(config, "test", 2)[1][1], text_frame("test", 0, 120, 160))
    np.testing.assert_array_equal(pictures(config, "test", 1)[0][1], photo_frame("test", 0, 120, 160))


def test_a_frame_index_or_split_out_of_range_says_so() -> None:
    with pytest.raises(ValueError, match="split must be"):
        photo_frame("val", 0, 48, 64)
    with pytest.raises(ValueError, match="at least 0"):
        text_frame("test", -1, 48, 64)


def test_the_config_reads_frames() -> None:
    from graphopt.errors import ConfigError
    from graphopt_yolo.config import parse_config

    assert parse_config({"yolo": {"domain": "text"}}).domain == "text"
    with pytest.raises(ConfigError, match="domain must be one of mixed, photos, text"):
        parse_config({"yolo": {"domain": "faces"}})
    assert dataclasses.replace(NUDENET).domain == "photos"
