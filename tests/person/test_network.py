"""The person classifier: its naive ONNX export against the NumPy reference, and weight loading."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from graphopt.errors import ModelLoadError
from graphopt.graph import constant_value, declared_dims
from graphopt.verify import run_onnxruntime
from graphopt_person.network import (
    LAYERS,
    NETWORK_STRIDE,
    WINDOW,
    build_naive_model,
    check_weights,
    load_weights,
    output_shape,
    random_weights,
    reference_forward,
    weight_shapes,
)
from graphopt_person.spec import DetectorSpec


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights(7)


@pytest.fixture(scope="module")
def model(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    return build_naive_model(weights)


@pytest.fixture(scope="module")
def logits_model(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    return build_naive_model(weights, output="logits")


def _input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random non-zero input of both signs."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)).astype(np.float32)


def _softmax_nhwc(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).transpose(0, 2, 3, 1)


def test_architecture_constants_agree_with_the_spec() -> None:
    spec = DetectorSpec()
    assert spec.stride == NETWORK_STRIDE
    assert (spec.window_height, spec.window_width) == WINDOW
    assert output_shape(*WINDOW) == (1, 1)
    for scale in spec.scales:
        assert output_shape(*spec.scaled_frame_shape(scale)) == spec.score_map_shape(scale)
    for height in range(128, 150):
        for width in range(48, 60):
            assert output_shape(height, width) == ((height - 128) // 4 + 1, (width - 48) // 4 + 1)
    assert output_shape(127, 48) == (0, 0)
    assert [layer.name for layer in LAYERS] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2"]
    assert weight_shapes()["fc1.weight"] == (64, 16, 24, 4)
    assert weight_shapes()["fc2.weight"] == (2, 64, 1, 1)
    assert len(weight_shapes()) == 5 * 6 + 4


def test_naive_graph_carries_exporter_debris(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    ops = Counter(node.op_type for node in model.graph.node)
    for op in ("Dropout", "Identity", "BatchNormalization", "Transpose", "Shape", "Gather", "Unsqueeze", "Concat"):
        assert ops[op] >= 1, op
    assert ops["Reshape"] == 2 and ops["Softmax"] == 1
    assert ops["Conv"] == 7 and ops["BatchNormalization"] == 5 and ops["Relu"] == 6 and ops["MaxPool"] == 2
    assert model.producer_name == "graphopt-naive-export"
    names = [node.name for node in model.graph.node]
    assert "/conv1/Conv" in names and "/bn1/BatchNormalization" in names
    assert len(set(names)) == len(names)

    # The input goes through an Identity; a weight reaches its Conv through one.
    first = model.graph.node[0]
    assert first.op_type == "Identity" and first.input[0] == "image"
    initializers = {init.name for init in model.graph.initializer}
    weight_identities = [n for n in model.graph.node if n.op_type == "Identity" and n.input[0] in initializers]
    assert weight_identities
    readers = [n for n in model.graph.node if weight_identities[0].output[0] in n.input]
    assert [n.op_type for n in readers] == ["Conv"]

    # Dropout as exported for inference: a ratio initializer and a constant False training_mode.
    (dropout,) = [n for n in model.graph.node if n.op_type == "Dropout"]
    assert dropout.input[1] in initializers
    assert not bool(constant_value(model.graph, dropout.input[2]))


def test_naive_graph_has_dynamic_height_and_width(model: onnx.ModelProto) -> None:
    (image,) = model.graph.input
    assert image.name == "image"
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert declared_dims(image) == ["batch", 3, "height", "width"]
    (output,) = model.graph.output
    assert output.name == "probabilities"
    assert declared_dims(output) == ["batch", "rows", "cols", 2]


@pytest.mark.parametrize("shape", [(1, 3, 140, 60), (1, 3, 136, 64), (2, 3, 131, 51)])
def test_probabilities_match_the_reference(
    model: onnx.ModelProto, weights: dict[str, np.ndarray], shape: tuple[int, int, int, int]
) -> None:
    x = _input(shape, seed=shape[2])
    actual = run_onnxruntime(model, {"image": x})["probabilities"]
    expected = _softmax_nhwc(reference_forward(weights, x))
    rows, cols = output_shape(shape[2], shape[3])
    assert actual.shape == (shape[0], rows, cols, 2)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_allclose(actual.sum(axis=-1), 1.0, atol=1e-6)


def test_window_input_gives_one_cell(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> None:
    x = _input((1, 3, *WINDOW), seed=3)
    actual = run_onnxruntime(model, {"image": x})["probabilities"]
    assert actual.shape == (1, 1, 1, 2)
    np.testing.assert_allclose(actual, _softmax_nhwc(reference_forward(weights, x)), atol=1e-5)


def test_logits_variant(logits_model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> None:
    onnx.checker.check_model(logits_model, full_check=True)
    ops = Counter(node.op_type for node in logits_model.graph.node)
    assert ops["Softmax"] == 0 and ops["Transpose"] == 0
    (output,) = logits_model.graph.output
    assert output.name == "logits"
    assert declared_dims(output) == ["batch", 2, "rows", "cols"]
    x = _input((1, 3, 140, 60), seed=5)
    actual = run_onnxruntime(logits_model, {"image": x})["logits"]
    expected = reference_forward(weights, x)
    assert actual.shape == expected.shape == (1, 2, 4, 4)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_reference_accepts_one_image_and_rejects_small_ones(weights: dict[str, np.ndarray]) -> None:
    x = _input((3, 132, 52), seed=9)
    assert reference_forward(weights, x).shape == (1, 2, 2, 2)
    with pytest.raises(ValueError, match="smaller than"):
        reference_forward(weights, _input((1, 3, 100, 48)))


def test_serialization_is_deterministic(model: onnx.ModelProto) -> None:
    again = build_naive_model(random_weights(7))
    assert again.SerializeToString() == model.SerializeToString()
    assert build_naive_model(random_weights(8)).SerializeToString() != model.SerializeToString()


def test_build_rejects_unknown_output_and_opset(weights: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="output"):
        build_naive_model(weights, output="boxes")
    with pytest.raises(ValueError, match="opset"):
        build_naive_model(weights, opset=11)
    assert build_naive_model(weights, opset=13).opset_import[0].version == 13


def test_random_weights_are_non_trivial() -> None:
    weights = random_weights(0)
    assert check_weights(weights).keys() == weight_shapes().keys()
    for k in range(1, 6):
        assert np.all(weights[f"bn{k}.running_var"] > 0)
        assert np.any(weights[f"bn{k}.running_mean"] != 0)
    assert all(array.dtype == np.float32 for array in weights.values())
    assert not np.array_equal(weights["conv1.weight"], random_weights(1)["conv1.weight"])


def test_load_weights_round_trip(tmp_path: Path, weights: dict[str, np.ndarray]) -> None:
    path = tmp_path / "weights.npz"
    # A PyTorch state_dict also carries the batch-norm step counters; they are ignored.
    np.savez(path, **weights, **{"bn1.num_batches_tracked": np.array(10, dtype=np.int64)})
    loaded = load_weights(path)
    assert list(loaded) == list(weight_shapes())
    for name, array in weights.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_load_weights_errors(tmp_path: Path, weights: dict[str, np.ndarray]) -> None:
    with pytest.raises(ModelLoadError, match="no such weights file"):
        load_weights(tmp_path / "missing.npz")

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ModelLoadError, match=r"corrupt\.npz"):
        load_weights(corrupt)

    np.save(tmp_path / "single.npy", weights["conv1.bias"])
    with pytest.raises(ModelLoadError, match="not a zip file"):
        load_weights(tmp_path / "single.npy")

    (tmp_path / "text.npz").write_text("conv1.weight = 1\n")
    with pytest.raises(ModelLoadError, match="not a zip file"):
        load_weights(tmp_path / "text.npz")

    with pytest.raises(ModelLoadError, match="directory"):
        load_weights(tmp_path)

    renamed = dict(weights)
    renamed["conv1.kernel"] = renamed.pop("conv1.weight")
    np.savez(tmp_path / "renamed.npz", **renamed)
    with pytest.raises(ModelLoadError, match=r"renamed\.npz.*'conv1\.weight'"):
        load_weights(tmp_path / "renamed.npz")

    extra = {**weights, "head.weight": np.zeros(3, dtype=np.float32)}
    np.savez(tmp_path / "extra.npz", **extra)
    with pytest.raises(ModelLoadError, match=r"head\.weight"):
        load_weights(tmp_path / "extra.npz")

    reshaped = {**weights, "fc1.weight": weights["fc1.weight"].reshape(64, 16, 4, 24)}
    np.savez(tmp_path / "shape.npz", **reshaped)
    with pytest.raises(ModelLoadError, match=r"shape\.npz.*fc1\.weight.*shape"):
        load_weights(tmp_path / "shape.npz")

    doubles = {**weights, "conv2.bias": weights["conv2.bias"].astype(np.float64)}
    np.savez(tmp_path / "dtype.npz", **doubles)
    with pytest.raises(ModelLoadError, match="float32"):
        load_weights(tmp_path / "dtype.npz")

    nan = {**weights, "bn3.running_var": np.full(32, np.nan, dtype=np.float32)}
    np.savez(tmp_path / "nan.npz", **nan)
    with pytest.raises(ModelLoadError, match="NaN"):
        load_weights(tmp_path / "nan.npz")


def test_build_rejects_bad_weights(weights: dict[str, np.ndarray]) -> None:
    broken = {name: array for name, array in weights.items() if name != "bn5.running_mean"}
    with pytest.raises(ModelLoadError, match=r"bn5\.running_mean"):
        build_naive_model(broken)
