"""The pass pipeline: runs passes in order, transactionally, with instrumentation.

Each pass is a transaction. The pipeline keeps the model from before the pass;
the pass works on a copy. The pass is rolled back when it raises, when its
output fails ``onnx.checker`` (``full_check=True``), or, with verification on,
when its outputs differ from the previous model's beyond tolerance on the same
random non-zero inputs (except a pass that lowers precision or drops
detections on purpose, ``changes_precision`` / ``changes_detections``: it
checks itself, and its output changes are recorded). After a rollback the
pipeline stops with
:class:`~graphopt.errors.PassFailedError`, or with ``keep_going`` carries on
from the rolled-back model and marks the pass in the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence

import numpy as np
import onnx

from .errors import (
    GraphoptError,
    ModelLoadError,
    PassFailedError,
    PassRequirementError,
    PreconditionError,
    RuntimeRunError,
)
from .graph import check_input_names, concrete_input_shapes, graph_inputs
from .instrument import (
    GraphStatsInstrumentation,
    LatencyInstrumentation,
    PassInstrumentation,
    PassRecord,
    TimingInstrumentation,
)
from .model_io import check_model
from .options import OptimizeOptions
from .passes.base import Pass, PostconditionError
from .report import Report
from .verify import OutputError, compare_outputs, random_inputs, representative_inputs, run_onnxruntime

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)


class _Verifier:
    """Reference outputs of the model as it stands, on fixed random inputs."""

    def __init__(self, model: onnx.ModelProto, options: OptimizeOptions) -> None:
        assert options.verify is not None
        self.options = options
        self.tolerance = options.verify
        self.feeds: list[dict[str, np.ndarray]] = []
        self.reference: list[dict[str, np.ndarray]] = []
        # The input model must run, or nothing can be verified against it.
        self._start(model, "the input model (for --verify)")

    def _start(self, model: onnx.ModelProto, what: str) -> None:
        """Fresh random inputs for ``model`` and its outputs on them as the reference.

        Shapes given for names that are not (or no longer) inputs are left out;
        the pipeline checked them against the model it started from.
        """
        names = {v.name for v in model.graph.input}
        given = {name: dims for name, dims in self.options.input_shapes.items() if name in names}
        shapes = concrete_input_shapes(model, given)
        self.feeds = [random_inputs(model, shapes, seed=self.tolerance.seed + i) for i in range(self.tolerance.samples)]
        self.reference = [self._run(model, feeds, what) for feeds in self.feeds]

    @staticmethod
    def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
        names = {v.name for v in model.graph.input}
        return run_onnxruntime(model, {k: v for k, v in feeds.items() if k in names}, what=what)

    def check(self, model: onnx.ModelProto) -> tuple[dict[str, OutputError], list[dict[str, np.ndarray]]]:
        """Worst error per output over all samples, and the new outputs.

        Raises:
            RuntimeRunError: onnxruntime cannot load or run ``model``.
        """
        outputs = [self._run(model, feeds, "its output") for feeds in self.feeds]
        worst: dict[str, OutputError] = {}
        for ref, new in zip(self.reference, outputs, strict=True):
            for name, err in compare_outputs(ref, new, rtol=self.tolerance.rtol, atol=self.tolerance.atol).items():
                if name not in worst or not (err.max_abs <= worst[name].max_abs):
                    worst[name] = err
        return worst, outputs

    def accept(self, outputs: list[dict[str, np.ndarray]]) -> None:
        self.reference = outputs

    def rebase(self, model: onnx.ModelProto) -> None:
        """Starts over from ``model``, whose inputs or outputs differ: new inputs, new reference outputs."""
        self._start(model, "its output")


def _interface_changed(before: onnx.ModelProto, after: onnx.ModelProto) -> bool:
    """Whether callers of ``before`` cannot call ``after`` the same way.

    Inputs are compared by name and element type (pinning a dynamic shape is
    no change, and an input nothing reads may go); outputs by name.
    """

    def inputs(model: onnx.ModelProto) -> set[tuple[str, int]]:
        return {(v.name, v.type.tensor_type.elem_type) for v in graph_inputs(model)}

    return not inputs(after) <= inputs(before) or [v.name for v in after.graph.output] != [
        v.name for v in before.graph.output
    ]


class Pipeline:
    """Runs passes in order with instrumentation, checking and optional verification.

    Args:
        passes: pass objects, run in this order.
        options: shared options (input shapes, verification, keep-going).
        instruments: extra instrumentation, placed outside the built-in
            statistics and timing instruments.
        optional: names of passes that came from a default pipeline rather
            than from the user: one whose requirement is missing is skipped
            with the reason in the report, where a named one is an error.
    """

    def __init__(
        self,
        passes: Sequence[Pass],
        *,
        options: OptimizeOptions | None = None,
        instruments: Sequence[PassInstrumentation] = (),
        optional: Collection[str] = (),
    ) -> None:
        self.passes = list(passes)
        self.optional = frozenset(optional)
        self.options = options or OptimizeOptions()
        self._stats = GraphStatsInstrumentation(self.options.input_shapes)
        latency = []
        slicing = [p.name for p in self.passes if getattr(p, "changes_work", False)]
        if self.options.latency_repeats and slicing:
            latency = [LatencyInstrumentation(slicing, self.options.latency_repeats, self._feeds)]
        # Timing last: its hooks sit closest to the pass (see graphopt.instrument).
        self.instruments = [*latency, *instruments, self._stats, TimingInstrumentation()]

    def _feeds(self, model: onnx.ModelProto) -> dict[str, np.ndarray]:
        return representative_inputs(model, self.options.workload, self.options.input_shapes)

    def run(self, model: onnx.ModelProto) -> tuple[onnx.ModelProto, Report]:
        """Runs every pass; returns the final model and the report.

        Raises:
            PassFailedError: a pass was rolled back and ``keep_going`` is off.
            PassRequirementError: a pass not in ``optional`` cannot run on the model as it stands.
            GraphoptError: the options do not fit the model (e.g. verification
                needs shapes for dynamic inputs).
        """
        start = time.perf_counter()
        check_input_names(model, self.options.input_shapes)
        verifier = _Verifier(model, self.options) if self.options.verify else None
        report = Report(options=self.options, before=self._stats.stats_of(model))
        for index, pass_ in enumerate(self.passes):
            record = PassRecord(name=getattr(pass_, "name", type(pass_).__name__), index=index)
            report.passes.append(record)
            model = self._run_one(pass_, record, model, verifier)
        report.after = self._stats.stats_of(model)
        report.pipeline_ms = (time.perf_counter() - start) * 1e3
        return model, report

    def _unmet(self, pass_: Pass, record: PassRecord, model: onnx.ModelProto) -> bool:
        """Checks the pass's requirements: ``True`` when it is skipped (a default pass whose requirement is missing).

        Raises:
            PassRequirementError: a pass the user named cannot run.
        """
        try:
            pass_.requires(model)
        except PreconditionError as missing:
            if record.name not in self.optional:
                raise PassRequirementError(record.name, str(missing)) from None
            for inst in self.instruments:
                inst.before_pass(record, model)
            for inst in reversed(self.instruments):
                inst.after_pass(record, model)
            record.status = "skipped"
            record.message = f"not applicable: needs {missing}"
            return True
        return False

    def _run_one(
        self, pass_: Pass, record: PassRecord, model: onnx.ModelProto, verifier: _Verifier | None
    ) -> onnx.ModelProto:
        if self._unmet(pass_, record, model):
            return model
        for inst in self.instruments:
            inst.before_pass(record, model)
        try:
            result = pass_(model)  # call, then ensures
        except GraphoptError:
            # A user-facing error (a shape that contradicts the graph, say) is
            # about the input, not about the pass: report it as it is.
            for inst in reversed(self.instruments):
                inst.after_pass_failed(record, model, "raised an input error")
            raise
        except PostconditionError as broken:
            return self._roll_back(record, model, f"its rewrite failed its own check: {broken}")
        except Exception as error:
            logger.debug("pass %s raised", record.name, exc_info=True)
            return self._roll_back(record, model, f"it raised {type(error).__name__}: {error}")
        record.modified = result.modified
        record.stats = dict(result.stats)
        record.traffic = result.traffic
        record.message = result.note
        record.details = [dict(row) for row in result.details]
        for inst in reversed(self.instruments):
            inst.after_pass(record, result.model)
        try:
            check_model(result.model, origin="its output")
            record.checks = True
        except ModelLoadError as error:
            record.checks = False
            return self._roll_back(record, model, str(error))
        reason = self._check_outputs(pass_, record, model, result.model, verifier)
        if reason is not None:
            return self._roll_back(record, model, reason)
        record.status = "modified" if result.modified else "unchanged"
        return result.model

    @staticmethod
    def _check_outputs(
        pass_: Pass, record: PassRecord, model: onnx.ModelProto, new: onnx.ModelProto, verifier: _Verifier | None
    ) -> str | None:
        """Why the pass's output ``new`` must be rolled back, or None.

        An interface change the pass does not declare is refused; with a
        verifier, outputs beyond tolerance are too (unless the pass changes
        precision or detections on purpose), and the errors are recorded.
        """
        if _interface_changed(model, new):
            if not getattr(pass_, "changes_interface", False):
                return "it changed the model's inputs or outputs"
            if verifier is not None:
                # The pass checked its own rewrite (the old and new graphs take
                # different inputs); later passes are verified against this one.
                try:
                    verifier.rebase(new)
                except RuntimeRunError as error:
                    return str(error)
            return None
        if verifier is None:
            return None
        try:
            errors, outputs = verifier.check(new)
        except RuntimeRunError as error:
            return str(error)
        record.output_errors = errors
        bad = [name for name, err in errors.items() if not err.within_tolerance]
        if bad and (getattr(pass_, "changes_precision", False) or getattr(pass_, "changes_detections", False)):
            # Lower precision or fewer detections on purpose: the pass
            # checked itself; the changes are recorded, and later passes
            # are verified against this pass's outputs.
            bad = []
        if bad:
            worst = max(errors[name].max_abs for name in bad)
            return (f"output '{bad[0]}' changed by up to {worst:.3g}, beyond atol={verifier.tolerance.atol:g} "
                    f"+ rtol={verifier.tolerance.rtol:g}")
        verifier.accept(outputs)
        return None

    def _roll_back(self, record: PassRecord, model: onnx.ModelProto, reason: str) -> onnx.ModelProto:
        record.status = "rolled_back"
        record.modified = False
        record.traffic = None
        record.details = []
        record.message = reason
        for inst in reversed(self.instruments):
            inst.after_pass_failed(record, model, reason)
        logger.warning("pass %s rolled back: %s", record.name, reason)
        if not self.options.keep_going:
            raise PassFailedError(record.name, reason)
        return model
