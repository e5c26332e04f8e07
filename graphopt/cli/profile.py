"""``graphopt profile-ops``: where float16 pays on this machine, op family by op family and in a real graph.

Thin over :mod:`graphopt.profile`: the op-family microbenchmarks on every
runtime here, then (with MODEL) the model's time by operator type in float32
and after the float16 passes; ``profile.json`` and ``profile.md`` written
together, the Markdown printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["profile_ops"]


def _profile_model(model_path: Path, config_path: Path | None, shapes: dict[str, tuple[int, ...]], *, runs: int,
                   warmup: int, say: Callable[[str], None]) -> list[Any]:
    """MODEL's float32 and float16 graphs, both with the log-odds NMS head, profiled by operator type."""
    from .. import optimize
    from ..graph import concrete_input_shapes
    from ..model_io import load_model
    from ..passes import ConvertToFp16Pass, with_fp16
    from ..profile import profile_graph
    from ..verify import random_inputs
    from ..workloads import load_config

    model = load_model(model_path)
    # The float32 graph gets the float16 pipeline's NMS head too (nms_on_logits), so that the two
    # differ by the precision alone.
    float32_passes = [name for name in with_fp16(None) if name != ConvertToFp16Pass.name]
    detector = None if config_path is None else load_config(config_path)
    variants = {
        "float32": optimize(model, float32_passes, config=detector, input_shapes=shapes)[0],
        "float16": optimize(model, config=detector, input_shapes=shapes, fp16=True)[0],
    }
    if detector is not None:
        feeds = detector.frames("test", 1)[0]
    else:
        feeds = random_inputs(variants["float32"], concrete_input_shapes(variants["float32"], {}))
    graphs = []
    for label, graph in variants.items():
        say(f"profiling {model_path.name} in {label}, {runs} runs")
        graphs.append(profile_graph(graph, feeds, label=f"{model_path.name}, {label}", runs=runs, warmup=warmup))
    return graphs


@click.command("profile-ops")
@click.argument("model_path", metavar="[MODEL]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Detector description: MODEL is fused into the detector and profiled on a test frame.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DxDx...",
              help="Concrete shape of a dynamic input of MODEL (without --config).")
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for profile.json and profile.md (created if missing).")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(1),
              help="Timed calls of each microbenchmark, float32 and float16 interleaved.")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0), help="Untimed calls first.")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1),
              help="Profiled runs of MODEL in each precision.")
@click.option("--no-microbenchmarks", is_flag=True, help="Only profile MODEL.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also write the results and a generated page into DIR/<machine-slug>/ (the repository's "
              "results pages: docs/results).")
def profile_ops(
    model_path: Path | None,
    config_path: Path | None,
    input_shapes: tuple[str, ...],
    output_dir: Path,
    repeats: int,
    warmup: int,
    runs: int,
    no_microbenchmarks: bool,
    results_dir: Path | None,
) -> None:
    """Time the op families in float32 and float16 on every runtime here, and MODEL by operator type."""
    from ..model_io import OutputStage
    from ..passes.static_shapes import parse_input_shape
    from ..profile import profile_op_families, to_json, to_markdown

    if no_microbenchmarks and model_path is None:
        raise click.UsageError("--no-microbenchmarks leaves nothing to profile: give a MODEL")
    shapes = dict(parse_input_shape(text) for text in input_shapes)
    say = lambda line: click.echo(f"profile-ops: {line}", err=True)  # noqa: E731
    graphs = [] if model_path is None else _profile_model(model_path, config_path, shapes, runs=runs, warmup=warmup,
                                                          say=say)
    results = [] if no_microbenchmarks else profile_op_families(repeats=repeats, warmup=warmup, progress=say)
    with OutputStage(output_dir) as stage:
        stage.write_text("profile.json", to_json(results, graphs))
        stage.write_text("profile.md", to_markdown(results, graphs))
        stage.commit()
    click.echo(to_markdown(results, graphs))
    if results_dir is not None:
        import json

        from ..backends.base import machine_description
        from ..results import publish

        body = to_markdown(results, graphs).split("\n", 1)[1]  # the page has its own heading
        publish(results_dir, "profile-ops", title="Per-op precision profile: float32 and float16",
                data=json.loads(to_json(results, graphs)), markdown=body, machine=machine_description())
    click.echo(f"wrote {output_dir / 'profile.json'}, {output_dir / 'profile.md'}")
