"""``graphopt ablate``: every variant measured and named, the three outputs, and what each step means here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphopt.ablation import Ablation, VariantResult, full_pipeline, relative_change, waterfall_figure
from graphopt.backends.base import LatencyStats
from graphopt.cli import cli
from graphopt.errors import GraphoptError
from graphopt.passes import DEFAULT_PASSES

DETECTOR = Path(__file__).parents[1] / "examples" / "02_person_detector"
MODEL, CONFIG = DETECTOR / "model.onnx", DETECTOR / "detector.toml"
PASSES = ["remove_redundant_nodes", "fuse_host_stages", "ground_plane_slice", "pin_static_shapes"]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _latency(ms: float) -> LatencyStats:
    return LatencyStats(median_ms=ms, p90_ms=ms * 1.1, mean_ms=ms, min_ms=ms, max_ms=ms, warmup=0, repeats=20)


def test_the_whole_pipeline_is_the_default_passes_with_ground_plane_and_fp16() -> None:
    assert full_pipeline() == [*DEFAULT_PASSES[:5], "ground_plane_slice", *DEFAULT_PASSES[5:], "nms_on_logits",
                               "convert_to_fp16"]


@pytest.fixture(scope="module")
def ablated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("ablate") / "out"
    code, stdout, stderr = _run("ablate", str(MODEL), "--config", str(CONFIG), "-o", str(out), "--passes",
                                ",".join(PASSES), "--latency-frames", "2", "--accuracy-frames", "3", "--warmup", "0",
                                "--settle-ms", "0")
    assert code == 0, stderr
    return out, stdout, stderr


def test_ablate_writes_json_markdown_and_waterfall(ablated: tuple[Path, str, str]) -> None:
    out, stdout, stderr = ablated
    assert sorted(p.name for p in out.iterdir()) == ["ablation.json", "ablation.md", "waterfall.png"]
    assert (out / "waterfall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "ablation.json").read_text())
    assert data["schema"] == "graphopt.ablation/1" and data["latency_frames"] == 2 and data["accuracy_frames"] == 3
    names = [v["name"] for v in data["variants"]]
    assert names == ["naive", *(f"+{p}" for p in PASSES), *(f"−{p}" for p in PASSES)]
    # Progress was shown while it ran: the builds, each variant's accuracy run, the latency frames.
    assert "ablate: building leave-one-out 4/4" in stderr and "ablate: accuracy 9/9" in stderr
    assert "ablate: latency: frame 2/2" in stderr
    assert (out / "ablation.md").read_text() in stdout
    assert f"`graphopt profile-ops {MODEL} --config CONFIG -o OUTDIR`" in stdout  # the link to the op profile


def test_the_json_reads_back_into_the_same_ablation(ablated: tuple[Path, str, str]) -> None:
    text = (ablated[0] / "ablation.json").read_text()
    study = Ablation.from_dict(json.loads(text))
    assert study.to_json() == text
    assert [v.name for v in study.of_kind("leave_one_out")] == [f"−{p}" for p in PASSES]
    with pytest.raises(GraphoptError, match="not an ablation result"):
        Ablation.from_dict({"schema": "graphopt.report/1"})


def test_every_variant_is_measured_or_says_why_not(ablated: tuple[Path, str, str]) -> None:
    variants = {v["name"]: v for v in json.loads((ablated[0] / "ablation.json").read_text())["variants"]}
    naive = variants["naive"]
    assert naive["runs_as"] == "host pipeline" and naive["identical_frames"] == 3 and naive["change"] is None
    for name in ("+remove_redundant_nodes", "+fuse_host_stages", "+ground_plane_slice", "+pin_static_shapes"):
        variant = variants[name]
        assert variant["latency"]["repeats"] == 2 and variant["latency"]["median_ms"] > 0
        assert variant["flops_per_frame"] > 0 and variant["nodes"] > 0 and variant["model_bytes"] > 0
        assert variant["miss_rate"] is not None and variant["verdict"]
        assert variant["change"] is not None
    assert variants["+remove_redundant_nodes"]["runs_as"] == "host pipeline"
    assert variants["+fuse_host_stages"]["runs_as"] == "fused graph"
    # The clean-up and fusion are exact: the same detections as the baseline on every frame.
    assert variants["+fuse_host_stages"]["identical_frames"] == 3
    # Slicing cuts the FLOPs per frame by the ground plane's share.
    assert variants["+ground_plane_slice"]["flops_per_frame"] < 0.4 * variants["+fuse_host_stages"]["flops_per_frame"]
    # Without the clean-up, ground-plane slicing still works (the Identity debris is constant) and the detections
    # are the same; without fusion, slicing has no fused graph to work on: not applicable, and it says why.
    assert variants["−remove_redundant_nodes"]["error"] is None
    assert variants["−remove_redundant_nodes"]["identical_frames"] == 3
    assert variants["−fuse_host_stages"]["error"] == (
        "not applicable (ground_plane_slice needs the fused detector graph (fuse_host_stages before it))")
    assert variants["−ground_plane_slice"]["change"] is not None and variants["−ground_plane_slice"]["verdict"]


def _changed(name: str, change: float | None, interval: tuple[float, float] | None = None,
             **fields: object) -> VariantResult:
    """A measured variant whose change has the given 95% interval (default: ±0.02 around it)."""
    kind = "leave_one_out" if name.startswith("−") else "cumulative"
    if change is None:
        return VariantResult(name, kind, [name[1:]], error="it failed", **fields)  # type: ignore[arg-type]
    return VariantResult(name, kind, [name[1:]], latency=_latency(50.0), change=change,  # type: ignore[arg-type]
                         change_interval=interval or (change - 0.02, change + 0.02), **fields)


def _study(variants: list[VariantResult]) -> Ablation:
    variants = [VariantResult("naive", "baseline", [], latency=_latency(100.0)), *variants]
    return Ablation(variants=variants, machine={"cpu": "test", "cores": 2, "os": "test"}, latency_frames=20,
                    accuracy_frames=100, settle_ms=150, eval_threshold=0.5, deployed_threshold=0.998)


def test_the_waterfall_has_one_bar_per_variant_coloured_by_its_change() -> None:
    pytest.importorskip("matplotlib", reason="the waterfall needs matplotlib (the plot extra)")
    study = _study([_changed("+a", -0.5), _changed("+b", 0.2), _changed("+c", -0.05, (-0.1, 0.01)),
                    _changed("+d", -0.3, graph_unchanged=True), _changed("−a", 0.4), _changed("−b", None)])
    figure = waterfall_figure(study)
    left, right = figure.axes
    assert len(left.patches) == 5 and len(right.patches) == 2
    colours = [tuple(round(c, 3) for c in bar.get_facecolor()[:3]) for bar in left.patches]
    green, red, grey, light = (0.173, 0.627, 0.173), (0.839, 0.153, 0.157), (0.6, 0.6, 0.6), (0.733, 0.733, 0.733)
    assert colours[1:] == [green, red, grey, light]  # faster, slower, interval across 0, graph unchanged
    labels = [text.get_text() for text in left.texts]
    assert "50 ms\n-50%" in labels and "50 ms\n+20%" in labels
    assert [text.get_text() for text in right.texts][1] == "failed"


def test_a_bar_is_red_when_the_miss_rate_worsens_by_more_than_a_point_whatever_the_time() -> None:
    pytest.importorskip("matplotlib", reason="the waterfall needs matplotlib (the plot extra)")
    # The case: leaving nms_on_logits out is 25% faster, but the miss rate goes from 19.3% to 82.9%.
    study = _study([_changed("+a", -0.5, miss_rate=0.193), _changed("+b", -0.3, miss_rate=0.25),
                    _changed("+c", -0.3, miss_rate=0.259), _changed("−a", -0.25, miss_rate=0.829),
                    _changed("−b", -0.25, miss_rate=0.2)])
    figure = waterfall_figure(study)
    left, right = figure.axes
    colours = [tuple(round(c, 3) for c in bar.get_facecolor()[:3]) for bar in [*left.patches, *right.patches]]
    green, red = (0.173, 0.627, 0.173), (0.839, 0.153, 0.157)
    # +b: 5.7 points worse than +a, red though faster; +c: 0.9 points worse than +b, still green.
    # −a: 57 points worse than the whole pipeline (+c), red though faster; −b: 5.9 points better, green.
    assert colours[1:] == [green, red, green, red, green]
    labels = [text.get_text() for text in [*left.texts, *right.texts]]
    assert "50 ms\n-30%\nmiss rate +5.7 pt" in labels and "50 ms\n-25%\nmiss rate +57.0 pt" in labels
    assert "50 ms\n-30%" in labels  # +c: within a point, no miss-rate line


def test_step_verdicts_say_when_a_step_gives_nothing_here() -> None:
    from graphopt.ablation import _leave_one_out_verdict, _step_verdict

    previous = VariantResult("+nms_on_logits", "cumulative", ["nms_on_logits"], latency=_latency(40.0),
                             model_bytes=608_000)
    fp16 = VariantResult("+convert_to_fp16", "cumulative", ["nms_on_logits", "convert_to_fp16"],
                         latency=_latency(50.0), change=0.25, change_interval=(0.2, 0.3), model_bytes=359_000)
    verdict = _step_verdict(fp16, previous, unchanged=False)
    assert verdict.startswith("no gain on this device: 25% slower (40.0 → 50.0 ms)")
    assert "no fast float16 arithmetic" in verdict and "608 → 359 kB" in verdict
    assert _step_verdict(_changed("+x", -0.5), previous, unchanged=False) == "50% faster"
    # A median 8% lower whose interval reaches above 0 is no measurable change.
    flat = _changed("+y", -0.08, (-0.15, 0.02))
    assert _step_verdict(flat, previous, unchanged=False) == (
        "no measurable gain on this device (40.0 → 50.0 ms; -8%, 95% interval -15% to +2%)")
    assert _step_verdict(_changed("+z", -0.4), previous, unchanged=True).startswith(
        "graph unchanged: nothing to gain (-40%")
    whole = VariantResult("+w", "cumulative", [], latency=_latency(40.0), miss_rate=0.25)
    left_out = _changed("−nms_on_logits", -0.25, miss_rate=0.9)
    assert _leave_one_out_verdict(left_out, whole) == ("25% faster without it (the pass costs time on this device); "
                                                       "miss rate 25.0% → 90.0%")


def test_relative_change_has_an_interval_that_excludes_zero_only_for_a_real_change() -> None:
    rng = __import__("numpy").random.default_rng(0)
    noise = list(100 + 10 * rng.standard_normal(20))
    same = list(100 + 10 * rng.standard_normal(20))
    change, low, high = relative_change(noise, same)
    assert low < 0 < high and low <= change <= high
    halved = [t / 2 for t in noise]
    change, low, high = relative_change(noise, halved)
    assert change == pytest.approx(-0.5) and high < 0
    with pytest.raises(ValueError, match="same, non-empty list of frames"):
        relative_change(noise, halved[:5])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ablate", "missing.onnx", "--config", str(CONFIG)], "missing.onnx"),
        (["ablate", str(MODEL), "--config", str(CONFIG), "--passes", "fuse_host_stage"], "fuse_host_stage"),
        (["ablate", str(MODEL), "--config", str(CONFIG), "--latency-frames", "20", "--accuracy-frames", "5"],
         "--accuracy-frames (5) must be at least --latency-frames (20)"),
    ],
)
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, _, stderr = _run(*[a if a != "missing.onnx" else str(tmp_path / a) for a in args], "-o", str(out))
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_without_matplotlib_it_says_so_before_measuring(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, stderr = _run("ablate", str(MODEL), "--config", str(CONFIG), "-o", str(tmp_path / "out"))
    assert code == 2
    assert stderr.strip() == "graphopt: error: the waterfall chart needs matplotlib: pip install 'graphopt[plot]'"
    assert not (tmp_path / "out").exists()
