"""ONNX Runtime backend: the embedded default, writes the optimized ``.onnx``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from ..errors import RuntimeRunError, first_line
from ..latency import compare_interleaved, judge
from ..report import BackendResult
from ..timing import LatencyStats, measure_latency
from .base import Artifact, Backend, BuildOptions, Deployment, DeployRequest

__all__ = [
    "GPU_PROVIDERS",
    "OnnxRuntimeBackend",
    "count_memcpy_nodes",
    "create_session",
    "default_providers",
    "gpu_provider",
    "run_session",
]

logger = logging.getLogger(__name__)


def create_session(
    model: onnx.ModelProto,
    *,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    intra_op_threads: int = 0,
    what: str = "the model",
) -> ort.InferenceSession:
    """An inference session for ``model``; a model onnxruntime rejects is a :class:`RuntimeRunError`."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = intra_op_threads
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=list(providers))
    except Exception as error:  # onnxruntime raises its own pybind exception types
        raise RuntimeRunError(f"onnxruntime cannot load {what}: {first_line(error)}") from error


# Execution providers that place tensors in device memory, most preferred first.
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider")


def gpu_provider() -> str | None:
    """The first GPU execution provider this onnxruntime build offers, or ``None`` (e.g. the CPU wheel)."""
    available = set(ort.get_available_providers())
    # TensorRT's EP assigns whole subgraphs; the Memcpy question is about the CUDA-style EPs.
    return next((p for p in GPU_PROVIDERS[1:] if p in available), None)


def count_memcpy_nodes(model: onnx.ModelProto, provider: str) -> int:
    """How many Memcpy nodes onnxruntime inserts when it partitions ``model`` for ``provider`` (+ CPU).

    ONNX Runtime places nodes its GPU provider cannot run (or that compute
    shapes on the host) on the CPU and copies tensors across with
    ``MemcpyToHost`` / ``MemcpyFromHost`` nodes; it saves them in the
    optimized model it is asked to write, where they are counted.

    Raises:
        RuntimeRunError: onnxruntime cannot load the model with ``provider``.
    """
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="graphopt-memcpy-") as tmp:
        path = Path(tmp) / "partitioned.onnx"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(path)
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=[provider, "CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own pybind exception types
            raise RuntimeRunError(f"onnxruntime cannot load the model with {provider}: {first_line(error)}") from error
        partitioned = onnx.load(str(path), load_external_data=False)
    return sum(node.op_type in ("MemcpyToHost", "MemcpyFromHost") for node in partitioned.graph.node)


def run_session(
    session: ort.InferenceSession, feeds: Mapping[str, np.ndarray], *, what: str = "the model"
) -> dict[str, np.ndarray]:
    """Runs ``session`` once; returns outputs by name. Failures are a :class:`RuntimeRunError`."""
    names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(names, dict(feeds))
    except Exception as error:  # onnxruntime raises its own pybind exception types
        raise RuntimeRunError(f"onnxruntime cannot run {what}: {first_line(error)}") from error
    return dict(zip(names, values, strict=True))


def default_providers() -> tuple[str, ...]:
    """The execution providers this onnxruntime build offers, best first, CPU last.

    The TensorRT provider is taken only where TensorRT's library can be
    loaded (onnxruntime-gpu lists it whether or not TensorRT is installed);
    CUDA where the build has it. On the CPU wheel: CPU alone.
    """
    import ctypes.util

    available = set(ort.get_available_providers())
    chosen = []
    if "TensorrtExecutionProvider" in available and ctypes.util.find_library("nvinfer"):
        chosen.append("TensorrtExecutionProvider")
    chosen.extend(p for p in GPU_PROVIDERS[1:] if p in available)
    return (*chosen, "CPUExecutionProvider")


class OnnxRuntimeBackend(Backend):
    """Runs the optimized graph with ONNX Runtime, on the GPU providers this build has, else the CPU.

    Args:
        providers: execution providers in priority order; default
            :func:`default_providers` (TensorRT's and CUDA's when this
            onnxruntime build has them, then CPU).
        intra_op_threads: threads per op; 0 lets ONNX Runtime choose (all cores).
    """

    name = "onnxruntime"

    def __init__(self, *, providers: Sequence[str] | None = None, intra_op_threads: int = 0) -> None:
        self.providers = tuple(providers) if providers is not None else default_providers()
        self.intra_op_threads = intra_op_threads

    @classmethod
    def runtime_description(cls) -> str:
        return f"onnxruntime {ort.__version__} on {', '.join(default_providers())}"

    def build(self, model: onnx.ModelProto, options: BuildOptions) -> Artifact:
        return Artifact(
            backend=self.name,
            model=model,
            file_name=f"{options.name}.onnx",
            providers=self.providers,
            runtime_version=f"onnxruntime {ort.__version__}",
        )

    def benchmark(
        self, artifact: Artifact, inputs: Mapping[str, np.ndarray], *, warmup: int = 5, repeats: int = 30
    ) -> LatencyStats:
        what = f"the model for {artifact.file_name}"
        session = create_session(
            artifact.model, providers=self.providers, intra_op_threads=self.intra_op_threads, what=what
        )
        names = {i.name for i in session.get_inputs()}
        feeds = {k: v for k, v in inputs.items() if k in names}
        run_session(session, feeds, what=what)  # fail with a sentence, not inside the timing loop
        return measure_latency(lambda: session.run(None, feeds), warmup=warmup, repeats=repeats)

    def deploy(self, request: DeployRequest) -> Deployment:
        """The optimized graph, timed against the input model; Memcpy nodes counted where a GPU provider runs it."""
        deployment = super().deploy(request)
        provider = gpu_provider()
        if provider is not None:
            deployment.result.memcpy_provider = provider
            deployment.result.memcpy_before = count_memcpy_nodes(request.source, provider)
            deployment.result.memcpy_after = count_memcpy_nodes(request.optimized, provider)
        return deployment

    def time_against_source(self, request: DeployRequest, artifact: Artifact, result: BackendResult) -> None:
        """Per frame through the workload's host pipeline for a fused detector, else per call on the same inputs."""
        if request.per_frame is not None:
            before, after = request.per_frame(self.providers)
            result.latency_before, result.latency_after = before, after
            result.latency_what = "per frame: host pipeline → fused graph"
            if before.samples_ms and len(before.samples_ms) == len(after.samples_ms):  # interleaved rounds
                result.latency_change = judge(before.samples_ms, after.samples_ms)
                result.latency_what += ", timed interleaved"
            return
        if request.source_feeds is None:
            return
        runs = []
        for model, what in ((request.source, "the input model"), (request.optimized, "the optimized model")):
            session = create_session(model, providers=self.providers, what=what)
            mine = {k: v for k, v in request.source_feeds.items() if k in {i.name for i in session.get_inputs()}}
            run_session(session, mine, what=what)  # fail with a sentence, not inside the timing loop
            runs.append((session, mine))
        (first, first_feeds), (second, second_feeds) = runs
        result.latency_before, result.latency_after, result.latency_change = compare_interleaved(
            lambda: first.run(None, first_feeds), lambda: second.run(None, second_feeds), warmup=request.warmup,
            repeats=request.repeats)
        result.latency_what = "per call, same random inputs, input and output timed interleaved"
