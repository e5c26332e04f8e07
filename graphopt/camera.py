"""A calibrated pinhole camera above a flat floor, and where objects standing on it appear.

The geometry behind cropping a fixed camera's frames to the rows where
objects can be (the person detector's ground-plane slicing, a YOLO
workload's row cropping): :class:`PinholeCamera` projects world points and
intersects pixel rays with the floor; :func:`feasible_rows` finds every image
row where the foot and the box centre of an object of a given real height
range can be while its box height lies in a given pixel range.

World coordinates: x right, y forward along the floor, z up; the camera
stands ``height_m`` above the origin, tilted down by ``tilt_deg``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PinholeCamera", "feasible_rows", "object_rows", "rows_at"]

DISTANCE_SAMPLES = 2048
HEIGHT_SAMPLES = 33


@dataclass(frozen=True)
class PinholeCamera:
    """A calibrated pinhole camera above a flat floor."""

    height_m: float = 1.0
    tilt_deg: float = 5.0
    focal_px: tuple[float, float] = (525.0, 525.0)
    principal_point: tuple[float, float] = (320.0, 240.0)

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The camera's right, down and forward axes in world coordinates."""
        tilt = math.radians(self.tilt_deg)
        right = np.array([1.0, 0.0, 0.0])
        down = np.array([0.0, -math.sin(tilt), -math.cos(tilt)])
        forward = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
        return right, down, forward

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` in camera coordinates (x right, y down, z forward)."""
        right, down, forward = self._axes()
        offset = np.asarray(points, dtype=np.float64) - np.array([0.0, 0.0, self.height_m])
        return np.stack([offset @ right, offset @ down, offset @ forward], axis=-1)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` to pixel coordinates ``(..., 2)`` as ``(u, v)``.

        Points behind the camera give non-finite coordinates.
        """
        cam = self.to_camera(points)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(cam[..., 2] > 1e-9, cam[..., 2], np.nan)
            u = self.focal_px[0] * cam[..., 0] / depth + self.principal_point[0]
            v = self.focal_px[1] * cam[..., 1] / depth + self.principal_point[1]
        return np.stack([u, v], axis=-1)

    def pixel_rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """World directions ``(..., 3)`` of the rays through pixel coordinates ``(u, v)``."""
        right, down, forward = self._axes()
        xn = (np.asarray(u, dtype=np.float64) - self.principal_point[0]) / self.focal_px[0]
        yn = (np.asarray(v, dtype=np.float64) - self.principal_point[1]) / self.focal_px[1]
        return xn[..., None] * right + yn[..., None] * down + forward

    def ground_point(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Where the rays through ``(u, v)`` meet the floor, ``(..., 3)``; NaN above the horizon."""
        rays = self.pixel_rays(u, v)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(rays[..., 2] < -1e-9, self.height_m / -rays[..., 2], np.nan)
        origin = np.array([0.0, 0.0, self.height_m])
        return origin + t[..., None] * rays

    def horizon_v(self) -> float:
        """Image row of the horizon (where the floor meets infinity)."""
        return self.principal_point[1] - self.focal_px[1] * math.tan(math.radians(self.tilt_deg))

    def object_box(self, x_m: float, y_m: float, height_m: float, aspect: float) -> tuple[float, float, float, float]:
        """The standardized box ``(x0, y0, x1, y1)`` of an upright object standing at floor point ``(x_m, y_m)``.

        The box spans the projected top to the projected foot point; its
        width is ``aspect`` times its height, centred on the object's axis.
        """
        (u_foot, v_foot), (u_head, v_head) = self.project(np.array([[x_m, y_m, 0.0], [x_m, y_m, height_m]]))
        box_height = v_foot - v_head
        centre = (u_foot + u_head) / 2
        half_width = aspect * box_height / 2
        return (float(centre - half_width), float(v_head), float(centre + half_width), float(v_foot))


def rows_at(camera: PinholeCamera, distance: np.ndarray, height_m: float) -> np.ndarray:
    """Image rows of the points ``height_m`` above the floor ``distance`` metres ahead (NaN behind the camera)."""
    points = np.zeros((*distance.shape, 3))
    points[..., 1] = distance
    points[..., 2] = height_m
    return camera.project(points)[..., 1]


def object_rows(camera: PinholeCamera, body_m: float, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foot rows and box heights of an object ``body_m`` tall at each floor distance."""
    foot = rows_at(camera, distances, 0.0)
    head = rows_at(camera, distances, body_m)
    return foot, foot - head


def _crossing(camera: PinholeCamera, body: float, a: float, b: float, heights: tuple[float, float],
              low_px: float, high_px: float) -> float:
    """The distance between ``a`` and ``b`` where the box height crosses ``low_px`` or ``high_px`` (bisection)."""
    target = low_px if min(heights) < low_px <= max(heights) else high_px
    sign = (heights[0] - target) > 0
    for _ in range(60):
        mid = (a + b) / 2
        h = object_rows(camera, body, np.array([mid]))[1][0]
        if (h - target > 0) == sign:
            a = mid
        else:
            b = mid
    return (a + b) / 2


def feasible_rows(camera: PinholeCamera, heights_m: tuple[float, float], low_px: float,
                  high_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Foot rows and box-centre rows of every sampled object whose box height is in ``[low_px, high_px]``.

    Objects are ``heights_m[0]`` to ``heights_m[1]`` metres tall. Distances are
    sampled geometrically per height; where a sample enters or leaves the
    pixel range, the crossing is found by bisection so that the extreme rows
    are exact, not one sample short.
    """
    fy = camera.focal_px[1]
    short, tall = heights_m
    bodies = np.linspace(short, tall, HEIGHT_SAMPLES) if tall > short else np.array([short])
    near = max(min(fy * short / high_px / 8, 0.05), 1e-3)
    far = fy * tall / low_px * 8
    distances = np.geomspace(near, far, DISTANCE_SAMPLES)
    feet: list[np.ndarray] = []
    centres: list[np.ndarray] = []
    for body in bodies:
        foot, height = object_rows(camera, float(body), distances)
        inside = np.isfinite(height) & (height >= low_px) & (height <= high_px)
        crossings = [
            _crossing(camera, float(body), distances[i], distances[i + 1], (height[i], height[i + 1]), low_px, high_px)
            for i in np.flatnonzero(inside[1:] != inside[:-1])
            if np.isfinite(height[i]) and np.isfinite(height[i + 1])
        ]
        chosen = np.concatenate([distances[inside], np.asarray(crossings)])
        if chosen.size == 0:
            continue
        foot, height = object_rows(camera, float(body), chosen)
        feet.append(foot)
        centres.append(foot - height / 2)
    if not feet:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(feet), np.concatenate(centres)
