"""Per-frame latency and FLOPs of the naive detector deployment: the baseline of every ablation.

Runs :class:`graphopt_person.naive.NaiveDetector` on the first ``--frames``
synthetic test scenes (rendered before timing starts) and prints the
machine, the median time per frame and per stage over the frames, the
boundary traffic per frame, and the FLOPs per frame: the network's at every
pyramid scale (graphopt's FLOP counter on the model at that input size)
plus the host-side matrix products of the resizes and the grid resampling.

Usage::

    .venv/bin/python benchmarks/bench_naive.py [--frames 30] [--json build/bench_naive.json]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime

from graphopt.analysis import graph_stats
from graphopt.model_io import load_model
from graphopt.results import add_results_dir_option, finish_run
from graphopt.timing import machine_description
from graphopt_person.data import generate_scenes
from graphopt_person.naive import STAGES, NaiveDetector
from graphopt_person.spec import DetectorConfig, DetectorSpec, load_config

ABOUT = """`benchmarks/bench_naive.py`: the shipped person detector deployed the naive way (NumPy host stages
around one onnxruntime call per pyramid scale) on synthetic test frames: time per frame and per host stage
(medians over the frames), FLOPs per frame and the traffic across the runtime boundary."""
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "02_person_detector"


def host_matmul_flops(spec_frame: tuple[int, int], scaled: tuple[int, int], score_map: tuple[int, int],
                      grid: tuple[int, int]) -> dict[str, int]:
    """Multiply-adds (×2) of the host's resize and resampling matrix products for one scale."""
    height, width = spec_frame
    rows, cols = scaled
    map_rows, map_cols = score_map
    grid_rows, grid_cols = grid
    resize = 0 if scaled == spec_frame else 2 * 3 * (rows * height * width + rows * width * cols)
    resample = 2 * (grid_rows * map_rows * map_cols + grid_rows * map_cols * grid_cols)
    return {"resize": resize, "resample": resample}


def network_and_host_flops(model: onnx.ModelProto, spec: DetectorSpec) -> tuple[dict[str, int], dict[str, int]]:
    """FLOPs per frame of the network at each pyramid scale, and of the host's matrix products by kind."""
    flops_by_scale = {}
    host = {"resize": 0, "resample": 0}
    for scale in spec.scales:
        height, width = spec.scaled_frame_shape(scale)
        stats = graph_stats(model, {"image": (1, 3, height, width)})
        flops_by_scale[str(scale)] = stats.flops.total
        extra = host_matmul_flops(
            (spec.frame_height, spec.frame_width), (height, width), spec.score_map_shape(scale), spec.grid_shape[1:]
        )
        for key, value in extra.items():
            host[key] += value
    return flops_by_scale, host


def time_frames(detector: NaiveDetector, scenes: list[Any], warmup: int) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds per frame and per stage of each scene after the first ``warmup`` (run untimed)."""
    for scene in scenes[:warmup]:
        detector.detect(scene.image)
    totals: list[float] = []
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for scene in scenes[warmup:]:
        start = time.perf_counter()
        _, times = detector.detect_timed(scene.image)
        totals.append(time.perf_counter() - start)
        for stage in STAGES:
            stages[stage].append(times[stage])
    return totals, stages


def run(args: argparse.Namespace, config: DetectorConfig) -> dict[str, Any]:
    spec = config.detector
    model = load_model(args.model)
    detector = NaiveDetector(model, spec)
    scenes = list(generate_scenes(config, "test", args.frames + args.warmup))
    flops_by_scale, host = network_and_host_flops(model, spec)
    totals, stages = time_frames(detector, scenes, args.warmup)
    traffic = detector.last_traffic
    return {
        "machine": machine_description(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "model": str(args.model),
        "frames": len(totals),
        "warmup": args.warmup,
        "frame": f"{spec.frame_width}x{spec.frame_height}",
        "median_frame_ms": 1000 * float(np.median(totals)),
        "p10_frame_ms": 1000 * float(np.percentile(totals, 10)),
        "p90_frame_ms": 1000 * float(np.percentile(totals, 90)),
        "median_stage_ms": {stage: 1000 * float(np.median(values)) for stage, values in stages.items()},
        "network_flops_per_frame": sum(flops_by_scale.values()),
        "network_flops_by_scale": flops_by_scale,
        "host_matmul_flops_per_frame": host,
        "boundary_per_frame": {"inference_calls": traffic.calls, "bytes_in": traffic.bytes_in,
                               "bytes_out": traffic.bytes_out},
    }


def render(result: dict[str, Any], spec: DetectorSpec, warmup: int) -> None:
    host, traffic = result["host_matmul_flops_per_frame"], result["boundary_per_frame"]
    print(f"machine: {result['machine']}")
    print(f"python {result['python']}, onnxruntime {result['onnxruntime']}, numpy {result['numpy']}")
    print(f"naive detector, {result['frames']} frames of {spec.frame_width}x{spec.frame_height} "
          f"(after {warmup} warm-up frames):")
    print(f"  per frame: median {result['median_frame_ms']:.1f} ms "
          f"(p10 {result['p10_frame_ms']:.1f}, p90 {result['p90_frame_ms']:.1f})")
    for stage, ms in result["median_stage_ms"].items():
        print(f"    {stage:<11}{ms:8.1f} ms")
    print(f"  FLOPs per frame: network {result['network_flops_per_frame'] / 1e9:.2f} G "
          f"({', '.join(f'scale {s}: {f / 1e9:.2f} G' for s, f in result['network_flops_by_scale'].items())}); "
          f"host matrix products {sum(host.values()) / 1e9:.2f} G (resize {host['resize'] / 1e9:.2f} G, "
          f"resample {host['resample'] / 1e9:.3f} G)")
    print(f"  boundary per frame: {traffic['inference_calls']} inference calls, {traffic['bytes_in'] / 1e6:.2f} MB in, "
          f"{traffic['bytes_out'] / 1e6:.3f} MB out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=EXAMPLE / "model.onnx")
    parser.add_argument("--config", type=Path, default=EXAMPLE / "detector.toml")
    parser.add_argument("--frames", type=int, default=30, help="timed frames (at least 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    parser.add_argument("--json", type=Path, help="also write the results here")
    add_results_dir_option(parser)
    args = parser.parse_args()
    if args.frames < 20:
        parser.error("--frames must be at least 20 (the median is over frames)")
    config = load_config(args.config)
    result = run(args, config)
    finish_run(result, lambda r: render(r, config.detector, args.warmup), json_path=args.json,
               results_dir=args.results_dir, name="bench_naive", title="The naive detector deployment", about=ABOUT)


if __name__ == "__main__":
    main()
