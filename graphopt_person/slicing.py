"""Ground-plane slicing: each pyramid scale's network computes only the rows where a person can stand.

The original work's largest single gain (−72% per frame): with a calibrated
camera, a person whose size matches one pyramid scale can only stand on a
narrow band of floor rows (:mod:`graphopt_person.ground_plane`), so that
scale's network needs only the input rows its windows there read. This pass
rewrites a fused detector (:mod:`graphopt_person.fused`) so that it does:

* before each scale's network, a ``Slice`` keeps the rows of the scale's
  resized frame the band's windows read (a start on a multiple of the
  network's stride, so that every pooling step stays aligned);
* the network runs on that slice, every shape static, and yields the band's
  score-map rows, equal to the full map's rows there;
* its logits are padded back to the full score map (``Pad``, then ``Add`` of
  a per-row column) with a very low logit for the person class
  (:data:`PAD_LOGIT`; 0 for the other classes), so the
  softmax, resampling, NMS and top-K after it are unchanged, and every cell
  outside the band is probability 0 (log-odds −10000), as cells the scale
  does not reach already were;
* a scale whose band is empty computes nothing: its logits are the padding alone.

The scale's network is found from the graph, not from node names: the
``Conv`` nodes reading a ``1×3×h×w`` image of the scale's resized size start
it, and it extends through ops that compute every output row from nearby
input rows (convolutions and pools without row padding, element-wise ops,
batch norm, casts) up to the tensors other ops read: its logits, which must
have the scale's score-map shape. So the pass works on a fused graph in
float32 or float16, before or after ``nms_on_logits``.

The rewrite changes detections on purpose (nothing outside the bands is
detected any more), so the pipeline does not compare its outputs with the
unsliced graph's; the pass checks itself instead: with ``check_frames`` it
runs both graphs on random non-zero frames and requires the band's logits to
be the unsliced graph's (:data:`BAND_TOLERANCE`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphopt.errors import ConfigError, PreconditionError
from graphopt.graph import (
    TensorInfo,
    attribute,
    constant_value,
    dead_node_indices,
    format_dims,
    infer_tensor_info,
    takes_a_frame,
    unique_name,
)
from graphopt.options import OptimizeOptions
from graphopt.passes.base import Pass, PassResult, PostconditionError

if TYPE_CHECKING:
    from .ground_plane import ScaleBand
    from .spec import DetectorConfig

__all__ = [
    "BAND_TOLERANCE",
    "PAD_LOGIT",
    "SLICE_KEY",
    "STAT_KEYS",
    "GroundPlaneMismatch",
    "GroundPlaneSlicePass",
    "ScaleNetwork",
    "constant_values",
    "find_scale_networks",
]

logger = logging.getLogger(__name__)

STAT_KEYS = (
    "scales_sliced",
    "scales_dropped",
    "score_rows_before",
    "score_rows_after",
    "flops_before",
    "flops_after",
    "latency_before_ms",
    "latency_after_ms",
    "checked_frames",
    "max_band_error",
)

#: The person logit of every padded score-map cell. Finite in float16 (and so
#: is twice it, a two-class log-odds), far below any logit a trained network
#: produces, and its probability underflows to exactly 0 in float16 and float32.
PAD_LOGIT = -1.0e4

#: Node metadata key marking the Slice this pass inserts (a second run leaves the graph alone; the
#: structure is checked too, as not every tool keeps node metadata).
SLICE_KEY = "graphopt.ground_plane"

#: Worst difference allowed between the band's logits and the unsliced graph's
#: (absolute, plus the same relative to the logit). The scores are the same
#: arithmetic on the same numbers; only a convolution kernel's blocking over a
#: shorter image may reorder a few float32 sums.
BAND_TOLERANCE = 1e-4

_PERSON_CLASS = 1  # the fused detector's class order is (background, person)
_FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE})

# Ops that compute each output row from a window of nearby input rows, with no
# row padding (checked below), and that keep the layout NCHW.
_WINDOWED = frozenset({"Conv", "MaxPool", "AveragePool", "LpPool"})
_ELEMENTWISE = frozenset({
    "Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Tanh", "Clip", "Abs", "Neg", "HardSwish", "Softplus",
    "Identity", "Dropout", "Cast", "BatchNormalization", "Add", "Sub", "Mul", "Div", "PRelu", "Max", "Min",
})


class GroundPlaneMismatch(PostconditionError):
    """The sliced graph's band scores differ from the unsliced graph's (the pass is rolled back)."""


@dataclass(frozen=True)
class ScaleNetwork:
    """One pyramid scale's network inside a fused graph.

    Attributes:
        image: the ``1×3×h×w`` tensor its first convolutions read.
        entry_nodes: indices of those convolutions.
        nodes: indices of every node of the network (the entry nodes included).
        logits: the network's outputs read by the rest of the graph; each has
            the scale's ``1×C×rows×cols`` score-map shape.
    """

    image: str
    entry_nodes: tuple[int, ...]
    nodes: tuple[int, ...]
    logits: tuple[str, ...]


def _row_padding(node: onnx.NodeProto) -> bool:
    pads = attribute(node, "pads", [])
    auto_pad = attribute(node, "auto_pad", b"NOTSET")
    rows_padded = len(pads) >= 4 and (pads[0] or pads[len(pads) // 2])
    return bool(rows_padded) or auto_pad not in (b"NOTSET", b"VALID") or bool(attribute(node, "ceil_mode", 0))


def _row_local(node: onnx.NodeProto, inside: set[str], constants: set[str], info: dict[str, TensorInfo]) -> bool:
    """Whether ``node`` computes each output row from nearby rows of region tensors and constants only."""
    if node.domain not in ("", "ai.onnx"):
        return False
    data = [name for name in node.input if name and name not in constants]
    if not data or any(name not in inside for name in data):
        return False
    if node.op_type in _WINDOWED:
        return not _row_padding(node) and len(data) == 1 and node.input[0] == data[0]
    if node.op_type not in _ELEMENTWISE:
        return False
    for name in node.input:
        if name in constants:
            shape = info[name].shape if name in info else None
            # A constant that varies along the rows (axis −2 of NCHW) would not follow the slice.
            if shape is None or (len(shape) >= 2 and shape[-2] != 1):
                return False
    shapes = {info[name].shape if name in info else None for name in data}
    return len(shapes) == 1  # two region tensors meet only at the same resolution


def find_scale_networks(model: onnx.ModelProto, config: DetectorConfig,
                        info: dict[str, TensorInfo] | None = None) -> list[ScaleNetwork]:
    """Each pyramid scale's network in a fused detector graph, in the spec's order.

    Raises:
        ConfigError: some scale's network cannot be found, or does not end in
            tensors of its score-map shape.
    """
    spec = config.detector
    graph = model.graph
    info = infer_tensor_info(model) if info is None else info
    constants = constant_values(graph)
    shapes = [spec.scaled_frame_shape(scale) for scale in spec.scales]
    if len(set(shapes)) != len(shapes):
        raise ConfigError("two pyramid scales resize the frame to the same size; their networks cannot be told apart")
    networks = []
    for scale, (height, width) in zip(spec.scales, shapes, strict=True):
        entry, image = _scale_entry(graph, info, scale, height, width)
        members, inside = _network_members(graph, entry, constants, info)
        logits = _network_logits(graph, info, scale, set(members), inside, spec.score_map_shape(scale))
        networks.append(ScaleNetwork(image, tuple(entry), tuple(sorted(members)), tuple(logits)))
    return networks


def _scale_entry(graph: onnx.GraphProto, info: dict[str, TensorInfo], scale: float, height: int,
                 width: int) -> tuple[list[int], str]:
    """The first convolutions of one scale's network (node indices) and the image they read.

    Raises:
        ConfigError: no Conv, or Convs of more than one tensor, read a
            1x3xHxW image of the scale's size; or the first convolution pads rows.
    """
    entry = [
        i for i, node in enumerate(graph.node)
        if node.op_type == "Conv" and node.input and info.get(node.input[0]) is not None
        and info[node.input[0]].shape == (1, 3, height, width)
    ]
    images = {graph.node[i].input[0] for i in entry}
    if len(images) != 1:
        found = "no Conv reads" if not images else f"{len(images)} different tensors of"
        raise ConfigError(
            f"cannot find the network of scale {scale:g}: {found} a 1x3x{height}x{width} image; ground-plane "
            "slicing works on a detector fused by fuse_host_stages with this --config"
        )
    if any(_row_padding(graph.node[i]) for i in entry):
        raise ConfigError(f"the first convolution of scale {scale:g} pads its rows, so a slice of the image "
                          "would not give the same scores")
    return entry, images.pop()


def _network_members(graph: onnx.GraphProto, entry: list[int], constants: set[str],
                     info: dict[str, TensorInfo]) -> tuple[list[int], set[str]]:
    """The nodes of one scale's network (``entry`` and every row-local node after it) and the values they write."""
    inside: set[str] = set()
    members = list(entry)
    for i in entry:
        inside.update(graph.node[i].output)
    for i, node in enumerate(graph.node):
        if i not in entry and any(name in inside for name in node.input) and _row_local(
                node, inside, constants, info):
            members.append(i)
            inside.update(out for out in node.output if out)
    return members, inside


def _network_logits(graph: onnx.GraphProto, info: dict[str, TensorInfo], scale: float, member_set: set[int],
                    inside: set[str], score_map: tuple[int, int]) -> list[str]:
    """The values of one scale's network that the rest of the graph reads: its logits, sorted.

    Raises:
        ConfigError: one is not a float 1xCxRxC tensor of the scale's score-map
            shape, or there is none.
    """
    read_outside = {
        name for i, node in enumerate(graph.node) if i not in member_set for name in node.input if name in inside
    } | {out.name for out in graph.output if out.name in inside}
    rows, cols = score_map
    logits = sorted(read_outside)
    for name in logits:
        shape = info[name].shape if name in info else None
        if (shape is None or len(shape) != 4 or shape[0] != 1 or tuple(shape[2:]) != (rows, cols)
                or info[name].elem_type not in _FLOAT_TYPES or not isinstance(shape[1], int)):
            reader = next((n for i, n in enumerate(graph.node) if i not in member_set and name in n.input), None)
            read_by = f", read by {reader.op_type} '{reader.name}'" if reader is not None else ""
            raise ConfigError(
                f"the network of scale {scale:g} ends in '{name}' of shape {format_dims(shape or ())}{read_by}, "
                f"not in logits of its 1xCx{rows}x{cols} score map, so ground-plane slicing cannot tell which "
                "rows it needs (it expects the network as the default clean-up passes leave it: convolutions, "
                "pools and element-wise ops on constant weights up to the logits)"
            )
    if not logits:
        raise ConfigError(f"the network of scale {scale:g} has no output the rest of the graph reads")
    return logits


# Ops whose output is not a function of their inputs: never constant, whatever they read.
_NONDETERMINISTIC = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                               "Bernoulli", "Dropout"})


def constant_values(graph: onnx.GraphProto) -> set[str]:
    """Initializers, ``Constant`` outputs, and the outputs of nodes that read constants only (transitively).

    A network not cleaned up by ``remove_redundant_nodes`` reads a weight
    through an ``Identity``; its output is as constant as the weight.
    """
    constants = {init.name for init in graph.initializer}
    for node in graph.node:  # in topological order, so chains resolve in one sweep
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant" or (
            inputs and node.op_type not in _NONDETERMINISTIC and not any(a.g.node or a.graphs for a in node.attribute)
            and all(name in constants for name in inputs)
        ):
            constants.update(out for out in node.output if out)
    return constants


def _already_sliced(model: onnx.ModelProto, config: DetectorConfig, info: dict[str, TensorInfo]) -> bool:
    """Whether some scale's network reads a row ``Slice`` of its image (marked, or as this pass writes it).

    The mark (node metadata) does not survive every tool (onnxsim drops it),
    so the structure is checked too: a Conv reading a Slice along the rows of
    a ``1×3×h×w`` image of one of the scales' sizes.
    """
    graph = model.graph
    if any(entry.key == SLICE_KEY for node in graph.node for entry in node.metadata_props):
        return True
    images = {(1, 3, *config.detector.scaled_frame_shape(scale)) for scale in config.detector.scales}
    conv_inputs = {node.input[0] for node in graph.node if node.op_type == "Conv" and node.input}
    for node in graph.node:
        if node.op_type != "Slice" or node.output[0] not in conv_inputs or len(node.input) < 4:
            continue
        source = info.get(node.input[0])
        axes = constant_value(graph, node.input[3])
        if source is not None and source.shape in images and axes is not None and axes.tolist() in ([2], [-2]):
            return True
    return False


class GroundPlaneSlicePass(Pass):
    """Ground-plane slicing: each pyramid scale's network computes only the rows where a person can stand.

    Rules applied to a fused detector (see the module docstring), from the
    detector description and its calibrated camera (``--config``):

    * each scale's network reads a ``Slice`` of its resized frame: the rows its
      band's windows read (:func:`~graphopt_person.ground_plane.ground_plane_bands`),
      ``margin_rows`` score rows wider on each side;
    * its logits are padded back to the full score map (``Pad`` with zeros, ``Add``
      of a per-row column) with :data:`PAD_LOGIT` for the person class;
    * a scale with an empty band is replaced by the padding alone;
    * a scale whose band covers its whole map is left as it is.

    Without a detector description, or on a graph that does not take a camera
    frame, the pass changes nothing and says so; a graph it has sliced
    already is left as it is. With ``check_frames`` it compares the band's
    logits with the unsliced graph's on that many random frames and raises
    :class:`GroundPlaneMismatch` beyond :data:`BAND_TOLERANCE`. It changes
    the work per frame (``changes_work``): with ``latency_repeats`` the
    pipeline's latency instrument times the graph before and after it.

    Stats: ``scales_sliced``, ``scales_dropped``, ``score_rows_before`` /
    ``score_rows_after`` (summed over scales), ``flops_before`` /
    ``flops_after`` per frame, and, when measured, ``latency_*_ms``,
    ``checked_frames`` and ``max_band_error``. One detail row per scale says
    what it keeps.

    Args:
        config: the detector and its camera; ``None`` to do nothing.
        margin_rows: score-map rows added on each side of every band.
        check_frames: random frames to check the band's logits on (0 not to).
    """

    name = "ground_plane_slice"
    changes_detections = True
    changes_work = True

    def __init__(
        self,
        *,
        config: DetectorConfig | None = None,
        margin_rows: int | None = None,
        check_frames: int = 2,
    ) -> None:
        from .ground_plane import DEFAULT_MARGIN_ROWS

        margin_rows = DEFAULT_MARGIN_ROWS if margin_rows is None else margin_rows
        if margin_rows < 0 or check_frames < 0:
            raise ValueError("margin_rows and check_frames must be at least 0")
        self.config = config
        self.margin_rows = margin_rows
        self.check_frames = check_frames

    @classmethod
    def from_options(cls, options: OptimizeOptions) -> GroundPlaneSlicePass:
        from .spec import DetectorConfig

        config = options.workload if isinstance(options.workload, DetectorConfig) else None
        return cls(config=config, margin_rows=options.ground_plane_margin, check_frames=2)

    def __repr__(self) -> str:
        source = None if self.config is None else self.config.source
        return (f"{type(self).__name__}(config={source!r}, margin_rows={self.margin_rows}, "
                f"check_frames={self.check_frames})")

    def requires(self, model: onnx.ModelProto) -> None:
        if self.config is None:
            raise PreconditionError("a person-detector configuration with its calibrated camera (--config)")
        if not takes_a_frame(model):
            raise PreconditionError("the fused detector graph (fuse_host_stages before it)")

    def call(self, model: onnx.ModelProto) -> PassResult:
        from graphopt.analysis import count_flops

        from .ground_plane import ground_plane_bands

        stats: dict[str, float] = dict.fromkeys(STAT_KEYS, 0)
        if self.config is None:
            return PassResult(model, False, stats, note="no detector description given (--config): nothing to slice")
        if not takes_a_frame(model):
            return PassResult(model, False, stats, note="the model does not take a camera frame; ground-plane "
                              "slicing works on the fused detector (run fuse_host_stages first)")
        info = infer_tensor_info(model)
        if _already_sliced(model, self.config, info):
            return PassResult(model, False, stats, note="the graph is sliced to the ground plane already")
        bands = ground_plane_bands(self.config, margin_rows=self.margin_rows)
        original = onnx.ModelProto()
        original.CopyFrom(model)
        networks = find_scale_networks(model, self.config, info)
        bands_logits = self._rewrite(model, networks, bands, info)
        details = [self._detail(band) for band in bands]
        stats.update(
            scales_sliced=sum(band.sliced and band.map_rows is not None for band in bands),
            scales_dropped=sum(band.map_rows is None for band in bands),
            score_rows_before=sum(band.map_height for band in bands),
            score_rows_after=sum(band.rows_kept for band in bands),
        )
        if not bands_logits and not stats["scales_dropped"]:
            return PassResult(original, False, stats, note="every scale's band covers its whole score map",
                              details=details)
        flops_before, flops_after = count_flops(original).total, count_flops(model).total
        stats.update(flops_before=flops_before, flops_after=flops_after)
        note = f"FLOPs per frame {_giga(flops_before)} → {_giga(flops_after)} (−{1 - flops_after / flops_before:.0%})"
        return PassResult(model, True, stats, note=note, details=details, evidence=bands_logits)

    def ensures(self, before: onnx.ModelProto, result: PassResult) -> None:
        """With ``check_frames``: inside every band, the sliced graph's logits are the unsliced graph's."""
        if not self.check_frames or not result.modified or not result.evidence:
            return
        worst = self._check(before, result.model, result.evidence)
        result.stats = {**result.stats, "checked_frames": self.check_frames, "max_band_error": worst}

    @staticmethod
    def _detail(band: ScaleBand) -> dict[str, str]:
        row = {"scale": f"{band.scale:g}", "people": f"{band.person_px[0]:.0f}-{band.person_px[1]:.0f} px"}
        if band.map_rows is None:
            row["score rows"] = f"none of {band.map_height}"
            return row
        assert band.input_rows is not None
        row["score rows"] = f"{band.map_rows[0]}-{band.map_rows[1]} of {band.map_height}"
        row["input rows"] = f"{band.input_rows[0]}-{band.input_rows[1]} of {band.input_height}"
        row["kept"] = f"{band.rows_kept / band.map_height:.0%}"
        return row

    def _rewrite(self, model: onnx.ModelProto, networks: Sequence[ScaleNetwork], bands: Sequence[ScaleBand],
                 info: dict[str, TensorInfo]) -> dict[str, tuple[str, int, int]]:
        """Slices every scale in place; returns ``{band logits: (full logits, first row, last row)}``."""
        graph = model.graph
        writer = _Insertions(graph)
        dropped: set[int] = set()
        band_logits: dict[str, tuple[str, int, int]] = {}
        for number, (network, band) in enumerate(zip(networks, bands, strict=True)):
            if band.map_rows is not None and not band.sliced:
                continue
            prefix = f"scale{number}/ground_plane"
            producers = {out: i for i in network.nodes for out in graph.node[i].output}
            if band.map_rows is None:
                # No person of this scale's size can stand in view: the logits are the padding alone.
                dropped.update(network.nodes)
                for logits in network.logits:
                    writer.pad(producers[logits], prefix, logits, info[logits], None, 0, -1)
                continue
            first, last = band.map_rows
            for logits in network.logits:
                inner = unique_name(f"{logits}/band", writer.taken)
                for i in network.nodes:
                    member = graph.node[i]
                    member.output[:] = [inner if name == logits else name for name in member.output]
                    member.input[:] = [inner if name == logits else name for name in member.input]
                writer.pad(producers[logits], prefix, logits, info[logits], inner, first, last)
                band_logits[inner] = (logits, first, last)
            assert band.input_rows is not None
            start, stop = band.input_rows
            rows = writer.node(min(network.entry_nodes) - 1, "Slice", [
                network.image,
                writer.constant(f"{prefix}/start", np.array([start], np.int64)),
                writer.constant(f"{prefix}/stop", np.array([stop], np.int64)),
                writer.constant(f"{prefix}/row_axis", np.array([2], np.int64)),
            ], f"{prefix}/rows")
            rows.metadata_props.add(key=SLICE_KEY, value=f"scale {band.scale:g}: input rows {start}-{stop}")
            for i in network.entry_nodes:
                graph.node[i].input[0] = rows.output[0]
        writer.apply(dropped)
        # Shapes inside the sliced networks changed: declare them again from inference.
        if len(graph.value_info):
            from graphopt.passes.nms_logits import infer_value_info

            graph.ClearField("value_info")
            graph.value_info.extend(infer_value_info(model))
        return band_logits

    def _check(self, before: onnx.ModelProto, after: onnx.ModelProto,
               band_logits: dict[str, tuple[str, int, int]]) -> float:
        """The worst difference between the bands' logits and the unsliced graph's, on random frames.

        Raises:
            GroundPlaneMismatch: beyond :data:`BAND_TOLERANCE`.
        """
        from graphopt.backends.onnxruntime import create_session, run_session

        from .fused import FRAME_INPUT

        if not band_logits:
            return 0.0
        assert self.config is not None
        spec = self.config.detector

        def probe(model: onnx.ModelProto, names: list[str]) -> Any:
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            copy.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
            return create_session(copy, what="the ground-plane check")

        full = probe(before, [full for full, _, _ in band_logits.values()])
        sliced = probe(after, list(band_logits))
        rng = np.random.default_rng(0)
        worst = 0.0
        for _ in range(self.check_frames):
            frame = rng.integers(1, 256, size=(spec.frame_height, spec.frame_width, 3), dtype=np.uint8)
            reference = run_session(full, {FRAME_INPUT: frame}, what="the unsliced graph")
            found = run_session(sliced, {FRAME_INPUT: frame}, what="the sliced graph")
            for inner, (name, first, last) in band_logits.items():
                expected = reference[name][:, :, first : last + 1].astype(np.float64)
                actual = found[inner].astype(np.float64)
                error = np.abs(actual - expected)
                worst = max(worst, float(error.max()))
                if not np.all(error <= BAND_TOLERANCE * (1 + np.abs(expected))):
                    raise GroundPlaneMismatch(
                        f"the sliced graph's logits '{name}' differ from the unsliced graph's inside the band "
                        f"(rows {first}-{last}) by {float(error.max()):.3g}"
                    )
        logger.debug("ground-plane slicing checked on %d frames: worst band error %.3g", self.check_frames, worst)
        return worst


class _Insertions:
    """Nodes to insert into a graph after given node indices, and the constants they read."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.taken = {name for node in graph.node for name in (*node.input, *node.output, node.name)}
        self.taken |= {init.name for init in graph.initializer} | {v.name for v in graph.input}
        self.after: dict[int, list[onnx.NodeProto]] = {}  # -1: before the first node

    def constant(self, base: str, value: np.ndarray) -> str:
        name = unique_name(base, self.taken)
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def node(self, after: int, op: str, inputs: list[str], base: str, *, output: str | None = None,
             **attrs: Any) -> onnx.NodeProto:
        name = unique_name(base, self.taken)
        node = helper.make_node(op, inputs, [output or name], name=name, **attrs)
        self.after.setdefault(after, []).append(node)
        return node

    def pad(self, after: int, prefix: str, logits: str, full: TensorInfo, band: str | None, first: int,
            last: int) -> None:
        """Writes ``logits`` as the ``band`` rows ``first..last`` among rows of :data:`PAD_LOGIT`.

        ``Pad`` with zeros, then ``Add`` of a ``1×C×rows×1`` column that is
        :data:`PAD_LOGIT` on the padded rows of the person class and 0
        elsewhere: band rows pass unchanged (``x + 0``), and the graph holds no
        constant the size of the score map for a later constant folding to
        expand. With no ``band``, the logits are one constant column expanded.
        """
        shape = full.static_shape
        assert shape is not None and full.elem_type in _FLOAT_TYPES
        dtype = helper.tensor_dtype_to_np_dtype(full.elem_type)
        person = _PERSON_CLASS if shape[1] > 1 else 0
        if band is None:
            column = np.zeros((1, shape[1], 1, 1), dtype=dtype)
            column[0, person] = PAD_LOGIT
            size = self.constant(f"{prefix}/no_rows_shape", np.array(shape, np.int64))
            self.node(after, "Expand", [self.constant(f"{prefix}/pad_logit", column), size], f"{prefix}/no_rows",
                      output=logits)
            return
        rows = shape[2]
        pads = self.constant(f"{prefix}/pads", np.array([0, 0, first, 0, 0, 0, rows - 1 - last, 0], np.int64))
        padded = self.node(after, "Pad", [band, pads], f"{prefix}/pad").output[0]
        bias = np.zeros((1, shape[1], rows, 1), dtype=dtype)
        bias[0, person, :first] = PAD_LOGIT
        bias[0, person, last + 1 :] = PAD_LOGIT
        self.node(after, "Add", [padded, self.constant(f"{prefix}/pad_logit", bias)], f"{prefix}/pad_logit",
                  output=logits)

    def apply(self, dropped: set[int]) -> None:
        """Inserts the nodes, drops ``dropped`` and every node and initializer nothing reads any more."""
        graph = self.graph
        nodes = list(self.after.get(-1, []))
        for i, member in enumerate(graph.node):
            if i not in dropped:
                nodes.append(member)
            nodes.extend(self.after.get(i, []))
        graph.ClearField("node")
        graph.node.extend(nodes)
        dead = set(dead_node_indices(graph))
        live = [member for i, member in enumerate(graph.node) if i not in dead]
        graph.ClearField("node")
        graph.node.extend(live)
        used = {name for member in graph.node for name in member.input}
        initializers = [init for init in graph.initializer if init.name in used]
        graph.ClearField("initializer")
        graph.initializer.extend(initializers)


def _giga(flops: int) -> str:
    return f"{flops / 1e9:.2f} G"

