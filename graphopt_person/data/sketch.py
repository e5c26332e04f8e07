"""From 3D parts to 2D primitives: boxes, cylinders, capsules, ellipsoids and flat quads.

A :class:`Sketch` collects the primitives of one item, shaded by orientation and by distance,
and sorts them far to near; :func:`floor_shadow` is the soft shadow under an object or a person.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import SceneCamera
from .raster import Capsule, Ellipse, Item, Polygon, Primitive, convex_hull

__all__ = ["Sketch", "floor_shadow", "front_rect"]


class Sketch:
    """Collects the primitives of one item from 3D parts, tracking image bounds and drawing order."""

    def __init__(self, cam: SceneCamera, dim: bool = True):
        self.cam = cam
        self.entries: list[tuple[float, Primitive]] = []
        self.u0 = self.v0 = math.inf
        self.u1 = self.v1 = -math.inf
        self.valid = True
        self.use_dim = dim

    def grow(self, uv: np.ndarray, pad: float = 0.0) -> bool:
        """Extends the image bounds by points ``uv`` (padded); ``False`` (the item invalid) if one is not finite."""
        low, high = uv.min(axis=0), uv.max(axis=0)
        if not (math.isfinite(low[0]) and math.isfinite(low[1]) and math.isfinite(high[0]) and math.isfinite(high[1])):
            self.valid = False
            return False
        self.u0 = min(self.u0, float(low[0]) - pad)
        self.v0 = min(self.v0, float(low[1]) - pad)
        self.u1 = max(self.u1, float(high[0]) + pad)
        self.v1 = max(self.v1, float(high[1]) + pad)
        return True

    def _key(self, centre: np.ndarray) -> float:
        return float(np.linalg.norm(centre - self.cam.origin))

    def shade(self, colour: np.ndarray, centre: np.ndarray, factor: float = 1.0) -> np.ndarray:
        """``colour`` times ``factor``, dimmed with the distance of ``centre`` unless the sketch is undimmed."""
        if self.use_dim:
            factor *= self.cam.dim(float(np.hypot(centre[0], centre[1])))
        return (colour * factor).astype(np.float32)

    def add(self, key: float, prim: Primitive) -> None:
        """Adds a primitive with drawing-order key ``key`` (larger is drawn first)."""
        self.entries.append((key, prim))

    def quad(
        self,
        corners: np.ndarray,
        colour: np.ndarray,
        *,
        key: float | None = None,
        factor: float = 1.0,
        stripes: tuple[float, np.ndarray] | None = None,
        alpha: float = 1.0,
        feather: float = 1.0,
    ) -> None:
        """A flat convex polygon with 3D corners; ``stripes`` = (period in metres along the first edge, colours)."""
        corners = np.asarray(corners, dtype=np.float64)
        uv, _ = self.cam.project(corners)
        if not self.grow(uv):
            return
        centre = corners.mean(axis=0)
        stripe_spec = None
        if stripes is not None:
            period_m, palette = stripes
            edge = float(np.linalg.norm(corners[1] - corners[0]))
            edge_px = abs(float(uv[1, 0] - uv[0, 0]))
            if edge > 1e-6 and edge_px > 1e-3:
                stripe_spec = (float(uv[:, 0].min()), max(period_m * edge_px / edge, 0.5), palette)
        prim = Polygon(uv, self.shade(colour, centre, factor), alpha=alpha, feather=feather, stripes=stripe_spec)
        self.add(self._key(centre) if key is None else key, prim)

    def box(
        self,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        z0: float,
        z1: float,
        colour: np.ndarray,
        *,
        key: float | None = None,
    ) -> None:
        """The visible faces of an axis-aligned box, shaded by orientation."""
        if y0 <= 0.05:
            self.valid = False
            return
        side = self.cam.light_side
        faces = [
            ([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], 0.82, y0 > 0),
            ([(x0, y0, z0), (x0, y1, z0), (x0, y1, z1), (x0, y0, z1)], 0.92 if side < 0 else 0.62, x0 > 0),
            ([(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)], 0.92 if side > 0 else 0.62, x1 < 0),
            ([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], 1.0, z1 < self.cam.cam_height),
            ([(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0)], 0.55, z0 > self.cam.cam_height),
        ]
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2])
        k = self._key(centre) if key is None else key
        for corners, factor, visible in faces:
            if visible:
                self.quad(np.array(corners), colour, key=k, factor=factor)

    def cylinder(
        self,
        x: float,
        y: float,
        r0: float,
        r1: float,
        z0: float,
        z1: float,
        colour: np.ndarray,
        *,
        top: np.ndarray | None = None,
        key: float | None = None,
        segments: int = 14,
    ) -> None:
        """A vertical (truncated) cylinder or cone: its silhouette with cylinder shading, and its top if seen."""
        angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        ring = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
        bottom = np.array([x, y, z0]) + r0 * ring
        upper = np.array([x, y, z1]) + r1 * ring
        uv, _ = self.cam.project(np.concatenate([bottom, upper]))
        if not self.grow(uv):
            return
        hull = convex_hull(uv)
        if len(hull) < 3:
            return
        centre = np.array([x, y, (z0 + z1) / 2])
        k = self._key(centre) if key is None else key
        half = (float(uv[:, 0].max()) - float(uv[:, 0].min())) / 2
        mid = (float(uv[:, 0].max()) + float(uv[:, 0].min())) / 2
        self.add(k, Polygon(hull, self.shade(colour, centre), cylinder=(mid, half, 0.45)))
        if top is not None and z1 < self.cam.cam_height - 0.02:
            self.add(k, Polygon(uv[segments:], self.shade(top, centre)))

    def stick(
        self,
        p0: np.ndarray,
        p1: np.ndarray,
        r0: float,
        r1: float,
        colour: np.ndarray,
        *,
        key: float | None = None,
        shade: float = 0.3,
    ) -> None:
        """A 3D capsule of radii ``r0``/``r1`` metres."""
        uv, depth = self.cam.project(np.array([p0, p1]))
        if not self.grow(uv, pad=max(r0, r1) * self.cam.fy / max(float(depth.min()), 1e-3)):
            return
        centre = (np.asarray(p0) + np.asarray(p1)) / 2
        prim = Capsule(
            (float(uv[0, 0]), float(uv[0, 1])),
            (float(uv[1, 0]), float(uv[1, 1])),
            r0 * self.cam.fy / float(depth[0]),
            r1 * self.cam.fy / float(depth[1]),
            self.shade(colour, centre),
            shade=shade,
        )
        self.add(self._key(centre) if key is None else key, prim)

    def blob(
        self,
        centre: np.ndarray,
        rx: float,
        rz: float,
        colour: np.ndarray,
        *,
        key: float | None = None,
        shade: float = 0.3,
    ) -> None:
        """An ellipsoid seen as an ellipse, radii in metres."""
        uv, depth = self.cam.project(np.asarray(centre)[None])
        d = float(depth[0])
        if not self.grow(uv, pad=max(rx, rz) * self.cam.fy / max(d, 1e-3)):
            return
        prim = Ellipse(
            (float(uv[0, 0]), float(uv[0, 1])),
            (rx * self.cam.fx / d, rz * self.cam.fy / d),
            self.shade(colour, np.asarray(centre)),
            shade=shade,
        )
        self.add(self._key(np.asarray(centre)) if key is None else key, prim)

    def item(
        self, depth: float, footprint: tuple[float, float, float, float] | None, *, ordered: bool = False
    ) -> Item | None:
        """The item, its primitives sorted far to near unless ``ordered``; ``None`` if empty or invalid."""
        if not self.valid or not self.entries:
            return None
        entries = self.entries if ordered else sorted(self.entries, key=lambda e: -e[0])
        return Item(depth, [p for _, p in entries], (self.u0, self.v0, self.u1, self.v1), footprint)


def front_rect(x0: float, x1: float, y: float, z0: float, z1: float) -> np.ndarray:
    """The corners of an upright rectangle facing the camera (at distance ``y``), for :meth:`Sketch.quad`."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]])


def floor_shadow(
    cam: SceneCamera, centre: np.ndarray, axis_a: np.ndarray, axis_b: np.ndarray, alpha: float
) -> Polygon | None:
    """A soft dark ellipse on the floor around ``centre`` with half-axes ``axis_a`` and ``axis_b`` (world vectors)."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + np.cos(angles)[:, None] * axis_a + np.sin(angles)[:, None] * axis_b
    uv, _ = cam.project(ring)
    if not np.all(np.isfinite(uv)):
        return None
    soft = max(2.0, 0.25 * float(np.ptp(uv[:, 1])))
    return Polygon(convex_hull(uv), np.zeros(3, np.float32), alpha=alpha, feather=soft)
