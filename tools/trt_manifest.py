"""Writes the manifest of TensorRT's real Python API, one JSON file per pinned version, from NVIDIA's wheels.

The TensorRT backend is tested against a stand-in (``tests/backends/fake_tensorrt.py``);
these manifests are what keeps the stand-in and the backend honest without a
GPU or TensorRT's libraries. For each pinned version the script:

1. downloads the binding wheel from PyPI (``pip download --no-deps``, about
   1.3 MB; cached under ``~/.cache/graphopt/trt-wheels``, never in the repo);
2. unzips it and lists, with ``nm -D --undefined-only``, the entry points the
   compiled module takes from TensorRT's libraries (``createInferBuilder_INTERNAL``,
   …) and, with ``readelf -d``, the sonames it needs (``libnvinfer.so.10``, …);
3. builds with ``gcc`` a stub library defining those entry points (each
   returns null) under each soname, so the module imports here;
4. imports the module in a subprocess with the stub on ``LD_LIBRARY_PATH``
   and records every name under ``tensorrt.``, every enum's members and
   values, the methods (with their signatures) and properties (with
   writability) of the classes the backend calls, and what ``Builder()`` and
   ``Runtime()`` do when TensorRT's factory returns null (as without a CUDA
   device).

Run: ``python tools/trt_manifest.py`` (all pinned versions) or
``python tools/trt_manifest.py 10.3.0``. Needs network access to PyPI, ``gcc``,
``nm``, ``readelf`` and Python 3.11 (the wheels' ABI is taken from the running
interpreter).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["PINNED", "main", "write_manifest"]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "backends" / "trt_api"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "graphopt" / "trt-wheels"

#: Manifest name → (PyPI package, exact version of its binding wheel).
PINNED = {
    "10.0.1": ("tensorrt-cu12-bindings", "10.0.1"),
    "10.3.0": ("tensorrt-cu12-bindings", "10.3.0"),
    "10.16.1": ("tensorrt-cu12-bindings", "10.16.1.11"),
    "11.0.0": ("tensorrt-cu12-bindings", "11.0.0.114"),
    "11.4.0": ("tensorrt-cu13-bindings", "11.4.0.106"),
}

#: The classes whose methods and properties are recorded in full (the backend calls them, or may).
CLASSES = [
    "Builder", "IBuilderConfig", "INetworkDefinition", "OnnxParser", "ParserError", "ICudaEngine",
    "IExecutionContext", "EngineInspector", "Runtime", "ITimingCache", "IProfiler", "IOptimizationProfile",
    "IHostMemory", "ILogger", "Logger", "ITensor",
]

# Run inside the subprocess that imports the real module; prints the manifest as JSON.
_DUMP = r'''
import inspect, json, re, sys
import tensorrt_bindings as trt

CLASSES = json.loads(sys.argv[1])

def clean(text):
    return re.sub(r"tensorrt_bindings\.tensorrt\.", "tensorrt.", text or "")

def is_enum(obj):
    return isinstance(obj, type) and hasattr(obj, "__members__")

def kind(obj):
    if is_enum(obj):
        return "enum"
    if isinstance(obj, type):
        return "class"
    if callable(obj):
        return "function"
    return type(obj).__name__

def signatures(name, obj):
    lines = [line.strip() for line in clean(getattr(obj, "__doc__", "")).splitlines()]
    found = [re.sub(r"^\d+\. ", "", line) for line in lines if re.match(rf"^(\d+\. )?{re.escape(name)}\(", line)]
    return [s for s in found if "*args, **kwargs" not in s] or found

def deprecated_ivars(cls):
    found = re.findall(r":ivar (\w+):[^\n]*\[DEPRECATED\]", cls.__doc__ or "")
    return set(found)

def members(cls):
    out = {}
    old = deprecated_ivars(cls)
    for name in dir(cls):
        if name.startswith("_") and name != "__init__":
            continue
        raw = inspect.getattr_static(cls, name)
        obj = getattr(cls, name)
        if isinstance(raw, property):
            getter = clean(getattr(raw.fget, "__doc__", "")).splitlines()
            returns = re.search(r"-> ([\w.\[\], ]+)$", getter[0].strip()) if getter else None
            out[name] = {"kind": "property", "writable": raw.fset is not None,
                         "type": returns.group(1) if returns else None}
            if name in old:
                out[name]["deprecated"] = True
        elif is_enum(obj):
            out[name] = {"kind": "enum"}
        elif isinstance(obj, type):
            out[name] = {"kind": "class"}
        elif callable(obj):
            static = isinstance(raw, staticmethod) or type(raw).__name__ == "builtin_function_or_method"
            out[name] = {"kind": "staticmethod" if static else "method", "signatures": signatures(name, obj)}
            if "[DEPRECATED]" in (obj.__doc__ or ""):
                out[name]["deprecated"] = True
        else:
            out[name] = {"kind": "value", "value": repr(obj) if not is_enum(type(obj)) else str(obj)}
    return out

def enum_values(obj):
    return {name: int(member) for name, member in obj.__members__.items()}

def deprecated_members(obj):
    return sorted(set(re.findall(r"^\s*(\w+) : \[DEPRECATED\]", obj.__doc__ or "", re.M)))

def null_factory(call):
    try:
        call()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "no error"

module, enums, classes, deprecated = {}, {}, {}, {}
for name in dir(trt):
    if name.startswith("_"):
        continue
    obj = getattr(trt, name)
    if isinstance(obj, type(trt)):
        continue  # ctypes, os, sys, warnings: modules the package imports
    module[name] = kind(obj)
    if is_enum(obj):
        enums[name] = enum_values(obj)
        if deprecated_members(obj):
            deprecated[name] = deprecated_members(obj)
    elif isinstance(obj, type):
        for inner in dir(obj):
            nested = getattr(obj, inner, None)
            if not inner.startswith("_") and is_enum(nested) and nested is not obj:
                enums[f"{name}.{inner}"] = enum_values(nested)
for name in CLASSES:
    if hasattr(trt, name):
        classes[name] = members(getattr(trt, name))
behaviour = {
    "Builder(Logger(WARNING))": null_factory(lambda: trt.Builder(trt.Logger(trt.Logger.WARNING))),
    "Runtime(Logger(WARNING))": null_factory(lambda: trt.Runtime(trt.Logger(trt.Logger.WARNING))),
}
print(json.dumps({"__version__": trt.__version__, "module": module, "enums": enums, "classes": classes,
                  "deprecated_enum_members": deprecated, "behaviour_without_libraries": behaviour}))
'''

_STUB_C = "\n".join([
    "/* Entry points of TensorRT's libraries, each returning null: enough for the bindings to import. */",
    "{definitions}",
])


def download(package: str, version: str, cache: Path) -> Path:
    """The binding wheel for this interpreter's CPython ABI on Linux x86-64, downloaded once into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    pattern = f"{package.replace('-', '_')}-{version}-{tag}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--only-binary=:all:",
                   "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}",
                   "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64",
                   f"{package}=={version}", "-d", str(cache)]
        subprocess.run(command, check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
        found = sorted(cache.glob(pattern))
    if not found:
        raise SystemExit(f"no wheel {pattern} in {cache} after pip download")
    return found[0]


def tensorrt_symbols(module: Path) -> tuple[list[str], list[str]]:
    """The sonames of TensorRT's libraries the module needs, and the unversioned symbols it takes from them."""
    dynamic = subprocess.run(["readelf", "-d", str(module)], check=True, capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    sonames = [name for name in needed if name.startswith("libnv")]
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(module)], check=True, capture_output=True,
                               text=True).stdout
    symbols = []
    for line in undefined.splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[0] != "U" or "@" in parts[1] or re.match(r"_?Py", parts[1]):
            continue
        symbols.append(parts[1])
    # What the C library provides (dlopen, dlsym, … unversioned in some builds) is not TensorRT's.
    probe = "import ctypes, sys; libc = ctypes.CDLL(None); print(' '.join(s for s in sys.argv[1:] if hasattr(libc, s)))"
    from_libc = subprocess.run([sys.executable, "-c", probe, *symbols], check=True, capture_output=True,
                               text=True).stdout.split()
    return sonames, sorted(set(symbols) - set(from_libc))


def build_stub(sonames: list[str], symbols: list[str], directory: Path) -> None:
    """One shared library per soname, each defining every symbol as a function returning null."""
    source = directory / "stub.c"
    source.write_text(_STUB_C.format(definitions="\n".join(f"void *{s}(void) {{ return 0; }}" for s in symbols)))
    for soname in sonames:
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(directory / soname), str(source),
                        f"-Wl,-soname,{soname}"], check=True)


def write_manifest(name: str, cache: Path, out: Path) -> Path:
    """Downloads, stubs and imports one pinned version; writes ``out/<name>.json``."""
    package, version = PINNED[name]
    wheel = download(package, version, cache)
    with tempfile.TemporaryDirectory(prefix="trt-manifest-") as temporary:
        root = Path(temporary)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(root / "site")
        (module,) = (root / "site" / "tensorrt_bindings").glob("tensorrt*.so")
        sonames, symbols = tensorrt_symbols(module)
        (root / "lib").mkdir()
        build_stub(sonames, symbols, root / "lib")
        env = {**os.environ, "LD_LIBRARY_PATH": str(root / "lib"), "PYTHONPATH": str(root / "site")}
        dumped = subprocess.run([sys.executable, "-c", _DUMP, json.dumps(CLASSES)], check=True,
                                capture_output=True, text=True, env=env, cwd=root).stdout
    manifest = {
        "generated_by": "tools/trt_manifest.py",
        "package": package,
        "version": version,
        "wheel": wheel.name,
        "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "needed_libraries": sonames,
        "stubbed_symbols": symbols,
        **json.loads(dumped),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", help=f"manifests to write, of {', '.join(PINNED)} (default: all)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the wheels are downloaded")
    parser.add_argument("--out", type=Path, default=OUT, help="where the manifests are written")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = [name for name in args.versions if name not in PINNED]
    if unknown:
        parser.error(f"no pinned version {', '.join(unknown)}; pinned: {', '.join(PINNED)}")
    for name in args.versions or PINNED:
        path = write_manifest(name, args.cache, args.out)
        logger.info("wrote %s (%d bytes)", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path,
                    path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
