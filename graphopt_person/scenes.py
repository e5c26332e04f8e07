"""Synthetic indoor scenes with people, for training and evaluating the person detector.

No real person data set is available, so the detector is trained and measured
on rendered frames. :func:`render_scene` draws one frame of the camera in a
:class:`~graphopt_person.spec.CameraSpec` from a seed:

* a room by per-pixel ray casting (floor, back wall, side walls, ceiling),
  textured from world coordinates so that perspective is right: tiles,
  planks, carpet or plain floors; paint, stripes, wainscoting, bricks or tiles
  on the walls; box-filtered so that far textures fade instead of aliasing;
* hard negatives in every frame: doors, windows, posters and radiators on the
  walls, furniture as shaded 3D boxes (tables, chairs, benches, cabinets,
  shelves of books), clutter (boxes, bins, balls), and tall thin verticals of
  about a person's height (poles, columns, pilasters, coat racks with coats,
  standing lamps, plants, roll-up banners);
* 0 to ``max_people`` articulated people standing on the floor, built in 3D
  around their floor point (walking or standing, facing any way, varied build
  and clothes) and drawn with anti-aliased capsules, ellipses and polygons;
  about one in six stands behind an object that hides the lower part;
* global lighting changes and sensor noise.

Everything is drawn far to near (painter's algorithm). Ground truth is the
standardized box :meth:`CameraSpec.person_box` of each person; every box lies
inside the frame with a height the detector's pyramid covers, and no two
boxes overlap much. The frame is a pure function of the seed, and the people
use their own random stream, so ``draw_people=False`` renders the identical
background.
"""

from __future__ import annotations

import colorsys
import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .spec import CameraSpec, DetectorConfig

__all__ = ["PersonInstance", "Scene", "generate_scenes", "render_scene", "scene_seeds"]

logger = logging.getLogger(__name__)

# First seed of each split; the ranges are disjoint for up to 1,000,000 scenes per split.
_SPLIT_BASES = {"train": 0, "test": 1_000_000, "validation": 2_000_000}
_SPLIT_SIZE = 1_000_000

_Z = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class PersonInstance:
    """One rendered person: where they stand, how tall they are, and their box.

    Attributes:
        x_m: floor position across the view (world metres).
        y_m: floor position along the view (world metres).
        height_m: body height.
        box: ``camera.person_box(x_m, y_m, height_m, box_aspect)``.
        visible_fraction: fraction of the box height not covered by an object
            standing in front (1.0 for an unoccluded person).
    """

    x_m: float
    y_m: float
    height_m: float
    box: tuple[float, float, float, float]
    visible_fraction: float


@dataclass(frozen=True, eq=False)
class Scene:
    """One rendered frame and its ground truth.

    Attributes:
        image: ``(frame_height, frame_width, 3)`` uint8 RGB.
        boxes: ``(N, 4)`` float32 ``(x0, y0, x1, y1)``, one row per person.
        persons: the people, in the order of ``boxes``.
        seed: the seed the frame was rendered from.
    """

    image: np.ndarray
    boxes: np.ndarray
    persons: tuple[PersonInstance, ...]
    seed: int


def scene_seeds(split: str, count: int) -> list[int]:
    """The seeds of the first ``count`` scenes of ``split`` (``"train"``, ``"validation"`` or ``"test"``); disjoint."""
    if split not in _SPLIT_BASES:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(_SPLIT_BASES)}")
    if not 0 <= count <= _SPLIT_SIZE:
        raise ValueError(f"count must be in [0, {_SPLIT_SIZE}], got {count}")
    base = _SPLIT_BASES[split]
    return list(range(base, base + count))


def generate_scenes(config: DetectorConfig, split: str, count: int) -> Iterator[Scene]:
    """The first ``count`` scenes of ``split``, rendered one at a time."""
    seeds = scene_seeds(split, count)
    logger.debug("rendering %d %s scenes", count, split)
    for seed in seeds:
        yield render_scene(config, seed)


def render_scene(config: DetectorConfig, seed: int, *, max_people: int = 4, draw_people: bool = True) -> Scene:
    """Renders the scene of ``seed``: a room with hard negatives and up to ``max_people`` people.

    Args:
        config: the frame size, box aspect and detectable heights come from
            ``config.detector``, the geometry from ``config.camera``.
        seed: the frame is a pure function of the seed (and the config).
        max_people: at most this many people; about one frame in eight has none.
        draw_people: ``False`` renders the identical frame without the people
            (and their shadows); the ground truth is still returned.
    """
    if max_people < 0:
        raise ValueError(f"max_people must be >= 0, got {max_people}")
    spec = config.detector
    camera = config.camera
    width, height = spec.frame_width, spec.frame_height
    rays = _rays(camera, width, height)
    room_seq, object_seq, people_seq, noise_seq = np.random.SeedSequence(seed).spawn(4)
    room_rng = np.random.default_rng(room_seq)
    object_rng = np.random.default_rng(object_seq)
    people_rng = np.random.default_rng(people_seq)
    noise_rng = np.random.default_rng(noise_seq)

    light_side = 1.0 if room_rng.random() < 0.5 else -1.0
    falloff = float(room_rng.uniform(0.1, 0.4))
    image, room = _render_room(room_rng, camera, rays, width, height, falloff)
    cam = _Cam(camera, width, height, light_side, falloff, room.back_y)

    people = _place_people(people_rng, cam, spec.box_aspect, spec.detectable_heights(), room, max_people)
    items: list[_Item] = []
    occluded: dict[int, float] = {}
    for index, person in enumerate(people):
        if people_rng.random() < 0.3:
            found = _place_occluder(people_rng, cam, person, people, items, room)
            if found is not None:
                items.append(found[0])
                occluded[index] = found[1]
    person_items = [_person_item(people_rng, cam, p.x_m, p.y_m, p.height_m) for p in people]

    wall_items = _wall_decor(object_rng, cam, room)
    items.extend(_furniture(object_rng, cam, room, people, items))

    for item in wall_items:
        item.draw(image, cam.light2d)
    scene_items = items + (person_items if draw_people else [])
    for item in sorted(scene_items, key=lambda it: -it.depth):
        item.draw(image, cam.light2d)

    frame = _finish(noise_rng, image, rays)
    persons = tuple(PersonInstance(p.x_m, p.y_m, p.height_m, p.box, occluded.get(i, 1.0)) for i, p in enumerate(people))
    boxes = np.array([p.box for p in persons], dtype=np.float32).reshape(-1, 4)
    return Scene(image=frame, boxes=boxes, persons=persons, seed=seed)


# ----------------------------------------------------------------------------------------------------------------
# Camera helpers


@dataclass(frozen=True)
class _Rays:
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
def _rays(camera: CameraSpec, width: int, height: int) -> _Rays:
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
    return _Rays(**arrays, focal=float(camera.focal_px[1]), shape=(height, width))


class _Cam:
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


# ----------------------------------------------------------------------------------------------------------------
# 2D primitives: anti-aliased polygons, capsules and ellipses drawn into a planar float32 (3, H, W) image in
# [0, 1]; planar because per-channel work then runs over long contiguous rows.


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
class _Polygon:
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
class _Capsule:
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
class _Ellipse:
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


_Prim = _Polygon | _Capsule | _Ellipse


@dataclass
class _Item:
    """One object or person: its primitives in drawing order, depth for the painter, image bounds, floor footprint."""

    depth: float
    prims: list[_Prim]
    bbox: tuple[float, float, float, float]
    footprint: tuple[float, float, float, float] | None  # (x0, x1, y0, y1) on the floor

    def draw(self, image: np.ndarray, light: tuple[float, float]) -> None:
        for prim in self.prims:
            prim.draw(image, light)


def _convex_hull(points: np.ndarray) -> np.ndarray:
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


class _Sketch:
    """Collects the primitives of one item from 3D parts, tracking image bounds and drawing order."""

    def __init__(self, cam: _Cam, dim: bool = True):
        self.cam = cam
        self.entries: list[tuple[float, _Prim]] = []
        self.u0 = self.v0 = math.inf
        self.u1 = self.v1 = -math.inf
        self.valid = True
        self.use_dim = dim

    def grow(self, uv: np.ndarray, pad: float = 0.0) -> bool:
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
        if self.use_dim:
            factor *= self.cam.dim(float(np.hypot(centre[0], centre[1])))
        return (colour * factor).astype(np.float32)

    def add(self, key: float, prim: _Prim) -> None:
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
        prim = _Polygon(uv, self.shade(colour, centre, factor), alpha=alpha, feather=feather, stripes=stripe_spec)
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
        hull = _convex_hull(uv)
        if len(hull) < 3:
            return
        centre = np.array([x, y, (z0 + z1) / 2])
        k = self._key(centre) if key is None else key
        half = (float(uv[:, 0].max()) - float(uv[:, 0].min())) / 2
        mid = (float(uv[:, 0].max()) + float(uv[:, 0].min())) / 2
        self.add(k, _Polygon(hull, self.shade(colour, centre), cylinder=(mid, half, 0.45)))
        if top is not None and z1 < self.cam.cam_height - 0.02:
            self.add(k, _Polygon(uv[segments:], self.shade(top, centre)))

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
        prim = _Capsule(
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
        prim = _Ellipse(
            (float(uv[0, 0]), float(uv[0, 1])),
            (rx * self.cam.fx / d, rz * self.cam.fy / d),
            self.shade(colour, np.asarray(centre)),
            shade=shade,
        )
        self.add(self._key(np.asarray(centre)) if key is None else key, prim)

    def item(
        self, depth: float, footprint: tuple[float, float, float, float] | None, *, ordered: bool = False
    ) -> _Item | None:
        if not self.valid or not self.entries:
            return None
        entries = self.entries if ordered else sorted(self.entries, key=lambda e: -e[0])
        return _Item(depth, [p for _, p in entries], (self.u0, self.v0, self.u1, self.v1), footprint)


# ----------------------------------------------------------------------------------------------------------------
# Colours


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)), dtype=np.float32)


def _paint(rng: np.random.Generator) -> np.ndarray:
    """Wall paint: mostly pale, sometimes strong."""
    if rng.random() < 0.7:
        return _hsv(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.65, 0.95))
    return _hsv(rng.random(), rng.uniform(0.2, 0.65), rng.uniform(0.35, 0.85))


def _cloth(rng: np.random.Generator) -> np.ndarray:
    """Clothing and furniture fabric: dark, light, or coloured."""
    kind = rng.random()
    if kind < 0.35:
        return _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.06, 0.3))
    if kind < 0.55:
        return _hsv(rng.random(), rng.uniform(0.0, 0.2), rng.uniform(0.72, 0.95))
    return _hsv(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.85))


def _wood(rng: np.random.Generator) -> np.ndarray:
    return _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.75))


def _material(rng: np.random.Generator) -> np.ndarray:
    """Furniture: wood, white, black, grey metal or a colour."""
    kind = rng.random()
    if kind < 0.35:
        return _wood(rng)
    if kind < 0.5:
        return _hsv(0, 0, rng.uniform(0.8, 0.95))
    if kind < 0.65:
        return _hsv(0, 0, rng.uniform(0.08, 0.2))
    if kind < 0.8:
        return _hsv(rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.1), rng.uniform(0.4, 0.7))
    return _cloth(rng)


_SKIN = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.92, 0.72, 0.58],
        [0.80, 0.58, 0.43],
        [0.63, 0.43, 0.30],
        [0.45, 0.29, 0.19],
        [0.30, 0.19, 0.12],
    ],
    dtype=np.float32,
)
_HAIR = np.array(
    [
        [0.05, 0.04, 0.04],
        [0.18, 0.12, 0.08],
        [0.38, 0.25, 0.13],
        [0.78, 0.66, 0.42],
        [0.62, 0.62, 0.62],
        [0.52, 0.24, 0.10],
    ],
    dtype=np.float32,
)


def _palette_pick(rng: np.random.Generator, palette: np.ndarray, weights: list[float]) -> np.ndarray:
    i = int(rng.choice(len(palette), p=np.array(weights) / sum(weights)))
    j = min(i + 1, len(palette) - 1)
    t = float(rng.random()) if i != j and rng.random() < 0.5 else 0.0
    colour = palette[i] * (1 - t) + palette[j] * t
    return (colour * rng.uniform(0.9, 1.08)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# The room, ray cast per pixel


@dataclass(frozen=True)
class _Room:
    back_y: float
    left_x: float
    right_x: float
    ceiling_z: float


def _hash(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """A deterministic pseudo-random value in [0, 1) per integer cell ``(i, j)``."""
    h = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663) ^ salt
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return (h & 0xFFFF).astype(np.float32) * (1.0 / 65536)


def _value_noise(grid: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smooth noise in [0, 1] at continuous coordinates (in grid cells), tiling the grid."""
    n = grid.shape[0]  # a power of two, so that & (n - 1) wraps negative cells too
    mask = n - 1
    fa, fb = np.floor(a), np.floor(b)
    ta, tb = a - fa, b - fb
    ta = ta * ta * (3 - 2 * ta)
    tb = tb * tb * (3 - 2 * tb)
    ia = fa.astype(np.int32) & mask
    ib = fb.astype(np.int32) & mask
    ia1, ib1 = (ia + 1) & mask, (ib + 1) & mask
    flat = grid.ravel()
    top = flat[ia * n + ib] * (1 - tb) + flat[ia * n + ib1] * tb
    bottom = flat[ia1 * n + ib] * (1 - tb) + flat[ia1 * n + ib1] * tb
    return top * (1 - ta) + bottom * ta


def _lines(coord: np.ndarray, period: float, width: float, footprint: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Box-filtered coverage of lines ``width`` wide every ``period`` for pixels ``footprint`` wide (world units)."""
    x = (coord - offset) * (1.0 / period)
    d = np.abs(x - np.round(x)) * period
    half_fp = 0.5 * footprint
    cover = np.clip((np.minimum(d + half_fp, width / 2) - np.maximum(d - half_fp, -width / 2)) / footprint, 0.0, 1.0)
    # Far away several lines fall in one pixel: tend to their mean coverage instead of to zero.
    return np.maximum(cover, (width / period) * np.clip(2 * footprint / period - 1, 0.0, 1.0))


def _fade(footprint: np.ndarray, feature: float) -> np.ndarray:
    """1 where a feature of this size is well resolved, 0 where a pixel covers it several times."""
    return np.clip(1.5 - footprint * (1.0 / feature), 0.0, 1.0)


def _mix(base: np.ndarray, other: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return base + weight * (other - base)


def _floor_texture(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray
) -> np.ndarray:
    """Floor colours at floor points ``(a, b)`` = (X, Y) with pixel footprints ``fa``, ``fb``."""
    kind = rng.choice(4, p=[0.3, 0.3, 0.2, 0.2])
    salt = int(rng.integers(1 << 30))
    grid = rng.random((32, 32)).astype(np.float32)
    if kind == 0:  # tiles
        size = float(rng.uniform(0.3, 0.8))
        grout = float(rng.uniform(0.004, 0.012))
        base = _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.35, 0.9))
        second = _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.1, 0.9)) if rng.random() < 0.3 else base
        grout_colour = base * rng.uniform(0.4, 0.8) if rng.random() < 0.7 else base * 0 + rng.uniform(0.7, 0.9)
        ia, ib = np.floor(a / size), np.floor(b / size)
        jitter = (_hash(ia, ib, salt) - 0.5) * float(rng.uniform(0.05, 0.25)) * _fade(np.maximum(fa, fb), size / 3)
        checker = ((ia + ib) % 2).astype(np.float32)
        colour = _mix(base[:, None], second[:, None], checker) * (1 + jitter)
        line = 1 - (1 - _lines(a, size, grout, fa)) * (1 - _lines(b, size, grout, fb))
        return _mix(colour, grout_colour.astype(np.float32)[:, None], line)
    if kind == 1:  # planks along a or b
        if rng.random() < 0.5:
            a, b, fa, fb = b, a, fb, fa
        width = float(rng.uniform(0.09, 0.25))
        length = float(rng.uniform(0.8, 2.2))
        base = _wood(rng) if rng.random() < 0.8 else _hsv(rng.random(), 0.1, rng.uniform(0.3, 0.8))
        row = np.floor(b / width)
        shift = _hash(row, row * 0 + 7, salt) * length
        col = np.floor((a + shift) / length)
        plank = (_hash(col, row, salt + 1) - 0.5) * float(rng.uniform(0.15, 0.4))
        grain = np.sin(b * (60.0 / width) + 3 * _value_noise(grid, a * 2.0, b * 8.0)) * 0.05 * _fade(fb, width / 8)
        colour = base[:, None] * (1 + (plank * _fade(np.maximum(fa, fb), width / 2) + grain))
        seam = 1 - (1 - _lines(b, width, 0.003, fb)) * (1 - _lines(a + shift, length, 0.003, fa))
        return colour * (1 - 0.5 * seam)
    if kind == 2:  # carpet
        base = _cloth(rng) if rng.random() < 0.6 else _hsv(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.2, 0.6))
        coarse = _value_noise(grid, a * 1.2, b * 1.2) - 0.5
        fine = (_value_noise(grid, a * 40.0, b * 40.0) - 0.5) * _fade(np.maximum(fa, fb), 0.025)
        return base[:, None] * (1 + 0.08 * coarse + 0.35 * fine)
    base = _hsv(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.3, 0.85))  # plain: linoleum, concrete
    noise = _value_noise(grid, a * 0.7, b * 0.7) - 0.5
    detail = (_value_noise(grid, a * 6.0, b * 6.0) - 0.5) * _fade(np.maximum(fa, fb), 0.15)
    colour = base[:, None] * (1 + 0.16 * noise + 0.1 * detail)
    if rng.random() < 0.4:
        slab = float(rng.uniform(1.0, 3.0))
        seam = 1 - (1 - _lines(a, slab, 0.01, fa)) * (1 - _lines(b, slab, 0.01, fb))
        colour = colour * (1 - 0.35 * seam)
    return colour


@dataclass(frozen=True)
class _WallStyle:
    kind: int
    base: np.ndarray
    second: np.ndarray
    period: float
    extent: float
    grid: np.ndarray
    salt: int
    baseboard: float
    baseboard_colour: np.ndarray
    horizontal: bool


def _wall_style(rng: np.random.Generator) -> _WallStyle:
    kind = int(rng.choice(5, p=[0.42, 0.13, 0.2, 0.13, 0.12]))
    base = _paint(rng)
    second = _paint(rng) if rng.random() < 0.6 else base * rng.uniform(0.6, 0.85)
    if kind == 3:  # brick
        if rng.random() < 0.7:
            base = _hsv(rng.uniform(0.0, 0.08), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7))
        second = base * 0 + rng.uniform(0.55, 0.85)
    period = {
        0: 1.0,
        1: rng.uniform(0.08, 0.6),
        2: rng.uniform(0.35, 0.8),
        3: rng.uniform(1.0, 1.6),
        4: rng.uniform(0.12, 0.3),
    }[kind]
    extent = float(rng.uniform(0.3, 0.7)) if kind == 1 else float(rng.uniform(0.8, 1.25))
    return _WallStyle(
        kind=kind,
        base=base.astype(np.float32),
        second=np.asarray(second, dtype=np.float32),
        period=float(period),
        extent=extent,
        grid=rng.random((32, 32)).astype(np.float32),
        salt=int(rng.integers(1 << 30)),
        baseboard=float(rng.uniform(0.06, 0.15)) if rng.random() < 0.7 else 0.0,
        baseboard_colour=_material(rng),
        horizontal=bool(rng.random() < 0.25),
    )


def _wall_texture(style: _WallStyle, a: np.ndarray, z: np.ndarray, fa: np.ndarray, fz: np.ndarray) -> np.ndarray:
    """Wall colours at wall points (``a`` along the wall, height ``z``)."""
    base = style.base[:, None]
    second = style.second[:, None]
    # Uneven paint: a cheap smooth pattern (value noise costs more and walls cover much of the frame).
    p = style.grid[0]
    noise = 1 + 0.03 * np.sin(a * (0.5 + p[0]) + 6 * p[1]) * np.sin(z * (0.8 + p[2]) + 6 * p[3])
    if style.kind == 1:  # stripes
        coord, foot = (z, fz) if style.horizontal else (a, fa)
        colour = _mix(base, second, _lines(coord, style.period, style.period * style.extent, foot))
    elif style.kind == 2:  # wainscoting: lower panels with vertical grooves, a rail on top
        low = np.clip((style.extent - z) / np.maximum(fz, 1e-4) + 0.5, 0.0, 1.0)
        grooves = _lines(a, style.period, 0.012, fa) * low
        rail = _lines(z, 1000.0, 0.05, fz, offset=style.extent)
        colour = _mix(base, second, low)
        colour = colour * (1 - 0.35 * grooves)
        colour = _mix(colour, second * 1.15, rail)
    elif style.kind == 3:  # brick
        course = 0.075 * style.period
        brick = 0.225 * style.period
        row = np.floor(z / course)
        shifted = a + (row % 2) * (brick / 2)
        col = np.floor(shifted / brick)
        jitter = (_hash(col, row, style.salt) - 0.5) * 0.3 * _fade(np.maximum(fa, fz), course)
        mortar = 1 - (1 - _lines(z, course, 0.01, fz)) * (1 - _lines(shifted, brick, 0.01, fa))
        colour = _mix(base * (1 + jitter), second, mortar)
    elif style.kind == 4:  # wall tiles up to a height, paint above
        low = np.clip((style.extent + 0.6 - z) / np.maximum(fz, 1e-4) + 0.5, 0.0, 1.0)
        grout = 1 - (1 - _lines(a, style.period, 0.004, fa)) * (1 - _lines(z, style.period, 0.004, fz))
        tiles = _mix(second, second * 0.7, grout)
        colour = _mix(base, tiles, low)
    else:
        colour = base
    colour = colour * noise
    if style.baseboard > 0:
        board = np.clip((style.baseboard - z) / np.maximum(fz, 1e-4) + 0.5, 0.0, 1.0)
        colour = _mix(colour, style.baseboard_colour[:, None], board)
    return colour


def _ceiling_texture(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray
) -> np.ndarray:
    n = len(a)
    base = _hsv(rng.random(), rng.uniform(0.0, 0.1), rng.uniform(0.6, 0.9))
    kind = rng.random()
    if kind < 0.15:
        return _hsv(rng.random(), 0.05, rng.uniform(0.1, 0.3))[:, None] * np.ones(n, np.float32)
    colour = base[:, None] * np.ones(n, np.float32)
    if kind < 0.6:
        size = 0.6
        salt = int(rng.integers(1 << 30))
        panel = (_hash(np.floor(a / size), np.floor(b / size), salt) < rng.uniform(0.05, 0.2)).astype(np.float32)
        colour = _mix(colour, np.full((3, 1), 1.3, dtype=np.float32), panel)
        grid = 1 - (1 - _lines(a, size, 0.015, fa)) * (1 - _lines(b, size, 0.015, fb))
        colour = colour * (1 - 0.3 * grid)
    return colour


def _render_room(
    rng: np.random.Generator, camera: CameraSpec, rays: _Rays, width: int, height: int, falloff: float
) -> tuple[np.ndarray, _Room]:
    h = camera.height_m
    back = float(rng.uniform(11.0, 16.0))
    if rng.random() < 0.4:  # corridor
        span = float(rng.uniform(3.0, 6.0))
        offset = float(rng.uniform(-0.2, 0.2)) * span
        left, right = -(span / 2 + offset), span / 2 - offset
    else:
        left, right = -float(rng.uniform(3.5, 9.0)), float(rng.uniform(3.5, 9.0))
    ceiling = max(float(rng.uniform(2.5, 3.6) if rng.random() < 0.85 else rng.uniform(4.5, 7.0)), h + 0.6)
    room = _Room(back, left, right, ceiling)

    t = rays.t_floor.copy()
    label = np.zeros(t.shape, dtype=np.int8)
    for k, tk in (
        (1, back * rays.inv_ry),
        (2, -left * rays.inv_rx_neg),
        (3, right * rays.inv_rx_pos),
        (4, (ceiling - h) * rays.inv_rz_pos),
    ):
        closer = tk < t
        np.copyto(t, tk, where=closer)
        np.copyto(label, np.int8(k), where=closer)

    image = np.empty((3, t.size), dtype=np.float32)
    pixel = rays.norm * (1.0 / rays.focal)  # ray length per unit t per pixel
    same_walls = rng.random() < 0.7
    back_style = _wall_style(rng)
    side_style = back_style if same_walls else _wall_style(rng)
    wall_light = rng.uniform(0.7, 1.05, size=3)
    wall_light[0] = rng.uniform(0.9, 1.05)
    wall_gradient = float(rng.uniform(-0.08, 0.12))
    floor_light = float(rng.uniform(0.8, 1.05))
    ceiling_light = float(rng.uniform(0.7, 1.0))
    for k in range(5):
        idx = np.flatnonzero(label == k)
        if idx.size == 0:
            continue
        tk = t[idx]
        rx, ry, rz = rays.rx[idx], rays.ry[idx], rays.rz[idx]
        foot = tk * pixel[idx]
        dist = tk * rays.norm[idx]
        x, y, z = tk * rx, tk * ry, h + tk * rz
        grazing_z = rays.norm[idx] / np.maximum(np.abs(rz), 1e-3)
        if k == 0:
            colour = _floor_texture(rng, x, y, foot, np.minimum(foot * grazing_z, 50.0))
            near_wall = np.minimum(np.minimum(back - y, x - left), right - x)
            shade = floor_light * (1 - falloff * np.minimum(dist / (1.3 * back), 1.0))
            shade = shade * (1 - 0.25 * np.exp(-near_wall * 4.0))
        elif k == 4:
            colour = _ceiling_texture(rng, x, y, foot, np.minimum(foot * grazing_z, 50.0))
            shade = ceiling_light * (1 - falloff * np.minimum(dist / (1.3 * back), 1.0))
        else:
            style = back_style if k == 1 else side_style
            if k == 1:
                a, fa = x, foot
            else:
                a, fa = y, np.minimum(foot * rays.norm[idx] / np.maximum(np.abs(rx), 1e-3), 50.0)
            colour = _wall_texture(style, a, z, fa, foot)
            shade = wall_light[k - 1] * (1 + wall_gradient * (z - 1.5))
            shade = shade * (1 - 0.5 * falloff * np.minimum(dist / (1.3 * back), 1.0))
            shade = shade * (1 - 0.22 * np.exp(-z * 5.0)) * (1 - 0.15 * np.exp(-(ceiling - z) * 5.0))
        colour = colour * shade
        for c in range(3):
            image[c, idx] = colour[c]
    return image.reshape(3, height, width), room


# ----------------------------------------------------------------------------------------------------------------
# People


@dataclass(frozen=True)
class _Placed:
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


def _place_people(
    rng: np.random.Generator, cam: _Cam, aspect: float, heights: tuple[float, float], room: _Room, max_people: int
) -> list[_Placed]:
    camera = cam.camera
    count = 0 if max_people == 0 or rng.random() < 0.12 else int(rng.integers(1, max_people + 1))
    low, high = heights[0] * 1.02, heights[1] * 0.98
    h_low, h_high = camera.person_height_m
    placed: list[_Placed] = []
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
                placed.append(_Placed(x, y, body, box))
                break
    return placed


def _limb(forward: np.ndarray, side: np.ndarray, flex: float, abduct: float) -> np.ndarray:
    """Direction of a limb hanging down, swung forward by ``flex`` and outward by ``abduct`` (radians)."""
    d = math.sin(flex) * math.cos(abduct) * forward + math.sin(abduct) * side - math.cos(flex) * math.cos(abduct) * _Z
    return d / np.linalg.norm(d)


def _bend(d: np.ndarray, toward: np.ndarray, angle: float) -> np.ndarray:
    """``d`` rotated by ``angle`` towards ``toward`` (in their common plane)."""
    t = toward - float(toward @ d) * d
    norm = float(np.linalg.norm(t))
    if norm < 1e-6:
        return d
    return math.cos(angle) * d + math.sin(angle) * t / norm


def _arm_pose(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """(flex, abduct, elbow, inward) of a standing person's arm."""
    kind = rng.choice(5, p=[0.6, 0.17, 0.1, 0.06, 0.07])
    if kind == 0:  # hanging at the side
        return float(rng.normal(0, 0.08)), float(rng.uniform(0.06, 0.2)), float(rng.uniform(0.05, 0.35)), 0.0
    if kind == 1:  # holding something in front
        return float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.05, 0.15)), float(rng.uniform(1.1, 1.6)), 0.4
    if kind == 2:  # hand in pocket
        return float(rng.uniform(-0.15, 0.0)), float(rng.uniform(0.12, 0.25)), float(rng.uniform(0.3, 0.6)), 0.7
    if kind == 3:  # hand on hip
        return -0.1, float(rng.uniform(0.45, 0.6)), float(rng.uniform(1.5, 1.8)), 1.3
    return 0.3, 0.35, float(rng.uniform(2.2, 2.5)), 0.6  # phone at the ear


def _person_item(rng: np.random.Generator, cam: _Cam, x: float, y: float, height: float) -> _Item:
    """An articulated person standing at floor point ``(x, y)``; the head top is at ``height``."""
    H = height
    build = float(rng.uniform(0.88, 1.18))
    female = bool(rng.random() < 0.45)
    view = np.array([x, y, 0.0]) / math.hypot(x, y)
    across = np.array([view[1], -view[0], 0.0])  # horizontal, perpendicular to the line of sight
    facing = int(rng.choice(4, p=[0.32, 0.25, 0.28, 0.15]))
    turn = [math.pi, 0.0, math.pi / 2, math.pi / 4][facing] * (1 if rng.random() < 0.5 else -1)
    if facing == 3 and rng.random() < 0.5:
        turn = math.copysign(3 * math.pi / 4, turn)
    yaw = math.atan2(view[1], view[0]) + turn + float(rng.normal(0, 0.2))
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])

    # Pose: (flex, abduct, knee) per leg, (flex, abduct, elbow, inward) per arm.
    if rng.random() < 0.5:
        amp = float(rng.uniform(0.18, 0.38))
        phase = float(rng.uniform(0, 2 * math.pi))
        knee = float(rng.uniform(0.3, 0.8))
        swing = math.sin(phase)
        legs = [
            (amp * swing, 0.02, 0.05 + knee * max(0.0, math.cos(phase))),
            (-amp * swing, 0.02, 0.05 + knee * max(0.0, -math.cos(phase))),
        ]
        arm_amp = 0.8 * amp * float(rng.uniform(0.6, 1.2))
        elbow = float(rng.uniform(0.15, 0.5))
        arms = [
            (-arm_amp * swing, 0.08, elbow + 0.3 * max(0.0, -swing), 0.1),
            (arm_amp * swing, 0.08, elbow + 0.3 * max(0.0, swing), 0.1),
        ]
    else:
        spread = float(rng.uniform(0.0, 0.1))
        legs = [(float(rng.normal(0, 0.08)), spread, float(rng.uniform(0, 0.12))) for _ in range(2)]
        arms = [_arm_pose(rng) for _ in range(2)]

    # Clothes and colours.
    skin = _palette_pick(rng, _SKIN, [1, 1, 1, 1, 1, 1])
    hair = _palette_pick(rng, _HAIR, [3, 3, 2, 1.5, 1, 0.5])
    top = _cloth(rng)
    bottom = (
        _cloth(rng)
        if rng.random() < 0.85
        else _hsv(rng.uniform(0.58, 0.64), rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.5))
    )  # jeans
    shoes = _hsv(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.05, 0.3)) if rng.random() < 0.75 else _cloth(rng)
    lower = "trousers"
    if female and rng.random() < 0.5:
        lower = "dress" if rng.random() < 0.5 else "skirt"
    elif rng.random() < 0.1:
        lower = "shorts"
    if lower == "dress":
        bottom = top
    sleeves = ["long", "short", "none"][int(rng.choice(3, p=[0.55, 0.35, 0.1]))]
    jacket = _cloth(rng) if rng.random() < 0.25 else None
    tucked = bool(rng.random() < 0.3) and lower != "dress"
    hair_style = ["short", "long", "bald"][int(rng.choice(3, p=[0.35, 0.6, 0.05] if female else [0.8, 0.08, 0.12]))]
    backpack = _cloth(rng) if rng.random() < 0.12 else None
    legwear = skin if rng.random() < 0.6 else _cloth(rng) * 0.6
    light = float(rng.uniform(0.85, 1.1))
    hem = float(rng.uniform(0.27, 0.42)) * H
    flare = float(rng.uniform(0.01, 0.06)) * H

    sketch = _Sketch(cam)
    base = np.array([x, y, 0.0])

    def depth_of(p: np.ndarray) -> float:
        return float(p[0] * view[0] + p[1] * view[1])

    # Joints, with the standing surface at z = 0 fixed after the legs are known.
    shoulder_half = (0.1 if female else 0.11) * H * build
    hip_half = 0.052 * H * build * (1.1 if female else 1.0)
    pelvis = base + 0.52 * H * _Z
    joints: list[tuple[np.ndarray, ...]] = []
    for k, (flex, abduct, knee) in enumerate(legs):
        side = right if k else -right
        hip = pelvis + hip_half * side
        thigh = _limb(fwd, side, flex, abduct)
        knee_p = hip + 0.245 * H * thigh
        ankle = knee_p + 0.235 * H * _bend(thigh, -fwd, knee)
        toe_dir = fwd + 0.15 * side
        toe_dir = toe_dir / np.linalg.norm(toe_dir)
        heel = ankle - 0.025 * H * fwd - 0.028 * H * _Z
        toe = ankle + 0.1 * H * toe_dir - 0.03 * H * _Z
        joints.append((hip, knee_p, ankle, heel, toe))
    ground = min(min(float(j[3][2]) - 0.022 * H, float(j[4][2]) - 0.02 * H) for j in joints)
    lift = -ground * _Z  # moves the shoes onto the floor (bent knees lower the body a little)
    joints = [tuple(p + lift for p in j) for j in joints]

    def at(z_frac: float) -> np.ndarray:
        return base + (z_frac * H - ground) * _Z

    def cap(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, colour: np.ndarray, bias: float) -> None:
        sketch.stick(p0, p1, r0, r1, colour * light, key=depth_of((p0 + p1) / 2) + bias, shade=0.35)

    def torso_quad(
        z_top: float,
        a_top: float,
        c_top: float,
        z_bot: float,
        a_bot: float,
        c_bot: float,
        colour: np.ndarray,
        bias: float,
        centre_shift: np.ndarray | None = None,
    ) -> None:
        def half(a: float, c: float) -> float:
            return math.hypot(a * float(right @ across), c * float(fwd @ across))

        shift = np.zeros(3) if centre_shift is None else centre_shift
        ct, cb = at(z_top) + shift, at(z_bot) + shift
        ht, hb = half(a_top, c_top), half(a_bot, c_bot)
        corners = np.array([ct - ht * across, ct + ht * across, cb + hb * across, cb - hb * across])
        uv, _ = cam.project(corners)
        if not sketch.grow(uv):
            return
        mid = float(uv[:, 0].mean())
        halfw = float(uv[:, 0].max() - uv[:, 0].min()) / 2
        colour = sketch.shade(colour * light, (ct + cb) / 2)
        sketch.add(depth_of((ct + cb) / 2) + bias, _Polygon(uv, colour, cylinder=(mid, halfw, 0.35)))

    shadow = _shadow(cam, base, 0.165 * H * right, 0.13 * H * fwd, 0.35)
    if shadow is not None:
        sketch.add(depth_of(base) + 10.0, shadow)

    # Legs, feet and lower garment.
    skirt_like = lower in ("dress", "skirt")
    for hip, knee_p, ankle, heel, toe in joints:
        thigh_colour = legwear if skirt_like else bottom
        shin_colour = legwear if lower in ("dress", "skirt", "shorts") else bottom
        loose = 1.1 if lower == "trousers" else 1.0
        bias = 0.5 if skirt_like else 0.02
        cap(hip, knee_p, 0.05 * H * build * loose, 0.035 * H * build * loose, thigh_colour, bias)
        cap(knee_p, ankle, 0.034 * H * build * loose, 0.024 * H * build, shin_colour, bias)
        cap(heel, toe, 0.022 * H, 0.02 * H, shoes, 0.02)
    chest_a, waist_a, hip_a = shoulder_half + 0.01 * H, 0.09 * H * build, (0.11 if female else 0.1) * H * build
    shirt = top if jacket is None else jacket
    hip_colour = bottom if (tucked or lower == "dress") else shirt
    torso_quad(0.815, chest_a, 0.055 * H, 0.6, waist_a, 0.06 * H, shirt, 0.0)
    torso_quad(0.62, waist_a, 0.06 * H, 0.47 if lower != "dress" else 0.55, hip_a, 0.065 * H, hip_colour, 0.001)
    if tucked and rng.random() < 0.6:
        torso_quad(0.55, waist_a * 1.05, 0.062 * H, 0.53, hip_a * 1.02, 0.065 * H, _cloth(rng) * 0.5, -0.001)
    if skirt_like:
        torso_quad(0.56, hip_a, 0.065 * H, hem / H, hip_a + flare, 0.07 * H + flare, bottom, 0.0)
    if jacket is not None and float(fwd @ view) < -0.5:  # open jacket: the shirt shows in front
        torso_quad(0.8, chest_a * 0.3, 0.0, 0.5, chest_a * 0.25, 0.0, top, -0.002, centre_shift=0.06 * H * fwd)
    shoulders = [at(0.795) - (shoulder_half - 0.01 * H) * right, at(0.795) + (shoulder_half - 0.01 * H) * right]
    cap(shoulders[0], shoulders[1], 0.028 * H * build, 0.028 * H * build, shirt, -0.001)
    # The slope from the shoulders up to the neck (trapezius) gives the head-and-shoulders outline.
    torso_quad(0.855, 0.045 * H * build, 0.04 * H, 0.79, shoulder_half * 0.92, 0.05 * H, shirt, -0.0015)
    if backpack is not None:
        pack = at(0.66) - 0.09 * H * fwd
        cap(pack + 0.07 * H * _Z, pack - 0.06 * H * _Z, 0.075 * H, 0.08 * H, backpack, 0.0)

    # Arms.
    for k, (flex, abduct, elbow, inward) in enumerate(arms):
        side = right if k else -right
        shoulder = at(0.805) + (shoulder_half - 0.015 * H) * side
        upper = _limb(fwd, side, flex, abduct)
        elbow_p = shoulder + 0.18 * H * upper
        toward = fwd * math.cos(inward) - side * math.sin(inward)
        fore = _bend(upper, toward, elbow)
        wrist = elbow_p + 0.15 * H * fore
        hand = wrist + 0.075 * H * _bend(fore, toward, 0.15)
        sleeve = shirt if sleeves != "none" else skin
        lower_sleeve = shirt if sleeves == "long" else skin
        cap(shoulder, elbow_p, 0.033 * H * build, 0.028 * H * build, sleeve, -0.01)
        cap(elbow_p, wrist, 0.026 * H * build, 0.02 * H * build, lower_sleeve, -0.011)
        cap(wrist, hand, 0.018 * H, 0.016 * H, skin, -0.012)

    # Neck, head, hair.
    cap(at(0.82), at(0.885), 0.033 * H * build, 0.03 * H * build, skin, -0.2)
    head = at(0.935)
    radii = (0.047 * H, 0.064 * H)
    face_c = head + 0.012 * H * fwd - 0.004 * H * _Z
    hair_c = head - 0.012 * H * fwd + 0.009 * H * _Z
    if hair_style == "long":
        cap(head - 0.025 * H * fwd, at(0.79) - 0.045 * H * fwd, 0.045 * H, 0.05 * H, hair, 0.0)
    sketch.blob(face_c, radii[0] * 0.97, radii[1] * 0.97, skin * light, key=depth_of(face_c) - 0.25, shade=0.3)
    if hair_style != "bald":
        sketch.blob(hair_c, radii[0] * 1.05, radii[1] * 1.0, hair * light, key=depth_of(hair_c) - 0.25, shade=0.3)
    return sketch.item(y, None) or _Item(y, [], (0, 0, 0, 0), None)


# ----------------------------------------------------------------------------------------------------------------
# Objects: occluders, furniture and tall verticals on the floor; doors, windows and posters on the walls


def _occludes(item: _Item, people: list[_Placed], skip: int = -1) -> bool:
    """Whether ``item`` would stand in front of (or inside) any person other than ``skip``."""
    u0, v0, u1, v1 = item.bbox
    fp = item.footprint
    for i, p in enumerate(people):
        if i == skip:
            continue
        if fp is not None and fp[0] - 0.35 < p.x_m < fp[1] + 0.35 and fp[2] - 0.35 < p.y_m < fp[3] + 0.35:
            return True
        x0, y0, x1, y1 = p.box
        overlap = u0 < x1 + 1 and u1 > x0 - 1 and v0 < y1 + 1 and v1 > y0 - 1
        if overlap and (fp is None or fp[2] < p.y_m + 0.35):
            return True
    return False


def _collides(fp: tuple[float, float, float, float], items: list[_Item], room: _Room) -> bool:
    if fp[0] < room.left_x + 0.02 or fp[1] > room.right_x - 0.02 or fp[3] > room.back_y - 0.01 or fp[2] < 0.8:
        return True
    for item in items:
        if item.footprint is None:
            continue
        o = item.footprint
        if fp[0] < o[1] + 0.05 and fp[1] > o[0] - 0.05 and fp[2] < o[3] + 0.05 and fp[3] > o[2] - 0.05:
            return True
    return False


def _table(rng: np.random.Generator, cam: _Cam, x: float, y: float, scale: float = 1.0) -> _Item | None:
    w, d = float(rng.uniform(0.8, 1.8)), float(rng.uniform(0.6, 1.0))
    if rng.random() < 0.3:
        w, d = d, w
    h = float(rng.uniform(0.7, 0.78)) * scale
    thick = float(rng.uniform(0.03, 0.06))
    colour = _material(rng)
    leg_colour = colour if rng.random() < 0.6 else _material(rng)
    leg = float(rng.uniform(0.025, 0.05))
    s = _Sketch(cam)
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    for lx in (x0 + 0.04, x1 - 0.04 - leg):
        for ly in (y0 + 0.04, y1 - 0.04 - leg):
            s.box(lx, lx + leg, ly, ly + leg, 0.0, h - thick, leg_colour)
    s.box(x0, x1, y0, y1, h - thick, h, colour)
    for _ in range(int(rng.integers(0, 3))):  # things on the table
        ox, oy = float(rng.uniform(x0 + 0.15, x1 - 0.15)), float(rng.uniform(y0 + 0.1, y1 - 0.1))
        size = float(rng.uniform(0.06, 0.3))
        if rng.random() < 0.5:
            s.cylinder(ox, oy, size / 3, size / 3, h, h + size, _cloth(rng), top=_cloth(rng) * 0.5)
        else:
            s.box(ox - size / 2, ox + size / 2, oy - size / 3, oy + size / 3, h, h + size * 0.6, _cloth(rng))
    return s.item(y, (x0, x1, y0, y1))


def _chair(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    seat = float(rng.uniform(0.4, 0.5))
    z = float(rng.uniform(0.42, 0.48))
    colour = _material(rng)
    frame = colour if rng.random() < 0.5 else _material(rng)
    s = _Sketch(cam)
    x0, x1, y0, y1 = x - seat / 2, x + seat / 2, y - seat / 2, y + seat / 2
    if rng.random() < 0.3:  # office chair on a column
        hub = np.array([x, y, 0.07])
        for k in range(5):
            a = k * 2 * math.pi / 5 + 0.3
            s.stick(hub, np.array([x + 0.28 * math.cos(a), y + 0.28 * math.sin(a), 0.03]), 0.02, 0.02, frame * 0.6)
        s.cylinder(x, y, 0.025, 0.025, 0.05, z - 0.05, frame * 0.6)
    else:
        leg = 0.03
        for lx in (x0, x1 - leg):
            for ly in (y0, y1 - leg):
                s.box(lx, lx + leg, ly, ly + leg, 0.0, z - 0.04, frame)
    s.box(x0, x1, y0, y1, z - 0.05, z, colour)
    back = float(rng.uniform(0.35, 0.5))
    side = int(rng.integers(4))
    t = 0.035
    if side == 0:
        s.box(x0, x1, y1 - t, y1, z, z + back, colour)
    elif side == 1:
        s.box(x0, x1, y0, y0 + t, z, z + back, colour)
    elif side == 2:
        s.box(x0, x0 + t, y0, y1, z, z + back, colour)
    else:
        s.box(x1 - t, x1, y0, y1, z, z + back, colour)
    return s.item(y, (x0, x1, y0, y1))


def _bench(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    length, depth = float(rng.uniform(1.2, 2.2)), float(rng.uniform(0.35, 0.5))
    along_x = rng.random() < 0.7
    w, d = (length, depth) if along_x else (depth, length)
    z = float(rng.uniform(0.42, 0.48))
    colour, frame = _material(rng), _material(rng)
    s = _Sketch(cam)
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    if along_x:
        for lx in (x0 + 0.05, x1 - 0.11):
            s.box(lx, lx + 0.06, y0 + 0.03, y1 - 0.03, 0.0, z - 0.05, frame)
    else:
        for ly in (y0 + 0.05, y1 - 0.11):
            s.box(x0 + 0.03, x1 - 0.03, ly, ly + 0.06, 0.0, z - 0.05, frame)
    s.box(x0, x1, y0, y1, z - 0.05, z, colour)
    return s.item(y, (x0, x1, y0, y1))


def _boxes(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    s = _Sketch(cam)
    cardboard = _hsv(rng.uniform(0.07, 0.1), rng.uniform(0.35, 0.6), rng.uniform(0.45, 0.75))
    colour = cardboard if rng.random() < 0.6 else _material(rng)
    w, d, h = (float(v) for v in rng.uniform(0.3, 0.7, size=3))
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    s.box(x0, x1, y0, y1, 0.0, h, colour)
    if rng.random() < 0.4:
        w2, d2, h2 = w * float(rng.uniform(0.6, 0.95)), d * float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.2, 0.5))
        s.box(x - w2 / 2, x + w2 / 2, y - d2 / 2, y + d2 / 2, h, h + h2, colour * float(rng.uniform(0.85, 1.1)))
    return s.item(y, (x0, x1, y0, y1))


def _bin(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    r, h = float(rng.uniform(0.15, 0.3)), float(rng.uniform(0.4, 0.9))
    s = _Sketch(cam)
    colour = _material(rng)
    s.cylinder(x, y, r * float(rng.uniform(0.8, 1.0)), r, 0.0, h, colour, top=colour * 0.3)
    return s.item(y, (x - r, x + r, y - r, y + r))


def _ball(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    r = float(rng.uniform(0.1, 0.35))
    s = _Sketch(cam)
    s.blob(np.array([x, y, r]), r, r, _hsv(rng.random(), rng.uniform(0.5, 1), rng.uniform(0.4, 0.95)), shade=0.5)
    return s.item(y, (x - r, x + r, y - r, y + r))


def _pole(rng: np.random.Generator, cam: _Cam, x: float, y: float, room: _Room) -> _Item | None:
    r = float(rng.uniform(0.02, 0.07))
    to_ceiling = rng.random() < 0.5
    h = room.ceiling_z if to_ceiling else float(rng.uniform(1.3, 2.3))
    colour = _material(rng) if rng.random() < 0.6 else _hsv(rng.random(), rng.uniform(0.6, 1), rng.uniform(0.5, 0.9))
    s = _Sketch(cam)
    s.cylinder(x, y, r, r, 0.0, h, colour, top=colour, segments=8)
    if not to_ceiling:
        if rng.random() < 0.5:  # a sign on top
            w, sh = float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.3, 0.6))
            s.quad(
                np.array(
                    [
                        [x - w / 2, y - r, h],
                        [x + w / 2, y - r, h],
                        [x + w / 2, y - r, h + sh],
                        [x - w / 2, y - r, h + sh],
                    ]
                ),
                _cloth(rng),
            )
        else:  # a heavy base
            s.cylinder(x, y, 0.18, 0.16, 0.0, 0.04, colour * 0.8, top=colour * 0.9)
    return s.item(y, (x - 0.2, x + 0.2, y - 0.2, y + 0.2))


def _column(rng: np.random.Generator, cam: _Cam, x: float, y: float, room: _Room) -> _Item | None:
    colour = _paint(rng) if rng.random() < 0.7 else _hsv(0, 0, rng.uniform(0.4, 0.7))
    s = _Sketch(cam)
    if rng.random() < 0.5:
        r = float(rng.uniform(0.15, 0.35))
        s.cylinder(x, y, r, r, 0.0, room.ceiling_z, colour, segments=20)
        return s.item(y, (x - r, x + r, y - r, y + r))
    w = float(rng.uniform(0.15, 0.3))
    s.box(x - w, x + w, y - w, y + w, 0.0, room.ceiling_z, colour)
    return s.item(y, (x - w, x + w, y - w, y + w))


def _coat_rack(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    h = float(rng.uniform(1.65, 1.9))
    colour = _material(rng)
    s = _Sketch(cam)
    s.cylinder(x, y, 0.2, 0.2, 0.0, 0.03, colour, top=colour)
    s.cylinder(x, y, 0.02, 0.02, 0.03, h, colour, segments=8)
    for k in range(4):
        a = k * math.pi / 2 + 0.3
        tip = np.array([x + 0.14 * math.cos(a), y + 0.14 * math.sin(a), h - 0.02])
        s.stick(np.array([x, y, h - 0.12]), tip, 0.012, 0.012, colour)
    for _ in range(int(rng.integers(0, 4))):  # coats hanging from the hooks
        a = float(rng.uniform(0, 2 * math.pi))
        cx, cy = x + 0.12 * math.cos(a), y + 0.12 * math.sin(a)
        length = float(rng.uniform(0.6, 1.1))
        top_w, bottom_w = float(rng.uniform(0.12, 0.2)), float(rng.uniform(0.2, 0.3))
        cy = max(cy, y - 0.1)
        coat = _cloth(rng)
        z0 = h - 0.05
        s.quad(
            np.array(
                [
                    [cx - top_w, cy, z0],
                    [cx + top_w, cy, z0],
                    [cx + bottom_w, cy, z0 - length],
                    [cx - bottom_w, cy, z0 - length],
                ]
            ),
            coat,
        )
    return s.item(y, (x - 0.3, x + 0.3, y - 0.3, y + 0.3))


def _lamp(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    h = float(rng.uniform(1.4, 1.85))
    colour = _material(rng)
    shade_colour = _hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.8, 1.0)) * float(rng.uniform(1.0, 1.3))
    s = _Sketch(cam)
    s.cylinder(x, y, 0.16, 0.14, 0.0, 0.03, colour, top=colour)
    s.cylinder(x, y, 0.015, 0.015, 0.03, h, colour, segments=8)
    top_r = float(rng.uniform(0.1, 0.16))
    s.cylinder(
        x, y, top_r * 1.5, top_r, h - 0.05, h + float(rng.uniform(0.2, 0.35)), shade_colour, top=shade_colour, key=0.0
    )
    return s.item(y, (x - 0.25, x + 0.25, y - 0.25, y + 0.25))


def _plant(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    s = _Sketch(cam)
    stand = float(rng.uniform(0.0, 0.8)) if rng.random() < 0.6 else 0.0
    if stand > 0:
        s.box(x - 0.15, x + 0.15, y - 0.15, y + 0.15, 0.0, stand, _material(rng))
    pot_h = float(rng.uniform(0.2, 0.4))
    pot = _material(rng)
    s.cylinder(x, y, 0.11, 0.15, stand, stand + pot_h, pot, top=_hsv(0.08, 0.5, 0.2))
    tall = float(rng.uniform(0.3, 1.3))
    green = _hsv(rng.uniform(0.22, 0.4), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.55))
    base = np.array([x, y, stand + pot_h])
    s.stick(base, base + tall * _Z, 0.015, 0.01, _hsv(0.08, 0.5, 0.3), key=1e3)
    for _ in range(int(rng.integers(8, 18))):
        offset = rng.normal(0, [0.16, 0.1, 0.18]) + np.array([0, 0, tall * float(rng.uniform(0.4, 1.0))])
        size = float(rng.uniform(0.05, 0.14))
        s.blob(base + offset, size, size * float(rng.uniform(0.5, 1.5)), green * float(rng.uniform(0.7, 1.3)))
    return s.item(y, (x - 0.25, x + 0.25, y - 0.25, y + 0.25))


def _banner(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    w, h = float(rng.uniform(0.6, 1.0)), float(rng.uniform(1.6, 2.1))
    s = _Sketch(cam)
    s.box(x - w / 2 - 0.03, x + w / 2 + 0.03, y - 0.1, y + 0.1, 0.0, 0.08, _hsv(0, 0, rng.uniform(0.2, 0.8)))
    background = _cloth(rng)
    s.quad(
        np.array([[x - w / 2, y, 0.08], [x + w / 2, y, 0.08], [x + w / 2, y, h], [x - w / 2, y, h]]),
        background,
        key=2.0,
    )
    z = 0.2
    for k in range(int(rng.integers(2, 5))):
        bh = float(rng.uniform(0.1, 0.45))
        if z + bh > h - 0.05:
            break
        inset = float(rng.uniform(0.03, 0.2)) * w
        s.quad(
            np.array(
                [
                    [x - w / 2 + inset, y - 0.005, z],
                    [x + w / 2 - inset, y - 0.005, z],
                    [x + w / 2 - inset, y - 0.005, z + bh],
                    [x - w / 2 + inset, y - 0.005, z + bh],
                ]
            ),
            _cloth(rng),
            key=1.0 - 0.01 * k,
        )
        z += bh + float(rng.uniform(0.05, 0.2))
    return s.item(y, (x - w / 2, x + w / 2, y - 0.1, y + 0.1))


def _cabinet(rng: np.random.Generator, cam: _Cam, room: _Room, x: float, wall: int) -> _Item | None:
    """A cabinet or bookshelf against the back wall (``wall`` 0) or a side wall (1 left, 2 right, ``x`` is y)."""
    w, d = float(rng.uniform(0.5, 1.3)), float(rng.uniform(0.3, 0.55))
    h = float(rng.uniform(0.8, 2.1))
    colour = _material(rng)
    s = _Sketch(cam)
    shelf = rng.random() < 0.5
    if wall == 0:
        x0, x1, y1 = x - w / 2, x + w / 2, room.back_y - 0.01
        y0 = y1 - d
        s.box(x0, x1, y0, y1, 0.0, h, colour, key=10.0)
        yf = y0 - 0.003
        if shelf:
            inner = colour * 0.35
            levels = max(2, int(h / 0.38))
            step = (h - 0.1) / levels
            for k in range(levels):
                zb = 0.06 + k * step + 0.02
                zt = zb + step - 0.04
                s.quad(
                    np.array([[x0 + 0.03, yf, zb], [x1 - 0.03, yf, zb], [x1 - 0.03, yf, zt], [x0 + 0.03, yf, zt]]),
                    inner,
                    key=5.0 - 0.1 * k,
                )
                fill = float(rng.uniform(0.3, 1.0))
                top = zb + (zt - zb) * float(rng.uniform(0.6, 0.9))
                books = np.stack([_cloth(rng) for _ in range(7)])
                xr = x0 + 0.03 + (w - 0.06) * fill
                s.quad(
                    np.array(
                        [
                            [x0 + 0.03, yf - 0.002, zb],
                            [xr, yf - 0.002, zb],
                            [xr, yf - 0.002, top],
                            [x0 + 0.03, yf - 0.002, top],
                        ]
                    ),
                    books[0],
                    key=4.0 - 0.1 * k,
                    stripes=(float(rng.uniform(0.025, 0.05)), books),
                )
        else:
            doors = 2 if w > 0.8 else 1
            for k in range(doors):
                dx0 = x0 + k * w / doors + 0.01
                dx1 = x0 + (k + 1) * w / doors - 0.01
                s.quad(
                    np.array([[dx0, yf, 0.08], [dx1, yf, 0.08], [dx1, yf, h - 0.02], [dx0, yf, h - 0.02]]),
                    colour * 0.95,
                    key=5.0,
                )
                hx = dx1 - 0.05 if k == 0 else dx0 + 0.03
                s.quad(
                    np.array(
                        [
                            [hx, yf - 0.01, h / 2 - 0.1],
                            [hx + 0.02, yf - 0.01, h / 2 - 0.1],
                            [hx + 0.02, yf - 0.01, h / 2 + 0.1],
                            [hx, yf - 0.01, h / 2 + 0.1],
                        ]
                    ),
                    _hsv(0, 0, 0.3),
                    key=4.0,
                )
        return s.item(y0 + d / 2, (x0, x1, y0, y1), ordered=True)
    y0, y1 = x - w / 2, x + w / 2
    if wall == 1:
        xw0, xw1 = room.left_x + 0.01, room.left_x + 0.01 + d
        xf = xw1 + 0.003
    else:
        xw0, xw1 = room.right_x - 0.01 - d, room.right_x - 0.01
        xf = xw0 - 0.003
    s.box(xw0, xw1, y0, y1, 0.0, h, colour, key=10.0)
    split = (y0 + y1) / 2
    s.quad(
        np.array(
            [
                [xf, split - 0.005, 0.08],
                [xf, split + 0.005, 0.08],
                [xf, split + 0.005, h - 0.02],
                [xf, split - 0.005, h - 0.02],
            ]
        ),
        colour * 0.4,
        key=5.0,
    )
    return s.item(x, (xw0, xw1, y0, y1), ordered=True)


def _pilaster(rng: np.random.Generator, cam: _Cam, room: _Room, x: float) -> _Item | None:
    w, d = float(rng.uniform(0.25, 0.6)), float(rng.uniform(0.08, 0.3))
    s = _Sketch(cam)
    y1 = room.back_y - 0.005
    s.box(
        x - w / 2,
        x + w / 2,
        y1 - d,
        y1,
        0.0,
        room.ceiling_z,
        _paint(rng) if rng.random() < 0.5 else _hsv(0, 0, rng.uniform(0.5, 0.9)),
    )
    return s.item(y1 - d / 2, (x - w / 2, x + w / 2, y1 - d, y1))


def _shadow(cam: _Cam, centre: np.ndarray, axis_a: np.ndarray, axis_b: np.ndarray, alpha: float) -> _Polygon | None:
    """A soft dark ellipse on the floor around ``centre`` with half-axes ``axis_a`` and ``axis_b`` (world vectors)."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + np.cos(angles)[:, None] * axis_a + np.sin(angles)[:, None] * axis_b
    uv, _ = cam.project(ring)
    if not np.all(np.isfinite(uv)):
        return None
    soft = max(2.0, 0.25 * float(np.ptp(uv[:, 1])))
    return _Polygon(_convex_hull(uv), np.zeros(3, np.float32), alpha=alpha, feather=soft)


def _free_object(rng: np.random.Generator, cam: _Cam, room: _Room, kind: str, x: float, y: float) -> _Item | None:
    item = _build_object(rng, cam, room, kind, x, y)
    if item is not None and item.footprint is not None:
        x0, x1, y0, y1 = item.footprint
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
        half_x, half_y = 0.6 * (x1 - x0) + 0.03, 0.6 * (y1 - y0) + 0.03
        shadow = _shadow(cam, centre, np.array([half_x, 0.0, 0.0]), np.array([0.0, half_y, 0.0]), 0.3)
        if shadow is not None:
            item.prims.insert(0, shadow)
    return item


def _build_object(rng: np.random.Generator, cam: _Cam, room: _Room, kind: str, x: float, y: float) -> _Item | None:
    if kind == "table":
        return _table(rng, cam, x, y)
    if kind == "chair":
        return _chair(rng, cam, x, y)
    if kind == "bench":
        return _bench(rng, cam, x, y)
    if kind == "boxes":
        return _boxes(rng, cam, x, y)
    if kind == "bin":
        return _bin(rng, cam, x, y)
    if kind == "ball":
        return _ball(rng, cam, x, y)
    if kind == "pole":
        return _pole(rng, cam, x, y, room)
    if kind == "column":
        return _column(rng, cam, x, y, room)
    if kind == "coat_rack":
        return _coat_rack(rng, cam, x, y)
    if kind == "lamp":
        return _lamp(rng, cam, x, y)
    if kind == "plant":
        return _plant(rng, cam, x, y)
    return _banner(rng, cam, x, y)


_CLUTTER = {
    "table": 0.16,
    "chair": 0.22,
    "bench": 0.08,
    "boxes": 0.2,
    "bin": 0.14,
    "ball": 0.08,
    "banner": 0.06,
    "column": 0.06,
}
_TALL = {"pole": 0.3, "coat_rack": 0.2, "lamp": 0.22, "plant": 0.2, "column": 0.08}


# Largest half-extent on the floor of each kind, for a cheap test before building it.
_REACH = {
    "table": 1.0,
    "chair": 0.3,
    "bench": 1.1,
    "boxes": 0.4,
    "bin": 0.3,
    "ball": 0.35,
    "banner": 0.55,
    "column": 0.35,
    "pole": 0.3,
    "coat_rack": 0.35,
    "lamp": 0.25,
    "plant": 0.3,
}


def _surely_in_front(cam: _Cam, people: list[_Placed], x: float, y: float, reach: float) -> bool:
    """A quick approximate test, before building an object within ``reach`` of ``(x, y)``: would it stand in front
    of a person (nearer, in overlapping image columns)? The exact test runs on the built object."""
    if y - reach <= 0.1:
        return False
    for p in people:
        if y - reach >= p.y_m + 0.35:
            continue
        near = max(y - reach, 0.1)
        u0 = cam.fx * (x - reach) / near + cam.cx if x - reach < 0 else cam.fx * (x - reach) / (y + reach) + cam.cx
        u1 = cam.fx * (x + reach) / near + cam.cx if x + reach > 0 else cam.fx * (x + reach) / (y + reach) + cam.cx
        if u0 > p.box[2] + 2 or u1 < p.box[0] - 2:
            continue
        if y + reach < p.y_m + 0.35:
            return True
    return False


def _floor_spot(rng: np.random.Generator, cam: _Cam, room: _Room, near: float = 1.5) -> tuple[float, float]:
    y = float(rng.uniform(near, room.back_y - 0.4))
    u = float(rng.uniform(-0.1, 1.1)) * cam.width
    x = (u - cam.cx) / cam.fx * y
    return float(np.clip(x, room.left_x + 0.4, room.right_x - 0.4)), y


def _furniture(
    rng: np.random.Generator, cam: _Cam, room: _Room, people: list[_Placed], items: list[_Item]
) -> list[_Item]:
    """Free-standing and wall-standing objects that stand clear of every person."""
    placed: list[_Item] = []
    requests: list[str] = []
    requests += [str(k) for k in rng.choice(list(_TALL), size=int(rng.integers(1, 5)), p=list(_TALL.values()))]
    requests += [str(k) for k in rng.choice(list(_CLUTTER), size=int(rng.integers(1, 9)), p=list(_CLUTTER.values()))]
    requests += ["cabinet"] * int(rng.integers(0, 4)) + ["pilaster"] * int(rng.random() < 0.25)
    order = rng.permutation(len(requests))
    for index in order:
        kind = requests[int(index)]
        for _attempt in range(8):
            if kind == "cabinet":
                wall = int(rng.choice(3, p=[0.6, 0.2, 0.2]))
                pos = (
                    float(rng.uniform(room.left_x + 0.8, room.right_x - 0.8))
                    if wall == 0
                    else float(rng.uniform(2.5, room.back_y - 1.0))
                )
                item = _cabinet(rng, cam, room, pos, wall)
            elif kind == "pilaster":
                item = _pilaster(rng, cam, room, float(rng.uniform(room.left_x + 0.5, room.right_x - 0.5)))
            else:
                x, y = _floor_spot(rng, cam, room)
                if _surely_in_front(cam, people, x, y, _REACH[kind]):
                    continue
                item = _free_object(rng, cam, room, kind, x, y)
            if item is None or item.footprint is None:
                continue
            if _collides(item.footprint, items + placed, room) or _occludes(item, people):
                continue
            u0, v0, u1, v1 = item.bbox
            if u1 < 0 or u0 > cam.width or v1 < 0 or v0 > cam.height:
                continue
            placed.append(item)
            break
    return placed


def _place_occluder(
    rng: np.random.Generator, cam: _Cam, person: _Placed, people: list[_Placed], items: list[_Item], room: _Room
) -> tuple[_Item, float] | None:
    """An object in front of ``person`` hiding the lower 10-40 % of the box, and the visible fraction left."""
    x0, y0, x1, y1 = person.box
    box_h = y1 - y0
    index = people.index(person)
    kind = str(rng.choice(["table", "bench", "boxes", "chair", "cabinet"], p=[0.3, 0.2, 0.25, 0.15, 0.1]))
    for _attempt in range(16):
        gap = float(rng.uniform(0.5, 2.0))
        y = person.y_m - gap
        if y < 1.2:
            continue
        x = person.x_m + float(rng.normal(0, 0.1))
        item = _counter(rng, cam, x, y) if kind == "cabinet" else _free_object(rng, cam, room, kind, x, y)
        if item is None or item.footprint is None:
            continue
        fp = item.footprint
        if fp[3] > person.y_m - 0.3 or _collides(fp, items, room) or _occludes(item, people, skip=index):
            continue
        u0, v0, u1, _ = item.bbox
        overlap = min(u1, x1) - max(u0, x0)
        if not 0.1 <= (y1 - v0) / box_h <= 0.45 or overlap < 0.6 * (x1 - x0):
            continue
        covered = _covered_fraction(item, person.box, cam)
        if 0.08 <= covered <= 0.4:
            return item, 1.0 - covered
    return None


def _covered_fraction(item: _Item, box: tuple[float, float, float, float], cam: _Cam) -> float:
    """Fraction of the box's rows in which ``item`` hides most of the box's central half (where the body is).

    Tables and chairs leave the legs visible below them, so this counts the rows
    the object's silhouette actually covers rather than those below its top.
    """
    canvas = np.full((3, cam.height, cam.width), -1.0, dtype=np.float32)
    item.draw(canvas, cam.light2d)
    x0, y0, x1, y1 = box
    quarter = (x1 - x0) / 4
    c0, c1 = max(round(x0 + quarter), 0), min(round(x1 - quarter), cam.width)
    r0, r1 = max(round(y0), 0), min(round(y1), cam.height)
    if c0 >= c1 or r0 >= r1:
        return 0.0
    # Colours are >= 0, so a pixel more than half covered has moved above -0.5 from the -1 background.
    hidden = (canvas[0, r0:r1, c0:c1] > -0.5).mean(axis=1) >= 0.5
    return float(hidden.sum()) / (y1 - y0)


def _counter(rng: np.random.Generator, cam: _Cam, x: float, y: float) -> _Item | None:
    """A low cabinet or counter standing free, facing the camera."""
    w, d, h = float(rng.uniform(0.8, 1.6)), float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.7, 1.0))
    colour = _material(rng)
    s = _Sketch(cam)
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    s.box(x0, x1, y0, y1, 0.0, h, colour, key=10.0)
    s.quad(
        np.array(
            [
                [x0 + 0.02, y0 - 0.003, 0.1],
                [x1 - 0.02, y0 - 0.003, 0.1],
                [x1 - 0.02, y0 - 0.003, h - 0.05],
                [x0 + 0.02, y0 - 0.003, h - 0.05],
            ]
        ),
        colour * 0.9,
        key=5.0,
    )
    return s.item(y, (x0, x1, y0, y1), ordered=True)


def _wall_point(room: _Room, wall: int, a: float, z: float) -> tuple[float, float, float]:
    """A point just in front of wall ``wall`` (0 back, 1 left, 2 right) at position ``a`` along it, height ``z``."""
    if wall == 0:
        return (a, room.back_y - 0.01, z)
    if wall == 1:
        return (room.left_x + 0.01, a, z)
    return (room.right_x - 0.01, a, z)


def _wall_rect(
    sketch: _Sketch,
    room: _Room,
    wall: int,
    a0: float,
    a1: float,
    z0: float,
    z1: float,
    colour: np.ndarray,
    *,
    stripes: tuple[float, np.ndarray] | None = None,
) -> None:
    corners = np.array(
        [
            _wall_point(room, wall, a0, z0),
            _wall_point(room, wall, a1, z0),
            _wall_point(room, wall, a1, z1),
            _wall_point(room, wall, a0, z1),
        ]
    )
    sketch.quad(corners, colour, key=0.0, stripes=stripes)


def _wall_decor(rng: np.random.Generator, cam: _Cam, room: _Room) -> list[_Item]:
    """Doors, windows, posters and radiators on the walls, drawn right after the room."""
    items: list[_Item] = []
    used: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
    requests = (
        ["door"] * int(rng.integers(0, 4))
        + ["window"] * int(rng.integers(0, 3))
        + ["poster"] * int(rng.integers(0, 5))
        + ["radiator"] * int(rng.integers(0, 2))
    )
    for kind in requests:
        for _attempt in range(6):
            wall = int(rng.choice(3, p=[0.5, 0.25, 0.25]))
            lo, hi = (room.left_x + 0.3, room.right_x - 0.3) if wall == 0 else (2.0, room.back_y - 0.5)
            width = {
                "door": rng.uniform(0.8, 1.0) * (2 if rng.random() < 0.15 else 1),
                "window": rng.uniform(0.8, 2.4),
                "poster": rng.uniform(0.3, 1.2),
                "radiator": rng.uniform(0.6, 1.6),
            }[kind]
            width = float(width)
            if hi - lo < width + 0.1:
                continue
            a0 = float(rng.uniform(lo, hi - width))
            a1 = a0 + width
            if any(a0 < b1 + 0.1 and a1 > b0 - 0.1 for b0, b1 in used[wall]):
                continue
            s = _Sketch(cam)
            if kind == "door":
                _door(rng, s, room, wall, a0, a1)
            elif kind == "window":
                _window(rng, s, room, wall, a0, a1)
            elif kind == "poster":
                _poster(rng, s, room, wall, a0, a1)
            else:
                fins = np.stack([_hsv(0, 0, 0.9), _hsv(0, 0, 0.65)]) * float(rng.uniform(0.7, 1.05))
                z0 = float(rng.uniform(0.1, 0.2))
                _wall_rect(
                    s,
                    room,
                    wall,
                    a0,
                    a1,
                    z0,
                    z0 + float(rng.uniform(0.4, 0.6)),
                    fins[0],
                    stripes=(float(rng.uniform(0.03, 0.06)), fins),
                )
            item = s.item(0.0, None, ordered=True)
            if item is None:
                continue
            u0, v0, u1, v1 = item.bbox
            if u1 < 0 or u0 > cam.width or v1 < 0 or v0 > cam.height:
                continue
            used[wall].append((a0, a1))
            items.append(item)
            break
    return items


def _door(rng: np.random.Generator, s: _Sketch, room: _Room, wall: int, a0: float, a1: float) -> None:
    h = float(rng.uniform(2.0, min(2.25, room.ceiling_z - 0.15)))
    frame = float(rng.uniform(0.05, 0.1))
    frame_colour = _material(rng)
    _wall_rect(s, room, wall, a0 - frame, a1 + frame, 0.0, h + frame, frame_colour)
    if rng.random() < 0.3:  # open: a dark opening, maybe a lit room beyond
        _wall_rect(s, room, wall, a0, a1, 0.0, h, _hsv(rng.random(), 0.2, rng.uniform(0.03, 0.35)))
        return
    leaf = _material(rng)
    _wall_rect(s, room, wall, a0, a1, 0.0, h, leaf)
    mid = (a0 + a1) / 2
    if rng.random() < 0.5 and a1 - a0 > 1.2:  # double door
        _wall_rect(s, room, wall, mid - 0.01, mid + 0.01, 0.0, h, leaf * 0.4)
    if rng.random() < 0.5:  # panels or a glass strip
        glass = rng.random() < 0.4
        inset = 0.12 * (a1 - a0)
        colour = _hsv(0.55, 0.1, rng.uniform(0.6, 0.95)) if glass else leaf * float(rng.uniform(0.75, 0.9))
        _wall_rect(s, room, wall, a0 + inset, a1 - inset, h * 0.55, h * 0.9, colour)
        if not glass:
            _wall_rect(s, room, wall, a0 + inset, a1 - inset, h * 0.1, h * 0.45, colour)
    hx = a1 - 0.1 if rng.random() < 0.5 else a0 + 0.04
    _wall_rect(s, room, wall, hx, hx + 0.06, 0.98, 1.03, _hsv(0, 0, rng.uniform(0.2, 0.8)))


def _window(rng: np.random.Generator, s: _Sketch, room: _Room, wall: int, a0: float, a1: float) -> None:
    z0 = float(rng.uniform(0.8, 1.1))
    z1 = float(min(rng.uniform(1.9, 2.4), room.ceiling_z - 0.2))
    frame = _hsv(0, 0, rng.uniform(0.85, 0.95)) if rng.random() < 0.6 else _material(rng)
    glass = _hsv(rng.uniform(0.5, 0.62), rng.uniform(0.05, 0.35), rng.uniform(0.75, 1.0)) * float(rng.uniform(1, 1.3))
    _wall_rect(s, room, wall, a0 - 0.05, a1 + 0.05, z0 - 0.06, z1 + 0.05, frame)
    _wall_rect(s, room, wall, a0, a1, z0, z1, glass)
    panes = max(1, round((a1 - a0) / float(rng.uniform(0.5, 0.9))))
    for k in range(1, panes):
        a = a0 + k * (a1 - a0) / panes
        _wall_rect(s, room, wall, a - 0.03, a + 0.03, z0, z1, frame)
    if rng.random() < 0.5:
        zt = z0 + (z1 - z0) * float(rng.uniform(0.6, 0.8))
        _wall_rect(s, room, wall, a0, a1, zt - 0.025, zt + 0.025, frame)
    if rng.random() < 0.3:  # blinds half down
        zb = z1 - (z1 - z0) * float(rng.uniform(0.2, 0.7))
        _wall_rect(s, room, wall, a0, a1, zb, z1, _paint(rng))


def _poster(rng: np.random.Generator, s: _Sketch, room: _Room, wall: int, a0: float, a1: float) -> None:
    tall = float(rng.uniform(0.4, 1.2))
    zc = float(rng.uniform(1.2, 1.8))
    z0, z1 = zc - tall / 2, min(zc + tall / 2, room.ceiling_z - 0.1)
    frame = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.02, 0.05))
    if frame:
        _wall_rect(s, room, wall, a0 - frame, a1 + frame, z0 - frame, z1 + frame, _material(rng))
    _wall_rect(s, room, wall, a0, a1, z0, z1, _cloth(rng))
    for _ in range(int(rng.integers(0, 4))):
        b0, b1 = sorted(float(v) for v in rng.uniform(a0, a1, size=2))
        c0, c1 = sorted(float(v) for v in rng.uniform(z0, z1, size=2))
        _wall_rect(s, room, wall, b0, b1, c0, c1, _cloth(rng))


# ----------------------------------------------------------------------------------------------------------------
# Camera effects


def _finish(rng: np.random.Generator, image: np.ndarray, rays: _Rays) -> np.ndarray:
    """Global brightness, contrast and colour cast, vignetting, sensor noise; to uint8."""
    brightness = float(rng.uniform(0.65, 1.2))
    contrast = float(rng.uniform(0.75, 1.15))
    cast = (1 + rng.normal(0, 0.05, size=3)).astype(np.float32)
    gain = (255.0 * brightness * contrast * cast).astype(np.float32)
    offset = (255.0 * brightness * 0.45 * (1 - contrast) * cast).astype(np.float32)
    vignette = float(rng.uniform(0.0, 0.35))
    sigma = float(rng.uniform(1.0, 5.0))
    out = image * gain[:, None, None] + offset[:, None, None]
    if vignette > 0.02:
        out *= 1 - vignette * rays.vignette
    # Triangular noise from two random bytes per pixel: as good as Gaussian here and several times cheaper.
    pair = np.frombuffer(rng.bytes(2 * out[0].size), dtype=np.int8).reshape(2, *rays.shape)
    out += (pair[0].astype(np.float32) + pair[1]) * (sigma / 104.5)
    np.clip(out, 0, 255, out=out)
    return np.ascontiguousarray(out.astype(np.uint8).transpose(1, 2, 0))
