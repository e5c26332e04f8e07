"""The person detector's operating threshold, chosen on validation scenes, and its figures on the test scenes.

1. The host pipeline (the shipped network, ``[detector]`` settings of the
   config, scores down to ``--min-score``, up to 256 detections per frame, as
   ``graphopt evaluate`` runs it) on the first ``--validation-frames`` scenes of
   the ``validation`` split, whose seeds are disjoint from the test scenes';
   the score threshold is the one that reads the miss rate at 0.1 false
   positives per image off that curve.
2. The same on the first ``--test-frames`` test scenes: miss rate at 0.1
   FPPI read off the test curve, log-average miss rate, true and false
   positives there, and the operating point at the threshold chosen in 1
   (what the deployed detector does). The same frames also give the figures
   without the IoU suppression (the candidates the suppression starts from),
   so that its effect is measured, not assumed.

The chosen threshold is printed; copy it into the config's
``score_threshold`` (the script does not edit the config).

Usage::

    .venv/bin/python benchmarks/operating_point.py [--validation-frames 200] [--test-frames 200]
        [--json build/operating_point.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from graphopt.detections import Detections
from graphopt.evaluation import evaluate
from graphopt.results import write_json_atomically
from graphopt_person.naive import NaiveDetector
from graphopt_person.spec import DetectorConfig, load_config
from graphopt_person.workload import evaluate_on_test_set

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "02_person_detector"


class _Recording:
    """The host pipeline, keeping each frame's candidates before IoU suppression."""

    def __init__(self, detector: NaiveDetector) -> None:
        self.detector = detector
        self.candidates: list[Detections] = []

    @property
    def last_candidates(self) -> Detections:
        return self.detector.last_candidates

    def detect(self, frame: np.ndarray) -> Detections:
        found = self.detector.detect(frame)
        self.candidates.append(self.detector.last_candidates)
        return found


def _run(network: onnx.ModelProto, config: DetectorConfig, split: str, frames: int,
         min_score: float) -> dict[str, Any]:
    detector = _Recording(NaiveDetector(network, config.detector, threshold=min_score, max_detections=256))
    result = evaluate_on_test_set(detector, config, frames=frames, split=split)
    without = evaluate(detector.candidates, result.ground_truth)
    at_01 = without.point_at_fppi(0.1)
    data = result.to_dict()
    data["without_iou_suppression"] = {
        "miss_rate_at_0.1_fppi": without.miss_rate_at(0.1),
        "log_average_miss_rate": without.log_average_miss_rate(),
        "true_positives_at_0.1_fppi": at_01["true_positives"],
        "false_positives_at_0.1_fppi": at_01["false_positives"],
        "at_score_threshold": without.point_at_threshold(config.detector.score_threshold),
    }
    data["split"] = split
    data["seeds"] = [result.seeds[0], result.seeds[-1]] if result.seeds else []
    return data


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    root = EXAMPLE.parents[1]
    resolved = path.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=EXAMPLE / "detector.toml")
    parser.add_argument("--model", type=Path, default=EXAMPLE / "model.onnx")
    parser.add_argument("--validation-frames", type=int, default=200)
    parser.add_argument("--test-frames", type=int, default=200)
    parser.add_argument("--min-score", type=float, default=0.01)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    network = onnx.load(str(args.model))

    validation = _run(network, config, "validation", args.validation_frames, args.min_score)
    threshold = float(validation["threshold_at_0.1_fppi"])
    chosen = dataclasses.replace(config, detector=dataclasses.replace(config.detector, score_threshold=threshold))
    test = _run(network, chosen, "test", args.test_frames, args.min_score)
    print(f"validation ({validation['frames']} scenes, seeds {validation['seeds']}): threshold at 0.1 FPPI "
          f"{threshold!r} (miss rate there {validation['miss_rate_at_0.1_fppi']:.3f})")
    for name, data in (("test", test), ("test, without IoU suppression", test["without_iou_suppression"])):
        print(f"{name}: miss rate at 0.1 FPPI {data['miss_rate_at_0.1_fppi']:.3f}, log-average miss rate "
              f"{data['log_average_miss_rate']:.3f}, at 0.1 FPPI {data['true_positives_at_0.1_fppi']} true and "
              f"{data['false_positives_at_0.1_fppi']} false positives")
        deployed = data["at_score_threshold"]
        print(f"  at the validation threshold {threshold:.6g}: miss rate {deployed['miss_rate']:.3f}, "
              f"{deployed['true_positives']} true, {deployed['false_positives']} false positives "
              f"({deployed['fppi']:.3f} FPPI)")
    if "iou_suppression" in test:
        s = test["iou_suppression"]
        print(f"Fast-NMS would differ from greedy on {s['fast_nms_differs_frames']} of {s['frames']} test frames")
    if args.json is not None:
        write_json_atomically(args.json, {"config": _shown(args.config), "model": _shown(args.model),
                                          "threshold": threshold, "validation": validation, "test": test})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
