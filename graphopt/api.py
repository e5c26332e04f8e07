"""The library entry point: ``graphopt.optimize``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import onnx

from .errors import GraphoptError
from .instrument import PassInstrumentation
from .model_io import load_model
from .options import OptimizeOptions, VerifyOptions
from .passes import DEFAULT_PASSES, FP16_PASSES, GROUND_PLANE_PASS, Pass, build_passes, with_fp16, with_ground_plane
from .pipeline import Pipeline
from .report import Report
from .workloads import as_workload

if TYPE_CHECKING:
    from .workloads import Workload

__all__ = ["optimize", "plan_passes"]


def optimize(
    model: onnx.ModelProto | str | os.PathLike[str],
    passes: Sequence[str | Pass] | None = None,
    *,
    skip: Sequence[str] = (),
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    verify: bool | VerifyOptions = False,
    keep_going: bool = False,
    config: Workload | str | os.PathLike[str] | None = None,
    detector: Workload | str | os.PathLike[str] | None = None,
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
            built-in default pipeline, whose passes are skipped (with the
            reason in the report) where their requirements are missing, where
            a pass named here is an error (:class:`~graphopt.errors.PassRequirementError`).
        skip: registry names to leave out of ``passes`` (``--skip``).
        input_shapes: concrete shapes for dynamic graph inputs, by name.
        verify: check each pass numerically against onnxruntime (``True`` for
            default tolerances, or a :class:`VerifyOptions`).
        keep_going: continue after a pass is rolled back instead of raising.
        config: the workload configuration (a :class:`~graphopt.workloads.Workload`, such
            as the person detector's ``DetectorConfig``, or its TOML file, what
            ``--config`` reads) for the workload passes such as ``fuse_host_stages``;
            ``None`` for a model that is not a detector. Without ``input_shapes``,
            the network's inputs are taken at the shapes the workload gives
            (the person detector: ``1×3×H×W`` at the frame size).
        detector: the same as ``config`` (its earlier name; give one of the two).
        fp16: append :data:`~graphopt.passes.FP16_PASSES` (NMS on log-odds, then
            float16 conversion) to the passes, unless they are named already.
        keep_fp32: node names the float16 conversion keeps in float32.
        keep_fp32_ops: operator types the float16 conversion keeps in float32.
        ground_plane: insert the workload's fixed-camera pass (``ground_plane_slice``,
            ``crop_rows``) right after ``fuse_host_stages`` (see
            :func:`~graphopt.passes.with_ground_plane`), unless it is named already.
        ground_plane_margin: rows that pass adds on each side of a band (score-map rows
            for ``ground_plane_slice``, input rows for ``crop_rows``); ``None`` for its default.
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
    description = None if given is None else as_workload(given)
    shapes_from_workload = False
    if description is not None and not input_shapes:
        input_shapes = description.network_input_shapes(model)
        shapes_from_workload = bool(input_shapes)
    options = OptimizeOptions(
        input_shapes={k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()},
        shapes_from_workload=shapes_from_workload,
        verify=VerifyOptions() if verify is True else (verify or None),
        keep_going=keep_going,
        workload=description,
        keep_fp32=tuple(keep_fp32),
        keep_fp32_ops=tuple(keep_fp32_ops),
        ground_plane_margin=ground_plane_margin,
        latency_repeats=latency_repeats,
    )
    pass_objects, optional = plan_passes(passes, options, skip=skip, fp16=fp16, ground_plane=ground_plane)
    optimized, report = Pipeline(pass_objects, options=options, optional=optional, instruments=instruments).run(model)
    report.source = source
    return optimized, report



def plan_passes(
    passes: Sequence[str | Pass] | None,
    options: OptimizeOptions,
    *,
    skip: Sequence[str] = (),
    fp16: bool = False,
    ground_plane: bool = False,
) -> tuple[list[Pass], set[str]]:
    """The pass objects a run executes, and the names of those that came from the default pipeline.

    ``passes`` (default :data:`~graphopt.passes.DEFAULT_PASSES`) minus ``skip``, with
    ``ground_plane_slice`` and the float16 passes added as asked. Passes of the
    default pipeline are skipped where their requirements are missing
    (``fuse_host_stages`` without a workload), and so are the float16 passes
    ``fp16`` adds; passes the caller named run or fail.

    Raises:
        UnknownPassError: a name that is not registered.
    """
    optional = set(DEFAULT_PASSES) if passes is None else set()
    if skip:
        passes = [p for p in (DEFAULT_PASSES if passes is None else passes)
                  if (p if isinstance(p, str) else getattr(p, "name", "")) not in set(skip)]
    if ground_plane:
        passes = with_ground_plane(passes, GROUND_PLANE_PASS if options.workload is None
                                   else options.workload.ground_plane_pass)
    if fp16:
        named = {p if isinstance(p, str) else getattr(p, "name", "")
                 for p in (DEFAULT_PASSES if passes is None else passes)}
        passes = with_fp16(passes)
        # Added by the flag, not named: skipped with the reason where their requirement is missing.
        optional |= {name for name in FP16_PASSES if name not in named}
    if passes is None or all(isinstance(p, str) for p in passes):
        return build_passes(passes, options=options), optional  # type: ignore[arg-type]
    return [build_passes([p], options=options)[0] if isinstance(p, str) else p for p in passes], optional
