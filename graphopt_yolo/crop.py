"""Fixed-camera row cropping: the network reads only the band of letterboxed rows where objects can be.

A fixed camera sees its objects in a band of rows: people stand on the floor,
so their boxes lie between the highest head and the lowest foot the camera
can see at the sizes the detector finds. The config gives the band in frame
rows, explicitly (``crop_rows = [top, bottom]``) or from a calibrated camera
(``[yolo.camera]``: :class:`CameraBand`, through
:func:`graphopt.camera.feasible_rows`, the geometry of the person detector's
ground-plane slicing). :func:`input_rows` maps it into the letterboxed input,
widens it by a margin of input rows on each side and rounds it outwards to the
network's largest stride, so that every feature map keeps whole cells; the
network then reads that band only (a ``Slice`` after the letterbox), and the
decode follows: the grid cells of the band, boxes moved down by its top
(:class:`graphopt_yolo.layout.Layout` ``rows``).

A convolutional network's output near the band's edges sees padding where the
uncropped one saw pixels: detections inside the band change a little, more
for a small margin. The ``crop_rows`` pass (:mod:`graphopt_yolo.cropping`)
measures that for a sweep of margins so that the user picks one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from graphopt.errors import ConfigError

from .layout import STRIDES, Layout

if TYPE_CHECKING:
    from .config import YoloConfig

__all__ = ["DEFAULT_MARGIN", "CameraBand", "crop_network", "frame_band", "input_rows", "parse_camera"]

#: Input rows added above and below the band before rounding to the stride: one cell of the coarsest map.
DEFAULT_MARGIN = max(STRIDES)


@dataclass(frozen=True)
class CameraBand:
    """A calibrated camera above a flat floor and the objects standing on it (the ``[yolo.camera]`` table).

    Attributes:
        height_m, tilt_deg, focal_px, principal_point: the camera (:class:`graphopt.camera.PinholeCamera`).
        object_height_m: the objects' real heights, ``[min, max]`` metres (people: about 1.5–1.95).
        object_px: the box heights, ``[min, max]`` frame pixels, the detector is to find.
    """

    height_m: float = 2.5
    tilt_deg: float = 15.0
    focal_px: tuple[float, float] = (525.0, 525.0)
    principal_point: tuple[float, float] = (320.0, 240.0)
    object_height_m: tuple[float, float] = (1.5, 1.95)
    object_px: tuple[float, float] = (24.0, 480.0)

    def rows(self) -> tuple[float, float] | None:
        """Frame rows ``(top, bottom)`` spanned by every object's box, or None where none can be seen."""
        from graphopt.camera import PinholeCamera, feasible_rows

        camera = PinholeCamera(height_m=self.height_m, tilt_deg=self.tilt_deg, focal_px=self.focal_px,
                               principal_point=self.principal_point)
        feet, centres = feasible_rows(camera, self.object_height_m, *self.object_px)
        if feet.size == 0:
            return None
        heads = 2 * centres - feet
        return float(np.min(heads)), float(np.max(feet))


_CAMERA_PAIRS = ("focal_px", "principal_point", "object_height_m", "object_px")


def parse_camera(table: Any, source: str) -> CameraBand:
    """The ``[yolo.camera]`` table as a :class:`CameraBand`; one-sentence ConfigErrors."""
    where = f"{source}: [yolo.camera]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    known = {"height_m", "tilt_deg", *_CAMERA_PAIRS}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}'; known keys: {', '.join(sorted(known))}")
        if key in _CAMERA_PAIRS:
            if not (isinstance(raw, list) and len(raw) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)):
                raise ConfigError(f"{where} {key} must be a list of 2 numbers, got {raw!r}")
            values[key] = (float(raw[0]), float(raw[1]))
        elif isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(f"{where} {key} must be a number, got {raw!r}")
        else:
            values[key] = float(raw)
    band = CameraBand(**values)
    if band.height_m <= 0 or not -60 < band.tilt_deg < 89 or min(band.focal_px) <= 0:
        raise ConfigError(f"{where}: height_m must be above 0, tilt_deg in (-60, 89) and focal_px positive")
    low, high = band.object_height_m
    if not 0 < low <= high:
        raise ConfigError(f"{where} object_height_m must be [min, max] with 0 < min <= max, got {[low, high]}")
    low, high = band.object_px
    if not 0 < low <= high:
        raise ConfigError(f"{where} object_px must be [min, max] with 0 < min <= max, got {[low, high]}")
    return band


def frame_band(config: YoloConfig) -> tuple[float, float] | None:
    """The frame rows ``(top, bottom)`` where the config's objects can be, clipped to the frame; None if not given.

    Raises:
        ConfigError: a camera that sees no object of the given sizes in the frame.
    """
    rows: tuple[float, float] | None
    if config.crop_rows is not None:
        rows = float(config.crop_rows[0]), float(config.crop_rows[1])
    elif config.camera is not None:
        rows = config.camera.rows()
        if rows is None or rows[1] <= 0 or rows[0] >= config.frame_height:
            raise ConfigError(f"{config.source}: the [yolo.camera] sees no object {list(config.camera.object_px)} "
                              "px tall inside the frame; check its height, tilt and object sizes")
    else:
        return None
    return max(0.0, rows[0]), min(float(config.frame_height), rows[1])


def input_rows(config: YoloConfig, layout: Layout, margin: int = DEFAULT_MARGIN) -> tuple[int, int] | None:
    """The input rows ``[top, bottom)`` the network reads: the band letterboxed, ``margin`` wider, stride-rounded.

    None when the config gives no band; ``(0, h)`` when the band covers the whole input.
    """
    from .decode import placement

    band = frame_band(config)
    if band is None:
        return None
    if margin < 0:
        raise ConfigError(f"a crop margin is at least 0 input rows, got {margin}")
    place = placement(config, layout.input_hw)
    gain, offset = place.gain[1], place.offset[1]
    stride, height = max(STRIDES), layout.input_hw[0]
    top = math.floor((band[0] * gain + offset - margin) / stride) * stride
    bottom = math.ceil((band[1] * gain + offset + margin) / stride) * stride
    return max(0, top), min(height, max(bottom, top + stride))


def crop_network(network: onnx.ModelProto, layout: Layout) -> onnx.ModelProto:
    """``network`` declared for its band's input (``layout.rows``), checked to run and give the band's predictions.

    Raises:
        ConfigError: the export cannot run on fewer rows (shapes fixed inside the graph), in one sentence.
    """
    from graphopt.backends.onnxruntime import create_session, run_session
    from graphopt.errors import RuntimeRunError

    if layout.rows is None:
        return network
    cropped = onnx.ModelProto()
    cropped.CopyFrom(network)
    height, width = layout.network_hw
    for value in cropped.graph.input:
        if value.name == layout.input:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, (1, 3, height, width), strict=True):
                dim.Clear()
                dim.dim_value = size
    for value in cropped.graph.output:
        value.type.tensor_type.ClearField("shape")
    del cropped.graph.value_info[:]
    image = np.zeros((1, 3, height, width), np.float32)
    try:
        session = create_session(cropped, what="the YOLO network on its band of rows")
        shape = next(iter(run_session(session, {layout.input: image}).values())).shape
    except RuntimeRunError as error:
        raise ConfigError(f"the network does not run on its band of {height} of {layout.input_hw[0]} input rows, "
                          f"so its graph fixes the input size ({error})") from None
    expected = layout.predictions
    if expected not in shape[1:]:
        raise ConfigError(f"the network gives {list(shape)} on its band of {height} input rows, not the "
                          f"{expected} predictions of its grid: its decode fixes the input size")
    return cropped
