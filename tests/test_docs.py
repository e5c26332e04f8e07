"""The docs: no measured figure typed by hand, links that resolve, and the results pages' mechanism.

Every figure in the docs comes from the command that measured it
(:mod:`graphopt.results`): measured numbers may appear only in ``docs/results/``
(generated pages) or between ``<!-- generated:begin … -->`` / ``<!-- generated:end -->``
markers that :func:`graphopt.results.refresh_embedded` rewrites.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from graphopt import results
from tests.reliability.test_bad_inputs import CORPUS, corpus_table

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

# Pages other branches write (issue 20: docs/models.md; issue 23: docs/jetson.md and
# docs/tensorrt-verification.md); links to them resolve once those branches are merged.
PENDING_PAGES: set[str] = set()

# A measured figure: a number with a unit of time, size, work or rate, a percentage or a ratio ("1.5×";
# "3×3" is a shape, not a ratio).
_MEASURED = re.compile(
    r"(?<![\w.])[−+-]?\d+(?:\.\d+)?\s?(?:ms\b|µs\b|s\b|sec\b|min\b|%|×(?!\s?\d)|x\b|GFLOP/s|[kMG]B\b"
    r"|[kMG]FLOPs?\b|G\b|M\b|kB\b)"
)
# In a table, any decimal fraction is a figure (versions such as 1.23.2, or "TensorRT 10.3", excepted).
_DECIMAL = re.compile(r"(?<![\w.])(?<!TensorRT )\d+\.\d+(?![\w.])")


def hand_figures(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of every line outside generated sections that carries a measured figure."""
    found = []
    generated = False
    for number, line in enumerate(text.splitlines(), 1):
        if results.BEGIN.search(line):
            generated = True
            continue
        if results.END in line:
            generated = False
            continue
        if generated:
            continue
        in_table = line.lstrip().startswith("|")
        if _MEASURED.search(line) or (in_table and _DECIMAL.search(line)):
            found.append((number, line))
    return found


def prose_pages() -> list[Path]:
    """README.md and every Markdown page of docs/ outside the generated results."""
    return [README, *(p for p in sorted(DOCS.rglob("*.md")) if DOCS / "results" not in p.parents)]


def test_the_figure_check_finds_hand_copied_figures() -> None:
    text = "\n".join([
        "The fused graph is faster.",                        # a finding, stated qualitatively
        "| variant | ms / frame |",
        "|---|---|",
        "| fused | 38.2 |",                                  # a hand-copied table cell
        "It took 252 s on this machine.",                    # a run time in prose
        "FLOPs fell by 66 %; a 3×3 convolution; 1×3×480×640.",
        "onnxruntime 1.23.2 is the last wheel for Python 3.10.",
        "<!-- generated:begin some-machine/bench_overhead -->",
        "| fused | 38.2 |",
        "<!-- generated:end -->",
    ])
    assert [number for number, _ in hand_figures(text)] == [4, 5, 6]


@pytest.mark.parametrize("page", prose_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_figure_typed_by_hand(page: Path) -> None:
    found = hand_figures(page.read_text(encoding="utf-8"))
    assert not found, (f"{page.relative_to(ROOT)} has measured figures outside generated sections; link the "
                       "generated page in docs/results/ instead: " + "; ".join(f"{n}: {t.strip()}" for n, t in found))


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if "://" not in m.group(1)]


@pytest.mark.parametrize("page", prose_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    missing = []
    for link in _links(page):
        target = (page.parent / link).resolve()
        if not target.exists() and str(target.relative_to(ROOT)) not in PENDING_PAGES:
            missing.append(link)
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 260
    assert lines[3].startswith("make run    # ") and lines[4].startswith("make test   # ")


def test_the_readme_waterfall_is_a_generated_chart() -> None:
    """docs/waterfall.png is a chart `graphopt ablate --results-dir` wrote for a machine, not one kept by hand."""
    charts = [p.read_bytes() for p in (DOCS / "results").glob("*/ablation-waterfall.png")]
    assert (DOCS / "waterfall.png").read_bytes() in charts


def test_reliability_page_counts_the_bad_input_corpus() -> None:
    """The bad-input table in docs/reliability.md lists every kind with its number of cases, and the total."""
    text = (DOCS / "reliability.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w-]+)` \|[^|]*\| (\d+) \|", text, flags=re.M))
    assert {kind: int(count) for kind, count in rows.items()} == dict(corpus_table())
    total = re.search(r"^\| \*\*total\*\* \| \| \*\*(\d+)\*\* \|", text, flags=re.M)
    assert total is not None and int(total.group(1)) == len(CORPUS)


def test_pass_pages_cover_the_registry() -> None:
    from graphopt.passes import registered_passes

    pages = {p.stem for p in (DOCS / "passes").glob("*.md")} - {"index"}
    assert pages == set(registered_passes())  # built in, and the workloads' (ground_plane_slice)


def test_results_pages_are_generated() -> None:
    """Every page under docs/results/ carries the generated note, and beside it the JSON it was written from."""
    for page in sorted((DOCS / "results").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert text.startswith(results.GENERATED_NOTE), page
        if page.name != "index.md":
            record = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
            assert record["machine_slug"] == page.parent.name
            assert f"Generated by `{record['command']}`" in text


MACHINE = {"cpu": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cores": 2, "os": "Linux", "python": "3.11.7"}


def test_machine_slug_names_cpu_cores_and_onnxruntime() -> None:
    assert results.machine_slug(MACHINE, "1.23.2") == "intel-xeon-2c-ort-1.23.2"
    assert results.machine_slug({"cpu": "AMD EPYC", "cores": 2}, "1.32.0") == "amd-epyc-2c-ort-1.32.0"
    assert results.machine_slug({**MACHINE, "cores": 16}, "1.23.2") != results.machine_slug(MACHINE, "1.23.2")


def test_publish_writes_page_json_and_indexes(tmp_path: Path) -> None:
    page = results.publish(tmp_path, "bench_demo", title="Demo", data={"median_ms": 1.5},
                           markdown="| a | b |\n|---|---|\n| 1.5 | 2 |", machine=MACHINE,
                           command="python benchmarks/bench_demo.py --results-dir docs/results",
                           files={"chart.png": b"png"})
    slug = results.machine_slug(MACHINE)
    assert page == tmp_path / slug / "bench_demo.md"
    text = page.read_text(encoding="utf-8")
    assert text.startswith(results.GENERATED_NOTE)
    assert "Generated by `python benchmarks/bench_demo.py --results-dir docs/results` on " in text
    assert f"Machine `{slug}`: Intel(R) Xeon(R) CPU @ 2.20GHz, 2 usable cores" in text
    assert "| 1.5 | 2 |" in text
    record = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    assert record["results"] == {"median_ms": 1.5} and record["machine_slug"] == slug
    assert (tmp_path / slug / "chart.png").read_bytes() == b"png"
    assert f"[{slug}]({slug}/index.md): bench_demo" in (tmp_path / "index.md").read_text(encoding="utf-8")
    assert "[Demo](bench_demo.md)" in (tmp_path / slug / "index.md").read_text(encoding="utf-8")
    assert not [p for p in tmp_path.rglob(".graphopt-staging-*")]


def test_refresh_embedded_rewrites_only_the_generated_section(tmp_path: Path) -> None:
    results.publish(tmp_path / "results", "bench_demo", title="Demo", data={}, markdown="| new | 2.5 |",
                    machine=MACHINE, command="python benchmarks/bench_demo.py")
    slug = results.machine_slug(MACHINE)
    doc = tmp_path / "study.md"
    doc.write_text(f"Before.\n<!-- generated:begin {slug}/bench_demo -->\n| old | 9.9 |\n<!-- generated:end -->\n"
                   "After.\n", encoding="utf-8")
    assert results.refresh_embedded(doc, tmp_path / "results")
    text = doc.read_text(encoding="utf-8")
    assert "| new | 2.5 |" in text and "| old | 9.9 |" not in text
    assert text.startswith("Before.\n") and text.endswith("<!-- generated:end -->\nAfter.\n")
    assert not results.refresh_embedded(doc, tmp_path / "results")  # a second refresh changes nothing
    assert hand_figures(text) == []


def test_refresh_docs_puts_the_newest_waterfall_in_docs(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for cores, chart in ((2, b"older"), (16, b"newer")):
        results.publish(docs / "results", "ablation", title="Ablation", data={}, markdown="", command="graphopt ablate",
                        machine={**MACHINE, "cores": cores}, files={"ablation-waterfall.png": chart})
    assert results.refresh_docs(docs) == [docs / "waterfall.png"]
    assert (docs / "waterfall.png").read_bytes() == b"newer"
    assert results.refresh_docs(docs) == []


def test_run_command_names_the_script_relative_to_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    argv = [str(ROOT / "benchmarks" / "bench_fp16.py"), "--results-dir", "docs/results"]
    assert results.run_command(argv) == "python benchmarks/bench_fp16.py --results-dir docs/results"
    assert results.run_command(["/venv/bin/graphopt", "ablate", "m.onnx"]) == "graphopt ablate m.onnx"
