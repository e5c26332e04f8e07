"""The detector as one static graph: a raw camera frame in, a few detections out.

:func:`build_fused_model` writes every stage of the naive host pipeline
(:mod:`.naive`) into the graph around the network, from the
:class:`~.spec.DetectorSpec` alone:

1. ``frame`` is the camera's uint8 ``H×W×3`` image at its exact size; the graph
   transposes it to NCHW, casts it and normalizes it as ``(x / 255 − mean) / std``
   (the same operations, in the same order, as the host did);
2. every pyramid scale is a ``Resize`` (linear, half-pixel, the op the host
   resize imitates) feeding a copy of the network's nodes; the copies read
   the *same* initializers, so the weights are stored once;
3. the person score map of each scale is resampled onto the common grid by
   two ``MatMul`` with the host's interpolation matrices (rows of cells the
   scale does not reach are zero, so those cells are 0 as on the host) and the
   scales are stacked into the ``(S, Gh, Gw)`` volume;
4. the 3D max-pooling NMS (:func:`graphopt.blocks.max_pool_peaks`: an
   element-wise ``Max`` of neighbouring scale planes, then one ``MaxPool``
   over rows and columns), a cell is a peak when it equals the pooled
   maximum, and a fixed-size ``TopK`` picks the best ``max_detections``
   peaks, tested against the threshold; their grid cells become boxes
   through two small lookup tables;
5. greedy IoU suppression across scales (one person, one box) over those
   ``K`` candidates, in static form (:func:`graphopt.blocks.iou_suppression`:
   Cluster-NMS, exactly greedy, or Fast-NMS, as ``nms_iou_method`` says), and
   the kept rows moved to the front.

The graph returns ``scores`` ``[K]`` float32, ``boxes`` ``[K, 4]`` float32
``(x0, y0, x1, y1)``, ``cells`` ``[K, 3]`` int32 ``(scale, row, column)`` and
``num_detections`` (int32 scalar): the first ``num_detections`` rows are the
detections, best first; the other rows are zero (cells −1). No op depends on
data for its output shape (no NonZero, NonMaxSuppression or Loop), so every
tensor has a static shape and the whole graph can run on one device.
Integer index arithmetic is int32, which every execution provider and
TensorRT run natively.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from graphopt import blocks
from graphopt.backends.base import LatencyStats, time_calls_interleaved
from graphopt.backends.onnxruntime import create_session, run_session
from graphopt.blocks import GraphWriter
from graphopt.detections import FUSED_DETECTOR_OUTPUTS, Detections
from graphopt.errors import ConfigError
from graphopt.graph import declared_dims
from graphopt.latency import compare_interleaved
from graphopt.model_io import load_model
from graphopt.traffic import BoundaryTraffic, HostStage, graph_traffic
from graphopt.verify import format_dims, graph_inputs

from .grid import grid_boxes
from .naive import ScaleResampling, check_frame, inferred_output_dims, scale_resamplings
from .spec import DetectorConfig, DetectorSpec

__all__ = [
    "FRAME_INPUT",
    "OUTPUTS",
    "PERSON_CLASS",
    "VOLUME_OUTPUT",
    "FusedDetector",
    "NetworkInterface",
    "benchmark_per_frame",
    "build_fused_model",
    "first_test_frame",
    "fused_traffic",
    "naive_host_stages",
    "naive_traffic",
    "network_input_shapes",
    "network_interface",
    "time_frames_interleaved",
]

logger = logging.getLogger(__name__)

FRAME_INPUT = "frame"
OUTPUTS = FUSED_DETECTOR_OUTPUTS
VOLUME_OUTPUT = "score_volume"
PERSON_CLASS = 1  # the network's class order is (background, person)
MIN_OPSET = 13  # Unsqueeze/ReduceSum take axes as inputs; Resize has its (X, roi, scales, sizes) form

# Node-name prefix of everything the fusion adds around the network copies.
_SCOPE = "fused"


@dataclass(frozen=True)
class NetworkInterface:
    """How a classifier network is wired, as the fusion needs to know it.

    Attributes:
        input: the name of its one image input ``[N, 3, H, W]`` (float32).
        output: the name of its one score output.
        class_axis: the axis of the output that holds the classes (1 for
            ``[N, C, rows, cols]``, 3 for ``[N, rows, cols, C]``).
        classes: how many classes the output has.
        output_bytes: bytes of the output at every pyramid scale, in the spec's order.
    """

    input: str
    output: str
    class_axis: int
    classes: int
    output_bytes: tuple[int, ...]


def _onnx_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _check_network_input(model: onnx.ModelProto) -> tuple[onnx.ValueInfoProto, list[int | str | None]]:
    """The network's one ``[N, 3, H, W]`` float32 image input and its dims, after the checks that need no spec."""
    inputs = graph_inputs(model)
    dims = declared_dims(inputs[0]) if len(inputs) == 1 else None
    if dims is None or len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != 3):
        shown = "none" if dims is None else format_dims(dims)
        raise ConfigError(f"the detector fusion needs a network with one [N, 3, H, W] image input, got {shown}")
    image = inputs[0]
    if image.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ConfigError(f"the network's input '{image.name}' must be float32 for the detector fusion")
    if isinstance(dims[0], int) and dims[0] != 1:
        raise ConfigError(f"the network's input '{image.name}' has batch {dims[0]}; the detector fusion needs 1")
    if len(model.graph.output) != 1:
        raise ConfigError(
            f"the detector fusion needs a network with one score output, got {len(model.graph.output)} outputs"
        )
    opset = _onnx_opset(model)
    if opset < MIN_OPSET:
        raise ConfigError(f"the detector fusion needs opset {MIN_OPSET} or newer, the network has opset {opset}")
    if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in model.graph.node
           for attr in n.attribute):
        raise ConfigError("the detector fusion cannot copy a network with subgraphs (If/Loop/Scan)")
    return image, dims


def _score_map_at(model: onnx.ModelProto, spec: DetectorSpec, dims: Sequence[int | str | None],
                  scale: float) -> tuple[tuple[int, ...], int]:
    """The network's output shape at one pyramid scale and its class axis (1 or 3), checked against the spec."""
    height, width = spec.scaled_frame_shape(scale)
    if (isinstance(dims[2], int) and dims[2] != height) or (isinstance(dims[3], int) and dims[3] != width):
        raise ConfigError(
            f"the network's input is fixed at {dims[2]}x{dims[3]}, but the pyramid needs {height}x{width} "
            f"at scale {scale}; export it with dynamic height and width"
        )
    found = inferred_output_dims(model, height, width)
    rows, cols = spec.score_map_shape(scale)
    if found is None or len(found) != 4 or not all(isinstance(d, int) for d in found):
        raise ConfigError(
            f"the shape of the network's output at scale {scale} ({height}x{width} input) cannot be inferred"
        )
    shape = tuple(int(d) for d in found)  # type: ignore[arg-type]
    if shape[1:3] == (rows, cols) and shape[3] > PERSON_CLASS:
        return shape, 3
    if shape[2:4] == (rows, cols) and shape[1] > PERSON_CLASS:
        return shape, 1
    spec_text = f"window {spec.window_width}x{spec.window_height}, stride {spec.stride}"
    raise ConfigError(
        f"the network's output at scale {scale} is {format_dims(shape)}, but the spec ({spec_text}) "
        f"expects a {rows}x{cols} score map with classes first or last"
    )


def network_interface(model: onnx.ModelProto, spec: DetectorSpec) -> NetworkInterface:
    """Checks that ``model`` is a classifier network the spec describes, and says how it is wired.

    Raises:
        ConfigError: one sentence on what does not fit: not one ``[N, 3, H, W]``
            float32 input, fixed height and width where the pyramid needs
            others, not one output, or an output whose score map at some scale
            is not the spec's (window or stride differ).
    """
    image, dims = _check_network_input(model)
    class_axis = classes = 0
    output_bytes = []
    itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(model.graph.output[0].type.tensor_type.elem_type)).itemsize
    for scale in spec.scales:
        shape, axis = _score_map_at(model, spec, dims, scale)
        if class_axis and axis != class_axis:
            raise ConfigError("the network's output layout changes between pyramid scales")
        class_axis, classes = axis, shape[axis]
        output_bytes.append(math.prod(shape) * itemsize)
    return NetworkInterface(
        input=image.name,
        output=model.graph.output[0].name,
        class_axis=class_axis,
        classes=classes,
        output_bytes=tuple(output_bytes),
    )


def network_input_shapes(model: onnx.ModelProto, spec: DetectorSpec) -> dict[str, tuple[int, ...]]:
    """``{input: (1, 3, H, W)}`` at the spec's frame size for a network with one rank-4 input, else ``{}``.

    The shape a detector network is verified and counted at when no other is given.
    """
    inputs = graph_inputs(model)
    dims = declared_dims(inputs[0]) if len(inputs) == 1 else None
    if dims is None or len(dims) != 4:
        return {}
    return {inputs[0].name: (1, 3, spec.frame_height, spec.frame_width)}


def _copy_network(writer: GraphWriter, network: onnx.GraphProto, interface: NetworkInterface, image: str,
                  prefix: str, replaced: Mapping[str, str]) -> str:
    """Appends the network's nodes reading ``image``, their values prefixed; returns the copy's output.

    Initializers are shared, not copied; those in ``replaced`` are read under their new names.
    """
    shared = {init.name for init in network.initializer}

    def renamed(name: str) -> str:
        if not name or name in shared:
            return replaced.get(name, name)
        return image if name == interface.input else prefix + name

    for node in network.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = prefix + (node.name or node.output[0])
        copy.ClearField("input")
        copy.input.extend(renamed(name) for name in node.input)
        copy.ClearField("output")
        copy.output.extend(renamed(name) for name in node.output)
        writer.nodes.append(copy)
    return renamed(interface.output)


def _box_tables(spec: DetectorSpec) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables whose rows add up to a cell's box: ``(x0, 0, x1, 0)`` by ``scale·Gw + column``
    and ``(0, y0, 0, y1)`` by ``scale·Gh + row``, the values of :func:`~.grid.grid_boxes` exactly."""
    boxes = grid_boxes(spec)
    scales, rows, cols = spec.grid_shape
    table_x = np.zeros((scales * cols, 4), dtype=np.float32)
    table_y = np.zeros((scales * rows, 4), dtype=np.float32)
    table_x[:, [0, 2]] = boxes[:, 0, :, :][:, :, [0, 2]].reshape(-1, 2)
    table_y[:, [1, 3]] = boxes[:, :, 0, :][:, :, [1, 3]].reshape(-1, 2)
    return table_x, table_y


def build_fused_model(
    network: onnx.ModelProto,
    spec: DetectorSpec,
    *,
    threshold: float | None = None,
    max_detections: int | None = None,
    volume_output: bool = False,
    fold_normalization: bool = True,
) -> onnx.ModelProto:
    """The whole detector as one static graph (see the module docstring).

    Args:
        network: the classifier network with dynamic height and width (for
            example :func:`~.network.build_naive_model`'s probabilities model,
            cleaned up or not); it is not changed.
        spec: the detector description.
        threshold: score threshold; default ``spec.score_threshold``.
        max_detections: ``K``, the fixed number of detection rows; default
            ``spec.max_detections``.
        volume_output: also return the stacked score volume ``(S, Gh, Gw)``
            as ``score_volume``, to check the in-graph resampling.
        fold_normalization: fold the input normalization into the first
            Convs where that is exact (see :func:`graphopt.blocks.fold_normalization`);
            otherwise, or when ``False``, it runs as element-wise ops.

    Raises:
        ConfigError: the network does not fit the spec (see :func:`network_interface`).
    """
    interface = network_interface(network, spec)
    threshold = spec.score_threshold if threshold is None else float(threshold)
    k = spec.max_detections if max_detections is None else int(max_detections)
    scales, grid_rows, grid_cols = spec.grid_shape
    cells = scales * grid_rows * grid_cols
    if not 1 <= k <= cells:
        raise ConfigError(f"max_detections must be between 1 and the {cells} grid cells, got {k}")
    writer = GraphWriter(_SCOPE)

    # 1. Pre-processing: NCHW float frame, normalized as the host did unless the first Convs take it.
    x = blocks.frame_to_tensor(writer, FRAME_INPUT)
    replaced = (blocks.fold_normalization(writer, network.graph, interface.input, mean=spec.mean, std=spec.std)
                if fold_normalization else None)
    if replaced is None:
        replaced = {}
        x = blocks.normalize(writer, x, mean=spec.mean, std=spec.std)
    # 2-3. Per scale: resize, the shared network, the person map onto the grid.
    planes = [_scale_plane(writer, network.graph, interface, spec, x, number, resampling, replaced)
              for number, resampling in enumerate(scale_resamplings(spec))]
    stage = "nms"
    volume = writer.op(stage, "Concat", planes, axis=0, output=VOLUME_OUTPUT if volume_output else None)
    # 4. NMS: separable 3D max pooling, peaks at least the threshold, top-K.
    candidates, limit = blocks.max_pool_peaks(writer, volume, spec.grid_shape, spec.nms_window, threshold, stage=stage,
                                              planes=planes)
    values, indices = blocks.top_k(writer, candidates, k, stage=stage)
    # 5. Detections: scores, boxes and cells of the K rows, zero where no detection.
    _detections(writer, spec, values, indices, limit, k)
    model = _fused_model(writer, network, spec, k, volume_output, replaced)
    logger.debug("fused %d scales around %d network nodes: %d nodes", scales, len(network.graph.node),
                 len(model.graph.node))
    return model


def _scale_plane(writer: GraphWriter, network: onnx.GraphProto, interface: NetworkInterface, spec: DetectorSpec,
                 x: str, number: int, resampling: ScaleResampling, replaced: Mapping[str, str]) -> str:
    """One pyramid scale: the frame resized, the network on it, its person map resampled onto the common grid."""
    stage = f"scale{number}"
    height, width = resampling.frame_shape
    image = x
    if (height, width) != (spec.frame_height, spec.frame_width):
        image = blocks.resize(writer, stage, x, (1, 3, height, width))
    scores = _copy_network(writer, network, interface, image, f"{stage}/", replaced)
    person_class = writer.constant(stage, "person", np.array(PERSON_CLASS, np.int64))
    person = writer.op(stage, "Gather", [scores, person_class], axis=interface.class_axis)
    # Rows of cells the scale does not reach are zero, so those cells are exactly 0 as on the host.
    rows_reached = np.any(resampling.valid, axis=1).reshape(-1, 1)
    cols_reached = np.any(resampling.valid, axis=0).reshape(-1, 1)
    weights_y = np.where(rows_reached, resampling.weights_y, 0).astype(np.float32)
    weights_x = np.where(cols_reached, resampling.weights_x, 0).astype(np.float32)
    plane = writer.op(stage, "MatMul", [writer.constant(stage, "resample_y", weights_y), person])
    return writer.op(stage, "MatMul", [plane, writer.constant(stage, "resample_x", weights_x.T.copy())])


def _detections(writer: GraphWriter, spec: DetectorSpec, values: str, indices: str, limit: str, k: int) -> None:
    """The ``scores``, ``boxes``, ``cells`` and ``num_detections`` outputs from the top-K values and flat indices.

    The peaks at least the threshold go through IoU suppression across scales
    (:func:`graphopt.blocks.iou_suppression` in the form ``spec.nms_iou_method``
    names), and the kept rows move to the front.
    """
    _, grid_rows, grid_cols = spec.grid_shape
    stage = "detections"
    valid = writer.op(stage, "GreaterOrEqual", [values, limit])
    index = writer.op(stage, "Cast", [indices], to=TensorProto.INT32)

    def const32(label: str, number: int) -> str:
        return writer.constant(stage, label, np.array(number, np.int32))

    plane_size, row_size = const32("plane_size", grid_rows * grid_cols), const32("row_size", grid_cols)
    scale_index = writer.op(stage, "Div", [index, plane_size])
    rest = writer.op(stage, "Sub", [index, writer.op(stage, "Mul", [scale_index, plane_size])])
    row = writer.op(stage, "Div", [rest, row_size])
    col = writer.op(stage, "Sub", [rest, writer.op(stage, "Mul", [row, row_size])])
    table_x, table_y = _box_tables(spec)
    x_index = writer.op(stage, "Add", [writer.op(stage, "Mul", [scale_index, row_size]), col])
    y_index = writer.op(stage, "Add", [writer.op(stage, "Mul", [scale_index, const32("rows", grid_rows)]), row])
    boxes = writer.op(stage, "Add", [
        writer.op(stage, "Gather", [writer.constant(stage, "box_x", table_x), x_index], axis=0),
        writer.op(stage, "Gather", [writer.constant(stage, "box_y", table_y), y_index], axis=0),
    ])
    column_axis = writer.constant(stage, "column_axis", np.array([1], np.int64))
    columns = [writer.op(stage, "Unsqueeze", [v, column_axis]) for v in (scale_index, row, col)]
    cell = writer.op(stage, "Concat", columns, axis=1)
    keep = valid
    if spec.nms_iou_threshold < 1:  # IoU > 1 never holds: at 1 the suppression is off
        keep = blocks.iou_suppression(writer, boxes, valid, k, iou_threshold=spec.nms_iou_threshold,
                                      method=spec.nms_iou_method)
    order, kept, count = blocks.keep_first(writer, keep, k)
    zero = writer.constant(stage, "zero", np.array(0, np.float32))
    writer.op(stage, "Where", [kept, writer.op(stage, "Gather", [values, order], axis=0), zero], output="scores")
    kept_rows = writer.op(stage, "Unsqueeze", [kept, column_axis])
    writer.op(stage, "Where", [kept_rows, writer.op(stage, "Gather", [boxes, order], axis=0), zero], output="boxes")
    writer.op(stage, "Where", [kept_rows, writer.op(stage, "Gather", [cell, order], axis=0), const32("no_cell", -1)],
              output="cells")
    writer.op(stage, "Identity", [count], output="num_detections")


def _fused_model(writer: GraphWriter, network: onnx.ModelProto, spec: DetectorSpec, k: int, volume_output: bool,
                 replaced: Mapping[str, str]) -> onnx.ModelProto:
    """The model of the written graph: the frame in, the detections out, the network's metadata kept."""
    frame = helper.make_tensor_value_info(FRAME_INPUT, TensorProto.UINT8, [spec.frame_height, spec.frame_width, 3])
    outputs = [
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [k]),
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [k, 4]),
        helper.make_tensor_value_info("cells", TensorProto.INT32, [k, 3]),
        helper.make_tensor_value_info("num_detections", TensorProto.INT32, []),
    ]
    if volume_output:
        outputs.append(helper.make_tensor_value_info(VOLUME_OUTPUT, TensorProto.FLOAT, list(spec.grid_shape)))
    graph = helper.make_graph(
        writer.nodes,
        f"{network.graph.name or 'network'}_fused",
        [frame],
        outputs,
        [init for init in [*network.graph.initializer, *writer.initializers] if init.name not in replaced],
    )
    model = helper.make_model(graph, opset_imports=list(network.opset_import), ir_version=network.ir_version)
    model.producer_name, model.producer_version = network.producer_name, network.producer_version
    model.doc_string = network.doc_string
    model.functions.extend(network.functions)
    model.metadata_props.extend(network.metadata_props)
    return model


def naive_traffic(interface: NetworkInterface, spec: DetectorSpec) -> BoundaryTraffic:
    """The naive pipeline's traffic per frame: one call per scale, float32 images in, score maps out."""
    bytes_in = sum(3 * height * width * 4 for height, width in map(spec.scaled_frame_shape, spec.scales))
    return BoundaryTraffic(calls=len(spec.scales), bytes_in=bytes_in, bytes_out=sum(interface.output_bytes))


def fused_traffic(model: onnx.ModelProto) -> BoundaryTraffic:
    """One call: the graph inputs in, the graph outputs out (static shapes): :func:`graphopt.traffic.graph_traffic`."""
    return graph_traffic(model)


def naive_host_stages(spec: DetectorSpec, *, max_detections: int | None = None) -> tuple[HostStage, ...]:
    """The host-side work of the naive pipeline per frame, stage by stage.

    Matrix products count two FLOPs per multiply-add; element-wise stages one
    operation per element and step; the NMS the comparisons of its separable
    max-pooling plus two per cell (equal to the maximum, above the threshold).
    """
    height, width = spec.frame_height, spec.frame_width
    scales, grid_rows, grid_cols = spec.grid_shape
    cells = scales * grid_rows * grid_cols
    resize = resample = 0
    for resampling in scale_resamplings(spec):
        rows, cols = resampling.frame_shape
        if (rows, cols) != (height, width):
            resize += 2 * 3 * (rows * height * width + rows * width * cols)
        map_rows, map_cols = resampling.map_shape
        resample += 2 * (grid_rows * map_rows * map_cols + grid_rows * map_cols * grid_cols) + grid_rows * grid_cols
    k = spec.max_detections if max_detections is None else max_detections
    return (
        HostStage("preprocess", 4 * 3 * height * width, "uint8 HWC frame to normalized float32 NCHW"),
        HostStage("resize", resize, "bilinear pyramid resizes as matrix products"),
        HostStage("resample", resample, "score maps onto the common grid, stacked over scales"),
        HostStage("nms", cells * (sum(k - 1 for k in spec.nms_window) + 2), "3D max-pooling NMS and threshold"),
        HostStage("top_k", cells + k * math.ceil(math.log2(max(k, 2))), f"the best {k} peaks and their boxes"),
    )


class FusedDetector:
    """Runs a fused detector graph (:func:`build_fused_model`) with onnxruntime: one call per frame.

    Args:
        model: the fused model or its file.
        spec: the detector description it was built for.
        providers: onnxruntime execution providers; default CPU.

    Attributes:
        threshold: the spec's score threshold (the graph's is fixed when it is built).
        last_traffic: the :class:`~graphopt.traffic.BoundaryTraffic` of the last frame.

    Raises:
        ConfigError: the model's input is not the spec's uint8 frame or an
            output of :data:`OUTPUTS` is missing.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | onnx.ModelProto,
        spec: DetectorSpec,
        *,
        providers: Sequence[str] | None = None,
    ) -> None:
        self.model = model if isinstance(model, onnx.ModelProto) else load_model(Path(model))
        self.spec = spec
        inputs = graph_inputs(self.model)
        expected = [spec.frame_height, spec.frame_width, 3]
        if (
            len(inputs) != 1
            or inputs[0].type.tensor_type.elem_type != TensorProto.UINT8
            or declared_dims(inputs[0]) != expected
        ):
            raise ConfigError(
                f"a fused detector takes one uint8 {format_dims(expected)} frame; this model's inputs are "
                + ", ".join(f"{v.name} {format_dims(declared_dims(v) or [])}" for v in inputs)
            )
        missing = set(OUTPUTS) - {v.name for v in self.model.graph.output}
        if missing:
            raise ConfigError(f"the model is not a fused detector: it has no output {sorted(missing)[0]!r}")
        self.session = create_session(self.model, providers=tuple(providers or ("CPUExecutionProvider",)),
                                      what="the fused detector")
        self._input = inputs[0].name
        self.threshold = spec.score_threshold
        self.last_traffic = BoundaryTraffic()

    def run(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's outputs for one uint8 ``(H, W, 3)`` frame."""
        frame = check_frame(frame, self.spec)
        outputs = run_session(self.session, {self._input: frame}, what="the fused detector")
        self.last_traffic = BoundaryTraffic(
            calls=1, bytes_in=frame.nbytes, bytes_out=sum(value.nbytes for value in outputs.values())
        )
        return outputs

    def detect(self, frame: np.ndarray) -> Detections:
        """The detections of one frame, best first."""
        outputs = self.run(frame)
        n = int(outputs["num_detections"])
        return Detections(
            boxes=outputs["boxes"][:n].astype(np.float32),
            scores=outputs["scores"][:n].astype(np.float32),
            cells=outputs["cells"][:n].astype(np.int64),
        )


def time_frames_interleaved(
    sessions: Mapping[str, Any], frames: Sequence[np.ndarray], *, settle_ms: float = 0.0, warmup_frames: int = 3
) -> dict[str, list[float]]:
    """Milliseconds per frame of fused-detector sessions, interleaved frame by frame.

    Every session first runs the first ``warmup_frames`` frames untimed; then,
    frame by frame, each session runs the frame after a pause of ``settle_ms``
    (so that a variant does not inherit the previous one's heat or cache
    state), and the call alone is timed.

    Args:
        sessions: onnxruntime sessions of fused detectors, by variant name.
        frames: uint8 camera frames.
    """
    calls = {name: functools.partial(_run_frame, session) for name, session in sessions.items()}
    return time_calls_interleaved(calls, frames, warmup=frames[:warmup_frames], settle_ms=settle_ms)


def _run_frame(session: Any, frame: np.ndarray) -> object:
    return session.run(None, {FRAME_INPUT: frame})


def first_test_frame(config: DetectorConfig) -> np.ndarray:
    """The first synthetic test scene's frame: what latencies are measured on, so that NMS and top-K see peaks."""
    from .data import render_scene, scene_seeds

    return render_scene(config, scene_seeds("test", 1)[0]).image


def benchmark_per_frame(
    network: onnx.ModelProto,
    fused: onnx.ModelProto,
    config: DetectorConfig,
    *,
    warmup: int = 5,
    repeats: int = 30,
    providers: Sequence[str] | None = None,
) -> tuple[LatencyStats, LatencyStats]:
    """Time per frame of the host pipeline around ``network`` and of the ``fused`` graph, on the same frame.

    The frame is the first synthetic test scene, so that the NMS and top-K
    see real peaks. Both run on ``providers`` (onnxruntime's; default CPU),
    interleaved round by round.
    """
    from .naive import NaiveDetector

    frame = first_test_frame(config)
    naive = NaiveDetector(network, config.detector, providers=providers)
    graph = FusedDetector(fused, config.detector, providers=providers)
    # Interleaved round by round (each round's samples line up), so that the backend can judge the change.
    before, after, _ = compare_interleaved(lambda: naive.detect(frame), lambda: graph.detect(frame),
                                           warmup=warmup, repeats=repeats)
    return before, after
