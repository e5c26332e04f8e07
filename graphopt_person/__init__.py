"""The reference workload: a sliding-window CNN person detector on an image pyramid.

* :mod:`.spec`: what the detector computes (:class:`DetectorSpec`) and the
  camera it looks through (:class:`CameraSpec`), loaded from TOML;
* :mod:`.network`: the network and its naive, exporter-style ONNX graph;
* :mod:`.naive`: the naive host-driven deployment (:class:`NaiveDetector`);
* :mod:`.fused`: the whole detector as one static graph (:func:`~.fused.build_fused_model`,
  :class:`FusedDetector`), which the ``fuse_host_stages`` pass writes;
* :mod:`.grid`: pyramid resizes and the common score grid, shared by every form;
* :mod:`.data`: synthetic scenes with ground truth from the camera model (the
  ray-cast renderer of rooms and people that makes every frame the workload uses);
* :mod:`.evaluate` and :mod:`.workload`: miss rate versus FPPI, detector
  comparison, logit margins at true-positive peaks;
* :mod:`.draw`: boxes on frames and PNG files.
"""

from graphopt.detections import Detections

from .data import Scene, generate_scenes, render_scene, scene_seeds
from .fused import FusedDetector
from .naive import NaiveDetector
from .spec import CameraSpec, DetectorConfig, DetectorSpec, load_config

__all__ = [
    "CameraSpec",
    "Detections",
    "DetectorConfig",
    "DetectorSpec",
    "FusedDetector",
    "NaiveDetector",
    "Scene",
    "generate_scenes",
    "load_config",
    "render_scene",
    "scene_seeds",
]
