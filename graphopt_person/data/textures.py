"""Procedural surface textures of the room, evaluated at world coordinates.

Floors (tiles, planks, carpet, plain), walls (paint, stripes, wainscoting, brick, tiles, with a
baseboard) and ceilings (plain, panels, dark). Every pattern is box-filtered over the pixel's footprint
on the surface, so that far textures fade to their mean instead of aliasing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .materials import cloth, hsv, material, paint, wood

__all__ = ["WallStyle", "ceiling_texture", "floor_texture", "wall_style", "wall_texture"]


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


def floor_texture(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Floor colours ``(3, n)`` at floor points ``(a, b)`` = (X, Y) with pixel footprints ``fa``, ``fb``."""
    kind = rng.choice(4, p=[0.3, 0.3, 0.2, 0.2])
    salt = int(rng.integers(1 << 30))
    grid = rng.random((32, 32)).astype(np.float32)
    return _FLOORS[int(kind)](rng, a, b, fa, fb, salt, grid)


def _tiles(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray, salt: int, grid: np.ndarray
) -> np.ndarray:
    """Square tiles, uneven in shade, sometimes a checkerboard of two colours, with grout lines."""
    size = float(rng.uniform(0.3, 0.8))
    grout = float(rng.uniform(0.004, 0.012))
    base = hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.35, 0.9))
    second = hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.1, 0.9)) if rng.random() < 0.3 else base
    grout_colour = base * rng.uniform(0.4, 0.8) if rng.random() < 0.7 else base * 0 + rng.uniform(0.7, 0.9)
    ia, ib = np.floor(a / size), np.floor(b / size)
    jitter = (_hash(ia, ib, salt) - 0.5) * float(rng.uniform(0.05, 0.25)) * _fade(np.maximum(fa, fb), size / 3)
    checker = ((ia + ib) % 2).astype(np.float32)
    colour = _mix(base[:, None], second[:, None], checker) * (1 + jitter)
    line = 1 - (1 - _lines(a, size, grout, fa)) * (1 - _lines(b, size, grout, fb))
    return _mix(colour, grout_colour.astype(np.float32)[:, None], line)


def _planks(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray, salt: int, grid: np.ndarray
) -> np.ndarray:
    """Wooden planks along X or Y in staggered rows, each its own shade, with grain and seams."""
    if rng.random() < 0.5:
        a, b, fa, fb = b, a, fb, fa
    width = float(rng.uniform(0.09, 0.25))
    length = float(rng.uniform(0.8, 2.2))
    base = wood(rng) if rng.random() < 0.8 else hsv(rng.random(), 0.1, rng.uniform(0.3, 0.8))
    row = np.floor(b / width)
    shift = _hash(row, row * 0 + 7, salt) * length
    col = np.floor((a + shift) / length)
    plank = (_hash(col, row, salt + 1) - 0.5) * float(rng.uniform(0.15, 0.4))
    grain = np.sin(b * (60.0 / width) + 3 * _value_noise(grid, a * 2.0, b * 8.0)) * 0.05 * _fade(fb, width / 8)
    colour = base[:, None] * (1 + (plank * _fade(np.maximum(fa, fb), width / 2) + grain))
    seam = 1 - (1 - _lines(b, width, 0.003, fb)) * (1 - _lines(a + shift, length, 0.003, fa))
    return colour * (1 - 0.5 * seam)


def _carpet(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray, salt: int, grid: np.ndarray
) -> np.ndarray:
    """Carpet: coarse blotches and a fine pile that fades with distance."""
    base = cloth(rng) if rng.random() < 0.6 else hsv(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.2, 0.6))
    coarse = _value_noise(grid, a * 1.2, b * 1.2) - 0.5
    fine = (_value_noise(grid, a * 40.0, b * 40.0) - 0.5) * _fade(np.maximum(fa, fb), 0.025)
    return base[:, None] * (1 + 0.08 * coarse + 0.35 * fine)


def _plain_floor(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray, salt: int, grid: np.ndarray
) -> np.ndarray:
    """Linoleum or concrete: mottled, sometimes in large slabs."""
    base = hsv(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.3, 0.85))
    noise = _value_noise(grid, a * 0.7, b * 0.7) - 0.5
    detail = (_value_noise(grid, a * 6.0, b * 6.0) - 0.5) * _fade(np.maximum(fa, fb), 0.15)
    colour = base[:, None] * (1 + 0.16 * noise + 0.1 * detail)
    if rng.random() < 0.4:
        slab = float(rng.uniform(1.0, 3.0))
        seam = 1 - (1 - _lines(a, slab, 0.01, fa)) * (1 - _lines(b, slab, 0.01, fb))
        colour = colour * (1 - 0.35 * seam)
    return colour


#: The floor kinds in the order ``floor_texture`` draws them.
_FLOORS = (_tiles, _planks, _carpet, _plain_floor)


@dataclass(frozen=True)
class WallStyle:
    """How a wall is finished: the pattern ``kind``, its colours and sizes, and the baseboard."""

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


def wall_style(rng: np.random.Generator) -> WallStyle:
    """A random wall finish: paint, stripes, wainscoting, brick or tiles."""
    kind = int(rng.choice(5, p=[0.42, 0.13, 0.2, 0.13, 0.12]))
    base = paint(rng)
    second = paint(rng) if rng.random() < 0.6 else base * rng.uniform(0.6, 0.85)
    if kind == 3:  # brick
        if rng.random() < 0.7:
            base = hsv(rng.uniform(0.0, 0.08), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7))
        second = base * 0 + rng.uniform(0.55, 0.85)
    period = {
        0: 1.0,
        1: rng.uniform(0.08, 0.6),
        2: rng.uniform(0.35, 0.8),
        3: rng.uniform(1.0, 1.6),
        4: rng.uniform(0.12, 0.3),
    }[kind]
    extent = float(rng.uniform(0.3, 0.7)) if kind == 1 else float(rng.uniform(0.8, 1.25))
    return WallStyle(
        kind=kind,
        base=base.astype(np.float32),
        second=np.asarray(second, dtype=np.float32),
        period=float(period),
        extent=extent,
        grid=rng.random((32, 32)).astype(np.float32),
        salt=int(rng.integers(1 << 30)),
        baseboard=float(rng.uniform(0.06, 0.15)) if rng.random() < 0.7 else 0.0,
        baseboard_colour=material(rng),
        horizontal=bool(rng.random() < 0.25),
    )


def wall_texture(style: WallStyle, a: np.ndarray, z: np.ndarray, fa: np.ndarray, fz: np.ndarray) -> np.ndarray:
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


def ceiling_texture(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray
) -> np.ndarray:
    """Ceiling colours ``(3, n)``: plain, a grid of panels with some lights, or dark."""
    n = len(a)
    base = hsv(rng.random(), rng.uniform(0.0, 0.1), rng.uniform(0.6, 0.9))
    kind = rng.random()
    if kind < 0.15:
        return hsv(rng.random(), 0.05, rng.uniform(0.1, 0.3))[:, None] * np.ones(n, np.float32)
    colour = base[:, None] * np.ones(n, np.float32)
    if kind < 0.6:
        size = 0.6
        salt = int(rng.integers(1 << 30))
        panel = (_hash(np.floor(a / size), np.floor(b / size), salt) < rng.uniform(0.05, 0.2)).astype(np.float32)
        colour = _mix(colour, np.full((3, 1), 1.3, dtype=np.float32), panel)
        grid = 1 - (1 - _lines(a, size, 0.015, fa)) * (1 - _lines(b, size, 0.015, fb))
        colour = colour * (1 - 0.3 * grid)
    return colour
