"""Ground-plane geometry: the rows of each pyramid scale where a person can stand.

People stand on the floor. With a calibrated camera (:class:`~.spec.CameraSpec`:
mounting height, downward tilt, pinhole intrinsics) and a range of body
heights, a person whose box is ``h`` pixels tall can only appear with their
feet on the rows where the floor is at the distance that makes a body of that
height ``h`` pixels tall. Each pyramid scale detects one range of box heights
(the person a window at that scale is trained for, up to the geometric
half-step to its neighbours: :func:`scale_height_ranges`), so each scale's
network only needs the windows whose centre can be such a person's box
centre. :func:`ground_plane_bands` computes, per scale:

1. the box heights the scale detects and, from the camera, every floor
   distance and body height that gives such a box: the band of frame rows
   where the feet can be (``foot_rows``) and the band of box centres
   (``centre_rows``);
2. the score-map rows whose windows are centred in that band, widened by
   ``margin_rows`` on each side (a network's peak sits a few strides off the
   box centre, and a camera is never calibrated exactly), clipped to the map;
3. the rows of the scale's resized frame that those windows read: the
   network's receptive field is its window, so score-map rows ``i0..i1`` read
   rows ``stride·i0`` to ``stride·i1 + window_height``. Starting at a multiple
   of the network's stride keeps every pooling step aligned, so the scores
   computed on the slice are the scores of the full map, row for row;
4. the rows of the common grid whose interpolated score only reads computed
   rows (``grid_rows``): inside them the sliced detector's score volume is the
   full detector's.

Geometry (see :mod:`.spec`): a point at height ``z`` on the floor ``y`` metres
ahead projects to row ``v = cy + fy·tan(atan((hc − z) / y) − tilt)``; the row
does not depend on the sideways position, so a person's box height and
centre row depend only on their distance and body height.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, fields

import numpy as np

from graphopt.camera import feasible_rows
from graphopt.errors import ConfigError

from .grid import resample_matrix
from .spec import CameraSpec, DetectorConfig, DetectorSpec

__all__ = ["DEFAULT_MARGIN_ROWS", "ScaleBand", "ground_plane_bands", "scale_height_ranges"]

logger = logging.getLogger(__name__)

#: Score-map rows added on each side of a scale's band by default (3 rows are
#: 12 pixels of the network's input). A network's peak sits a little off a
#: person's box centre: the unsliced detector's true positives on the
#: synthetic test set are centred up to 1.6 score rows outside the exact band,
#: so their grid cells interpolate between windows up to 2 rows outside; 3
#: keeps them all with a row to spare for a camera calibrated less exactly
#: than the synthetic one.
DEFAULT_MARGIN_ROWS = 3

# Floor distances sampled per body height, and body heights sampled over the range.


@dataclass(frozen=True)
class ScaleBand:
    """The rows one pyramid scale computes under the ground-plane assumption.

    Row ranges of floats are in frame pixels (edge-based, ``v`` down); integer
    ranges are indices, ``(first, last)`` inclusive for map and grid rows and
    ``(start, stop)`` half-open for the resized frame's rows.

    Attributes:
        index: the scale's position in ``spec.scales``.
        scale: the pyramid scale.
        person_px: box heights in frame pixels this scale detects.
        foot_rows: frame rows where the feet of such a person can be (may
            extend past the frame); ``None`` if no body height in range gives
            such a box.
        centre_rows: frame rows of their box centres; ``None`` as above.
        map_rows: score-map rows computed, ``None`` for none.
        map_height: rows of the scale's full score map.
        input_rows: rows of the scale's resized frame the network reads, ``None`` for none.
        input_height: rows of the scale's resized frame.
        grid_rows: common-grid rows whose score reads only computed map rows
            (the score there is exactly the unsliced detector's); ``None`` for none.
    """

    index: int
    scale: float
    person_px: tuple[float, float]
    foot_rows: tuple[float, float] | None
    centre_rows: tuple[float, float] | None
    map_rows: tuple[int, int] | None
    map_height: int
    input_rows: tuple[int, int] | None
    input_height: int
    grid_rows: tuple[int, int] | None

    @property
    def rows_kept(self) -> int:
        """Score-map rows computed."""
        return 0 if self.map_rows is None else self.map_rows[1] - self.map_rows[0] + 1

    @property
    def input_rows_kept(self) -> int:
        """Rows of the resized frame the network reads."""
        return 0 if self.input_rows is None else self.input_rows[1] - self.input_rows[0]

    @property
    def sliced(self) -> bool:
        """Whether the scale computes fewer rows than its full map."""
        return self.rows_kept < self.map_height

    def frame_rows(self, spec: DetectorSpec) -> tuple[float, float] | None:
        """The input rows in frame pixels (what the network sees, for drawing)."""
        if self.input_rows is None:
            return None
        factor = spec.frame_height / self.input_height
        return (self.input_rows[0] * factor, self.input_rows[1] * factor)

    def describe(self) -> str:
        """One line for reports: what is kept of this scale."""
        low, high = self.person_px
        people = f"scale {self.scale:g} (people {low:.0f}-{high:.0f} px)"
        if self.map_rows is None:
            return f"{people}: no rows, no such person can stand in view"
        first, last = self.map_rows
        assert self.input_rows is not None
        return (
            f"{people}: score rows {first}-{last} of {self.map_height} ({self.rows_kept / self.map_height:.0%}), "
            f"input rows {self.input_rows[0]}-{self.input_rows[1]} of {self.input_height}"
        )


def scale_height_ranges(spec: DetectorSpec) -> tuple[tuple[float, float], ...]:
    """Box heights in frame pixels that each scale detects, in the spec's order.

    A scale detects the person its window is trained for (``person_height_px /
    scale``) up to the geometric mean with each neighbour's; the first and
    last scales end where :meth:`~.spec.DetectorSpec.detectable_heights` ends
    (the heights the scenes are rendered with and the pyramid covers).
    """
    heights = [spec.person_height_at(scale) for scale in spec.scales]
    bounds = [spec.detectable_heights()[0]]
    bounds.extend(math.sqrt(a * b) for a, b in itertools.pairwise(heights))
    bounds.append(spec.detectable_heights()[1])
    return tuple(itertools.pairwise(bounds))


def _exact_grid_rows(spec: DetectorSpec, scale: float, first: int, last: int) -> tuple[int, int] | None:
    """Grid rows whose interpolation taps all lie in score-map rows ``first..last``."""
    weights, valid = resample_matrix(spec, scale, "y")
    taps = weights != 0
    outside = taps[:, :first].any(axis=1) | taps[:, last + 1 :].any(axis=1)
    rows = np.flatnonzero(valid & ~outside & taps.any(axis=1))
    return (int(rows[0]), int(rows[-1])) if rows.size else None


def _check_camera(config: DetectorConfig) -> None:
    if config.camera_keys is None:
        return
    required = [f.name for f in fields(CameraSpec)]
    missing = [name for name in required if name not in config.camera_keys]
    if missing:
        table = "has no " + ", ".join(missing) if config.camera_keys else "is missing"
        raise ConfigError(
            f"{config.source}: [camera] {table}; ground-plane slicing needs the calibrated camera's "
            f"{', '.join(required)} (the defaults describe an example robot, not your camera)"
        )


def _band(config: DetectorConfig, index: int, scale: float, low: float, high: float, margin_rows: int) -> ScaleBand:
    """One scale's band: the rows where people ``low``-``high`` pixels tall stand, in each coordinate system."""
    spec, camera = config.detector, config.camera
    map_height = spec.score_map_shape(scale)[0]
    input_height = spec.scaled_frame_shape(scale)[0]
    feet, centres = feasible_rows(camera, camera.person_height_m, low, high)
    foot_rows = centre_rows = map_rows = input_rows = grid_rows = None
    if centres.size:
        foot_rows = (float(feet.min()), float(feet.max()))
        centre_rows = (float(centres.min()), float(centres.max()))
        factor = input_height / spec.frame_height
        # Window i is centred at stride·i + window_height/2 of the resized frame (as in grid.resample_matrix).
        first_exact, last_exact = ((c * factor - spec.window_height / 2) / spec.stride for c in centre_rows)
        first = max(math.floor(first_exact) - margin_rows, 0)
        last = min(math.ceil(last_exact) + margin_rows, map_height - 1)
        if first <= last:
            map_rows = (first, last)
            input_rows = (spec.stride * first, spec.stride * last + spec.window_height)
            grid_rows = _exact_grid_rows(spec, scale, first, last)
    return ScaleBand(index=index, scale=scale, person_px=(low, high), foot_rows=foot_rows, centre_rows=centre_rows,
                     map_rows=map_rows, map_height=map_height, input_rows=input_rows, input_height=input_height,
                     grid_rows=grid_rows)


def ground_plane_bands(config: DetectorConfig, *, margin_rows: int = DEFAULT_MARGIN_ROWS) -> tuple[ScaleBand, ...]:
    """The band of rows each pyramid scale computes (see the module docstring).

    Args:
        config: the detector and its calibrated camera; every ``[camera]`` key
            must be given when it was loaded from a file.
        margin_rows: score-map rows added on each side of every band.

    Raises:
        ConfigError: the camera description lacks a key, the horizon is
            outside the frame, or no scale has a row where a person of the
            camera's height range fits.
    """
    if margin_rows < 0:
        raise ConfigError(f"the ground-plane margin must be at least 0 score-map rows, got {margin_rows}")
    _check_camera(config)
    spec, camera = config.detector, config.camera
    horizon = camera.horizon_v()
    if not 0 <= horizon < spec.frame_height:
        where = "above" if horizon < 0 else "below"
        raise ConfigError(
            f"{config.source}: with tilt_deg {camera.tilt_deg:g} and focal_px {camera.focal_px[1]:g} the horizon "
            f"lies at row {horizon:.0f}, {where} the {spec.frame_width}x{spec.frame_height} frame; ground-plane "
            "slicing needs the horizon in view (check the tilt's sign and units)"
        )
    bands = [_band(config, index, scale, low, high, margin_rows)
             for index, (scale, (low, high)) in enumerate(zip(spec.scales, scale_height_ranges(spec), strict=True))]
    if all(band.map_rows is None for band in bands):
        short, tall = camera.person_height_m
        raise ConfigError(
            f"{config.source}: no pyramid scale has a row where a person {short:g}-{tall:g} m tall can stand in "
            f"view of this camera (height_m {camera.height_m:g}, tilt_deg {camera.tilt_deg:g}); check the camera "
            "and the person heights"
        )
    for band in bands:
        logger.debug("ground plane: %s", band.describe())
    return tuple(bands)
