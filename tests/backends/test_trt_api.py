"""The TensorRT backend and its stand-in, checked against the real Python API of every pinned TensorRT version.

``trt_api/<version>.json`` (10.0.1, 10.3.0, 10.16.1, 11.0.0, 11.4.0) is what
NVIDIA's binding wheels declare, recorded by ``tools/trt_manifest.py``; these
tests need neither TensorRT nor a network.

* Every name ``graphopt/backends/tensorrt.py`` uses — ``trt.X``,
  ``trt.X.Y``, and methods and properties of the objects TensorRT returns
  (builder, config, network, parser, engine, context, inspector, timing
  cache, profiler), their types followed through the return types the
  manifests record — exists in every version; one read through
  ``getattr(obj, "name", None)`` or ``_optional_call`` exists in at least
  one; a property it assigns is writable; a method its ``IProfiler``
  subclass overrides is the base class's.
* The stand-in (``fake_tensorrt.py``): every method, property and attribute
  of each of its classes exists in the TensorRT class it plays, in every
  version, with the real parameter names; its enums are the real members
  and values; what it offers as ``tensorrt.<name>`` exists.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import graphopt.backends.tensorrt as backend_module

from .fake_tensorrt import FAKE_CLASSES, PINNED, FakeTensorRT, fake_module_names, manifest, real_enum

BACKEND_SOURCE = Path(backend_module.__file__).read_text()
# Return types the bindings spell in C++ → the Python class.
_CPP_NAMES = {"nvonnxparser::IParserError": "ParserError"}


@dataclass(frozen=True)
class Use:
    """One use of TensorRT's API: ``owner`` is ``"trt"`` (the module) or a class name."""

    owner: str
    name: str
    line: int
    optional: bool = False
    assigned: bool = False
    override: bool = False


def _returns(version: str, owner: str, method: str) -> str | None:
    """The class a method returns in ``version`` (from its recorded signature), if it is a recorded class."""
    member = manifest(version)["classes"].get(owner, {}).get(method, {})
    for signature in member.get("signatures", []):
        found = re.search(r"-> ([\w.:]+)$", signature)
        if found:
            name = _CPP_NAMES.get(found.group(1), found.group(1).removeprefix("tensorrt."))
            if name in manifest(version)["classes"]:
                return name
    return None


class _Scanner(ast.NodeVisitor):
    """Collects the TensorRT names a source uses, typing local names by the manifests' return types."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.uses: list[Use] = []
        self.types: dict[str, str] = {"parser": "OnnxParser", "config": "IBuilderConfig"}  # parameters
        self.class_objects: dict[str, str] = {}
        # Names a local subclass (of trt.IProfiler) defines itself, and the local names holding its instances.
        self.own_names: dict[str, set[str]] = {}
        self.instances: dict[str, str] = {}

    def _type_of(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id == "trt":
                    return func.attr if func.attr in manifest(self.version)["classes"] else None
                owner = self.types.get(func.value.id)
                return _returns(self.version, owner, func.attr) if owner else None
            if isinstance(func, ast.Name) and func.id == "_create" and len(node.args) > 1:
                factory = node.args[1]
                return factory.value if isinstance(factory, ast.Constant) else None
            if isinstance(func, ast.Name) and func.id in self.class_objects:
                return self.class_objects[func.id]
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            if not isinstance(target, ast.Name):
                continue
            value = node.value
            if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "trt":
                self.class_objects[target.id] = value.attr
            elif (typed := self._type_of(value)) is not None:
                self.types[target.id] = typed
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                    self.instances[target.id] = value.func.id

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit_Assign(ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in self.class_objects:
                owner = self.class_objects[base.id]
                self.class_objects[node.name] = owner
                self.own_names[node.name] = {
                    t.attr for t in ast.walk(node) if isinstance(t, ast.Attribute) and isinstance(t.ctx, ast.Store)
                    and isinstance(t.value, ast.Name) and t.value.id == "self"}
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                        self.uses.append(Use(owner, item.name, item.lineno, override=True))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr", "_optional_call") and len(node.args) > 1:
            obj, name = node.args[0], node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                owner = self._owner(obj)
                if owner is not None:
                    self.uses.append(Use(owner, name.value, node.lineno, optional=True))
                    self.visit(obj)
                    return
        self.generic_visit(node)

    def _owner(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return "trt" if node.id == "trt" else self.types.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "trt":
            return node.attr  # trt.X.<name>: a member of X
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = self._owner(node.value)
        local = self.instances.get(node.value.id) if isinstance(node.value, ast.Name) else None
        if local is not None and node.attr in self.own_names.get(local, set()):
            owner = None  # the subclass's own attribute, not TensorRT's
        if owner is not None and not node.attr.startswith("__"):
            self.uses.append(Use(owner, node.attr, node.lineno, assigned=isinstance(node.ctx, ast.Store)))
        self.generic_visit(node)


def scan(source: str, version: str) -> list[Use]:
    """Every use of TensorRT's API in ``source``, typed with ``version``'s manifest."""
    scanner = _Scanner(version)
    scanner.visit(ast.parse(source))
    return scanner.uses


def _has(version: str, use: Use) -> bool:
    api = manifest(version)
    if use.owner == "trt":
        return use.name in api["module"] or (use.name == "__version__" and bool(api["__version__"]))
    if use.owner in api["enums"] and use.owner not in api["classes"]:
        return use.name in api["enums"][use.owner]
    member = api["classes"].get(use.owner, {}).get(use.name)
    if member is None:
        return False
    return not use.assigned or (member["kind"] == "property" and member["writable"])


def problems(source: str) -> list[str]:
    """What ``source`` uses that some pinned version lacks (or none has, for an optional use)."""
    found = []
    per_version = {version: scan(source, version) for version in PINNED}
    for version, uses in per_version.items():
        for use in uses:
            if not use.optional and not _has(version, use):
                what = "assigns" if use.assigned else "overrides" if use.override else "uses"
                found.append(f"line {use.line} {what} {use.owner}.{use.name}, which TensorRT {version} lacks"
                             + (" (or has read-only)" if use.assigned else ""))
    optional = {(u.owner, u.name, u.line) for uses in per_version.values() for u in uses if u.optional}
    for owner, name, line in sorted(optional):
        if not any(_has(v, Use(owner, name, line)) for v in PINNED):
            found.append(f"line {line} reads {owner}.{name}, which no pinned TensorRT has")
    return found


def test_the_backend_uses_only_names_every_pinned_version_has() -> None:
    assert problems(BACKEND_SOURCE) == []


def test_the_scan_sees_what_the_backend_calls() -> None:
    """The scan follows the objects through the manifests' return types (else the test above would see nothing)."""
    uses = {(u.owner, u.name) for u in scan(BACKEND_SOURCE, "10.3.0")}
    expected = {
        ("trt", "Builder"), ("trt", "OnnxParser"), ("trt", "nptype"), ("trt", "IProfiler"),
        ("MemoryPoolType", "WORKSPACE"), ("ProfilingVerbosity", "DETAILED"), ("LayerInformationFormat", "JSON"),
        ("Logger", "WARNING"), ("TensorIOMode", "INPUT"), ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"),
        ("Builder", "create_network"), ("Builder", "create_builder_config"), ("Builder", "build_serialized_network"),
        ("Builder", "create_optimization_profile"), ("IOptimizationProfile", "set_shape"),
        ("OnnxParser", "parse"), ("OnnxParser", "num_errors"), ("OnnxParser", "get_error"),
        ("ParserError", "code"), ("ParserError", "desc"), ("ParserError", "node"), ("ParserError", "node_name"),
        ("ParserError", "node_operator"),
        ("IBuilderConfig", "set_memory_pool_limit"), ("IBuilderConfig", "builder_optimization_level"),
        ("IBuilderConfig", "profiling_verbosity"), ("IBuilderConfig", "add_optimization_profile"),
        ("IBuilderConfig", "create_timing_cache"), ("IBuilderConfig", "set_timing_cache"),
        ("IBuilderConfig", "get_timing_cache"), ("ITimingCache", "serialize"),
        ("Runtime", "deserialize_cuda_engine"), ("ICudaEngine", "create_engine_inspector"),
        ("EngineInspector", "get_engine_information"), ("ICudaEngine", "create_execution_context"),
        ("ICudaEngine", "num_io_tensors"), ("ICudaEngine", "get_tensor_name"), ("ICudaEngine", "get_tensor_shape"),
        ("ICudaEngine", "get_tensor_dtype"), ("ICudaEngine", "get_tensor_mode"),
        ("IExecutionContext", "set_tensor_address"), ("IExecutionContext", "execute_async_v3"),
        ("IExecutionContext", "profiler"), ("IProfiler", "report_layer_time"),
    }
    assert expected - uses == set()
    assigned = {(u.owner, u.name) for u in scan(BACKEND_SOURCE, "10.3.0") if u.assigned}
    assert assigned == {("IBuilderConfig", "builder_optimization_level"), ("IBuilderConfig", "profiling_verbosity"),
                        ("IExecutionContext", "profiler")}


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED",
     "config.set_flag(trt.BuilderFlag.FP16)",
     ["BuilderFlag.FP16, which TensorRT 11.0.0 lacks", "BuilderFlag.FP16, which TensorRT 11.4.0 lacks"]),
    ("network = builder.create_network(network_flags(trt))",
     "network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.PREFER_JIT_PYTHON_PLUGINS))",
     ["PREFER_JIT_PYTHON_PLUGINS, which TensorRT 10.0.1 lacks", "PREFER_JIT_PYTHON_PLUGINS, which TensorRT 10.3.0"]),
    ("engine.num_io_tensors", "engine.num_bindings", ["ICudaEngine.num_bindings, which TensorRT 10.0.1 lacks"]),
    ("context.execute_async_v3(stream)", "context.execute_async_v2([], stream)",
     ["IExecutionContext.execute_async_v2, which TensorRT 10.0.1 lacks"]),
    ("    def report_layer_time(self", "    def report_layer_times(self",
     ["overrides IProfiler.report_layer_times, which TensorRT 10.0.1 lacks"]),
    ("context.profiler = profiler", "context.num_optimization_profiles = profiler",
     ["assigns IExecutionContext.num_optimization_profiles"]),
    ('_optional_call(error, "node_name")', '_optional_call(error, "node_label")',
     ["reads ParserError.node_label, which no pinned TensorRT has"]),
    ("timings.serialize()", "timings.serialise()", ["ITimingCache.serialise, which TensorRT 10.0.1 lacks"]),
])
def test_a_name_some_version_lacks_fails_the_check(old: str, new: str, expected: list[str]) -> None:
    assert old in BACKEND_SOURCE
    found = problems(BACKEND_SOURCE.replace(old, new, 1))
    for text in expected:
        assert any(text in problem for problem in found), (text, found)


def _parameters(signature: str) -> list[str]:
    inner = signature[signature.index("(") + 1:signature.rindex(")")]
    return [name for name in re.findall(r"(?:^|, )(\w+):", inner) if name != "self"]


@pytest.mark.parametrize("version", PINNED)
@pytest.mark.parametrize("fake_class", FAKE_CLASSES, ids=lambda c: c.__name__)
def test_every_member_of_the_stand_in_is_real(version: str, fake_class: type) -> None:
    real = manifest(version)["classes"][fake_class.TRT_CLASS]
    for name, member in vars(fake_class).items():
        if name.startswith("_") or name in ("TRT_CLASS", "RECORDS"):
            continue
        assert name in real, f"{fake_class.__name__}.{name}: TensorRT {version}'s {fake_class.TRT_CLASS} has none"
        kind = "property" if isinstance(member, property) else "method"
        assert real[name]["kind"] == kind, f"{fake_class.__name__}.{name} is a {kind}, really a {real[name]['kind']}"
        if kind == "method":
            mine = [p for p in inspect.signature(member).parameters if p != "self"]
            assert mine in [_parameters(s) for s in real[name]["signatures"]], (fake_class.__name__, name, mine)


@pytest.mark.parametrize("version", PINNED)
def test_what_the_stand_in_sets_on_its_objects_is_writable_in_tensorrt(version: str) -> None:
    fake = FakeTensorRT(version)
    instances = [fake.Builder(None).create_builder_config(), fake.Logger(fake.Logger.WARNING)]
    for instance in instances:
        real = manifest(version)["classes"][type(instance).TRT_CLASS]
        for name in set(vars(instance)) - type(instance).RECORDS:
            assert real.get(name, {}).get("kind") == "property" and real[name]["writable"], (type(instance), name)


@pytest.mark.parametrize("version", PINNED)
def test_the_stand_in_module_offers_only_real_names_and_real_enums(version: str) -> None:
    fake = FakeTensorRT(version)
    api = manifest(version)
    assert fake_module_names(fake) - set(api["module"]) - {"__version__"} == set()
    for name in ("NetworkDefinitionCreationFlag", "MemoryPoolType", "ProfilingVerbosity", "LayerInformationFormat",
                 "ErrorCode", "TensorIOMode"):
        assert {m.name: int(m) for m in getattr(fake, name)} == api["enums"][name], name
    assert {m: int(getattr(fake.Logger, m)) for m in api["enums"]["ILogger.Severity"]} == api["enums"][
        "ILogger.Severity"]
    assert str(real_enum(version, "ErrorCode").UNSUPPORTED_NODE) == "ErrorCode.UNSUPPORTED_NODE"  # as pybind11 writes


def test_the_manifests_are_the_pinned_wheels() -> None:
    """What tools/trt_manifest.py recorded: the wheel, the stubbed entry points, the version the module reports."""
    expected = {"10.0.1": "10.0.1", "10.3.0": "10.3.0", "10.16.1": "10.16.1.11", "11.0.0": "11.0.0.114",
                "11.4.0": "11.4.0.106"}
    for pin in PINNED:
        api = manifest(pin)
        assert api["__version__"] == expected[pin] and api["version"] == expected[pin]
        assert api["package"] == ("tensorrt-cu13-bindings" if pin == "11.4.0" else "tensorrt-cu12-bindings")
        assert "createInferBuilder_INTERNAL" in api["stubbed_symbols"] and len(api["stubbed_symbols"]) == 9
        major = pin.split(".")[0]
        assert sorted(api["needed_libraries"]) == [f"libnvinfer.so.{major}", f"libnvinfer_plugin.so.{major}",
                                                   f"libnvonnxparser.so.{major}"]
    assert "FP16" in manifest("10.16.1")["enums"]["BuilderFlag"]
    assert "FP16" not in manifest("11.0.0")["enums"]["BuilderFlag"]
