"""``graphopt bands``: the person workload's own command (``detect`` and ``evaluate`` are the core's).

``bands`` draws the rows each pyramid scale computes under the ground-plane
assumption, to check a camera's calibration. It is registered under the
``graphopt.commands`` entry points; the detector modules are imported only
when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from graphopt.errors import ConfigError, ModelSaveError

__all__ = ["bands"]

_CONFIG_HELP = "Detector and camera description (TOML); default: the built-in defaults."


def _one_frame_source(image_path: Path | None, scene: int | None) -> None:
    """Checks that exactly one of ``--image`` and ``--scene`` was given."""
    if (image_path is None) == (scene is None):
        raise click.UsageError("give exactly one of --image and --scene")


def _frame(config: Any, image_path: Path | None, scene: int | None, output_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The camera frame from ``--image`` or ``--scene`` and its ground-truth boxes (none for an image file).

    Raises:
        ModelSaveError: the output would overwrite the input image.
        GraphoptError: the image file is missing or not an image Pillow reads.
        ConfigError: the image is not the camera's frame size (the bands are rows of the camera's frames).
    """
    from graphopt.imaging import read_image

    from .data import render_scene

    spec = config.detector
    if image_path is None:
        rendered = render_scene(config, int(scene or 0))
        return rendered.image, rendered.boxes
    if output_path.resolve() == image_path.resolve():
        raise ModelSaveError(f"{output_path}: refusing to write the drawing over the input image")
    frame = read_image(image_path)
    if frame.shape[:2] != (spec.frame_height, spec.frame_width):
        raise ConfigError(
            f"{image_path} is {frame.shape[1]}x{frame.shape[0]}, but the detector takes "
            f"{spec.frame_width}x{spec.frame_height} frames"
        )
    return frame, np.zeros((0, 4), dtype=np.float32)


def _write_drawing(output_path: Path, drawing: np.ndarray) -> None:
    from graphopt.imaging import write_image

    write_image(output_path, drawing)


def _rows(value: tuple[float, ...] | None, digits: int | None = None) -> list[float] | list[int] | None:
    """A row range for JSON: floats rounded to ``digits``, or indices when ``digits`` is None."""
    if value is None:
        return None
    return [round(float(v), digits) for v in value] if digits is not None else [int(v) for v in value]


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Detector and calibrated camera description (TOML); every [camera] key must be given.")
@click.option("--image", "image_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A frame from the camera to draw on (PNG, the detector's frame size).")
@click.option("--scene", type=click.IntRange(0), help="Draw on the synthetic scene with this seed instead (its "
              "ground truth is drawn in blue).")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write, one panel per pyramid scale.")
@click.option("--margin-rows", type=click.IntRange(0), metavar="ROWS",
              help="Score-map rows added on each side of every scale's band (default 3, as optimize --ground-plane).")
@click.option("--json", "as_json", is_flag=True, help="Print the bands as JSON.")
def bands(
    config_path: Path,
    image_path: Path | None,
    scene: int | None,
    output_path: Path,
    margin_rows: int | None,
    as_json: bool,
) -> None:
    """Draw the frame rows each pyramid scale computes under the ground-plane assumption.

    One panel per scale: the rows its network does not read are darkened, the
    rows where the feet of the people it detects can stand are tinted in the
    scale's colour, the horizon is dashed white, and a box in the scale's
    colour shows the person its window is trained for. If people of a
    scale's size have their feet outside its tinted band, the [camera]
    calibration is off.
    """
    from .draw import draw_bands
    from .ground_plane import DEFAULT_MARGIN_ROWS, ground_plane_bands
    from .spec import load_config

    _one_frame_source(image_path, scene)
    config = load_config(config_path)
    margin = DEFAULT_MARGIN_ROWS if margin_rows is None else margin_rows
    found = ground_plane_bands(config, margin_rows=margin)
    frame, truth = _frame(config, image_path, scene, output_path)
    horizon = config.camera.horizon_v()
    drawing = draw_bands(frame, found, config.detector, horizon, truth=truth)
    _write_drawing(output_path, drawing)
    if as_json:
        rows = [
            {
                "scale": float(band.scale),
                "person_px": _rows(band.person_px, 2),
                "foot_rows": _rows(band.foot_rows, 2),
                "centre_rows": _rows(band.centre_rows, 2),
                "map_rows": _rows(band.map_rows),
                "map_height": band.map_height,
                "input_rows": _rows(band.input_rows),
                "input_height": band.input_height,
                "grid_rows": _rows(band.grid_rows),
            }
            for band in found
        ]
        data = {
            "config": config.source,
            "margin_rows": margin,
            "horizon_v": round(float(horizon), 2),
            "scales": rows,
            "output": str(output_path),
        }
        click.echo(json.dumps(data))
        return
    for band in found:
        click.echo(band.describe())
    click.echo(f"wrote {output_path}")
