"""Backends: the final stage that builds and times a deployable artifact."""

from __future__ import annotations

from ..errors import BackendUnavailableError, GraphoptError
from ..timing import LatencyStats, measure_latency
from .base import Artifact, Backend, BuildOptions
from .onnxruntime import OnnxRuntimeBackend
from .tensorrt import TensorRTBackend

__all__ = [
    "BACKENDS",
    "Artifact",
    "Backend",
    "BuildOptions",
    "LatencyStats",
    "OnnxRuntimeBackend",
    "TensorRTBackend",
    "get_backend",
    "measure_latency",
]

BACKENDS: dict[str, type[Backend]] = {cls.name: cls for cls in (OnnxRuntimeBackend, TensorRTBackend)}


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``, ready to use."""
    try:
        backend_class = BACKENDS[name]
    except KeyError:
        raise GraphoptError(f"unknown backend '{name}'; available: {', '.join(sorted(BACKENDS))}") from None
    reason = backend_class.unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(reason)
    return backend_class()
