"""The ``crop_rows`` pass: a fused YOLO graph's network reads only the band of rows where objects can be.

What ``--ground-plane`` adds after ``fuse_host_stages`` for the yolo
workload (the person detector's is ``ground_plane_slice``). The band comes
from the config (:mod:`graphopt_yolo.crop`); the pass takes the network out of
the fused graph (:func:`graphopt_yolo.fused.network_of`) and writes the fused
graph again around it with the band's ``Slice`` and decode. It checks the
cropped graph against the host pipeline cropped the same way (the same
detections, as ``fuse_host_stages`` checks the uncropped one), and reports
the FLOPs cut and, for a sweep of margins, how the detections inside the band
differ from the uncropped graph's, so that the user picks the margin.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import numpy as np
import onnx

from graphopt.detections import Detections
from graphopt.errors import PreconditionError
from graphopt.evaluation import DetectorComparison, compare_detections
from graphopt.options import OptimizeOptions
from graphopt.passes.base import Pass, PassResult

from .config import YoloConfig
from .crop import DEFAULT_MARGIN, frame_band, input_rows
from .layout import Layout

__all__ = ["SWEEP_MARGINS", "CropRowsPass", "compare_in_band", "inside_band", "outside_band_blanked"]

logger = logging.getLogger(__name__)

#: The margins (input rows) the report compares, besides the one chosen.
SWEEP_MARGINS = (0, 16, 32, 64)
STAT_KEYS = ("input_rows_before", "input_rows_after", "band_top", "band_bottom", "margin", "flops_before",
             "flops_after")


def inside_band(detections: Detections, band: tuple[float, float]) -> Detections:
    """The detections whose boxes lie within the frame rows ``band``."""
    keep = (detections.boxes[:, 1] >= band[0]) & (detections.boxes[:, 3] <= band[1])
    return Detections(boxes=detections.boxes[keep], scores=detections.scores[keep], cells=detections.cells[keep],
                      classes=None if detections.classes is None else detections.classes[keep])


def outside_band_blanked(frame: np.ndarray, band: tuple[float, float], value: float) -> np.ndarray:
    """``frame`` with the rows outside ``band`` set to ``value``: a fixed camera's scene, nothing where nothing can be.

    The margin sweep runs on such frames, so that it measures what the margin changes (what the network sees
    near the band's edges), not objects outside the band that the uncropped graph finds and the cropped one
    cannot (and that may take the top-K or suppress a box inside).
    """
    out = frame.copy()
    top, bottom = math.floor(band[0]), math.ceil(band[1])
    out[:top] = np.uint8(value)
    out[bottom:] = np.uint8(value)
    return out


def compare_in_band(expected: Sequence[Detections],
                    found: Sequence[Detections]) -> tuple[DetectorComparison, float | None]:
    """The detections a crop finds inside its band against the uncropped ones there, frame by frame.

    Returns the comparison (matched at IoU 0.5) and the largest coordinate shift of a matched box, in pixels
    (None when nothing matched).
    """
    comparison = compare_detections(expected, found, identical_iou=0.99, score_tolerance=1e-3)
    shifts = [float(np.max(np.abs(expected[f.frame].boxes[pair.reference] - found[f.frame].boxes[pair.candidate])))
              for f in comparison.per_frame for pair in f.pairs]
    return comparison, max(shifts, default=None)


@dataclasses.dataclass(frozen=True)
class _Variant:
    margin: int
    rows: tuple[int, int]
    model: onnx.ModelProto
    flops: int


class CropRowsPass(Pass):
    """Row cropping for a fixed camera: a fused YOLO graph's network reads only the band where objects can be.

    Applied to a fused YOLO graph (``fuse_host_stages`` with a ``[yolo]``
    config that gives ``crop_rows`` or a ``[yolo.camera]``): the band in frame
    rows is letterboxed, widened by ``margin`` input rows on each side and
    rounded to the largest stride; the network reads that ``Slice`` of its
    input, and the decode's grid and the boxes' offset follow.

    Without such a config, or on a graph the pass cannot take apart, it
    changes nothing and says so. With ``check_frames`` it compares the
    cropped graph with the host pipeline cropped the same way (the same
    detections, within ``fuse_host_stages``' tolerances) and, for each margin
    of :data:`SWEEP_MARGINS` and the chosen one, the detections inside the
    band with the uncropped graph's on ``sweep_frames`` frames blanked outside
    the band (:func:`outside_band_blanked`; one detail row per margin).

    Stats: ``input_rows_before`` / ``input_rows_after``, ``band_top`` /
    ``band_bottom`` (frame rows), ``margin``, ``flops_before`` /
    ``flops_after`` per frame and, when checked, ``checked_frames``,
    ``max_box_error`` and ``max_score_error`` against the cropped host pipeline.

    Args:
        config: the YOLO config; ``None`` to do nothing.
        margin: input rows added on each side of the band (default the config's ``crop_margin``).
        check_frames: test frames for the check against the cropped host pipeline (0 not to check).
        sweep_frames: test frames for the margin sweep (0 for none).
    """

    name = "crop_rows"
    changes_detections = True
    changes_work = True

    def __init__(self, *, config: YoloConfig | None = None, margin: int | None = None, check_frames: int = 8,
                 sweep_frames: int = 32) -> None:
        if (margin is not None and margin < 0) or check_frames < 0 or sweep_frames < 0:
            raise ValueError("margin, check_frames and sweep_frames must be at least 0")
        self.config = config
        self.margin = margin
        self.check_frames = check_frames
        self.sweep_frames = sweep_frames

    @classmethod
    def from_options(cls, options: OptimizeOptions) -> CropRowsPass:
        config = options.workload if isinstance(options.workload, YoloConfig) else None
        return cls(config=config, margin=options.ground_plane_margin)

    def __repr__(self) -> str:
        source = None if self.config is None else self.config.source
        return (f"{type(self).__name__}(config={source!r}, margin={self.margin}, check_frames={self.check_frames}, "
                f"sweep_frames={self.sweep_frames})")

    @property
    def chosen_margin(self) -> int:
        if self.margin is not None:
            return self.margin
        return DEFAULT_MARGIN if self.config is None else self.config.crop_margin

    def requires(self, model: onnx.ModelProto) -> None:
        from .fused import fused_rows

        if self.config is None or frame_band(self.config) is None:
            raise PreconditionError("a [yolo] config with crop_rows or a [yolo.camera] (--config)")
        if fused_rows(model) is None:
            raise PreconditionError("the fused YOLO graph as fuse_host_stages writes it (fuse_host_stages before it)")

    def call(self, model: onnx.ModelProto) -> PassResult:
        from graphopt.analysis import count_flops

        from .fused import build_fused_model, fused_rows, network_of
        from .layout import find_layout

        stats: dict[str, float] = dict.fromkeys(STAT_KEYS, 0)
        config = self.config
        band = None if config is None else frame_band(config)
        if config is None or band is None:
            return PassResult(model, False, stats, note="no band of rows given (crop_rows or [yolo.camera] in a "
                              "[yolo] --config): nothing to crop")
        found = fused_rows(model)
        if found is None:
            return PassResult(model, False, stats, note="the model is not a fused YOLO graph as fuse_host_stages "
                              "writes it: nothing to crop")
        if found[1] is not None:
            return PassResult(model, False, stats, note=f"the graph reads input rows {found[1][0]}-{found[1][1]} "
                              "already")
        network = network_of(model)
        if network is None:
            return PassResult(model, False, stats, note="the fused graph's network could not be taken apart "
                              "(values renamed by an earlier pass): run crop_rows right after fuse_host_stages")
        layout = find_layout(network, config)
        rows = input_rows(config, layout, self.chosen_margin)
        assert rows is not None
        height = layout.input_hw[0]
        stats.update(input_rows_before=height, input_rows_after=rows[1] - rows[0], band_top=band[0],
                     band_bottom=band[1], margin=self.chosen_margin)
        if rows == (0, height):
            return PassResult(model, False, stats, note=f"the band, {self.chosen_margin} rows wider, covers all "
                              f"{height} input rows")
        cropped = build_fused_model(network, config, layout.cropped(rows))
        flops_before, flops_after = count_flops(model).total, count_flops(cropped).total
        stats.update(flops_before=flops_before, flops_after=flops_after)
        note = (f"the network reads input rows {rows[0]}-{rows[1]} of {height} (frame rows {band[0]:.0f}-"
                f"{band[1]:.0f}, {self.chosen_margin} input rows wider, rounded to the stride): FLOPs per frame "
                f"{flops_before / 1e9:.3g} G → {flops_after / 1e9:.3g} G (−{1 - flops_after / flops_before:.0%})")
        details: list[dict[str, str]] = []
        if self.sweep_frames:
            chosen = _Variant(self.chosen_margin, rows, cropped, flops_after)
            details = self._sweep(model, network, layout, band, chosen, flops_before)
        return PassResult(cropped, True, stats, note=note, details=details, evidence=(network, rows))

    def ensures(self, before: onnx.ModelProto, result: PassResult) -> None:
        """With ``check_frames``: the cropped graph finds what the host pipeline cropped the same way finds."""
        if not self.check_frames or not result.modified or result.evidence is None or self.config is None:
            return
        from .fused import FusedDetector
        from .fusion import compare
        from .host import HostDetector
        from .pictures import pictures

        network, rows = result.evidence
        host = HostDetector(network, self.config, rows=rows)
        fused = FusedDetector(result.model, self.config)
        worst_box = worst_score = 0.0
        for name, frame in pictures(self.config, "test", self.check_frames):
            box, score = compare(fused.detect(frame), host.detect(frame), name)
            worst_box, worst_score = max(worst_box, box), max(worst_score, score)
        result.stats = {**result.stats, "checked_frames": self.check_frames, "max_box_error": worst_box,
                        "max_score_error": worst_score}

    def _sweep(self, model: onnx.ModelProto, network: onnx.ModelProto, layout: Layout, band: tuple[float, float],
               chosen: _Variant, flops: int) -> list[dict[str, str]]:
        """One row per margin: the input rows, FLOPs and how the band's detections differ from the uncropped graph's.

        ``model`` is the uncropped graph, of ``flops`` per frame; ``chosen`` the crop at the chosen margin.
        """
        from graphopt.analysis import count_flops

        from .fused import FusedDetector, build_fused_model
        from .pictures import pictures

        assert self.config is not None
        variants: dict[tuple[int, int], _Variant] = {chosen.rows: chosen}
        for margin in sorted({*SWEEP_MARGINS, self.chosen_margin}):
            rows = input_rows(self.config, layout, margin)
            if rows is not None and rows not in variants and rows != (0, layout.input_hw[0]):
                cropped = build_fused_model(network, self.config, layout.cropped(rows))
                variants[rows] = _Variant(margin, rows, cropped, count_flops(cropped).total)
        frames = [outside_band_blanked(frame, band, self.config.pad_value)
                  for _, frame in pictures(self.config, "test", self.sweep_frames)]
        reference = FusedDetector(model, self.config)
        expected = [inside_band(reference.detect(frame), band) for frame in frames]
        rows_out = []
        for variant in sorted(variants.values(), key=lambda v: v.rows[1] - v.rows[0]):
            detector = FusedDetector(variant.model, self.config)
            found = [inside_band(detector.detect(frame), band) for frame in frames]
            rows_out.append(_sweep_row(variant, found, expected, variant.flops / flops, variant is chosen))
        return rows_out


def _sweep_row(variant: _Variant, found: Sequence[Detections], expected: Sequence[Detections], flop_share: float,
               chosen: bool) -> dict[str, str]:
    comparison, shift = compare_in_band(expected, found)
    score = comparison.max_abs_score_difference
    return {
        "margin": f"{variant.margin} rows" + (" (chosen)" if chosen else ""),
        "input rows": f"{variant.rows[0]}-{variant.rows[1]}",
        "FLOPs": f"{flop_share:.0%}",
        "frames alike": f"{comparison.identical_frames}/{comparison.frames}",
        "in the band": f"{comparison.matched} matched, {comparison.missing} lost, {comparison.extra} new",
        "largest box shift": "-" if shift is None else f"{shift:.2f} px",
        "largest score change": "-" if score is None else f"{score:.3g}",
    }

