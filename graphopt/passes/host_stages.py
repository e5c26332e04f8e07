"""Moving a detector's host-side stages into its graph.

A detector deployed the naive way is a network between pieces of host code:
the frame is normalized and resized on the CPU, the network is called, and
its outputs come back to be decoded, thresholded, suppressed and sorted on
the CPU. Every call and every copy is overhead, and none of that host work can
run on the accelerator. This pass replaces the network by one static graph
that does all of it, driven by the workload's configuration (``--config``)
rather than by guessing what the host did: the workload
(:mod:`graphopt.workloads`) writes the graph and checks it against its host
reference pipeline.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import onnx

from ..errors import PreconditionError
from ..graph import takes_a_frame
from ..options import OptimizeOptions
from .base import Pass, PassResult, PostconditionError

if TYPE_CHECKING:
    from ..workloads import Workload

__all__ = ["STAT_KEYS", "VOLUME_TOLERANCE", "FuseHostStagesPass", "HostFusionMismatch", "takes_a_frame"]

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


class HostFusionMismatch(PostconditionError):
    """The fused graph's detections differ from the host pipeline's (the pass is rolled back)."""


class FuseHostStagesPass(Pass):
    """Moves the detector's host stages (normalize, pyramid, resample, NMS, top-K) into one static graph.

    What the graph computes comes from the workload's configuration alone
    (:meth:`~graphopt.workloads.Workload.fuse_host_stages`); for the person
    detector:

    * the input becomes the camera's raw uint8 ``H×W×3`` frame at its exact
      size; normalization and the HWC → NCHW layout change run in the graph;
    * each pyramid scale is an in-graph ``Resize`` feeding a copy of the
      network's nodes; all copies read the same initializers (one copy of
      the weights);
    * each scale's person score map is resampled onto the common grid by two
      ``MatMul`` and the scales are stacked into one ``(S, Gh, Gw)`` volume;
    * 3D max-pooling NMS (scale maximum, then one ``MaxPool``), the threshold and a
      fixed-size ``TopK`` end the graph, which returns ``scores``, ``boxes``,
      ``cells`` and ``num_detections`` of static shape; no NonZero,
      NonMaxSuppression or Loop is used.

    Without a workload configuration the pass changes nothing and says so; a
    model that already takes the workload's frames is left as it is. With
    ``check_frames`` its :meth:`ensures` has the workload run its host pipeline
    and the fused graph on that many test frames and raises
    :class:`HostFusionMismatch` (so the pipeline rolls the pass back) unless
    they agree (score volumes within :data:`VOLUME_TOLERANCE`, the same detections).

    Stats: ``scales``, ``network_nodes`` (nodes of one network copy),
    ``shared_initializers``, the boundary traffic per frame before and after
    (``calls_*``, ``bytes_in_*``, ``bytes_out_*``), ``host_ops_removed`` and,
    when checked, ``checked_frames`` and ``max_volume_error``. The full
    traffic change, with the host stages removed, is ``PassResult.traffic``.

    Args:
        config: the workload configuration (``--config``); ``None`` to do nothing.
        check_frames: test frames to compare the fused graph with the host
            pipeline on (0 not to).
    """

    name = "fuse_host_stages"
    changes_interface = True

    def __init__(self, *, config: Workload | None = None, check_frames: int = 0) -> None:
        if check_frames < 0:
            raise ValueError(f"check_frames must be at least 0, got {check_frames}")
        self.config = config
        self.check_frames = check_frames

    @classmethod
    def from_options(cls, options: OptimizeOptions) -> FuseHostStagesPass:
        return cls(config=options.workload, check_frames=2 if options.verify else 0)

    def __repr__(self) -> str:
        source = None if self.config is None else self.config.source
        return f"{type(self).__name__}(config={source!r}, check_frames={self.check_frames})"

    def requires(self, model: onnx.ModelProto) -> None:
        if self.config is None:
            raise PreconditionError("a workload configuration (--config)")

    def call(self, model: onnx.ModelProto) -> PassResult:
        stats: dict[str, float] = dict.fromkeys(STAT_KEYS, 0)
        if self.config is None:
            return PassResult(model, False, stats, note="no detector description given (--config): nothing to fuse")
        if self.config.takes_frames(model):
            return PassResult(model, False, stats, note="the model already takes a uint8 frame: nothing to fuse")
        return self.config.fuse_host_stages(model)

    def ensures(self, before: onnx.ModelProto, result: PassResult) -> None:
        """With ``check_frames``: the host pipeline around ``before`` and the fused graph agree on test frames."""
        if self.config is None or not self.check_frames or not result.modified:
            return
        checked = self.config.check_host_fusion(before, frames=self.check_frames)
        result.stats = {**result.stats, **checked}
