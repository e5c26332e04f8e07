"""Input shapes in graphopt's and the peers' forms (graphopt/shapes.py)."""

from __future__ import annotations

import pytest
from onnx import helper

from graphopt.errors import ShapeSpecError
from graphopt.shapes import dynamic_inputs_without_shape, parse_input_shapes, resolve_input_shapes
from tests.conftest import make_model, value


def _model(*names: str, dims: list[int | str | None] | None = None):
    dims = dims or ["N", 3, 4, 4]
    nodes = [helper.make_node("Relu", [names[0]], ["y"])] + [helper.make_node("Relu", [n], [f"{n}_y"])
                                                             for n in names[1:]]
    return make_model(nodes, [value(n, dims) for n in names],
                      [value("y", dims), *(value(f"{n}_y", dims) for n in names[1:])], check=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images:1x3x320x320", [("images", (1, 3, 320, 320))]),  # graphopt, trtexec
        ("images:1,3,320,320", [("images", (1, 3, 320, 320))]),  # onnxsim
        ("images:[1,3,320,320]", [("images", (1, 3, 320, 320))]),  # Polygraphy, onnxslim
        ("images:[1, 3, 320, 320]", [("images", (1, 3, 320, 320))]),
        ("1x3x8x8", [(None, (1, 3, 8, 8))]),
        ("[1,3,8,8]", [(None, (1, 3, 8, 8))]),
        ("1,3,8,8", [(None, (1, 3, 8, 8))]),
        ("a:1x3x8x8,b:1x4", [("a", (1, 3, 8, 8)), ("b", (1, 4))]),  # trtexec --shapes
        ("a:[1,2] b:[3]", [("a", (1, 2)), ("b", (3,))]),  # Polygraphy's list
        ("images:0:1x3x64x64", [("images:0", (1, 3, 64, 64))]),
    ],
)
def test_every_form_parses(text, expected):
    assert [(s.name, s.dims) for s in parse_input_shapes(text)] == expected


@pytest.mark.parametrize("text", ["", "x:", "x:1xax3", "x:0x3", "x:-1x3", "x:[1,3", "x:[]", "x:1x3x"])
def test_malformed_shapes_are_one_sentence(text):
    with pytest.raises(ShapeSpecError) as caught:
        parse_input_shapes(text)
    assert "\n" not in str(caught.value) and "--input-shape" in str(caught.value)


def test_unnamed_shape_goes_to_the_one_input():
    assert resolve_input_shapes(_model("x"), ["1,3,4,4"]) == {"x": (1, 3, 4, 4)}


def test_unnamed_shape_for_two_inputs_is_refused():
    with pytest.raises(ShapeSpecError, match="2 inputs"):
        resolve_input_shapes(_model("a", "b"), ["1x3x4x4"])


@pytest.mark.parametrize("texts", [["x:1x3x4x4", "x:1x3x4x4"], ["1x3x4x4", "x:2x3x4x4"], ["x:1x3x4x4,x:1x3x4x4"]])
def test_an_input_named_twice_is_refused(texts):
    with pytest.raises(ShapeSpecError, match="'x' twice"):
        resolve_input_shapes(_model("x"), texts)


def test_minus_one_dims_are_dynamic():
    assert dynamic_inputs_without_shape(_model("x", dims=[-1, 3, 4, 4])) == ["x"]
    assert dynamic_inputs_without_shape(_model("x", dims=[-1, 3, 4, 4]), ["x"]) == []
    assert dynamic_inputs_without_shape(_model("x", dims=[1, 3, 4, 4])) == []
