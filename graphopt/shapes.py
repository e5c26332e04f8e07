"""Input shapes as users write them: graphopt's form and the peer tools' forms.

Accepted, for one input each (``NAME:`` may be left out when the model has
exactly one input):

* graphopt / trtexec: ``images:1x3x320x320``;
* onnxsim: ``images:1,3,320,320``;
* Polygraphy / onnxslim: ``images:[1,3,320,320]``;
* several inputs in one string, trtexec's ``--shapes`` style
  (``a:1x3x8x8,b:1x4``) or separated by spaces (Polygraphy's style).

Input names may themselves contain ``:`` (``images:0:1x3x640x640``): the
dimensions follow the last one. A name given twice, an unnamed shape for a
model with several inputs, and a dimension that is not a positive integer are
each one :class:`~graphopt.errors.ShapeSpecError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import onnx

from .errors import ShapeSpecError
from .graph import declared_dims

__all__ = [
    "ShapeSpec",
    "dynamic_inputs_without_shape",
    "parse_input_shape",
    "parse_input_shapes",
    "resolve_input_shapes",
]

logger = logging.getLogger(__name__)

_EXAMPLE = "for example images:1x3x320x320, images:1,3,320,320 or images:[1,3,320,320]"
# A comma starts a new input only where what follows it, up to the next comma, names one (``b:1x4``).
_INPUT_SPLIT = re.compile(r",(?=[^,\[\]]*:)")
_DIMS_X = re.compile(r"[0-9]+(?:x[0-9]+)*")
_DIMS_COMMA = re.compile(r"\[\s*[0-9]+(?:\s*,\s*[0-9]+)*\s*\]|[0-9]+(?:\s*,\s*[0-9]+)*")


@dataclass(frozen=True)
class ShapeSpec:
    """One parsed shape: the input's name (``None`` when not given) and its dimensions."""

    name: str | None
    dims: tuple[int, ...]
    text: str


def _parse_dims(dims: str, text: str) -> tuple[int, ...] | None:
    dims = dims.strip()
    if _DIMS_X.fullmatch(dims):
        return tuple(int(d) for d in dims.split("x"))
    if _DIMS_COMMA.fullmatch(dims):
        return tuple(int(d) for d in dims.strip("[]").replace(" ", "").split(",") if d)
    return None


def _parse_one(text: str, original: str) -> ShapeSpec:
    text = text.strip()
    dims = _parse_dims(text, original)
    name: str | None = None
    if dims is None:
        name, sep, rest = text.rpartition(":")
        name = name.strip().strip("'\"")
        dims = _parse_dims(rest, original) if sep and name else None
    if dims is None:
        raise ShapeSpecError(f"--input-shape '{original}': expected [NAME:]DIMS, {_EXAMPLE}")
    if not dims or any(d <= 0 for d in dims):
        raise ShapeSpecError(f"--input-shape '{original}': dimensions must be positive integers, {_EXAMPLE}")
    return ShapeSpec(name, dims, text)


def parse_input_shapes(text: str) -> list[ShapeSpec]:
    """Every shape in one ``--input-shape`` value (several in trtexec's or Polygraphy's list forms).

    Raises:
        ShapeSpecError: the text is not one of the accepted forms.
    """
    stripped = text.strip()
    if not stripped:
        raise ShapeSpecError(f"--input-shape '{text}': empty; expected [NAME:]DIMS, {_EXAMPLE}")
    parts = [p for chunk in stripped.split() for p in _INPUT_SPLIT.split(chunk)]
    if len(parts) > 1 and any(":" not in p for p in parts):
        # Spaces inside one bracketed shape (``x:[1, 3, 4, 4]``), not a list of inputs.
        parts = _INPUT_SPLIT.split(stripped)
    return [_parse_one(part, text) for part in parts]


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """One named shape, such as ``input:1x3x480x640``, as ``("input", (1, 3, 480, 640))``.

    Raises:
        ShapeSpecError: the text is not one named shape in an accepted form.
    """
    specs = parse_input_shapes(text)
    if len(specs) != 1 or specs[0].name is None:
        raise ShapeSpecError(f"--input-shape '{text}': expected NAME:DIMS, {_EXAMPLE}")
    return specs[0].name, specs[0].dims


def _tensor_inputs(model: onnx.ModelProto) -> list[str]:
    initializers = {init.name for init in model.graph.initializer}
    return [v.name for v in model.graph.input if v.name not in initializers]


def resolve_input_shapes(
    model: onnx.ModelProto | None, texts: Iterable[str] | Mapping[str, Sequence[int]]
) -> dict[str, tuple[int, ...]]:
    """The shapes by input name, from CLI texts (any accepted form) or a mapping.

    An unnamed shape goes to the model's one input.

    Raises:
        ShapeSpecError: an unnamed shape for a model with several inputs (or
            without the model to tell), or an input named twice.
    """
    if isinstance(texts, Mapping):
        specs = [ShapeSpec(str(k), tuple(int(d) for d in v), str(k)) for k, v in texts.items()]
    else:
        specs = [spec for text in texts for spec in parse_input_shapes(text)]
    inputs = _tensor_inputs(model) if model is not None else []
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name = spec.name
        if name is None:
            if len(inputs) != 1:
                listed = ", ".join(inputs) or "(none)"
                raise ShapeSpecError(
                    f"--input-shape '{spec.text}' names no input, but the model has {len(inputs)} inputs "
                    f"({listed}); write NAME:DIMS"
                )
            name = inputs[0]
        if name in shapes:
            raise ShapeSpecError(f"--input-shape gives input '{name}' twice; give each input's shape once")
        shapes[name] = spec.dims
    return shapes


def dynamic_inputs_without_shape(model: onnx.ModelProto, given: Iterable[str] = ()) -> list[str]:
    """The tensor inputs with a dynamic (or unknown) dimension and no shape in ``given``, in graph order."""
    given = set(given)
    initializers = {init.name for init in model.graph.initializer}
    names = []
    for value in model.graph.input:
        if value.name in initializers or value.name in given or not value.type.HasField("tensor_type"):
            continue
        declared = declared_dims(value)
        if declared is None or not all(isinstance(d, int) for d in declared):
            names.append(value.name)
    return names
