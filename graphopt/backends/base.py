"""The backend interface: the final stage that turns the optimized graph into a deployable artifact.

A backend is not a pass: it does not rewrite the graph. ``build`` produces an
:class:`Artifact` held in memory (written by the caller through an
:class:`~graphopt.model_io.OutputStage`, so outputs appear all at once or not
at all) and ``benchmark`` times it on given inputs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import GraphoptError
from ..model_io import OutputStage
from ..report import BackendResult

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
    "DeployRequest",
    "Deployment",
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


@dataclass
class DeployRequest:
    """What the final stage is given: the models, the inputs to time them on, and how to time them.

    Attributes:
        source: the model the passes started from (the "before" of the latency row).
        optimized: the pipeline's result.
        name: base name of the files (``<name>.onnx``, ``<name>.engine``).
        feeds: makes the inputs of ``optimized`` to run it on (the workload's first test frame for a
            fused detector, so that NMS and top-K see peaks; else random non-zero inputs; ``None``
            where its shapes are not known), for a backend that times the optimized graph alone.
        source_feeds: inputs of ``source`` for its latency (random non-zero inputs), or ``None``
            when its shapes are not known.
        per_frame: for a fused detector, the workload's per-frame timing of its host pipeline
            around ``source`` and of ``optimized`` on the given onnxruntime providers.
        benchmark: time the artifact (``warmup`` untimed runs, median over ``repeats``).
    """

    source: onnx.ModelProto
    optimized: onnx.ModelProto
    name: str
    feeds: Callable[[], Mapping[str, np.ndarray] | None]
    source_feeds: Mapping[str, np.ndarray] | None
    per_frame: Callable[[Sequence[str] | None], tuple[LatencyStats, LatencyStats]] | None = None
    benchmark: bool = True
    warmup: int = 5
    repeats: int = 30


@dataclass
class Deployment:
    """What a backend's final stage built: the artifact to write, its report rows, and why one is missing.

    ``error`` is set when the backend could not produce its artifact here (only the ONNX is
    written): the caller raises it after writing.
    """

    artifact: Artifact
    result: BackendResult
    error: GraphoptError | None = None


class Backend(abc.ABC):
    """A deployment target.

    Its final stage is :meth:`deploy`: by default, build the artifact and time
    it against the input model (per frame through the workload's host pipeline
    for a fused detector); a backend with another final stage (TensorRT: the
    pre-build check, the engine, the fallback to the ONNX and a ``trtexec``
    command) overrides it.
    """

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

    def deploy(self, request: DeployRequest) -> Deployment:
        """Builds ``request.optimized`` and, with ``request.benchmark``, times it against ``request.source``."""
        artifact = self.build(request.optimized, BuildOptions(name=request.name))
        result = BackendResult(name=self.name, artifact=artifact.file_name, providers=artifact.providers,
                               runtime_version=artifact.runtime_version)
        if request.benchmark:
            self.time_against_source(request, artifact, result)
        return Deployment(artifact, result)

    def time_against_source(self, request: DeployRequest, artifact: Artifact, result: BackendResult) -> None:
        """The latency rows: the input model, then the artifact, on the same inputs."""
        if request.source_feeds is None:
            return
        before = self.build(request.source, BuildOptions(name=request.name))
        result.latency_before = self.benchmark(before, request.source_feeds, warmup=request.warmup,
                                               repeats=request.repeats)
        result.latency_after = self.benchmark(artifact, request.source_feeds, warmup=request.warmup,
                                              repeats=request.repeats)
