"""Moving a detector's host-side stages into its graph.

A detector deployed the naive way is a network between pieces of host code:
the frame is normalized and resized into a pyramid on the CPU, the network is
called once per scale, and the score maps come back to be resampled, stacked,
max-pooled and sorted on the CPU. Every call and every copy is overhead, and
none of that host work can run on the accelerator. This pass replaces the
network by one static graph that does all of it, driven by the detector
description (``--config``) rather than by guessing what the host did: see
:mod:`graphopt.detector.fused` for the graph it writes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto

from ..graph import declared_dims, graph_inputs
from ..options import OptimizeOptions
from ..traffic import TrafficChange
from .base import Pass, PassResult

if TYPE_CHECKING:
    from ..detector.spec import DetectorConfig

__all__ = ["STAT_KEYS", "FuseHostStagesPass", "HostFusionMismatch", "takes_a_frame"]

logger = logging.getLogger(__name__)

STAT_KEYS = (
    "scales",
    "network_nodes",
    "shared_initializers",
    "calls_before",
    "calls_after",
    "bytes_in_before",
    "bytes_in_after",
    "bytes_out_before",
    "bytes_out_after",
    "host_ops_removed",
    "checked_frames",
    "max_volume_error",
)

# The in-graph score volume may differ from the host's by float32 rounding of
# the resize and of the two resampling products (the inputs are the same
# numbers; the op order of the sums is not). Probabilities are in [0, 1].
VOLUME_TOLERANCE = 1e-4


class HostFusionMismatch(RuntimeError):
    """The fused graph's detections differ from the host pipeline's (the pass is rolled back)."""


class FuseHostStagesPass(Pass):
    """Moves the detector's host stages (normalize, pyramid, resample, NMS, top-K) into one static graph.

    Rules applied, from the detector description alone (see
    :mod:`graphopt.detector.fused`):

    * the input becomes the camera's raw uint8 ``H×W×3`` frame at its exact
      size; normalization and the HWC → NCHW layout change run in the graph;
    * each pyramid scale is an in-graph ``Resize`` feeding a copy of the
      network's nodes; all copies read the same initializers (one copy of
      the weights);
    * each scale's person score map is resampled onto the common grid by two
      ``MatMul`` and the scales are stacked into one ``(S, Gh, Gw)`` volume;
    * 3D max-pooling NMS (three separable ``MaxPool``), the threshold and a
      fixed-size ``TopK`` end the graph, which returns ``scores``, ``boxes``,
      ``cells`` and ``num_detections`` of static shape; no NonZero,
      NonMaxSuppression or Loop is used.

    Without a detector description the pass changes nothing and says so; a
    model that already takes a uint8 frame is left as it is. With
    ``check_frames`` it runs the host pipeline and the fused graph on that
    many synthetic scenes and raises :class:`HostFusionMismatch` (so the
    pipeline rolls it back) unless the score volumes agree within
    :data:`VOLUME_TOLERANCE` and the detections are the same cells and boxes.

    Stats: ``scales``, ``network_nodes`` (nodes of one network copy),
    ``shared_initializers``, the boundary traffic per frame before and after
    (``calls_*``, ``bytes_in_*``, ``bytes_out_*``), ``host_ops_removed`` and,
    when checked, ``checked_frames`` and ``max_volume_error``. The full
    traffic change, with the host stages removed, is ``PassResult.traffic``.

    Args:
        config: the detector and camera description; ``None`` to do nothing.
        check_frames: synthetic test scenes to compare the fused graph with
            the host pipeline on (0 not to).
    """

    name = "fuse_host_stages"
    changes_interface = True

    def __init__(self, *, config: DetectorConfig | None = None, check_frames: int = 0) -> None:
        if check_frames < 0:
            raise ValueError(f"check_frames must be at least 0, got {check_frames}")
        self.config = config
        self.check_frames = check_frames

    @classmethod
    def from_options(cls, options: OptimizeOptions) -> FuseHostStagesPass:
        return cls(config=options.detector, check_frames=2 if options.verify else 0)

    def __repr__(self) -> str:
        source = None if self.config is None else self.config.source
        return f"{type(self).__name__}(config={source!r}, check_frames={self.check_frames})"

    def call(self, model: onnx.ModelProto) -> PassResult:
        from ..detector.fused import (
            build_fused_model,
            fused_traffic,
            naive_host_stages,
            naive_traffic,
            network_interface,
        )

        stats: dict[str, float] = dict.fromkeys(STAT_KEYS, 0)
        if self.config is None:
            return PassResult(model, False, stats, note="no detector description given (--config): nothing to fuse")
        if takes_a_frame(model):
            return PassResult(model, False, stats, note="the model already takes a uint8 frame: nothing to fuse")
        spec = self.config.detector
        interface = network_interface(model, spec)
        fused = build_fused_model(model, spec)
        traffic = TrafficChange(
            before=naive_traffic(interface, spec),
            after=fused_traffic(fused),
            host_stages_removed=naive_host_stages(spec),
        )
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
        if self.check_frames:
            stats.update(checked_frames=self.check_frames, max_volume_error=self._check(model))
        return PassResult(fused, True, stats, traffic=traffic)

    def _check(self, network: onnx.ModelProto) -> float:
        """Runs the host pipeline and the fused graph on synthetic scenes; returns the worst volume error.

        Raises:
            HostFusionMismatch: volumes or detections differ.
        """
        from ..detector.fused import VOLUME_OUTPUT, FusedDetector, build_fused_model
        from ..detector.naive import NaiveDetector
        from ..detector.scenes import generate_scenes

        assert self.config is not None
        spec = self.config.detector
        naive = NaiveDetector(network, spec)
        fused = FusedDetector(build_fused_model(network, spec, volume_output=True), spec)
        worst = 0.0
        for scene in generate_scenes(self.config, "test", self.check_frames):
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
        logger.debug("fused graph checked on %d scenes: worst volume error %.3g", self.check_frames, worst)
        return worst


def takes_a_frame(model: onnx.ModelProto) -> bool:
    """Whether the model's one input is a uint8 ``H×W×3`` camera frame (a fused detector's input)."""
    inputs = graph_inputs(model)
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != TensorProto.UINT8:
        return False
    dims = declared_dims(inputs[0])
    return dims is not None and len(dims) == 3 and dims[2] == 3
