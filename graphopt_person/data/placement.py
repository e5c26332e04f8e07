"""Where the people stand: floor positions whose boxes the detector can find.

Each person gets a body height and a box height the detector's pyramid covers, the floor distance that
gives that box, and a position across the view that keeps the box inside the frame and the room; no two
people stand close or have boxes that overlap much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..spec import CameraSpec
from .geometry import SceneCamera
from .room import Room

__all__ = ["Placed", "place_people"]


@dataclass(frozen=True)
class Placed:
    """A person's floor position, body height and box, before they are drawn."""

    x_m: float
    y_m: float
    height_m: float
    box: tuple[float, float, float, float]


def _iou_and_cover(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> tuple[float, float]:
    """IoU of two boxes, and their intersection over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0, 0.0
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / min(area_a, area_b)


def _distance_for_height(camera: CameraSpec, height_m: float, box_height: float, aspect: float) -> float:
    """The floor distance ``y`` at which a person ``height_m`` tall has a box ``box_height`` pixels tall."""
    y = camera.focal_px[1] * height_m / box_height
    for _ in range(6):
        _, top, _, bottom = camera.person_box(0.0, y, height_m, aspect)
        y *= (bottom - top) / box_height
    return y


def place_people(
    rng: np.random.Generator, cam: SceneCamera, aspect: float, heights: tuple[float, float], room: Room, max_people: int
) -> list[Placed]:
    """Up to ``max_people`` people (none in about one frame in eight) with boxes the detector can find."""
    camera = cam.camera
    count = 0 if max_people == 0 or rng.random() < 0.12 else int(rng.integers(1, max_people + 1))
    low, high = heights[0] * 1.02, heights[1] * 0.98
    h_low, h_high = camera.person_height_m
    placed: list[Placed] = []
    for _ in range(count):
        for _attempt in range(30):
            body = float(np.clip(rng.normal((h_low + h_high) / 2, (h_high - h_low) / 4), h_low, h_high))
            target = float(np.exp(rng.uniform(math.log(low), math.log(high))))
            y = _distance_for_height(camera, body, target, aspect)
            if not 1.0 < y < room.back_y - 0.8:
                continue
            _, v_head, _, v_foot = camera.person_box(0.0, y, body, aspect)
            if v_head < 0 or v_foot > cam.height or not low * 0.99 <= v_foot - v_head <= high * 1.01:
                continue
            half = aspect * (v_foot - v_head) / 2
            # The box centre is linear in x: u = cx + x * slope.
            slope = camera.person_box(1.0, y, body, aspect)[0] + half - cam.cx
            x_lo = max((half - cam.cx) / slope, room.left_x + 0.45)
            x_hi = min((cam.width - half - cam.cx) / slope, room.right_x - 0.45)
            if x_lo >= x_hi:
                continue
            x = float(rng.uniform(x_lo, x_hi))
            box = camera.person_box(x, y, body, aspect)
            if box[0] < 0 or box[2] > cam.width:
                continue
            clash = False
            for other in placed:
                iou, cover = _iou_and_cover(box, other.box)
                if iou >= 0.25 or cover >= 0.3 or math.hypot(x - other.x_m, y - other.y_m) < 0.6:
                    clash = True
                    break
            if not clash:
                placed.append(Placed(x, y, body, box))
                break
    return placed
