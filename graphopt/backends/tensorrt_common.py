"""What the TensorRT backend and the ``trtexec`` command it writes share: the build options, the
static input shapes an engine's one profile holds, and the error of a refused graph.

Kept apart from :mod:`graphopt.backends.tensorrt` so that the ``trtexec``
fallback (:mod:`graphopt.backends.trtexec`) and the backend's final stage can
import each other's pieces without a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..errors import GraphoptError
from ..graph import declared_dims, format_dims, graph_inputs
from .tensorrt_support import onnx_matrix

__all__ = ["EngineBuildError", "TensorRTOptions", "static_input_shapes"]


class EngineBuildError(GraphoptError):
    """TensorRT's parser or builder refused the graph (the message names the node where there is one).

    Attributes:
        details: every parser error, one sentence each, where the message shows only the first.
    """

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


@dataclass(frozen=True)
class TensorRTOptions:
    """How the engine is built.

    Attributes:
        workspace_mb: the builder's scratch-memory limit (``MemoryPoolType.WORKSPACE``).
        optimization_level: ``builder_optimization_level``, 0 (fast build) to 5
            (longest search); TensorRT's default is 3.
        timing_cache: file the kernel timings are read from before the build
            and written to after it; ``None``: :class:`TensorRTBackend` uses
            :func:`default_timing_cache` (one file per TensorRT version),
            :func:`build_engine` none.
        target_version: the TensorRT version the ONNX support pre-check
            holds the graph to (``"10.3"``); ``None``: the installed one,
            else JetPack 6's (:data:`~graphopt.backends.tensorrt_support.DEFAULT_TARGET`).
    """

    workspace_mb: int = 1024
    optimization_level: int = 3
    timing_cache: Path | None = None
    target_version: str | None = None

    def __post_init__(self) -> None:
        if self.target_version is not None:
            onnx_matrix(self.target_version)  # refuses, in one sentence, what is not a 10.x or 11.x version
        if self.workspace_mb < 1:
            raise GraphoptError(f"the TensorRT workspace must be at least 1 MB, got {self.workspace_mb}")
        if not 0 <= self.optimization_level <= 5:
            raise GraphoptError(
                f"the TensorRT builder optimization level is 0 to 5, got {self.optimization_level}"
            )


def static_input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Every graph input's static shape (what the engine's one optimization profile holds).

    Raises:
        EngineBuildError: an input whose shape is not static.
    """
    shapes = {}
    for value in graph_inputs(model):
        dims = declared_dims(value)
        if dims is None or not all(isinstance(d, int) and d > 0 for d in dims):
            raise EngineBuildError(
                f"the graph input '{value.name}' has shape {format_dims(dims or [])}; the TensorRT backend builds "
                "static-shape engines (run pin_static_shapes, or give --input-shape)"
            )
        shapes[value.name] = tuple(int(d) for d in dims)  # type: ignore[arg-type]
    return shapes
