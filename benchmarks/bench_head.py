"""The detection head's share of the fused frame: the log-odds head with each of its resamplings.

The head is everything from the network's class logits on: the log-odds
(or probabilities), the resampling of every scale's map onto the common
grid, the 3D max-pooling NMS, the threshold, ``TopK``, the IoU suppression
and the outputs. Variants, all from the shipped detector fused by the
default pipeline (``graphopt.optimize(model, detector=config)``):

``fp32``
    the float32 graph: the head on probabilities, resampled by two matrix
    products per scale.
``fp16_log_sum_exp``
    ``nms_on_logits(resampling="log_sum_exp")`` then ``convert_to_fp16``:
    the log-odds head as it was, each resampling a weighted log-sum-exp of
    two taps (about twenty element-wise passes over the grid).
``fp16_linear_unstacked``
    ``nms_on_logits(resampling="linear_unstacked")`` then ``convert_to_fp16``:
    the probability and its complement, ``σ(±m)``, each through the scale's
    two matrix products (rows, then columns), the unreached cells'
    complement set by added masks, and the NMS on the odds ``p / (1 − p)``
    (the ``--fp16`` head before the stacked resampling).
``fp16_linear``
    ``--fp16`` as shipped: ``nms_on_logits`` (``resampling="linear"``: the
    same values, ``σ(∓m)`` stacked through the first product, rows or
    columns first, whichever needs fewer multiply-adds, then apart through
    the second; unreached cells read a padded source of probability 0) then
    ``convert_to_fp16``.

The max-pooling NMS is the same in every variant, as the fused detector
writes it (:func:`graphopt.blocks.max_pool_peaks`): the scale maximum on the
separate planes, one ``MaxPool`` over rows and columns, non-peaks set to 0 by
a product with the peak mask. The figures before that form (two ``MaxPool``,
the pooled volume split, a ``Where``) are in this page's history.

Each variant is also cut before its head (``headless``: the same graph with
the scales' class logits as its outputs, everything after them removed).
The head's cost is measured two ways: the wall clock, every variant and
its headless copy interleaved frame by frame on the same test frames (the
head's share is the median of the per-frame differences over the median
frame), and onnxruntime's profiler on one frame (the head nodes' kernel
time over the whole graph's, in the median run of ``--profile-runs``;
kernels of nodes that onnxruntime inserts itself, layout reorders and casts,
are counted apart as unattributed). The head's FLOPs are the graph's minus
its headless copy's (:func:`graphopt.analysis.count_flops`: two per
multiply-add, one per element and step). The float16 share of the graph's
FLOPs is the ``convert_to_fp16`` pass's.

Usage::

    .venv/bin/python benchmarks/bench_head.py [--frames 30] [--json build/bench_head.json] [--results-dir docs/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import graphopt
from graphopt.analysis import count_flops, float16_flop_share
from graphopt.backends.onnxruntime import create_session
from graphopt.graph import infer_tensor_info, prune_dead
from graphopt.model_io import load_model
from graphopt.options import OptimizeOptions
from graphopt.passes import ConvertToFp16Pass, NmsOnLogitsPass
from graphopt.passes.fp16 import calibration_inputs
from graphopt.profile import profile_graph
from graphopt.results import add_results_dir_option, finish_run
from graphopt.timing import machine_description
from graphopt_person.fused import FRAME_INPUT, time_frames_interleaved
from graphopt_person.spec import load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "02_person_detector"
VARIANTS = ("fp32", "fp16_log_sum_exp", "fp16_linear_unstacked", "fp16_linear")


def build_variants(model: onnx.ModelProto, config: Any) -> tuple[dict[str, onnx.ModelProto], list[str]]:
    """Every variant's model and the names of the class logits that enter the head."""
    fp32, _ = graphopt.optimize(model, detector=config)
    logits = [node.input[0] for node in fp32.graph.node if node.op_type == "Softmax"]
    convert = ConvertToFp16Pass(calibration=calibration_inputs(OptimizeOptions(workload=config)))
    variants = {"fp32": fp32}
    for resampling in ("log_sum_exp", "linear_unstacked", "linear"):
        variants[f"fp16_{resampling}"] = convert(NmsOnLogitsPass(resampling=resampling)(fp32).model).model
    return variants, logits


def headless(model: onnx.ModelProto, logits: list[str]) -> onnx.ModelProto:
    """``model`` with the class logits as its outputs and every node after them removed."""
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    infos = infer_tensor_info(model)
    missing = [name for name in logits if name not in infos]
    if missing:
        raise SystemExit(f"bench_head: the logits '{missing[0]}' are not a value of the graph")
    cut.graph.ClearField("output")
    for name in logits:
        info = infos[name]
        cut.graph.output.append(onnx.helper.make_tensor_value_info(name, info.elem_type, info.shape))
    prune_dead(cut.graph)
    return cut


def _node_of(event: str, names: set[str]) -> bool:
    """Whether a profiler event is one of ``names``' kernels, under the name onnxruntime gives it.

    onnxruntime renames the nodes it fuses: ``"fused <name>"`` for an
    activation fused into a Gemm, ``"<name>/MatMulAddFusion"``,
    ``"<output>_nchwc"`` for a convolution in its blocked layout.
    """
    token = event.rsplit(" ", 1)[-1].removesuffix("_nchwc")
    parts = token.split("/")
    return any("/".join(parts[:end]) in names for end in range(len(parts), 0, -1)) or (
        token.endswith("_output_0") and token.removesuffix("_output_0") in names)


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config)
    variants, logits = build_variants(load_model(args.model), config)
    cuts = {name: headless(model, logits) for name, model in variants.items()}
    frames = [feed[FRAME_INPUT] for feed in config.frames("test", args.frames)]
    sessions = {name: create_session(model) for name, model in variants.items()}
    sessions |= {f"{name}/headless": create_session(model) for name, model in cuts.items()}
    times = time_frames_interleaved(sessions, frames, settle_ms=args.settle_ms)
    rows: dict[str, dict[str, Any]] = {}
    for name, model in variants.items():
        whole, cut = np.asarray(times[name]), np.asarray(times[f"{name}/headless"])
        head_ms = float(np.median(whole - cut))
        head_nodes = {node.name for node in model.graph.node} - {node.name for node in cuts[name].graph.node}
        profile = profile_graph(model, {FRAME_INPUT: frames[0]}, label=name, runs=args.profile_runs)
        network_nodes = {node.name for node in cuts[name].graph.node}
        profiled_head = unattributed = 0.0
        for event, ms in profile.by_node.items():
            if _node_of(event, head_nodes):
                profiled_head += ms
            elif not _node_of(event, network_nodes):
                unattributed += ms
        flops = count_flops(model).total
        head_flops = flops - count_flops(cuts[name]).total
        rows[name] = {
            "frame_ms": float(np.median(whole)),
            "headless_ms": float(np.median(cut)),
            "head_ms": head_ms,
            "head_share": head_ms / float(np.median(whole)),
            "head_nodes": len(head_nodes),
            "head_mflops": head_flops / 1e6,
            "head_flop_share": head_flops / flops if flops else 0.0,
            "profiled_head_ms": profiled_head,
            "profiled_kernels_ms": profile.kernels_ms,
            "profiled_unattributed_ms": unattributed,
            "profiled_head_share": profiled_head / profile.kernels_ms if profile.kernels_ms else 0.0,
            "float16_flop_share": float16_flop_share(model),
        }
    return {"machine": machine_description(), "frames": len(frames), "profile_runs": args.profile_runs,
            "variants": rows}


def render(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}; onnxruntime CPU")
    print(f"{result['frames']} test frames interleaved (medians); profiler: median of {result['profile_runs']} runs")
    print("variant | frame ms | headless ms | head ms | head share | profiled head share | unattributed ms | "
          "head nodes | head MFLOPs | head FLOP share | float16 FLOPs")
    for name, row in result["variants"].items():
        print(" | ".join([
            name, f"{row['frame_ms']:.1f}", f"{row['headless_ms']:.1f}", f"{row['head_ms']:.2f}",
            f"{row['head_share']:.1%}", f"{row['profiled_head_share']:.1%}",
            f"{row['profiled_unattributed_ms']:.2f}", str(row["head_nodes"]), f"{row['head_mflops']:.1f}",
            f"{row['head_flop_share']:.2%}",
            f"{row['float16_flop_share']:.1%}",
        ]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=EXAMPLE / "model.onnx")
    parser.add_argument("--config", type=Path, default=EXAMPLE / "detector.toml")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--settle-ms", type=float, default=50.0)
    parser.add_argument("--profile-runs", type=int, default=30)
    parser.add_argument("--json", type=Path)
    add_results_dir_option(parser)
    args = parser.parse_args()
    result = run(args)
    finish_run(result, render, json_path=args.json, results_dir=args.results_dir, name="bench_head",
               title="The detection head's share of the fused frame", about=__doc__.split("Usage::")[0])


if __name__ == "__main__":
    main()
