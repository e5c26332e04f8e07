"""Fuzzing model loading and the pass pipeline with mutated model files.

Every mutation of a valid model file (bit flips, overwritten bytes, cuts,
insertions, spliced duplicates) must either load and optimize or fail with a
:class:`~graphopt.errors.GraphoptError` (the one-sentence errors the CLI turns
into exit code 2) — never any other exception, and never by changing the file.

CI runs a short, derandomized budget; ``make fuzz`` runs a long random one
(``GRAPHOPT_FUZZ_EXAMPLES``, default 2000 there).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphopt
from graphopt.errors import GraphoptError
from graphopt.model_io import load_model
from graphopt.passes import DEFAULT_PASSES

SEED_MODEL = Path(__file__).parents[2] / "examples" / "01_redundant_cnn" / "model.onnx"
EXAMPLES = int(os.environ.get("GRAPHOPT_FUZZ_EXAMPLES", "60"))
LONG_RUN = "GRAPHOPT_FUZZ_EXAMPLES" in os.environ


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED_MODEL.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "cut", "insert", "splice"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite" and data:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[position : position + len(chunk)] = chunk
        elif kind == "cut":
            data = data[:position] + data[position + draw(st.integers(1, 64)) :]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "splice":
            length = draw(st.integers(1, 64))
            data[position:position] = data[position : position + length]
    return bytes(data)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG_RUN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=mutated_bytes())
def test_mutated_models_load_and_optimize_or_fail_with_one_sentence(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    try:
        model = load_model(path)
        graphopt.optimize(model, input_shapes={"input": (1, 3, 16, 16)}, verify=True)
    except GraphoptError as error:
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_invalid_utf8_in_a_name_is_one_sentence(tmp_path: Path) -> None:
    # The first failure the fuzzer found: protobuf parses a name that is not UTF-8, the checker cannot decode it.
    data = SEED_MODEL.read_bytes()
    name = b"block1.conv.bias"
    position = data.index(name)
    path = tmp_path / "bad-utf8.onnx"
    path.write_bytes(data[:position] + b"\xe2" + data[position + 1 :])
    with pytest.raises(GraphoptError, match="not valid UTF-8"):
        load_model(path)


def test_tensor_of_undefined_type_is_one_sentence(tmp_path: Path) -> None:
    # The second failure the fuzzer found: the checker reports a tensor of data type 0 as a ValueError.
    model = onnx.load_model_from_string(SEED_MODEL.read_bytes())
    model.graph.initializer[0].data_type = 0
    path = tmp_path / "undefined-type.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(GraphoptError, match="fails the ONNX checker"):
        load_model(path)


def test_seed_model_optimizes() -> None:
    # The fuzzer starts from a model the pipeline handles; otherwise every case would fail alike.
    model, report = graphopt.optimize(load_model(SEED_MODEL), input_shapes={"input": (1, 3, 16, 16)}, verify=True)
    assert [r.name for r in report.passes] == list(DEFAULT_PASSES) and model.graph.node


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
