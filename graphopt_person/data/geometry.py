"""World axes, the camera's per-pixel rays, and fast projection of world points.

The world is the camera model's (:class:`~graphopt_person.spec.CameraSpec`): ``x`` across the view,
``y`` along it on the floor, ``z`` up, the camera at ``(0, 0, height_m)``. :func:`pixel_rays` gives the
ray quantities the room's ray casting needs per pixel; :class:`SceneCamera` projects the corners of
objects and people and carries the frame's lighting parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..spec import CameraSpec

__all__ = ["UP", "Rays", "SceneCamera", "pixel_rays"]

#: The world's up axis.
UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Rays:
    """Per-pixel ray quantities of one camera and frame size, flattened row-major (cached)."""

    rx: np.ndarray
    ry: np.ndarray
    rz: np.ndarray
    norm: np.ndarray
    t_floor: np.ndarray  # ray parameter where the ray meets the floor; inf above the horizon
    inv_ry: np.ndarray  # 1 / ry where the ray goes forward, else inf
    inv_rx_neg: np.ndarray  # 1 / -rx where the ray goes left, else inf
    inv_rx_pos: np.ndarray
    inv_rz_pos: np.ndarray
    vignette: np.ndarray  # (H, W) squared distance from the centre, 1 at the corners
    focal: float
    shape: tuple[int, int]


@functools.lru_cache(maxsize=4)
def pixel_rays(camera: CameraSpec, width: int, height: int) -> Rays:
    """The ray quantities of every pixel centre of a ``width`` x ``height`` frame of ``camera``."""
    u = np.arange(width, dtype=np.float64) + 0.5
    v = np.arange(height, dtype=np.float64) + 0.5
    uu, vv = np.meshgrid(u, v)
    dirs = camera.pixel_rays(uu, vv).reshape(-1, 3)
    rx, ry, rz = (dirs[:, k].astype(np.float32) for k in range(3))

    def inverse(values: np.ndarray, positive: bool) -> np.ndarray:
        ok = values > 1e-6 if positive else values < -1e-6
        out = np.full(values.shape, np.inf, dtype=np.float32)
        out[ok] = 1.0 / np.abs(values[ok])
        return out

    inv_rz_neg = inverse(rz, positive=False)
    radius = ((uu - width / 2) / (width / 2)) ** 2 + ((vv - height / 2) / (height / 2)) ** 2
    arrays = {
        "rx": rx,
        "ry": ry,
        "rz": rz,
        "norm": np.sqrt(rx * rx + ry * ry + rz * rz),
        "t_floor": (camera.height_m * inv_rz_neg).astype(np.float32),
        "inv_ry": inverse(ry, positive=True),
        "inv_rx_neg": inverse(rx, positive=False),
        "inv_rx_pos": inverse(rx, positive=True),
        "inv_rz_pos": inverse(rz, positive=True),
        "vignette": (radius / 2).astype(np.float32),
    }
    for array in arrays.values():
        array.setflags(write=False)
    return Rays(**arrays, focal=float(camera.focal_px[1]), shape=(height, width))


class SceneCamera:
    """Fast projection of world points, plus the frame's lighting parameters."""

    def __init__(self, camera: CameraSpec, width: int, height: int, light_side: float, falloff: float, back: float):
        self.camera = camera
        self.width = width
        self.height = height
        self.cam_height = camera.height_m
        self.origin = np.array([0.0, 0.0, camera.height_m])
        # The world-to-camera matrix (camera = (point - origin) @ basis), taken from the camera itself so that
        # this projection and CameraSpec.project cannot disagree.
        self.basis = camera.to_camera(self.origin + np.eye(3))
        self.fx, self.fy = camera.focal_px
        self.cx, self.cy = camera.principal_point
        self.light_side = light_side
        self.light2d = (0.45 * light_side, -0.9)
        self.falloff = falloff
        self.fade_range = 1.3 * back

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(n, 2)`` and depths ``(n,)`` of world points ``(n, 3)``."""
        cam = (np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.origin) @ self.basis
        depth = cam[:, 2]
        safe = np.where(depth > 1e-3, depth, np.nan)
        uv = np.stack([self.fx * cam[:, 0] / safe + self.cx, self.fy * cam[:, 1] / safe + self.cy], axis=1)
        return uv, depth

    def dim(self, distance: float) -> float:
        """Brightness factor of a surface ``distance`` metres away (the same falloff as the room's)."""
        return 1.0 - self.falloff * min(distance / self.fade_range, 1.0)
