"""``graphopt detect``, ``evaluate`` and ``bands``: the reference person detector from the command line.

``evaluate`` runs the naive host-driven pipeline (:class:`~graphopt.detector.naive.NaiveDetector`)
on a detector model and its TOML description; ``bands`` draws the rows each
pyramid scale computes under the ground-plane assumption, to check a camera's
calibration. The detector modules are imported only when a command runs, so
the other commands start fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..errors import ConfigError, GraphoptError, ModelSaveError

__all__ = ["bands", "detect", "evaluate"]

_CONFIG_HELP = "Detector and camera description (TOML); default: the built-in defaults."


def _config(path: Path | None) -> Any:
    from ..detector.spec import DetectorConfig, load_config

    return DetectorConfig() if path is None else load_config(path)


def _detector(model_path: Path, spec: Any, threshold: float | None) -> Any:
    """The naive pipeline for a network model, the fused graph for a fused detector (frame in, detections out)."""
    from ..detector.fused import FusedDetector
    from ..detector.naive import NaiveDetector
    from ..model_io import load_model
    from ..passes.host_stages import takes_a_frame

    model = load_model(model_path)
    if not takes_a_frame(model):
        return NaiveDetector(model, spec, threshold=threshold)
    if threshold is not None:
        raise ConfigError(
            f"{model_path} is a fused detector, whose score threshold is part of the graph; "
            "set score_threshold in the config before 'graphopt optimize' instead of --threshold"
        )
    return FusedDetector(model, spec)


def _one_frame_source(image_path: Path | None, scene: int | None) -> None:
    """Checks that exactly one of ``--image`` and ``--scene`` was given."""
    if (image_path is None) == (scene is None):
        raise click.UsageError("give exactly one of --image and --scene")


def _frame(config: Any, image_path: Path | None, scene: int | None, output_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The RGB frame from ``--image`` or ``--scene``, and its ground-truth boxes (none for an image file).

    Raises:
        ModelSaveError: the output would overwrite the input image.
        GraphoptError: the image file is missing or not a readable PNG.
        ConfigError: the image is not the detector's frame size.
    """
    from ..detector.draw import read_png
    from ..detector.scenes import render_scene

    spec = config.detector
    if image_path is None:
        rendered = render_scene(config, int(scene or 0))
        return rendered.image, rendered.boxes
    if output_path.resolve() == image_path.resolve():
        raise ModelSaveError(f"{output_path}: refusing to write the drawing over the input image")
    try:
        frame = read_png(image_path)
    except FileNotFoundError:
        raise GraphoptError(f"{image_path}: no such image file") from None
    except ValueError as error:
        raise GraphoptError(str(error)) from None
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    frame = frame[:, :, :3]
    if frame.shape[:2] != (spec.frame_height, spec.frame_width):
        raise ConfigError(
            f"{image_path} is {frame.shape[1]}x{frame.shape[0]}, but the detector takes "
            f"{spec.frame_width}x{spec.frame_height} frames"
        )
    return frame, np.zeros((0, 4), dtype=np.float32)


def _write_drawing(output_path: Path, drawing: np.ndarray) -> None:
    from ..detector.draw import write_png

    try:
        write_png(output_path, drawing)
    except OSError as error:
        raise ModelSaveError(f"{output_path}: cannot write the image ({error.strerror or error})") from None


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=_CONFIG_HELP)
@click.option("--image", "image_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A frame to run on (PNG, the detector's frame size).")
@click.option("--scene", type=click.IntRange(0), help="Run on the synthetic scene with this seed instead (its "
              "ground truth is drawn in blue).")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write with the detections drawn.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), help="Score threshold (probability); "
              "default: the config's.")
@click.option("--json", "as_json", is_flag=True, help="Print the detections as JSON.")
def detect(
    model_path: Path,
    config_path: Path | None,
    image_path: Path | None,
    scene: int | None,
    output_path: Path,
    threshold: float | None,
    as_json: bool,
) -> None:
    """Run the detector MODEL on one frame and write a PNG with the boxes drawn.

    MODEL is either the network (run by the naive host pipeline) or a fused
    detector written by 'graphopt optimize --config' (one call per frame).
    """
    from ..detector.draw import draw_boxes

    _one_frame_source(image_path, scene)
    config = _config(config_path)
    spec = config.detector
    frame, truth = _frame(config, image_path, scene, output_path)
    detector = _detector(model_path, spec, threshold)
    detections = detector.detect(frame)
    drawing = draw_boxes(frame, truth, color=(40, 120, 255), thickness=1) if len(truth) else frame
    labels = [f"{score:.2f}" for score in detections.scores]
    drawing = draw_boxes(drawing, detections.boxes, color=(0, 230, 0), thickness=2, labels=labels)
    _write_drawing(output_path, drawing)
    found = list(zip(detections.scores, detections.boxes, detections.cells, strict=True))
    if as_json:
        rows = [
            {
                "score": round(float(score), 6),
                "box": [round(float(v), 1) for v in box],
                "scale": float(spec.scales[int(cell[0])]),
            }
            for score, box, cell in found
        ]
        data = {"detections": rows, "ground_truth": truth.round(1).tolist(), "output": str(output_path)}
        click.echo(json.dumps(data))
        return
    click.echo(f"{len(found)} detection(s) at threshold {detector.threshold:g}; wrote {output_path}")
    for score, box, cell in found:
        x0, y0, x1, y1 = (float(v) for v in box)
        scale = spec.scales[int(cell[0])]
        click.echo(f"  {score:.6f}  box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f})  scale {scale:g}")


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=_CONFIG_HELP)
@click.option("--frames", default=200, show_default=True, type=click.IntRange(1), help="Synthetic test frames.")
@click.option("--weights", "weights_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The model's weights (.npz) to also report logit margins at true-positive peaks.")
@click.option("--min-score", default=0.01, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Lowest score kept, so the miss-rate curve reaches high FPPI.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write JSON here.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also write the results and a generated page into DIR/<machine-slug>/ (the repository's "
              "results pages: docs/results).")
def evaluate(
    model_path: Path,
    config_path: Path | None,
    frames: int,
    weights_path: Path | None,
    min_score: float,
    json_path: Path | None,
    results_dir: Path | None,
) -> None:
    """Miss rate versus false positives per image of MODEL on the synthetic test set."""
    from ..detector.naive import NaiveDetector
    from ..detector.network import load_weights
    from ..detector.workload import MarginProbe, evaluate_on_test_set, format_evaluation
    from ..model_io import OutputStage

    config = _config(config_path)
    from ..model_io import load_model
    from ..passes.host_stages import takes_a_frame

    model = load_model(model_path)
    if takes_a_frame(model):
        raise ConfigError(
            f"{model_path} is a fused detector with its threshold and detection count built in; "
            "evaluate the network model it was made from (the miss-rate curve needs every score)"
        )
    detector = NaiveDetector(model, config.detector, threshold=min_score, max_detections=256)
    probe = MarginProbe(load_weights(weights_path), config.detector) if weights_path is not None else None
    result = evaluate_on_test_set(detector, config, frames=frames, probe=probe)
    lines = format_evaluation(result, name=str(model_path))
    for line in lines:
        click.echo(line)
    if results_dir is not None:
        from ..backends.base import machine_description
        from ..results import publish

        publish(results_dir, "evaluate", title="Miss rate of the network on the synthetic test set",
                data={"model": str(model_path), "config": config.source, **result.to_dict()},
                markdown="```text\n" + "\n".join(lines) + "\n```", machine=machine_description())
    if json_path is not None:
        data = {"model": str(model_path), "config": config.source, **result.to_dict()}
        with OutputStage(json_path.parent) as stage:
            stage.write_text(json_path.name, json.dumps(data, indent=2) + "\n")
            stage.commit()
        click.echo(f"wrote {json_path}")


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
    from ..detector.draw import draw_bands
    from ..detector.ground_plane import DEFAULT_MARGIN_ROWS, ground_plane_bands
    from ..detector.spec import load_config

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
