"""The YOLO family as a graphopt workload: the ``graphopt.workloads`` entry point ``yolo`` names :data:`WORKLOAD`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphopt.errors import ConfigError

from .config import TABLE, YoloConfig, parse_config

__all__ = ["WORKLOAD", "YoloWorkloadType"]


class YoloWorkloadType:
    """YOLO-family exports (YOLOv5/v8/v11, YOLOX) with their client code as a ``[yolo]`` table."""

    name = "yolo"

    def claims(self, data: Mapping[str, Any]) -> bool:
        return TABLE in data

    def parse(self, data: Mapping[str, Any], *, source: str) -> YoloConfig:
        return parse_config(data, source=source)

    def default(self) -> YoloConfig:
        """Refused: a YOLO export's client code (frame size, letterbox, channels…) has no sensible default."""
        raise ConfigError("the yolo workload needs a config: give --config with a [yolo] table")


WORKLOAD = YoloWorkloadType()
