"""Per-frame latency of four deployments of the detector on the same frames, and graphopt's distance to the FLOP floor.

All four variants run the same network on the first ``--frames`` synthetic
test scenes (rendered before timing starts), interleaved frame by frame in a
rotating order, so that drift of the machine (turbo, other load) hits every
variant alike. Each timed call comes after a pause (``--settle-ms``): after
a call, onnxruntime's intra-op workers and OpenBLAS's workers (NumPy's matrix
products in the host stages) busy-wait for a while, about 0.1 s for OpenBLAS,
and on a few cores they would slow down whichever variant runs next. The
variants:

``naive``
    :class:`~graphopt_person.naive.NaiveDetector` on the exported model:
    NumPy pre-processing, resizes, resampling and NMS on the host around one
    onnxruntime call per pyramid scale (3 per frame). The session is
    onnxruntime's default, so its online ``ORT_ENABLE_ALL`` graph
    optimizations apply.
``ort_offline``
    The same host code on the exported model optimized *offline* by
    onnxruntime (``ORT_ENABLE_ALL`` written to a file once, then that file
    loaded with ``ORT_DISABLE_ALL``): what onnxruntime alone does to the
    graph, without re-optimizing at load.
``onnxsim``
    The same host code on ``onnxsim.simplify(model)`` (default optimizations,
    dynamic height and width kept, since the pyramid feeds three sizes).
``graphopt``
    ``graphopt.optimize(model, detector=config)`` with the default passes:
    the whole detector as one static graph, run by
    :class:`~graphopt_person.fused.FusedDetector`, one call per frame.

Every session uses onnxruntime's default intra-op threads on the CPU. On
every timed frame the graphopt (and the other) detections are compared with
the naive ones: same cells, same boxes, scores within 1e-4.

The FLOP floor is what the fused graph would cost if every one of its FLOPs
ran at the speed onnxruntime reaches on this workload's convolutions:
every Conv layer of the network at every pyramid scale (shapes from ONNX
shape inference) is timed alone as a one-Conv model with random weights and
bias, right after the frames (a pause, warm-up runs, then the median of
``--conv-repeats`` runs, layer by layer), and the workload's Conv rate is
their total FLOPs over their total median time. Then
``floor = fused FLOPs per frame / workload Conv rate``. graphopt is then
timed again the way the convs were (a pause, warm-up runs, then the frames
back to back), and that median over the floor says how much time goes to
anything but arithmetic at that rate (the target is ≤ 1.3); the interleaved
median over the floor is printed too (it adds the cost of coming back to a
cold cache and sleeping threads after another deployment ran). A large
reference conv (64→64, 3×3, "same" padding, on 1×64×120×160) gives the
"peak Conv rate" of the machine, and the floor at that rate, for context.

Usage::

    .venv/bin/python benchmarks/bench_overhead.py [--frames 30] [--json build/bench_overhead.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import onnxsim
from onnx import TensorProto, helper, numpy_helper

import graphopt
from graphopt.analysis import FlopCount, graph_stats
from graphopt.backends.onnxruntime import create_session
from graphopt.detections import Detections
from graphopt.errors import GraphoptError, RuntimeRunError, first_line
from graphopt.graph import attribute, infer_tensor_info, set_dims
from graphopt.model_io import load_model
from graphopt.results import add_results_dir_option, finish_run
from graphopt.timing import machine_description
from graphopt_person.data import generate_scenes
from graphopt_person.fused import FusedDetector, naive_host_stages
from graphopt_person.naive import NaiveDetector
from graphopt_person.spec import DetectorSpec, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "02_person_detector"
VARIANTS = ("naive", "ort_offline", "onnxsim", "graphopt")
PROVIDERS = ["CPUExecutionProvider"]
SCORE_TOLERANCE = 1e-4
FLOOR_TARGET = 1.3
CONV_WARMUP = 3
# The reference conv for the "peak" rate: large enough that onnxruntime's conv kernel dominates.
PEAK_INPUT = (1, 64, 120, 160)
PEAK_WEIGHT = (64, 64, 3, 3)


def session_options(level: onnxruntime.GraphOptimizationLevel | None = None) -> onnxruntime.SessionOptions:
    """onnxruntime's defaults (intra-op threads included), quiet, at ``level`` if given."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if level is not None:
        options.graph_optimization_level = level
    return options


def ort_offline_session(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    """A session on ``model`` optimized offline by onnxruntime (ENABLE_ALL to a file), loaded with DISABLE_ALL."""
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        path = Path(tmp) / "x.onnx"
        writer = session_options(onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL)
        writer.optimized_model_filepath = str(path)
        try:
            onnxruntime.InferenceSession(model.SerializeToString(), writer, providers=PROVIDERS)
            return onnxruntime.InferenceSession(
                str(path), session_options(onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL), providers=PROVIDERS
            )
        except Exception as error:  # onnxruntime raises its own pybind exception types
            raise RuntimeRunError(f"onnxruntime cannot optimize the model offline: {first_line(error)}") from error


def simplified(model: onnx.ModelProto) -> onnx.ModelProto:
    """``onnxsim.simplify`` with its default optimizations, dynamic shapes kept, quietly."""
    kwargs: dict[str, Any] = {"check_n": 0}
    if "certify" in inspect.signature(onnxsim.simplify).parameters:
        kwargs["certify"] = False
    with contextlib.redirect_stdout(io.StringIO()):
        result, ok = onnxsim.simplify(model, **kwargs)
    if not ok:
        raise RuntimeRunError("onnxsim could not simplify the model")
    return result


def layer_name(node: onnx.NodeProto) -> str:
    """``conv1`` for an exporter's ``/conv1/Conv``; the node's name or output otherwise."""
    return node.name.strip("/").split("/")[0] or node.output[0]


def conv_model(input_shape: tuple[int, ...], weight_shape: tuple[int, ...], attributes: dict[str, Any],
               opset: int, rng: np.random.Generator) -> onnx.ModelProto:
    """One Conv with random weights and bias of the given shapes."""
    weight = numpy_helper.from_array((0.1 * rng.standard_normal(weight_shape)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(weight_shape[0]).astype(np.float32), "B")
    node = helper.make_node("Conv", ["X", "W", "B"], ["Y"], **attributes)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [weight, bias],
    )
    # The IR version of the opset, not the newest the installed onnx writes: onnxruntime 1.23 (the last for
    # Python 3.10) reads IR 11 at most.
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))


def workload_convs(model: onnx.ModelProto, spec: DetectorSpec, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Every Conv of the network at every pyramid scale, as a one-Conv model (shapes from shape inference)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    convs = []
    for scale in spec.scales:
        height, width = spec.scaled_frame_shape(scale)
        shaped = onnx.ModelProto()
        shaped.CopyFrom(model)
        set_dims(shaped.graph.input[0], (1, 3, height, width))
        shapes = {name: info.static_shape for name, info in infer_tensor_info(shaped).items()}
        for node in shaped.graph.node:
            if node.op_type != "Conv":
                continue
            input_shape, weight_shape = shapes.get(node.input[0]), shapes.get(node.input[1])
            if input_shape is None or weight_shape is None:
                raise RuntimeRunError(f"shape inference cannot tell the shapes of Conv '{node.name}' at scale {scale}")
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            one = conv_model(input_shape, weight_shape, attributes, opset, rng)
            convs.append({
                "layer": layer_name(node), "scale": scale, "input_shape": list(input_shape),
                "weight_shape": list(weight_shape), "group": attribute(node, "group", 1),
                "flops": graph_stats(one).flops.total, "model": one,
            })
    return convs


def time_convs(models: list[onnx.ModelProto], repeats: int, settle_s: float) -> list[float]:
    """Median ms of one run of each model, timed model by model: a pause, warm-up runs, then ``repeats`` runs.

    Each model is timed in a block of its own: cycling through the models
    instead would time every Conv while the previous session's intra-op
    workers still spin, which on a few cores makes it up to several times slower.
    """
    rng = np.random.default_rng(1)
    medians = []
    for model in models:
        session = create_session(model, providers=PROVIDERS, what="a one-Conv model")
        value = session.get_inputs()[0]
        run = functools.partial(session.run, None, {value.name: rng.random(value.shape, dtype=np.float32)})
        time.sleep(settle_s)
        for _ in range(CONV_WARMUP):
            run()
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            samples.append(1000 * (time.perf_counter() - start))
        medians.append(float(np.median(samples)))
    return medians


def difference(expected: Detections, found: Detections) -> str | None:
    """``None`` when the detections agree (same cells and boxes, scores within tolerance), else what differs."""
    if len(expected.scores) != len(found.scores):
        return f"{len(expected.scores)} detections vs {len(found.scores)}"
    if not np.array_equal(expected.cells, found.cells):
        return "different cells"
    if not np.array_equal(expected.boxes, found.boxes):
        return f"different boxes (max |Δ| {float(np.abs(expected.boxes - found.boxes).max()):.3g})"
    if len(expected.scores) and float(np.abs(expected.scores - found.scores).max()) > SCORE_TOLERANCE:
        return f"scores differ by up to {float(np.abs(expected.scores - found.scores).max()):.3g}"
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config)
    spec = config.detector
    model = load_model(args.model)
    scenes = list(generate_scenes(config, "test", args.warmup + args.frames))
    frames = [scene.image for scene in scenes]

    fused, report = graphopt.optimize(model, detector=config)
    detectors: dict[str, NaiveDetector | FusedDetector] = {
        "naive": NaiveDetector(model, spec),
        "ort_offline": NaiveDetector(model, spec, session=ort_offline_session(model)),
        "onnxsim": NaiveDetector(simplified(model), spec),
        "graphopt": FusedDetector(fused, spec),
    }
    for frame in frames[: args.warmup]:
        for detector in detectors.values():
            detector.detect(frame)
    settle_s = args.settle_ms / 1000
    load_before = os.getloadavg()[0]
    times, matches, mismatches = time_interleaved(detectors, frames[args.warmup :], settle_s)
    load_after_frames = os.getloadavg()[0]
    calls = {name: detector.last_traffic.calls for name, detector in detectors.items()}

    # The Conv layers of the workload alone, then the reference conv, right after the frames.
    convs = workload_convs(model, spec, np.random.default_rng(0))
    peak = conv_model(PEAK_INPUT, PEAK_WEIGHT, {"pads": [1, 1, 1, 1]}, 13, np.random.default_rng(0))
    conv_ms = time_convs([c["model"] for c in convs] + [peak], args.conv_repeats, settle_s)
    back_to_back = time_back_to_back(detectors["graphopt"], frames, args.warmup, settle_s)
    load_after_convs = os.getloadavg()[0]

    stats = variant_stats(times, calls)
    graphopt_ms, naive_ms = stats["graphopt"]["median_ms"], stats["naive"]["median_ms"]
    fused_flops = graph_stats(fused).flops
    conv = conv_summary(convs, conv_ms, peak, args.conv_repeats)
    return {
        **environment(),
        "settle_ms": args.settle_ms,
        "load_average_1min": {"before_frames": load_before, "after_frames": load_after_frames,
                              "after_convs": load_after_convs},
        "model": str(args.model),
        "config": str(args.config),
        "frame_size": [spec.frame_width, spec.frame_height],
        "frames": args.frames,
        "warmup": args.warmup,
        "graphopt_passes": [{"name": r.name, "status": r.status, "modified": r.modified} for r in report.passes],
        "variants": stats,
        "ratios": {
            "over_graphopt": {name: s["median_ms"] / graphopt_ms for name, s in stats.items()},
            "naive_over": {name: naive_ms / s["median_ms"] for name, s in stats.items()},
        },
        "matches": matches,
        "mismatches": mismatches,
        "flops_per_frame": flops_per_frame(model, fused_flops, spec),
        "conv": conv,
        "floor": floor_summary(fused_flops.total, conv, graphopt_ms, back_to_back),
    }


def time_interleaved(
    detectors: dict[str, NaiveDetector | FusedDetector], frames: list[np.ndarray], settle_s: float
) -> tuple[dict[str, list[float]], dict[str, int], list[dict[str, Any]]]:
    """Ms of every variant on every frame, interleaved in a rotating order, and their agreement with naive's.

    Returns the times by variant, how many frames each variant's detections
    equal naive's, and every frame where they do not.
    """
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    matches = dict.fromkeys(VARIANTS[1:], 0)
    mismatches = []
    for index, frame in enumerate(frames):
        shift = index % len(VARIANTS)  # rotate who goes first, so that no variant always follows the same one
        found = {}
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            time.sleep(settle_s)
            start = time.perf_counter()
            found[name] = detectors[name].detect(frame)
            times[name].append(1000 * (time.perf_counter() - start))
        for name in matches:
            reason = difference(found["naive"], found[name])
            if reason is None:
                matches[name] += 1
            else:
                mismatches.append({"variant": name, "frame": index, "reason": reason})
    return times, matches, mismatches


def time_back_to_back(detector: NaiveDetector | FusedDetector, frames: list[np.ndarray], warmup: int,
                      settle_s: float) -> list[float]:
    """Ms of ``detector`` on each timed frame, timed the way the convs were: a pause, warm-up runs, back to back."""
    time.sleep(settle_s)
    for _ in range(CONV_WARMUP):
        detector.detect(frames[-1])
    back_to_back = []
    for frame in frames[warmup:]:
        start = time.perf_counter()
        detector.detect(frame)
        back_to_back.append(1000 * (time.perf_counter() - start))
    return back_to_back


def variant_stats(times: dict[str, list[float]], calls: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Calls per frame, median, p10, p90 and every time of each variant."""
    return {
        name: {
            "calls_per_frame": calls[name],
            "median_ms": float(np.median(values)),
            "p10_ms": float(np.percentile(values, 10)),
            "p90_ms": float(np.percentile(values, 90)),
            "times_ms": values,
        }
        for name, values in times.items()
    }


def environment() -> dict[str, Any]:
    """What the benchmark ran on: machine, platform, library versions, threads."""
    return {
        "machine": machine_description(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "providers": {"available": onnxruntime.get_available_providers(), "used": PROVIDERS},
        "numpy": np.__version__,
        "onnxsim": getattr(onnxsim, "__version__", "?"),
        "cpu_count": os.cpu_count(),
        "intra_op_threads": "onnxruntime default",
    }


def flops_per_frame(model: onnx.ModelProto, fused_flops: FlopCount, spec: DetectorSpec) -> dict[str, Any]:
    """FLOPs per frame of the fused graph, and of the naive pipeline by network scale and host stage."""
    network_by_scale = {}
    image = model.graph.input[0].name
    for scale in spec.scales:
        height, width = spec.scaled_frame_shape(scale)
        network_by_scale[str(scale)] = graph_stats(model, {image: (1, 3, height, width)}).flops.total
    host = {stage.name: stage.ops for stage in naive_host_stages(spec)}
    return {
        "graphopt": fused_flops.total,
        "graphopt_uncounted_ops": fused_flops.uncounted,
        "naive": sum(network_by_scale.values()) + sum(host.values()),
        "naive_network_by_scale": network_by_scale,
        "naive_host_by_stage": host,
    }


def conv_summary(convs: list[dict[str, Any]], conv_ms: list[float], peak: onnx.ModelProto,
                 repeats: int) -> dict[str, Any]:
    """Each workload Conv's time and rate, the workload Conv rate, and the reference conv's ("peak") rate.

    ``conv_ms`` holds the workload convs' medians, then the reference conv's.
    """
    conv_rows = [
        {**{k: v for k, v in conv.items() if k != "model"}, "median_ms": ms, "gflops_per_s": conv["flops"] / ms / 1e6}
        for conv, ms in zip(convs, conv_ms[:-1], strict=True)
    ]
    conv_flops, conv_total_ms = sum(r["flops"] for r in conv_rows), sum(r["median_ms"] for r in conv_rows)
    peak_flops = graph_stats(peak).flops.total
    return {
        "warmup": CONV_WARMUP,
        "repeats": repeats,
        "layers": conv_rows,
        "total_flops": conv_flops,
        "total_ms": conv_total_ms,
        "workload_gflops_per_s": conv_flops / conv_total_ms / 1e6,  # GFLOP/s
        "peak": {"input_shape": list(PEAK_INPUT), "weight_shape": list(PEAK_WEIGHT), "pads": [1, 1, 1, 1],
                 "flops": peak_flops, "median_ms": conv_ms[-1], "gflops_per_s": peak_flops / conv_ms[-1] / 1e6},
    }


def floor_summary(fused_flops: int, conv: dict[str, Any], graphopt_ms: float,
                  back_to_back: list[float]) -> dict[str, Any]:
    """The FLOP floor at the workload and peak Conv rates, and graphopt's times over it."""
    floor_ms = fused_flops / conv["workload_gflops_per_s"] / 1e6
    peak_floor_ms = fused_flops / conv["peak"]["gflops_per_s"] / 1e6
    graphopt_b2b_ms = float(np.median(back_to_back))
    return {
        "ms": floor_ms,
        "graphopt_back_to_back_ms": graphopt_b2b_ms,
        "graphopt_back_to_back_times_ms": back_to_back,
        "graphopt_over_floor": graphopt_b2b_ms / floor_ms,
        "graphopt_interleaved_over_floor": graphopt_ms / floor_ms,
        "target": FLOOR_TARGET,
        "peak_ms": peak_floor_ms,
        "graphopt_over_peak_floor": graphopt_ms / peak_floor_ms,
    }


def render(result: dict[str, Any]) -> None:
    width, height = result["frame_size"]
    print(f"machine: {result['machine']}")
    print(f"platform: {result['platform']}; python {result['python']}, onnxruntime {result['onnxruntime']} "
          f"(available providers: {', '.join(result['providers']['available'])}; used: CPU), "
          f"numpy {result['numpy']}, onnxsim {result['onnxsim']}")
    load = result["load_average_1min"]
    print(f"threads: onnxruntime default intra-op threads in every session; os.cpu_count() = {result['cpu_count']}; "
          f"1-min load average {load['before_frames']:.2f} before the frames, {load['after_frames']:.2f} after, "
          f"{load['after_convs']:.2f} after the convs")
    passes = ", ".join(p["name"] for p in result["graphopt_passes"] if p["modified"])
    print(f"graphopt passes that changed the graph: {passes or 'none'}")
    print()
    print(f"per frame, {result['frames']} frames of {width}x{height} (after {result['warmup']} warm-up frames), "
          f"variants interleaved frame by frame, {result['settle_ms']:g} ms pause before each call:")
    print(f"  {'variant':<12}{'calls':>6}{'median ms':>11}{'p10 ms':>9}{'p90 ms':>9}{'/graphopt':>11}{'naive/':>8}")
    for name, s in result["variants"].items():
        print(f"  {name:<12}{s['calls_per_frame']:>6}{s['median_ms']:>11.1f}{s['p10_ms']:>9.1f}{s['p90_ms']:>9.1f}"
              f"{result['ratios']['over_graphopt'][name]:>10.2f}x{result['ratios']['naive_over'][name]:>7.2f}x")
    print(f"detections equal to naive's (cells, boxes, scores within {SCORE_TOLERANCE:g}): "
          + ", ".join(f"{name} {n}/{result['frames']}" for name, n in result["matches"].items()))
    for miss in result["mismatches"]:
        print(f"  MISMATCH {miss['variant']} on frame {miss['frame']}: {miss['reason']}")
    print()
    conv = result["conv"]
    print(f"Conv layers alone, one after the other: median of {conv['repeats']} timed run(s) after "
          f"{conv['warmup']} untimed:")
    print(f"  {'layer':<7}{'scale':>6}{'input':>17}{'MFLOP':>9}{'ms':>9}{'GFLOP/s':>9}")
    for row in conv["layers"]:
        shape = "x".join(map(str, row["input_shape"]))
        print(f"  {row['layer']:<7}{row['scale']:>6}{shape:>17}{row['flops'] / 1e6:>9.1f}{row['median_ms']:>9.2f}"
              f"{row['gflops_per_s']:>9.1f}")
    print(f"  workload Conv rate: {conv['workload_gflops_per_s']:.1f} GFLOP/s "
          f"({conv['total_flops'] / 1e9:.2f} GFLOP in {conv['total_ms']:.1f} ms)")
    peak = conv["peak"]
    print(f"  peak Conv rate: {peak['gflops_per_s']:.1f} GFLOP/s (64→64 3×3 on 1×64×120×160, "
          f"{peak['flops'] / 1e9:.2f} GFLOP in {peak['median_ms']:.1f} ms)")
    print()
    flops, floor = result["flops_per_frame"], result["floor"]
    uncounted = flops["graphopt_uncounted_ops"]
    print(f"FLOPs per frame: graphopt fused graph {flops['graphopt'] / 1e9:.2f} G"
          + (f" (uncounted ops: {uncounted})" if uncounted else "")
          + f"; naive pipeline {flops['naive'] / 1e9:.2f} G (network "
          + ", ".join(f"scale {s}: {f / 1e9:.2f} G" for s, f in flops["naive_network_by_scale"].items())
          + f"; host {sum(flops['naive_host_by_stage'].values()) / 1e9:.2f} G)")
    verdict = "meets" if floor["graphopt_over_floor"] <= floor["target"] else "misses"
    print(f"FLOP floor (fused FLOPs at the workload Conv rate): {floor['ms']:.1f} ms")
    print("graphopt timed like the convs (pause, warm-up, back to back): "
          f"median {floor['graphopt_back_to_back_ms']:.1f} ms; "
          f"/ floor = {floor['graphopt_over_floor']:.2f} ({verdict} the target ≤ {floor['target']})")
    print(f"graphopt interleaved median / floor = {floor['graphopt_interleaved_over_floor']:.2f}")
    print(f"floor at the peak Conv rate: {floor['peak_ms']:.1f} ms; "
          f"graphopt interleaved median / peak floor = {floor['graphopt_over_peak_floor']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=EXAMPLE / "model.onnx")
    parser.add_argument("--config", type=Path, default=EXAMPLE / "detector.toml")
    parser.add_argument("--frames", type=int, default=30, help="timed frames (at least 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    parser.add_argument("--conv-repeats", type=int, default=15, help="timed runs of each Conv layer alone")
    parser.add_argument("--settle-ms", type=float, default=150.0,
                        help="pause before each timed frame and Conv block, so that the threads the previous "
                        "one left spinning (onnxruntime's, OpenBLAS's) are asleep; default 150")
    parser.add_argument("--json", type=Path, help="also write the results here")
    add_results_dir_option(parser)
    args = parser.parse_args()
    if args.frames < 20:
        parser.error("--frames must be at least 20 (the medians and percentiles are over frames)")
    if args.warmup < 0 or args.conv_repeats < 1 or args.settle_ms < 0:
        parser.error("--warmup and --settle-ms must be at least 0, --conv-repeats at least 1")
    try:
        result = run(args)
    except GraphoptError as error:
        sys.exit(f"bench_overhead: {error}")
    finish_run(result, render, json_path=args.json, results_dir=args.results_dir, name="bench_overhead",
               title="Overhead removal: every deployment side by side", about=__doc__.split("Usage::")[0])


if __name__ == "__main__":
    main()
