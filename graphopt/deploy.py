"""The final stage after the passes: build the deployable artifact, inspect it and time it.

:func:`deploy` is what ``graphopt optimize`` runs after the pipeline, and
what an export pipeline calls to get the same artifact and report rows:

* ``onnxruntime``: the optimized ``.onnx``; its latency against the input
  model (per frame through the host pipeline for a fused detector), on the
  execution providers the installed onnxruntime offers (TensorRT's and
  CUDA's on a GPU build, else the CPU);
* ``tensorrt``: the graph is first checked against TensorRT's ONNX support
  matrix (every refused node in the report); then the strongly typed engine
  ``<name>.engine`` beside ``<name>.onnx``, its layers and precisions, and,
  where it can run, its per-layer times and its latency against the same
  graph in onnxruntime. Where TensorRT is missing or refuses the graph, the
  optimized ONNX is still the artifact and :attr:`Deployment.error` says why
  there is no engine, for the caller to raise once the ONNX is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from .backends import Artifact, Backend, BuildOptions
from .backends.onnxruntime import OnnxRuntimeBackend, count_memcpy_nodes, gpu_provider
from .backends.tensorrt import EngineBuildError, TensorRTArtifact, TensorRTBackend
from .backends.tensorrt_support import unsupported_by_tensorrt
from .errors import BackendUnavailableError, GraphoptError, RuntimeRunError, first_line
from .passes.host_stages import takes_a_frame
from .report import BackendResult
from .verify import concrete_input_shapes, graph_inputs, random_inputs

if TYPE_CHECKING:
    from .detector.spec import DetectorConfig

__all__ = ["Deployment", "deploy"]

logger = logging.getLogger(__name__)

_NO_ENGINE = "the optimized ONNX is written, the engine is not"


@dataclass
class Deployment:
    """What :func:`deploy` built: the artifact to write, its report rows, and why an engine is missing."""

    artifact: Artifact
    result: BackendResult
    #: Set when the backend could not produce its artifact here (only the ONNX is written); raise it after writing.
    error: GraphoptError | None = None


def _feeds(model: onnx.ModelProto, config: DetectorConfig | None) -> dict[str, np.ndarray]:
    """A real frame for a fused detector (so NMS and top-K see peaks), else random non-zero inputs."""
    if config is not None and takes_a_frame(model):
        from .detector.fused import first_test_frame

        return {graph_inputs(model)[0].name: first_test_frame(config)}
    return random_inputs(model, concrete_input_shapes(model, {}))


def _deploy_tensorrt(
    optimized: onnx.ModelProto,
    backend: TensorRTBackend,
    *,
    name: str,
    config: DetectorConfig | None,
    benchmark: bool,
    warmup: int,
    repeats: int,
) -> Deployment:
    findings = unsupported_by_tensorrt(optimized)
    notes = [f"TensorRT's ONNX parser would refuse {finding}" for finding in findings]
    error: GraphoptError | None = None
    built: TensorRTArtifact | None = None
    unavailable = backend.unavailable_reason()
    if findings:
        error = EngineBuildError(f"{len(findings)} node(s) of the optimized graph are not supported by TensorRT's "
                                 f"ONNX parser, first {findings[0]} (all in report.md); {_NO_ENGINE}")
    elif unavailable is not None:
        error = BackendUnavailableError(f"{unavailable}; {_NO_ENGINE}")
    else:
        try:
            built = backend.build(optimized, BuildOptions(name=name))
        except EngineBuildError as failure:
            notes.extend(failure.details)  # every parser error, by node, in the report
            error = EngineBuildError(f"{failure}; {_NO_ENGINE}", failure.details)
        except BackendUnavailableError as failure:
            error = BackendUnavailableError(f"{failure}; {_NO_ENGINE}")
    artifact = built or TensorRTArtifact(backend=backend.name, model=optimized, file_name=f"{name}.onnx", name=name)
    result = BackendResult(name=backend.name, artifact=artifact.file_name, providers=artifact.providers,
                           runtime_version=artifact.runtime_version, notes=notes)
    if built is not None and benchmark:
        feeds = _feeds(optimized, config)
        reference = OnnxRuntimeBackend()
        try:
            result.latency_after = backend.benchmark(built, feeds, warmup=warmup, repeats=repeats)
        except (RuntimeRunError, BackendUnavailableError) as failure:
            result.notes.append(f"the engine was built but not run here: {first_line(failure)}")
        else:
            result.latency_before = reference.benchmark(reference.build(optimized, BuildOptions(name=name)), feeds,
                                                        warmup=warmup, repeats=repeats)
            result.latency_what = (f"per call, the optimized graph: onnxruntime ({', '.join(reference.providers)}) "
                                   "→ its TensorRT engine")
    if built is not None:
        result.layers = [{"name": layer.name, "type": layer.layer_type, "precisions": list(layer.precisions),
                          "median_ms": built.layer_ms.get(layer.name)} for layer in built.layers]
    return Deployment(artifact, result, error)


def deploy(
    source: onnx.ModelProto,
    optimized: onnx.ModelProto,
    backend: Backend,
    *,
    name: str = "model",
    config: DetectorConfig | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    benchmark: bool = True,
    warmup: int = 5,
    repeats: int = 30,
) -> Deployment:
    """Builds ``optimized`` with ``backend`` and, with ``benchmark``, times it against ``source``.

    Args:
        source: the model the passes started from (the "before" of the latency row).
        optimized: the pipeline's result.
        backend: the final stage, e.g. ``OnnxRuntimeBackend()`` or ``TensorRTBackend(options=...)``.
        name: base name of the files (``<name>.onnx``, ``<name>.engine``).
        config: the detector description, for a fused detector (timed per frame on a test scene).
        input_shapes: concrete shapes of ``source``'s dynamic inputs, for its random inputs.
        benchmark: time the artifact (``warmup`` untimed runs, median over ``repeats``).

    Raises:
        GraphoptError: the onnxruntime backend cannot load or run a model.
    """
    if isinstance(backend, TensorRTBackend):
        return _deploy_tensorrt(optimized, backend, name=name, config=config, benchmark=benchmark, warmup=warmup,
                                repeats=repeats)
    artifact = backend.build(optimized, BuildOptions(name=name))
    result = BackendResult(name=backend.name, artifact=artifact.file_name, providers=artifact.providers,
                           runtime_version=artifact.runtime_version)
    providers = backend.providers if isinstance(backend, OnnxRuntimeBackend) else None
    if benchmark and config is not None and takes_a_frame(optimized):
        from .detector.fused import benchmark_per_frame

        result.latency_before, result.latency_after = benchmark_per_frame(
            source, optimized, config, warmup=warmup, repeats=repeats, providers=providers
        )
        result.latency_what = "per frame: host pipeline → fused graph"
    elif benchmark and isinstance(backend, OnnxRuntimeBackend):
        from .latency import compare_onnxruntime

        feeds = random_inputs(source, concrete_input_shapes(source, input_shapes))
        result.latency_before, result.latency_after, result.latency_change = compare_onnxruntime(
            source, optimized, feeds, providers=backend.providers, warmup=warmup, repeats=repeats)
        result.latency_what = "per call, same random inputs, input and output timed interleaved"
    elif benchmark:
        feeds = random_inputs(source, concrete_input_shapes(source, input_shapes))
        result.latency_before = backend.benchmark(backend.build(source, BuildOptions(name=name)), feeds,
                                                  warmup=warmup, repeats=repeats)
        result.latency_after = backend.benchmark(artifact, feeds, warmup=warmup, repeats=repeats)
    provider = gpu_provider() if providers is not None else None
    if provider is not None:
        result.memcpy_provider = provider
        result.memcpy_before = count_memcpy_nodes(source, provider)
        result.memcpy_after = count_memcpy_nodes(optimized, provider)
    return Deployment(artifact, result)
