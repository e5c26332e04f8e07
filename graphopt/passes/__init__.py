"""graphopt's passes and the registry that the CLI's ``--passes`` / ``--skip`` resolve against.

The registry is a plain name → class mapping: the built-in :data:`PASSES`,
and the passes registered through the ``graphopt.passes`` entry-point group
(:mod:`graphopt.passes.plugins`) — a workload's own passes, such as the
person detector's ``ground_plane_slice``, and third-party ones alike — read by
:func:`registered_passes`. :data:`DEFAULT_PASSES` is the pipeline
``graphopt optimize`` runs when no ``--passes`` is given, in order.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from ..errors import UnknownPassError
from ..options import OptimizeOptions
from .base import FunctionPass, Pass, PassResult
from .batch_norm import FoldBatchNormPass
from .conv_affine import FoldConvAffinePass
from .cse import MergeCommonSubexpressionsPass
from .fp16 import ConvertToFp16Pass
from .host_stages import FuseHostStagesPass
from .nms_logits import NmsOnLogitsPass
from .ort_basic import OnnxRuntimeBasicPass
from .redundancy import RemoveRedundantNodesPass
from .slim import SlimGraphPass
from .static_shapes import PinStaticShapesPass
from .transposes import PushTransposesPass

__all__ = [
    "DEFAULT_PASSES",
    "FP16_PASSES",
    "GROUND_PLANE_PASS",
    "PASSES",
    "ConvertToFp16Pass",
    "FoldBatchNormPass",
    "FoldConvAffinePass",
    "FunctionPass",
    "FuseHostStagesPass",
    "MergeCommonSubexpressionsPass",
    "NmsOnLogitsPass",
    "OnnxRuntimeBasicPass",
    "Pass",
    "PassResult",
    "PinStaticShapesPass",
    "PushTransposesPass",
    "RemoveRedundantNodesPass",
    "SlimGraphPass",
    "build_passes",
    "get_pass_class",
    "registered_passes",
    "select_passes",
    "with_fp16",
    "with_ground_plane",
]

PASSES: dict[str, type[Pass]] = {
    cls.name: cls
    for cls in (
        RemoveRedundantNodesPass,
        FoldBatchNormPass,
        PushTransposesPass,
        MergeCommonSubexpressionsPass,
        FuseHostStagesPass,
        PinStaticShapesPass,
        SlimGraphPass,
        OnnxRuntimeBasicPass,
        FoldConvAffinePass,
        NmsOnLogitsPass,
        ConvertToFp16Pass,
    )
}

DEFAULT_PASSES: tuple[str, ...] = (
    # clean-up
    "remove_redundant_nodes",
    "fold_batch_norm",
    "push_transposes",
    "merge_common_subexpressions",
    # host-stage fusion (with a detector description), then exact shapes everywhere
    "fuse_host_stages",
    "pin_static_shapes",
    # the well-kept libraries' eliminations and fusions (standard operators only),
    # then graphopt's clean-up once more for what they leave (dead nodes, stale value_info)
    "slim",
    "onnxruntime_basic",
    "fold_conv_affine",
    "remove_redundant_nodes",
)

#: What ``--fp16`` appends to the pipeline: the NMS moves to log-odds first, so
#: that the float16 graph never thresholds or max-pools saturated probabilities.
FP16_PASSES: tuple[str, ...] = ("nms_on_logits", "convert_to_fp16")

#: The pass ``--ground-plane`` inserts: the workload's camera-band slicing,
#: registered by the workload through the ``graphopt.passes`` entry points.
GROUND_PLANE_PASS = "ground_plane_slice"


def with_fp16(passes: Sequence[str | Pass] | None) -> list[str | Pass]:
    """``passes`` (default :data:`DEFAULT_PASSES`) followed by those of :data:`FP16_PASSES` not in it already."""
    chosen: list[str | Pass] = list(DEFAULT_PASSES if passes is None else passes)
    present = {p if isinstance(p, str) else getattr(p, "name", "") for p in chosen}
    return chosen + [name for name in FP16_PASSES if name not in present]


def with_ground_plane(passes: Sequence[str | Pass] | None, name: str = GROUND_PLANE_PASS) -> list[str | Pass]:
    """``passes`` (default :data:`DEFAULT_PASSES`) with the fixed camera's pass right after ``fuse_host_stages``.

    ``name`` is the workload's (``Workload.ground_plane_pass``: ``ground_plane_slice`` for the person
    detector, ``crop_rows`` for the YOLO family). Appended at the end when there is no
    ``fuse_host_stages``; unchanged when it is named already.
    """
    chosen: list[str | Pass] = list(DEFAULT_PASSES if passes is None else passes)
    names = [p if isinstance(p, str) else getattr(p, "name", "") for p in chosen]
    if name in names:
        return chosen
    at = names.index(FuseHostStagesPass.name) + 1 if FuseHostStagesPass.name in names else len(chosen)
    return [*chosen[:at], name, *chosen[at:]]


def registered_passes() -> dict[str, type[Pass]]:
    """The built-in passes, then the plugins' (``graphopt.passes`` entry points) that loaded."""
    from .plugins import load_plugins

    return {**PASSES, **{p.name: p.cls for p in load_plugins(PASSES) if p.cls is not None}}


def get_pass_class(name: str) -> type[Pass]:
    """The pass class registered as ``name``, built in or from a plugin.

    Raises:
        UnknownPassError: naming the closest registered names.
    """
    if name in PASSES:
        return PASSES[name]
    registry = registered_passes()
    try:
        return registry[name]
    except KeyError:
        from .plugins import load_plugins

        close = difflib.get_close_matches(name, registry, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        broken = next((p for p in load_plugins(PASSES) if p.name == name and p.error), None)
        if broken is not None:
            hint = f"its plugin ({broken.distribution}) was left out: {broken.error}; "
        raise UnknownPassError(
            f"unknown pass '{name}'; {hint}run 'graphopt passes' to list them ({', '.join(registry)})"
        ) from None


def select_passes(names: Sequence[str] | None = None, *, skip: Iterable[str] = ()) -> list[str]:
    """The registered names ``names`` (default :data:`DEFAULT_PASSES`) minus ``skip``, all checked.

    Raises:
        UnknownPassError: for the first name, in either list, that is not registered.
    """
    skip = list(skip)
    chosen = [name for name in (DEFAULT_PASSES if names is None else names) if name not in skip]
    for name in [*skip, *chosen]:
        get_pass_class(name)
    return chosen


def build_passes(
    names: Sequence[str] | None = None, *, skip: Iterable[str] = (), options: OptimizeOptions | None = None
) -> list[Pass]:
    """Pass objects for ``names`` (default :data:`DEFAULT_PASSES`) minus ``skip``, built from ``options``."""
    options = options or OptimizeOptions()
    return [get_pass_class(name).from_options(options) for name in select_passes(names, skip=skip)]
