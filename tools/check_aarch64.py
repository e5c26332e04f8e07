"""Checks that graphopt and its whole dependency tree install from wheels on a Jetson (JetPack 6).

JetPack 6 is Ubuntu 22.04 on aarch64: glibc 2.35 and Python 3.10. Nothing can
be compiled there in a reasonable time, so every package must come as a
wheel. This runs pip's resolver for that target, with dependencies (not
``--no-deps``), without installing anything:

    python3.10 -m pip install --dry-run --ignore-installed --only-binary=:all: \\
        --platform manylinux_2_35_aarch64 … --platform manylinux2014_aarch64 --platform linux_aarch64 \\
        --python-version 3.10 --implementation cp --target TMP --report REPORT .

then reads pip's report: every package must be a wheel whose tags fit the
target, and no dependency may depend on the machine through an environment
marker (pip evaluates markers for the interpreter it runs on, not for
``--platform``; run it with Python 3.10 so that ``python_version`` markers
are the target's). pip's configuration (constraints, local indexes) is left
out (``--isolated``), so the answer is PyPI's.

Run: ``python3.10 tools/check_aarch64.py`` (``--json FILE`` writes the
resolved packages). Exit code 0: every package resolves to a wheel for the
Jetson; 1: what does not, one line each. Needs PyPI; takes about 10 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["PLATFORMS", "check", "main", "resolve"]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]

#: JetPack 6's glibc is 2.35: every manylinux tag up to it, newest first.
PLATFORMS = [
    "manylinux_2_35_aarch64", "manylinux_2_34_aarch64", "manylinux_2_33_aarch64", "manylinux_2_32_aarch64",
    "manylinux_2_31_aarch64", "manylinux_2_30_aarch64", "manylinux_2_29_aarch64", "manylinux_2_28_aarch64",
    "manylinux_2_27_aarch64", "manylinux_2_26_aarch64", "manylinux_2_25_aarch64", "manylinux_2_24_aarch64",
    "manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64",
]
#: The marker environment of a Jetson on JetPack 6.2 (Ubuntu 22.04, L4T r36.4: Python 3.10.12, kernel 5.15 tegra).
JETSON = {
    "implementation_name": "cpython", "implementation_version": "3.10.12", "os_name": "posix",
    "platform_machine": "aarch64", "platform_python_implementation": "CPython", "platform_release": "5.15.148-tegra",
    "platform_system": "Linux", "platform_version": "#1 SMP PREEMPT", "python_full_version": "3.10.12",
    "python_version": "3.10", "sys_platform": "linux", "extra": "",
}


def resolve(project: Path, python: str, *, extras: str = "", timeout: float = 300) -> dict[str, Any]:
    """pip's installation report for ``project`` on the Jetson target (nothing is installed)."""
    with tempfile.TemporaryDirectory(prefix="graphopt-aarch64-") as temporary:
        report = Path(temporary) / "report.json"
        command = [python, "-m", "pip", "install", "--isolated", "--quiet", "--dry-run", "--ignore-installed",
                   "--only-binary=:all:", "--python-version", "3.10", "--implementation", "cp",
                   "--target", str(Path(temporary) / "target"), "--report", str(report)]
        for platform in PLATFORMS:
            command += ["--platform", platform]
        command.append(f"{project}[{extras}]" if extras else str(project))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or [done.stderr.strip()]
            raise SystemExit(f"pip cannot resolve graphopt for the Jetson: {' '.join(lines)}")
        return dict(json.loads(report.read_text()))


def _wheel_tags(filename: str) -> tuple[set[str], set[str]]:
    """The python and platform tags of a wheel's file name."""
    parts = filename[: -len(".whl")].split("-")
    return set(parts[-3].split(".")), set(parts[-1].split("."))


def check(report: dict[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    """The resolved packages, and every reason one of them would not install from a wheel on the Jetson."""
    packages, problems = [], []
    for item in report.get("install", []):
        metadata, info = item["metadata"], item["download_info"]
        name, version = metadata["name"], metadata["version"]
        if "dir_info" in info:  # the project itself, built from its directory (pure Python)
            packages.append({"name": name, "version": version, "wheel": "(this project)"})
        else:
            filename = info["url"].rsplit("/", 1)[-1]
            packages.append({"name": name, "version": version, "wheel": filename})
            if not filename.endswith(".whl"):
                problems.append(f"{name} {version} comes as {filename}, not a wheel")
            else:
                pythons, platforms = _wheel_tags(filename)
                if not platforms & {*PLATFORMS, "any"}:
                    problems.append(f"{name} {version}: {filename} is for {', '.join(sorted(platforms))}")
                if not pythons & {"cp310", "py3", "py310", "py2.py3"} and "abi3" not in filename:
                    problems.append(f"{name} {version}: {filename} is not for CPython 3.10")
        problems.extend(_marker_differences(name, metadata.get("requires_dist", []), report.get("environment", {})))
    return packages, problems


def _marker_differences(name: str, requirements: list[str], here: dict[str, str]) -> list[str]:
    """Requirements whose environment marker pip evaluated differently here than it would on the Jetson."""
    try:
        from packaging.markers import Marker
    except ImportError:  # pip's own copy
        from pip._vendor.packaging.markers import Marker  # type: ignore[no-redef]
    differences = []
    for requirement in requirements:
        text = requirement.partition(";")[2].strip()
        if not text:
            continue
        marker = Marker(text)
        if marker.evaluate({**here, "extra": ""}) != marker.evaluate(dict(JETSON)):
            differences.append(f"{name} requires '{requirement}', which pip evaluated for this machine, not the "
                               "Jetson")
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable,
                        help="the Python 3.10 that runs pip (default: this one; it must be 3.10)")
    parser.add_argument("--extras", default="", help="extras of graphopt to include, e.g. 'plot'")
    parser.add_argument("--json", type=Path, help="write the resolved packages and problems here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    version = subprocess.run([args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if version != "3.10":
        parser.error(f"{args.python} is Python {version}; run the check with Python 3.10 (JetPack 6's), whose "
                     "markers pip evaluates")
    packages, problems = check(resolve(ROOT, args.python, extras=args.extras))
    for package in packages:
        logger.info("%-20s %-10s %s", package["name"], package["version"], package["wheel"])
    for problem in problems:
        logger.error("not installable on the Jetson: %s", problem)
    logger.info("%d packages for Linux aarch64, glibc 2.35, CPython 3.10: %s", len(packages),
                "all wheels" if not problems else f"{len(problems)} problem(s)")
    if args.json is not None:
        args.json.write_text(json.dumps({"packages": packages, "problems": problems}, indent=1) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
