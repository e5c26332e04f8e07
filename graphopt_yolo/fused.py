"""A YOLO-family detector as one static graph: the camera's uint8 frame in, detections out.

:func:`build_fused_model` writes the host pipeline (:mod:`graphopt_yolo.host`)
around the network, op for op:

1. ``frame`` uint8 ``H×W×3`` → ``Cast`` → NCHW → ``Resize`` (linear,
   half-pixel) → ``Pad`` (the letterbox) (→ ``Gather`` of the channel planes
   for a BGR network; with row cropping, the ``Slice`` of the band) →
   normalization (:func:`graphopt.blocks.normalize`);
2. the network's nodes, reading that tensor (opset raised to 17 where older,
   for the blocks' operator forms);
3. decode: the output as a ``[N, ·]`` table, the grid/stride decode where the
   export leaves it out (YOLOX), ``(cx, cy, w, h)`` → corners, the best class
   (``ArgMax`` + ``GatherElements``), the rank of :mod:`graphopt_yolo.decode`;
4. threshold and a fixed-size ``TopK`` of ``pre_nms_top_k`` candidates;
5. NMS, static (:func:`graphopt.blocks.iou_suppression`: Cluster-NMS, greedy
   exactly, or Fast-NMS; class-aware through its ``classes`` input) or ONNX
   ``NonMaxSuppression`` (fed each candidate's rank, so that its order is the
   ``TopK``'s, then scattered back to a fixed-size mask); the kept rows first
   (:func:`graphopt.blocks.keep_first`), ``max_detections`` of them;
6. the probability of the kept rows only, boxes back in frame pixels, clipped.

Where the export's score channels come out of Sigmoid nodes, the decode reads
the logits under them instead (:mod:`graphopt_yolo.logits`; the config's
``logit_scores``): threshold, ranking, top-K and the NMS order run on logits,
and the sigmoid is applied to the kept rows only. Every node from the decode
on is pinned to float32 (:func:`graphopt.passes.nms_logits.pin_float32`), so
that ``--fp16`` converts the network and leaves the head alone.

Outputs (:data:`graphopt.detections.CLASSED_DETECTOR_OUTPUTS`): ``scores``
``[K]``, ``boxes`` ``[K, 4]``, ``classes`` ``[K]`` int32 (−1 past the count)
and ``num_detections`` (int32 scalar); rows past the count are zero.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from graphopt import blocks
from graphopt.backends.onnxruntime import create_session, run_session
from graphopt.blocks import GraphWriter
from graphopt.detections import CLASSED_DETECTOR_OUTPUTS, Detections
from graphopt.graph import prune_dead
from graphopt.passes.nms_logits import pin_float32

from .config import YoloConfig
from .decode import placement, score_form
from .host import CPU, check_frame
from .layout import Layout, find_layout, grid_and_strides
from .logits import LogitOutput, logit_output

__all__ = [
    "FRAME_INPUT",
    "NETWORK_INPUT",
    "OPSET",
    "PREDICTIONS",
    "FusedDetector",
    "build_fused_model",
    "decode",
    "fused_detector",
    "fused_rows",
    "network_of",
    "score_logits",
]

logger = logging.getLogger(__name__)

FRAME_INPUT = "frame"
#: The values between the fused graph's three parts: the network's input (after the letterbox and, with row
#: cropping, the band's slice) and the output its decode reads.
NETWORK_INPUT = "yolo/network_input"
PREDICTIONS = "yolo/predictions"
#: Metadata of a fused graph: the network's input size (``h,w``) and the band of rows it reads (``top,bottom``).
INPUT_SIZE_KEY = "graphopt.yolo.input_size"
ROWS_KEY = "graphopt.yolo.rows"
OPSET = 17
_SCOPE = "yolo"
_OUTPUT_TYPES = {
    "scores": lambda k: (TensorProto.FLOAT, [k]),
    "boxes": lambda k: (TensorProto.FLOAT, [k, 4]),
    "classes": lambda k: (TensorProto.INT32, [k]),
    "num_detections": lambda k: (TensorProto.INT32, []),
}


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _f32(value: float | list[float] | np.ndarray | np.floating) -> np.ndarray:
    return np.asarray(value, np.float32)


def preprocess(writer: GraphWriter, config: YoloConfig, layout: Layout) -> str:
    """The frame as the network's normalized ``1×3×h×w`` input."""
    stage = "preprocess"
    x = writer.op(stage, "Cast", [FRAME_INPUT], to=TensorProto.FLOAT)
    x = writer.op(stage, "Transpose", [x], perm=[2, 0, 1])
    x = writer.op(stage, "Unsqueeze", [x, writer.constant(stage, "batch_axis", _i64(0))])
    place = placement(config, layout.input_hw)
    if place.resized_hw != (config.frame_height, config.frame_width):
        x = blocks.resize(writer, stage, x, (1, 3, *place.resized_hw))
    if any(place.pads):
        top, left, bottom, right = place.pads
        x = writer.op(stage, "Pad", [x, writer.constant(stage, "pads", _i64(0, 0, top, left, 0, 0, bottom, right)),
                                     writer.constant(stage, "pad_value", _f32(config.pad_value))], mode="constant")
    if config.channels == "bgr":  # three whole planes swapped, after the resize: the same numbers, less to move
        x = writer.op(stage, "Gather", [x, writer.constant(stage, "bgr", _i64(2, 1, 0))], axis=1)
    if layout.rows is not None:  # row cropping: the band the network reads
        x = writer.op(stage, "Slice", [x, writer.constant(stage, "band_top", _i64(layout.rows[0])),
                                       writer.constant(stage, "band_bottom", _i64(layout.rows[1])),
                                       writer.constant(stage, "rows_axis", _i64(2))])
    return blocks.normalize(writer, x, mean=config.mean, std=config.std, full_scale=config.scale, stage=stage)


def decode(writer: GraphWriter, output: str, layout: Layout) -> tuple[str, str, str]:
    """``(boxes [N, 4], rank [N], classes [N] int64)``: :func:`graphopt_yolo.decode.decode` as nodes."""
    stage = "decode"
    n, c = layout.predictions, layout.classes
    if layout.objectness:
        table = writer.op(stage, "Reshape", [output, writer.constant(stage, "table", _i64(n, 5 + c))])
    else:
        table = writer.op(stage, "Reshape", [output, writer.constant(stage, "table", _i64(4 + c, n))])
        table = writer.op(stage, "Transpose", [table], perm=[1, 0])

    axis = writer.constant(stage, "axis", _i64(1))

    def columns(start: int, end: int) -> str:
        bounds = [writer.constant(stage, "start", _i64(start)), writer.constant(stage, "end", _i64(end))]
        return writer.op(stage, "Slice", [table, *bounds, axis])

    xy, wh = columns(0, 2), columns(2, 4)
    if layout.decoded:
        half = writer.op(stage, "Mul", [wh, writer.constant(stage, "half", _f32(0.5))])
    else:  # exp(t)·stride·0.5 as exp(t)·(stride/2): the same float32 numbers (powers of two), one Mul
        grid, stride = grid_and_strides(*layout.network_hw)
        xy = writer.op(stage, "Mul", [writer.op(stage, "Add", [xy, writer.constant(stage, "grid", grid)]),
                                      writer.constant(stage, "stride", stride)])
        half_stride = writer.constant(stage, "half_stride", stride * np.float32(0.5))
        half = writer.op(stage, "Mul", [writer.op(stage, "Exp", [wh]), half_stride])
    boxes = writer.op(stage, "Concat", [writer.op(stage, "Sub", [xy, half]), writer.op(stage, "Add", [xy, half])],
                      axis=1)
    first_score = 5 if layout.objectness else 4
    scores = columns(first_score, first_score + c)
    labels = writer.op(stage, "ArgMax", [scores], axis=1, keepdims=1)
    best = writer.op(stage, "GatherElements", [scores, labels], axis=1)
    flat = writer.constant(stage, "flat", _i64(n))
    labels = writer.op(stage, "Reshape", [labels, flat])
    best = writer.op(stage, "Reshape", [best, flat])
    if not layout.objectness:
        return boxes, best, labels
    objectness = writer.op(stage, "Reshape", [columns(4, 5), flat])
    if layout.probabilities:
        return boxes, writer.op(stage, "Mul", [objectness, best]), labels

    def log_sigmoid(x: str) -> str:
        return writer.op(stage, "Neg", [writer.op(stage, "Softplus", [writer.op(stage, "Neg", [x])])])

    return boxes, writer.op(stage, "Add", [log_sigmoid(objectness), log_sigmoid(best)]), labels


def _candidates(writer: GraphWriter, config: YoloConfig, boxes: str, rank: str, labels: str,
                threshold: np.float32) -> tuple[str, str, str, str]:
    """The best ``pre_nms_top_k``: boxes, rank, classes and the mask of those that reach the threshold."""
    stage = "select"
    limit = writer.constant(stage, "threshold", _f32(threshold))
    passing = writer.op(stage, "GreaterOrEqual", [rank, limit])
    masked = writer.op(stage, "Where", [passing, rank, writer.constant(stage, "below", _f32(-np.inf))])
    top, order = blocks.top_k(writer, masked, config.pre_nms_top_k, stage=stage)
    valid = writer.op(stage, "GreaterOrEqual", [top, limit])
    picked_boxes = writer.op(stage, "Gather", [boxes, order], axis=0)
    picked_labels = writer.op(stage, "Gather", [labels, order], axis=0)
    return picked_boxes, top, picked_labels, valid


def onnx_nms(writer: GraphWriter, config: YoloConfig, layout: Layout, boxes: str, labels: str, valid: str) -> str:
    """The ``[k]`` keep mask of ONNX ``NonMaxSuppression`` over the ``k`` candidates, in their ``TopK`` order.

    Its scores are the candidates' ranks ``k − i`` (so its order is exactly the ``TopK``'s, ties included),
    one row per class for class-aware NMS (zero, below its score threshold, in the other classes' rows).
    """
    stage, k = "nms", config.pre_nms_top_k
    order_score = writer.constant(stage, "order_score", np.arange(k, 0, -1, dtype=np.float32))
    zero = writer.constant(stage, "zero", _f32(0))
    if config.class_agnostic:
        member = writer.op(stage, "Unsqueeze", [valid, writer.constant(stage, "class_axis", _i64(0))])
    else:
        row = writer.op(stage, "Unsqueeze", [labels, writer.constant(stage, "class_axis", _i64(0))])
        member = writer.op(stage, "Equal", [row, writer.constant(stage, "class_ids",
                                                                 np.arange(layout.classes, dtype=np.int64)[:, None])])
        member = writer.op(stage, "And", [member, valid])
    scores = writer.op(stage, "Where", [member, order_score, zero])
    scores = writer.op(stage, "Unsqueeze", [scores, writer.constant(stage, "batch", _i64(0))])
    batch_boxes = writer.op(stage, "Unsqueeze", [boxes, writer.constant(stage, "batch", _i64(0))])
    selected = writer.op(stage, "NonMaxSuppression", [
        batch_boxes, scores, writer.constant(stage, "max_boxes", _i64(k)),
        writer.constant(stage, "iou_threshold", _f32([config.iou_threshold])),
        writer.constant(stage, "score_threshold", _f32([0.5]))])
    index = writer.op(stage, "Gather", [selected, writer.constant(stage, "box_column", _i64(2))], axis=1)
    index = writer.op(stage, "Reshape", [index, writer.constant(stage, "flat", _i64(-1))])
    ones = writer.op(stage, "Cast", [writer.op(stage, "GreaterOrEqual", [index, writer.constant(
        stage, "first", _i64(0))])], to=TensorProto.FLOAT)
    marked = writer.op(stage, "ScatterElements", [writer.constant(stage, "none", np.zeros(k, np.float32)), index, ones],
                       axis=0)
    return writer.op(stage, "Greater", [marked, writer.constant(stage, "half", _f32(0.5))])


def _outputs(writer: GraphWriter, config: YoloConfig, layout: Layout, keep: str, boxes: str, rank: str,
             labels: str, final_op: str | None) -> None:
    """The kept rows first, ``max_detections`` of them, as the graph's outputs."""
    stage, k = "outputs", config.max_detections
    order, kept, count = blocks.keep_first(writer, keep, config.pre_nms_top_k)

    def first(name: str) -> str:
        return writer.op(stage, "Slice", [name, writer.constant(stage, "start", _i64(0)),
                                          writer.constant(stage, "end", _i64(k))])

    order, kept = first(order), first(kept)
    scores = writer.op(stage, "Gather", [rank, order], axis=0)
    if final_op is not None:
        scores = writer.op(stage, final_op, [scores])
    zero = writer.constant(stage, "zero", _f32(0))
    writer.op(stage, "Where", [kept, scores, zero], output="scores")
    place = placement(config, layout.input_hw)
    picked = writer.op(stage, "Gather", [boxes, order], axis=0)
    mapped = writer.op(stage, "Div", [writer.op(stage, "Sub", [picked, writer.constant(stage, "offset",
                                                                                        place.box_offset(layout.row_offset))]),
                                      writer.constant(stage, "gain", place.box_gain())])
    frame_limit = _f32([config.frame_width, config.frame_height] * 2)
    clipped = writer.op(stage, "Min", [writer.op(stage, "Max", [mapped, zero]),
                                       writer.constant(stage, "frame", frame_limit)])
    row_kept = writer.op(stage, "Unsqueeze", [kept, writer.constant(stage, "column", _i64(1))])
    writer.op(stage, "Where", [row_kept, clipped, zero], output="boxes")
    classes = writer.op(stage, "Cast", [writer.op(stage, "Gather", [labels, order], axis=0)], to=TensorProto.INT32)
    writer.op(stage, "Where", [kept, classes, writer.constant(stage, "no_class", np.array(-1, np.int32))],
              output="classes")
    writer.op(stage, "Min", [count, writer.constant(stage, "most", np.array(k, np.int32))], output="num_detections")


def _network(network: onnx.ModelProto) -> onnx.ModelProto:
    """The network at opset :data:`OPSET` at least (the blocks write opset-13+ operator forms)."""
    opset = next((o.version for o in network.opset_import if o.domain in ("", "ai.onnx")), 0)
    return network if opset >= OPSET else onnx.version_converter.convert_version(network, OPSET)


def score_logits(network: onnx.ModelProto, config: YoloConfig, layout: Layout) -> LogitOutput:
    """The logit twin of the network's output the fused graph decodes, or why it decodes the output itself."""
    if not config.logit_scores:
        return LogitOutput((), None, "logit_scores = false in the config")
    return logit_output(network, layout)


def build_fused_model(network: onnx.ModelProto, config: YoloConfig, layout: Layout | None = None) -> onnx.ModelProto:
    """The detector of ``config`` around ``network`` as one static graph (see the module docstring)."""
    return fused_detector(network, config, layout)[0]


def fused_detector(network: onnx.ModelProto, config: YoloConfig,
                   layout: Layout | None = None) -> tuple[onnx.ModelProto, LogitOutput]:
    """The fused graph, and the logit twin its decode reads (or why it reads the export's probabilities).

    A ``layout`` with ``rows`` (:meth:`~graphopt_yolo.layout.Layout.cropped`) writes the row-cropped graph.
    """
    from .crop import crop_network

    layout = layout or find_layout(network, config)
    network = _network(crop_network(network, layout))
    logits = score_logits(network, config, layout)
    writer = GraphWriter(_SCOPE)
    image = preprocess(writer, config, layout)
    for node in [*network.graph.node, *logits.nodes]:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [image if name == layout.input else name for name in node.input]
        writer.nodes.append(copy)
    head = len(writer.nodes)
    scored = dataclasses.replace(layout, probabilities=False) if logits.found else layout
    predictions = logits.name or layout.output
    boxes, rank, labels = decode(writer, predictions, scored)
    form = score_form(scored, config.score_threshold)
    boxes, rank, labels, valid = _candidates(writer, config, boxes, rank, labels, form.threshold)
    if config.nms == "onnx":
        keep = onnx_nms(writer, config, layout, boxes, labels, valid)
    else:
        keep = blocks.iou_suppression(writer, boxes, valid, config.pre_nms_top_k, iou_threshold=config.iou_threshold,
                                      method=config.nms_method, classes=None if config.class_agnostic else labels)
    _outputs(writer, config, layout, keep, boxes, rank, labels, form.final_op)
    for node in writer.nodes[head:]:
        pin_float32(node)  # the head: thresholds, ranks, NMS and the kept rows' sigmoid stay float32
    _rename(writer.nodes, {image: NETWORK_INPUT, predictions: PREDICTIONS})
    k = config.max_detections
    graph = helper.make_graph(
        writer.nodes, f"{network.graph.name or 'yolo'}_fused",
        [helper.make_tensor_value_info(FRAME_INPUT, TensorProto.UINT8, [config.frame_height, config.frame_width, 3])],
        [helper.make_tensor_value_info(name, *_OUTPUT_TYPES[name](k)) for name in CLASSED_DETECTOR_OUTPUTS],
        initializer=[*network.graph.initializer, *writer.initializers],
    )
    prune_dead(graph)  # the bypassed Sigmoids and the export's own output
    fused = helper.make_model(graph, opset_imports=list(network.opset_import), producer_name="graphopt")
    fused.ir_version = network.ir_version
    helper.set_model_props(fused, {INPUT_SIZE_KEY: ",".join(map(str, layout.input_hw)),
                                   **({ROWS_KEY: ",".join(map(str, layout.rows))} if layout.rows else {})})
    return fused, logits


def _rename(nodes: Sequence[onnx.NodeProto], names: dict[str, str]) -> None:
    for node in nodes:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]


def fused_rows(model: onnx.ModelProto) -> tuple[tuple[int, int], tuple[int, int] | None] | None:
    """``(input_hw, rows)`` of a fused YOLO graph as :func:`fused_detector` wrote it; None for another graph."""
    props = {prop.key: prop.value for prop in model.metadata_props}
    if INPUT_SIZE_KEY not in props:
        return None
    height, width = (int(v) for v in props[INPUT_SIZE_KEY].split(","))
    rows = tuple(int(v) for v in props[ROWS_KEY].split(",")) if ROWS_KEY in props else None
    return (height, width), rows  # type: ignore[return-value]


def network_of(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The network inside an uncropped fused YOLO graph: :data:`NETWORK_INPUT` in, :data:`PREDICTIONS` out.

    None when the graph is not one :func:`fused_detector` wrote (other passes may have renamed its values) or
    is row-cropped already.
    """
    found = fused_rows(model)
    if found is None or found[1] is not None:
        return None
    producer = {out: node for node in model.graph.node for out in node.output if out}
    pending, seen, picked = [PREDICTIONS], set(), set()
    while pending:
        value = pending.pop()
        if value == NETWORK_INPUT or value in seen:
            continue
        seen.add(value)
        node = producer.get(value)
        if node is not None:
            picked.add(id(node))
            pending.extend(name for name in node.input if name)
    if PREDICTIONS not in producer or NETWORK_INPUT not in producer or FRAME_INPUT in seen:
        return None
    nodes = [node for node in model.graph.node if id(node) in picked]
    read = {name for node in nodes for name in node.input}
    graph = helper.make_graph(
        nodes, model.graph.name.removesuffix("_fused"),
        [helper.make_tensor_value_info(NETWORK_INPUT, TensorProto.FLOAT, [1, 3, *found[0]])],
        [helper.make_tensor_value_info(PREDICTIONS, TensorProto.FLOAT, None)],
        initializer=[tensor for tensor in model.graph.initializer if tensor.name in read],
    )
    network = helper.make_model(graph, opset_imports=list(model.opset_import), producer_name="graphopt")
    network.ir_version = model.ir_version
    return network


class FusedDetector:
    """A fused YOLO graph on frames: one call per frame."""

    def __init__(self, model: onnx.ModelProto, config: YoloConfig, *, providers: Sequence[str] = CPU) -> None:
        self.config = config
        self.threshold = config.score_threshold
        self.session = create_session(model, providers=providers, what="the fused YOLO graph")

    def run(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        check_frame(frame, self.config)
        return run_session(self.session, {FRAME_INPUT: frame})

    def detect(self, frame: np.ndarray) -> Detections:
        out = self.run(frame)
        n = int(out["num_detections"])
        return Detections(boxes=out["boxes"][:n], scores=out["scores"][:n], cells=np.full((n, 3), -1, np.int64),
                          classes=out["classes"][:n].astype(np.int64))
