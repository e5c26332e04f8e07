"""Options shared by a pipeline run, from which passes build themselves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .workloads import Workload

__all__ = ["OptimizeOptions", "VerifyOptions"]


@dataclass(frozen=True)
class VerifyOptions:
    """Numeric verification after each pass against onnxruntime.

    A pass whose outputs differ from the previous model's on the same random
    non-zero inputs by more than ``atol + rtol * |reference|`` anywhere is
    rolled back.
    """

    rtol: float = 1e-4
    atol: float = 1e-5
    samples: int = 1
    seed: int = 0


@dataclass(frozen=True)
class OptimizeOptions:
    """What a pipeline run knows beyond the model itself.

    Attributes:
        input_shapes: concrete shapes for graph inputs, by input name; used by
            the static-shape pass and to make verification/benchmark inputs.
        shapes_from_workload: ``input_shapes`` were not given but filled in
            from the workload (the shape its network is verified and counted
            at): ``pin_static_shapes`` does not pin them, because the
            workload's host pipeline feeds the network other sizes.
        verify: verify each pass numerically, or ``None`` not to.
        keep_going: after a pass is rolled back, continue without it instead
            of stopping with :class:`~graphopt.errors.PassFailedError`.
        workload: the workload configuration (``--config``, see
            :mod:`graphopt.workloads`) that passes such as ``fuse_host_stages``
            are driven by, or ``None`` for a model that is not a detector.
        keep_fp32: node names ``convert_to_fp16`` keeps in float32 (``--keep-fp32``).
        keep_fp32_ops: operator types it keeps in float32 (``--keep-fp32-op``).
        ground_plane_margin: score-map rows ``ground_plane_slice`` adds on each
            side of a scale's band (``--ground-plane-margin``); ``None`` for its default.
        latency_repeats: passes that change the work per frame (``ground_plane_slice``)
            time the graph before and after them with this many runs; 0 not to.
    """

    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    shapes_from_workload: bool = False
    verify: VerifyOptions | None = None
    keep_going: bool = False
    workload: Workload | None = None
    keep_fp32: tuple[str, ...] = ()
    keep_fp32_ops: tuple[str, ...] = ()
    ground_plane_margin: int | None = None
    latency_repeats: int = 0
