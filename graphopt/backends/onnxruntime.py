"""ONNX Runtime backend: the embedded default, writes the optimized ``.onnx``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from .base import Artifact, Backend, BuildOptions, LatencyStats, measure_latency

__all__ = ["OnnxRuntimeBackend"]

logger = logging.getLogger(__name__)


class OnnxRuntimeBackend(Backend):
    """Runs the optimized graph with ONNX Runtime (CPU unless providers are given).

    Args:
        providers: execution providers in priority order; default CPU.
        intra_op_threads: threads per op; 0 lets ONNX Runtime choose (all cores).
    """

    name = "onnxruntime"

    def __init__(self, *, providers: Sequence[str] = ("CPUExecutionProvider",), intra_op_threads: int = 0) -> None:
        self.providers = tuple(providers)
        self.intra_op_threads = intra_op_threads

    def build(self, model: onnx.ModelProto, options: BuildOptions) -> Artifact:
        return Artifact(
            backend=self.name,
            model=model,
            file_name=f"{options.name}.onnx",
            providers=self.providers,
            runtime_version=f"onnxruntime {ort.__version__}",
        )

    def session(self, model: onnx.ModelProto) -> ort.InferenceSession:
        session_options = ort.SessionOptions()
        session_options.log_severity_level = 3
        session_options.intra_op_num_threads = self.intra_op_threads
        return ort.InferenceSession(model.SerializeToString(), session_options, providers=list(self.providers))

    def benchmark(
        self, artifact: Artifact, inputs: Mapping[str, np.ndarray], *, warmup: int = 5, repeats: int = 30
    ) -> LatencyStats:
        session = self.session(artifact.model)
        names = {i.name for i in session.get_inputs()}
        feeds = {k: v for k, v in inputs.items() if k in names}
        return measure_latency(lambda: session.run(None, feeds), warmup=warmup, repeats=repeats)
