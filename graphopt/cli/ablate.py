"""``graphopt ablate``: the waterfall of a detector's optimizations, measured on this machine.

Thin over :func:`graphopt.ablation.ablate`: options in, progress lines on
stderr while it runs, then ``ablation.json``, ``ablation.md`` and
``waterfall.png`` written together into the output directory.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import GraphoptError

__all__ = ["ablate"]


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Detector and camera description (TOML): the passes' configuration and the test scenes.")
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for ablation.json, ablation.md and waterfall.png (created if missing).")
@click.option("--passes", metavar="NAMES",
              help="The pipeline to take apart, comma-separated (default: the whole pipeline, "
              "default passes with ground_plane_slice and the float16 passes).")
@click.option("--latency-frames", default=20, show_default=True, type=click.IntRange(1),
              help="Frames the latency median and p90 are taken over.")
@click.option("--accuracy-frames", default=100, show_default=True, type=click.IntRange(1),
              help="Synthetic test frames for detection agreement and miss rate (at least --latency-frames).")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0), help="Untimed frames per variant.")
@click.option("--settle-ms", default=150.0, show_default=True, type=click.FloatRange(0),
              help="Pause before each timed call, so that no variant inherits another's busy threads.")
@click.option("--eval-threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1, min_open=True,
              max_open=True), help="Score threshold the variants are built with, for the miss-rate curve.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also write the results and a generated page into DIR/<machine-slug>/ (the repository's "
              "results pages: docs/results).")
def ablate(
    model_path: Path,
    config_path: Path,
    output_dir: Path,
    passes: str | None,
    latency_frames: int,
    accuracy_frames: int,
    warmup: int,
    settle_ms: float,
    eval_threshold: float,
    results_dir: Path | None,
) -> None:
    """Measure MODEL's baseline, each pass added in order and each left out; write the table and the waterfall."""
    from ..ablation import ablate as run_ablation
    from ..ablation import write_waterfall
    from ..model_io import OutputStage, load_model
    from ..native_output import capture_native_output
    from ..passes import select_passes
    from ..workloads import load_config

    if accuracy_frames < latency_frames:
        raise click.UsageError(f"--accuracy-frames ({accuracy_frames}) must be at least --latency-frames "
                               f"({latency_frames}): the latency frames are the first accuracy frames")
    config = load_config(config_path)
    chosen = [p.strip() for p in passes.split(",") if p.strip()] if passes else None
    if chosen is not None:
        select_passes(chosen, skip=[])  # names checked before any work
    try:
        import matplotlib  # noqa: F401  (checked before minutes of measuring)
    except ImportError:
        raise GraphoptError("the waterfall chart needs matplotlib: pip install 'graphopt[plot]'") from None
    network = load_model(model_path)
    with capture_native_output() as native:  # onnxsim's C++ warnings go into the result, not to the terminal
        result = run_ablation(network, config, passes=chosen, latency_frames=latency_frames,
                              accuracy_frames=accuracy_frames, warmup_frames=warmup, settle_ms=settle_ms,
                              eval_threshold=eval_threshold,
                              progress=lambda line: click.echo(f"ablate: {line}", err=True))
    result.source = str(model_path)
    result.notes += [f"third-party output (captured): {line}" for line in native.summary()]
    with OutputStage(output_dir) as stage:
        stage.write_text("ablation.json", result.to_json())
        stage.write_text("ablation.md", result.to_markdown())
        stage.write_bytes("waterfall.png", chart := write_waterfall(result))
        stage.commit()
    if results_dir is not None:
        from ..results import publish

        body = result.to_markdown().split("\n", 1)[1]  # the page has its own heading
        publish(results_dir, "ablation", title="Ablation: each pass added, and each left out",
                data=result.to_dict(), markdown=f"![the waterfall](ablation-waterfall.png)\n{body}",
                machine=result.machine, files={"ablation-waterfall.png": chart})
    click.echo(result.to_markdown())
    click.echo(f"wrote {', '.join(str(output_dir / n) for n in ('ablation.json', 'ablation.md', 'waterfall.png'))}")
