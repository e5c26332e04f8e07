"""Loading and saving: every bad file is one ModelLoadError sentence; saves are atomic."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from graphopt.errors import ModelLoadError
from graphopt.model_io import OutputStage, load_model, save_model
from tests.conftest import make_model, tensor, value


@pytest.fixture
def relu_model() -> onnx.ModelProto:
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", [1, 4])], [value("y", [1, 4])])


def _one_sentence(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and text
    return text


def test_load_roundtrip(tmp_path: Path, relu_model: onnx.ModelProto) -> None:
    path = save_model(relu_model, tmp_path / "m.onnx")
    assert load_model(path) == relu_model


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"", "is empty"),
        (bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)), "not an ONNX model"),
        (b"\x08\x07", "holds no ONNX graph"),  # a valid protobuf (ir_version=7) without a graph
    ],
    ids=["missing", "empty", "random-bytes", "no-graph"],
)
def test_bad_files(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    message = _one_sentence(info.value)
    assert expected in message and str(path) in message


def test_truncated_model(tmp_path: Path, relu_model: onnx.ModelProto) -> None:
    path = tmp_path / "cut.onnx"
    path.write_bytes(relu_model.SerializeToString()[:-7])
    with pytest.raises(ModelLoadError):
        load_model(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is a directory"):
        load_model(tmp_path)


def test_checker_failure_is_one_sentence(tmp_path: Path) -> None:
    # A node reads a value nothing produces.
    model = make_model([helper.make_node("Add", ["x", "ghost"], ["y"])], [value("x", [2])], [value("y", [2])],
                       check=False)
    path = tmp_path / "ghost.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelLoadError, match="fails the ONNX checker") as info:
        load_model(path)
    _one_sentence(info.value)


def test_opset_too_new(tmp_path: Path, relu_model: onnx.ModelProto) -> None:
    relu_model.opset_import[0].version = onnx.defs.onnx_opset_version() + 5
    path = tmp_path / "new.onnx"
    path.write_bytes(relu_model.SerializeToString())
    with pytest.raises(ModelLoadError, match="newer than"):
        load_model(path)


def _external_model(tmp_path: Path) -> Path:
    weights = tensor("w", np.arange(1, 2049, dtype=np.float32).reshape(1, 2048))
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [value("x", [1, 2048])],
                       [value("y", [1, 2048])], [weights])
    path = tmp_path / "ext" / "m.onnx"
    path.parent.mkdir()
    onnx.save_model(model, path, save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    return path


def test_external_data_loads(tmp_path: Path) -> None:
    model = load_model(_external_model(tmp_path))
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(model.graph.initializer[0])[0, :3], [1, 2, 3])


def test_external_data_missing(tmp_path: Path) -> None:
    path = _external_model(tmp_path)
    (path.parent / "m.onnx.data").unlink()
    with pytest.raises(ModelLoadError, match="is missing"):
        load_model(path)


def test_external_data_path_traversal(tmp_path: Path) -> None:
    path = _external_model(tmp_path)
    (tmp_path / "secret.bin").write_bytes(b"\0" * 8192)
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelLoadError, match="outside the model's directory"):
        load_model(path)


def test_output_stage_commits_all_or_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "nested"
    with pytest.raises(RuntimeError), OutputStage(dest) as stage:
        stage.write_text("a.txt", "a")
        raise RuntimeError("boom")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging directory left either

    with OutputStage(dest) as stage:
        stage.write_text("a.txt", "a")
        stage.write_bytes("b.bin", b"b")
        assert not dest.exists()
        stage.commit()
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "b.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_save_replaces_atomically(tmp_path: Path, relu_model: onnx.ModelProto) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    inode_before = os.stat(path).st_ino
    save_model(relu_model, path)
    assert load_model(path) == relu_model
    assert os.stat(path).st_ino != inode_before  # replaced by rename, not rewritten in place


def test_large_models_are_saved_with_external_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graphopt.model_io as model_io

    monkeypatch.setattr(model_io, "_EXTERNAL_DATA_THRESHOLD", 1024)  # stand-in for protobuf's 2 GiB limit
    weights = tensor("w", np.arange(1, 4097, dtype=np.float32).reshape(1, 4096))
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [value("x", [1, 4096])],
                       [value("y", [1, 4096])], [weights])
    snapshot = model.SerializeToString()
    save_model(model, tmp_path / "big.onnx")
    assert model.SerializeToString() == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    assert (tmp_path / "big.onnx").stat().st_size < 1024
    loaded = load_model(tmp_path / "big.onnx")  # the checker runs through a file too
    assert loaded.graph.initializer[0].raw_data == weights.raw_data
