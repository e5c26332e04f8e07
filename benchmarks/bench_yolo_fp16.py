"""Float16 YOLO detectors with scores in logit space against float32 and the naive float16 conversions.

Two YOLO-family exports trained by others (``benchmarks/models.toml``:
NudeNet's YOLOv8n, ``[1, 4+C, N]``; ddddocr's YOLOX text detector,
``[1, N, 5+C]`` with objectness), each with its client code as a config
(``examples/06_yolo/yolo.toml`` and ``ddddocr.toml``). Both exports apply the
sigmoid inside the graph. Variants, each the detector fused into one graph by
``graphopt optimize --config``:

``fp32``
    the default pipeline: threshold, top-K and NMS order on the logits under the
    export's score Sigmoids, the sigmoid on the kept rows only. The reference.
``fp16_plain``
    graphopt's ``convert_to_float16`` of the ``fp32`` graph with no guard and no
    pinning (its float32 pins removed first): float16 everywhere, head included.
``onnxconverter_common``
    ``onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)``
    of the exported network, the converter users reach for, with the fused
    graph's pre- and post-processing around it (float32 in and out, so the
    head ranks the float16 network's probabilities). Converting the fused
    graph itself fails: the converter retypes the frame's uint8 ``Cast``. A
    failure is reported as a sentence.
``fp16_probabilities``
    ``--fp16`` on a fused graph that ranks the export's probabilities
    (``logit_scores = false``): the head is float32, but the network's float16
    Sigmoid has already rounded the scores (no float16 between 0.9995 and 1).
``fp16``
    ``graphopt optimize --fp16``: logit scores, the network in float16, the head
    pinned to float32, the precision guard on the training frames.

On the workload's test frames (``config.frames("test", N)``: scikit-image's
photographs and rendered text, named), each variant's detections are compared
with ``fp32``'s: a frame is identical when the count and classes are the same,
boxes within 0.5 px and scores within ``--score-tolerance``; extra and lost
detections are counted by matching boxes of the same class (IoU at least 0.5),
and the frames that differ are named. Latency: each variant's session
(onnxruntime CPU) on the first ``--latency-frames`` frames, interleaved frame
by frame, median. Sizes are the serialized ``.onnx`` bytes.

Usage::

    .venv/bin/python benchmarks/bench_yolo_fp16.py [--frames 100] [--only yolox] [--json build/bench_yolo_fp16.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path
from typing import Any

import model_set
import numpy as np
import onnx

import graphopt
from graphopt.backends.onnxruntime import create_session
from graphopt.detections import Detections
from graphopt.passes.fp16 import convert_to_float16
from graphopt.passes.nms_logits import PRECISION_KEY
from graphopt.results import add_results_dir_option, finish_run
from graphopt.timing import machine_description, time_calls_interleaved
from graphopt.workloads import load_config
from graphopt_yolo.config import YoloConfig
from graphopt_yolo.fused import FRAME_INPUT, build_fused_model
from graphopt_yolo.pictures import pictures

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "06_yolo"
#: The model set's YOLO exports and their client code.
MODELS = {"yolov8n": EXAMPLE / "yolo.toml", "yolox": EXAMPLE / "ddddocr.toml"}
VARIANTS = ("fp32", "fp16_plain", "onnxconverter_common", "fp16_probabilities", "fp16")
BOX_TOLERANCE = 0.5  # pixels: the host-fusion check's


def _unpinned(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without its float32 pins (what a converter that knows no head sees)."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    for node in work.graph.node:
        kept = [p for p in node.metadata_props if p.key != PRECISION_KEY]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    return work


def _onnxconverter(network: onnx.ModelProto, config: YoloConfig) -> onnx.ModelProto | str:
    try:
        from onnxconverter_common import float16
    except ImportError:
        return "not installed (pip install onnxconverter-common, in the bench extra)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about every value it clamps
            converted = build_fused_model(float16.convert_float_to_float16(network, keep_io_types=True), config)
        create_session(converted, what="onnxconverter-common's float16 model")
    except graphopt.GraphoptError as error:
        return str(error).splitlines()[0]
    except Exception as error:  # a third-party converter may fail in any way: reported as a sentence
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no message'}"
    return converted


def _pass_stats(report: Any, name: str) -> dict[str, Any]:
    return next((dict(p.stats) for p in report.passes if p.name == name), {})


def build_variants(network: onnx.ModelProto, config: YoloConfig) -> tuple[dict[str, onnx.ModelProto | str],
                                                                          dict[str, Any]]:
    """Every variant's model (or the sentence saying why it could not be built), and what the passes said."""
    fp32, report32 = graphopt.optimize(network, config=config)
    probabilities, report_p = graphopt.optimize(network, config=dataclasses.replace(config, logit_scores=False),
                                                fp16=True)
    fp16, report16 = graphopt.optimize(network, config=config, fp16=True)
    fused = _pass_stats(report32, "fuse_host_stages")
    notes = {
        "network_nodes": fused.get("network_nodes"),
        "scores_on_logits": fused.get("scores_on_logits"),
        "kept_by_guard": {"fp16_probabilities": _pass_stats(report_p, "convert_to_fp16").get("kept_by_guard"),
                          "fp16": _pass_stats(report16, "convert_to_fp16").get("kept_by_guard")},
        "float16_flop_share": _pass_stats(report16, "convert_to_fp16").get("float16_flop_share"),
    }
    variants: dict[str, onnx.ModelProto | str] = {
        "fp32": fp32,
        "fp16_plain": convert_to_float16(_unpinned(fp32)).model,
        "onnxconverter_common": _onnxconverter(network, config),
        "fp16_probabilities": probabilities,
        "fp16": fp16,
    }
    return variants, notes


def detections(outputs: list[np.ndarray]) -> Detections:
    scores, boxes, classes, count = outputs
    n = int(count)
    return Detections(boxes=boxes[:n].astype(np.float32), scores=scores[:n].astype(np.float32),
                      cells=np.full((n, 3), -1, np.int64), classes=classes[:n].astype(np.int64))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / union) if union > 0 else 0.0


def compare(reference: Detections, found: Detections,
            tolerance: float) -> tuple[bool, int, int, float, float]:
    """(identical, extra, lost, max score and max box coordinate difference over matched detections).

    Identical: the same count and classes in the same order, boxes within
    :data:`BOX_TOLERANCE` px, scores within ``tolerance``. Matching for the
    counts: each reference detection, best first, takes the first unmatched
    detection of its class with IoU at least 0.5.
    """
    unmatched = list(range(len(found)))
    worst, box, lost = 0.0, 0.0, 0
    for i in range(len(reference)):
        match = next((j for j in unmatched if found.classes[j] == reference.classes[i]
                      and _iou(found.boxes[j], reference.boxes[i]) >= 0.5), None)
        if match is None:
            lost += 1
            continue
        unmatched.remove(match)
        worst = max(worst, abs(float(found.scores[match]) - float(reference.scores[i])))
        box = max(box, float(np.abs(found.boxes[match] - reference.boxes[i]).max()))
    same = (len(reference) == len(found) and np.array_equal(reference.classes, found.classes)
            and (not len(found) or (float(np.abs(reference.boxes - found.boxes).max()) <= BOX_TOLERANCE
                                    and float(np.abs(reference.scores - found.scores).max()) <= tolerance)))
    return same, len(unmatched), lost, worst, box


@dataclasses.dataclass
class Tally:
    """One variant's figures over the frames, against ``fp32``'s detections."""

    nodes: int
    model_bytes: int
    identical_frames: int = 0
    extra: int = 0
    lost: int = 0
    max_score_diff: float = 0.0
    max_box_diff: float = 0.0
    detections: int = 0
    highest_score: float = 0.0
    differing_frames: list[str] = dataclasses.field(default_factory=list)
    latency_ms: float = 0.0

    def add(self, frame: str, reference: Detections, found: Detections, tolerance: float) -> None:
        same, extra, lost, worst, box = compare(reference, found, tolerance)
        self.identical_frames += int(same)
        self.extra, self.lost, self.detections = self.extra + extra, self.lost + lost, self.detections + len(found)
        self.max_score_diff = max(self.max_score_diff, worst)
        self.max_box_diff = max(self.max_box_diff, box)
        self.highest_score = max(self.highest_score, float(found.scores.max(initial=0.0)))
        if not same and frame not in self.differing_frames:
            self.differing_frames.append(frame)


def run_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One model's variants on the test frames: detections against ``fp32``, sizes, nodes and latency."""
    config = load_config(MODELS[name])
    assert isinstance(config, YoloConfig)
    entry = next(e for e in model_set.load_manifest() if e.name == name)
    network = onnx.load(str(model_set.fetch(entry)))
    models, notes = build_variants(network, config)
    built = {v: m for v, m in models.items() if isinstance(m, onnx.ModelProto)}
    sessions = {v: create_session(m) for v, m in built.items()}
    tallies = {v: Tally(nodes=len(m.graph.node), model_bytes=m.ByteSize()) for v, m in built.items()}
    frames = pictures(config, "test", args.frames)
    for frame_name, frame in frames:
        reference = detections(sessions["fp32"].run(None, {FRAME_INPUT: frame}))
        for variant, session in sessions.items():
            tallies[variant].add(frame_name, reference, detections(session.run(None, {FRAME_INPUT: frame})),
                                 args.score_tolerance)
    calls = {v: (lambda frame, s=s: s.run(None, {FRAME_INPUT: frame})) for v, s in sessions.items()}
    timed = [frame for _, frame in frames[: args.latency_frames]]
    times = time_calls_interleaved(calls, timed, warmup=timed[:1], settle_ms=args.settle_ms)
    for variant, tally in tallies.items():
        tally.latency_ms = float(np.median(times[variant]))
    return {"config": str(MODELS[name].relative_to(ROOT)), **notes, "frames": len(frames),
            "variants": {v: dataclasses.asdict(t) for v, t in tallies.items()},
            "failed": {v: why for v, why in models.items() if isinstance(why, str)}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "machine": machine_description(),
        "frames": args.frames,
        "latency_frames": min(args.latency_frames, args.frames),
        "score_tolerance": args.score_tolerance,
        "box_tolerance": BOX_TOLERANCE,
        "models": {name: run_model(name, args) for name in (args.only or list(MODELS))},
    }


def render(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}; onnxruntime CPU")
    print(f"{result['frames']} test frames per model; identical: same count and classes, boxes within "
          f"{result['box_tolerance']:g} px, scores within {result['score_tolerance']:g}; latency median over "
          f"{result['latency_frames']} interleaved frames")
    for name, section in result["models"].items():
        print(f"\n{name} ({section['config']}): {section['network_nodes']} network nodes; fp32 scores on "
              f"{'logits' if section['scores_on_logits'] else 'probabilities'}; kept in float32 by the guard: "
              + ", ".join(f"{v} {n}" for v, n in section["kept_by_guard"].items())
              + f"; fp16 float16 FLOP share {section['float16_flop_share']}")
        print(" | ".join(("variant", "identical frames", "detections", "extra dets", "lost dets", "max |Δscore|",
                          "max |Δbox| px", "top score", "nodes", "size kB", "CPU ms", "frames that differ")))
        for variant, row in section["variants"].items():
            print(" | ".join([
                variant, f"{row['identical_frames']}/{section['frames']}", str(row["detections"]), str(row["extra"]),
                str(row["lost"]), f"{row['max_score_diff']:.2g}", f"{row['max_box_diff']:.2g}",
                f"{row['highest_score']:.4f}", str(row["nodes"]),
                f"{row['model_bytes'] / 1000:.0f}", f"{row['latency_ms']:.1f}",
                ", ".join(row["differing_frames"]) or "none",
            ]))
        for variant, why in section["failed"].items():
            print(f"{variant}: failed: {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="test frames per model")
    parser.add_argument("--only", nargs="+", choices=list(MODELS), help="these models only")
    parser.add_argument("--latency-frames", type=int, default=8)
    parser.add_argument("--settle-ms", type=float, default=50.0)
    parser.add_argument("--score-tolerance", type=float, default=5e-3)
    parser.add_argument("--json", type=Path)
    add_results_dir_option(parser)
    args = parser.parse_args()
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    result = run(args)
    finish_run(result, render, json_path=args.json, results_dir=args.results_dir, name="bench_yolo_fp16",
               title="Float16 YOLO detectors with scores in logit space", about=__doc__.split("Usage::")[0])


if __name__ == "__main__":
    main()
