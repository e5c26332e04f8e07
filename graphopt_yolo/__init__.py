"""The YOLO family as graphopt's second workload: YOLOv5/v8/v11 and YOLOX exports, frame in, detections out.

A ``[yolo]`` table in a ``--config`` file (:mod:`.config`) describes the
client code an export runs with; the workload finds the rest from the graph
(:mod:`.layout`), runs the host reference pipeline (:mod:`.host`) and writes
the fused graph (:mod:`.fused`) for the core's ``fuse_host_stages`` pass
(:mod:`.fusion`).
"""

from .config import YoloConfig, parse_config
from .plugin import WORKLOAD

__all__ = ["WORKLOAD", "YoloConfig", "parse_config"]
