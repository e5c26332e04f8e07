"""Clutter and tall verticals standing on the floor.

Boxes, bins, balls and roll-up banners; poles, columns, coat racks, standing lamps and potted plants. The
tall ones are about a person's height, the hardest negatives for a person detector.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import UP, SceneCamera
from .materials import cloth, hsv, material, paint
from .raster import Item
from .room import Room
from .sketch import Sketch, front_rect

__all__ = [
    "ball",
    "coat_rack",
    "column",
    "floor_lamp",
    "pole",
    "potted_plant",
    "rollup_banner",
    "stacked_boxes",
    "waste_bin",
]


def stacked_boxes(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A cardboard (or other) box, sometimes with a smaller one on top."""
    s = Sketch(cam)
    cardboard = hsv(rng.uniform(0.07, 0.1), rng.uniform(0.35, 0.6), rng.uniform(0.45, 0.75))
    colour = cardboard if rng.random() < 0.6 else material(rng)
    w, d, h = (float(v) for v in rng.uniform(0.3, 0.7, size=3))
    x0, x1, y0, y1 = x - w / 2, x + w / 2, y - d / 2, y + d / 2
    s.box(x0, x1, y0, y1, 0.0, h, colour)
    if rng.random() < 0.4:
        w2, d2, h2 = w * float(rng.uniform(0.6, 0.95)), d * float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.2, 0.5))
        s.box(x - w2 / 2, x + w2 / 2, y - d2 / 2, y + d2 / 2, h, h + h2, colour * float(rng.uniform(0.85, 1.1)))
    return s.item(y, (x0, x1, y0, y1))


def waste_bin(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A round bin, slightly tapered."""
    r, h = float(rng.uniform(0.15, 0.3)), float(rng.uniform(0.4, 0.9))
    s = Sketch(cam)
    colour = material(rng)
    s.cylinder(x, y, r * float(rng.uniform(0.8, 1.0)), r, 0.0, h, colour, top=colour * 0.3)
    return s.item(y, (x - r, x + r, y - r, y + r))


def ball(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A ball lying on the floor."""
    r = float(rng.uniform(0.1, 0.35))
    s = Sketch(cam)
    s.blob(np.array([x, y, r]), r, r, hsv(rng.random(), rng.uniform(0.5, 1), rng.uniform(0.4, 0.95)), shade=0.5)
    return s.item(y, (x - r, x + r, y - r, y + r))


def pole(rng: np.random.Generator, cam: SceneCamera, x: float, y: float, room: Room) -> Item | None:
    """A thin pole to the ceiling, or a post with a sign or a heavy base."""
    r = float(rng.uniform(0.02, 0.07))
    to_ceiling = rng.random() < 0.5
    h = room.ceiling_z if to_ceiling else float(rng.uniform(1.3, 2.3))
    colour = material(rng) if rng.random() < 0.6 else hsv(rng.random(), rng.uniform(0.6, 1), rng.uniform(0.5, 0.9))
    s = Sketch(cam)
    s.cylinder(x, y, r, r, 0.0, h, colour, top=colour, segments=8)
    if not to_ceiling:
        if rng.random() < 0.5:  # a sign on top
            w, sh = float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.3, 0.6))
            s.quad(front_rect(x - w / 2, x + w / 2, y - r, h, h + sh), cloth(rng))
        else:  # a heavy base
            s.cylinder(x, y, 0.18, 0.16, 0.0, 0.04, colour * 0.8, top=colour * 0.9)
    return s.item(y, (x - 0.2, x + 0.2, y - 0.2, y + 0.2))


def column(rng: np.random.Generator, cam: SceneCamera, x: float, y: float, room: Room) -> Item | None:
    """A round or square column from the floor to the ceiling."""
    colour = paint(rng) if rng.random() < 0.7 else hsv(0, 0, rng.uniform(0.4, 0.7))
    s = Sketch(cam)
    if rng.random() < 0.5:
        r = float(rng.uniform(0.15, 0.35))
        s.cylinder(x, y, r, r, 0.0, room.ceiling_z, colour, segments=20)
        return s.item(y, (x - r, x + r, y - r, y + r))
    w = float(rng.uniform(0.15, 0.3))
    s.box(x - w, x + w, y - w, y + w, 0.0, room.ceiling_z, colour)
    return s.item(y, (x - w, x + w, y - w, y + w))


def coat_rack(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A coat rack with hooks, sometimes with coats hanging from them."""
    h = float(rng.uniform(1.65, 1.9))
    colour = material(rng)
    s = Sketch(cam)
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
        coat = cloth(rng)
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


def floor_lamp(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A standing lamp: a base, a stem and a bright shade."""
    h = float(rng.uniform(1.4, 1.85))
    colour = material(rng)
    shade_colour = hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.8, 1.0)) * float(rng.uniform(1.0, 1.3))
    s = Sketch(cam)
    s.cylinder(x, y, 0.16, 0.14, 0.0, 0.03, colour, top=colour)
    s.cylinder(x, y, 0.015, 0.015, 0.03, h, colour, segments=8)
    top_r = float(rng.uniform(0.1, 0.16))
    s.cylinder(
        x, y, top_r * 1.5, top_r, h - 0.05, h + float(rng.uniform(0.2, 0.35)), shade_colour, top=shade_colour, key=0.0
    )
    return s.item(y, (x - 0.25, x + 0.25, y - 0.25, y + 0.25))


def potted_plant(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A plant in a pot, sometimes on a stand: a stem and a cloud of leaves."""
    s = Sketch(cam)
    stand = float(rng.uniform(0.0, 0.8)) if rng.random() < 0.6 else 0.0
    if stand > 0:
        s.box(x - 0.15, x + 0.15, y - 0.15, y + 0.15, 0.0, stand, material(rng))
    pot_h = float(rng.uniform(0.2, 0.4))
    pot = material(rng)
    s.cylinder(x, y, 0.11, 0.15, stand, stand + pot_h, pot, top=hsv(0.08, 0.5, 0.2))
    tall = float(rng.uniform(0.3, 1.3))
    green = hsv(rng.uniform(0.22, 0.4), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.55))
    base = np.array([x, y, stand + pot_h])
    s.stick(base, base + tall * UP, 0.015, 0.01, hsv(0.08, 0.5, 0.3), key=1e3)
    for _ in range(int(rng.integers(8, 18))):
        offset = rng.normal(0, [0.16, 0.1, 0.18]) + np.array([0, 0, tall * float(rng.uniform(0.4, 1.0))])
        size = float(rng.uniform(0.05, 0.14))
        s.blob(base + offset, size, size * float(rng.uniform(0.5, 1.5)), green * float(rng.uniform(0.7, 1.3)))
    return s.item(y, (x - 0.25, x + 0.25, y - 0.25, y + 0.25))


def rollup_banner(rng: np.random.Generator, cam: SceneCamera, x: float, y: float) -> Item | None:
    """A roll-up banner on its foot, with coloured blocks on it."""
    w, h = float(rng.uniform(0.6, 1.0)), float(rng.uniform(1.6, 2.1))
    s = Sketch(cam)
    s.box(x - w / 2 - 0.03, x + w / 2 + 0.03, y - 0.1, y + 0.1, 0.0, 0.08, hsv(0, 0, rng.uniform(0.2, 0.8)))
    background = cloth(rng)
    s.quad(front_rect(x - w / 2, x + w / 2, y, 0.08, h), background, key=2.0)
    z = 0.2
    for k in range(int(rng.integers(2, 5))):
        bh = float(rng.uniform(0.1, 0.45))
        if z + bh > h - 0.05:
            break
        inset = float(rng.uniform(0.03, 0.2)) * w
        s.quad(front_rect(x - w / 2 + inset, x + w / 2 - inset, y - 0.005, z, z + bh), cloth(rng), key=1.0 - 0.01 * k)
        z += bh + float(rng.uniform(0.05, 0.2))
    return s.item(y, (x - w / 2, x + w / 2, y - 0.1, y + 0.1))
