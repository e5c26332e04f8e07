"""Third-party passes through the ``graphopt.passes`` entry-point group: discovered, listed, run by name.

The plugin is example 03's package, made discoverable the way ``pip install``
would: a ``*.dist-info`` directory with its ``entry_points.txt`` on the path
of a fresh interpreter, so that the real ``importlib.metadata`` finds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "03_custom_pass_plugin"


def _site(tmp_path: Path, entry_points: str, name: str = "graphopt_double_negation") -> Path:
    """A directory that holds an installed distribution's metadata with ``entry_points``."""
    site = tmp_path / "site"
    info = site / f"{name}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[graphopt.passes]\n{entry_points}\n")
    return site


def _graphopt(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE)])}
    return subprocess.run([sys.executable, "-m", "graphopt", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_a_plugin_is_listed_and_runs_by_name_from_the_cli(tmp_path: Path) -> None:
    site = _site(tmp_path, "fold_double_negation = graphopt_double_negation:FoldDoubleNegationPass")
    listing = _graphopt(site, "passes")
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if "fold_double_negation" in line)
    assert "Folds Neg(Neg(x)) into x" in line and "[plugin: graphopt-double-negation]" in line
    out = tmp_path / "out"
    run = _graphopt(site, "optimize", str(EXAMPLE / "model.onnx"), "-o", str(out), "--passes",
                    "fold_double_negation,remove_redundant_nodes", "--verify", "--no-benchmark")
    assert run.returncode == 0, run.stderr
    (row, cleanup) = json.loads((out / "report.json").read_text())["passes"]
    assert row["name"] == "fold_double_negation" and row["status"] == "modified"
    assert (row["nodes_before"], row["nodes_after"]) == (6, 2)  # the figures example 03's README states
    assert row["stats"] == {"folded": 2, "removed_nodes": 4}
    assert row["max_abs_error"] == 0.0
    assert cleanup["status"] == "unchanged"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("fold_double_negation = graphopt_double_negation:NoSuchPass", "cannot import"),
        ("fold_double_negation = graphopt_double_negation:logger", "is not a subclass of graphopt.passes.Pass"),
        ("double_negation = graphopt_double_negation:FoldDoubleNegationPass", "not the entry point's name"),
        ("remove_redundant_nodes = graphopt_double_negation:FoldDoubleNegationPass", "name of a built-in pass"),
    ],
)
def test_a_broken_plugin_is_left_out_with_its_reason(tmp_path: Path, entry: str, reason: str) -> None:
    site = _site(tmp_path, entry)
    listing = _graphopt(site, "passes")
    assert listing.returncode == 0, listing.stderr  # graphopt keeps working
    name = entry.split(" = ")[0]
    lines = [line for line in listing.stdout.splitlines() if line.split()[0] in (name, "*") or name in line]
    assert any("not loaded (graphopt-double-negation)" in line and reason in line for line in lines), listing.stdout
    if name != "remove_redundant_nodes":
        run = _graphopt(site, "optimize", str(EXAMPLE / "model.onnx"), "-o", str(tmp_path / "o"), "--passes", name)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert f"unknown pass '{name}'; its plugin (graphopt-double-negation) was left out" in run.stderr
        assert not (tmp_path / "o").exists()
