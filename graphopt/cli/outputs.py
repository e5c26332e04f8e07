"""Where ``graphopt optimize`` writes: a file named like the peers' (``-o out.onnx``) or a directory.

* ``-o out.onnx`` (or ``graphopt optimize in.onnx out.onnx``, as in onnxsim):
  ``out.onnx`` with ``out.report.json`` and ``out.report.md`` beside it, and
  ``out.engine`` for the TensorRT backend;
* ``-o DIR`` (any path not ending in ``.onnx``): ``DIR/<input name>.onnx``,
  ``DIR/report.json`` and ``DIR/report.md``, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import GraphoptError

__all__ = ["OutputPlan", "plan_outputs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputPlan:
    """The directory the outputs go into, the artifacts' base name and the reports' file names."""

    directory: Path
    name: str
    report_json: str
    report_md: str

    def paths(self, artifact_files: list[str]) -> list[Path]:
        return [self.directory / n for n in (*artifact_files, self.report_json, self.report_md)]


def _base_name(path: Path) -> str:
    return path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.name


def plan_outputs(model_path: Path, option: Path | None, positional: Path | None) -> OutputPlan:
    """The outputs for ``-o`` or the positional OUTPUT (one of them, not both).

    Raises:
        GraphoptError: neither or both are given, or an ``.onnx`` output names an existing directory.
    """
    if option is not None and positional is not None and option != positional:
        raise GraphoptError(f"{model_path}: two outputs given ({positional} and -o {option}); give one")
    target = option if option is not None else positional
    if target is None:
        raise GraphoptError(
            f"{model_path}: no output given: write graphopt optimize MODEL OUT.onnx, or -o OUT.onnx, or -o DIR"
        )
    if target.name.endswith(".onnx") and len(target.name) > len(".onnx"):
        if target.is_dir():
            raise GraphoptError(
                f"{model_path}: output {target} is a directory; give a file name, or a directory without .onnx"
            )
        name = _base_name(target)
        return OutputPlan(target.parent, name, f"{name}.report.json", f"{name}.report.md")
    if target.exists() and not target.is_dir():
        raise GraphoptError(
            f"{model_path}: output directory {target} is a file; give a directory, or a path ending in .onnx"
        )
    return OutputPlan(target, _base_name(model_path), "report.json", "report.md")
