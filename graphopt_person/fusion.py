"""The person detector's host-stage fusion: what the core ``fuse_host_stages`` pass runs for this workload.

The network is replaced by the whole detector as one static graph
(:func:`~graphopt_person.fused.build_fused_model`); with ``check_frames`` the
host pipeline and the fused graph are compared on that many synthetic test
scenes first, and those scenes also say how often Fast-NMS would keep other
boxes than the greedy IoU suppression the graph computes (Cluster-NMS).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx

from graphopt.nms import fast_nms_differs
from graphopt.passes.base import PassResult
from graphopt.passes.host_stages import STAT_KEYS, VOLUME_TOLERANCE, HostFusionMismatch
from graphopt.traffic import TrafficChange

from .data import generate_scenes
from .fused import (
    VOLUME_OUTPUT,
    FusedDetector,
    build_fused_model,
    fused_traffic,
    naive_host_stages,
    naive_traffic,
    network_interface,
)
from .naive import NaiveDetector
from .spec import DetectorConfig

__all__ = ["check", "fuse"]

logger = logging.getLogger(__name__)


def fuse(config: DetectorConfig, model: onnx.ModelProto) -> PassResult:
    """The fused detector graph for the exported ``model``, its boundary traffic and stats."""
    spec = config.detector
    interface = network_interface(model, spec)
    fused = build_fused_model(model, spec)
    traffic = TrafficChange(
        before=naive_traffic(interface, spec),
        after=fused_traffic(fused),
        host_stages_removed=naive_host_stages(spec),
    )
    stats: dict[str, float] = dict.fromkeys(STAT_KEYS, 0)
    stats.update(
        scales=len(spec.scales),
        network_nodes=len(model.graph.node),
        shared_initializers=len(model.graph.initializer),
        calls_before=traffic.before.calls,
        calls_after=traffic.after.calls,
        bytes_in_before=traffic.before.bytes_in,
        bytes_in_after=traffic.after.bytes_in,
        bytes_out_before=traffic.before.bytes_out,
        bytes_out_after=traffic.after.bytes_out,
        host_ops_removed=traffic.host_ops_removed,
    )
    suppression = spec.nms_iou_threshold < 1
    exact = spec.nms_iou_method == "cluster"
    iterations = (max(spec.max_detections - 1, 1) if exact else 1) if suppression else 0
    stats.update(iou_suppression_iterations=iterations, iou_suppression_exact=int(exact))
    note = None
    if suppression:
        method = "Cluster-NMS, greedy exactly" if exact else "Fast-NMS"
        note = (f"IoU suppression at {spec.nms_iou_threshold:g} over the {spec.max_detections} candidates: "
                f"{method} ({iterations} iteration(s))")
    return PassResult(fused, True, stats, traffic=traffic, note=note)


def check(config: DetectorConfig, network: onnx.ModelProto, frames: int) -> dict[str, float]:
    """The fusion's check (``fuse_host_stages``' ensures): its figures for the pass's stats, including on how
    many of the checked frames Fast-NMS would keep other boxes than the graph's exact greedy suppression."""
    worst, fast_differs = _check(config, network, frames)
    return {"checked_frames": frames, "max_volume_error": worst, "fast_nms_differs_frames": fast_differs}


def _check(config: DetectorConfig, network: onnx.ModelProto, frames: int) -> tuple[float, int]:
    """Runs the host pipeline and the fused graph on synthetic scenes.

    Returns:
        The worst volume error, and on how many frames Fast-NMS would keep
        other candidates than greedy IoU suppression.

    Raises:
        HostFusionMismatch: volumes or detections differ.
    """
    spec = config.detector
    naive = NaiveDetector(network, spec)
    fused = FusedDetector(build_fused_model(network, spec, volume_output=True), spec)
    worst = 0.0
    fast_differs = 0
    for scene in generate_scenes(config, "test", frames):
        error = float(np.max(np.abs(fused.run(scene.image)[VOLUME_OUTPUT] - naive.score_volume(scene.image))))
        worst = max(worst, error)
        if not error <= VOLUME_TOLERANCE:
            raise HostFusionMismatch(
                f"the fused score volume differs from the host pipeline's by {error:.3g} on scene "
                f"{scene.seed} (tolerance {VOLUME_TOLERANCE:g})"
            )
        ours, theirs = fused.detect(scene.image), naive.detect(scene.image)
        if not (np.array_equal(ours.cells, theirs.cells) and np.array_equal(ours.boxes, theirs.boxes)):
            raise HostFusionMismatch(
                f"the fused graph finds {len(ours)} detections on scene {scene.seed}, the host pipeline "
                f"{len(theirs)}, not at the same cells"
            )
        fast_differs += int(fast_nms_differs(naive.last_candidates.boxes, spec.nms_iou_threshold))
    logger.debug("fused graph checked on %d scenes: worst volume error %.3g", frames, worst)
    return worst, fast_differs
