"""Articulated people: a body built in 3D around its floor point and drawn as primitives.

A person walks or stands, faces any way, and has a varied build, pose and clothes (trousers, shorts,
skirt or dress; sleeves, jacket, backpack; hair). Limbs are capsules, the torso cylinder-shaded
quads, the head ellipses; a soft shadow lies under the feet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .geometry import UP, SceneCamera
from .materials import HAIR, SKIN, cloth, hsv, palette_pick
from .raster import Item, Polygon
from .sketch import Sketch, floor_shadow

__all__ = ["person_item"]


def _limb(forward: np.ndarray, side: np.ndarray, flex: float, abduct: float) -> np.ndarray:
    """Direction of a limb hanging down, swung forward by ``flex`` and outward by ``abduct`` (radians)."""
    d = math.sin(flex) * math.cos(abduct) * forward + math.sin(abduct) * side - math.cos(flex) * math.cos(abduct) * UP
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


def _heading(rng: np.random.Generator, x: float, y: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which way a person at floor point ``(x, y)`` faces: ``(view, across, forward, right)`` unit vectors.

    ``view`` points from the camera to the person and ``across`` is horizontal and perpendicular to it;
    the person faces away, towards the camera, sideways or diagonally, give or take a little.
    """
    view = np.array([x, y, 0.0]) / math.hypot(x, y)
    across = np.array([view[1], -view[0], 0.0])  # horizontal, perpendicular to the line of sight
    facing = int(rng.choice(4, p=[0.32, 0.25, 0.28, 0.15]))
    turn = [math.pi, 0.0, math.pi / 2, math.pi / 4][facing] * (1 if rng.random() < 0.5 else -1)
    if facing == 3 and rng.random() < 0.5:
        turn = math.copysign(3 * math.pi / 4, turn)
    yaw = math.atan2(view[1], view[0]) + turn + float(rng.normal(0, 0.2))
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    return view, across, fwd, right


_LegPose = tuple[float, float, float]  # (flex, abduct, knee)
_ArmPose = tuple[float, float, float, float]  # (flex, abduct, elbow, inward)


def _pose(rng: np.random.Generator) -> tuple[list[_LegPose], list[_ArmPose]]:
    """The pose of both legs and both arms: half the people walk (legs and arms swing), half stand."""
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
    return legs, arms


@dataclass(frozen=True)
class _Outfit:
    """What a person wears and their colours; ``hem`` and ``flare`` of a skirt or dress in metres."""

    skin: np.ndarray
    hair: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    shoes: np.ndarray
    lower: str  # "trousers", "shorts", "skirt" or "dress"
    sleeves: str  # "long", "short" or "none"
    jacket: np.ndarray | None
    tucked: bool
    hair_style: str  # "short", "long" or "bald"
    backpack: np.ndarray | None
    legwear: np.ndarray
    light: float
    hem: float
    flare: float

    @property
    def shirt(self) -> np.ndarray:
        """The colour of the upper body: the jacket if there is one."""
        return self.top if self.jacket is None else self.jacket

    @property
    def skirt_like(self) -> bool:
        """Whether the legs show below a skirt or a dress."""
        return self.lower in ("dress", "skirt")


def _outfit(rng: np.random.Generator, female: bool, height: float) -> _Outfit:
    """Clothes and colours of one person ``height`` metres tall."""
    skin = palette_pick(rng, SKIN, [1, 1, 1, 1, 1, 1])
    hair = palette_pick(rng, HAIR, [3, 3, 2, 1.5, 1, 0.5])
    top = cloth(rng)
    bottom = (
        cloth(rng)
        if rng.random() < 0.85
        else hsv(rng.uniform(0.58, 0.64), rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.5))
    )  # jeans
    shoes = hsv(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.05, 0.3)) if rng.random() < 0.75 else cloth(rng)
    lower = "trousers"
    if female and rng.random() < 0.5:
        lower = "dress" if rng.random() < 0.5 else "skirt"
    elif rng.random() < 0.1:
        lower = "shorts"
    if lower == "dress":
        bottom = top
    sleeves = ["long", "short", "none"][int(rng.choice(3, p=[0.55, 0.35, 0.1]))]
    jacket = cloth(rng) if rng.random() < 0.25 else None
    tucked = bool(rng.random() < 0.3) and lower != "dress"
    hair_style = ["short", "long", "bald"][int(rng.choice(3, p=[0.35, 0.6, 0.05] if female else [0.8, 0.08, 0.12]))]
    backpack = cloth(rng) if rng.random() < 0.12 else None
    legwear = skin if rng.random() < 0.6 else cloth(rng) * 0.6
    light = float(rng.uniform(0.85, 1.1))
    hem = float(rng.uniform(0.27, 0.42)) * height
    flare = float(rng.uniform(0.01, 0.06)) * height
    return _Outfit(
        skin, hair, top, bottom, shoes, lower, sleeves, jacket, tucked, hair_style, backpack, legwear, light, hem, flare
    )


class _Figure:
    """One person being drawn: their frame of reference, their build, and the sketch their parts go into.

    Heights are given as fractions of the body height ``height`` above the standing surface, which
    :meth:`stand` lowers by ``ground`` so that the shoes touch the floor.
    """

    def __init__(
        self,
        cam: SceneCamera,
        base: np.ndarray,
        height: float,
        build: float,
        female: bool,
        axes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        light: float,
    ):
        self.cam = cam
        self.sketch = Sketch(cam)
        self.base = base
        self.height = height
        self.build = build
        self.female = female
        self.view, self.across, self.fwd, self.right = axes
        self.light = light
        self.ground = 0.0
        self.shoulder_half = (0.1 if female else 0.11) * height * build
        self.hip_half = 0.052 * height * build * (1.1 if female else 1.0)

    def depth_of(self, p: np.ndarray) -> float:
        """Distance of ``p`` along the line of sight to the person, for ordering the parts."""
        return float(p[0] * self.view[0] + p[1] * self.view[1])

    def at(self, z_frac: float) -> np.ndarray:
        """The point on the body's vertical axis at ``z_frac`` of the body height."""
        return self.base + (z_frac * self.height - self.ground) * UP

    def stand(self, legs: list[_LegPose]) -> list[tuple[np.ndarray, ...]]:
        """``(hip, knee, ankle, heel, toe)`` of each leg, lifted or lowered so that the shoes touch the floor."""
        H = self.height
        pelvis = self.base + 0.52 * H * UP
        joints: list[tuple[np.ndarray, ...]] = []
        for k, (flex, abduct, knee) in enumerate(legs):
            side = self.right if k else -self.right
            hip = pelvis + self.hip_half * side
            thigh = _limb(self.fwd, side, flex, abduct)
            knee_p = hip + 0.245 * H * thigh
            ankle = knee_p + 0.235 * H * _bend(thigh, -self.fwd, knee)
            toe_dir = self.fwd + 0.15 * side
            toe_dir = toe_dir / np.linalg.norm(toe_dir)
            heel = ankle - 0.025 * H * self.fwd - 0.028 * H * UP
            toe = ankle + 0.1 * H * toe_dir - 0.03 * H * UP
            joints.append((hip, knee_p, ankle, heel, toe))
        self.ground = min(min(float(j[3][2]) - 0.022 * H, float(j[4][2]) - 0.02 * H) for j in joints)
        lift = -self.ground * UP  # moves the shoes onto the floor (bent knees lower the body a little)
        return [tuple(p + lift for p in j) for j in joints]

    def cap(self, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, colour: np.ndarray, bias: float) -> None:
        """A limb segment; ``bias`` moves it in the drawing order among parts at the same depth."""
        key = self.depth_of((p0 + p1) / 2) + bias
        self.sketch.stick(p0, p1, r0, r1, colour * self.light, key=key, shade=0.35)

    def torso_quad(
        self,
        top: tuple[float, float, float],
        bottom: tuple[float, float, float],
        colour: np.ndarray,
        bias: float,
        centre_shift: np.ndarray | None = None,
    ) -> None:
        """A cylinder-shaded slab of the torso between two heights, each ``(z_frac, half width, half depth)``.

        Its outline is the slab's width seen across the line of sight.
        """
        (z_top, a_top, c_top), (z_bot, a_bot, c_bot) = top, bottom

        def half(a: float, c: float) -> float:
            return math.hypot(a * float(self.right @ self.across), c * float(self.fwd @ self.across))

        shift = np.zeros(3) if centre_shift is None else centre_shift
        ct, cb = self.at(z_top) + shift, self.at(z_bot) + shift
        ht, hb = half(a_top, c_top), half(a_bot, c_bot)
        across = self.across
        corners = np.array([ct - ht * across, ct + ht * across, cb + hb * across, cb - hb * across])
        uv, _ = self.cam.project(corners)
        if not self.sketch.grow(uv):
            return
        mid = float(uv[:, 0].mean())
        halfw = float(uv[:, 0].max() - uv[:, 0].min()) / 2
        colour = self.sketch.shade(colour * self.light, (ct + cb) / 2)
        self.sketch.add(self.depth_of((ct + cb) / 2) + bias, Polygon(uv, colour, cylinder=(mid, halfw, 0.35)))


def _draw_legs(figure: _Figure, joints: list[tuple[np.ndarray, ...]], outfit: _Outfit) -> None:
    """Legs, feet and the part of the lower garment around them."""
    H, build = figure.height, figure.build
    for hip, knee_p, ankle, heel, toe in joints:
        thigh_colour = outfit.legwear if outfit.skirt_like else outfit.bottom
        shin_colour = outfit.legwear if outfit.lower in ("dress", "skirt", "shorts") else outfit.bottom
        loose = 1.1 if outfit.lower == "trousers" else 1.0
        bias = 0.5 if outfit.skirt_like else 0.02
        figure.cap(hip, knee_p, 0.05 * H * build * loose, 0.035 * H * build * loose, thigh_colour, bias)
        figure.cap(knee_p, ankle, 0.034 * H * build * loose, 0.024 * H * build, shin_colour, bias)
        figure.cap(heel, toe, 0.022 * H, 0.02 * H, outfit.shoes, 0.02)


def _draw_torso(rng: np.random.Generator, figure: _Figure, outfit: _Outfit) -> None:
    """Chest, hips, belt, skirt, open jacket, shoulders and backpack."""
    H, build, female = figure.height, figure.build, figure.female
    shoulder_half = figure.shoulder_half
    chest_a, waist_a, hip_a = shoulder_half + 0.01 * H, 0.09 * H * build, (0.11 if female else 0.1) * H * build
    shirt = outfit.shirt
    hip_colour = outfit.bottom if (outfit.tucked or outfit.lower == "dress") else shirt
    figure.torso_quad((0.815, chest_a, 0.055 * H), (0.6, waist_a, 0.06 * H), shirt, 0.0)
    hip_z = 0.47 if outfit.lower != "dress" else 0.55
    figure.torso_quad((0.62, waist_a, 0.06 * H), (hip_z, hip_a, 0.065 * H), hip_colour, 0.001)
    if outfit.tucked and rng.random() < 0.6:  # a belt
        belt = cloth(rng) * 0.5
        figure.torso_quad((0.55, waist_a * 1.05, 0.062 * H), (0.53, hip_a * 1.02, 0.065 * H), belt, -0.001)
    if outfit.skirt_like:
        hem = (outfit.hem / H, hip_a + outfit.flare, 0.07 * H + outfit.flare)
        figure.torso_quad((0.56, hip_a, 0.065 * H), hem, outfit.bottom, 0.0)
    if outfit.jacket is not None and float(figure.fwd @ figure.view) < -0.5:  # open jacket: the shirt shows in front
        shift = 0.06 * H * figure.fwd
        figure.torso_quad((0.8, chest_a * 0.3, 0.0), (0.5, chest_a * 0.25, 0.0), outfit.top, -0.002, centre_shift=shift)
    right = figure.right
    shoulders = [
        figure.at(0.795) - (shoulder_half - 0.01 * H) * right,
        figure.at(0.795) + (shoulder_half - 0.01 * H) * right,
    ]
    figure.cap(shoulders[0], shoulders[1], 0.028 * H * build, 0.028 * H * build, shirt, -0.001)
    # The slope from the shoulders up to the neck (trapezius) gives the head-and-shoulders outline.
    figure.torso_quad((0.855, 0.045 * H * build, 0.04 * H), (0.79, shoulder_half * 0.92, 0.05 * H), shirt, -0.0015)
    if outfit.backpack is not None:
        pack = figure.at(0.66) - 0.09 * H * figure.fwd
        figure.cap(pack + 0.07 * H * UP, pack - 0.06 * H * UP, 0.075 * H, 0.08 * H, outfit.backpack, 0.0)


def _draw_arms(figure: _Figure, arms: list[_ArmPose], outfit: _Outfit) -> None:
    """Both arms from the shoulders to the hands, in sleeves or bare."""
    H, build = figure.height, figure.build
    for k, (flex, abduct, elbow, inward) in enumerate(arms):
        side = figure.right if k else -figure.right
        shoulder = figure.at(0.805) + (figure.shoulder_half - 0.015 * H) * side
        upper = _limb(figure.fwd, side, flex, abduct)
        elbow_p = shoulder + 0.18 * H * upper
        toward = figure.fwd * math.cos(inward) - side * math.sin(inward)
        fore = _bend(upper, toward, elbow)
        wrist = elbow_p + 0.15 * H * fore
        hand = wrist + 0.075 * H * _bend(fore, toward, 0.15)
        sleeve = outfit.shirt if outfit.sleeves != "none" else outfit.skin
        lower_sleeve = outfit.shirt if outfit.sleeves == "long" else outfit.skin
        figure.cap(shoulder, elbow_p, 0.033 * H * build, 0.028 * H * build, sleeve, -0.01)
        figure.cap(elbow_p, wrist, 0.026 * H * build, 0.02 * H * build, lower_sleeve, -0.011)
        figure.cap(wrist, hand, 0.018 * H, 0.016 * H, outfit.skin, -0.012)


def _draw_head(figure: _Figure, outfit: _Outfit) -> None:
    """Neck, face and hair (long hair falls behind the shoulders)."""
    H, build, fwd, at = figure.height, figure.build, figure.fwd, figure.at
    figure.cap(at(0.82), at(0.885), 0.033 * H * build, 0.03 * H * build, outfit.skin, -0.2)
    head = at(0.935)
    radii = (0.047 * H, 0.064 * H)
    face_c = head + 0.012 * H * fwd - 0.004 * H * UP
    hair_c = head - 0.012 * H * fwd + 0.009 * H * UP
    if outfit.hair_style == "long":
        figure.cap(head - 0.025 * H * fwd, at(0.79) - 0.045 * H * fwd, 0.045 * H, 0.05 * H, outfit.hair, 0.0)
    sketch, light = figure.sketch, figure.light
    face_key, hair_key = figure.depth_of(face_c) - 0.25, figure.depth_of(hair_c) - 0.25
    sketch.blob(face_c, radii[0] * 0.97, radii[1] * 0.97, outfit.skin * light, key=face_key, shade=0.3)
    if outfit.hair_style != "bald":
        sketch.blob(hair_c, radii[0] * 1.05, radii[1] * 1.0, outfit.hair * light, key=hair_key, shade=0.3)


def person_item(rng: np.random.Generator, cam: SceneCamera, x: float, y: float, height: float) -> Item:
    """An articulated person standing at floor point ``(x, y)``; the head top is at ``height``."""
    build = float(rng.uniform(0.88, 1.18))
    female = bool(rng.random() < 0.45)
    axes = _heading(rng, x, y)
    legs, arms = _pose(rng)
    outfit = _outfit(rng, female, height)
    figure = _Figure(cam, np.array([x, y, 0.0]), height, build, female, axes, outfit.light)
    joints = figure.stand(legs)
    shadow = floor_shadow(cam, figure.base, 0.165 * height * figure.right, 0.13 * height * figure.fwd, 0.35)
    if shadow is not None:
        figure.sketch.add(figure.depth_of(figure.base) + 10.0, shadow)
    _draw_legs(figure, joints, outfit)
    _draw_torso(rng, figure, outfit)
    _draw_arms(figure, arms, outfit)
    _draw_head(figure, outfit)
    return figure.sketch.item(y, None) or Item(y, [], (0, 0, 0, 0), None)
