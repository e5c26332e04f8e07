"""A recording stand-in for the ``tensorrt`` module, made from the manifests of TensorRT's real Python API.

``trt_api/<version>.json`` is written by ``tools/trt_manifest.py`` from
NVIDIA's binding wheels. The stand-in takes every enum (members and values)
from the manifest of the version it plays, and ``test_trt_api.py`` checks
each of its classes, attribute by attribute and signature by signature,
against the class of TensorRT it stands for (``TRT_CLASS``) in every pinned
version; what a class only records for the tests is listed in its
``RECORDS``.

What graphopt does to it is recorded (network flags, builder configs, parsed
bytes, timing-cache reads, inspected plans); reading ``BuilderFlag`` fails the
test where the version declares it, since graphopt must set no precision flag
on a strongly typed network.
"""

from __future__ import annotations

import enum
import functools
import json
from pathlib import Path
from typing import Any

PLAN = b"serialized engine"
CACHE = b"fake timing cache"
MANIFESTS = Path(__file__).parent / "trt_api"
#: The versions a manifest is committed for, oldest first.
PINNED = ("10.0.1", "10.3.0", "10.16.1", "11.0.0", "11.4.0")


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


@functools.cache
def manifest(version: str) -> dict[str, Any]:
    """The manifest of the pinned release nearest below ``version`` (the oldest or newest outside the pins)."""
    wanted = _release(version)
    below = [pin for pin in PINNED if _release(pin) <= wanted]
    pin = below[-1] if below else PINNED[0]
    return json.loads((MANIFESTS / f"{pin}.json").read_text())


class PybindEnum(enum.IntEnum):
    """An enum as pybind11 writes it: an int whose ``str()`` is ``Type.MEMBER``."""

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


def real_enum(version: str, name: str) -> type[PybindEnum]:
    """The enum ``name`` (``"MemoryPoolType"``, ``"ILogger.Severity"``) with the members and values of ``version``."""
    members = manifest(version)["enums"][name]
    return PybindEnum(name.rsplit(".", 1)[-1], sorted(members.items(), key=lambda item: item[1]))  # type: ignore[return-value]


class FakeLogger:
    TRT_CLASS = "Logger"
    RECORDS = frozenset()

    def __init__(self, min_severity=None):
        self.min_severity = min_severity


class FakeParserError:
    TRT_CLASS = "ParserError"
    RECORDS = frozenset({"values"})

    def __init__(self, code, desc, node=-1, name="", op=""):
        self.values = {"code": code, "desc": desc, "node": node, "node_name": name, "node_operator": op}

    def code(self):
        return self.values["code"]

    def desc(self):
        return self.values["desc"]

    def node(self):
        return self.values["node"]

    def node_name(self):
        return self.values["node_name"]

    def node_operator(self):
        return self.values["node_operator"]


class FakeHostMemory(bytearray):
    """``IHostMemory``: a buffer, not bytes."""

    TRT_CLASS = "IHostMemory"
    RECORDS = frozenset()


class FakeTimingCache:
    TRT_CLASS = "ITimingCache"
    RECORDS = frozenset({"data"})

    def __init__(self, data):
        self.data = data

    def serialize(self):
        return FakeHostMemory(CACHE)


class FakeConfig:
    TRT_CLASS = "IBuilderConfig"
    RECORDS = frozenset({"trt", "pool_limits", "profiles", "cache"})

    def __init__(self, trt):
        self.trt = trt
        self.pool_limits = {}
        self.builder_optimization_level = 3
        self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY
        self.profiles = []
        self.cache = None

    def set_memory_pool_limit(self, pool, pool_size):
        self.pool_limits[pool] = pool_size

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache):
        data = bytes(serialized_timing_cache)
        self.trt.cache_reads.append(data)
        if data and self.trt.cache_behaviour == "raise":
            raise RuntimeError("Timing cache is corrupted: magic tag mismatch")
        if data and self.trt.cache_behaviour == "none":
            return None
        return FakeTimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        accepted = not (self.trt.cache_behaviour == "reject" and cache.data)
        if accepted:
            self.cache = cache
        return accepted

    def get_timing_cache(self):
        return self.cache or FakeTimingCache(b"")


class FakeProfile:
    TRT_CLASS = "IOptimizationProfile"
    RECORDS = frozenset({"shapes"})

    def __init__(self):
        self.shapes = {}

    def set_shape(self, input, min, opt, max):
        self.shapes[input] = (tuple(min), tuple(opt), tuple(max))


class FakeNetwork:
    TRT_CLASS = "INetworkDefinition"
    RECORDS = frozenset({"flags"})

    def __init__(self, flags):
        self.flags = flags


class FakeBuilder:
    TRT_CLASS = "Builder"
    RECORDS = frozenset({"trt"})

    def __init__(self, trt, logger):
        self.trt = trt

    def create_network(self, flags=0):
        self.trt.network_flags.append(flags)
        return FakeNetwork(flags)

    def create_builder_config(self):
        self.trt.configs.append(FakeConfig(self.trt))
        return self.trt.configs[-1]

    def create_optimization_profile(self):
        return FakeProfile()

    def build_serialized_network(self, network, config):
        if self.trt.build_raises is not None:
            raise self.trt.build_raises
        return None if self.trt.plan is None else FakeHostMemory(self.trt.plan)


class FakeOnnxParser:
    TRT_CLASS = "OnnxParser"
    RECORDS = frozenset({"trt"})

    def __init__(self, trt, network, logger):
        self.trt = trt

    def parse(self, model, path=None):
        self.trt.parsed.append(model)
        return not self.trt.parser_errors

    @property
    def num_errors(self):
        return len(self.trt.parser_errors)

    def get_error(self, index):
        return self.trt.parser_errors[index]


class FakeInspector:
    TRT_CLASS = "EngineInspector"
    RECORDS = frozenset({"trt"})

    def __init__(self, trt):
        self.trt = trt

    def get_engine_information(self, format):
        assert format == self.trt.LayerInformationFormat.JSON
        return self.trt.engine_json


class FakeEngine:
    TRT_CLASS = "ICudaEngine"
    RECORDS = frozenset({"trt"})

    def __init__(self, trt):
        self.trt = trt

    def create_engine_inspector(self):
        return FakeInspector(self.trt)


class FakeRuntime:
    TRT_CLASS = "Runtime"
    RECORDS = frozenset({"trt"})

    def __init__(self, trt, logger):
        self.trt = trt

    def deserialize_cuda_engine(self, serialized_engine):
        self.trt.inspected.append(serialized_engine)
        return FakeEngine(self.trt)


#: What the real bindings raise when TensorRT's factory returns null (no CUDA device), as the manifests record it.
NO_DEVICE = TypeError("pybind11::init(): factory function returned nullptr")


class FakeTensorRT:
    """What graphopt uses of the ``tensorrt`` module, as ``version`` declares it, recording what is done to it.

    Args:
        version: the ``__version__`` it reports; its enums come from the
            manifest of the pinned release nearest below it.
        engine_json: what the engine inspector returns.
    """

    RECORDS = frozenset({"plan", "build_raises", "no_device", "cache_behaviour", "parser_errors", "network_flags",
                         "configs", "parsed", "cache_reads", "inspected", "engine_json", "manifest"})

    def __init__(self, version="10.3.0", engine_json=None):
        self.__version__ = version
        self.manifest = manifest(version)
        self.Logger = type("Logger", (FakeLogger,), {})
        for name, member in real_enum(version, "ILogger.Severity").__members__.items():
            setattr(self.Logger, name, member)
        for name in ("NetworkDefinitionCreationFlag", "MemoryPoolType", "ProfilingVerbosity",
                     "LayerInformationFormat", "ErrorCode", "TensorIOMode"):
            setattr(self, name, real_enum(version, name))
        self.engine_json = engine_json or json.dumps({"Layers": ["/conv/Conv + /relu/Relu"], "Bindings": []})
        self.plan, self.build_raises, self.no_device, self.parser_errors = PLAN, None, False, []
        #: "accept"; "reject": set_timing_cache returns False; "raise"/"none": create_timing_cache raises/returns None.
        self.cache_behaviour = "accept"
        self.network_flags, self.configs, self.parsed, self.cache_reads, self.inspected = [], [], [], [], []

    @property
    def BuilderFlag(self):
        if "BuilderFlag" not in self.manifest["module"]:
            raise AttributeError("module 'tensorrt' has no attribute 'BuilderFlag'")
        raise AssertionError("graphopt must set no BuilderFlag: the strongly typed network decides every precision")

    def Builder(self, logger):
        if self.no_device:
            raise NO_DEVICE
        return FakeBuilder(self, logger)

    def OnnxParser(self, network, logger):
        return FakeOnnxParser(self, network, logger)

    def Runtime(self, logger):
        if self.no_device:
            raise NO_DEVICE
        return FakeRuntime(self, logger)


#: Each stand-in class and the TensorRT class it plays.
FAKE_CLASSES = [FakeLogger, FakeParserError, FakeHostMemory, FakeTimingCache, FakeConfig, FakeProfile, FakeNetwork,
                FakeBuilder, FakeOnnxParser, FakeInspector, FakeEngine, FakeRuntime]


def fake_module_names(fake: FakeTensorRT) -> set[str]:
    """The names the stand-in offers as ``tensorrt.<name>`` (what it records for the tests left out)."""
    names = {n for n in dir(fake) if not n.startswith("_")} | {"__version__"}
    return names - FakeTensorRT.RECORDS - {"RECORDS"}


__all__ = ["CACHE", "FAKE_CLASSES", "NO_DEVICE", "PINNED", "PLAN", "FakeParserError", "FakeTensorRT",
           "fake_module_names", "manifest", "real_enum"]
