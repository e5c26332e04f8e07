"""Workloads: what a detector family brings to the compiler core, and how the core finds it.

The core (pipeline, passes, backends, API, CLI) knows no workload and never
imports one. A workload — the sliding-window person detector
(``graphopt_person``), the YOLO family next — registers a
:class:`WorkloadType` under the ``graphopt.workloads`` entry-point group, its
passes under ``graphopt.passes`` and its commands under ``graphopt.commands``:
the same entry points a third-party plugin uses. A configuration file
(``--config``, TOML) names its workload with a top-level ``workload = "NAME"``
key, or is claimed by the one workload whose tables it holds; the workload
parses it into a :class:`Workload`, the object the core asks everything it
needs to know:

* what the network's inputs are (:meth:`Workload.network_input_shapes`) and
  whether a graph already takes its frames (:meth:`Workload.takes_frames`);
* calibration and benchmark frames (:meth:`Workload.frames`), and labelled
  frames for evaluation (:meth:`Workload.labelled_frames`);
* its host reference pipeline and the fused graph's detector
  (:meth:`Workload.detector_for`), and the host-stage fusion itself
  (:meth:`Workload.fuse_host_stages`, checked by :meth:`Workload.check_host_fusion`);
* its evaluation settings (:attr:`Workload.score_threshold`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import onnx

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6): the backport with the same API
    import tomli as tomllib

if TYPE_CHECKING:
    from .backends.base import LatencyStats
    from .detections import Detections
    from .passes.base import PassResult

__all__ = [
    "ENTRY_POINT_GROUP",
    "EvaluationReport",
    "FrameDetector",
    "LabelledFrame",
    "Workload",
    "WorkloadType",
    "as_workload",
    "default_workload",
    "load_config",
    "read_toml",
    "registered_workloads",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "graphopt.workloads"


@dataclass(frozen=True)
class LabelledFrame:
    """A frame with its ground-truth boxes (``(N, 4)``, x1 y1 x2 y2 in frame pixels) and an identifier."""

    image: np.ndarray
    boxes: np.ndarray
    seed: int


@dataclass(frozen=True)
class EvaluationReport:
    """A workload's evaluation of a model: lines for the terminal and data for JSON."""

    lines: Sequence[str]
    data: Mapping[str, Any]


class FrameDetector(Protocol):
    """A model running on frames: one frame in, its detections out, at ``threshold``."""

    threshold: float

    def detect(self, frame: np.ndarray) -> Detections: ...


@runtime_checkable
class Workload(Protocol):
    """A workload's parsed configuration: what the core asks of a detector family.

    Attributes:
        source: where the configuration came from (a file name, for messages).
        workload_name: the name the workload is registered under.
        score_threshold: the deployed score threshold of its detections.
    """

    source: str

    @property
    def workload_name(self) -> str: ...

    @property
    def score_threshold(self) -> float: ...

    @property
    def ground_plane_pass(self) -> str:
        """The pass ``--ground-plane`` inserts after ``fuse_host_stages``: the fixed camera's cropping."""
        ...

    @property
    def frame_size(self) -> tuple[int, int]:
        """Height and width of the camera frames a fused graph takes."""
        ...

    def with_score_threshold(self, threshold: float) -> Workload:
        """The same workload with another score threshold (evaluation sweeps below the deployed one)."""
        ...

    def network_input_shapes(self, model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
        """Concrete shapes of the exported network's inputs for this configuration."""
        ...

    def takes_frames(self, model: onnx.ModelProto) -> bool:
        """Whether ``model`` already takes this workload's camera frames (a fused graph)."""
        ...

    def frames(self, split: str, count: int) -> list[dict[str, np.ndarray]]:
        """``count`` inputs of a fused graph from ``split`` ("train" for calibration, "test" for benchmarks)."""
        ...

    def labelled_frames(self, split: str, count: int) -> list[LabelledFrame]:
        """``count`` frames of ``split`` with their ground truth, for evaluation."""
        ...

    def labelled_frame(self, seed: int) -> LabelledFrame:
        """The labelled frame with this seed (``graphopt detect --scene``)."""
        ...

    def frame_detector(self, model: onnx.ModelProto, *, threshold: float | None = None,
                       source: str = "the model") -> FrameDetector:
        """``model`` running on frames: the host pipeline for a network, the graph for a fused one.

        Raises:
            ConfigError: ``threshold`` given for a graph with its threshold built in, or a model that does not fit.
        """
        ...

    def describe(self, detections: Detections) -> list[dict[str, Any]]:
        """What the workload adds to each detection's row in ``graphopt detect`` (e.g. the pyramid scale)."""
        ...

    def evaluate_model(self, model: onnx.ModelProto, *, frames: int, min_score: float,
                       weights: os.PathLike[str] | None, source: str) -> EvaluationReport:
        """Miss rate against false positives per image on ``frames`` labelled test frames (``graphopt evaluate``)."""
        ...

    def fuse_host_stages(self, network: onnx.ModelProto) -> PassResult:
        """The host stages moved into one graph with the network (the ``fuse_host_stages`` pass)."""
        ...

    def check_host_fusion(self, network: onnx.ModelProto, *, frames: int) -> Mapping[str, float]:
        """The host pipeline around ``network`` and its fused graph compared on ``frames`` test frames.

        Returns the check's figures for the pass's stats.

        Raises:
            PostconditionError: they disagree (``fuse_host_stages`` is rolled back).
        """
        ...

    def detector_for(self, model: onnx.ModelProto) -> tuple[str, Callable[[np.ndarray], Detections]]:
        """How ``model`` runs on a frame (host pipeline or fused graph), and its frame → detections function."""
        ...

    def host_flops(self, model: onnx.ModelProto) -> int | None:
        """Floating-point operations per frame of ``model`` with the host stages around it, where known."""
        ...

    def benchmark_per_frame(
        self, network: onnx.ModelProto, fused: onnx.ModelProto, *, warmup: int, repeats: int,
        providers: Sequence[str] | None,
    ) -> tuple[LatencyStats, LatencyStats]:
        """Time per frame of the host pipeline around ``network`` and of the ``fused`` graph."""
        ...


class WorkloadType(Protocol):
    """What the ``graphopt.workloads`` entry point names: a workload's name and its config parser."""

    name: str

    def claims(self, data: Mapping[str, Any]) -> bool:
        """Whether a configuration without a ``workload`` key is this workload's."""
        ...

    def parse(self, data: Mapping[str, Any], *, source: str) -> Workload:
        """The workload configured by ``data`` (TOML, without the ``workload`` key)."""
        ...

    def default(self) -> Workload:
        """The workload with its default settings (a command given no ``--config``).

        Raises:
            ConfigError: the workload cannot run without a config (it has no meaningful defaults).
        """
        ...


def registered_workloads() -> dict[str, WorkloadType]:
    """The workloads installed: ``graphopt.workloads`` entry points, by name, in name order.

    A workload that fails to load is left out and logged; naming it in a
    config then says it is unknown.
    """
    found: dict[str, WorkloadType] = {}
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found[entry.name] = entry.load()
        except Exception as error:
            logger.warning("workload %s (%s) left out: %s", entry.name, entry.value, error)
    return found


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML file's data.

    Raises:
        ConfigError: the file is missing, unreadable or not TOML; the message names it.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file ({error})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not a valid TOML file ({error})") from None


def _workload_for(data: Mapping[str, Any], source: str) -> WorkloadType:
    known = registered_workloads()
    name = data.get("workload")
    if name is not None:
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"{source}: unknown workload {name!r}; installed: {', '.join(known) or 'none'}")
        return known[name]
    claiming = [workload for workload in known.values() if workload.claims(data)]
    if len(claiming) != 1:
        which = "no" if not claiming else "more than one"
        raise ConfigError(f"{source}: {which} installed workload ({', '.join(known) or 'none'}) takes this config; "
                          "name one with a top-level workload = \"NAME\" key")
    return claiming[0]


def load_config(path: str | os.PathLike[str]) -> Workload:
    """The workload configured by a TOML file (``--config``).

    Raises:
        ConfigError: unreadable or invalid file, or no installed workload takes it.
    """
    data = read_toml(path)
    source = str(Path(path))
    workload = _workload_for(data, source)
    return workload.parse({k: v for k, v in data.items() if k != "workload"}, source=source)


def default_workload() -> Workload:
    """The defaults of the one installed workload that has defaults, for a command given no ``--config``.

    A workload whose ``default()`` raises :class:`ConfigError` needs a config
    (the yolo family: its client code must be described) and is not a candidate.

    Raises:
        ConfigError: no installed workload, or more than one, has defaults.
    """
    known = registered_workloads()
    candidates: list[Workload] = []
    for workload_type in known.values():
        try:
            candidates.append(workload_type.default())
        except ConfigError as error:
            logger.debug("workload %s has no defaults: %s", workload_type.name, error)
    if len(candidates) != 1:
        raise ConfigError(f"give --config: {len(candidates)} of the installed workloads ({', '.join(known) or 'none'}) "
                          "run without one")
    return candidates[0]


def as_workload(config: Workload | str | os.PathLike[str]) -> Workload:
    """``config`` as a :class:`Workload`: a file is loaded, a workload object is taken as it is.

    Raises:
        ConfigError: a file that does not load, or an object that is not a workload.
    """
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    if not isinstance(config, Workload):
        raise ConfigError(f"{type(config).__name__} is not a workload configuration (see graphopt.workloads)")
    return config
