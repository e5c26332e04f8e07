"""The library entry point: ``graphopt.optimize``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from .errors import GraphoptError
from .instrument import PassInstrumentation
from .model_io import load_model
from .options import OptimizeOptions, VerifyOptions
from .passes import Pass, build_passes, with_fp16, with_ground_plane
from .pipeline import Pipeline
from .report import Report

if TYPE_CHECKING:
    from .detector.spec import DetectorConfig

__all__ = ["optimize"]


def optimize(
    model: onnx.ModelProto | str | os.PathLike[str],
    passes: Sequence[str | Pass] | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    verify: bool | VerifyOptions = False,
    keep_going: bool = False,
    config: DetectorConfig | str | os.PathLike[str] | None = None,
    detector: DetectorConfig | str | os.PathLike[str] | None = None,
    fp16: bool = False,
    keep_fp32: Sequence[str] = (),
    keep_fp32_ops: Sequence[str] = (),
    ground_plane: bool = False,
    ground_plane_margin: int | None = None,
    latency_repeats: int = 0,
    instruments: Sequence[PassInstrumentation] = (),
) -> tuple[onnx.ModelProto, Report]:
    """Runs a pass pipeline on a model and returns the optimized model and its report.

    Args:
        model: a loaded model (left unchanged) or the path of an ``.onnx`` file.
        passes: registry names or pass objects, in order; default the
            built-in default pipeline.
        input_shapes: concrete shapes for dynamic graph inputs, by name.
        verify: check each pass numerically against onnxruntime (``True`` for
            default tolerances, or a :class:`VerifyOptions`).
        keep_going: continue after a pass is rolled back instead of raising.
        config: the detector description (a :class:`~graphopt.detector.spec.DetectorConfig`
            or its TOML file, what ``--config`` reads) for the detector passes
            such as ``fuse_host_stages``; ``None`` for a model that is not a
            detector. Without ``input_shapes``, a detector network's one image
            input is taken at the frame size, ``1×3×H×W``.
        detector: the same as ``config`` (its earlier name; give one of the two).
        fp16: append :data:`~graphopt.passes.FP16_PASSES` (NMS on log-odds, then
            float16 conversion) to the passes, unless they are named already.
        keep_fp32: node names the float16 conversion keeps in float32.
        keep_fp32_ops: operator types the float16 conversion keeps in float32.
        ground_plane: insert ``ground_plane_slice`` right after ``fuse_host_stages``
            (see :func:`~graphopt.passes.with_ground_plane`), unless it is named already.
        ground_plane_margin: score-map rows ``ground_plane_slice`` adds on each
            side of a band; ``None`` for its default.
        latency_repeats: passes that change the work per frame time the graph
            before and after them with this many runs (0 not to).
        instruments: extra :class:`~graphopt.instrument.PassInstrumentation`
            hooks around every pass (the CLI's progress lines, say).

    Raises:
        GraphoptError: bad model, unknown pass, shapes that contradict the
            graph, or a pass rolled back without ``keep_going``.
    """
    if config is not None and detector is not None:
        raise GraphoptError("give the detector description once: config= or detector=, not both")
    given = config if config is not None else detector
    source = None
    if not isinstance(model, onnx.ModelProto):
        source = os.fspath(model)
        model = load_model(model)
    description: DetectorConfig | None = None
    if given is not None:
        from .detector.spec import DetectorConfig, load_config

        description = given if isinstance(given, DetectorConfig) else load_config(Path(os.fspath(given)))
    if description is not None and not input_shapes:
        from .detector.fused import network_input_shapes

        input_shapes = network_input_shapes(model, description.detector)
    options = OptimizeOptions(
        input_shapes={k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()},
        verify=VerifyOptions() if verify is True else (verify or None),
        keep_going=keep_going,
        detector=description,
        keep_fp32=tuple(keep_fp32),
        keep_fp32_ops=tuple(keep_fp32_ops),
        ground_plane_margin=ground_plane_margin,
        latency_repeats=latency_repeats,
    )
    if ground_plane:
        passes = with_ground_plane(passes)
    if fp16:
        passes = with_fp16(passes)
    if passes is None or all(isinstance(p, str) for p in passes):
        pass_objects = build_passes(passes, options=options)  # type: ignore[arg-type]
    else:
        pass_objects = [build_passes([p], options=options)[0] if isinstance(p, str) else p for p in passes]
    optimized, report = Pipeline(pass_objects, options=options, instruments=instruments).run(model)
    report.source = source
    return optimized, report

