"""TensorRT backend: a strongly typed engine built from the optimized ONNX graph.

Targets TensorRT 10.x (10.0 and later, what JetPack 6 ships on Jetson Orin;
weak typing is deprecated there since 10.12) and 11.x (weak typing and
``BuilderFlag.FP16`` removed; every network strongly typed). The build is the
same on both: the network is created strongly typed, so every tensor's type
comes from the ONNX graph graphopt wrote — the float16 decisions (the NMS on
log-odds, nodes kept in float32) survive the build unchanged, and no
precision flag is ever set.

``tensorrt`` is imported only when this backend builds or runs something, so
``import graphopt`` and every command work without it; every function that
talks to TensorRT takes the module as an argument (``trt``), which is how the
tests drive the option mapping and error reporting with a stand-in where
TensorRT is not installed.

What a build does (:func:`build_engine`):

1. the ONNX parser reads the graph; every parser error is reported with the
   node it is about (index, name, operator);
2. the builder config gets the workspace limit, the builder optimization
   level, detailed profiling verbosity (layer names and types for the
   report) and a timing cache read from, and written back to, a file, so a
   second build reuses the first one's kernel timings;
3. every input gets an optimization profile with min = opt = max = its static shape;
4. the serialized engine is written as ``<name>.engine`` beside ``<name>.onnx``.

Every TensorRT name used here exists in each pinned release (10.0.1, 10.3.0,
10.16.1, 11.0.0, 11.4.0): ``tests/backends/test_trt_api.py`` checks this
module against manifests of the real bindings. Without a CUDA device the
bindings fail at ``trt.Builder()`` ("factory function returned nullptr"),
reported as :class:`NoCudaDeviceError`; a timing cache TensorRT cannot use
is moved aside and rebuilt; where no engine can be built here,
:mod:`graphopt.backends.trtexec` writes the command that builds it on the
target.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx

from ..errors import BackendUnavailableError, GraphoptError, RuntimeRunError, first_line
from ..model_io import OutputStage
from ..report import BackendResult
from ..timing import LatencyStats, measure_latency
from .base import Artifact, Backend, BuildOptions, Deployment, DeployRequest
from .onnxruntime import OnnxRuntimeBackend
from .tensorrt_common import EngineBuildError, TensorRTOptions, static_input_shapes
from .tensorrt_support import DEFAULT_TARGET, UnsupportedNode, onnx_matrix, unsupported_by_tensorrt
from .trtexec import trtexec_fallback

__all__ = [
    "INSTALL_HINT",
    "EngineBuild",
    "EngineBuildError",
    "EngineLayer",
    "EngineTiming",
    "NoCudaDeviceError",
    "ParserError",
    "TensorRTArtifact",
    "TensorRTBackend",
    "TensorRTOptions",
    "build_engine",
    "default_timing_cache",
    "engine_layers",
    "inspect_engine",
    "load_tensorrt",
    "network_flags",
    "parser_errors",
    "static_input_shapes",
    "tensorrt_version",
    "time_engine",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install NVIDIA's wheels with 'pip install tensorrt-cu12' (CUDA 12; 'tensorrt-cu13' for CUDA 13), "
    "or use the TensorRT that JetPack ships on Jetson"
)

_NO_ENGINE = "the optimized ONNX is written, the engine is not"

#: The TensorRT major versions this backend is written against.
SUPPORTED_MAJORS = (10, 11)


class NoCudaDeviceError(BackendUnavailableError):
    """TensorRT is installed but finds no CUDA device: its factories (``Builder``, ``Runtime``) return null."""


def _create(trt: ModuleType, factory: str, log: Any) -> Any:
    """``trt.Builder(log)`` or ``trt.Runtime(log)``, or :class:`NoCudaDeviceError` where TensorRT returns null.

    The real bindings (every pinned version, see ``tests/backends/trt_api``)
    raise ``TypeError: pybind11::init(): factory function returned nullptr``
    when TensorRT's factory returns null, which it does without a usable CUDA
    device (or driver).
    """
    try:
        return getattr(trt, factory)(log)
    except TypeError as error:
        if "returned nullptr" not in str(error):
            raise
        raise NoCudaDeviceError(
            f"TensorRT {getattr(trt, '__version__', '')} found no usable CUDA device (its {factory} could not be "
            "created; check that the GPU and its driver are visible, e.g. with nvidia-smi, or tegrastats on a Jetson)"
        ) from None


@dataclass(frozen=True)
class ParserError:
    """One error of TensorRT's ONNX parser, with the node it is about when it names one."""

    code: str
    description: str
    node_index: int | None = None
    node_name: str | None = None
    op_type: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.node_name:
            where = f"{self.op_type or 'node'} '{self.node_name}': "
        elif self.node_index is not None and self.node_index >= 0:
            where = f"{self.op_type + ' ' if self.op_type else ''}node {self.node_index}: "
        elif self.op_type:
            where = f"{self.op_type}: "
        return f"{where}{self.description}"


@dataclass(frozen=True)
class EngineLayer:
    """One layer of a built engine, after TensorRT's own fusions."""

    name: str
    layer_type: str
    precisions: tuple[str, ...] = ()


@dataclass
class EngineBuild:
    """A serialized engine and what the build did."""

    plan: bytes
    version: str
    build_s: float
    timing_cache_hit: bool = False
    layers: list[EngineLayer] = field(default_factory=list)
    #: Sentences for the report (e.g. a timing cache TensorRT could not use, moved aside).
    notes: list[str] = field(default_factory=list)


def tensorrt_version(trt: ModuleType) -> tuple[int, ...]:
    """TensorRT's version as integers, e.g. ``(10, 3, 0)``."""
    parts = []
    for piece in str(getattr(trt, "__version__", "0")).split(".")[:3]:
        digits = re.match(r"\d*", piece)
        parts.append(int(digits.group() or 0) if digits else 0)  # "0b6" (an early-access build) is 0
    return tuple(parts)


def load_tensorrt() -> ModuleType:
    """Imports ``tensorrt``, or says in one sentence what is missing and how to install it.

    Raises:
        BackendUnavailableError: not installed (or the placeholder package
            that only downloads the real one), or a major version this
            backend is not written for.
    """
    try:
        import tensorrt as trt
    except ModuleNotFoundError as error:
        if error.name == "tensorrt":
            raise BackendUnavailableError(
                f"TensorRT is not installed (no Python module 'tensorrt'); {INSTALL_HINT}") from None
        raise BackendUnavailableError(f"'import tensorrt' failed ({first_line(error)}); {INSTALL_HINT}") from None
    except Exception as error:  # the placeholder wheel, or libraries it cannot load
        raise BackendUnavailableError(f"'import tensorrt' failed ({first_line(error)}); {INSTALL_HINT}") from None
    if not hasattr(trt, "Builder"):
        raise BackendUnavailableError(f"the installed 'tensorrt' package has no TensorRT in it; {INSTALL_HINT}")
    major = tensorrt_version(trt)[0]
    if major not in SUPPORTED_MAJORS:
        raise BackendUnavailableError(
            f"TensorRT {getattr(trt, '__version__', '(no version)')} is installed; graphopt's TensorRT backend "
            "supports 10.x and 11.x"
        )
    return trt


def network_flags(trt: ModuleType) -> int:
    """The ``create_network`` flags of a strongly typed network.

    TensorRT 10 creates weakly typed networks unless ``STRONGLY_TYPED`` (bit
    1) is set. TensorRT 11 types every network strongly: its
    ``STRONGLY_TYPED`` (bit 0 there) is deprecated and ignored, so no flag is
    set. ``EXPLICIT_BATCH`` (10.x only, deprecated) is the only mode of both
    and is not set.
    """
    if tensorrt_version(trt)[0] >= 11:
        return 0
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        raise BackendUnavailableError(
            f"TensorRT {getattr(trt, '__version__', '(no version)')} cannot create strongly typed networks; "
            "graphopt needs 10.0 or later"
        )
    return 1 << int(flag)


def _optional_call(obj: Any, method: str) -> Any:
    """``obj.method()`` where the installed version declares and answers it, else ``None``."""
    function = getattr(obj, method, None)
    try:
        return function() if callable(function) else None
    except Exception:  # an accessor the installed version declares but cannot answer
        return None


def parser_errors(parser: Any) -> list[ParserError]:
    """Every error the ONNX parser recorded, with node index, name and operator where it gives them."""
    errors = []
    for index in range(int(parser.num_errors)):
        error = parser.get_error(index)
        node = _optional_call(error, "node")
        errors.append(ParserError(
            code=str(_optional_call(error, "code") or ""),
            description=str(_optional_call(error, "desc") or "").strip(),
            node_index=int(node) if isinstance(node, int) and node >= 0 else None,
            node_name=_optional_call(error, "node_name") or None,
            op_type=_optional_call(error, "node_operator") or None,
        ))
    return errors


def build_engine(model: onnx.ModelProto, options: TensorRTOptions, *, trt: ModuleType | None = None) -> EngineBuild:
    """Parses ``model``, builds a strongly typed engine and returns it serialized.

    Raises:
        EngineBuildError: the parser or the builder refused the graph; the
            message lists the parser's errors by node.
        BackendUnavailableError: TensorRT is missing or too old.
    """
    trt = trt if trt is not None else load_tensorrt()
    shapes = static_input_shapes(model)
    log = trt.Logger(trt.Logger.WARNING)
    builder = _create(trt, "Builder", log)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, log)
    if not parser.parse(model.SerializeToString()):
        errors = parser_errors(parser)
        shown = "; ".join(str(e) for e in errors[:3]) + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")
        raise EngineBuildError(f"TensorRT's ONNX parser refused the graph: {shown or 'no reason given'}",
                               details=[f"TensorRT's ONNX parser: {e}" for e in errors])
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    config.builder_optimization_level = options.optimization_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    profile = builder.create_optimization_profile()
    for name, shape in shapes.items():
        profile.set_shape(name, shape, shape, shape)
    if config.add_optimization_profile(profile) < 0:
        raise EngineBuildError(f"TensorRT refused the static-shape optimization profile {shapes}")
    hit, notes = _attach_timing_cache(config, options.timing_cache)
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - start
    if plan is None:
        raise EngineBuildError(
            "TensorRT's builder could not build an engine from the graph (its log above says why; "
            "try a larger --trt-workspace-mb)"
        )
    timings = config.get_timing_cache()
    if options.timing_cache is not None and timings is not None:
        options.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = options.timing_cache.with_name(options.timing_cache.name + ".tmp")
        temporary.write_bytes(bytes(memoryview(timings.serialize())))
        os.replace(temporary, options.timing_cache)
    return EngineBuild(plan=bytes(memoryview(plan)), version=str(trt.__version__), build_s=build_s,
                       timing_cache_hit=hit, notes=notes)


def _attach_timing_cache(config: Any, path: Path | None) -> tuple[bool, list[str]]:
    """Gives ``config`` the timing cache read from ``path``; returns whether it was used, and notes.

    A file TensorRT cannot use (corrupt or truncated: ``create_timing_cache``
    raises or returns nothing; written by another GPU or TensorRT build:
    ``set_timing_cache`` refuses it) is moved aside to ``<file>.rejected``
    and the build starts an empty cache, written back to ``path`` after it,
    so one bad file costs one build its cached timings and never fails a
    later build.
    """
    data = path.read_bytes() if path is not None and path.is_file() else b""
    if data and path is not None:
        try:
            cache = config.create_timing_cache(data)
            used = cache is not None and bool(config.set_timing_cache(cache, False))
            why = "TensorRT rejected it: written by another GPU or TensorRT build, or damaged"
        except Exception as error:  # TensorRT's own error types for a corrupt cache
            used, why = False, f"TensorRT could not read it: {first_line(error)}"
        if used:
            return True, []
        aside = path.with_name(path.name + ".rejected")
        os.replace(path, aside)
        note = f"the timing cache {path} was not used ({why}); moved to {aside.name}, a new one is written"
        logger.warning("%s", note)
        config.set_timing_cache(config.create_timing_cache(b""), False)
        return False, [note]
    config.set_timing_cache(config.create_timing_cache(b""), False)
    return False, []


# Data-type words of the engine inspector, as TensorRT 10 writes them inside
# "Format/Datatype" ("Row major linear FP32", "Channel major FP16 format where …")
# and TensorRT 11 writes them in a field of their own.
_PRECISION_WORDS = {
    "FP32": "float32", "FLOAT": "float32", "FP16": "float16", "HALF": "float16", "BF16": "bfloat16",
    "INT8": "int8", "INT32": "int32", "INT64": "int64", "UINT8": "uint8", "BOOL": "bool", "FP8": "fp8",
}


def _precision(tensor: Mapping[str, Any]) -> str | None:
    for key in ("DataType", "Datatype", "Data Type", "Format/Datatype"):
        text = tensor.get(key)
        if isinstance(text, str):
            for word in text.replace("/", " ").replace(",", " ").split():
                found = _PRECISION_WORDS.get(word.upper())
                if found:
                    return found
    return None


def engine_layers(information: str | Mapping[str, Any]) -> list[EngineLayer]:
    """The layers of an engine from the inspector's JSON (``LayerInformationFormat.JSON``).

    Reads both layouts: TensorRT 10's (``"Format/Datatype"`` strings) and
    TensorRT 11's (the data type in its own field); layers given by name only
    (an engine built without detailed profiling verbosity) have no type or
    precisions.
    """
    data = json.loads(information) if isinstance(information, str) else information
    layers = []
    for layer in data.get("Layers", []):
        if isinstance(layer, str):
            layers.append(EngineLayer(name=layer, layer_type=""))
            continue
        precisions = []
        for tensor in [*layer.get("Inputs", []), *layer.get("Outputs", [])]:
            found = _precision(tensor) if isinstance(tensor, Mapping) else None
            if found and found not in precisions:
                precisions.append(found)
        layers.append(EngineLayer(name=str(layer.get("Name", "")), layer_type=str(layer.get("LayerType", "")),
                                  precisions=tuple(precisions)))
    return layers


def inspect_engine(plan: bytes, *, trt: ModuleType) -> list[EngineLayer]:
    """The layers of a serialized engine, after TensorRT's fusions, with their precisions.

    Raises:
        RuntimeRunError: the engine cannot be deserialized here (another
            TensorRT version, or no GPU).
    """
    runtime = _create(trt, "Runtime", trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise RuntimeRunError("TensorRT cannot load the engine it built (see its log above)")
    inspector = engine.create_engine_inspector()
    return engine_layers(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


class _CudaRuntime:
    """The five CUDA runtime calls a TensorRT engine run needs, through ctypes on ``libcudart``.

    NVIDIA's wheels bring ``libcudart`` (``nvidia-cuda-runtime-cu12``/``-cu13``)
    and JetPack installs it; using it directly keeps PyTorch, CuPy and
    cuda-python out of graphopt's dependencies.
    """

    _HOST_TO_DEVICE, _DEVICE_TO_HOST = 1, 2

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        names = [ctypes.util.find_library("cudart"), "libcudart.so", "libcudart.so.13", "libcudart.so.12",
                 "libcudart.so.11.0"]
        for package in ("nvidia.cuda_runtime", "nvidia.cu13", "nvidia.cu12"):
            try:
                module = __import__(package, fromlist=["__path__"])
            except ImportError:
                continue
            for root in getattr(module, "__path__", []):
                names.extend(str(p) for p in sorted(Path(root).glob("lib/libcudart.so*")))
        for name in names:
            if not name:
                continue
            try:
                self._lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise BackendUnavailableError(f"the CUDA runtime library (libcudart) was not found; {INSTALL_HINT}")
        self._ctypes = ctypes

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeRunError(f"CUDA {what} failed with error {status}")

    def malloc(self, size: int) -> int:
        pointer = self._ctypes.c_void_p()
        self._check(self._lib.cudaMalloc(self._ctypes.byref(pointer), self._ctypes.c_size_t(max(size, 1))),
                    "cudaMalloc")
        return int(pointer.value or 0)

    def free(self, pointer: int) -> None:
        self._lib.cudaFree(self._ctypes.c_void_p(pointer))

    def to_device(self, pointer: int, array: Any) -> None:
        self._check(self._lib.cudaMemcpy(self._ctypes.c_void_p(pointer), self._ctypes.c_void_p(array.ctypes.data),
                                         self._ctypes.c_size_t(array.nbytes), self._HOST_TO_DEVICE), "cudaMemcpy")

    def to_host(self, array: Any, pointer: int) -> None:
        self._check(self._lib.cudaMemcpy(self._ctypes.c_void_p(array.ctypes.data), self._ctypes.c_void_p(pointer),
                                         self._ctypes.c_size_t(array.nbytes), self._DEVICE_TO_HOST), "cudaMemcpy")

    def stream(self) -> int:
        handle = self._ctypes.c_void_p()
        self._check(self._lib.cudaStreamCreate(self._ctypes.byref(handle)), "cudaStreamCreate")
        return int(handle.value or 0)

    def destroy(self, stream: int) -> None:
        self._lib.cudaStreamDestroy(self._ctypes.c_void_p(stream))

    def synchronize(self, stream: int) -> None:
        self._check(self._lib.cudaStreamSynchronize(self._ctypes.c_void_p(stream)), "cudaStreamSynchronize")


@dataclass
class EngineTiming:
    """End-to-end latency of an engine and the median time of each of its layers."""

    latency: LatencyStats
    layer_ms: dict[str, float]
    outputs: dict[str, Any]


def time_engine(plan: bytes, inputs: Mapping[str, Any], *, trt: ModuleType, warmup: int = 5,
                repeats: int = 30) -> EngineTiming:
    """Runs a serialized engine on ``inputs``: end-to-end latency and per-layer times.

    End to end is what a caller pays per call: inputs copied to the device,
    ``execute_async_v3``, outputs copied back, synchronized. Per-layer times
    come from a :class:`tensorrt.IProfiler` on separate runs (profiling slows
    the engine down), median per layer over ``repeats``.

    Raises:
        RuntimeRunError: the engine cannot be loaded or run here.
    """
    runtime = _create(trt, "Runtime", trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise RuntimeRunError("TensorRT cannot load the engine it built (see its log above)")
    context = engine.create_execution_context()
    cuda = _CudaRuntime()
    stream = cuda.stream()
    host: dict[str, Any] = {}
    device: dict[str, int] = {}
    try:
        input_names = _bind_buffers(engine, context, cuda, inputs, trt=trt, host=host, device=device)

        def run() -> None:
            for name in input_names:
                cuda.to_device(device[name], host[name])
            if not context.execute_async_v3(stream):
                raise RuntimeRunError("TensorRT could not run the engine (see its log above)")
            cuda.synchronize(stream)
            for name in host:
                if name not in input_names:
                    cuda.to_host(host[name], device[name])

        latency = measure_latency(run, warmup=warmup, repeats=repeats)
        layer_ms = _layer_times(context, run, trt=trt, repeats=repeats)
        outputs = {name: array.copy() for name, array in host.items() if name not in input_names}
    finally:
        for pointer in device.values():
            cuda.free(pointer)
        cuda.destroy(stream)
    return EngineTiming(latency=latency, layer_ms=layer_ms, outputs=outputs)


def _bind_buffers(engine: Any, context: Any, cuda: _CudaRuntime, inputs: Mapping[str, Any], *, trt: ModuleType,
                  host: dict[str, Any], device: dict[str, int]) -> list[str]:
    """A host array and a device buffer for every tensor of ``engine``, bound to ``context``; the input names.

    The arrays and buffers go into ``host`` and ``device`` as they are made,
    so that the caller frees every buffer even when this raises halfway.
    """
    inputs_mode = trt.TensorIOMode.INPUT
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        shape = tuple(engine.get_tensor_shape(name))
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
        if engine.get_tensor_mode(name) == inputs_mode:
            if name not in inputs:
                raise RuntimeRunError(f"no input given for the engine's input '{name}'")
            host[name] = np.ascontiguousarray(inputs[name], dtype=dtype).reshape(shape)
        else:
            host[name] = np.empty(shape, dtype=dtype)
        device[name] = cuda.malloc(host[name].nbytes)
        context.set_tensor_address(name, device[name])
    return [n for n in host if engine.get_tensor_mode(n) == inputs_mode]


def _layer_times(context: Any, run: Callable[[], None], *, trt: ModuleType, repeats: int) -> dict[str, float]:
    """Median milliseconds of each layer over ``repeats`` runs under a :class:`tensorrt.IProfiler`."""
    profiler_base: Any = trt.IProfiler

    class LayerTimes(profiler_base):
        def __init__(self) -> None:
            profiler_base.__init__(self)
            self.times: dict[str, list[float]] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times.setdefault(layer_name, []).append(float(ms))

    profiler = LayerTimes()
    context.profiler = profiler
    for _ in range(repeats):
        run()
    return {name: float(np.median(times)) for name, times in profiler.times.items()}


@dataclass
class TensorRTArtifact(Artifact):
    """The optimized ONNX and its serialized engine, written side by side (``<name>.onnx``, ``<name>.engine``).

    Without ``build`` (the engine could not be built here) the ONNX is
    written, and with ``trtexec`` the script that builds the engine on the
    target (``<name>.trtexec.sh``, executable).
    """

    name: str = "model"
    build: EngineBuild | None = None
    layers: list[EngineLayer] = field(default_factory=list)
    layer_ms: dict[str, float] = field(default_factory=dict)
    trtexec: str | None = None

    def files(self) -> list[str]:
        extra = [f"{self.name}.engine"] if self.build is not None else []
        if self.build is None and self.trtexec is not None:
            extra.append(f"{self.name}.trtexec.sh")
        return [f"{self.name}.onnx", *extra]

    def write(self, stage: OutputStage) -> None:
        stage.save_model(f"{self.name}.onnx", self.model)
        if self.build is not None:
            stage.write_bytes(f"{self.name}.engine", self.build.plan)
        elif self.trtexec is not None:
            stage.write_text(f"{self.name}.trtexec.sh", self.trtexec)
            stage.path(f"{self.name}.trtexec.sh").chmod(0o755)


def default_timing_cache(version: str) -> Path:
    """Where builds keep their kernel timings by default: one file per TensorRT version, reused by every build."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "graphopt" / f"tensorrt-{version}.timing-cache"


class TensorRTBackend(Backend):
    """Builds a strongly typed TensorRT engine from the optimized graph and times it on the GPU.

    Args:
        options: workspace, optimization level and timing cache of the build.
    """

    name = "tensorrt"

    def __init__(self, *, options: TensorRTOptions | None = None) -> None:
        self.options = options or TensorRTOptions()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            load_tensorrt()
        except BackendUnavailableError as error:
            return str(error)
        return None

    @classmethod
    def runtime_description(cls) -> str:
        return f"TensorRT {load_tensorrt().__version__}, strongly typed engines"

    def check_support(self, model: onnx.ModelProto) -> tuple[list[UnsupportedNode], str]:
        """The nodes the targeted TensorRT's parser would refuse, and a sentence saying which version that is."""
        target, why = self.support_target()
        matrix = onnx_matrix(target)
        low, high = matrix.opsets
        checked = (f"checked against the ONNX support matrix of TensorRT {matrix.tensorrt}'s parser (opsets {low} to "
                   f"{high}) for TensorRT {target}, {why}")
        return unsupported_by_tensorrt(model, target=target), checked

    def support_target(self) -> tuple[str, str]:
        """The TensorRT version the ONNX support pre-check holds the graph to, and why that one."""
        if self.options.target_version is not None:
            return self.options.target_version, "given"
        try:
            return str(load_tensorrt().__version__), "installed here"
        except BackendUnavailableError:
            return DEFAULT_TARGET, "the default target, JetPack 6's; none is installed here"

    def build(self, model: onnx.ModelProto, options: BuildOptions) -> TensorRTArtifact:
        trt = load_tensorrt()
        build_options = self.options
        if build_options.timing_cache is None:
            build_options = replace(build_options, timing_cache=default_timing_cache(str(trt.__version__)))
        try:
            built = build_engine(model, build_options, trt=trt)
        except GraphoptError:
            raise
        except Exception as error:  # TensorRT raises its own types (no GPU, out of memory, …)
            raise EngineBuildError(f"TensorRT could not build the engine: {first_line(error)}") from error
        artifact = TensorRTArtifact(
            backend=self.name,
            model=model,
            file_name=f"{options.name}.engine",
            providers=("TensorRT",),
            runtime_version=f"TensorRT {built.version}",
            name=options.name,
            build=built,
        )
        try:
            artifact.layers = inspect_engine(built.plan, trt=trt)
        except Exception as error:  # inspection is a report, not a reason to fail the build
            logger.warning("TensorRT engine inspection failed: %s", first_line(error))
        return artifact

    def benchmark(
        self, artifact: Artifact, inputs: Mapping[str, Any], *, warmup: int = 5, repeats: int = 30
    ) -> LatencyStats:
        if isinstance(artifact, TensorRTArtifact) and artifact.build is not None:
            timing = time_engine(artifact.build.plan, inputs, trt=load_tensorrt(), warmup=warmup, repeats=repeats)
            artifact.layer_ms = timing.layer_ms
            return timing.latency
        # The model it started from (the "before" of the report) runs on onnxruntime's best providers.
        fallback = OnnxRuntimeBackend()
        return fallback.benchmark(fallback.build(artifact.model, BuildOptions()), inputs, warmup=warmup,
                                  repeats=repeats)

    def deploy(self, request: DeployRequest) -> Deployment:
        """The pre-build check, the engine and its layers, and its latency against the graph in onnxruntime.

        Where TensorRT is missing or refuses the graph, the optimized ONNX is
        still the artifact and :attr:`Deployment.error` says why there is no
        engine; where TensorRT or a CUDA device is missing, ``<name>.trtexec.sh``
        beside it builds the same engine on the target.
        """
        optimized, name = request.optimized, request.name
        built, notes, error = self._build_or_say_why(optimized, name)
        artifact = built or TensorRTArtifact(backend=self.name, model=optimized, file_name=f"{name}.onnx", name=name)
        if isinstance(error, BackendUnavailableError):  # no TensorRT or no GPU here: the command for the target
            artifact.trtexec, note = trtexec_fallback(optimized, name, self.options, reason=str(error))
            notes.append(note)
            if artifact.trtexec is not None:
                error = BackendUnavailableError(f"{error} ({name}.trtexec.sh beside it builds it where TensorRT is)")
        result = BackendResult(name=self.name, artifact=artifact.file_name, providers=artifact.providers,
                               runtime_version=artifact.runtime_version, notes=notes)
        if built is not None and request.benchmark:
            self._time_against_onnxruntime(request, built, result)
        if built is not None:
            result.layers = [{"name": layer.name, "type": layer.layer_type, "precisions": list(layer.precisions),
                              "median_ms": built.layer_ms.get(layer.name)} for layer in built.layers]
            result.notes.extend(built.build.notes if built.build is not None else [])
        return Deployment(artifact, result, error)

    def _build_or_say_why(self, optimized: onnx.ModelProto,
                          name: str) -> tuple[TensorRTArtifact | None, list[str], GraphoptError | None]:
        """The engine, the report's notes (the pre-check, every parser error), and why there is no engine."""
        findings, checked = self.check_support(optimized)
        notes = [checked, *(f"TensorRT's ONNX parser would refuse {finding}" for finding in findings)]
        unavailable = self.unavailable_reason()
        if findings:
            return None, notes, EngineBuildError(
                f"{len(findings)} node(s) of the optimized graph are not supported by TensorRT's ONNX parser, "
                f"first {findings[0]} (all in report.md); {_NO_ENGINE}")
        if unavailable is not None:
            return None, notes, BackendUnavailableError(f"{unavailable}; {_NO_ENGINE}")
        try:
            return self.build(optimized, BuildOptions(name=name)), notes, None
        except EngineBuildError as failure:
            notes.extend(failure.details)  # every parser error, by node, in the report
            return None, notes, EngineBuildError(f"{failure}; {_NO_ENGINE}", failure.details)
        except BackendUnavailableError as failure:
            return None, notes, BackendUnavailableError(f"{failure}; {_NO_ENGINE}")

    def _time_against_onnxruntime(self, request: DeployRequest, built: TensorRTArtifact,
                                  result: BackendResult) -> None:
        feeds = request.feeds()
        if feeds is None:
            result.notes.append("the engine was not timed: the graph's input shapes are not all known")
            return
        reference = OnnxRuntimeBackend()
        try:
            result.latency_after = self.benchmark(built, feeds, warmup=request.warmup, repeats=request.repeats)
        except (RuntimeRunError, BackendUnavailableError) as failure:
            result.notes.append(f"the engine was built but not run here: {first_line(failure)}")
            return
        result.latency_before = reference.benchmark(reference.build(request.optimized, BuildOptions(name=request.name)),
                                                    feeds, warmup=request.warmup, repeats=request.repeats)
        result.latency_what = (f"per call, the optimized graph: onnxruntime ({', '.join(reference.providers)}) "
                               "→ its TensorRT engine")
