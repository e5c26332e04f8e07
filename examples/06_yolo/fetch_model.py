"""Fetches NudeNet's 320n.onnx through the benchmark set (its pinned wheel, cached) and a picture to run it on.

Usage: ``python fetch_model.py [FOLDER]`` (default: this folder). Writes
``FOLDER/320n.onnx`` (a copy of the cached model: the wheel is downloaded once,
checked against its sha256, and kept under ``~/.cache/graphopt/models``) and
``FOLDER/astronaut.png`` (scikit-image's picture). Neither is committed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))

import model_set  # noqa: E402
from skimage import data  # noqa: E402

from graphopt.imaging import write_image  # noqa: E402


def main(folder: Path) -> None:
    entry = next(e for e in model_set.load_manifest() if e.name == "yolov8n")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_set.fetch(entry), folder / "320n.onnx")
    write_image(folder / "astronaut.png", data.astronaut())
    print(f"wrote {folder / '320n.onnx'} ({entry.about}) and {folder / 'astronaut.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
