"""Things on the walls: doors, windows, posters and radiators.

Flat rectangles just in front of a wall, drawn right after the room and before anything standing on
the floor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .geometry import SceneCamera
from .materials import cloth, hsv, material, paint
from .raster import Item
from .room import Room
from .sketch import Sketch

__all__ = ["wall_decor"]


def _wall_point(room: Room, wall: int, a: float, z: float) -> tuple[float, float, float]:
    """A point just in front of wall ``wall`` (0 back, 1 left, 2 right) at position ``a`` along it, height ``z``."""
    if wall == 0:
        return (a, room.back_y - 0.01, z)
    if wall == 1:
        return (room.left_x + 0.01, a, z)
    return (room.right_x - 0.01, a, z)


def _wall_rect(
    sketch: Sketch,
    room: Room,
    wall: int,
    a0: float,
    a1: float,
    z0: float,
    z1: float,
    colour: np.ndarray,
    *,
    stripes: tuple[float, np.ndarray] | None = None,
) -> None:
    """A rectangle on wall ``wall`` from ``a0`` to ``a1`` along it and ``z0`` to ``z1`` up."""
    corners = np.array(
        [
            _wall_point(room, wall, a0, z0),
            _wall_point(room, wall, a1, z0),
            _wall_point(room, wall, a1, z1),
            _wall_point(room, wall, a0, z1),
        ]
    )
    sketch.quad(corners, colour, key=0.0, stripes=stripes)


def wall_decor(rng: np.random.Generator, cam: SceneCamera, room: Room) -> list[Item]:
    """Doors, windows, posters and radiators on the walls, drawn right after the room.

    Each request tries a few places: a wall, then a span along it clear of the other things on that wall.
    """
    items: list[Item] = []
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
            width = _width(rng, kind)
            if hi - lo < width + 0.1:
                continue
            a0 = float(rng.uniform(lo, hi - width))
            a1 = a0 + width
            if any(a0 < b1 + 0.1 and a1 > b0 - 0.1 for b0, b1 in used[wall]):
                continue
            s = Sketch(cam)
            _DRAW[kind](rng, s, room, wall, a0, a1)
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


def _width(rng: np.random.Generator, kind: str) -> float:
    """The width of a ``kind`` of wall decoration; draws the widths of every kind, so the stream stays aligned."""
    width = {
        "door": rng.uniform(0.8, 1.0) * (2 if rng.random() < 0.15 else 1),
        "window": rng.uniform(0.8, 2.4),
        "poster": rng.uniform(0.3, 1.2),
        "radiator": rng.uniform(0.6, 1.6),
    }[kind]
    return float(width)


def _radiator(rng: np.random.Generator, s: Sketch, room: Room, wall: int, a0: float, a1: float) -> None:
    """A radiator: vertical fins low on the wall."""
    fins = np.stack([hsv(0, 0, 0.9), hsv(0, 0, 0.65)]) * float(rng.uniform(0.7, 1.05))
    z0 = float(rng.uniform(0.1, 0.2))
    z1 = z0 + float(rng.uniform(0.4, 0.6))
    stripes = (float(rng.uniform(0.03, 0.06)), fins)
    _wall_rect(s, room, wall, a0, a1, z0, z1, fins[0], stripes=stripes)


def _door(rng: np.random.Generator, s: Sketch, room: Room, wall: int, a0: float, a1: float) -> None:
    """A door in its frame: open, or closed with panels or glass and a handle."""
    h = float(rng.uniform(2.0, min(2.25, room.ceiling_z - 0.15)))
    frame = float(rng.uniform(0.05, 0.1))
    frame_colour = material(rng)
    _wall_rect(s, room, wall, a0 - frame, a1 + frame, 0.0, h + frame, frame_colour)
    if rng.random() < 0.3:  # open: a dark opening, maybe a lit room beyond
        _wall_rect(s, room, wall, a0, a1, 0.0, h, hsv(rng.random(), 0.2, rng.uniform(0.03, 0.35)))
        return
    leaf = material(rng)
    _wall_rect(s, room, wall, a0, a1, 0.0, h, leaf)
    mid = (a0 + a1) / 2
    if rng.random() < 0.5 and a1 - a0 > 1.2:  # double door
        _wall_rect(s, room, wall, mid - 0.01, mid + 0.01, 0.0, h, leaf * 0.4)
    if rng.random() < 0.5:  # panels or a glass strip
        glass = rng.random() < 0.4
        inset = 0.12 * (a1 - a0)
        colour = hsv(0.55, 0.1, rng.uniform(0.6, 0.95)) if glass else leaf * float(rng.uniform(0.75, 0.9))
        _wall_rect(s, room, wall, a0 + inset, a1 - inset, h * 0.55, h * 0.9, colour)
        if not glass:
            _wall_rect(s, room, wall, a0 + inset, a1 - inset, h * 0.1, h * 0.45, colour)
    hx = a1 - 0.1 if rng.random() < 0.5 else a0 + 0.04
    _wall_rect(s, room, wall, hx, hx + 0.06, 0.98, 1.03, hsv(0, 0, rng.uniform(0.2, 0.8)))


def _window(rng: np.random.Generator, s: Sketch, room: Room, wall: int, a0: float, a1: float) -> None:
    """A window in its frame, with glazing bars and sometimes blinds."""
    z0 = float(rng.uniform(0.8, 1.1))
    z1 = float(min(rng.uniform(1.9, 2.4), room.ceiling_z - 0.2))
    frame = hsv(0, 0, rng.uniform(0.85, 0.95)) if rng.random() < 0.6 else material(rng)
    glass = hsv(rng.uniform(0.5, 0.62), rng.uniform(0.05, 0.35), rng.uniform(0.75, 1.0)) * float(rng.uniform(1, 1.3))
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
        _wall_rect(s, room, wall, a0, a1, zb, z1, paint(rng))


def _poster(rng: np.random.Generator, s: Sketch, room: Room, wall: int, a0: float, a1: float) -> None:
    """A poster, framed or not, with a few coloured blocks on it."""
    tall = float(rng.uniform(0.4, 1.2))
    zc = float(rng.uniform(1.2, 1.8))
    z0, z1 = zc - tall / 2, min(zc + tall / 2, room.ceiling_z - 0.1)
    frame = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.02, 0.05))
    if frame:
        _wall_rect(s, room, wall, a0 - frame, a1 + frame, z0 - frame, z1 + frame, material(rng))
    _wall_rect(s, room, wall, a0, a1, z0, z1, cloth(rng))
    for _ in range(int(rng.integers(0, 4))):
        b0, b1 = sorted(float(v) for v in rng.uniform(a0, a1, size=2))
        c0, c1 = sorted(float(v) for v in rng.uniform(z0, z1, size=2))
        _wall_rect(s, room, wall, b0, b1, c0, c1, cloth(rng))


_DRAW: dict[str, Callable[[np.random.Generator, Sketch, Room, int, float, float], None]] = {
    "door": _door,
    "window": _window,
    "poster": _poster,
    "radiator": _radiator,
}
