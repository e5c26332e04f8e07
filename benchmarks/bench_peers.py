"""graphopt against the tools users would pick instead, on the same inputs in one run.

The peers take the exported network and return an optimized network:

``ort_offline``
    onnxruntime's full offline optimization (``ORT_ENABLE_ALL`` written to a
    file once, loaded back with ``ORT_DISABLE_ALL``).
``onnxsim``
    ``onnxsim.simplify`` with its default optimizations (dynamic shapes kept).
``onnxslim``
    ``onnxslim.slim`` with its defaults.
``polygraphy``
    ``polygraphy surgeon sanitize --fold-constants`` (only where Polygraphy
    is installed; the row says so otherwise).

**The shipped detector** (unless ``--no-detector``): every peer's network
runs in the same naive host pipeline as the export (``naive``, the
baseline): NumPy pre- and post-processing around one onnxruntime call per
pyramid scale, since no peer fuses the host stages. graphopt's rows are its
fused graphs, one call per frame: ``graphopt`` (default pipeline, float32),
``graphopt_ground`` (with ``--ground-plane``) and ``graphopt_full`` (the
whole pipeline: ``--ground-plane --fp16``). All variants run the same test
frames, interleaved frame by frame with a pause before each call
(``--settle-ms``), after ``--warmup`` untimed frames. Checked like
graphopt's own rewrites: each peer's network against the export on random
non-zero inputs at every pyramid scale's shape (max absolute error over the
outputs), and every variant's detections against the baseline's on every
timed frame (same cells and boxes, scores within 1e-4).

**Any other model** given on the command line (with ``--input-shape`` for
its dynamic inputs): the export in an onnxruntime session (``original``),
each peer's output and graphopt's default pipeline (shapes pinned), timed
per call on the same random non-zero inputs, interleaved; max absolute
output error against the original.

Per variant: median and p90 latency, the ratio to graphopt's (the fastest
graphopt row for the detector), node count, and the numeric check.

Usage::

    .venv/bin/python benchmarks/bench_peers.py [MODEL ...] [--input-shape NAME:DxD...] [--frames 20]
        [--no-detector] [--json build/bench_peers.json]
    .venv/bin/python benchmarks/bench_peers.py --set [--only yolov8n] [--frames 20]
        # the model set of benchmarks/models.toml: docs/results/<machine>/peers.json and peers.md
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
from bench_overhead import difference, session_options, simplified

import graphopt
from graphopt.backends.onnxruntime import create_session, run_session
from graphopt.errors import GraphoptError, first_line
from graphopt.graph import concrete_input_shapes
from graphopt.model_io import load_model
from graphopt.passes.static_shapes import parse_input_shape
from graphopt.results import add_results_dir_option, printed, publish, publish_printed, write_json_atomically
from graphopt.timing import machine_description, time_calls_interleaved
from graphopt.verify import compare_outputs, random_inputs
from graphopt_person.data import generate_scenes
from graphopt_person.fused import FusedDetector
from graphopt_person.naive import NaiveDetector
from graphopt_person.spec import load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "02_person_detector"
PEERS = ("ort_offline", "onnxsim", "onnxslim", "polygraphy")
PROVIDERS = ["CPUExecutionProvider"]


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def ort_offline(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model as onnxruntime's full offline optimization writes it."""
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        path = Path(tmp) / "ort.onnx"
        options = session_options(onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL)
        options.optimized_model_filepath = str(path)
        onnxruntime.InferenceSession(model.SerializeToString(), options, providers=PROVIDERS)
        return onnx.load(str(path))


def slimmed(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    with contextlib.redirect_stdout(io.StringIO()):
        return onnxslim.slim(model)


def sanitized(model: onnx.ModelProto) -> onnx.ModelProto:
    """``polygraphy surgeon sanitize --fold-constants``, by its command line (its supported interface)."""
    command = shutil.which("polygraphy", path=str(Path(sys.executable).parent)) or shutil.which("polygraphy")
    if command is None:
        raise FileNotFoundError("Polygraphy is not installed (pip install polygraphy)")
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        source, target = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(model, str(source))
        proc = subprocess.run([command, "surgeon", "sanitize", str(source), "--fold-constants", "-o", str(target)],
                              capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(first_line(RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "?")))
        return onnx.load(str(target))


PEER_TOOLS: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {
    "ort_offline": ort_offline, "onnxsim": simplified, "onnxslim": slimmed, "polygraphy": sanitized,
}


def peer_session(name: str, model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    """onnxruntime on a peer's output; onnxruntime's own output is loaded without re-optimizing it."""
    level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL if name == "ort_offline" else None
    return onnxruntime.InferenceSession(model.SerializeToString(), session_options(level), providers=PROVIDERS)


def max_error(expected: dict[str, np.ndarray], found: dict[str, np.ndarray]) -> float:
    """The largest absolute difference over every output (infinite for a missing or reshaped one)."""
    return max(e.max_abs for e in compare_outputs(expected, found, rtol=0.0, atol=0.0).values())


def build_peers(model: onnx.ModelProto) -> tuple[dict[str, onnx.ModelProto], dict[str, str]]:
    built, failed = {}, {}
    for name, tool in PEER_TOOLS.items():
        try:
            built[name] = tool(model)
        except Exception as error:  # each tool raises its own types; the row says why
            failed[name] = first_line(error)
    return built, failed


def stats(samples: list[float]) -> dict[str, float]:
    return {"median_ms": float(np.median(samples)), "p90_ms": float(np.percentile(samples, 90))}


def bench_detector(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config)
    spec = config.detector
    network = load_model(args.model)
    peers, failed = build_peers(network)
    fused = {
        "graphopt": graphopt.optimize(network, detector=config)[0],
        "graphopt_ground": graphopt.optimize(network, detector=config, ground_plane=True)[0],
        "graphopt_full": graphopt.optimize(network, detector=config, ground_plane=True, fp16=True)[0],
    }
    detectors: dict[str, NaiveDetector | FusedDetector] = {"naive": NaiveDetector(network, spec)}
    for name, model in peers.items():
        detectors[name] = NaiveDetector(model, spec, session=peer_session(name, model))
    for name, model in fused.items():
        detectors[name] = FusedDetector(model, spec)

    # The peers' networks against the export, on random non-zero inputs at every pyramid scale.
    image = network.graph.input[0].name
    reference = create_session(network)
    errors: dict[str, float] = {}
    for name, model in peers.items():
        session = peer_session(name, model)
        worst = 0.0
        for scale in spec.scales:
            feeds = random_inputs(network, {image: (1, 3, *spec.scaled_frame_shape(scale))}, seed=1)
            worst = max(worst, max_error(run_session(reference, feeds), run_session(session, feeds)))
        errors[name] = worst

    frames = [scene.image for scene in generate_scenes(config, "test", args.warmup + args.frames)]
    found: dict[str, list[Any]] = {name: [] for name in detectors}

    def detect(name: str) -> Callable[[np.ndarray], object]:
        return lambda frame: found[name].append(detectors[name].detect(frame))

    times = time_calls_interleaved({name: detect(name) for name in detectors}, frames[args.warmup:],
                                   warmup=frames[:args.warmup], settle_ms=args.settle_ms, rotate=True)
    agreement = {}
    for name in detectors:
        ours = found[name][-args.frames:]
        naive = found["naive"][-args.frames:]
        reasons = [difference(a, b) for a, b in zip(naive, ours, strict=True)]
        agreement[name] = {"identical_frames": sum(r is None for r in reasons),
                           "first_difference": next((r for r in reasons if r is not None), None)}
    models = {"naive": network, **peers, **fused}
    return {
        "model": str(args.model), "config": str(args.config), "frames": args.frames,
        "variants": {
            name: {**stats(times[name]), "nodes": len(models[name].graph.node),
                   "runs_as": "fused graph" if name in fused else "host pipeline",
                   "max_network_error": errors.get(name), **agreement[name]}
            for name in detectors
        },
        "failed": failed,
    }


def bench_model(path: Path, shapes: dict[str, tuple[int, ...]], args: argparse.Namespace) -> dict[str, Any]:
    model = load_model(path)
    concrete = concrete_input_shapes(model, shapes)
    peers, failed = build_peers(model)
    ours, _ = graphopt.optimize(model, input_shapes=shapes)
    sessions = {"original": create_session(model), **{n: peer_session(n, m) for n, m in peers.items()},
                "graphopt": create_session(ours)}
    models = {"original": model, **peers, "graphopt": ours}
    inputs = [random_inputs(model, concrete, seed=seed) for seed in range(args.warmup + args.frames)]
    expected = run_session(sessions["original"], inputs[0])
    errors = {}
    for name, session in sessions.items():
        feeds = {i.name: inputs[0][i.name] for i in session.get_inputs()}
        errors[name] = max_error(expected, run_session(session, feeds))

    def call(session: onnxruntime.InferenceSession) -> Callable[[dict[str, np.ndarray]], object]:
        names = [i.name for i in session.get_inputs()]
        return lambda feeds: session.run(None, {n: feeds[n] for n in names})

    times = time_calls_interleaved({name: call(s) for name, s in sessions.items()}, inputs[args.warmup:],
                                   warmup=inputs[:args.warmup], settle_ms=args.settle_ms, rotate=True)
    return {
        "model": str(path), "input_shapes": {k: list(v) for k, v in concrete.items()}, "calls": args.frames,
        "variants": {name: {**stats(times[name]), "nodes": len(models[name].graph.node),
                            "max_output_error": errors[name]} for name in sessions},
        "failed": failed,
    }


def with_ratios(result: dict[str, Any], reference: str) -> dict[str, Any]:
    """Each variant's median over ``reference``'s (graphopt's whole pipeline) and over graphopt's fastest row."""
    variants = result["variants"]
    best = min(v["median_ms"] for name, v in variants.items() if name.startswith("graphopt"))
    for variant in variants.values():
        variant["over_graphopt"] = variant["median_ms"] / variants[reference]["median_ms"]
        variant["over_best_graphopt"] = variant["median_ms"] / best
    result["graphopt_reference"] = reference
    return result


def render(result: dict[str, Any]) -> None:
    print(f"machine: {result['machine']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()))
    sections = ([("detector", result["detector"])] if result.get("detector") else []) + [
        (Path(m["model"]).name, m) for m in result["models"]]
    for title, section in sections:
        unit = "frame" if title == "detector" else "call"
        count = section.get("frames", section.get("calls"))
        print(f"\n{title}: {section['model']}, ms per {unit}, median (p90) over {count} {unit}s, interleaved; "
              f"ratios = variant / {section['graphopt_reference']}, variant / fastest graphopt row")
        print(f"  {'variant':<16}{'runs as':>15}{'median':>9}{'p90':>8}{'/whole':>8}{'/best':>8}{'nodes':>7}  check")
        for name, v in section["variants"].items():
            if "identical_frames" in v:
                check = f"detections = naive on {v['identical_frames']}/{count} frames"
                if v["max_network_error"] is not None:
                    check += f"; network max |err| {v['max_network_error']:.2g}"
            else:
                check = f"max |err| {v['max_output_error']:.2g}"
            print(f"  {name:<16}{v.get('runs_as', 'one call'):>15}{v['median_ms']:>9.1f}{v['p90_ms']:>8.1f}"
                  f"{v['over_graphopt']:>7.2f}x{v['over_best_graphopt']:>7.2f}x{v['nodes']:>7}  {check}")
        for name, reason in section["failed"].items():
            print(f"  {name:<16} not measured: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="other ONNX models to compare on (random inputs)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME:DxD...",
                        help="a concrete shape for a dynamic input of the other models (repeatable)")
    parser.add_argument("--model", type=Path, default=EXAMPLE / "model.onnx", help="the detector network")
    parser.add_argument("--config", type=Path, default=EXAMPLE / "detector.toml")
    parser.add_argument("--no-detector", action="store_true", help="only the models given")
    parser.add_argument("--frames", type=int, default=20, help="timed frames or calls (at least 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames or calls first")
    parser.add_argument("--settle-ms", type=float, default=150.0, help="pause before each timed call")
    parser.add_argument("--json", type=Path, help="also write the results here")
    add_results_dir_option(parser)
    parser.add_argument("--set", action="store_true",
                        help="the model set of benchmarks/models.toml instead (writes --json, default "
                        "docs/results/<machine>/peers.json, and peers.md beside it)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="with --set: only this model of the set (repeatable)")
    args = parser.parse_args()
    if args.frames < 20:
        parser.error("--frames must be at least 20 (the median is over frames)")
    if args.set:
        run_set(args)
        return
    if args.no_detector and not args.models:
        parser.error("--no-detector leaves nothing to compare: give a model")
    try:
        shapes = dict(parse_input_shape(text) for text in args.input_shape)
        result: dict[str, Any] = {
            "machine": machine_description(),
            "versions": {p: version(p) for p in ("graphopt", "onnxruntime", "onnxsim", "onnxslim", "polygraphy")},
            "settle_ms": args.settle_ms, "warmup": args.warmup,
            "detector": None if args.no_detector else with_ratios(bench_detector(args), "graphopt_full"),
            "models": [with_ratios(bench_model(path, shapes, args), "graphopt") for path in args.models],
        }
    except GraphoptError as error:
        print(f"bench_peers: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    text = printed(render, result)
    if args.json:
        write_json_atomically(args.json, result)
    publish_printed(args.results_dir, "bench_peers", "Against the tools users would pick instead", result, text,
                    about=__doc__.split("Usage::")[0])


def publish_set(result: dict[str, Any], results_dir: Path, *, command: str | None = None) -> Path:
    """The model set's results page (``peers.md`` and ``peers.json``) for this machine, via graphopt.results."""
    from peer_set import render_markdown

    body = render_markdown(result).split("\n", 4)[4]  # the page gets the generated heading and note instead
    return publish(results_dir, "peers", title="graphopt against the peer tools on the model set", data=result,
                   markdown=body, machine=result["machine"], command=command)


def run_set(args: argparse.Namespace) -> None:
    """``--set``: every model of the set; the JSON results and the Markdown page the docs link."""
    from peer_set import bench_set

    machine = machine_description()
    result = {
        "machine": machine,
        "versions": {p: version(p) for p in ("graphopt", "onnxruntime", "onnxsim", "onnxslim", "polygraphy")},
        "set": bench_set(calls=args.frames, warmup=args.warmup, only=args.only),
    }
    if args.json:
        write_json_atomically(args.json, result)
    page = publish_set(result, args.results_dir or Path(__file__).resolve().parents[1] / "docs" / "results")
    for section in result["set"]:
        v = section["variants"]
        peers = ", ".join(f"{n} {v[n]['nodes']}" for n in v if n not in ("original", "graphopt"))
        print(f"{section['model']}: original {v['original']['nodes']}, graphopt {v['graphopt']['nodes']} nodes "
              f"(max err {v['graphopt']['max_abs_error']:.2g}); {peers}; vs fastest peer "
              f"{section['fastest_peer']}: {section['graphopt_vs_fastest_peer']['verdict']}")
    print(f"wrote {page} and {page.with_suffix('.json')}")


if __name__ == "__main__":
    main()
