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
  there is no engine, for the caller to raise once the ONNX is written;
  where TensorRT or a CUDA device is missing, ``<name>.trtexec.sh`` beside
  it builds the same engine on the target.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx

from .backends.base import Backend, Deployment, DeployRequest
from .errors import GraphoptError
from .graph import concrete_input_shapes
from .timing import LatencyStats
from .verify import random_inputs, representative_inputs

if TYPE_CHECKING:
    from .workloads import Workload

__all__ = ["Deployment", "deploy"]

logger = logging.getLogger(__name__)


def _feeds(model: onnx.ModelProto, config: Workload | None) -> dict[str, np.ndarray] | None:
    """:func:`~graphopt.verify.representative_inputs`, or ``None`` where the graph's shapes are not all known."""
    try:
        return representative_inputs(model, config)
    except GraphoptError:  # dynamic shapes left: nothing to time the graph on
        return None


def deploy(
    source: onnx.ModelProto,
    optimized: onnx.ModelProto,
    backend: Backend,
    *,
    name: str = "model",
    config: Workload | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    benchmark: bool = True,
    warmup: int = 5,
    repeats: int = 30,
) -> Deployment:
    """Runs ``backend``'s final stage on ``optimized`` (:meth:`~graphopt.backends.base.Backend.deploy`).

    Args:
        source: the model the passes started from (the "before" of the latency row).
        optimized: the pipeline's result.
        backend: the final stage, e.g. ``OnnxRuntimeBackend()`` or ``TensorRTBackend(options=...)``.
        name: base name of the files (``<name>.onnx``, ``<name>.engine``).
        config: the workload configuration, for a fused detector (timed per frame on its first test frame).
        input_shapes: concrete shapes of ``source``'s dynamic inputs, for its random inputs.
        benchmark: time the artifact (``warmup`` untimed runs, median over ``repeats``).

    Raises:
        GraphoptError: the onnxruntime backend cannot load or run a model.
    """
    fused = config is not None and config.takes_frames(optimized)
    per_frame = None
    if fused:
        assert config is not None

        def per_frame(providers: Sequence[str] | None) -> tuple[LatencyStats, LatencyStats]:
            return config.benchmark_per_frame(source, optimized, warmup=warmup, repeats=repeats, providers=providers)

    source_feeds = None
    if benchmark and not fused:
        source_feeds = random_inputs(source, concrete_input_shapes(source, input_shapes))
    request = DeployRequest(source=source, optimized=optimized, name=name,
                            feeds=lambda: _feeds(optimized, config), source_feeds=source_feeds,
                            per_frame=per_frame, benchmark=benchmark, warmup=warmup, repeats=repeats)
    return backend.deploy(request)
