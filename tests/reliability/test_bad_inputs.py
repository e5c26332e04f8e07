"""A corpus of bad inputs run through the real command line: each ends cleanly or is handled.

Every case writes its files into a fresh directory, runs ``python -m graphopt``
in a subprocess (what a user sees, traceback or not) and checks STYLE rule 10:
exit code 2 with one ``graphopt: error:`` sentence naming the file, no
traceback, the input files byte-for-byte unchanged and no partial output or
staging directory left behind. The few cases graphopt legitimately handles are
marked ``expect_ok`` and must instead exit 0 with a model the checker accepts.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from graphopt.errors import ShapeSpecError
from graphopt.verify import random_inputs
from tests.conftest import make_model, tensor, value

KINDS = [
    "missing-file",
    "empty-file",
    "random-bytes",
    "truncated-protobuf",
    "not-a-model",
    "cycle",
    "dangling-input",
    "duplicate-output",
    "unknown-opset",
    "old-opset",
    "external-data",
    "huge-dimension",
    "detector-config",
    "input-shape",
    "output",
]

_TIMEOUT_S = 60


@dataclass(frozen=True)
class BadInput:
    """One bad input: ``make(tmp_dir)`` writes its files and returns the CLI argv."""

    kind: str
    name: str
    make: Callable[[Path], list[str]]
    expect_ok: bool = False
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _relu(shape: list[int | str | None] | None = None, *, opset: int = 17) -> onnx.ModelProto:
    shape = shape or [1, 3, 4, 4]
    return make_model([helper.make_node("Relu", ["input"], ["output"])], [value("input", shape)],
                      [value("output", shape)], opset=opset, check=False)


def _write(path: Path, data: bytes | onnx.ModelProto) -> Path:
    path.write_bytes(data.SerializeToString() if isinstance(data, onnx.ModelProto) else data)
    return path


def _optimize(model: Path, tmp: Path, *extra: str) -> list[str]:
    return ["optimize", str(model), "-o", str(tmp / "out"), "--no-benchmark", *extra]


def _file(kind: str, name: str, data: Callable[[], bytes | onnx.ModelProto], **kwargs: bool) -> BadInput:
    """A case that writes one model file and optimizes it."""
    return BadInput(kind, name, lambda tmp: _optimize(_write(tmp / "model.onnx", data()), tmp), **kwargs)


def _noise(seed: int, size: int) -> Callable[[], bytes]:
    return lambda: np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _truncated(fraction: float) -> Callable[[], bytes]:
    def data() -> bytes:
        full = _relu().SerializeToString()
        return full[: max(1, int(len(full) * fraction))]

    return data


def _graph_model(nodes: list[onnx.NodeProto], outputs: list[str]) -> Callable[[], onnx.ModelProto]:
    """An unchecked model over input ``x`` [1, 4] whose ``outputs`` are float [1, 4]."""
    return lambda: make_model(nodes, [value("x", [1, 4])], [value(n, [1, 4]) for n in outputs], check=False)


def _opset(domain: str, version: int, op: str = "Relu") -> Callable[[], onnx.ModelProto]:
    def data() -> onnx.ModelProto:
        model = _relu()
        if domain:
            model.opset_import.append(helper.make_opsetid(domain, version))
            model.graph.node[0].op_type = op
            model.graph.node[0].domain = domain
        else:
            model.opset_import[0].version = version
        return model

    return data


def _old_opset(opset: int, ir_version: int) -> Callable[[], onnx.ModelProto]:
    def data() -> onnx.ModelProto:
        model = _relu(opset=opset)
        model.ir_version = ir_version
        return model

    return data


def _external(location: str | None, *, missing: bool = False) -> Callable[[Path], list[str]]:
    """A model in ``tmp/m/`` whose weight lives in external data at ``location`` (absolute if None)."""

    def make(tmp: Path) -> list[str]:
        (tmp / "m").mkdir()
        secret = _write(tmp / "secret.bin", b"\x01" * 8192)
        model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [value("x", [1, 2048])],
                           [value("y", [1, 2048])], [tensor("w", np.ones((1, 2048), np.float32))])
        path = tmp / "m" / "model.onnx"
        onnx.save_model(model, path, save_as_external_data=True, location="model.onnx.data", size_threshold=0)
        model = onnx.load(path, load_external_data=False)
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = str(secret) if location is None else location
        _write(path, model)
        if missing:
            (tmp / "m" / "model.onnx.data").unlink()
        return _optimize(path, tmp)

    return make


def _huge(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: _optimize(_write(tmp / "model.onnx", _relu([1, 3, 2**40, 4])), tmp, *extra)


def _huge_benchmark(tmp: Path) -> list[str]:
    # With the benchmark on, random inputs of 2**42 floats must never be allocated.
    return ["optimize", str(_write(tmp / "model.onnx", _relu([1, 3, 2**40, 4]))), "-o", str(tmp / "out")]


def _config(text: str, command: str = "evaluate") -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        model = _write(tmp / "model.onnx", _relu())
        config = tmp / "detector.toml"
        config.write_text(text, encoding="utf-8")
        if command == "evaluate":
            return ["evaluate", str(model), "--config", str(config), "--frames", "1"]
        return ["detect", str(model), "--config", str(config), "--scene", "0", "-o", str(tmp / "out" / "d.png")]

    return make


def _missing_config(tmp: Path) -> list[str]:
    return ["evaluate", str(_write(tmp / "model.onnx", _relu())), "--config", str(tmp / "nope.toml")]


def _shape(*shape_args: str, dims: list[int | str | None] | None = None) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        model = _write(tmp / "model.onnx", _relu(dims or [1, 3, 4, 4]))
        return _optimize(model, tmp, *(a for s in shape_args for a in ("--input-shape", s)))

    return make


def _two_inputs(shape: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        model = make_model([helper.make_node("Add", ["a", "b"], ["y"])], [value("a", ["N", 4]), value("b", ["N", 4])],
                           [value("y", ["N", 4])], check=False)
        return _optimize(_write(tmp / "model.onnx", model), tmp, "--input-shape", shape)

    return make


def _output_dir_named_onnx(tmp: Path) -> list[str]:
    (tmp / "taken.onnx").mkdir()
    (tmp / "taken.onnx" / "keep.txt").write_text("mine")
    return ["optimize", str(_write(tmp / "model.onnx", _relu())), "-o", str(tmp / "taken.onnx"), "--no-benchmark"]


CORPUS: list[BadInput] = [
    BadInput("missing-file", "optimize", lambda tmp: _optimize(tmp / "model.onnx", tmp)),
    BadInput("missing-file", "evaluate-config", _missing_config),
    _file("empty-file", "zero-bytes", lambda: b""),
    _file("random-bytes", "seed0-10k", _noise(0, 10_000)),
    _file("random-bytes", "seed1-100", _noise(1, 100)),
    _file("random-bytes", "seed2-1m", _noise(2, 1_000_000)),
    _file("truncated-protobuf", "quarter", _truncated(0.25)),
    _file("truncated-protobuf", "half", _truncated(0.5)),
    _file("truncated-protobuf", "minus-one-byte", _truncated(0.99)),
    _file("not-a-model", "tensor-proto", lambda: tensor("t", np.arange(64, dtype=np.float32)).SerializeToString()),
    _file("not-a-model", "graph-proto", lambda: _relu().graph.SerializeToString()),
    _file("cycle", "two-node-loop", _graph_model(
        [helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])], ["a"])),
    _file("dangling-input", "unproduced", _graph_model([helper.make_node("Add", ["x", "ghost"], ["y"])], ["y"])),
    _file("duplicate-output", "two-producers", _graph_model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])], ["y"])),
    _file("unknown-opset", "too-new", _opset("", 99)),
    # The checker skips domains it has no schemas for, so without a run the op is carried through as is.
    _file("unknown-opset", "custom-domain", _opset("com.example", 1, "Frobnicate"), expect_ok=True),
    BadInput("unknown-opset", "custom-domain-benchmark", lambda tmp: _optimize(
        _write(tmp / "model.onnx", _opset("com.example", 1, "Frobnicate")()), tmp)[:-1]),
    _file("old-opset", "opset-1", _old_opset(1, 3)),
    _file("old-opset", "opset-6", _old_opset(6, 3)),
    _file("old-opset", "opset-7-ir-3", _old_opset(7, 3), expect_ok=True),
    _file("old-opset", "ir-version-0", _old_opset(17, 0)),
    BadInput("external-data", "path-traversal", _external("../secret.bin")),
    BadInput("external-data", "absolute-path", _external(None)),
    BadInput("external-data", "missing-file", _external("model.onnx.data", missing=True)),
    BadInput("huge-dimension", "no-input-shape", _huge(), expect_ok=True),
    BadInput("huge-dimension", "benchmark", _huge_benchmark),
    BadInput("huge-dimension", "input-shape-given", _huge("--input-shape", f"input:1x3x{2**40}x4"), expect_ok=True),
    BadInput("detector-config", "unknown-key", _config("[detector]\nwindow = 3\n")),
    BadInput("detector-config", "wrong-type", _config('[detector]\nstride = "four"\n')),
    BadInput("detector-config", "horizon-below-frame", _config("[camera]\ntilt_deg = -40.0\n", "detect")),
    BadInput("detector-config", "not-toml", _config("[detector\nstride = = 4\n", "detect")),
    BadInput("input-shape", "names-no-input", _shape("image:1x3x4x4")),
    BadInput("input-shape", "wrong-rank", _shape("input:1x3x4")),
    BadInput("input-shape", "wrong-fixed-dim", _shape("input:1x5x4x4")),
    BadInput("input-shape", "malformed", _shape("input:1xax3")),
    # The peers' forms of the same shape, and an unnamed one for a one-input model, are accepted.
    BadInput("input-shape", "onnxsim-form", _shape("input:1,3,4,4", dims=["N", 3, "H", "W"]), expect_ok=True),
    BadInput("input-shape", "polygraphy-form", _shape("input:[1,3,4,4]", dims=["N", 3, "H", "W"]), expect_ok=True),
    BadInput("input-shape", "unnamed", _shape("1x3x4x4", dims=["N", 3, "H", "W"]), expect_ok=True),
    BadInput("input-shape", "unnamed-brackets", _shape("[1,3,4,4]", dims=["N", 3, "H", "W"]), expect_ok=True),
    BadInput("input-shape", "trtexec-list", _shape("input:1x3x4x4,input:1x3x4x4")),
    BadInput("input-shape", "repeated", _shape("input:1x3x4x4", "input:1x3x4x4", dims=["N", 3, "H", "W"])),
    BadInput("input-shape", "repeated-unnamed", _shape("1x3x4x4", "input:1x3x4x4", dims=["N", 3, "H", "W"])),
    BadInput("input-shape", "unbalanced-bracket", _shape("input:[1,3,4,4")),
    BadInput("input-shape", "negative", _shape("input:-1x3x4x4")),
    BadInput("input-shape", "unnamed-two-inputs", _two_inputs("1x4")),
    # Dynamic dimensions, -1 ones included, stay dynamic without a shape; the benchmark is left out with why.
    BadInput("input-shape", "dynamic-no-shape", lambda tmp: _optimize(
        _write(tmp / "model.onnx", _relu(["N", 3, "H", "W"])), tmp)[:-1], expect_ok=True),
    BadInput("input-shape", "minus-one-dim", _shape(dims=[-1, 3, 4, 4]), expect_ok=True),
    BadInput("input-shape", "minus-one-dim-shape", _shape("input:2x3x4x4", dims=[-1, 3, 4, 4]), expect_ok=True),
    BadInput("input-shape", "verify-dynamic", lambda tmp: _optimize(
        _write(tmp / "model.onnx", _relu(["N", 3, 4, 4])), tmp, "--verify")),
    BadInput("output", "onnx-path-is-a-directory", _output_dir_named_onnx),
    BadInput("output", "two-outputs", lambda tmp: ["optimize", str(_write(tmp / "model.onnx", _relu())),
                                                   str(tmp / "a.onnx"), "-o", str(tmp / "b.onnx")]),
    BadInput("output", "none", lambda tmp: ["optimize", str(_write(tmp / "model.onnx", _relu()))]),
    BadInput("output", "over-the-input", lambda tmp: ["optimize", str(_write(tmp / "model.onnx", _relu())),
                                                      str(tmp / "model.onnx"), "--no-benchmark"]),
]


def corpus_table() -> list[tuple[str, int]]:
    """``(kind, number of cases)`` in corpus order, for the README table."""
    counts = Counter(case.kind for case in CORPUS)
    return [(kind, counts[kind]) for kind in dict.fromkeys(case.kind for case in CORPUS)]


def test_every_kind_has_a_case() -> None:
    assert [kind for kind, _ in corpus_table()] == KINDS
    assert all(count >= 1 for _, count in corpus_table())


def _digests(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"{c.kind}-{c.name}", marks=c.marks) for c in CORPUS]
)
def test_bad_input_ends_cleanly(tmp_path: Path, case: BadInput) -> None:
    argv = case.make(tmp_path)
    before = _digests(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "graphopt", *argv], capture_output=True, text=True,
                          timeout=_TIMEOUT_S, check=False)
    assert "Traceback" not in proc.stderr + proc.stdout
    after = _digests(tmp_path)
    assert {p: after.get(p) for p in before} == before
    assert [p for p in tmp_path.rglob("*") if ".graphopt" in p.name or p.name.startswith("tmp")] == []
    if case.expect_ok:
        assert proc.returncode == 0, proc.stderr
        onnx.checker.check_model(onnx.load(tmp_path / "out" / "model.onnx"), full_check=True)
        return
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphopt: error: ") and lines[0].strip() != "graphopt: error:", (
        proc.stderr
    )
    # A config file, where there is one, is where the problem is; otherwise the model.
    named = [Path(a) for a in argv if a.endswith(".toml")] or [Path(a) for a in argv if a.endswith(".onnx")]
    assert str(named[0]) in lines[0] or named[0].name in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_library_refuses_random_inputs_too_large_to_allocate() -> None:
    # The same guard serves the library: verification would otherwise try to allocate 2**40 floats.
    model = make_model(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], [value("x", [1, 1 << 40])], [value("y", [1, 1 << 40])]
    )
    with pytest.raises(ShapeSpecError, match="too large to draw random inputs"):
        random_inputs(model, {"x": (1, 1 << 40)})


@pytest.mark.parametrize("form", ["positional", "option"])
def test_output_file_contract_like_the_peers(tmp_path: Path, form: str) -> None:
    model = _write(tmp_path / "model.onnx", _relu(["N", 3, 4, 4]))
    out = tmp_path / "sub" / "slim.onnx"
    argv = [str(model), str(out)] if form == "positional" else [str(model), "-o", str(out)]
    proc = subprocess.run([sys.executable, "-m", "graphopt", "optimize", *argv, "--input-shape", "1,3,4,4", "-q"],
                          capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # --quiet
    assert sorted(p.name for p in out.parent.iterdir()) == ["slim.onnx", "slim.report.json", "slim.report.md"]
    onnx.checker.check_model(onnx.load(out), full_check=True)
