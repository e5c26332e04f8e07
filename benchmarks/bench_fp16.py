"""Float16 with the NMS on log-odds against the float32 graph and the naive float16 conversions.

Every variant is the shipped detector fused into one graph by the default
pipeline (``graphopt.optimize(model, detector=config)``), then:

``fp32``
    nothing more: the reference.
``fp32_logits``
    ``nms_on_logits`` only (still float32): the rewrite alone, exact in exact arithmetic.
``fp16_logits``
    ``--fp16``: ``nms_on_logits`` then ``convert_to_fp16`` with its precision guard.
``fp16_plain``
    ``convert_to_float16`` of the float32 graph with no guard: float16 everywhere,
    the softmax still in front of the NMS (the naive conversion).
``fp16_guarded``
    ``convert_to_fp16`` of the float32 graph with the guard but no log-odds: what
    the guard alone keeps in float32 to save the detections.
``onnxconverter_common``
    ``onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)``,
    the converter users reach for; reported as failing when onnxruntime cannot load
    its output.

On every frame of the synthetic test set (``--frames``, default all 200), each
variant's detections are compared with ``fp32``'s: identical frames (same
cells and boxes, scores within ``--score-tolerance``), extra detections (cells
``fp32`` does not report: duplicates on a plateau) and lost ones. Each variant
is also built a second time at a low threshold (``--eval-threshold``) to read
the miss rate at 0.1 false positives per image off its whole curve; the
deployed threshold is kept for the detection comparison.

Latency: the variants' sessions (onnxruntime CPU, default threads) run the
first ``--latency-frames`` frames interleaved, a pause before each call,
median over the frames. Model sizes are the serialized ``.onnx`` bytes.

Usage::

    .venv/bin/python benchmarks/bench_fp16.py [--frames 200] [--json build/bench_fp16.json]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import graphopt
from graphopt.backends.onnxruntime import create_session
from graphopt.detections import Detections
from graphopt.evaluation import evaluate
from graphopt.model_io import load_model
from graphopt.options import OptimizeOptions
from graphopt.passes import ConvertToFp16Pass, NmsOnLogitsPass
from graphopt.passes.fp16 import calibration_inputs, convert_to_float16
from graphopt.results import add_results_dir_option, finish_run
from graphopt.timing import machine_description
from graphopt_person.data import render_scene, scene_seeds
from graphopt_person.fused import FRAME_INPUT, time_frames_interleaved
from graphopt_person.spec import DetectorConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "02_person_detector"
VARIANTS = ("fp32", "fp32_logits", "fp16_logits", "fp16_plain", "fp16_guarded", "onnxconverter_common")


def build_variants(model: onnx.ModelProto, config: DetectorConfig) -> dict[str, onnx.ModelProto | str]:
    """Every variant's model, or the sentence saying why it could not be built."""
    fp32, _ = graphopt.optimize(model, detector=config)
    calibration = calibration_inputs(OptimizeOptions(workload=config))
    logits = NmsOnLogitsPass()(fp32).model
    out: dict[str, onnx.ModelProto | str] = {
        "fp32": fp32,
        "fp32_logits": logits,
        "fp16_logits": ConvertToFp16Pass(calibration=calibration)(logits).model,
        "fp16_plain": convert_to_float16(fp32).model,
        "fp16_guarded": ConvertToFp16Pass(calibration=calibration)(fp32).model,
    }
    try:
        import warnings

        from onnxconverter_common import float16

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about every value it clamps
            converted = float16.convert_float_to_float16(fp32, keep_io_types=True)
        create_session(converted, what="onnxconverter-common's float16 model")
        out["onnxconverter_common"] = converted
    except ImportError:
        out["onnxconverter_common"] = "not installed (pip install onnxconverter-common)"
    except graphopt.GraphoptError as error:
        out["onnxconverter_common"] = str(error).splitlines()[0]
    return out


def detections(outputs: list[np.ndarray]) -> Detections:
    scores, boxes, cells, count = outputs
    n = int(count)
    return Detections(boxes=boxes[:n], scores=scores[:n], cells=cells[:n].astype(np.int64))


def compare(reference: Detections, found: Detections, tolerance: float) -> tuple[bool, int, int, float]:
    """(identical, extra, lost, max score difference over shared cells)."""
    ref = {tuple(c): s for c, s in zip(reference.cells.tolist(), reference.scores.tolist(), strict=True)}
    new = {tuple(c): s for c, s in zip(found.cells.tolist(), found.scores.tolist(), strict=True)}
    shared = set(ref) & set(new)
    worst = max((abs(ref[c] - new[c]) for c in shared), default=0.0)
    same = set(ref) == set(new) and np.array_equal(reference.boxes, found.boxes) and worst <= tolerance
    return same, len(set(new) - set(ref)), len(set(ref) - set(new)), worst


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config)
    model = load_model(args.model)
    deployed = build_variants(model, config)
    low = dataclasses.replace(config, detector=dataclasses.replace(config.detector,
                                                                   score_threshold=args.eval_threshold))
    curves_models = build_variants(model, low)
    sessions = {name: create_session(m) for name, m in deployed.items() if isinstance(m, onnx.ModelProto)}
    eval_sessions = {name: create_session(m) for name, m in curves_models.items()
                     if isinstance(m, onnx.ModelProto)}
    rows: dict[str, dict[str, Any]] = {
        name: {"identical_frames": 0, "extra": 0, "lost": 0, "max_score_diff": 0.0, "detections": 0}
        for name in sessions
    }
    found: dict[str, list[Detections]] = {name: [] for name in eval_sessions}
    truth: list[np.ndarray] = []
    frames = []
    for seed in scene_seeds("test", args.frames):
        scene = render_scene(config, seed)
        truth.append(scene.boxes)
        if len(frames) < args.latency_frames:
            frames.append(scene.image)
        feed = {FRAME_INPUT: scene.image}
        reference = detections(sessions["fp32"].run(None, feed))
        for name, session in sessions.items():
            mine = detections(session.run(None, feed))
            same, extra, lost, worst = compare(reference, mine, args.score_tolerance)
            row = rows[name]
            row["identical_frames"] += int(same)
            row["extra"] += extra
            row["lost"] += lost
            row["max_score_diff"] = max(row["max_score_diff"], worst)
            row["detections"] += len(mine)
        for name, session in eval_sessions.items():
            found[name].append(detections(session.run(None, feed)))
    for name, row in rows.items():
        curve = evaluate(found[name], truth)
        row["miss_rate_at_0.1_fppi"] = curve.miss_rate_at(0.1)
        row["log_average_miss_rate"] = curve.log_average_miss_rate()
        row["model_bytes"] = deployed[name].ByteSize()  # type: ignore[union-attr]

    # Latency, interleaved frame by frame.
    times = time_frames_interleaved(sessions, frames, settle_ms=args.settle_ms)
    for name, row in rows.items():
        row["latency_ms"] = float(np.median(times[name]))
    failed = {name: why for name, why in deployed.items() if isinstance(why, str)}
    return {
        "machine": machine_description(),
        "frames": args.frames,
        "latency_frames": len(frames),
        "score_tolerance": args.score_tolerance,
        "eval_threshold": args.eval_threshold,
        "variants": rows,
        "failed": failed,
    }


def render(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}; onnxruntime CPU")
    print(f"{result['frames']} test frames; latency median over {result['latency_frames']} interleaved frames")
    head = ("variant", "identical frames", "extra dets", "lost dets", "max |Δscore|", "MR@0.1FPPI",
            "size kB", "CPU ms")
    print(" | ".join(head))
    for name, row in result["variants"].items():
        print(" | ".join([
            name, f"{row['identical_frames']}/{result['frames']}", str(row["extra"]), str(row["lost"]),
            f"{row['max_score_diff']:.2g}", f"{100 * row['miss_rate_at_0.1_fppi']:.1f}%",
            f"{row['model_bytes'] / 1000:.0f}", f"{row['latency_ms']:.1f}",
        ]))
    for name, why in result["failed"].items():
        print(f"{name}: failed: {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=EXAMPLE / "model.onnx")
    parser.add_argument("--config", type=Path, default=EXAMPLE / "detector.toml")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--latency-frames", type=int, default=20)
    parser.add_argument("--settle-ms", type=float, default=150.0)
    parser.add_argument("--score-tolerance", type=float, default=1e-2)
    parser.add_argument("--eval-threshold", type=float, default=0.5)
    parser.add_argument("--json", type=Path)
    add_results_dir_option(parser)
    args = parser.parse_args()
    result = run(args)
    finish_run(result, render, json_path=args.json, results_dir=args.results_dir, name="bench_fp16",
               title="Float16 with the NMS on log-odds", about=__doc__.split("Usage::")[0])


if __name__ == "__main__":
    main()
