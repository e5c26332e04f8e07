"""Tests of the TensorRT backend, driven through a recording stand-in for the ``tensorrt`` module.

The stand-in's enums are those of the real bindings of the version it plays
(``trt_api/<version>.json``), and test_trt_api.py checks its classes against
them; the one test that needs the real TensorRT and a GPU is skipped
elsewhere.
"""

from __future__ import annotations

import ctypes.util
import json
import shutil
import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphopt.backends.tensorrt
from graphopt.backends.base import BuildOptions
from graphopt.backends.tensorrt import (
    EngineBuildError,
    EngineLayer,
    NoCudaDeviceError,
    ParserError,
    TensorRTArtifact,
    TensorRTBackend,
    TensorRTOptions,
    build_engine,
    default_timing_cache,
    engine_layers,
    inspect_engine,
    load_tensorrt,
    network_flags,
    parser_errors,
    tensorrt_version,
    time_engine,
)
from graphopt.errors import BackendUnavailableError, GraphoptError
from graphopt.model_io import OutputStage
from graphopt.verify import random_inputs, run_onnxruntime

from ..conftest import make_model, tensor, value
from .fake_tensorrt import CACHE, PINNED, PLAN, FakeParserError, FakeTensorRT, real_enum

ErrorCode = real_enum("10.3.0", "ErrorCode")
MemoryPoolType = real_enum("10.3.0", "MemoryPoolType")
ProfilingVerbosity = real_enum("10.3.0", "ProfilingVerbosity")


def two_input_model(image=(1, 3, 8, 8)) -> onnx.ModelProto:
    """Conv → Relu → Mul by a second input of another static shape."""
    weight = np.full((4, 3, 3, 3), 0.1, np.float32)
    return make_model(
        [
            helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Mul", ["r", "gain"], ["y"]),
        ],
        [value("image", image), value("gain", (1, 4, 1, 1))],
        [value("y", (image[0], 4, 8, 8))],
        [tensor("w", weight)],
        check=isinstance(image[0], int),
    )


@pytest.mark.parametrize(("text", "expected"), [
    ("10.3.0", (10, 3, 0)), ("11.0.0.12", (11, 0, 0)), ("10.13.0.post1", (10, 13, 0)), ("9.2", (9, 2)),
])
def test_tensorrt_version(text, expected):
    assert tensorrt_version(types.SimpleNamespace(__version__=text)) == expected


def test_tensorrt_version_of_a_prerelease():
    assert tensorrt_version(types.SimpleNamespace(__version__="10.0.0b6")) == (10, 0, 0)


def test_load_tensorrt_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailableError) as caught:
        load_tensorrt()
    message = str(caught.value)
    assert message.startswith("TensorRT is not installed (no Python module 'tensorrt'); install NVIDIA's wheels")
    assert "pip install tensorrt-cu12" in message and "\n" not in message
    assert TensorRTBackend.unavailable_reason() == message


def test_load_tensorrt_placeholder_and_broken_import(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(BackendUnavailableError, match=r"^the installed 'tensorrt' package has no TensorRT in it; inst"):
        load_tensorrt()
    monkeypatch.delitem(sys.modules, "tensorrt")
    (tmp_path / "tensorrt.py").write_text("raise OSError('libnvinfer.so.10: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendUnavailableError) as caught:
        load_tensorrt()
    assert str(caught.value).startswith("'import tensorrt' failed (libnvinfer.so.10: cannot open shared object file);")


def test_load_tensorrt_missing_dependency(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    (tmp_path / "tensorrt.py").write_text("import tensorrt_libs_not_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendUnavailableError, match=r"^'import tensorrt' failed \(No module named 'tensorrt_libs"):
        load_tensorrt()


@pytest.mark.parametrize("version", ["9.3.0", "12.0.1"])
def test_load_tensorrt_refuses_other_majors(monkeypatch, version):
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(version))
    with pytest.raises(BackendUnavailableError) as caught:
        load_tensorrt()
    assert str(caught.value) == f"TensorRT {version} is installed; graphopt's TensorRT backend supports 10.x and 11.x"


@pytest.mark.parametrize("version", ["10.0.1", "11.0.0.12"])
def test_load_tensorrt_accepts_10_and_11(monkeypatch, version):
    fake = FakeTensorRT(version)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    assert load_tensorrt() is fake
    assert TensorRTBackend.unavailable_reason() is None


@pytest.mark.parametrize(("version", "flags"), [("10.0.1", 2), ("10.3.0", 2), ("10.16.1.11", 2), ("11.0.0.114", 0),
                                                ("11.4.0.106", 0)])
def test_network_flags_of_the_real_enums(version, flags):
    """10.x: STRONGLY_TYPED is bit 1; 11.x: bit 0, deprecated and ignored (every network strongly typed), so none."""
    fake = FakeTensorRT(version)
    assert network_flags(fake) == flags
    strongly_typed = int(fake.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert strongly_typed == (1 if version.startswith("10.") else 0)
    deprecated = fake.manifest["deprecated_enum_members"]["NetworkDefinitionCreationFlag"]
    assert deprecated == (["EXPLICIT_BATCH"] if version.startswith("10.") else ["STRONGLY_TYPED"])
    assert {int(m) for m in fake.NetworkDefinitionCreationFlag} == (
        {0, 1, 2, 3} if version.startswith("10.16") else {0, 1} if version.startswith("10.") else {0, 1, 2})


def test_network_flags_without_strongly_typed():
    no_flag = types.SimpleNamespace(__version__="10.3.0", NetworkDefinitionCreationFlag=types.SimpleNamespace())
    with pytest.raises(BackendUnavailableError, match=r"TensorRT 10\.3\.0 cannot create strongly typed networks"):
        network_flags(no_flag)


def test_build_engine_configures_the_builder(tmp_path):
    fake, model = FakeTensorRT(), two_input_model()
    cache_file = tmp_path / "caches" / "trt.timing-cache"
    options = TensorRTOptions(workspace_mb=256, optimization_level=1, timing_cache=cache_file)

    first = build_engine(model, options, trt=fake)

    assert first.plan == PLAN and type(first.plan) is bytes
    assert first.version == "10.3.0" and first.timing_cache_hit is False
    assert fake.network_flags == [2]
    assert onnx.load_from_string(fake.parsed[0]) == model
    config = fake.configs[0]
    assert config.pool_limits == {MemoryPoolType.WORKSPACE: 256 << 20}
    assert config.builder_optimization_level == 1
    assert config.profiling_verbosity == ProfilingVerbosity.DETAILED
    assert [p.shapes for p in config.profiles] == [
        {"image": ((1, 3, 8, 8),) * 3, "gain": ((1, 4, 1, 1),) * 3}]
    assert fake.cache_reads == [b""]
    assert cache_file.read_bytes() == CACHE

    second = build_engine(model, options, trt=fake)

    assert fake.cache_reads == [b"", CACHE]
    assert second.timing_cache_hit is True
    assert sorted(p.name for p in cache_file.parent.iterdir()) == ["trt.timing-cache"]


@pytest.mark.parametrize(("behaviour", "why"), [
    ("reject", "TensorRT rejected it: written by another GPU or TensorRT build, or damaged"),
    ("raise", "TensorRT could not read it: Timing cache is corrupted: magic tag mismatch"),
    ("none", "TensorRT rejected it: written by another GPU or TensorRT build, or damaged"),
])
def test_an_unusable_timing_cache_is_moved_aside_and_rebuilt(tmp_path, behaviour, why):
    fake = FakeTensorRT()
    fake.cache_behaviour = behaviour  # another GPU (set_timing_cache False), or a corrupt file (raises / None)
    cache_file = tmp_path / "trt.timing-cache"
    cache_file.write_bytes(b"\x00garbage")
    options = TensorRTOptions(timing_cache=cache_file)

    first = build_engine(two_input_model(), options, trt=fake)

    assert first.timing_cache_hit is False and first.plan == PLAN
    assert first.notes == [f"the timing cache {cache_file} was not used ({why}); moved to trt.timing-cache.rejected, "
                           "a new one is written"]
    assert (tmp_path / "trt.timing-cache.rejected").read_bytes() == b"\x00garbage"
    assert cache_file.read_bytes() == CACHE
    fake.cache_behaviour = "accept"
    second = build_engine(two_input_model(), options, trt=fake)  # the next build reads the new cache
    assert second.timing_cache_hit is True and second.notes == []


def test_without_a_cuda_device_tensorrt_says_so_in_one_sentence():
    """The real bindings raise this TypeError at Builder() and Runtime() (trt_api/*.json records it)."""
    fake = FakeTensorRT("10.3.0")
    fake.no_device = True
    for version in PINNED:
        behaviour = FakeTensorRT(version).manifest["behaviour_without_libraries"]
        assert behaviour == {"Builder(Logger(WARNING))": "TypeError: pybind11::init(): factory function returned "
                             "nullptr", "Runtime(Logger(WARNING))": "TypeError: pybind11::init(): factory function "
                             "returned nullptr"}
    with pytest.raises(NoCudaDeviceError) as caught:
        build_engine(two_input_model(), TensorRTOptions(), trt=fake)
    assert str(caught.value) == (
        "TensorRT 10.3.0 found no usable CUDA device (its Builder could not be created; check that the GPU and its "
        "driver are visible, e.g. with nvidia-smi, or tegrastats on a Jetson)")
    assert isinstance(caught.value, BackendUnavailableError) and caught.value.__cause__ is None
    with pytest.raises(NoCudaDeviceError, match=r"its Runtime could not be created"):
        inspect_engine(PLAN, trt=fake)


def test_build_engine_refuses_dynamic_input():
    fake = FakeTensorRT()
    with pytest.raises(EngineBuildError, match=r"^the graph input 'image' has shape Nx3x8x8; the TensorRT backend"):
        build_engine(two_input_model(image=("N", 3, 8, 8)), TensorRTOptions(), trt=fake)
    assert fake.network_flags == []


def test_build_engine_builder_failure():
    fake = FakeTensorRT()
    fake.plan = None
    with pytest.raises(EngineBuildError, match=r"^TensorRT's builder could not build an engine from the graph"):
        build_engine(two_input_model(), TensorRTOptions(), trt=fake)


PARSER_ERRORS = [
    FakeParserError(ErrorCode.UNSUPPORTED_NODE, "cubic mode is not supported", 3, "up1", "Resize"),
    FakeParserError(ErrorCode.UNSUPPORTED_NODE, "dynamic max_output_boxes", 7, "nms", "NonMaxSuppression"),
    FakeParserError(ErrorCode.INVALID_GRAPH, "  the graph has no outputs\n"),
    FakeParserError(ErrorCode.UNSUPPORTED_NODE, "k must be a constant", 9, "topk", "TopK"),
]


def test_parser_errors_in_the_message():
    fake = FakeTensorRT()
    fake.parser_errors = PARSER_ERRORS
    with pytest.raises(EngineBuildError) as caught:
        build_engine(two_input_model(), TensorRTOptions(), trt=fake)
    assert str(caught.value) == (
        "TensorRT's ONNX parser refused the graph: Resize 'up1': cubic mode is not supported; "
        "NonMaxSuppression 'nms': dynamic max_output_boxes; the graph has no outputs (and 1 more)"
    )
    assert caught.value.details[3] == "TensorRT's ONNX parser: TopK 'topk': k must be a constant"
    assert len(caught.value.details) == 4
    assert fake.configs == []


def test_parser_errors_fields():
    parser = types.SimpleNamespace(num_errors=len(PARSER_ERRORS), get_error=PARSER_ERRORS.__getitem__)
    errors = parser_errors(parser)
    assert errors[0] == ParserError("ErrorCode.UNSUPPORTED_NODE", "cubic mode is not supported", 3, "up1", "Resize")
    assert errors[2] == ParserError("ErrorCode.INVALID_GRAPH", "the graph has no outputs", None, None, None)
    assert [e.node_index for e in errors] == [3, 7, None, 9]


def test_parser_errors_of_older_tensorrt():
    class Older:  # no node_name; node_operator declared but failing
        def code(self):
            return ErrorCode.INVALID_GRAPH

        def desc(self):
            return "bad input"

        def node(self):
            return 4

        def node_operator(self):
            raise RuntimeError("not available")

    errors = parser_errors(types.SimpleNamespace(num_errors=1, get_error=lambda i: Older()))
    assert errors == [ParserError("ErrorCode.INVALID_GRAPH", "bad input", 4, None, None)]
    assert str(errors[0]) == "node 4: bad input"


def io(name, **fields):
    return {"Name": name, "Location": "Device", "Dimensions": [1, 4, 8, 8], **fields}


TRT10_ENGINE = {"Layers": [
    {"Name": "/conv/Conv + /relu/Relu", "LayerType": "CaskConvolution",
     "Inputs": [io("image", **{"Format/Datatype": "Row major linear FP16 format"})],
     "Outputs": [io("r", **{"Format/Datatype": "Channel major FP16 format where channel % 8 == 0"})],
     "ParameterType": "Convolution", "TacticName": "sm80_xmma_fprop_implicit_gemm_f16f16", "StreamId": 0},
    {"Name": "Reformatting CopyNode for Input Tensor 0 to /head/Conv", "LayerType": "Reformat",
     "Inputs": [io("r", **{"Format/Datatype": "Channel major FP16 format where channel % 8 == 0"})],
     "Outputs": [io("r_fp32", **{"Format/Datatype": "Row major linear FP32"})], "Origin": "REFORMAT"},
    {"Name": "/head/Conv", "LayerType": "CaskConvolution",
     "Inputs": [io("r_fp32", **{"Format/Datatype": "Channel major FP32 format where channel % 4 == 0"})],
     "Outputs": [io("y", **{"Format/Datatype": "Row major linear FP32 format"})]},
], "Bindings": ["image", "y"]}


def test_engine_layers_tensorrt_10():
    assert engine_layers(json.dumps(TRT10_ENGINE)) == [
        EngineLayer("/conv/Conv + /relu/Relu", "CaskConvolution", ("float16",)),
        EngineLayer("Reformatting CopyNode for Input Tensor 0 to /head/Conv", "Reformat", ("float16", "float32")),
        EngineLayer("/head/Conv", "CaskConvolution", ("float32",)),
    ]


def test_engine_layers_tensorrt_11_and_names_only():
    trt11 = {"Layers": [
        {"Name": "/conv/Conv", "LayerType": "Convolution",
         "Inputs": [io("image", Format="Row major linear", DataType="Half")],
         "Outputs": [io("c", Format="Row major linear", DataType="Float")]},
        {"Name": "/topk", "LayerType": "TopK", "Inputs": [io("c", DataType="Float")],
         "Outputs": [io("v", DataType="Float"), io("i", DataType="Int32")]},
    ]}
    assert engine_layers(trt11) == [
        EngineLayer("/conv/Conv", "Convolution", ("float16", "float32")),
        EngineLayer("/topk", "TopK", ("float32", "int32")),
    ]
    names_only = json.dumps({"Layers": ["/conv/Conv + /relu/Relu", "/head/Conv"], "Bindings": ["image", "y"]})
    assert engine_layers(names_only) == [EngineLayer("/conv/Conv + /relu/Relu", ""), EngineLayer("/head/Conv", "")]


def test_options_are_checked():
    with pytest.raises(GraphoptError, match="the TensorRT workspace must be at least 1 MB, got 0"):
        TensorRTOptions(workspace_mb=0)
    with pytest.raises(GraphoptError, match="the TensorRT builder optimization level is 0 to 5, got 6"):
        TensorRTOptions(optimization_level=6)


def test_backend_build(monkeypatch, tmp_path):
    fake = FakeTensorRT("10.8.0.43", engine_json=json.dumps(TRT10_ENGINE))
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = two_input_model()

    artifact = TensorRTBackend().build(model, BuildOptions(name="det"))

    assert isinstance(artifact, TensorRTArtifact)
    assert (artifact.backend, artifact.file_name, artifact.name) == ("tensorrt", "det.engine", "det")
    assert artifact.runtime_version == "TensorRT 10.8.0.43"
    assert fake.inspected == [PLAN]
    assert artifact.layers == engine_layers(TRT10_ENGINE) and len(artifact.layers) == 3
    cache_file = default_timing_cache("10.8.0.43")
    assert cache_file == tmp_path / "cache" / "graphopt" / "tensorrt-10.8.0.43.timing-cache"
    assert cache_file.read_bytes() == CACHE
    with OutputStage(tmp_path / "out") as stage:
        artifact.write(stage)
        stage.commit()
    assert (tmp_path / "out" / "det.engine").read_bytes() == PLAN
    assert onnx.load(tmp_path / "out" / "det.onnx") == model


def test_backend_build_wraps_foreign_errors(monkeypatch, tmp_path):
    fake = FakeTensorRT()
    fake.build_raises = RuntimeError("CUDA initialization failure with error: 35\n  at builder.cpp:112")
    monkeypatch.setattr(graphopt.backends.tensorrt, "load_tensorrt", lambda: fake)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(EngineBuildError) as caught:
        TensorRTBackend().build(two_input_model(), BuildOptions())
    assert str(caught.value) == "TensorRT could not build the engine: CUDA initialization failure with error: 35"
    assert caught.value.__cause__ is fake.build_raises


def _real_tensorrt_missing() -> str | None:
    try:
        load_tensorrt()
    except BackendUnavailableError as error:
        return f"needs TensorRT 10.x or 11.x ({error})"
    if not (ctypes.util.find_library("cudart") or shutil.which("nvidia-smi")):
        return "needs a CUDA device (neither libcudart nor nvidia-smi found)"
    return None


@pytest.mark.skipif(_real_tensorrt_missing() is not None, reason=str(_real_tensorrt_missing()))
@pytest.mark.parametrize(("elem_type", "atol"), [(TensorProto.FLOAT, 1e-3), (TensorProto.FLOAT16, 1e-2)])
def test_real_build_matches_onnxruntime(rng, elem_type, atol):
    dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        [value("x", (1, 3, 16, 16), elem_type)],
        [value("y", (1, 8, 16, 16), elem_type)],
        [tensor("w", (0.1 * rng.standard_normal((8, 3, 3, 3))).astype(dtype)),
         tensor("b", (0.1 * rng.standard_normal(8)).astype(dtype))],
    )
    trt = load_tensorrt()
    built = build_engine(model, TensorRTOptions(workspace_mb=256, optimization_level=0), trt=trt)
    assert len(built.plan) > 0
    precisions = {p for layer in inspect_engine(built.plan, trt=trt) for p in layer.precisions}
    assert ("float16" in precisions) == (elem_type == TensorProto.FLOAT16)

    feeds = random_inputs(model, {"x": (1, 3, 16, 16)}, seed=3)
    expected = run_onnxruntime(model, feeds)["y"]
    timing = time_engine(built.plan, feeds, trt=trt, warmup=1, repeats=3)
    assert timing.outputs["y"].dtype == dtype
    np.testing.assert_allclose(timing.outputs["y"].astype(np.float32), expected.astype(np.float32), atol=atol, rtol=0)
    assert timing.latency.repeats == 3
