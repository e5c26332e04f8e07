"""A recording stand-in for the ``tensorrt`` module, following TensorRT 10's documented Python API.

What graphopt does to it is recorded (network flags, builder configs, parsed
bytes, timing-cache reads, inspected plans); reading ``BuilderFlag`` fails the
test, since graphopt must set no precision flag on a strongly typed network.
"""

from __future__ import annotations

import enum
import json
import types

PLAN = b"serialized engine"
CACHE = b"fake timing cache"


# TensorRT 10: the flag's int is its bit index; TensorRT 11 may no longer declare STRONGLY_TYPED.
NetworkFlag10 = enum.IntEnum("NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
NetworkFlag11 = enum.IntEnum("NetworkDefinitionCreationFlag", {"PREFER_AOT_PYTHON_PLUGINS": 2})
MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1})
ProfilingVerbosity = enum.IntEnum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2})
LayerInformationFormat = enum.IntEnum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1})
ErrorCode = enum.Enum("ErrorCode", {"INVALID_GRAPH": 5, "UNSUPPORTED_NODE": 8})  # str() as pybind11 writes it


class FakeLogger:
    Severity = enum.IntEnum("Severity", {"ERROR": 1, "WARNING": 2, "INFO": 3})
    WARNING = Severity.WARNING

    def __init__(self, min_severity):
        self.min_severity = min_severity


class FakeParserError:
    def __init__(self, code, desc, node=-1, name="", op=""):
        self._values = {"code": code, "desc": desc, "node": node, "node_name": name, "node_operator": op}

    def __getattr__(self, method):
        if method not in self._values:
            raise AttributeError(method)
        return lambda: self._values[method]


class FakeTimingCache:
    def __init__(self, data):
        self.data = data

    def serialize(self):
        return bytearray(CACHE)  # IHostMemory: a buffer, not bytes


class FakeConfig:
    def __init__(self, trt):
        self.trt = trt
        self.pool_limits = {}
        self.builder_optimization_level = 3
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.profiles = []
        self.cache = None

    def set_memory_pool_limit(self, pool, size):
        self.pool_limits[pool] = size

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data):
        self.trt.cache_reads.append(bytes(data))
        return FakeTimingCache(bytes(data))

    def set_timing_cache(self, cache, ignore_mismatch):
        accepted = not (self.trt.reject_cache and cache.data)
        if accepted:
            self.cache = cache
        return accepted

    def get_timing_cache(self):
        return self.cache or FakeTimingCache(b"")


class FakeProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, min, opt, max):
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class FakeBuilder:
    def __init__(self, trt, logger):
        self.trt = trt

    def create_network(self, flags):
        self.trt.network_flags.append(flags)
        return types.SimpleNamespace(flags=flags)

    def create_builder_config(self):
        self.trt.configs.append(FakeConfig(self.trt))
        return self.trt.configs[-1]

    def create_optimization_profile(self):
        return FakeProfile()

    def build_serialized_network(self, network, config):
        if self.trt.build_raises is not None:
            raise self.trt.build_raises
        return None if self.trt.plan is None else bytearray(self.trt.plan)


class FakeOnnxParser:
    def __init__(self, trt, network, logger):
        self.trt = trt

    def parse(self, data):
        self.trt.parsed.append(data)
        return not self.trt.parser_errors

    @property
    def num_errors(self):
        return len(self.trt.parser_errors)

    def get_error(self, index):
        return self.trt.parser_errors[index]


class FakeTensorRT:
    """What graphopt uses of the ``tensorrt`` module, recording what is done to it."""

    Logger = FakeLogger
    MemoryPoolType = MemoryPoolType
    ProfilingVerbosity = ProfilingVerbosity
    LayerInformationFormat = LayerInformationFormat

    def __init__(self, version="10.3.0", flags=NetworkFlag10, engine_json=None):
        self.__version__ = version
        self.NetworkDefinitionCreationFlag = flags
        self.engine_json = engine_json or json.dumps({"Layers": ["/conv/Conv + /relu/Relu"], "Bindings": []})
        self.plan, self.build_raises, self.reject_cache, self.parser_errors = PLAN, None, False, []
        self.network_flags, self.configs, self.parsed, self.cache_reads, self.inspected = [], [], [], [], []

    @property
    def BuilderFlag(self):
        raise AssertionError("graphopt must set no BuilderFlag: the strongly typed network decides every precision")

    def Builder(self, logger):
        return FakeBuilder(self, logger)

    def OnnxParser(self, network, logger):
        return FakeOnnxParser(self, network, logger)

    def Runtime(self, logger):
        engine = types.SimpleNamespace(create_engine_inspector=lambda: types.SimpleNamespace(
            get_engine_information=self._information))
        return types.SimpleNamespace(deserialize_cuda_engine=lambda plan: self.inspected.append(plan) or engine)

    def _information(self, fmt):
        assert fmt == LayerInformationFormat.JSON
        return self.engine_json
