"""YOLO exports per frame on real frames: host pipeline, cv2 client, fused graph (float32, float16, cropped), ortx.

For each model of the benchmark set that is a YOLO export, with the config
that writes its client code as settings (NudeNet's YOLOv8n:
``examples/06_yolo/yolo.toml``; ddddocr's YOLOX: ``benchmarks/yolox.toml``,
from ddddocr's ``DetectionEngine.get_bbox``), on the first ``--frames`` test
frames of the config's domain (:mod:`graphopt_yolo.frames`: faces for
NudeNet, captcha-like text for ddddocr), each variant goes from the same
decoded uint8 RGB frame to detections in frame pixels:

``host``
    graphopt's host reference pipeline (:mod:`graphopt_yolo.host`): NumPy
    pre-processing with the graph's own Resize semantics, one onnxruntime
    call, NumPy decode, top-K and greedy NMS. The baseline.
``cv2_client``
    the family's usual client code (``benchmarks/yolo_clients.py``): cv2
    letterbox, NumPy decode, ``cv2.dnn.NMSBoxes``; what users run today.
``fused``
    ``graphopt.optimize(network, config=config)``'s default pipeline: one
    static graph, frame in, detections out.
``fused_fp16``
    the same with ``fp16=True``: the network in float16, the head on logits
    in float32.
``cropped``
    the same with ``ground_plane=True`` (the ``crop_rows`` pass) for a fixed
    camera whose objects are in frame rows ``--band`` (default: the config's
    ``crop_rows``): the network reads that band, 32 input rows wider. Its
    detections are compared with the host pipeline's inside the band, both
    run on the frames blanked outside it (a fixed camera's scene: nothing
    where nothing can be), so that the row measures what the crop changes.
``ortx``
    onnxruntime-extensions' pre/post-processing steps around the network
    (the steps of its ``yolo_detection``, fed the decoded frame, not JPEG
    bytes); where they cannot express the export, the row says why.

Latency: the variants run interleaved frame by frame (their order rotating,
a pause of ``--settle-ms`` before each call), each after ``--warmup`` untimed
frames; median and p90 per frame, and each variant against the host pipeline
with a bootstrap interval (:func:`graphopt.latency.judge`). Nodes: the ONNX
nodes of what onnxruntime runs (the host pipeline and the client run the
network's, plus Python). Detections: each variant's against the host
pipeline's, frame by frame: the same count and classes, boxes within
``--box-tolerance`` px. The cv2 client resizes in uint8 as cv2 does and
onnxruntime-extensions centres the padding and suppresses within each class,
so neither need agree with the host pipeline on every frame; the rows say
where a config asks for what a tool cannot do.

Usage::

    .venv/bin/python benchmarks/bench_yolo.py [--frames 100] [--models yolov8n yolox] [--json PATH]
        [--results-dir docs/results]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import model_set  # noqa: E402
import yolo_clients  # noqa: E402

import graphopt  # noqa: E402
from graphopt.analysis import count_flops  # noqa: E402
from graphopt.detections import Detections  # noqa: E402
from graphopt.graph import count_nodes  # noqa: E402
from graphopt.latency import judge  # noqa: E402
from graphopt.results import add_results_dir_option, finish_run  # noqa: E402
from graphopt.timing import latency_stats, machine_description, time_calls_interleaved  # noqa: E402
from graphopt.workloads import load_config  # noqa: E402
from graphopt_yolo.config import YoloConfig  # noqa: E402
from graphopt_yolo.cropping import compare_in_band, inside_band, outside_band_blanked  # noqa: E402
from graphopt_yolo.fused import FusedDetector  # noqa: E402
from graphopt_yolo.host import HostDetector  # noqa: E402
from graphopt_yolo.layout import find_layout  # noqa: E402
from graphopt_yolo.pictures import pictures  # noqa: E402

ROOT = HERE.parent
#: The YOLO exports of the benchmark set and the configs of their client code.
MODELS = {"yolov8n": ROOT / "examples" / "06_yolo" / "yolo.toml", "yolox": HERE / "yolox.toml"}
VARIANTS = ("host", "cv2_client", "fused", "fused_fp16", "cropped", "ortx")
#: Frame rows of the fixed camera's band for the cropped variant, per model (a camera looking down at a floor:
#: nothing is in the top third).
BANDS = {"yolov8n": (160, 480), "yolox": (160, 480)}
Detect = Callable[[np.ndarray], Detections]


def matches(reference: Detections, found: Detections, tolerance: float) -> tuple[bool, float]:
    """Whether ``found`` has the same count and classes as ``reference``, boxes within ``tolerance`` px.

    Boxes are paired greedily, each reference box with the closest unpaired one of its class (score order can
    differ where scores nearly tie). Returns the verdict and the largest pairing distance (inf when unpaired).
    """
    if len(reference) != len(found):
        return False, float("inf")
    free = list(range(len(found)))
    worst = 0.0
    for box, label in zip(reference.boxes, reference.classes, strict=True):
        candidates = [j for j in free if found.classes[j] == label]
        if not candidates:
            return False, float("inf")
        distance = [float(np.max(np.abs(found.boxes[j] - box))) for j in candidates]
        best = int(np.argmin(distance))
        worst = max(worst, distance[best])
        free.remove(candidates[best])
    return worst <= tolerance, worst


def build_variants(network: onnx.ModelProto, config: YoloConfig,
                   band: tuple[int, int]) -> tuple[dict[str, Detect | str], dict[str, Any], dict[str, Any]]:
    """Every variant's detect function (or why it could not be built), the nodes each runs and its FLOPs."""
    layout = find_layout(network, config)
    fused_model, _ = graphopt.optimize(network, config=config)
    fp16_model, _ = graphopt.optimize(network, config=config, fp16=True)
    cropped_model, report = graphopt.optimize(network, config=dataclasses.replace(config, crop_rows=band),
                                              ground_plane=True)
    crop = next(p for p in report.passes if p.name == "crop_rows")
    if crop.status != "modified":
        raise SystemExit(f"crop_rows did not crop {config.source} to rows {band}: {crop.message}")
    variants: dict[str, Detect | str] = {
        "host": HostDetector(network, config).detect,
        "fused": FusedDetector(fused_model, config).detect,
        "fused_fp16": FusedDetector(fp16_model, config).detect,
        "cropped": FusedDetector(cropped_model, config).detect,
    }
    nodes: dict[str, Any] = {"host": count_nodes(network), "fused": count_nodes(fused_model),
                             "fused_fp16": count_nodes(fp16_model), "cropped": count_nodes(cropped_model)}
    flops = {"fused": count_flops(fused_model).total, "cropped": count_flops(cropped_model).total}
    try:
        variants["cv2_client"] = yolo_clients.Cv2Client(network, config, layout).detect
        nodes["cv2_client"] = count_nodes(network)
    except ImportError:
        variants["cv2_client"] = "not installed (pip install opencv-python-headless)"
    ortx = yolo_clients.ortx_model(network, config, layout)
    if isinstance(ortx, str):
        variants["ortx"] = ortx
    else:
        variants["ortx"] = yolo_clients.OrtxDetector(ortx, config).detect
        nodes["ortx"] = count_nodes(ortx)
    return {name: variants[name] for name in VARIANTS}, nodes, flops


def _ortx_note(network: onnx.ModelProto, config: YoloConfig, frames: list[np.ndarray], found: list[Detections],
               tolerance: float) -> str | None:
    """How onnxruntime-extensions' graph compares with the host pipeline configured as its steps can be."""
    expressible = yolo_clients.ortx_reference_config(config)
    if expressible == config:
        return None
    host = HostDetector(network, expressible)
    same = sum(matches(host.detect(f), d, tolerance)[0] for f, d in zip(frames, found, strict=True))
    return (f"its LetterBox centres the frame and its NMS works within each class (the config: pad {config.pad}, "
            f"class_agnostic {str(config.class_agnostic).lower()}); against the host pipeline so configured: "
            f"{same}/{len(frames)} frames the same")


def measure_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    entry = next(e for e in model_set.load_manifest() if e.name == name)
    network = onnx.load(str(model_set.fetch(entry)))
    config = load_config(MODELS[name])
    assert isinstance(config, YoloConfig)
    band = tuple(args.band) if args.band else BANDS[name]
    variants, nodes, flops = build_variants(network, config, band)
    calls = {v: detect for v, detect in variants.items() if not isinstance(detect, str)}
    frames = [frame for _, frame in pictures(config, "test", args.frames)]
    found = {v: [detect(frame) for frame in frames] for v, detect in calls.items()}
    rows: dict[str, dict[str, Any]] = {}
    warmup = frames[: args.warmup]
    times = time_calls_interleaved(calls, frames, warmup=warmup, settle_ms=args.settle_ms, rotate=True)
    # The cropped graph's detections: a fixed camera's scene has nothing outside the band, so both it and the
    # host pipeline run on the frames blanked there, and are compared inside the band (what the margin changes).
    blanked = [outside_band_blanked(frame, band, config.pad_value) for frame in frames]
    in_band = {v: [inside_band(calls[v](frame), band) for frame in blanked] for v in ("host", "cropped")}
    crop, shift = compare_in_band(in_band["host"], in_band["cropped"])
    shift = shift or 0.0
    crop_note = (f"inside the band, matched at IoU 0.5: {crop.matched} of the host pipeline's "
                 f"{crop.matched + crop.missing} detections ({crop.missing} lost, {crop.extra} new), boxes moved "
                 f"by at most {shift:.2f} px, scores by at most "
                 f"{crop.max_abs_score_difference or 0.0:.3g}")
    for variant in calls:
        reference, mine = (in_band["host"], in_band[variant]) if variant == "cropped" else (found["host"],
                                                                                             found[variant])
        verdicts = [matches(ref, own, args.box_tolerance) for ref, own in zip(reference, mine, strict=True)]
        finite = [d for same, d in verdicts if np.isfinite(d)]
        stats = latency_stats(times[variant], warmup=len(warmup))
        rows[variant] = {
            "nodes": nodes[variant], "median_ms": stats.median_ms, "p90_ms": stats.p90_ms,
            "vs_host": "—" if variant == "host" else judge(times["host"], times[variant]).verdict,
            "same_as_host": sum(same for same, _ in verdicts),
            # the cropped graph's boxes: moved by how much where they match at IoU 0.5 (pairing the closest box
            # of the class would pair unrelated ones where the crop loses or adds one)
            "max_box_diff_px": shift if variant == "cropped" else max(finite, default=0.0),
            "detections": sum(len(d) for d in mine),
            "differing_frames": [i for i, (same, _) in enumerate(verdicts) if not same], "times_ms": times[variant],
        }
    notes = {"cropped": crop_note}
    if "ortx" in calls:
        note = _ortx_note(network, config, frames, found["ortx"], args.box_tolerance)
        if note:
            notes["ortx"] = note
    layout = find_layout(network, config)
    return {
        "about": entry.about, "config": str(MODELS[name].relative_to(ROOT)), "domain": config.domain,
        "layout": {"family": layout.family, "classes": layout.classes, "input_hw": list(layout.input_hw),
                   "decoded": layout.decoded},
        "fired_frames": sum(len(d) > 0 for d in found["host"]),
        "band": list(band), "flops": flops,
        "variants": rows, "failed": {v: why for v, why in variants.items() if isinstance(why, str)}, "notes": notes,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "machine": machine_description(), "frames": args.frames, "warmup": args.warmup, "settle_ms": args.settle_ms,
        "box_tolerance_px": args.box_tolerance, "models": {name: measure_model(name, args) for name in args.models},
    }


def render(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}; onnxruntime CPU")
    print(f"{result['frames']} test frames per model, interleaved frame by frame after {result['warmup']} untimed; "
          f"detections against the host pipeline's: same count and classes, boxes within "
          f"{result['box_tolerance_px']} px")
    for name, model in result["models"].items():
        layout = model["layout"]
        print(f"\n{name}: {model['about']}")
        print(f"config {model['config']} ({layout['family']}, {layout['classes']} classes, input "
              f"{layout['input_hw'][1]}x{layout['input_hw'][0]}); {model['domain']} frames; the host pipeline "
              f"fires on {model['fired_frames']}/{result['frames']}")
        print(" | ".join(("variant", "nodes", "median ms", "p90 ms", "against host", "same as host", "max box Δ px",
                          "detections")))
        for variant, row in model["variants"].items():
            print(" | ".join((variant, str(row["nodes"]), f"{row['median_ms']:.2f}", f"{row['p90_ms']:.2f}",
                              row["vs_host"], f"{row['same_as_host']}/{result['frames']}",
                              f"{row['max_box_diff_px']:.2f}", str(row["detections"]))))
        for variant, row in model["variants"].items():
            if row["differing_frames"]:
                shown = ", ".join(map(str, row["differing_frames"][:12]))
                more = len(row["differing_frames"]) - 12
                print(f"{variant} differs from host on test frames {shown}{f' and {more} more' if more > 0 else ''}")
        cut = 1 - model["flops"]["cropped"] / model["flops"]["fused"]
        print(f"cropped: frame rows {model['band'][0]}-{model['band'][1]}, FLOPs per frame "
              f"{model['flops']['fused'] / 1e9:.3g} G → {model['flops']['cropped'] / 1e9:.3g} G (−{cut:.0%}); "
              "detections compared with the host pipeline's inside the band, on the frames blanked outside it")
        for variant, why in model["failed"].items():
            print(f"{variant}: {why}")
        for variant, note in model["notes"].items():
            print(f"{variant}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--settle-ms", type=float, default=30.0)
    parser.add_argument("--box-tolerance", type=float, default=0.5)
    parser.add_argument("--band", type=int, nargs=2, metavar=("TOP", "BOTTOM"),
                        help="frame rows of the cropped variant's band (default per model: BANDS)")
    parser.add_argument("--json", type=Path)
    add_results_dir_option(parser)
    args = parser.parse_args()
    if args.frames < 1 or args.warmup < 0:
        parser.error("--frames must be at least 1 and --warmup at least 0")
    result = run(args)
    finish_run(result, render, json_path=args.json, results_dir=args.results_dir, name="bench_yolo",
               title="YOLO exports per frame: host, cv2 client, fused (float32, float16, cropped), "
               "onnxruntime-extensions", about=__doc__.split("Usage::")[0])


if __name__ == "__main__":
    main()
