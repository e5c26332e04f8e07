"""The compiler core imports no workload: checked in the source and in a running process."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "graphopt"
EXAMPLE = ROOT / "examples" / "01_redundant_cnn" / "model.onnx"

#: Modules of the core that may name a workload, each with its reason.
ALLOWED = {
    # Deprecated aliases of the old import paths, kept for one release (they are the workload's modules).
    **{f"graphopt/detector/{path.name}": "deprecated alias" for path in (CORE / "detector").glob("*.py")},
    "graphopt/passes/ground_plane.py": "deprecated alias",
    "graphopt/cli/detector.py": "deprecated alias",
}
#: Modules that import by a name built at run time, each with its reason (no workload among the names).
RUNTIME_IMPORTS = {
    "graphopt/backends/tensorrt.py": "NVIDIA's CUDA runtime wheels (nvidia.cuda_runtime, nvidia.cu13, nvidia.cu12), "
    "to find libcudart",
}


def _workload_packages() -> set[str]:
    """Top-level packages of everything registered as a workload, workload pass or command, and the known ones."""
    names = {"graphopt_person", "graphopt_yolo"}
    for group in ("graphopt.workloads", "graphopt.commands"):
        names |= {entry.value.split(":")[0].split(".")[0] for entry in importlib.metadata.entry_points(group=group)}
    return names - {"graphopt"}


def _imported_names(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """Every module an import statement names (relative ones resolved), at any depth, and dynamic imports."""
    package = module.rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and node.args:
                arg = node.args[0]
                text = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "<run time>"
                found.append((node.lineno, text))
    return found


def _violations(path: Path, workloads: set[str]) -> list[str]:
    relative = path.relative_to(ROOT).as_posix()
    module = relative[: -len(".py")].replace("/", ".").removesuffix(".__init__")
    if path.name == "__init__.py":
        module += ".__init__"
    bad = []
    for line, name in _imported_names(ast.parse(path.read_text(encoding="utf-8")), module):
        top = name.split(".")[0]
        runtime = name == "<run time>" and relative not in RUNTIME_IMPORTS
        if top in workloads or name.startswith("graphopt.detector") or runtime:
            bad.append(f"{relative}:{line} imports {name}")
    return bad


def test_core_modules_import_no_workload() -> None:
    workloads = _workload_packages()
    bad = [v for path in sorted(CORE.rglob("*.py")) if path.relative_to(ROOT).as_posix() not in ALLOWED
           for v in _violations(path, workloads)]
    assert not bad, "the core imports workload code:\n" + "\n".join(bad)


@pytest.mark.parametrize("source", [
    "from graphopt_person.spec import DetectorConfig\n",
    "def f():\n    from graphopt_person import fused\n",
    "import importlib\nimportlib.import_module('graphopt_person.scenes')\n",
    "import importlib\nname = 'graphopt_' + 'person'\nimportlib.import_module(name)\n",
    "def f():\n    from ..detector.fused import OUTPUTS\n",
])
def test_the_scan_finds_each_kind_of_workload_import(tmp_path: Path, source: str) -> None:
    fake = CORE / "passes" / "_layering_probe.py"
    try:
        fake.write_text(source, encoding="utf-8")
        assert _violations(fake, _workload_packages())
    finally:
        fake.unlink()


def test_the_workload_is_registered_through_entry_points() -> None:
    from graphopt.passes import registered_passes
    from graphopt.workloads import registered_workloads

    assert "person" in registered_workloads()
    assert "ground_plane_slice" in registered_passes()
    commands = {entry.name for entry in importlib.metadata.entry_points(group="graphopt.commands")}
    assert "bands" in commands


_PROBE = """
import sys
{run}
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {workloads!r} or m.startswith('graphopt.detector'))
print('LOADED', loaded)
"""


@pytest.mark.parametrize("run", [
    "import graphopt\ngraphopt.optimize({model!r}, input_shapes={{'input': (1, 3, 64, 64)}}, verify=True)",
    "from graphopt.cli.app import cli\ntry:\n    cli.main(['optimize', {model!r}, '-o', {out!r}, '--input-shape', "
    "'input:1x3x64x64', '--repeats', '2', '--warmup', '0'], standalone_mode=False)\nexcept SystemExit:\n    pass",
], ids=["api", "cli"])
def test_optimizing_a_plain_model_loads_no_workload_module(tmp_path: Path, run: str) -> None:
    code = _PROBE.format(run=run.format(model=str(EXAMPLE), out=str(tmp_path / "out")),
                         workloads=sorted(_workload_packages()))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    line = next(row for row in done.stdout.splitlines() if row.startswith("LOADED"))
    assert line == "LOADED []", line
    if "cli" in run:
        assert (tmp_path / "out" / "model.onnx").exists()


def test_the_old_import_paths_still_work_with_a_deprecation_warning() -> None:
    import graphopt_person.spec

    sys.modules.pop("graphopt.detector.spec", None)
    sys.modules.pop("graphopt.detector", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from graphopt.detector.spec import DetectorConfig
    assert DetectorConfig is graphopt_person.spec.DetectorConfig
    assert any(issubclass(w.category, DeprecationWarning) and "graphopt_person" in str(w.message) for w in caught)
