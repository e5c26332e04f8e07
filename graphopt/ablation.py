"""Ablation studies of a detector: the naive baseline, each pass added in pipeline order, each pass left out.

:func:`ablate` measures every variant on the same synthetic test frames in
one run, the way the original work's waterfall was made (8.391 s → 0.588 s
per frame, one bar per optimization), on the machine it runs on:

* ``naive``: the exported network in the naive host pipeline (NumPy pre- and
  post-processing around one onnxruntime call per pyramid scale);
* ``+pass`` (cumulative): the passes of the pipeline up to and including that
  one, in pipeline order; a network that is not fused yet still runs in the
  host pipeline, a fused graph in one call per frame;
* ``−pass`` (leave-one-out): the whole pipeline without that pass.

For every variant: latency per frame (median and 90th percentile over the
latency frames, all variants interleaved frame by frame with a pause before
each call, after warm-up), FLOPs per frame (graph and host work), nodes,
serialized size, detection agreement with the baseline at the deployed
threshold, and the miss rate at 0.1 false positives per image against the
scenes' ground truth. Every variant is built once, at the evaluation
threshold, so that its whole miss-rate curve can be read; its detections at
the deployed threshold are those with a score at or above it (what a graph
built at that threshold reports: the threshold is one comparison before a
fixed-size top-K, so it costs the same).

Each step's latency change says whether its gain exists on this device. The
change is the ratio of the medians, with a 95 % interval from a paired
bootstrap over the frames (every variant runs the same frames): a step is
faster or slower only when the whole interval is; otherwise it is no
measurable change on this device, and a step whose graph is unchanged, one
within the noise and one that is slower here (float16 on a CPU) are said so
in words.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from .analysis import count_flops
from .detections import Detections
from .errors import GraphoptError, PassRequirementError, first_line
from .evaluation import compare_detections, evaluate
from .graph import takes_a_frame
from .instrument import PassInstrumentation, PassRecord
from .options import OptimizeOptions
from .passes import DEFAULT_PASSES, GROUND_PLANE_PASS, build_passes, with_fp16, with_ground_plane
from .pipeline import Pipeline
from .timing import LatencyStats, latency_stats, machine_description, time_calls_interleaved

if TYPE_CHECKING:
    from .workloads import Workload

__all__ = ["MISS_RATE_WORSE", "SCHEMA", "Ablation", "VariantResult", "ablate", "full_pipeline", "relative_change",
           "waterfall_figure", "write_waterfall"]

logger = logging.getLogger(__name__)

SCHEMA = "graphopt.ablation/1"
#: Resamples of the paired bootstrap that gives a latency change its 95 % interval.
BOOTSTRAP = 2000
#: The operating point the miss rate is read at (false positives per image).
FPPI = 0.1
#: A miss rate higher by more than this (one point) than the compared variant's draws its bar red.
MISS_RATE_WORSE = 0.01

Progress = Callable[[str], None]


def full_pipeline(ground_plane_pass: str = GROUND_PLANE_PASS) -> list[str]:
    """The whole pipeline: the default passes with the workload's fixed-camera pass and the float16 passes."""
    passes = with_ground_plane(list(DEFAULT_PASSES), ground_plane_pass)
    return [name for name in with_fp16(passes) if isinstance(name, str)]


@dataclass
class VariantResult:
    """One variant of an ablation study, measured."""

    name: str
    #: ``"baseline"``, ``"cumulative"`` or ``"leave_one_out"``.
    kind: str
    passes: list[str]
    #: ``"host pipeline"`` (the network between NumPy stages) or ``"fused graph"`` (one call per frame).
    runs_as: str = ""
    latency: LatencyStats | None = None
    flops_per_frame: int | None = None
    nodes: int = 0
    model_bytes: int = 0
    frames: int = 0
    identical_frames: int | None = None
    extra_detections: int | None = None
    lost_detections: int | None = None
    miss_rate: float | None = None
    log_average_miss_rate: float | None = None
    #: Relative latency change: against the previous cumulative step, or against the whole pipeline.
    change: float | None = None
    #: Its 95 % interval (paired bootstrap over the frames).
    change_interval: tuple[float, float] | None = None
    #: Milliseconds of each latency frame, in frame order.
    times_ms: list[float] = field(default_factory=list)
    #: What the change means on this device, in words.
    verdict: str = ""
    #: The step's pass left the graph as it was (a cumulative step only).
    graph_unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    #: Why the variant could not be built or run (one sentence), or ``None``.
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["latency"] = self.latency.to_dict() if self.latency else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantResult:
        values = dict(data)
        values["latency"] = LatencyStats(**values["latency"]) if values.get("latency") else None
        interval = values.get("change_interval")
        values["change_interval"] = (float(interval[0]), float(interval[1])) if interval else None
        return cls(**values)


@dataclass
class Ablation:
    """The result of :func:`ablate`: every variant, and what it was measured on."""

    variants: list[VariantResult]
    machine: dict[str, str | int]
    latency_frames: int
    accuracy_frames: int
    settle_ms: float
    eval_threshold: float
    deployed_threshold: float
    wall_s: float = 0.0
    source: str | None = None
    #: Sentences about the run: default passes that do not apply to the workload, captured third-party output.
    notes: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[VariantResult]:
        return [v for v in self.variants if v.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "source": self.source,
            "machine": dict(self.machine),
            "latency_frames": self.latency_frames,
            "accuracy_frames": self.accuracy_frames,
            "settle_ms": self.settle_ms,
            "eval_threshold": self.eval_threshold,
            "deployed_threshold": self.deployed_threshold,
            "fppi": FPPI,
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "variants": [v.to_dict() for v in self.variants],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False, default=_nan_to_none)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ablation:
        """An ablation read back from its JSON (``ablation.json``), e.g. to draw its waterfall again.

        Raises:
            GraphoptError: not a ``graphopt.ablation/1`` document.
        """
        if data.get("schema") != SCHEMA:
            raise GraphoptError(f"not an ablation result: the schema is {data.get('schema')!r}, not {SCHEMA!r}")
        fields = ("latency_frames", "accuracy_frames", "settle_ms", "eval_threshold", "deployed_threshold", "wall_s",
                  "source")
        return cls(variants=[VariantResult.from_dict(v) for v in data["variants"]], machine=dict(data["machine"]),
                   notes=list(data.get("notes", [])), **{name: data[name] for name in fields})

    def to_markdown(self) -> str:
        m = self.machine
        lines = [
            f"# Ablation{f' of {self.source}' if self.source else ''}",
            "",
            f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('os')}; {self.latency_frames} latency frames "
            f"(median, p90; variants interleaved, {self.settle_ms:g} ms pause before each call), "
            f"{self.accuracy_frames} accuracy frames; wall time {self.wall_s:.0f} s.",
            f"Agreement: frames whose detections at the deployed threshold ({self.deployed_threshold:g}) equal "
            f"the baseline's; miss rate at {FPPI:g} FPPI from curves built at threshold {self.eval_threshold:g}.",
            "",
        ]
        for kind, title, against in (("cumulative", "Each pass added, in pipeline order", "vs previous"),
                                     ("leave_one_out", "Each pass left out of the whole pipeline", "vs whole")):
            rows = (self.of_kind("baseline") if kind == "cumulative" else []) + self.of_kind(kind)
            lines += [f"## {title}", "",
                      f"| variant | runs as | ms / frame (p90) | {against} [95% interval] | FLOPs / frame | nodes | "
                      "size | frames = baseline (extra / lost) | MR @ 0.1 FPPI | on this device |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            lines += [_markdown_row(v) for v in rows]
            lines.append("")
        lines += [f"- {note}" for note in self.notes] + ([""] if self.notes else [])
        source = self.source or "MODEL"
        lines += ["Where float16 gains or costs, operator by operator, on this device: "
                  f"`graphopt profile-ops {source} --config CONFIG -o OUTDIR` (per-op precision profile).", ""]
        return "\n".join(lines)


def _nan_to_none(value: Any) -> Any:
    return None


def _markdown_row(v: VariantResult) -> str:
    if v.error is not None:
        verdict = v.error if v.error.startswith("not applicable") else f"could not run: {v.error}"
        return f"| `{v.name}` | | | | | {v.nodes or ''} | | | | {verdict} |"
    latency = f"{v.latency.median_ms:.1f} ({v.latency.p90_ms:.1f})" if v.latency else ""
    change = ""
    if v.change is not None and v.change_interval is not None:
        change = f"{v.change:+.0%} [{v.change_interval[0]:+.0%}, {v.change_interval[1]:+.0%}]"
    flops = f"{v.flops_per_frame / 1e9:.2f} G" if v.flops_per_frame else ""
    agreement = (f"{v.identical_frames}/{v.frames} ({v.extra_detections} / {v.lost_detections})"
                 if v.identical_frames is not None else "")
    miss = f"{v.miss_rate:.1%}" if v.miss_rate is not None else ""
    return (f"| `{v.name}` | {v.runs_as} | {latency} | {change} | {flops} | {v.nodes} | {v.model_bytes / 1e3:.0f} kB | "
            f"{agreement} | {miss} | {v.verdict} |")


class _Snapshots(PassInstrumentation):
    """Keeps the model each pass starts from: after a validated pass, it is the pipeline's state."""

    def __init__(self) -> None:
        self.models: list[onnx.ModelProto] = []

    def before_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        self.models.append(copy)


def _run_pipeline(
    network: onnx.ModelProto, passes: Sequence[str], options: OptimizeOptions, optional: Collection[str] = ()
) -> tuple[onnx.ModelProto, list[onnx.ModelProto], list[PassRecord]]:
    snapshots = _Snapshots()
    model, report = Pipeline(build_passes(list(passes), options=options), options=options, optional=optional,
                             instruments=[snapshots]).run(network)
    return model, snapshots.models, report.passes


def _pass_notes(records: Sequence[PassRecord]) -> list[str]:
    return [f"{r.name} {r.status.replace('_', ' ')}: {r.message}" for r in records
            if r.status != "modified" and r.message]


def _flops_per_frame(model: onnx.ModelProto, config: Workload) -> int | None:
    """Graph FLOPs of a fused graph, or the network's plus the host stages' work (the workload counts those)."""
    try:
        if takes_a_frame(model):
            return count_flops(model).total
        return config.host_flops(model)
    except (GraphoptError, ValueError, IndexError) as error:
        logger.debug("FLOPs of a variant not counted: %s", first_line(error))
        return None


def _at_threshold(detections: Detections, threshold: float) -> Detections:
    keep = detections.scores >= np.float32(threshold)
    return detections.take(keep)


def relative_change(before: Sequence[float], after: Sequence[float], *, seed: int = 0) -> tuple[float, float, float]:
    """``median(after) / median(before) − 1`` and its 95 % interval, by a paired bootstrap over the frames.

    ``before[i]`` and ``after[i]`` are two variants' times on the same frame i.
    """
    b, a = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if b.shape != a.shape or b.size == 0:
        raise ValueError("the two variants must be timed on the same, non-empty list of frames")
    change = float(np.median(a) / np.median(b) - 1)
    picks = np.random.default_rng(seed).integers(0, b.size, size=(BOOTSTRAP, b.size))
    ratios = np.median(a[picks], axis=1) / np.median(b[picks], axis=1) - 1
    low, high = np.percentile(ratios, [2.5, 97.5])
    return change, float(low), float(high)


def _direction(variant: VariantResult) -> int:
    """-1 faster, +1 slower, 0 no measurable change: the sign of the whole interval."""
    if variant.change_interval is None:
        return 0
    low, high = variant.change_interval
    return -1 if high < 0 else 1 if low > 0 else 0


def _interval(variant: VariantResult) -> str:
    low, high = variant.change_interval or (0.0, 0.0)
    return f"{variant.change:+.0%}, 95% interval {low:+.0%} to {high:+.0%}"


def _step_verdict(variant: VariantResult, previous: VariantResult, unchanged: bool) -> str:
    if variant.latency is None or previous.latency is None or variant.change is None:
        return ""
    before, after = previous.latency.median_ms, variant.latency.median_ms
    if unchanged:
        return f"graph unchanged: nothing to gain ({_interval(variant)}: the measurement's noise)"
    direction = _direction(variant)
    if direction < 0:
        return f"{-variant.change:.0%} faster"
    if direction == 0:
        return f"no measurable gain on this device ({before:.1f} → {after:.1f} ms; {_interval(variant)})"
    reason = ""
    if variant.passes and variant.passes[-1] == "convert_to_fp16":
        reason = ("; onnxruntime's CPU kernels have no fast float16 arithmetic, the step is for GPUs "
                  f"(size {previous.model_bytes / 1e3:.0f} → {variant.model_bytes / 1e3:.0f} kB)")
    return f"no gain on this device: {variant.change:.0%} slower ({before:.1f} → {after:.1f} ms){reason}"


def _leave_one_out_verdict(variant: VariantResult, whole: VariantResult) -> str:
    if variant.change is None:
        return ""
    direction = _direction(variant)
    if direction == 0:
        effect = f"no measurable latency effect here ({_interval(variant)})"
    elif direction > 0:
        effect = f"{variant.change:.0%} slower without it"
    else:
        effect = f"{-variant.change:.0%} faster without it (the pass costs time on this device)"
    if variant.miss_rate is not None and whole.miss_rate is not None and abs(variant.miss_rate - whole.miss_rate) > 0:
        effect += f"; miss rate {whole.miss_rate:.1%} → {variant.miss_rate:.1%}"
    return effect


#: Every variant of a study with its model (None: it could not be built).
_Steps = list[tuple[VariantResult, "onnx.ModelProto | None"]]


def ablate(
    network: onnx.ModelProto,
    config: Workload,
    *,
    passes: Sequence[str] | None = None,
    latency_frames: int = 20,
    accuracy_frames: int = 100,
    warmup_frames: int = 3,
    settle_ms: float = 150.0,
    eval_threshold: float = 0.5,
    progress: Progress | None = None,
) -> Ablation:
    """Builds and measures the baseline, every cumulative step and every leave-one-out variant of ``passes``.

    Args:
        network: the detector network (as exported: what the passes start from).
        config: its workload configuration (e.g. the person detector's
            ``detector.toml``); the frames are its labelled test frames, whose
            ground truth gives the miss rate.
        passes: the pipeline, in order; default :func:`full_pipeline`.
        latency_frames: frames the latency median and p90 are taken over
            (the first of the accuracy frames).
        accuracy_frames: frames the agreement and the miss rate are measured on.
        warmup_frames: untimed frames each variant runs first.
        settle_ms: pause before each timed call, so that a variant does not
            inherit the previous one's busy threads.
        eval_threshold: the score threshold every variant is built with, for
            the miss-rate curve.
        progress: called with one line per stage of the run.

    Raises:
        GraphoptError: the network or the description is unusable, or the
            baseline cannot run.
    """
    if latency_frames < 1 or accuracy_frames < latency_frames:
        raise GraphoptError(f"need at least one latency frame and as many accuracy frames ({accuracy_frames}) as "
                            f"latency frames ({latency_frames})")
    say = progress or (lambda line: None)
    start = time.perf_counter()
    deployed = config.score_threshold
    eval_config = config.with_score_threshold(eval_threshold)
    options = OptimizeOptions(input_shapes=config.network_input_shapes(network), shapes_from_workload=True,
                              keep_going=True, workload=eval_config)
    # The default pipeline's passes are optional, as graphopt optimize runs them: one whose requirement is
    # missing on this workload's graph (the log-odds head on a YOLO graph, whose scores are logits already)
    # is left out of the study with a note.
    chosen = list(passes) if passes is not None else full_pipeline(config.ground_plane_pass)
    steps, records, chosen, notes = _build_variants(network, chosen, options, say,
                                                    optional=set(chosen) if passes is None else set())
    say(f"rendering {accuracy_frames} test frames")
    scenes = config.labelled_frames("test", accuracy_frames)
    detectors, found = _measure_accuracy(steps, scenes, config, eval_config, say)
    _compare_with_baseline(steps, found, deployed)
    frames = [scene.image for scene in scenes[:latency_frames]]
    _measure_latency(steps, detectors, frames, warmup_frames=warmup_frames, settle_ms=settle_ms, say=say)
    _judge_changes(steps, chosen, records)
    return Ablation(variants=[v for v, _ in steps], machine=machine_description(), latency_frames=latency_frames,
                    accuracy_frames=accuracy_frames, settle_ms=settle_ms, eval_threshold=eval_threshold,
                    deployed_threshold=deployed, wall_s=time.perf_counter() - start, notes=notes)


def _build_variants(
    network: onnx.ModelProto, passes: list[str], options: OptimizeOptions, say: Progress, *,
    optional: Collection[str] = (),
) -> tuple[_Steps, list[PassRecord], list[str], list[str]]:
    """The baseline, each pass added (the whole pipeline's snapshots) and each pass left out, with their models.

    A pass of ``optional`` whose requirement is missing in the whole pipeline is left out of the study.
    Also returns the whole pipeline's records of the passes studied, their names, and a note per pass left out.
    """
    say(f"building the whole pipeline ({len(passes)} passes), keeping the model after each pass")
    whole, snapshots, all_records = _run_pipeline(network, passes, options, optional)
    kept = [i for i, record in enumerate(all_records) if record.status != "skipped"]
    notes = [f"{r.name} is left out of this workload's pipeline ({r.message})" for r in all_records
             if r.status == "skipped"]
    for note in notes:
        say(note)
    chosen, records = [passes[i] for i in kept], [all_records[i] for i in kept]
    steps: _Steps = [(VariantResult("naive", "baseline", []), network)]
    for n, (i, label) in enumerate(zip(kept, _step_labels(chosen), strict=True)):
        after = snapshots[i + 1] if i + 1 < len(snapshots) else whole  # a skipped pass leaves the model as it is
        steps.append((VariantResult(f"+{label}", "cumulative", chosen[: n + 1], notes=_pass_notes(records[n:n + 1])),
                      after))
    distinct = list(dict.fromkeys(chosen))  # a pass that runs twice is left out once: every run of it
    for i, name in enumerate(distinct):
        say(f"building leave-one-out {i + 1}/{len(distinct)}: whole pipeline without {name}")
        rest = [p for p in chosen if p != name]
        variant = VariantResult(f"−{name}", "leave_one_out", rest)
        try:
            without, _, rest_records = _run_pipeline(network, rest, options)
        except PassRequirementError as missing:  # a pass that needs the one left out
            variant.error = f"not applicable ({missing.pass_name} needs {missing.missing})"
            steps.append((variant, None))
            continue
        except GraphoptError as error:  # a pass that refuses the graph without the one left out
            variant.error = f"the pipeline fails without {name}: {first_line(error)}"
            steps.append((variant, None))
            continue
        variant.notes = _pass_notes(rest_records)
        steps.append((variant, without))
    return steps, records, chosen, notes


def _measure_accuracy(
    steps: _Steps, scenes: Sequence[Any], config: Workload, eval_config: Workload, say: Progress
) -> tuple[dict[str, Callable[[np.ndarray], Detections]], dict[str, list[Detections]]]:
    """Size, FLOPs, detections and miss rate of every variant that was built, on ``scenes``.

    Returns each variant's detector that runs, and its detections on every scene.

    Raises:
        GraphoptError: the baseline cannot run.
    """
    detectors: dict[str, Callable[[np.ndarray], Detections]] = {}
    found: dict[str, list[Detections]] = {}
    for number, (variant, model) in enumerate(steps, 1):
        if model is None:
            continue
        variant.nodes = len(model.graph.node)
        variant.model_bytes = model.ByteSize()
        variant.flops_per_frame = _flops_per_frame(model, config)
        variant.frames = len(scenes)
        say(f"accuracy {number}/{len(steps)}: {variant.name} on {len(scenes)} frames")
        try:
            variant.runs_as, detect = eval_config.detector_for(model)
            found[variant.name] = [detect(scene.image) for scene in scenes]
        except GraphoptError as error:
            if variant.kind == "baseline":
                raise
            variant.error = first_line(error)
            continue
        detectors[variant.name] = detect
        curve = evaluate(found[variant.name], [scene.boxes for scene in scenes])
        variant.miss_rate = curve.miss_rate_at(FPPI)
        variant.log_average_miss_rate = curve.log_average_miss_rate()
    return detectors, found


def _compare_with_baseline(steps: _Steps, found: dict[str, list[Detections]], deployed: float) -> None:
    """Each variant's agreement with the baseline at the deployed threshold."""
    reference = [_at_threshold(d, deployed) for d in found["naive"]]
    for variant, _ in steps:
        if variant.name in found:
            comparison = compare_detections(reference, [_at_threshold(d, deployed) for d in found[variant.name]],
                                            score_tolerance=1e-4)
            variant.identical_frames = comparison.identical_frames
            variant.extra_detections, variant.lost_detections = comparison.extra, comparison.missing


def _measure_latency(
    steps: _Steps,
    detectors: dict[str, Callable[[np.ndarray], Detections]],
    frames: Sequence[np.ndarray],
    *,
    warmup_frames: int,
    settle_ms: float,
    say: Progress,
) -> None:
    """Every variant that runs, timed on ``frames``, the variants interleaved frame by frame."""
    say(f"latency: {len(detectors)} variants interleaved over {len(frames)} frames "
        f"({warmup_frames} warm-up, {settle_ms:g} ms pause before each call)")
    times = time_calls_interleaved(
        detectors, frames, warmup=frames[:warmup_frames], settle_ms=settle_ms,
        progress=lambda done, total: say(f"latency: frame {done}/{total}") if done % 5 == 0 or done == total else None,
    )
    for variant, _ in steps:
        if variant.name in times:
            variant.times_ms = times[variant.name]
            variant.latency = latency_stats(times[variant.name], warmup=warmup_frames)


def _step_labels(chosen: Sequence[str]) -> list[str]:
    """The passes' names as step labels, a repeat numbered (``remove_redundant_nodes (2)``) so that each is one row."""
    seen: dict[str, int] = {}
    labels = []
    for name in chosen:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return labels


def _judge_changes(steps: _Steps, chosen: Sequence[str], records: Sequence[PassRecord]) -> None:
    """Each step's latency change against the step before, each leave-one-out's against the whole, in words."""
    by_name = {v.name: v for v, _ in steps}
    previous = by_name["naive"]
    labels = _step_labels(chosen)
    for i, label in enumerate(labels):
        variant = by_name[f"+{label}"]
        if variant.latency and previous.latency:
            variant.change, *interval = relative_change(previous.times_ms, variant.times_ms)
            variant.change_interval = (interval[0], interval[1])
            variant.graph_unchanged = records[i].status == "unchanged"
            variant.verdict = _step_verdict(variant, previous, variant.graph_unchanged)
        if variant.latency:
            previous = variant
    whole_variant = by_name[f"+{labels[-1]}"]
    for name in dict.fromkeys(chosen):
        variant = by_name[f"−{name}"]
        if variant.latency and whole_variant.latency:
            variant.change, *interval = relative_change(whole_variant.times_ms, variant.times_ms)
            variant.change_interval = (interval[0], interval[1])
            variant.verdict = _leave_one_out_verdict(variant, whole_variant)


def write_waterfall(ablation: Ablation) -> bytes:
    """The waterfall chart (:func:`waterfall_figure`) as PNG bytes."""
    figure = waterfall_figure(ablation)  # says in one sentence when matplotlib is missing
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def waterfall_figure(ablation: Ablation) -> Any:
    """The waterfall chart, a matplotlib figure: one bar per variant, each step's change annotated.

    Left, the baseline and each pass added in pipeline order (green: faster
    than the step before, red: slower, grey: no measurable change, light grey:
    graph unchanged or failed); right, each pass left out of the whole
    pipeline, coloured by its change against the whole pipeline. Detections
    count as well as time: a bar is red whenever its miss rate is more than
    :data:`MISS_RATE_WORSE` above the variant it is compared with, however
    fast it is, and its label says by how much.

    Raises:
        GraphoptError: matplotlib (the ``plot`` extra) is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GraphoptError("the waterfall chart needs matplotlib: pip install 'graphopt[plot]'") from None

    steps = ablation.of_kind("baseline") + ablation.of_kind("cumulative")
    left_out = ablation.of_kind("leave_one_out")
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [1, 1]})
    whole_pipeline = steps[-1]
    compared = {id(v): (steps[i - 1] if i else None) for i, v in enumerate(steps)}
    compared.update({id(v): whole_pipeline for v in left_out})
    for axis, variants, title in ((left, steps, "each pass added, in pipeline order"),
                                  (right, left_out, "each pass left out of the whole pipeline (green: faster "
                                   "without it, red: slower or more misses without it)")):
        heights = [v.latency.median_ms if v.latency else 0.0 for v in variants]
        colours = [_colour(v, compared[id(v)]) for v in variants]
        bars = axis.bar(range(len(variants)), heights, color=colours)
        for bar, variant in zip(bars, variants, strict=True):
            label = ("not applicable" if variant.error and variant.error.startswith("not applicable") else "failed"
                     if variant.error or not variant.latency else f"{variant.latency.median_ms:.0f} ms")
            if variant.change is not None:
                label += f"\n{variant.change:+.0%}"
            worse = _miss_rate_change(variant, compared[id(variant)])
            if worse is not None and abs(worse) > MISS_RATE_WORSE:
                label += f"\nmiss rate {worse * 100:+.1f} pt"
            axis.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                          fontsize=8, xytext=(0, 2), textcoords="offset points")
        axis.set_xticks(range(len(variants)), [v.name for v in variants], rotation=40, ha="right", fontsize=8)
        axis.set_ylabel("latency per frame, median (ms)")
        axis.set_title(title, fontsize=10)
        axis.set_ylim(0, max([*heights, 1.0]) * 1.2)
    whole = steps[-1].latency
    if whole is not None:
        right.axhline(whole.median_ms, color="black", linestyle="--", linewidth=1,
                      label=f"whole pipeline {whole.median_ms:.0f} ms")
        right.legend(loc="upper left", fontsize=8)
    m = ablation.machine
    figure.suptitle(f"graphopt ablation on {m.get('cpu')} ({m.get('cores')} cores): {ablation.latency_frames} "
                    f"frames, median", fontsize=11)
    figure.tight_layout()
    return figure


def _miss_rate_change(variant: VariantResult, reference: VariantResult | None) -> float | None:
    """The variant's miss rate minus the one it is compared with, when both were measured."""
    if reference is None or variant.miss_rate is None or reference.miss_rate is None:
        return None
    return variant.miss_rate - reference.miss_rate


def _colour(variant: VariantResult, reference: VariantResult | None = None) -> str:
    if variant.kind == "baseline":
        return "#555555"
    worse = _miss_rate_change(variant, reference)
    if not variant.error and worse is not None and worse > MISS_RATE_WORSE:
        return "#d62728"  # more misses: red whatever the time
    if variant.error or variant.change is None or variant.graph_unchanged:
        return "#bbbbbb"
    return {-1: "#2ca02c", 0: "#999999", 1: "#d62728"}[_direction(variant)]
