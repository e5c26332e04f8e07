"""Colours: wall paint, cloth, wood, furniture materials, skin and hair.

Each picker draws from the random stream it is given, so that a scene is a pure function of its seed.
"""

from __future__ import annotations

import colorsys

import numpy as np

__all__ = ["HAIR", "SKIN", "cloth", "hsv", "material", "paint", "palette_pick", "wood"]


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour from hue (wrapped), saturation and value (clipped to [0, 1])."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)), dtype=np.float32)


def paint(rng: np.random.Generator) -> np.ndarray:
    """Wall paint: mostly pale, sometimes strong."""
    if rng.random() < 0.7:
        return hsv(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.65, 0.95))
    return hsv(rng.random(), rng.uniform(0.2, 0.65), rng.uniform(0.35, 0.85))


def cloth(rng: np.random.Generator) -> np.ndarray:
    """Clothing and furniture fabric: dark, light, or coloured."""
    kind = rng.random()
    if kind < 0.35:
        return hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.06, 0.3))
    if kind < 0.55:
        return hsv(rng.random(), rng.uniform(0.0, 0.2), rng.uniform(0.72, 0.95))
    return hsv(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.85))


def wood(rng: np.random.Generator) -> np.ndarray:
    """Wood: brown, light to dark."""
    return hsv(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.75))


def material(rng: np.random.Generator) -> np.ndarray:
    """Furniture: wood, white, black, grey metal or a colour."""
    kind = rng.random()
    if kind < 0.35:
        return wood(rng)
    if kind < 0.5:
        return hsv(0, 0, rng.uniform(0.8, 0.95))
    if kind < 0.65:
        return hsv(0, 0, rng.uniform(0.08, 0.2))
    if kind < 0.8:
        return hsv(rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.1), rng.uniform(0.4, 0.7))
    return cloth(rng)


SKIN = np.array(
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


HAIR = np.array(
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


def palette_pick(rng: np.random.Generator, palette: np.ndarray, weights: list[float]) -> np.ndarray:
    """A colour of ``palette`` picked with ``weights``, sometimes between two neighbours, a little varied."""
    i = int(rng.choice(len(palette), p=np.array(weights) / sum(weights)))
    j = min(i + 1, len(palette) - 1)
    t = float(rng.random()) if i != j and rng.random() < 0.5 else 0.0
    colour = palette[i] * (1 - t) + palette[j] * t
    return (colour * rng.uniform(0.9, 1.08)).astype(np.float32)
