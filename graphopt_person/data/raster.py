"""2D primitives: anti-aliased polygons, capsules and ellipses drawn into a planar image.

The image is float32 ``(3, H, W)`` in [0, 1]; planar because per-channel work then runs over long
contiguous rows. An :class:`Item` is one object or person: its primitives in drawing order, its depth
for the painter's algorithm, its image bounds and its floor footprint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Capsule", "Ellipse", "Item", "Polygon", "Primitive", "convex_hull"]


def _bounds(x0: float, y0: float, x1: float, y1: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    if not all(math.isfinite(c) for c in (x0, y0, x1, y1)):
        return None
    c0, c1 = max(math.floor(x0), 0), min(math.ceil(x1), shape[1])
    r0, r1 = max(math.floor(y0), 0), min(math.ceil(y1), shape[0])
    if c0 >= c1 or r0 >= r1:
        return None
    return c0, r0, c1, r1


def _blend(image: np.ndarray, box: tuple[int, int, int, int], cover: np.ndarray, colour: np.ndarray) -> None:
    """Blends ``colour`` (``(3,)`` or broadcastable to ``(3, h, w)``) into a box of the planar image."""
    c0, r0, c1, r1 = box
    region = image[:, r0:r1, c0:c1]
    if colour.ndim == 1:
        colour = colour[:, None, None]
    region += cover * (colour - region)


@dataclass(frozen=True)
class Polygon:
    """A convex polygon; optional cylinder shading across ``u`` and vertical stripes of colours (books, fins)."""

    points: np.ndarray
    colour: np.ndarray
    alpha: float = 1.0
    feather: float = 1.0
    cylinder: tuple[float, float, float] | None = None  # (u centre, half width, strength)
    stripes: tuple[float, float, np.ndarray] | None = None  # (u origin, period px, (k, 3) colours)

    def draw(self, image: np.ndarray, light: tuple[float, float]) -> None:
        pts = self.points
        pad = self.feather + 1
        low, high = pts.min(axis=0), pts.max(axis=0)
        box = _bounds(low[0] - pad, low[1] - pad, high[0] + pad, high[1] + pad, image.shape[1:])
        if box is None:
            return
        x, y = pts[:, 0].tolist(), pts[:, 1].tolist()
        n = len(x)
        area = 0.5 * sum(x[k] * y[(k + 1) % n] - x[(k + 1) % n] * y[k] for k in range(n))
        if abs(area) < 1e-3:
            return
        sign = 1.0 if area > 0 else -1.0
        c0, r0, c1, r1 = box
        xs = np.arange(c0, c1, dtype=np.float32) + 0.5
        ys = (np.arange(r0, r1, dtype=np.float32) + 0.5)[:, None]
        inside: np.ndarray | None = None
        for k in range(n):
            ax, ay = x[k], y[k]
            ex, ey = x[(k + 1) % n] - ax, y[(k + 1) % n] - ay
            length = math.hypot(ex, ey)
            if length < 1e-6:
                continue
            scale = sign / length
            dist = (ys - ay) * (ex * scale) - (xs - ax) * (ey * scale)
            inside = dist if inside is None else np.minimum(inside, dist)
        if inside is None:
            return
        cover = np.clip(inside * (1.0 / self.feather) + 0.5, 0.0, 1.0)
        if self.alpha != 1.0:
            cover *= self.alpha
        colour: np.ndarray = self.colour
        if self.stripes is not None:
            origin, period, palette = self.stripes
            index = np.floor((xs - origin) / period).astype(np.int64) % len(palette)
            colour = palette[index].T[:, None, :]
        if self.cylinder is not None:
            centre, half, strength = self.cylinder
            s = np.clip((xs - centre) / max(half, 0.5), -1.0, 1.0)
            factor = 1.0 - strength + strength * (np.sqrt(1.0 - s * s) + 0.45 * s * light[0])
            colour = (colour if colour.ndim == 3 else colour[:, None, None]) * factor
        _blend(image, box, cover, colour)


@dataclass(frozen=True)
class Capsule:
    """A thick segment with soft edges and cylinder shading; the radius tapers from ``r0`` to ``r1``."""

    p0: tuple[float, float]
    p1: tuple[float, float]
    r0: float
    r1: float
    colour: np.ndarray
    shade: float = 0.3
    alpha: float = 1.0

    def draw(self, image: np.ndarray, light: tuple[float, float]) -> None:
        (x0, y0), (x1, y1) = self.p0, self.p1
        pad = max(self.r0, self.r1) + 1
        box = _bounds(min(x0, x1) - pad, min(y0, y1) - pad, max(x0, x1) + pad, max(y0, y1) + pad, image.shape[1:])
        if box is None:
            return
        c0, r0, c1, r1 = box
        xs = np.arange(c0, c1, dtype=np.float32) + (0.5 - x0)
        ys = (np.arange(r0, r1, dtype=np.float32) + (0.5 - y0))[:, None]
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        if length2 > 1e-9:
            t = np.clip(xs * (dx / length2) + ys * (dy / length2), 0.0, 1.0)
            px, py = xs - t * dx, ys - t * dy
            radius = self.r0 + (self.r1 - self.r0) * t
        else:
            px, py = xs + 0 * ys, ys + 0 * xs
            radius = np.full(px.shape, self.r0, dtype=np.float32)
        dist = np.sqrt(px * px + py * py)
        cover = np.clip(radius - dist + 0.5, 0.0, 1.0)
        if self.alpha != 1.0:
            cover *= self.alpha
        if length2 > 1e-9 and self.shade > 0:
            length = math.sqrt(length2)
            nx, ny = dy / length, -dx / length
            s = np.clip((px * nx + py * ny) / np.maximum(radius, 0.5), -1.0, 1.0)
            factor = 1.0 - self.shade + self.shade * (np.sqrt(1.0 - s * s) + 0.5 * s * (nx * light[0] + ny * light[1]))
            _blend(image, box, cover, self.colour[:, None, None] * factor)
        else:
            _blend(image, box, cover, self.colour)


@dataclass(frozen=True)
class Ellipse:
    """An axis-aligned ellipse with soft edges and sphere shading."""

    centre: tuple[float, float]
    radii: tuple[float, float]
    colour: np.ndarray
    shade: float = 0.3
    alpha: float = 1.0

    def draw(self, image: np.ndarray, light: tuple[float, float]) -> None:
        (cx, cy), (ax, ay) = self.centre, self.radii
        ax, ay = max(ax, 0.3), max(ay, 0.3)
        box = _bounds(cx - ax - 1, cy - ay - 1, cx + ax + 1, cy + ay + 1, image.shape[1:])
        if box is None:
            return
        c0, r0, c1, r1 = box
        nx = ((np.arange(c0, c1, dtype=np.float32) + 0.5 - cx) / ax)[None, :]
        ny = ((np.arange(r0, r1, dtype=np.float32) + 0.5 - cy) / ay)[:, None]
        d2 = nx * nx + ny * ny
        d = np.sqrt(d2)
        # Signed distance to the outline, to first order: (d - 1) / |grad d|.
        grad = np.sqrt((nx / ax) ** 2 + (ny / ay) ** 2) / np.maximum(d, 1e-6)
        cover = np.clip(0.5 - (d - 1.0) / np.maximum(grad, 1e-6), 0.0, 1.0)
        if self.alpha != 1.0:
            cover *= self.alpha
        if self.shade > 0:
            factor = (
                1.0
                - self.shade
                + self.shade * (np.sqrt(np.clip(1.0 - d2, 0.0, 1.0)) + 0.5 * (nx * light[0] + ny * light[1]))
            )
            _blend(image, box, cover, self.colour[:, None, None] * factor)
        else:
            _blend(image, box, cover, self.colour)


Primitive = Polygon | Capsule | Ellipse


@dataclass
class Item:
    """One object or person: its primitives in drawing order, depth for the painter, image bounds, floor footprint."""

    depth: float
    prims: list[Primitive]
    bbox: tuple[float, float, float, float]
    footprint: tuple[float, float, float, float] | None  # (x0, x1, y0, y1) on the floor

    def draw(self, image: np.ndarray, light: tuple[float, float]) -> None:
        for prim in self.prims:
            prim.draw(image, light)


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of 2D points, counter-clockwise."""
    pts = sorted({(float(p[0]), float(p[1])) for p in points})
    if len(pts) < 3:
        return np.array(pts)

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])
