"""Furniture: tables, chairs, benches, cabinets and bookshelves, counters and pilasters.

Each builder draws its random shape and materials and returns the :class:`~.raster.Item`, or ``None``
when it does not project (behind or too close to the camera). Hard negatives for the detector: boxes
with legs, shelves of book spines, and wall-standing verticals.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import SceneCamera
from .materials import cloth, hsv, material, paint
from .raster import Item
from .room import Room
from .sketch import Sketch, front_rect

__all__ = ["bench", "chair", "pilaster", "standing_counter", "table", "wall_cabinet"]


def table(rng: np.random.Generator, cam: SceneCamera, x: float, y: float, scale: float = 1.0) -> Item | None:
    """A table with four legs, sometimes with things on it."""
    w, d = float(rng.uniform(0.8, 1.8)), float(rng.uniform(0.6, 1.0))
    if rng.random() < 0.3:
        w, d = d, w
    h = float(rng.uniform(0.7, 0.78)) * scale
    thick = float(rng.uniform(0.03, 0.06))
    colour = material(rng)
    leg_colour = colour if rng.random() < 0.6 else material(rng)
    leg = float(rng.uniform(0.025, 0.05))
    s = Sketch(cam)
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    for lx in (x0 + 0.04, x1 - 0.04 - leg):
        for ly in (y0 + 0.04, y1 - 0.04 - leg):
            s.box(lx, lx + leg, ly, ly + leg, 0.0, h - thick, leg_colour)
    s.box(x0, x1, y0, y1, h - thick, h, colour)
    for _ in range(int(rng.integers(0, 3))):  # things on the table
        ox, oy = float(rng.uniform(x0 + 0.15, x1 - 0.15)), float(rng.uniform(y0 + 0.1, y1 - 0.1))
        size = float(rng.uniform(0.06, 0.3))
        if rng.random() < 0.5:
            s.cylinder(ox, oy, size / 3, size / 3, h, h + size, cloth(rng), top=cloth(rng) * 0.5)
        else:
            s.box(ox - size / 2, ox + size / 2, oy - size / 3, oy + size / 3, h, h + size * 0.6, cloth(rng))
    return s.item(y, (x0, x1, y0, y1))


def chair(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A chair on four legs or an office chair on a column, its back turned any way."""
    seat = float(rng.uniform(0.4, 0.5))
    z = float(rng.uniform(0.42, 0.48))
    colour = material(rng)
    frame = colour if rng.random() < 0.5 else material(rng)
    s = Sketch(cam)
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


def bench(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A bench along or across the view."""
    length, depth = float(rng.uniform(1.2, 2.2)), float(rng.uniform(0.35, 0.5))
    along_x = rng.random() < 0.7
    w, d = (length, depth) if along_x else (depth, length)
    z = float(rng.uniform(0.42, 0.48))
    colour, frame = material(rng), material(rng)
    s = Sketch(cam)
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    if along_x:
        for lx in (x0 + 0.05, x1 - 0.11):
            s.box(lx, lx + 0.06, y0 + 0.03, y1 - 0.03, 0.0, z - 0.05, frame)
    else:
        for ly in (y0 + 0.05, y1 - 0.11):
            s.box(x0 + 0.03, x1 - 0.03, ly, ly + 0.06, 0.0, z - 0.05, frame)
    s.box(x0, x1, y0, y1, z - 0.05, z, colour)
    return s.item(y, (x0, x1, y0, y1))


def _shelves(
    rng: np.random.Generator, s: Sketch, x0: float, x1: float, w: float, yf: float, h: float, colour: np.ndarray
) -> None:
    """The open front of a bookshelf ``w`` wide on the plane ``yf``: a dark inside and book spines per level."""
    inner = colour * 0.35
    levels = max(2, int(h / 0.38))
    step = (h - 0.1) / levels
    for k in range(levels):
        zb = 0.06 + k * step + 0.02
        zt = zb + step - 0.04
        s.quad(front_rect(x0 + 0.03, x1 - 0.03, yf, zb, zt), inner, key=5.0 - 0.1 * k)
        fill = float(rng.uniform(0.3, 1.0))
        top = zb + (zt - zb) * float(rng.uniform(0.6, 0.9))
        books = np.stack([cloth(rng) for _ in range(7)])
        xr = x0 + 0.03 + (w - 0.06) * fill
        stripes = (float(rng.uniform(0.025, 0.05)), books)
        s.quad(front_rect(x0 + 0.03, xr, yf - 0.002, zb, top), books[0], key=4.0 - 0.1 * k, stripes=stripes)


def _cabinet_doors(s: Sketch, x0: float, w: float, yf: float, h: float, colour: np.ndarray) -> None:
    """One door (two on a wide cabinet) with a handle, on the front plane ``yf``."""
    doors = 2 if w > 0.8 else 1
    for k in range(doors):
        dx0 = x0 + k * w / doors + 0.01
        dx1 = x0 + (k + 1) * w / doors - 0.01
        s.quad(front_rect(dx0, dx1, yf, 0.08, h - 0.02), colour * 0.95, key=5.0)
        hx = dx1 - 0.05 if k == 0 else dx0 + 0.03
        s.quad(front_rect(hx, hx + 0.02, yf - 0.01, h / 2 - 0.1, h / 2 + 0.1), hsv(0, 0, 0.3), key=4.0)


def wall_cabinet(rng: np.random.Generator, cam: SceneCamera, room: Room, x: float, wall: int) -> Item | None:
    """A cabinet or bookshelf against the back wall (``wall`` 0) or a side wall (1 left, 2 right, ``x`` is y)."""
    w, d = float(rng.uniform(0.5, 1.3)), float(rng.uniform(0.3, 0.55))
    h = float(rng.uniform(0.8, 2.1))
    colour = material(rng)
    s = Sketch(cam)
    shelf = rng.random() < 0.5
    if wall == 0:
        x0, x1, y1 = x - w / 2, x + w / 2, room.back_y - 0.01
        y0 = y1 - d
        s.box(x0, x1, y0, y1, 0.0, h, colour, key=10.0)
        yf = y0 - 0.003
        if shelf:
            _shelves(rng, s, x0, x1, w, yf, h, colour)
        else:
            _cabinet_doors(s, x0, w, yf, h, colour)
        return s.item(y0 + d / 2, (x0, x1, y0, y1), ordered=True)
    # Against a side wall: seen from the side, its front only shows the gap between its two doors.
    y0, y1 = x - w / 2, x + w / 2
    if wall == 1:
        xw0, xw1 = room.left_x + 0.01, room.left_x + 0.01 + d
        xf = xw1 + 0.003
    else:
        xw0, xw1 = room.right_x - 0.01 - d, room.right_x - 0.01
        xf = xw0 - 0.003
    s.box(xw0, xw1, y0, y1, 0.0, h, colour, key=10.0)
    split = (y0 + y1) / 2
    gap = np.array(
        [
            [xf, split - 0.005, 0.08],
            [xf, split + 0.005, 0.08],
            [xf, split + 0.005, h - 0.02],
            [xf, split - 0.005, h - 0.02],
        ]
    )
    s.quad(gap, colour * 0.4, key=5.0)
    return s.item(x, (xw0, xw1, y0, y1), ordered=True)


def standing_counter(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A low cabinet or counter standing free, facing the camera."""
    w, d, h = float(rng.uniform(0.8, 1.6)), float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.7, 1.0))
    colour = material(rng)
    s = Sketch(cam)
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    s.box(x0, x1, y0, y1, 0.0, h, colour, key=10.0)
    s.quad(front_rect(x0 + 0.02, x1 - 0.02, y0 - 0.003, 0.1, h - 0.05), colour * 0.9, key=5.0)
    return s.item(y, (x0, x1, y0, y1), ordered=True)


def pilaster(rng: np.random.Generator, cam: SceneCamera, room: Room, x: float) -> Item | None:
    """A pilaster: a flat column from the floor to the ceiling against the back wall."""
    w, d = float(rng.uniform(0.25, 0.6)), float(rng.uniform(0.08, 0.3))
    s = Sketch(cam)
    y1 = room.back_y - 0.005
    s.box(
        x - w / 2,
        x + w / 2,
        y1 - d,
        y1,
        0.0,
        room.ceiling_z,
        paint(rng) if rng.random() < 0.5 else hsv(0, 0, rng.uniform(0.5, 0.9)),
    )
    return s.item(y1 - d / 2, (x - w / 2, x + w / 2, y1 - d, y1))
