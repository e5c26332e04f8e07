"""What stands where: furniture clear of the people, and occluders in front of some of them.

Free-standing and wall-standing objects are placed where they hide no person; about one person in six
gets an object in front that hides the lower 10-40 % of the box, measured on the object's silhouette.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .furniture import bench, chair, pilaster, standing_counter, table, wall_cabinet
from .geometry import SceneCamera
from .placement import Placed
from .props import ball, coat_rack, column, floor_lamp, pole, potted_plant, rollup_banner, stacked_boxes, waste_bin
from .raster import Item
from .room import Room
from .sketch import floor_shadow

__all__ = ["furnish", "place_occluders"]


#: Low free-standing objects and how often each is asked for.
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
#: Tall thin objects of about a person's height, and how often each is asked for.
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

_Builder = Callable[[np.random.Generator, SceneCamera, float, float], Item | None]
#: The builders of the free-standing kinds that need no more than a floor point (poles and columns need the room).
_BUILDERS: dict[str, _Builder] = {
    "table": table,
    "chair": chair,
    "bench": bench,
    "boxes": stacked_boxes,
    "bin": waste_bin,
    "ball": ball,
    "coat_rack": coat_rack,
    "lamp": floor_lamp,
    "plant": potted_plant,
    "banner": rollup_banner,
}


def _free_object(rng: np.random.Generator, cam: SceneCamera, room: Room, kind: str, x: float, y: float) -> Item | None:
    """A free-standing object of ``kind`` at floor point ``(x, y)``, with its shadow on the floor."""
    if kind == "pole":
        item = pole(rng, cam, x, y, room)
    elif kind == "column":
        item = column(rng, cam, x, y, room)
    else:
        item = _BUILDERS[kind](rng, cam, x, y)
    if item is not None and item.footprint is not None:
        x0, x1, y0, y1 = item.footprint
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
        half_x, half_y = 0.6 * (x1 - x0) + 0.03, 0.6 * (y1 - y0) + 0.03
        shadow = floor_shadow(cam, centre, np.array([half_x, 0.0, 0.0]), np.array([0.0, half_y, 0.0]), 0.3)
        if shadow is not None:
            item.prims.insert(0, shadow)
    return item


def _occludes(item: Item, people: list[Placed], skip: int = -1) -> bool:
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


def _collides(fp: tuple[float, float, float, float], items: list[Item], room: Room) -> bool:
    """Whether footprint ``fp`` leaves the room, comes near the camera or overlaps another item's."""
    if fp[0] < room.left_x + 0.02 or fp[1] > room.right_x - 0.02 or fp[3] > room.back_y - 0.01 or fp[2] < 0.8:
        return True
    for item in items:
        if item.footprint is None:
            continue
        o = item.footprint
        if fp[0] < o[1] + 0.05 and fp[1] > o[0] - 0.05 and fp[2] < o[3] + 0.05 and fp[3] > o[2] - 0.05:
            return True
    return False


def _surely_in_front(cam: SceneCamera, people: list[Placed], x: float, y: float, reach: float) -> bool:
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


def _floor_spot(rng: np.random.Generator, cam: SceneCamera, room: Room, near: float = 1.5) -> tuple[float, float]:
    """A random floor point at least ``near`` metres away, roughly in the view."""
    y = float(rng.uniform(near, room.back_y - 0.4))
    u = float(rng.uniform(-0.1, 1.1)) * cam.width
    x = (u - cam.cx) / cam.fx * y
    return float(np.clip(x, room.left_x + 0.4, room.right_x - 0.4)), y


def furnish(
    rng: np.random.Generator, cam: SceneCamera, room: Room, people: list[Placed], items: list[Item]
) -> list[Item]:
    """Free-standing and wall-standing objects that stand clear of every person."""
    placed: list[Item] = []
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
                item = wall_cabinet(rng, cam, room, pos, wall)
            elif kind == "pilaster":
                item = pilaster(rng, cam, room, float(rng.uniform(room.left_x + 0.5, room.right_x - 0.5)))
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


def place_occluders(
    rng: np.random.Generator, cam: SceneCamera, people: list[Placed], room: Room
) -> tuple[list[Item], dict[int, float]]:
    """Objects in front of some of the people (three in ten are tried), and each occluded person's visible fraction.

    Returns:
        The objects, and a map from the index of each occluded person in ``people`` to the fraction of their
        box height left visible.
    """
    items: list[Item] = []
    visible: dict[int, float] = {}
    for index, person in enumerate(people):
        if rng.random() < 0.3:
            found = _place_occluder(rng, cam, person, people, items, room)
            if found is not None:
                items.append(found[0])
                visible[index] = found[1]
    return items, visible


def _place_occluder(
    rng: np.random.Generator, cam: SceneCamera, person: Placed, people: list[Placed], items: list[Item], room: Room
) -> tuple[Item, float] | None:
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
        item = standing_counter(rng, cam, x, y) if kind == "cabinet" else _free_object(rng, cam, room, kind, x, y)
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


def _covered_fraction(item: Item, box: tuple[float, float, float, float], cam: SceneCamera) -> float:
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
