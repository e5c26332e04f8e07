"""Numeric verification of rewrites against onnxruntime.

Every rewrite graphopt makes is checked by running the model before and after
on the same random non-zero inputs (zeros hide wrong scales and wrong signs)
and comparing outputs, Polygraphy-style: max/mean/median absolute and relative
error per output.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from .backends.onnxruntime import create_session, run_session
from .errors import GraphoptError, ShapeSpecError
from .graph import declared_dims

__all__ = [
    "OutputError",
    "check_input_names",
    "check_input_sizes",
    "compare_outputs",
    "concrete_input_shapes",
    "format_dims",
    "random_inputs",
    "run_onnxruntime",
]

logger = logging.getLogger(__name__)


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The graph inputs a caller must feed (initializers listed as inputs excluded)."""
    initializers = {init.name for init in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in initializers]


def format_dims(dims: Sequence[int | str | None]) -> str:
    """Dimensions as ``1x3xHxW`` (``?`` for an unknown one)."""
    return "x".join("?" if d is None else str(d) for d in dims)


def check_input_names(model: onnx.ModelProto, names: Iterable[str]) -> None:
    """Raises :class:`ShapeSpecError` for the first name that is not a graph input."""
    inputs = [value.name for value in graph_inputs(model)]
    for name in names:
        if name not in inputs:
            raise ShapeSpecError(
                f"input shape given for '{name}', which is not an input of the graph; "
                f"its inputs are: {', '.join(inputs) or '(none)'}"
            )


def concrete_input_shapes(
    model: onnx.ModelProto, given: Mapping[str, Sequence[int]] | None = None
) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every tensor input: the given one, else the graph's static one.

    Given shapes are checked against what the graph declares: the name must be
    a graph input, the rank must match and fixed dimensions must agree.

    Raises:
        ShapeSpecError: a given shape names no input or contradicts the graph, or
            an input with a dynamic dimension has no given shape.
    """
    wanted = {name: tuple(int(d) for d in dims) for name, dims in (given or {}).items()}
    check_input_names(model, wanted)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in graph_inputs(model):
        if not value.type.HasField("tensor_type"):
            if value.name in wanted:
                raise ShapeSpecError(f"input shape given for '{value.name}', which is not a tensor input")
            continue
        declared = declared_dims(value)
        shape = wanted.get(value.name)
        if shape is None:
            if declared is None or not all(isinstance(d, int) for d in declared):
                example = (
                    "DxDx..." if declared is None else format_dims([d if isinstance(d, int) else "D" for d in declared])
                )
                shown = "unknown rank" if declared is None else format_dims(declared)
                raise ShapeSpecError(
                    f"input '{value.name}' has a dynamic shape ({shown}); give its concrete shape with "
                    f"--input-shape {value.name}:{example}"
                )
            shapes[value.name] = tuple(int(d) for d in declared)  # type: ignore[arg-type]
            continue
        if declared is not None:
            if len(shape) != len(declared):
                raise ShapeSpecError(
                    f"input shape {value.name}:{format_dims(shape)} has rank {len(shape)}, but input "
                    f"'{value.name}' of the graph has rank {len(declared)} ({format_dims(declared)})"
                )
            for axis, (want, have) in enumerate(zip(declared, shape, strict=True)):
                if isinstance(want, int) and want != have:
                    raise ShapeSpecError(
                        f"input shape {value.name}:{format_dims(shape)} contradicts the graph, whose input "
                        f"'{value.name}' is {format_dims(declared)}: dimension {axis} must be {want}, not {have}"
                    )
        shapes[value.name] = shape
    return shapes


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
