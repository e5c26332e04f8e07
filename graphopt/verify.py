"""Numeric verification of rewrites against onnxruntime.

Every rewrite graphopt makes is checked by running the model before and after
on the same random non-zero inputs (zeros hide wrong scales and wrong signs)
and comparing outputs, Polygraphy-style: max/mean/median absolute and relative
error per output.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from .backends.onnxruntime import create_session, run_session
from .errors import GraphoptError, ShapeSpecError

# The graph helpers live in graphopt.graph; re-exported here, where they used to be.
from .graph import check_input_names, concrete_input_shapes, format_dims, graph_inputs

if TYPE_CHECKING:
    from .workloads import Workload

__all__ = [
    "OutputError",
    "check_input_names",
    "check_input_sizes",
    "compare_outputs",
    "concrete_input_shapes",
    "format_dims",
    "graph_inputs",
    "random_inputs",
    "representative_inputs",
    "run_onnxruntime",
]

logger = logging.getLogger(__name__)


# Random inputs are drawn in float64 first; a declared dimension such as 2**40
# must end in a sentence, not in a MemoryError.
MAX_RANDOM_INPUT_ELEMENTS = 1 << 30


def check_input_sizes(shapes: Mapping[str, Sequence[int]], origin: str = "the model") -> None:
    """Raises :class:`ShapeSpecError` if an input is too large to draw random values for."""
    for name, dims in shapes.items():
        if math.prod(dims) > MAX_RANDOM_INPUT_ELEMENTS:
            raise ShapeSpecError(
                f"{origin}: input '{name}' of shape {format_dims(dims)} is too large to draw random inputs for "
                "verification or benchmarking; give a smaller --input-shape, or leave out --verify and the benchmark"
            )


def random_inputs(
    model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]], *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random non-zero inputs of the right types for every graph input.

    Floats are drawn from ±[0.5, 1.5) (no zeros, both signs, unit scale);
    integers from [1, 3] so they stay valid as small indices; booleans at random.
    """
    check_input_sizes({value.name: shapes[value.name] for value in graph_inputs(model)})
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for value in graph_inputs(model):
        elem_type = value.type.tensor_type.elem_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
        shape = shapes[value.name]
        if np.issubdtype(dtype, np.floating):
            magnitude = rng.uniform(0.5, 1.5, size=shape)
            sign = rng.choice(np.array([-1.0, 1.0]), size=shape)
            feeds[value.name] = (magnitude * sign).astype(dtype)
        elif dtype == np.bool_:
            feeds[value.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif np.issubdtype(dtype, np.integer):
            feeds[value.name] = rng.integers(1, 4, size=shape).astype(dtype)
        else:
            raise GraphoptError(f"input '{value.name}' has element type {dtype}, which graphopt cannot generate")
    return feeds


def representative_inputs(
    model: onnx.ModelProto, workload: Workload | None = None, shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, np.ndarray]:
    """Inputs to time ``model`` on: the workload's first test frame for a graph that takes its frames (so that
    NMS and top-K see peaks), else random non-zero inputs at ``shapes`` (those of other names ignored).

    Raises:
        ShapeSpecError: an input has dynamic dimensions and no shape is given for it.
    """
    if workload is not None and workload.takes_frames(model):
        return dict(workload.frames("test", 1)[0])
    names = {v.name for v in model.graph.input}
    given = {name: tuple(dims) for name, dims in (shapes or {}).items() if name in names}
    return random_inputs(model, concrete_input_shapes(model, given))


def run_onnxruntime(
    model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], *, what: str = "the model"
) -> dict[str, np.ndarray]:
    """Runs ``model`` once on CPU and returns its outputs by name.

    Raises:
        RuntimeRunError: onnxruntime cannot load or run the model.
    """
    return run_session(create_session(model, what=what), feeds, what=what)


@dataclass(frozen=True)
class OutputError:
    """Differences of one output against its reference."""

    max_abs: float
    mean_abs: float
    median_abs: float
    max_rel: float
    within_tolerance: bool

    def to_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    *,
    rtol: float,
    atol: float,
) -> dict[str, OutputError]:
    """Per-output error of ``candidate`` against ``reference``.

    A missing output or a changed shape counts as an infinite error.
    """
    errors: dict[str, OutputError] = {}
    for name, ref in reference.items():
        new = candidate.get(name)
        if new is None or new.shape != ref.shape:
            errors[name] = OutputError(float("inf"), float("inf"), float("inf"), float("inf"), False)
            continue
        ref64 = ref.astype(np.float64)
        diff = np.abs(new.astype(np.float64) - ref64)
        if diff.size == 0:
            errors[name] = OutputError(0.0, 0.0, 0.0, 0.0, True)
            continue
        # NaN in the same places on both sides is agreement, not error.
        both_nan = np.isnan(ref64) & np.isnan(new.astype(np.float64))
        diff = np.where(both_nan, 0.0, diff)
        rel = diff / np.maximum(np.abs(ref64), np.finfo(np.float32).tiny)
        ok = bool(np.all(diff <= atol + rtol * np.abs(np.where(both_nan, 0.0, ref64))))
        errors[name] = OutputError(
            max_abs=float(np.max(diff)),
            mean_abs=float(np.mean(diff)),
            median_abs=float(np.median(diff)),
            max_rel=float(np.max(rel)),
            within_tolerance=ok,
        )
    return errors
