"""``graphopt detect`` and ``graphopt evaluate``: any workload's detector from the command line.

Both pick the workload from ``--config`` (or, without one, the only
installed workload's defaults) and ask it for what only it knows: how a model
runs on a frame, its labelled test frames, what to say about a detection.
Images are any picture Pillow reads, of any size: the workload's frame is
letterboxed out of it, and the boxes are drawn back on the picture.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ..errors import ModelSaveError
from ..imaging import FrameFit, draw_boxes, fit_frame, read_image, write_image
from ..model_io import OutputStage, load_model
from ..results import publish
from ..timing import machine_description
from ..workloads import Workload, default_workload, load_config

__all__ = ["detect", "evaluate"]

_CONFIG_HELP = "Workload configuration (TOML); default: the installed workload's defaults."
_TRUTH_COLOR = (40, 120, 255)
_BOX_COLOR = (0, 230, 0)


def _workload(path: Path | None) -> Workload:
    return default_workload() if path is None else load_config(path)


def _frame(workload: Workload, image_path: Path | None, scene: int | None,
           output_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, FrameFit]:
    """The picture to draw on, the workload's frame made from it, ground truth (pictures have none), the fit."""
    if (image_path is None) == (scene is None):
        raise click.UsageError("give exactly one of --image and --scene")
    if image_path is None:
        labelled = workload.labelled_frame(int(scene or 0))
        return labelled.image, labelled.image, labelled.boxes, FrameFit(1.0, 1.0, 0.0, 0.0)
    if output_path.resolve() == image_path.resolve():
        raise ModelSaveError(f"{output_path}: refusing to write the drawing over the input image")
    picture = read_image(image_path)
    height, width = workload.frame_size
    frame, fitted = fit_frame(picture, height, width, letterbox=True)
    return picture, frame, np.zeros((0, 4), dtype=np.float32), fitted


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=_CONFIG_HELP)
@click.option("--image", "image_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A picture to run on (any format and size Pillow reads; letterboxed to the detector's frame).")
@click.option("--scene", type=click.IntRange(0), help="Run on the workload's labelled test frame with this seed "
              "instead (its ground truth is drawn in blue).")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image to write with the detections drawn (format from the name: .png, .jpg, …).")
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
    """Run the detector MODEL on one picture and write it with the boxes drawn.

    MODEL is either the exported network (run by the workload's host
    pipeline) or a fused detector written by 'graphopt optimize --config'
    (one call per frame).
    """
    workload = _workload(config_path)
    picture, frame, truth, fitted = _frame(workload, image_path, scene, output_path)
    detector = workload.frame_detector(load_model(model_path), threshold=threshold, source=str(model_path))
    detections = detector.detect(frame)
    boxes = fitted.to_picture(detections.boxes)
    # A window over the letterbox's padding reaches past the picture: its box is reported within the picture.
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, picture.shape[1])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, picture.shape[0])
    drawing = draw_boxes(picture, truth, color=_TRUTH_COLOR, thickness=1) if len(truth) else picture
    labels = [f"{score:.2f}" for score in detections.scores]
    drawing = draw_boxes(drawing, boxes, color=_BOX_COLOR, thickness=2, labels=labels)
    write_image(output_path, drawing)
    rows = [{"score": round(float(score), 6), "box": [round(float(v), 1) for v in box], **extra}
            for score, box, extra in zip(detections.scores, boxes, workload.describe(detections), strict=True)]
    if as_json:
        data = {"detections": rows, "ground_truth": np.asarray(truth).round(1).tolist(), "output": str(output_path)}
        click.echo(json.dumps(data))
        return
    click.echo(f"{len(rows)} detection(s) at threshold {detector.threshold:g}; wrote {output_path}")
    for row in rows:
        x0, y0, x1, y1 = row["box"]
        more = "".join(f"  {key} {value:g}" if isinstance(value, float) else f"  {key} {value}"
                       for key, value in row.items() if key not in ("score", "box"))
        click.echo(f"  {row['score']:.6f}  box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}){more}")


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=_CONFIG_HELP)
@click.option("--frames", default=200, show_default=True, type=click.IntRange(1), help="Labelled test frames.")
@click.option("--weights", "weights_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The model's weights, for workloads that also report logit margins at true-positive peaks "
              "(the person detector's .npz).")
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
    """Miss rate versus false positives per image of MODEL on the workload's labelled test frames."""
    workload = _workload(config_path)
    model = load_model(model_path)
    result = workload.evaluate_model(model, frames=frames, min_score=min_score, weights=weights_path,
                                          source=str(model_path))
    for line in result.lines:
        click.echo(line)
    if results_dir is not None:
        publish(results_dir, "evaluate", title="Miss rate of the network on the synthetic test set",
                data={"model": str(model_path), "config": workload.source, **result.data},
                markdown="```text\n" + "\n".join(result.lines) + "\n```", machine=machine_description())
    if json_path is not None:
        data = {"model": str(model_path), "config": workload.source, **result.data}
        with OutputStage(json_path.parent) as stage:
            stage.write_text(json_path.name, json.dumps(data, indent=2) + "\n")
            stage.commit()
        click.echo(f"wrote {json_path}")
