"""The backend interface: the final stage that turns the optimized graph into a deployable artifact.

A backend is not a pass: it does not rewrite the graph. ``build`` produces an
:class:`Artifact` held in memory (written by the caller through an
:class:`~graphopt.model_io.OutputStage`, so outputs appear all at once or not
at all) and ``benchmark`` times it on given inputs.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..model_io import OutputStage

# The latency statistics live in graphopt.timing; re-exported here, where they used to be.
from ..timing import (
    LatencyStats,
    latency_stats,
    machine_description,
    measure_latency,
    measure_latency_interleaved,
    time_calls_interleaved,
)

__all__ = [
    "Artifact",
    "Backend",
    "BuildOptions",
    "LatencyStats",
    "latency_stats",
    "machine_description",
    "measure_latency",
    "measure_latency_interleaved",
    "time_calls_interleaved",
]


@dataclass(frozen=True)
class BuildOptions:
    """What every backend's build takes.

    Attributes:
        name: base name of the artifact files (``<name>.onnx``, ``<name>.engine``).
    """

    name: str = "model"


@dataclass
class Artifact:
    """A built, deployable result: the graph it came from and how to write it."""

    backend: str
    model: onnx.ModelProto
    file_name: str
    providers: tuple[str, ...] = ()
    runtime_version: str = ""

    def files(self) -> list[str]:
        """The names of the files :meth:`write` writes."""
        return [self.file_name]

    def write(self, stage: OutputStage) -> None:
        stage.save_model(self.file_name, self.model)


class Backend(abc.ABC):
    """A deployment target."""

    name: str

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` when the backend can run here, else one sentence on what is missing."""
        return None

    @classmethod
    def runtime_description(cls) -> str:
        """What the backend builds with here (runtime and version), when it is available."""
        return cls.name

    @abc.abstractmethod
    def build(self, model: onnx.ModelProto, options: BuildOptions) -> Artifact:
        """Builds the deployable artifact from an optimized model."""

    @abc.abstractmethod
    def benchmark(
        self, artifact: Artifact, inputs: Mapping[str, np.ndarray], *, warmup: int = 5, repeats: int = 30
    ) -> LatencyStats:
        """Times the artifact on ``inputs``: median and p90 over ``repeats`` runs after warm-up."""
