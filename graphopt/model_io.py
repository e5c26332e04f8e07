"""Loading and saving ONNX models safely.

Loading turns every way a file can be wrong into one :class:`ModelLoadError`
sentence that names the file: missing, a directory, empty, bytes that are not
an ONNX protobuf, a protobuf without a graph, an opset this onnx does not
know, external data that points outside the model's directory or at a missing
file, and a model that fails ``onnx.checker`` with ``full_check=True``.

Saving never writes in place: files are written into a hidden staging
directory beside the destination and moved in with :func:`os.replace` once all
of them are complete, so a failure leaves neither a half-written file nor a
half-filled output directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from .errors import ModelLoadError, ModelSaveError, first_line

__all__ = [
    "OutputStage",
    "check_model",
    "external_data_files",
    "iter_tensors",
    "load_model",
    "save_model",
]

logger = logging.getLogger(__name__)

# Protobuf cannot serialize a message of 2 GiB or more; above this the weights
# go to an external data file beside the model.
_EXTERNAL_DATA_THRESHOLD = 1_800_000_000
_MIN_OPSET = 7


def iter_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Yields every tensor stored in a graph: initializers, Constant values, subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == onnx.AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from iter_tensors(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from iter_tensors(sub)


def _external_location(tensor: onnx.TensorProto) -> str:
    for entry in tensor.external_data:
        if entry.key == "location":
            return entry.value
    return ""


def external_data_files(model: onnx.ModelProto, base_dir: Path) -> set[Path]:
    """Resolved paths of the external data files a (not yet loaded) model refers to."""
    return {
        (base_dir / _external_location(t)).resolve()
        for t in iter_tensors(model.graph)
        if external_data_helper.uses_external_data(t)
    }


def _check_external_data(model: onnx.ModelProto, path: Path) -> None:
    base_dir = path.parent.resolve()
    for tensor in iter_tensors(model.graph):
        if not external_data_helper.uses_external_data(tensor):
            continue
        location = _external_location(tensor)
        if not location:
            raise ModelLoadError(f"{path}: tensor '{tensor.name}' is stored externally but names no file")
        target = (base_dir / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base_dir):
            raise ModelLoadError(
                f"{path}: tensor '{tensor.name}' points at external data '{location}' "
                "outside the model's directory, which graphopt refuses to read"
            )
        if not target.is_file():
            raise ModelLoadError(f"{path}: external data file '{location}' of tensor '{tensor.name}' is missing")


def _save_with_external_data(model: onnx.ModelProto, path: Path, location: str) -> None:
    """Saves weights to ``location`` beside ``path``; ``model`` itself is left as it is.

    ``onnx.save_model(..., save_as_external_data=True)`` rewrites the proto it
    is given to point at the file, so it gets a copy.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    onnx.save_model(copy, path, save_as_external_data=True, location=location, size_threshold=1024)


def check_model(model: onnx.ModelProto, origin: str = "the model") -> None:
    """Runs ``onnx.checker`` with ``full_check=True``; raises :class:`ModelLoadError`."""
    try:
        if model.ByteSize() < _EXTERNAL_DATA_THRESHOLD:
            onnx.checker.check_model(model, full_check=True)
        else:
            with tempfile.TemporaryDirectory(prefix="graphopt-check-") as tmp:
                tmp_path = Path(tmp) / "model.onnx"
                _save_with_external_data(model, tmp_path, "model.onnx.data")
                onnx.checker.check_model(str(tmp_path), full_check=True)
    except UnicodeDecodeError as error:
        # protobuf parses string fields without validating them; the checker decodes them (found by fuzzing).
        raise ModelLoadError(f"{origin} is corrupt: one of its names or strings is not valid UTF-8") from error
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError, TypeError) as error:
        if not str(error).strip() and _undecodable_name(model.graph):
            # Under Python 3.10 the checker's message about such a name cannot be decoded either: it arrives empty.
            raise ModelLoadError(f"{origin} is corrupt: one of its names or strings is not valid UTF-8") from error
        # The checker reports some corrupt fields (a tensor data type 0, found by fuzzing) as ValueError.
        raise ModelLoadError(f"{origin} fails the ONNX checker: {first_line(error)}") from error


def _undecodable_name(graph: onnx.GraphProto) -> bool:
    """Whether a name in ``graph`` (or its subgraphs) is not valid UTF-8: protobuf then hands it over as bytes."""
    values = [*graph.input, *graph.output, *graph.value_info]
    names = [graph.name, *(v.name for v in values), *(t.name for t in graph.initializer)]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
        if any(_undecodable_name(sub) for attr in node.attribute for sub in (*attr.graphs, attr.g)):
            return True
    return any(isinstance(name, bytes) for name in names)


def _check_opsets(model: onnx.ModelProto, path: Path) -> None:
    default = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not default:
        raise ModelLoadError(f"{path} imports no version of the default ONNX operator set")
    newest = onnx.defs.onnx_opset_version()
    if default[0] > newest:
        raise ModelLoadError(
            f"{path} uses ONNX opset {default[0]}, newer than the {newest} that the installed onnx "
            f"{onnx.__version__} supports"
        )
    if default[0] < _MIN_OPSET:
        raise ModelLoadError(f"{path} uses ONNX opset {default[0]}; graphopt supports opset {_MIN_OPSET} and newer")


def load_model(path: str | os.PathLike[str], *, check: bool = True) -> onnx.ModelProto:
    """Loads an ONNX model with its external data, validated.

    Args:
        path: the ``.onnx`` file. External data files must lie in its directory.
        check: run ``onnx.checker`` with ``full_check=True`` (strict shape inference).

    Raises:
        ModelLoadError: with one sentence naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a directory, not an ONNX model file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{path} cannot be read: {error.strerror or error}") from error
    if not data:
        raise ModelLoadError(f"{path} is empty (0 bytes), not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ModelLoadError(f"{path} is not an ONNX model: its bytes do not parse as an ONNX protobuf") from error
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ModelLoadError(f"{path} is not an ONNX model: it parses as protobuf but holds no ONNX graph")
    _check_opsets(model, path)
    _check_external_data(model, path)
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: its external data cannot be read: {first_line(error)}") from error
    if check:
        check_model(model, origin=str(path))
    return model


class OutputStage:
    """Stages output files and moves them into a directory only when all are written.

    Files are written under a hidden directory created beside the destination
    (same file system, so the final :func:`os.replace` is atomic per file).
    Leaving the ``with`` block by an exception, or calling :meth:`discard`,
    removes everything staged; the destination is created only by
    :meth:`commit`.
    """

    def __init__(self, destination: str | os.PathLike[str]) -> None:
        self.destination = Path(destination)
        anchor = self.destination.parent
        while not anchor.exists():
            anchor = anchor.parent
        try:
            self._dir = Path(tempfile.mkdtemp(prefix=".graphopt-staging-", dir=anchor))
        except OSError as error:
            raise ModelSaveError(f"cannot write under {anchor}: {error.strerror or error}") from error
        self._names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write the output file ``name`` while it is staged."""
        if name not in self._names:
            self._names.append(name)
        return self._dir / name

    def write_bytes(self, name: str, data: bytes) -> None:
        self.path(name).write_bytes(data)

    def write_text(self, name: str, text: str) -> None:
        self.path(name).write_text(text, encoding="utf-8")

    def save_model(self, name: str, model: onnx.ModelProto) -> None:
        """Stages ``model`` as ``name``; above ~1.8 GB its weights go to ``name.data``."""
        target = self.path(name)
        try:
            if model.ByteSize() < _EXTERNAL_DATA_THRESHOLD:
                target.write_bytes(model.SerializeToString())
            else:
                data_name = f"{name}.data"
                self.path(data_name)
                _save_with_external_data(model, target, data_name)
        except (OSError, ValueError) as error:
            raise ModelSaveError(f"cannot write {self.destination / name}: {first_line(error)}") from error

    def commit(self) -> list[Path]:
        """Moves every staged file into the destination directory; returns their final paths."""
        try:
            self.destination.mkdir(parents=True, exist_ok=True)
            final = []
            for name in self._names:
                staged = self._dir / name
                if staged.exists():
                    os.replace(staged, self.destination / name)
                    final.append(self.destination / name)
        except OSError as error:
            raise ModelSaveError(f"cannot write into {self.destination}: {error.strerror or error}") from error
        finally:
            self.discard()
        return final

    def discard(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> OutputStage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Writes ``model`` to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    with OutputStage(path.parent) as stage:
        stage.save_model(path.name, model)
        stage.commit()
    return path
