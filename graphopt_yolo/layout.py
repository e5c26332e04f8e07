"""What a YOLO-family export's graph says about itself: its output layout, classes, input size and score form.

Two output layouts are known, each with ``N`` predictions for an ``h×w``
input at strides 8, 16 and 32 (``cells = Σ (h/s)·(w/s)``):

* anchor-free ``[1, 4+C, N]``, ``N = cells`` (Ultralytics YOLOv8/v11):
  ``(cx, cy, w, h)`` in input pixels, then one score per class;
* with objectness ``[1, N, 5+C]``: ``(cx, cy, w, h, objectness, classes…)``,
  ``N = 3·cells`` (YOLOv5: three anchors per cell, decoded in the graph) or
  ``N = cells`` (YOLOX: one prediction per cell; exports often leave the
  grid/stride decode, ``xy = (t_xy + grid)·stride``, ``wh = exp(t_wh)·stride``,
  to the client — the graph then has no ``Exp``, and the decode is ours).

Scores are probabilities when the output's score channels come from a
``Sigmoid`` the export left in the graph (both reference models do), else
logits; the host pipeline thresholds and ranks in the form given (see
:mod:`graphopt_yolo.decode`), the fused graph on the logits under those
Sigmoids where it can (:mod:`graphopt_yolo.logits`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import onnx

from graphopt.errors import ConfigError
from graphopt.graph import declared_dims, format_dims, graph_inputs

from .config import YoloConfig

__all__ = ["MOVING_OPS", "STRIDES", "Layout", "find_layout", "grid_and_strides", "grid_cells"]

logger = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
#: Ops that move a tensor's values without changing them (the path from a score Sigmoid to the output), with
#: the inputs that carry the values (None: all of them).
MOVING_OPS: dict[str, tuple[int, ...] | None] = {
    "Concat": None, "Reshape": (0,), "Transpose": (0,), "Slice": (0,), "Split": (0,), "Squeeze": (0,),
    "Unsqueeze": (0,), "Flatten": (0,), "Identity": (0,), "Gather": (0,),
}


@dataclass(frozen=True)
class Layout:
    """How the network's output is laid out and what it holds.

    Attributes:
        family: ``yolov8``, ``yolov5`` or ``yolox``.
        classes: the class count ``C``.
        predictions: ``N``.
        input: the name of the network's image input; ``input_hw`` its height and width.
        output: the name of its output.
        decoded: whether the graph decodes the boxes into input pixels (else grid/stride on our side).
        probabilities: whether the scores are probabilities (a Sigmoid in the graph) rather than logits.
        rows: the band ``[top, bottom)`` of the letterboxed input's rows the network reads (row cropping,
            :mod:`graphopt_yolo.crop`); ``None`` for all of them. ``predictions`` counts the band's.
    """

    family: str
    classes: int
    predictions: int
    input: str
    input_hw: tuple[int, int]
    output: str
    decoded: bool
    probabilities: bool
    rows: tuple[int, int] | None = None

    @property
    def objectness(self) -> bool:
        return self.family != "yolov8"

    @property
    def network_hw(self) -> tuple[int, int]:
        """Height and width of what the network reads: the input, or its band of rows."""
        if self.rows is None:
            return self.input_hw
        return self.rows[1] - self.rows[0], self.input_hw[1]

    @property
    def row_offset(self) -> int:
        """The input row the network's row 0 is (the band's top; 0 uncropped)."""
        return 0 if self.rows is None else self.rows[0]

    def cropped(self, rows: tuple[int, int] | None) -> Layout:
        """This layout for a network that reads only the input rows ``[top, bottom)`` (``None``: all of them)."""
        uncropped = dataclasses.replace(self, rows=None, predictions=self.predictions_for(self.input_hw))
        if rows is None or rows == (0, self.input_hw[0]):
            return uncropped
        return dataclasses.replace(uncropped, rows=rows, predictions=self.predictions_for((rows[1] - rows[0],
                                                                                           self.input_hw[1])))

    def predictions_for(self, hw: tuple[int, int]) -> int:
        """``N`` for a network input of ``hw``: one prediction per cell, three for YOLOv5's anchors."""
        return grid_cells(*hw) * (3 if self.family == "yolov5" else 1)


def grid_cells(height: int, width: int) -> int:
    """Predictions of one anchor per cell at :data:`STRIDES` for an ``height×width`` input."""
    return sum((height // s) * (width // s) for s in STRIDES)


def grid_and_strides(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLOX's decode constants: each prediction's cell ``(x, y)`` ``[N, 2]`` and stride ``[N, 1]``, float32.

    In the order of YOLOX's ``demo_postprocess``: stride by stride, row-major.
    """
    grids, strides = [], []
    for stride in STRIDES:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((xs.size, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def _input_hw(model: onnx.ModelProto, config: YoloConfig) -> tuple[str, tuple[int, int]]:
    inputs = graph_inputs(model)
    dims = declared_dims(inputs[0]) if len(inputs) == 1 else None
    if dims is None or len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != 3):
        shown = "none" if dims is None else format_dims(dims)
        raise ConfigError(f"a YOLO export has one [1, 3, H, W] image input, this model has {shown}")
    fixed = tuple(d if isinstance(d, int) and d > 0 else None for d in dims[2:])
    wanted = None if config.input_size is None else (config.input_size[1], config.input_size[0])
    if wanted is None:
        if None in fixed:
            raise ConfigError(f"{config.source}: the model's input {format_dims(dims)} has a dynamic size; "
                              "give input_size = [width, height] in [yolo]")
        return inputs[0].name, (int(fixed[0]), int(fixed[1]))  # type: ignore[arg-type]
    if any(f is not None and f != w for f, w in zip(fixed, wanted, strict=True)):
        raise ConfigError(f"{config.source}: input_size {list(config.input_size or ())} (width, height) contradicts "
                          f"the model's input {format_dims(dims)}")
    return inputs[0].name, wanted


def _shown(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _output_shape(model: onnx.ModelProto, name: str, hw: tuple[int, int]) -> tuple[int, ...]:
    """The output's shape on one ``1×3×h×w`` input, found by running it (shape inference misses some exports)."""
    from graphopt.backends.onnxruntime import create_session, run_session

    session = create_session(model, what="the YOLO network")
    image = np.random.default_rng(0).uniform(0, 1, (1, 3, *hw)).astype(np.float32)
    outputs = run_session(session, {name: image})
    return tuple(next(iter(outputs.values())).shape)


def _family_of(shape: tuple[int, ...], hw: tuple[int, int]) -> tuple[str, int, int] | None:
    """``(family, classes, predictions)`` of an output shape, or None."""
    if len(shape) != 3 or shape[0] != 1:
        return None
    cells = grid_cells(*hw)
    first, second = shape[1:]
    if second == cells and first > 4:
        return "yolov8", first - 4, second
    if first == cells and second > 5:
        return "yolox", second - 5, first
    if first == 3 * cells and second > 5:
        return "yolov5", second - 5, first
    return None


def _reaches_sigmoid(model: onnx.ModelProto, name: str) -> bool:
    """Whether ``name`` is made, through layout ops only, from some Sigmoid's output."""
    producer = {out: node for node in model.graph.node for out in node.output}
    pending, seen = [name], set()
    while pending:
        value = pending.pop()
        node = producer.get(value)
        if node is None or value in seen:
            continue
        seen.add(value)  # by value: exports may leave nodes unnamed
        if node.op_type == "Sigmoid":
            return True
        if node.op_type in MOVING_OPS:
            carried = MOVING_OPS[node.op_type]
            pending.extend(v for i, v in enumerate(node.input) if v and (carried is None or i in carried))
    return False


def find_layout(model: onnx.ModelProto, config: YoloConfig) -> Layout:
    """The layout of ``model``'s output, checked against ``config``.

    Raises:
        ConfigError: one sentence: no ``[1, 3, H, W]`` input, a dynamic input
            without ``input_size``, an output that matches no known layout
            (naming those looked for), or a config that contradicts the graph
            (input size, family, class count).
    """
    if len(model.graph.output) != 1:
        raise ConfigError(f"a YOLO export has one output, this model has {len(model.graph.output)}")
    input_name, hw = _input_hw(model, config)
    output = model.graph.output[0].name
    shape = _output_shape(model, input_name, hw)
    found = _family_of(shape, hw)
    if found is None:
        cells = grid_cells(*hw)
        raise ConfigError(
            f"the model's output {_shown(shape)} on a {hw[0]}x{hw[1]} input matches no known YOLO layout; "
            f"looked for [1, 4+C, {cells}] (YOLOv8/v11, anchor-free), [1, {cells}, 5+C] (YOLOX) and "
            f"[1, {3 * cells}, 5+C] (YOLOv5), with {cells} grid cells at strides {', '.join(map(str, STRIDES))}"
        )
    family, classes, predictions = found
    if config.family is not None and config.family != family:
        raise ConfigError(f"{config.source}: family {config.family!r} contradicts the model's output "
                          f"{_shown(shape)}, a {family} layout")
    if config.classes is not None and config.classes != classes:
        raise ConfigError(f"{config.source}: classes = {config.classes} contradicts the model's output "
                          f"{_shown(shape)}, which has {classes} classes")
    decoded = family != "yolox" or any(node.op_type == "Exp" for node in model.graph.node)
    layout = Layout(
        family=family,
        classes=classes,
        predictions=predictions,
        input=input_name,
        input_hw=hw,
        output=output,
        decoded=decoded if config.decoded is None else config.decoded,
        probabilities=_reaches_sigmoid(model, output),
    )
    logger.debug("YOLO layout: %s", layout)
    return layout
