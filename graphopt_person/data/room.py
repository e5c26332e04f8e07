"""The room: its shape, ray cast per pixel, textured and lit.

Every pixel's ray meets the floor, the back wall, a side wall or the ceiling of a box-shaped room (or a
corridor); the nearest hit is textured from its world coordinates and shaded by distance and height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import CameraSpec
from .geometry import Rays
from .textures import WallStyle, ceiling_texture, floor_texture, wall_style, wall_texture

__all__ = ["Room", "render_room"]

# The surface a pixel's ray meets first; the walls' labels also index WallLighting.wall_light (minus one).
_FLOOR, _BACK_WALL, _LEFT_WALL, _RIGHT_WALL, _CEILING = range(5)


@dataclass(frozen=True)
class Room:
    """The room's box in world metres; the floor is ``z = 0`` and the camera stands at ``x = y = 0``.

    Attributes:
        back_y: the back wall, ``y = back_y``.
        left_x: the left wall, ``x = left_x`` (negative).
        right_x: the right wall, ``x = right_x``.
        ceiling_z: the ceiling, ``z = ceiling_z``.
    """

    back_y: float
    left_x: float
    right_x: float
    ceiling_z: float


@dataclass(frozen=True)
class _Lighting:
    """The walls' styles and the light on each surface; ``falloff`` darkens far surfaces."""

    back_style: WallStyle
    side_style: WallStyle
    wall_light: np.ndarray  # per wall: back, left, right
    wall_gradient: float  # brighter or darker upwards
    floor_light: float
    ceiling_light: float
    falloff: float


@dataclass(frozen=True)
class _Hits:
    """Where the rays of one surface's pixels meet it (world metres), and how large a pixel is there."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    rx: np.ndarray
    norm: np.ndarray  # length of the ray direction
    foot: np.ndarray  # pixel footprint across the ray
    dist: np.ndarray  # distance from the camera
    grazing_z: np.ndarray  # stretch of the footprint on a horizontal surface


def _room_shape(rng: np.random.Generator, camera_height: float) -> Room:
    """A room or a corridor, 11-16 m deep, with a ceiling above the camera."""
    back = float(rng.uniform(11.0, 16.0))
    if rng.random() < 0.4:  # corridor
        span = float(rng.uniform(3.0, 6.0))
        offset = float(rng.uniform(-0.2, 0.2)) * span
        left, right = -(span / 2 + offset), span / 2 - offset
    else:
        left, right = -float(rng.uniform(3.5, 9.0)), float(rng.uniform(3.5, 9.0))
    ceiling = max(float(rng.uniform(2.5, 3.6) if rng.random() < 0.85 else rng.uniform(4.5, 7.0)), camera_height + 0.6)
    return Room(back, left, right, ceiling)


def _cast(rays: Rays, room: Room, camera_height: float) -> tuple[np.ndarray, np.ndarray]:
    """The ray parameter of each pixel's nearest hit, and the label of the surface hit."""
    t = rays.t_floor.copy()
    label = np.zeros(t.shape, dtype=np.int8)
    for k, tk in (
        (_BACK_WALL, room.back_y * rays.inv_ry),
        (_LEFT_WALL, -room.left_x * rays.inv_rx_neg),
        (_RIGHT_WALL, room.right_x * rays.inv_rx_pos),
        (_CEILING, (room.ceiling_z - camera_height) * rays.inv_rz_pos),
    ):
        closer = tk < t
        np.copyto(t, tk, where=closer)
        np.copyto(label, np.int8(k), where=closer)
    return t, label


def _lighting(rng: np.random.Generator, falloff: float) -> _Lighting:
    """The walls' styles (the side walls usually match the back wall) and the light levels."""
    same_walls = rng.random() < 0.7
    back_style = wall_style(rng)
    side_style = back_style if same_walls else wall_style(rng)
    wall_light = rng.uniform(0.7, 1.05, size=3)
    wall_light[0] = rng.uniform(0.9, 1.05)
    wall_gradient = float(rng.uniform(-0.08, 0.12))
    floor_light = float(rng.uniform(0.8, 1.05))
    ceiling_light = float(rng.uniform(0.7, 1.0))
    return _Lighting(back_style, side_style, wall_light, wall_gradient, floor_light, ceiling_light, falloff)


def _hits(rays: Rays, t: np.ndarray, idx: np.ndarray, pixel: np.ndarray, camera_height: float) -> _Hits:
    """The hits of the pixels ``idx`` whose rays meet the surface at ray parameters ``t[idx]``."""
    tk = t[idx]
    rx, ry, rz = rays.rx[idx], rays.ry[idx], rays.rz[idx]
    norm = rays.norm[idx]
    return _Hits(
        x=tk * rx,
        y=tk * ry,
        z=camera_height + tk * rz,
        rx=rx,
        norm=norm,
        foot=tk * pixel[idx],
        dist=tk * norm,
        grazing_z=norm / np.maximum(np.abs(rz), 1e-3),
    )


def _floor_colour(rng: np.random.Generator, hits: _Hits, room: Room, light: _Lighting) -> np.ndarray:
    """The floor, darker far away and in the corners along the walls."""
    colour = floor_texture(rng, hits.x, hits.y, hits.foot, np.minimum(hits.foot * hits.grazing_z, 50.0))
    near_wall = np.minimum(np.minimum(room.back_y - hits.y, hits.x - room.left_x), room.right_x - hits.x)
    shade = light.floor_light * (1 - light.falloff * np.minimum(hits.dist / (1.3 * room.back_y), 1.0))
    shade = shade * (1 - 0.25 * np.exp(-near_wall * 4.0))
    return colour * shade


def _ceiling_colour(rng: np.random.Generator, hits: _Hits, room: Room, light: _Lighting) -> np.ndarray:
    """The ceiling, darker far away."""
    colour = ceiling_texture(rng, hits.x, hits.y, hits.foot, np.minimum(hits.foot * hits.grazing_z, 50.0))
    shade = light.ceiling_light * (1 - light.falloff * np.minimum(hits.dist / (1.3 * room.back_y), 1.0))
    return colour * shade


def _wall_colour(wall: int, hits: _Hits, room: Room, light: _Lighting) -> np.ndarray:
    """A wall, with a vertical gradient, darker far away and near the floor and the ceiling."""
    style = light.back_style if wall == _BACK_WALL else light.side_style
    if wall == _BACK_WALL:
        a, fa = hits.x, hits.foot
    else:
        a, fa = hits.y, np.minimum(hits.foot * hits.norm / np.maximum(np.abs(hits.rx), 1e-3), 50.0)
    z = hits.z
    colour = wall_texture(style, a, z, fa, hits.foot)
    shade = light.wall_light[wall - 1] * (1 + light.wall_gradient * (z - 1.5))
    shade = shade * (1 - 0.5 * light.falloff * np.minimum(hits.dist / (1.3 * room.back_y), 1.0))
    shade = shade * (1 - 0.22 * np.exp(-z * 5.0)) * (1 - 0.15 * np.exp(-(room.ceiling_z - z) * 5.0))
    return colour * shade


def render_room(
    rng: np.random.Generator, camera: CameraSpec, rays: Rays, width: int, height: int, falloff: float
) -> tuple[np.ndarray, Room]:
    """The room of one frame, ray cast per pixel: a planar float32 ``(3, height, width)`` image, and its box."""
    room = _room_shape(rng, camera.height_m)
    t, label = _cast(rays, room, camera.height_m)
    image = np.empty((3, t.size), dtype=np.float32)
    pixel = rays.norm * (1.0 / rays.focal)  # ray length per unit t per pixel
    light = _lighting(rng, falloff)
    for k in range(5):
        idx = np.flatnonzero(label == k)
        if idx.size == 0:
            continue
        hits = _hits(rays, t, idx, pixel, camera.height_m)
        if k == _FLOOR:
            colour = _floor_colour(rng, hits, room, light)
        elif k == _CEILING:
            colour = _ceiling_colour(rng, hits, room, light)
        else:
            colour = _wall_colour(k, hits, room, light)
        for c in range(3):
            image[c, idx] = colour[c]
    return image.reshape(3, height, width), room
