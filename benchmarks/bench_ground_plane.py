"""Ground-plane slicing against the unsliced detector, in float32 and float16, with a margin sweep.

Every variant is the shipped detector fused into one graph by the default
pipeline (``graphopt.optimize(model, detector=config)``), then:

``fp32``
    nothing more: the reference.
``fp32_ground``
    ``GroundPlaneSlicePass(config=config)`` (default margin,
    :data:`~graphopt_person.ground_plane.DEFAULT_MARGIN_ROWS` score rows):
    each pyramid scale's network computes only the rows where a person can stand.
``fp16``
    ``graphopt.optimize(model, detector=config, fp16=True)``: NMS on log-odds,
    then the guarded float16 conversion.
``fp16_ground``
    ``GroundPlaneSlicePass(config=config)`` applied to the ``fp16`` graph: the
    pass on a float16 graph; reported as failing (one sentence) when it raises.

Per variant: FLOPs per frame (``graphopt.analysis.count_flops``) and the cut
against its unsliced counterpart (``fp32_ground`` against ``fp32``,
``fp16_ground`` against ``fp16``), nodes and serialized model bytes. On every
frame of the synthetic test set (``--frames``, default 200), a sliced
variant's detections are compared with its counterpart's: identical frames
(same cells and boxes, scores within ``--score-tolerance``), extra detections
(cells the counterpart does not report) and lost ones, with how many of the
lost lie outside the grid rows where the sliced score is exactly the unsliced
one (``ScaleBand.grid_rows`` of the detection's scale) and how many overlap a
ground-truth person (IoU at least 0.5). Each variant is also built a second
time at a low threshold (``--eval-threshold``) to read the miss rate at 0.1
false positives per image and the log-average miss rate off its whole curve;
the deployed threshold is kept for the detection comparison and the latency.

Margin sweep (float32): for each of ``--margins`` (default ``0,1,2,3,4,6``
score rows on each side of every band), the eval-threshold ``fp32`` graph
sliced with that margin: FLOPs per frame, the cut against ``fp32``, the score
rows kept (summed over scales) and the miss rate at 0.1 FPPI on the same
frames. Every scene is rendered once and fed to every session.

Latency: the variants' sessions (onnxruntime CPU, default threads) run the
first ``--latency-frames`` frames interleaved, a pause (``--settle-ms``)
before each call; median and 90th percentile over the frames, and the ratio
unsliced / sliced of the medians.

Usage::

    .venv/bin/python benchmarks/bench_ground_plane.py [--frames 200] [--margins 0,1,2,3,4,6]
        [--json build/bench_ground_plane.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import graphopt
from graphopt.analysis import count_flops
from graphopt.backends.onnxruntime import create_session
from graphopt.detections import Detections
from graphopt.errors import first_line
from graphopt.evaluation import evaluate, iou_matrix
from graphopt.model_io import load_model
from graphopt.results import add_results_dir_option, printed, publish_printed
from graphopt.timing import machine_description
from graphopt_person.data import render_scene, scene_seeds
from graphopt_person.fused import FRAME_INPUT, time_frames_interleaved
from graphopt_person.ground_plane import DEFAULT_MARGIN_ROWS, ScaleBand, ground_plane_bands
from graphopt_person.slicing import GroundPlaneMismatch, GroundPlaneSlicePass
from graphopt_person.spec import DetectorConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "02_person_detector"
VARIANTS = ("fp32", "fp32_ground", "fp16", "fp16_ground")
#: Each sliced variant and the unsliced graph it is compared with.
COUNTERPART = {"fp32_ground": "fp32", "fp16_ground": "fp16"}
DEFAULT_MARGINS = "0,1,2,3,4,6"


def sliced(model: onnx.ModelProto, config: DetectorConfig, margin: int) -> onnx.ModelProto | str:
    """``model`` sliced to the ground plane with ``margin`` rows, or the sentence saying why it could not be."""
    try:
        result = GroundPlaneSlicePass(config=config, margin_rows=margin)(model)
        create_session(result.model, what="the ground-plane sliced model")
    except (graphopt.GraphoptError, GroundPlaneMismatch) as error:
        return first_line(error)
    return result.model


def build_variants(model: onnx.ModelProto, config: DetectorConfig) -> dict[str, onnx.ModelProto | str]:
    """Every variant's model, or the sentence saying why it could not be built."""
    fp32, _ = graphopt.optimize(model, detector=config)
    fp16, _ = graphopt.optimize(model, detector=config, fp16=True)
    return {
        "fp32": fp32,
        "fp32_ground": sliced(fp32, config, DEFAULT_MARGIN_ROWS),
        "fp16": fp16,
        "fp16_ground": sliced(fp16, config, DEFAULT_MARGIN_ROWS),
    }


def detections(outputs: list[np.ndarray]) -> Detections:
    scores, boxes, cells, count = outputs
    n = int(count)
    return Detections(boxes=boxes[:n], scores=scores[:n], cells=cells[:n].astype(np.int64))


def compare(reference: Detections, found: Detections,
            tolerance: float) -> tuple[bool, list[tuple[int, ...]], list[tuple[int, ...]], float]:
    """(identical, extra cells, lost cells, max score difference over shared cells), as bench_fp16's compare."""
    ref = {tuple(c): s for c, s in zip(reference.cells.tolist(), reference.scores.tolist(), strict=True)}
    new = {tuple(c): s for c, s in zip(found.cells.tolist(), found.scores.tolist(), strict=True)}
    shared = set(ref) & set(new)
    worst = max((abs(ref[c] - new[c]) for c in shared), default=0.0)
    same = set(ref) == set(new) and np.array_equal(reference.boxes, found.boxes) and worst <= tolerance
    return same, sorted(set(new) - set(ref)), sorted(set(ref) - set(new)), worst


def outside_exact_rows(cell: tuple[int, ...], bands: tuple[ScaleBand, ...]) -> bool:
    """Whether a detection's peak ``(scale, grid row, grid column)`` lies outside its scale's exact grid rows."""
    rows = bands[cell[0]].grid_rows
    return rows is None or not rows[0] <= cell[1] <= rows[1]


def on_a_person(reference: Detections, cells: list[tuple[int, ...]], truth: np.ndarray) -> int:
    """How many of the detections at ``cells`` overlap a ground-truth box with IoU at least 0.5."""
    if not cells or len(truth) == 0:
        return 0
    index = {tuple(c): i for i, c in enumerate(reference.cells.tolist())}
    boxes = reference.boxes[[index[c] for c in cells]]
    return int((iou_matrix(boxes, truth).max(axis=1) >= 0.5).sum())


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    config = load_config(args.config)
    model = load_model(args.model)
    bands = ground_plane_bands(config, margin_rows=DEFAULT_MARGIN_ROWS)
    deployed = build_variants(model, config)
    low = dataclasses.replace(config, detector=dataclasses.replace(config.detector,
                                                                   score_threshold=args.eval_threshold))
    curves_models = build_variants(model, low)
    failed = {name: why for name, why in deployed.items() if isinstance(why, str)}
    failed.update({name: why for name, why in curves_models.items() if isinstance(why, str) and name not in failed})
    built = [name for name in VARIANTS if name not in failed]
    sessions = {name: create_session(deployed[name]) for name in built}  # type: ignore[arg-type]
    eval_sessions = {name: create_session(curves_models[name]) for name in built}  # type: ignore[arg-type]
    sweep, sweep_sessions = margin_sweep(args.margins, config, low, curves_models, eval_sessions)
    rows = variant_rows(deployed, built)
    frames = run_frames(args, config, bands, rows, sweep, sessions, eval_sessions, sweep_sessions)
    # Latency, interleaved frame by frame.
    times = time_frames_interleaved(sessions, frames, settle_ms=args.settle_ms)
    for name, row in rows.items():
        row["latency_ms"] = float(np.median(times[name]))
        row["latency_p90_ms"] = float(np.percentile(times[name], 90))
    for name, row in rows.items():
        if name in COUNTERPART and COUNTERPART[name] in rows:
            row["speedup"] = rows[COUNTERPART[name]]["latency_ms"] / row["latency_ms"]
    return {
        "machine": machine_description(),
        "frames": args.frames,
        "latency_frames": len(frames),
        "settle_ms": args.settle_ms,
        "score_tolerance": args.score_tolerance,
        "eval_threshold": args.eval_threshold,
        "margin_rows": DEFAULT_MARGIN_ROWS,
        "variants": rows,
        "failed": failed,
        "scales": [band.describe() for band in bands],
        "margin_sweep": [{"margin_rows": margin, **entry} for margin, entry in sweep.items()],
        "wall_s": time.perf_counter() - started,
    }


def margin_sweep(
    margins: list[int],
    config: DetectorConfig,
    low: DetectorConfig,
    curves_models: dict[str, onnx.ModelProto | str],
    eval_sessions: dict[str, Any],
) -> tuple[dict[int, dict[str, Any]], dict[int, Any]]:
    """The eval-threshold float32 graph sliced with every margin: rows kept, FLOPs and the cut, and a session each.

    A margin whose slicing fails gets the sentence why (and no session).
    """
    eval_fp32 = curves_models["fp32"]
    assert isinstance(eval_fp32, onnx.ModelProto)
    fp32_flops = count_flops(eval_fp32).total
    sweep: dict[int, dict[str, Any]] = {}
    sweep_sessions = {}
    for margin in margins:
        margin_bands = ground_plane_bands(config, margin_rows=margin)
        entry: dict[str, Any] = {
            "score_rows_kept": sum(band.rows_kept for band in margin_bands),
            "score_rows_total": sum(band.map_height for band in margin_bands),
        }
        sweep[margin] = entry
        if margin == DEFAULT_MARGIN_ROWS and "fp32_ground" in eval_sessions:
            graph: onnx.ModelProto | str = curves_models["fp32_ground"]
            sweep_sessions[margin] = eval_sessions["fp32_ground"]
        else:
            graph = sliced(eval_fp32, low, margin)
            if isinstance(graph, onnx.ModelProto):
                sweep_sessions[margin] = create_session(graph)
        if isinstance(graph, str):
            entry["failed"] = graph
            continue
        entry["flops_per_frame"] = count_flops(graph).total
        entry["flops_cut"] = 1 - entry["flops_per_frame"] / fp32_flops
    return sweep, sweep_sessions


def variant_rows(deployed: dict[str, onnx.ModelProto | str], built: list[str]) -> dict[str, dict[str, Any]]:
    """Each built variant's FLOPs, nodes and size, the cut against its counterpart, and zeroed counters."""
    rows: dict[str, dict[str, Any]] = {}
    for name in built:
        graph = deployed[name]
        assert isinstance(graph, onnx.ModelProto)
        rows[name] = {
            "flops_per_frame": count_flops(graph).total,
            "nodes": len(graph.graph.node),
            "model_bytes": graph.ByteSize(),
            "detections": 0,
        }
        if name in COUNTERPART:
            rows[name].update(compared_with=COUNTERPART[name], identical_frames=0, extra=0, lost=0,
                              lost_outside_exact_rows=0, lost_on_a_person=0, max_score_diff=0.0)
    for name, row in rows.items():
        if name in COUNTERPART and COUNTERPART[name] in rows:
            row["flops_cut"] = 1 - row["flops_per_frame"] / rows[COUNTERPART[name]]["flops_per_frame"]
    return rows


def run_frames(
    args: argparse.Namespace,
    config: DetectorConfig,
    bands: tuple[ScaleBand, ...],
    rows: dict[str, dict[str, Any]],
    sweep: dict[int, dict[str, Any]],
    sessions: dict[str, Any],
    eval_sessions: dict[str, Any],
    sweep_sessions: dict[int, Any],
) -> list[np.ndarray]:
    """Every test frame through every session, and what it shows added to ``rows`` and ``sweep``.

    Counts and comparisons go into ``rows``, miss rates into ``rows`` and
    ``sweep``. Returns the first ``--latency-frames`` frames, for the latency.
    """
    found: dict[str, list[Detections]] = {name: [] for name in eval_sessions}
    swept: dict[int, list[Detections]] = {margin: [] for margin in sweep_sessions}
    truth: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    for seed in scene_seeds("test", args.frames):
        scene = render_scene(config, seed)
        truth.append(scene.boxes)
        if len(frames) < args.latency_frames:
            frames.append(scene.image)
        feed = {FRAME_INPUT: scene.image}
        outputs = {name: detections(session.run(None, feed)) for name, session in sessions.items()}
        for name, mine in outputs.items():
            rows[name]["detections"] += len(mine)
            if name in COUNTERPART and COUNTERPART[name] in outputs:
                count_differences(rows[name], outputs[COUNTERPART[name]], mine, scene.boxes, bands,
                                  args.score_tolerance)
        for name, session in eval_sessions.items():
            found[name].append(detections(session.run(None, feed)))
        for margin, session in sweep_sessions.items():
            swept[margin].append(found["fp32_ground"][-1] if session is eval_sessions.get("fp32_ground")
                                 else detections(session.run(None, feed)))
    add_miss_rates(rows, sweep, found, swept, truth)
    return frames


def count_differences(row: dict[str, Any], reference: Detections, mine: Detections, truth: np.ndarray,
                      bands: tuple[ScaleBand, ...], tolerance: float) -> None:
    """Adds one frame's comparison of a sliced variant with its counterpart to the variant's ``row``."""
    same, extra, lost, worst = compare(reference, mine, tolerance)
    row["identical_frames"] += int(same)
    row["extra"] += len(extra)
    row["lost"] += len(lost)
    row["lost_outside_exact_rows"] += sum(outside_exact_rows(cell, bands) for cell in lost)
    row["lost_on_a_person"] += on_a_person(reference, lost, truth)
    row["max_score_diff"] = max(row["max_score_diff"], worst)


def add_miss_rates(rows: dict[str, dict[str, Any]], sweep: dict[int, dict[str, Any]],
                   found: dict[str, list[Detections]], swept: dict[int, list[Detections]],
                   truth: list[np.ndarray]) -> None:
    """Miss rate at 0.1 FPPI and log-average miss rate of every variant (and the change) and every margin."""
    for name, row in rows.items():
        curve = evaluate(found[name], truth)
        row["miss_rate_at_0.1_fppi"] = curve.miss_rate_at(0.1)
        row["log_average_miss_rate"] = curve.log_average_miss_rate()
    for name, row in rows.items():
        if name in COUNTERPART and COUNTERPART[name] in rows:
            reference_row = rows[COUNTERPART[name]]
            row["miss_rate_diff_pts"] = 100 * (row["miss_rate_at_0.1_fppi"] - reference_row["miss_rate_at_0.1_fppi"])
            row["log_average_miss_rate_diff_pts"] = 100 * (row["log_average_miss_rate"]
                                                           - reference_row["log_average_miss_rate"])
    for margin, results in swept.items():
        curve = evaluate(results, truth)
        sweep[margin]["miss_rate_at_0.1_fppi"] = curve.miss_rate_at(0.1)
        sweep[margin]["log_average_miss_rate"] = curve.log_average_miss_rate()


def render(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}; onnxruntime CPU")
    print(f"{result['frames']} test frames; latency median over {result['latency_frames']} interleaved frames "
          f"({result['settle_ms']:g} ms pause before each call); MR from the graphs built at threshold "
          f"{result['eval_threshold']:g}; sliced variants compared with their unsliced counterpart "
          f"(margin {result['margin_rows']} score rows)")
    head = ("variant", "FLOPs/frame", "FLOPs cut", "identical frames", "extra", "lost (outside exact rows)",
            "MR@0.1FPPI", "ΔMR pts", "LAMR", "CPU ms median", "ratio")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for name, row in result["variants"].items():
        compared = "identical_frames" in row
        print(" | ".join([
            name,
            f"{row['flops_per_frame'] / 1e9:.2f} G",
            f"−{row['flops_cut']:.0%}" if "flops_cut" in row else "—",
            f"{row['identical_frames']}/{result['frames']}" if compared else "—",
            str(row["extra"]) if compared else "—",
            f"{row['lost']} ({row['lost_outside_exact_rows']})" if compared else "—",
            f"{100 * row['miss_rate_at_0.1_fppi']:.1f}%",
            f"{row['miss_rate_diff_pts']:+.1f}" if "miss_rate_diff_pts" in row else "—",
            f"{100 * row['log_average_miss_rate']:.1f}%",
            f"{row['latency_ms']:.1f} (p90 {row['latency_p90_ms']:.1f})",
            f"{row['speedup']:.2f}×" if "speedup" in row else "—",
        ]))
    for name, why in result["failed"].items():
        print(f"{name}: failed: {why}")
    for name, row in result["variants"].items():
        if "identical_frames" in row:
            print(f"{name} vs {row['compared_with']}: {row['detections']} detections, {row['lost_on_a_person']} of "
                  f"the {row['lost']} lost on a true person (IoU ≥ 0.5), max |Δscore| {row['max_score_diff']:.2g}, "
                  f"{row['nodes']} nodes, {row['model_bytes'] / 1000:.0f} kB "
                  f"(unsliced {result['variants'][row['compared_with']]['model_bytes'] / 1000:.0f} kB)")
    print()
    print(f"per scale, margin {result['margin_rows']}:")
    for line in result["scales"]:
        print(f"  {line}")
    print()
    print("float32 margin sweep (eval-threshold graphs, same frames)")
    sweep_head = ("margin rows", "FLOPs/frame", "FLOPs cut", "score rows kept", "MR@0.1FPPI", "LAMR")
    print(" | ".join(sweep_head))
    print(" | ".join("---" for _ in sweep_head))
    for entry in result["margin_sweep"]:
        kept = f"{entry['score_rows_kept']}/{entry['score_rows_total']}"
        kept += f" ({entry['score_rows_kept'] / entry['score_rows_total']:.0%})"
        if "failed" in entry:
            print(" | ".join([str(entry["margin_rows"]), "—", "—", kept, f"failed: {entry['failed']}", "—"]))
            continue
        print(" | ".join([
            str(entry["margin_rows"]),
            f"{entry['flops_per_frame'] / 1e9:.2f} G",
            f"−{entry['flops_cut']:.0%}",
            kept,
            f"{100 * entry['miss_rate_at_0.1_fppi']:.1f}%",
            f"{100 * entry['log_average_miss_rate']:.1f}%",
        ]))
    print(f"wall time {result['wall_s']:.0f} s")


def write_json(path: Path, result: dict[str, Any]) -> None:
    """Writes ``result`` to ``path`` through a temporary file, so no half-written file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's file is private; give it the usual permissions
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(result, indent=2) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def parse_margins(text: str) -> list[int]:
    """``"0,1,2"`` as distinct margins in the given order."""
    try:
        margins = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers of score rows, got {text!r}") \
            from None
    if not margins:
        raise argparse.ArgumentTypeError("expected at least one margin")
    if any(margin < 0 for margin in margins):
        raise argparse.ArgumentTypeError(f"margins must be at least 0 score rows, got {text!r}") from None
    return list(dict.fromkeys(margins))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=EXAMPLE / "model.onnx")
    parser.add_argument("--config", type=Path, default=EXAMPLE / "detector.toml")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--latency-frames", type=int, default=30)
    parser.add_argument("--settle-ms", type=float, default=150.0)
    parser.add_argument("--score-tolerance", type=float, default=1e-2)
    parser.add_argument("--eval-threshold", type=float, default=0.5)
    parser.add_argument("--margins", type=parse_margins, default=parse_margins(DEFAULT_MARGINS),
                        help=f"comma-separated score-map rows for the float32 sweep (default {DEFAULT_MARGINS})")
    parser.add_argument("--json", type=Path)
    add_results_dir_option(parser)
    args = parser.parse_args()
    if args.frames < 1:
        parser.error(f"--frames must be at least 1, got {args.frames}")
    if args.latency_frames < 1:
        parser.error(f"--latency-frames must be at least 1, got {args.latency_frames}")
    if args.settle_ms < 0:
        parser.error(f"--settle-ms must be at least 0, got {args.settle_ms:g}")
    if args.score_tolerance < 0:
        parser.error(f"--score-tolerance must be at least 0, got {args.score_tolerance:g}")
    if not 0 < args.eval_threshold < 1:
        parser.error(f"--eval-threshold must be a probability strictly between 0 and 1, got {args.eval_threshold:g}")
    for option, path in (("--model", args.model), ("--config", args.config)):
        if not path.is_file():
            parser.error(f"{option}: no such file: {path}")
    if args.json is not None and args.json.is_dir():
        parser.error(f"--json: {args.json} is a directory")
    try:
        scene_seeds("test", args.frames)
    except ValueError as error:
        parser.error(f"--frames: {error}")
    try:
        result = run(args)
    except graphopt.GraphoptError as error:
        print(f"{parser.prog}: error: {first_line(error)}", file=sys.stderr)
        sys.exit(2)
    text = printed(render, result)
    if args.json:
        write_json(args.json, result)
    publish_printed(args.results_dir, "bench_ground_plane", "Ground-plane slicing", result, text,
                    about=__doc__.split("Usage::")[0])


if __name__ == "__main__":
    main()
