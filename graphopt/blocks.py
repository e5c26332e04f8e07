"""Graph building blocks that every fused detector needs, written once and given settings by a workload.

A workload's host-stage fusion (``fuse_host_stages``) writes one static
graph: a uint8 camera frame in, detections out. The pieces that do not
depend on the detector family live here, each a function that appends nodes
to a :class:`GraphWriter` and returns the name of its result:

* :func:`frame_to_tensor` and :func:`normalize` — the uint8 ``H×W×3`` frame
  as a float ``1×3×H×W`` tensor, normalized ``(x / 255 − mean) / std``
  unless the network's first Convs take raw pixels (:func:`fold_normalization`);
* :func:`resize` — a bilinear ``Resize`` of the kind TensorRT's parser takes;
* :func:`max_pool_peaks` and :func:`top_k` — static non-maximum suppression
  by separable max-pooling over a score volume, a threshold, and a
  fixed-size ``TopK`` (no NonZero, NonMaxSuppression or Loop);
* :func:`iou_suppression` and :func:`keep_first` — greedy IoU suppression of
  the ``K`` candidates in static form (see :mod:`graphopt.nms`, its NumPy
  reference) and the kept rows moved to the front;

the log-odds score head is the ``nms_on_logits`` pass
(:mod:`graphopt.passes.nms_logits`), and the camera geometry is
:mod:`graphopt.camera`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .graph import attribute
from .nms import METHODS
from .passes.nms_logits import pin_float32

__all__ = [
    "GraphWriter",
    "fold_normalization",
    "frame_to_tensor",
    "iou_suppression",
    "keep_first",
    "max_pool_peaks",
    "normalize",
    "resize",
    "top_k",
]


class GraphWriter:
    """Nodes and initializers of a graph being written, named ``SCOPE/stage/label`` and unique."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def _unique(self, base: str) -> str:
        name, n = base, 1
        while name in self._names:
            name, n = f"{base}_{n}", n + 1
        self._names.add(name)
        return name

    def constant(self, stage: str, label: str, value: np.ndarray) -> str:
        """An initializer holding ``value``; returns its name."""
        name = self._unique(f"{self.scope}/{stage}/{label}")
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, stage: str, op_type: str, inputs: Sequence[str], *, output: str | None = None, **attrs: Any) -> str:
        """A node of ``op_type`` reading ``inputs``; returns its (first) output's name."""
        name = self._unique(f"{self.scope}/{stage}/{op_type}")
        out = output if output is not None else name
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, **attrs))
        return out


def frame_to_tensor(writer: GraphWriter, frame: str, *, stage: str = "preprocess") -> str:
    """The uint8 ``H×W×3`` ``frame`` as float ``1×3×H×W`` (not normalized: see :func:`normalize`).

    The Cast comes first: TensorRT has uint8 only at a network's inputs and
    outputs and into a Cast.
    """
    x = writer.op(stage, "Cast", [frame], to=TensorProto.FLOAT)
    x = writer.op(stage, "Transpose", [x], perm=[2, 0, 1])
    return writer.op(stage, "Unsqueeze", [x, writer.constant(stage, "batch_axis", np.array([0], np.int64))])


def normalize(writer: GraphWriter, x: str, *, mean: Sequence[float], std: Sequence[float],
              stage: str = "preprocess", full_scale: float = 255) -> str:
    """``(x / full_scale − mean) / std`` per channel of a ``1×3×H×W`` tensor of pixel values.

    A step that changes nothing (a scale of 1, a zero mean, a unit std) is left out.
    """
    if full_scale != 1:
        x = writer.op(stage, "Div", [x, writer.constant(stage, "full_scale", np.array(full_scale, np.float32))])
    channel = (1, 3, 1, 1)
    mean_value, std_value = (np.asarray(v, np.float32).reshape(channel) for v in (mean, std))
    if np.any(mean_value != 0):
        x = writer.op(stage, "Sub", [x, writer.constant(stage, "mean", mean_value)])
    if np.any(std_value != 1):
        x = writer.op(stage, "Div", [x, writer.constant(stage, "std", std_value)])
    return x


def _takes_raw_pixels(node: onnx.NodeProto, image: str, network: onnx.GraphProto, readers: Sequence[onnx.NodeProto],
                      constants: Mapping[str, onnx.TensorProto]) -> bool:
    """Whether ``node`` is an unpadded, ungrouped Conv on ``image`` with constant weights nobody else reads."""
    return (
        node.op_type == "Conv"
        and node.domain in ("", "ai.onnx")
        and list(node.input).index(image) == 0
        and not any(attribute(node, "pads", []))
        and attribute(node, "auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
        and attribute(node, "group", 1) == 1
        and len(node.input) == 3
        and all(name in constants for name in node.input[1:])
        and not any(name in other.input for name in node.input[1:] for other in network.node if other not in readers)
    )


def fold_normalization(writer: GraphWriter, network: onnx.GraphProto, image: str, *, mean: Sequence[float],
                       std: Sequence[float], stage: str = "preprocess") -> dict[str, str] | None:
    """Folds ``(x / 255 − mean) / std`` into the Convs that read ``image``, if they allow it exactly.

    Normalization is a per-channel affine map ``x·a + c``. A bilinear resize
    commutes with it (its weights sum to one), and a Conv without padding
    computes ``W * (x·a + c) + b = (W·a) * x + (b + Σ W·c)``, so the first
    Conv can take the raw pixel values and three element-wise passes over
    the frame disappear. Returns the initializer renames (the folded weights
    and biases are new constants of ``writer``), or ``None`` when some reader
    of the image is not such a Conv (padding would see zeros where the
    normalized image has ``c``), and normalization stays in the graph.
    """
    readers = [node for node in network.node if image in node.input]
    constants = {init.name: init for init in network.initializer}
    if not all(_takes_raw_pixels(node, image, network, readers, constants) for node in readers):
        return None
    scale = 1 / (255 * np.asarray(std, np.float64))
    shift = -np.asarray(mean, np.float64) / np.asarray(std, np.float64)
    replaced: dict[str, str] = {}
    for node in readers:
        weight = numpy_helper.to_array(constants[node.input[1]]).astype(np.float64)
        bias = numpy_helper.to_array(constants[node.input[2]]).astype(np.float64)
        if weight.ndim != 4 or weight.shape[1] != 3:
            return None
        replaced[node.input[1]] = writer.constant(
            stage, f"{node.input[1]}.raw_pixels", (weight * scale[None, :, None, None]).astype(np.float32)
        )
        folded_bias = bias + np.einsum("oihw,i->o", weight, shift)
        replaced[node.input[2]] = writer.constant(stage, f"{node.input[2]}.raw_pixels", folded_bias.astype(np.float32))
    return replaced


def resize(writer: GraphWriter, stage: str, x: str, sizes: Sequence[int]) -> str:
    """``x`` resized to ``sizes`` (all axes) by bilinear interpolation with half-pixel centres, no antialiasing."""
    target = writer.constant(stage, "sizes", np.array(list(sizes), np.int64))
    return writer.op(stage, "Resize", [x, "", "", target], mode="linear", coordinate_transformation_mode="half_pixel")


def max_pool_peaks(writer: GraphWriter, volume: str, shape: tuple[int, int, int], window: tuple[int, int, int],
                   threshold: float, *, stage: str = "nms", planes: Sequence[str] = ()) -> tuple[str, str]:
    """Static non-maximum suppression on a ``(S, H, W)`` volume of probabilities by max-pooling.

    A cell is a peak when it equals its ``window``'s maximum (the maximum is
    never below the cell itself): ``value ≥ pooled``. The threshold is not
    applied to the grid: peaks below it rank below every peak above it, so the
    caller tests the ``K`` values :func:`top_k` picks against the returned
    threshold (``values ≥ threshold``) and gets the same detections for one
    element-wise pass less over the volume.

    Args:
        planes: the volume's ``S`` planes ``(1, H, W)``, when the caller has
            them apart (``volume`` is their concatenation): the maximum over
            the scale axis is then taken plane by plane, before the spatial
            one, and the pooled volume is never split.

    Returns:
        The flattened volume ``(S·H·W,)`` with every cell that is not a peak
        set to 0 (−inf for a threshold of 0 or less: probabilities are never
        negative, so a 0 ranks below every peak a positive threshold keeps),
        what :func:`top_k` picks from; and the name of the threshold's scalar
        constant (for the validity test of the picked values).
    """
    scales, rows, cols = shape
    ks, ky, kx = window
    # The window is separable and a maximum exact in any order: the scale axis first, as an element-wise Max
    # of neighbouring planes (a MaxPool across a handful of planes runs as one long single-threaded row in
    # onnxruntime), then rows and columns by one MaxPool over the S planes as a batch (one pass, not two).
    pooled = volume
    if ks > 1 and scales > 1:
        if len(planes) != scales:
            writer.op(stage, "Split", [volume, writer.constant(stage, "split", np.ones(scales, np.int64))], axis=0)
            split = writer.nodes[-1]
            planes = [split.output[0], *(f"{split.output[0]}_{s}" for s in range(1, scales))]
            split.output.extend(planes[1:])
        reach = ks // 2
        pooled = writer.op(stage, "Concat", [
            writer.op(stage, "Max", list(planes[max(0, s - reach):s + reach + 1])) for s in range(scales)
        ], axis=0)
    if ky > 1 or kx > 1:
        pooled = writer.op(stage, "Reshape", [pooled, writer.constant(stage, "planes",
                                                                      np.array([scales, 1, rows, cols]))])
        pooled = writer.op(stage, "MaxPool", [pooled], kernel_shape=[ky, kx], pads=[ky // 2, kx // 2, ky // 2, kx // 2])
    flat_shape = writer.constant(stage, "flat", np.array([scales * rows * cols], np.int64))
    pooled = writer.op(stage, "Reshape", [pooled, flat_shape])
    flat = writer.op(stage, "Reshape", [volume, flat_shape])
    limit = writer.constant(stage, "threshold", np.array(threshold, np.float32))
    peak = writer.op(stage, "GreaterOrEqual", [flat, pooled])
    if threshold > 0:
        # value × [peak]: three cheap passes where a Where over the volume costs more than all three in onnxruntime.
        return writer.op(stage, "Mul", [flat, writer.op(stage, "Cast", [peak], to=TensorProto.FLOAT)]), limit
    not_a_peak = writer.constant(stage, "not_a_peak", np.array(-np.inf, np.float32))
    return writer.op(stage, "Where", [peak, flat, not_a_peak]), limit


def top_k(writer: GraphWriter, candidates: str, k: int, *, stage: str = "nms",
          largest: bool = True) -> tuple[str, str]:
    """The ``k`` largest (or smallest) of a 1-D ``candidates``, sorted, and their indices (a fixed-size ``TopK``)."""
    top = writer.op(stage, "TopK", [candidates, writer.constant(stage, "k", np.array([k], np.int64))],
                    axis=-1, largest=int(largest), sorted=1)
    writer.nodes[-1].output.append(top + "_indices")
    return top, top + "_indices"


def _pinned(writer: GraphWriter, start: int) -> None:
    """Pins the nodes written since ``start`` to float32 (box geometry: float16 would round the coordinates)."""
    for node in writer.nodes[start:]:
        pin_float32(node)


def _pairwise_overlap(writer: GraphWriter, boxes: str, k: int, *, iou_threshold: float, stage: str) -> str:
    """``[k, k]`` bool: ``intersection > t · union`` of every pair of the ``[k, 4]`` ``boxes``."""

    def coordinate(i: int) -> tuple[str, str]:
        """Coordinate ``i`` of every box as a ``[k, 1]`` column and a ``[1, k]`` row."""
        column = writer.op(stage, "Gather", [boxes, writer.constant(stage, "coordinate", np.array([i], np.int64))],
                           axis=1)
        return column, writer.op(stage, "Reshape", [column, writer.constant(stage, "row", np.array([1, k], np.int64))])

    (x0, x0r), (y0, y0r), (x1, x1r), (y1, y1r) = (coordinate(i) for i in range(4))

    def extent(low: tuple[str, str], high: tuple[str, str]) -> str:
        """``max(min(high_i, high_j) − max(low_i, low_j), 0)``, ``[k, k]``."""
        return writer.op(stage, "Relu", [writer.op(stage, "Sub", [writer.op(stage, "Min", list(high)),
                                                                  writer.op(stage, "Max", list(low))])])

    intersection = writer.op(stage, "Mul", [extent((x0, x0r), (x1, x1r)), extent((y0, y0r), (y1, y1r))])
    area = writer.op(stage, "Mul", [writer.op(stage, "Relu", [writer.op(stage, "Sub", [x1, x0])]),
                                    writer.op(stage, "Relu", [writer.op(stage, "Sub", [y1, y0])])])
    area_row = writer.op(stage, "Reshape", [area, writer.constant(stage, "row", np.array([1, k], np.int64))])
    union = writer.op(stage, "Sub", [writer.op(stage, "Add", [area, area_row]), intersection])
    limit = writer.op(stage, "Mul", [union, writer.constant(stage, "iou_threshold", np.array(iou_threshold,
                                                                                             np.float32))])
    return writer.op(stage, "Greater", [intersection, limit])


def iou_suppression(writer: GraphWriter, boxes: str, valid: str, k: int, *, iou_threshold: float,
                    method: str = "cluster", stage: str = "iou", classes: str | None = None) -> str:
    """Greedy IoU suppression of ``k`` candidate boxes, best first, with static shapes only.

    ``boxes`` ``[k, 4]`` float32 ``(x0, y0, x1, y1)`` in the order of the
    ``TopK`` that picked them (its order is the tie order); ``valid`` ``[k]``
    bool marks the rows that are candidates at all. The pairwise overlap
    ``IoU(i, j) > t`` is computed as ``intersection > t · union``, restricted
    to valid ``j < i``; then

    * ``method="cluster"``: ``keep_i = no kept j < i overlaps i``, iterated
      ``k − 1`` times from "all valid kept" (Cluster-NMS): row ``i`` is final
      after ``i`` iterations, so the result is greedy NMS exactly;
    * ``method="fast"``: one such step (Fast-NMS): a suppressed box still
      suppresses, so it may drop boxes greedy keeps.

    With ``classes`` (``[k]`` labels of any integer type), only boxes of the
    same class overlap: class-aware suppression without moving the boxes
    apart by a class offset (which would cost float32 precision in the IoU).

    Scores are not read: only the order matters. Every node is pinned to
    float32, like the rest of a detection head under ``convert_to_fp16``.

    Returns:
        The ``[k]`` bool keep mask (a subset of ``valid``).
    """
    if method not in METHODS:
        raise ValueError(f"unknown IoU suppression method {method!r}; expected one of {', '.join(METHODS)}")
    start = len(writer.nodes)

    overlap = _pairwise_overlap(writer, boxes, k, iou_threshold=iou_threshold, stage=stage)
    if classes is not None:
        label_column = writer.op(stage, "Reshape", [classes, writer.constant(stage, "column",
                                                                             np.array([k, 1], np.int64))])
        label_row = writer.op(stage, "Reshape", [classes, writer.constant(stage, "row", np.array([1, k], np.int64))])
        overlap = writer.op(stage, "And", [overlap, writer.op(stage, "Equal", [label_column, label_row])])
    earlier = writer.constant(stage, "earlier", np.tril(np.ones((k, k), dtype=bool), k=-1))
    valid_row = writer.op(stage, "Reshape", [valid, writer.constant(stage, "row", np.array([1, k], np.int64))])
    suppressor = writer.op(stage, "Cast", [writer.op(stage, "And", [writer.op(stage, "And", [overlap, earlier]),
                                                                    valid_row])], to=TensorProto.FLOAT)
    one = writer.constant(stage, "one", np.array([1], np.float32))
    kept = writer.op(stage, "Cast", [writer.op(stage, "Reshape", [valid, writer.constant(
        stage, "column", np.array([k, 1], np.int64))])], to=TensorProto.FLOAT)
    # One step: kept_i = max(1 − Σ_j S_ij·kept_j, 0), i.e. 1 when no kept box suppresses i, else 0 (the
    # counts are small integers, exact in float32); one Gemm and one Relu, no casts inside the loop.
    for _ in range(max(k - 1, 1) if method == "cluster" else 1):
        kept = writer.op(stage, "Relu", [writer.op(stage, "Gemm", [suppressor, kept, one], alpha=-1.0, beta=1.0)])
    free = writer.op(stage, "Reshape", [kept, writer.constant(stage, "flat", np.array([k], np.int64))])
    keep = writer.op(stage, "And", [writer.op(stage, "Greater", [free, writer.constant(
        stage, "half", np.array(0.5, np.float32))]), valid])
    _pinned(writer, start)
    return keep


def keep_first(writer: GraphWriter, keep: str, k: int, *, stage: str = "compact") -> tuple[str, str, str]:
    """The rows ``keep`` marks moved to the front, in their order, with static shapes.

    Returns:
        ``order`` (``[k]`` int64: gather rows by it), ``kept`` (``[k]`` bool:
        which rows of the gathered result are kept, a prefix) and ``count``
        (int32 scalar: how many).
    """
    start = len(writer.nodes)
    flag = writer.op(stage, "Cast", [keep], to=TensorProto.FLOAT)
    # Sort key: the row index, plus k for rows not kept; distinct, so the order is fixed.
    dropped = writer.op(stage, "Mul", [writer.op(stage, "Sub", [writer.constant(stage, "one", np.array(1, np.float32)),
                                                                 flag]),
                                       writer.constant(stage, "k", np.array(k, np.float32))])
    key = writer.op(stage, "Add", [dropped, writer.constant(stage, "row", np.arange(k, dtype=np.float32))])
    _, order = top_k(writer, key, k, stage=stage, largest=False)
    kept = writer.op(stage, "Gather", [keep, order], axis=0)
    count = writer.op(stage, "ReduceSum", [flag], keepdims=0)
    count = writer.op(stage, "Cast", [count], to=TensorProto.INT32)
    _pinned(writer, start)
    return order, kept, count
