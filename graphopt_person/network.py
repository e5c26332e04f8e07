"""The person classifier and its naive ONNX export.

The network classifies one 3×128×48 window (NCHW) as background or person.
It is fully convolutional with valid (unpadded) convolutions and its fully
connected layers written as convolutions, so on a whole ``H×W`` frame it
yields a ``((H − 128) // 4 + 1) × ((W − 48) // 4 + 1)`` score map, one score
per window at stride 4::

    conv1 5×5 3→12 → BN → ReLU → MaxPool 2×2/2      (124×44 → 62×22)
    conv2 5×5 12→24 → BN → ReLU → MaxPool 2×2/2     (58×18 → 29×9)
    conv3 3×3 24→32 → BN → ReLU                     (27×7)
    conv4 3×3 32→32 → BN → ReLU                     (25×5)
    conv5 2×2 32→16 → BN → ReLU                     (24×4)
    fc1  as Conv 24×4 16→64 → ReLU → Dropout(0.5)   (1×1)
    fc2  as Conv 1×1 64→2  → logits (background, person)

:func:`build_naive_model` writes the graph as a framework export leaves it:
unfused BatchNormalization, Identity and Dropout nodes, and a softmax tail
that flattens to ``(-1, 2)`` through a ``Shape → Gather → Unsqueeze → Concat``
chain and reshapes back. It is the baseline every optimization pass is
measured against, so the debris is deliberate. :func:`reference_forward` is
the same network in plain NumPy, to check the graph numerically.

Weights are a mapping (or ``.npz`` file) with the PyTorch ``state_dict`` names
``conv{k}.weight``, ``conv{k}.bias``, ``bn{k}.weight``, ``bn{k}.bias``,
``bn{k}.running_mean``, ``bn{k}.running_var`` (k = 1..5), ``fc1.weight``,
``fc1.bias``, ``fc2.weight`` and ``fc2.bias``, all float32.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.errors import ModelLoadError, first_line

__all__ = [
    "BN_EPSILON",
    "DROPOUT_RATIO",
    "LAYERS",
    "NETWORK_STRIDE",
    "WINDOW",
    "Layer",
    "build_naive_model",
    "check_weights",
    "load_weights",
    "output_shape",
    "random_weights",
    "reference_forward",
    "weight_shapes",
]

logger = logging.getLogger(__name__)

BN_EPSILON = 1e-5
DROPOUT_RATIO = 0.5
NETWORK_STRIDE = 4
WINDOW = (128, 48)  # (height, width) of the window the network classifies

PRODUCER_NAME = "graphopt-naive-export"
_MIN_OPSET = 13  # Unsqueeze takes its axes as an input, Softmax works on one axis


@dataclass(frozen=True)
class Layer:
    """One convolution of the network and what follows it.

    Attributes:
        name: the weight prefix (``conv1`` … ``conv5``, ``fc1``, ``fc2``).
        in_channels, out_channels: channels in and out.
        kernel: ``(kh, kw)``; the convolution is valid (no padding), stride 1.
        batch_norm: a BatchNormalization ``bn{k}`` follows the convolution.
        relu: a ReLU follows (after the batch norm).
        max_pool: a 2×2 stride-2 max pooling follows (after the ReLU).
        dropout: a Dropout follows (an identity at inference).
    """

    name: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    batch_norm: bool = False
    relu: bool = False
    max_pool: bool = False
    dropout: bool = False

    @property
    def bn_name(self) -> str:
        return "bn" + self.name.removeprefix("conv")


LAYERS: tuple[Layer, ...] = (
    Layer("conv1", 3, 12, (5, 5), batch_norm=True, relu=True, max_pool=True),
    Layer("conv2", 12, 24, (5, 5), batch_norm=True, relu=True, max_pool=True),
    Layer("conv3", 24, 32, (3, 3), batch_norm=True, relu=True),
    Layer("conv4", 32, 32, (3, 3), batch_norm=True, relu=True),
    Layer("conv5", 32, 16, (2, 2), batch_norm=True, relu=True),
    Layer("fc1", 16, 64, (24, 4), relu=True, dropout=True),
    Layer("fc2", 64, 2, (1, 1)),
)

# Exporters put an Identity between a shared weight and one of its readers; this one gets it.
_IDENTITY_WEIGHT = "conv3.weight"


def weight_shapes() -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight the network needs, in layer order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in LAYERS:
        shapes[f"{layer.name}.weight"] = (layer.out_channels, layer.in_channels, *layer.kernel)
        shapes[f"{layer.name}.bias"] = (layer.out_channels,)
        if layer.batch_norm:
            for field in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{layer.bn_name}.{field}"] = (layer.out_channels,)
    return shapes


def output_shape(height: int, width: int) -> tuple[int, int]:
    """``(rows, cols)`` of the score map on an ``height × width`` input (0 where the input is too small)."""
    for layer in LAYERS:
        height, width = height - layer.kernel[0] + 1, width - layer.kernel[1] + 1
        if layer.max_pool:
            height, width = height // 2, width // 2
        if height < 1 or width < 1:
            return (0, 0)
    return (height, width)


# PyTorch's BatchNorm2d state_dict carries a step counter the network does not need.
_IGNORED_SUFFIX = ".num_batches_tracked"


def check_weights(weights: Mapping[str, np.ndarray], *, source: str = "the weights") -> dict[str, np.ndarray]:
    """Validated float32 copies of ``weights``, in layer order.

    Raises:
        ModelLoadError: a key is missing or unexpected, or an array has the
            wrong shape, is not float32 or holds NaN/inf; the message names
            ``source`` and the key.
    """
    expected = weight_shapes()
    missing = [name for name in expected if name not in weights]
    if missing:
        raise ModelLoadError(f"{source} lack the weight '{missing[0]}' ({len(missing)} missing in all)")
    unexpected = sorted(name for name in weights if name not in expected and not name.endswith(_IGNORED_SUFFIX))
    if unexpected:
        raise ModelLoadError(f"{source} hold the unexpected key '{unexpected[0]}', which the network does not use")
    checked: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        array = np.asarray(weights[name])
        if array.shape != shape:
            raise ModelLoadError(f"{source}: '{name}' has shape {array.shape}, but the network needs {shape}")
        if array.dtype != np.float32:
            raise ModelLoadError(f"{source}: '{name}' is {array.dtype}, but the network needs float32")
        if not np.all(np.isfinite(array)):
            raise ModelLoadError(f"{source}: '{name}' holds NaN or infinite values")
        if name.endswith(".running_var") and np.any(array < 0):
            raise ModelLoadError(f"{source}: '{name}' holds negative variances")
        checked[name] = np.array(array, dtype=np.float32, copy=True)
    return checked


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Loads and validates the network's weights from an ``.npz`` file (see :func:`check_weights`).

    Raises:
        ModelLoadError: the file is missing, unreadable or not an ``.npz``
            archive, or its weights are wrong; one sentence naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such weights file")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a directory, not a weights file")
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except OSError as error:
        raise ModelLoadError(f"{path} cannot be read: {error.strerror or error}") from error
    if magic != b"PK\x03\x04":  # np.load would take anything else for a pickle
        raise ModelLoadError(f"{path} is not an .npz weights archive (it is not a zip file)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelLoadError(f"{path} holds a single array, not an .npz archive of named weights")
        with loaded:
            arrays = {name: loaded[name] for name in loaded.files}
    except ModelLoadError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ModelLoadError(f"{path} is not a readable .npz weights archive ({first_line(error)})") from error
    return check_weights(arrays, source=str(path))


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights for tests: He-initialized convolutions and non-trivial batch-norm statistics."""
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for name, shape in weight_shapes().items():
        if name.endswith(".weight") and len(shape) == 4:
            fan_in = int(np.prod(shape[1:]))
            array = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        elif name.endswith(".running_var"):
            array = rng.uniform(0.5, 2.0, size=shape)
        elif name.endswith(".running_mean"):
            array = rng.normal(0.0, 0.2, size=shape)
        elif name.startswith("bn") and name.endswith(".weight"):
            array = rng.uniform(0.5, 1.5, size=shape)
        else:  # conv and batch-norm biases
            array = rng.normal(0.0, 0.1, size=shape)
        weights[name] = array.astype(np.float32)
    return weights


class _Exporter:
    """Accumulates nodes with exporter-style names (``/conv1/Conv``, ``/Constant_1``)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self._counts: dict[str, int] = {}

    def _unique(self, base: str) -> str:
        count = self._counts.get(base, 0)
        self._counts[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def add(self, op_type: str, inputs: list[str], scope: str = "", output: str | None = None, **attrs: Any) -> str:
        name = self._unique(f"{scope}/{op_type}")
        out = output if output is not None else f"{name}_output_0"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def constant(self, value: np.ndarray, scope: str = "") -> str:
        return self.add("Constant", [], scope, value=numpy_helper.from_array(value))


def _export_layer(ex: _Exporter, layer: Layer, x: str, initializers: list[onnx.TensorProto]) -> str:
    """One layer as a framework exporter writes it: Conv, then BatchNormalization, Relu, MaxPool, Dropout."""
    scope = f"/{layer.name}"
    weight = f"{layer.name}.weight"
    if weight == _IDENTITY_WEIGHT:
        weight = ex.add("Identity", [weight], output=f"onnx::Conv_{layer.name}_weight")
    x = ex.add("Conv", [x, weight, f"{layer.name}.bias"], scope, dilations=[1, 1], group=1,
               kernel_shape=list(layer.kernel), pads=[0, 0, 0, 0], strides=[1, 1])
    if layer.batch_norm:
        bn = layer.bn_name
        x = ex.add("BatchNormalization", [x, f"{bn}.weight", f"{bn}.bias", f"{bn}.running_mean", f"{bn}.running_var"],
                   f"/{bn}", epsilon=BN_EPSILON, momentum=0.9)
    if layer.relu:
        x = ex.add("Relu", [x])  # functional calls: /Relu, /Relu_1, ...
    if layer.max_pool:
        x = ex.add("MaxPool", [x], ceil_mode=0, kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    if layer.dropout:
        ratio = "onnx::Dropout_ratio"
        initializers.append(numpy_helper.from_array(np.array(DROPOUT_RATIO, dtype=np.float32), ratio))
        training = ex.constant(np.array(False), "/dropout")
        x = ex.add("Dropout", [x, ratio, training], "/dropout")
    return x


def _export_softmax_head(ex: _Exporter, x: str) -> None:
    """The two-class softmax over NHWC scores, reshaped as a traced ``x.reshape(-1, x.shape[-1])`` leaves it."""
    nhwc = ex.add("Transpose", [x], perm=[0, 2, 3, 1])
    # x.reshape(-1, x.shape[-1]) as traced: the last dimension read at run time.
    shape = ex.add("Shape", [nhwc])
    last = ex.add("Gather", [shape, ex.constant(np.array(3, dtype=np.int64))], axis=0)
    last = ex.add("Unsqueeze", [last, ex.constant(np.array([0], dtype=np.int64))])
    flat_shape = ex.add("Concat", [ex.constant(np.array([-1], dtype=np.int64)), last], axis=0)
    flat = ex.add("Reshape", [nhwc, flat_shape])
    probs = ex.add("Softmax", [flat], axis=-1)
    probs = ex.add("Reshape", [probs, ex.add("Shape", [nhwc])])
    ex.add("Identity", [probs], output="probabilities")


def build_naive_model(
    weights: Mapping[str, np.ndarray], *, output: str = "probabilities", opset: int = 17
) -> onnx.ModelProto:
    """The network as a framework export leaves it, with dynamic batch, height and width.

    Args:
        weights: see :func:`check_weights`.
        output: ``"probabilities"`` for ``probabilities`` ``[batch, rows,
            cols, 2]`` (softmax over background/person, NHWC), or
            ``"logits"`` for ``logits`` ``[batch, 2, rows, cols]`` straight
            from fc2.
        opset: the default-domain opset to export for (13 or newer).

    Returns:
        A model that passes ``onnx.checker.check_model(full_check=True)``;
        the same weights always give the same bytes.

    Raises:
        ModelLoadError: the weights are wrong (see :func:`check_weights`).
        ValueError: an unknown ``output`` or an unsupported ``opset``.
    """
    if output not in ("probabilities", "logits"):
        raise ValueError(f"output must be 'probabilities' or 'logits', got {output!r}")
    newest = onnx.defs.onnx_opset_version()
    if not _MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be in [{_MIN_OPSET}, {newest}], got {opset}")
    params = check_weights(weights)
    initializers = [numpy_helper.from_array(array, name) for name, array in params.items()]
    ex = _Exporter()
    x = ex.add("Identity", ["image"])
    for layer in LAYERS:
        x = _export_layer(ex, layer, x, initializers)
    if output == "logits":
        # Rename fc2's output to the graph output.
        ex.nodes[-1].output[0] = "logits"
        result = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2, "rows", "cols"])
    else:
        _export_softmax_head(ex, x)
        result = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", "rows", "cols", 2])
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    graph = helper.make_graph(ex.nodes, "person_classifier", [image], [result], initializers)
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opset_ids,
        producer_name=PRODUCER_NAME,
        producer_version="1.0",
        ir_version=helper.find_min_ir_version_for(opset_ids),
    )
    model.doc_string = "Sliding-window person classifier (window 128x48, stride 4), naive export."
    onnx.checker.check_model(model, full_check=True)
    logger.debug("built the naive %s model: %d nodes, opset %d", output, len(ex.nodes), opset)
    return model


def _conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid 2D convolution (cross-correlation) of ``(N, C, H, W)`` with ``(O, C, kh, kw)``."""
    kh, kw = weight.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, C, H', W', kh, kw)
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))  # (N, H', W', O)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) + bias[None, :, None, None]


def _max_pool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    h, w = h // 2, w // 2
    return x[:, :, : 2 * h, : 2 * w].reshape(n, c, h, 2, w, 2).max(axis=(3, 5))


def reference_forward(weights: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network's logits ``(N, 2, rows, cols)`` in plain NumPy (float64 inside, float32 out).

    Args:
        weights: see :func:`check_weights`.
        x: ``(N, 3, H, W)`` or ``(3, H, W)`` input, at least one window large.
    """
    params = {name: np.asarray(array, dtype=np.float64) for name, array in check_weights(weights).items()}
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"input must be (N, 3, H, W), got shape {x.shape}")
    if output_shape(x.shape[2], x.shape[3]) == (0, 0):
        raise ValueError(f"input {x.shape[2]}x{x.shape[3]} is smaller than the {WINDOW[0]}x{WINDOW[1]} window")
    for layer in LAYERS:
        x = _conv(x, params[f"{layer.name}.weight"], params[f"{layer.name}.bias"])
        if layer.batch_norm:
            bn = layer.bn_name
            scale = params[f"{bn}.weight"] / np.sqrt(params[f"{bn}.running_var"] + BN_EPSILON)
            shift = params[f"{bn}.bias"] - params[f"{bn}.running_mean"] * scale
            x = x * scale[None, :, None, None] + shift[None, :, None, None]
        if layer.relu:
            x = np.maximum(x, 0.0)
        if layer.max_pool:
            x = _max_pool2(x)
    return x.astype(np.float32)
