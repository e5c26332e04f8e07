"""tools/check_aarch64.py: graphopt's whole dependency tree installs from wheels on a Jetson (JetPack 6).

The offline tests feed the checker pip reports; the network one runs pip's
resolver against PyPI for Linux aarch64, glibc 2.35, CPython 3.10 (CI reaches
PyPI; about 10 s), skipped, saying why, where PyPI or Python 3.10 is missing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
_spec = importlib.util.spec_from_file_location("check_aarch64", ROOT / "tools" / "check_aarch64.py")
assert _spec is not None and _spec.loader is not None
check_aarch64 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_aarch64)

HERE = {"implementation_name": "cpython", "implementation_version": "3.10.13", "os_name": "posix",
        "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "6.1",
        "platform_system": "Linux", "platform_version": "#1", "python_full_version": "3.10.13",
        "python_version": "3.10", "sys_platform": "linux"}


def _item(name: str, url: str, requires: list[str] | None = None) -> dict:
    return {"metadata": {"name": name, "version": "1.0", "requires_dist": requires or []},
            "download_info": {"url": url}}


def test_wheels_for_the_jetson_pass() -> None:
    report = {"environment": HERE, "install": [
        {"metadata": {"name": "graphopt", "version": "0.1.0"}, "download_info": {"url": "file:///x", "dir_info": {}}},
        _item("numpy", "https://x/numpy-2.2.6-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
        _item("protobuf", "https://x/protobuf-7.36.2-cp310-abi3-manylinux2014_aarch64.whl"),
        _item("rich", "https://x/rich-15.0.0-py3-none-any.whl", ['pygments<3; python_version >= "3.8"']),
        _item("humanfriendly", "https://x/humanfriendly-10.0-py2.py3-none-any.whl",
              ['pyreadline3; sys_platform == "win32" and python_version>="3.8"']),
    ]}
    packages, problems = check_aarch64.check(report)
    assert problems == [] and [p["name"] for p in packages] == ["graphopt", "numpy", "protobuf", "rich",
                                                                  "humanfriendly"]


def test_what_would_not_install_on_the_jetson_is_named() -> None:
    report = {"environment": HERE, "install": [
        _item("onnxsim", "https://x/onnxsim-0.4.36.tar.gz"),
        _item("fast", "https://x/fast-1.0-cp310-cp310-manylinux_2_17_x86_64.whl"),
        _item("new", "https://x/new-1.0-cp312-cp312-manylinux_2_28_aarch64.whl"),
        _item("glibc", "https://x/glibc-1.0-cp310-cp310-manylinux_2_38_aarch64.whl"),
        _item("marked", "https://x/marked-1.0-py3-none-any.whl", ['cuda-helper; platform_machine == "x86_64"']),
    ]}
    _, problems = check_aarch64.check(report)
    assert problems == [
        "onnxsim 1.0 comes as onnxsim-0.4.36.tar.gz, not a wheel",
        "fast 1.0: fast-1.0-cp310-cp310-manylinux_2_17_x86_64.whl is for manylinux_2_17_x86_64",
        "new 1.0: new-1.0-cp312-cp312-manylinux_2_28_aarch64.whl is not for CPython 3.10",
        "glibc 1.0: glibc-1.0-cp310-cp310-manylinux_2_38_aarch64.whl is for manylinux_2_38_aarch64",
        "marked requires 'cuda-helper; platform_machine == \"x86_64\"', which pip evaluated for this machine, not "
        "the Jetson",
    ]


def _python310() -> str | None:
    """A working Python 3.10 (this one, pyenv's, or python3.10 on PATH, as the Makefile looks for it)."""
    candidates = [sys.executable] if sys.version_info[:2] == (3, 10) else []
    candidates += [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    candidates += [found] if (found := shutil.which("python3.10")) else []
    for candidate in candidates:
        done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                              text=True)
        if done.returncode == 0 and done.stdout.strip() == "(3, 10)":
            return candidate
    return None


def _pypi_unreachable() -> str | None:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError as error:
        return f"needs PyPI (pypi.org:443 unreachable: {error})"
    return None if _python310() else "needs Python 3.10 (JetPack 6's) to evaluate the markers as the Jetson does"


@pytest.mark.network
@pytest.mark.skipif(_pypi_unreachable() is not None, reason=str(_pypi_unreachable()))
def test_graphopt_resolves_to_wheels_for_jetpack_6(tmp_path: Path) -> None:
    out = tmp_path / "aarch64.json"
    done = subprocess.run([str(_python310()), str(ROOT / "tools" / "check_aarch64.py"), "--json", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["problems"] == []
    names = {p["name"].lower().replace("_", "-") for p in result["packages"]}
    assert {"graphopt", "onnx", "onnxruntime", "onnxsim", "numpy", "onnx-graphsurgeon", "tomli"} <= names
    onnxruntime = next(p for p in result["packages"] if p["name"] == "onnxruntime")
    assert "cp310" in onnxruntime["wheel"] and "aarch64" in onnxruntime["wheel"]
