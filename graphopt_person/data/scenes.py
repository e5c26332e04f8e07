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

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..spec import DetectorConfig
from .geometry import SceneCamera, pixel_rays
from .layout import furnish, place_occluders
from .person import person_item
from .placement import place_people
from .raster import Item
from .room import render_room
from .sensor import finish
from .walls import wall_decor

__all__ = ["PersonInstance", "Scene", "generate_scenes", "render_scene", "scene_seeds"]

logger = logging.getLogger(__name__)

# First seed of each split; the ranges are disjoint for up to 1,000,000 scenes per split.
_SPLIT_BASES = {"train": 0, "test": 1_000_000, "validation": 2_000_000}
_SPLIT_SIZE = 1_000_000


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
    rays = pixel_rays(camera, width, height)
    room_rng, object_rng, people_rng, noise_rng = _streams(seed)

    light_side = 1.0 if room_rng.random() < 0.5 else -1.0
    falloff = float(room_rng.uniform(0.1, 0.4))
    image, room = render_room(room_rng, camera, rays, width, height, falloff)
    cam = SceneCamera(camera, width, height, light_side, falloff, room.back_y)

    people = place_people(people_rng, cam, spec.box_aspect, spec.detectable_heights(), room, max_people)
    items, visible = place_occluders(people_rng, cam, people, room)
    person_items = [person_item(people_rng, cam, p.x_m, p.y_m, p.height_m) for p in people]
    wall_items = wall_decor(object_rng, cam, room)
    items.extend(furnish(object_rng, cam, room, people, items))
    _draw(image, cam, wall_items, items + (person_items if draw_people else []))

    frame = finish(noise_rng, image, rays)
    persons = tuple(PersonInstance(p.x_m, p.y_m, p.height_m, p.box, visible.get(i, 1.0)) for i, p in enumerate(people))
    boxes = np.array([p.box for p in persons], dtype=np.float32).reshape(-1, 4)
    return Scene(image=frame, boxes=boxes, persons=persons, seed=seed)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent random streams of the room, the objects, the people and the sensor noise.

    Each part of the frame draws from its own stream, so that leaving the people out (or changing how they
    are drawn) leaves the rest of the frame unchanged.
    """
    room_seq, object_seq, people_seq, noise_seq = np.random.SeedSequence(seed).spawn(4)
    return (
        np.random.default_rng(room_seq),
        np.random.default_rng(object_seq),
        np.random.default_rng(people_seq),
        np.random.default_rng(noise_seq),
    )


def _draw(image: np.ndarray, cam: SceneCamera, wall_items: list[Item], items: list[Item]) -> None:
    """Draws far to near (the painter's algorithm): the things on the walls, then everything else by depth."""
    for item in wall_items:
        item.draw(image, cam.light2d)
    for item in sorted(items, key=lambda it: -it.depth):
        item.draw(image, cam.light2d)
