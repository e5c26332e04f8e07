"""What the CLI tells the user while it works: progress on stderr, controlled by ``--quiet`` and ``-v``.

Progress lines ("[3/9] slim …", "timing the input and the output …") go to
stderr where a person watches: when stderr is a terminal, or always with
``-v``. ``--quiet`` prints nothing but errors (no progress, no report table);
``-v`` adds info logs and ``-vv`` debug logs. Each line says what starts and,
once a step took longer than a second, how long it took, so that a slow step
is never silent.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import click
import onnx

from ..instrument import PassInstrumentation, PassRecord

__all__ = ["Feedback"]

logger = logging.getLogger(__name__)

#: A step that took longer than this (seconds) gets its time printed when it ends.
SLOW_S = 1.0


@dataclass
class Feedback:
    """Progress for one command: silent, on a terminal, or forced by ``-v``."""

    quiet: bool = False
    verbose: int = 0
    show: bool = False
    _started: float = field(default_factory=time.perf_counter)

    @classmethod
    def configure(cls, *, quiet: bool, verbose: int) -> Feedback:
        """Sets the log level from ``-v`` and decides whether progress shows."""
        if verbose and not quiet:
            level = logging.DEBUG if verbose > 1 else logging.INFO
            logging.getLogger("graphopt").setLevel(level)
            for handler in logging.getLogger().handlers:
                handler.setLevel(level)
            logging.getLogger().setLevel(level)
        show = not quiet and (verbose > 0 or sys.stderr.isatty())
        return cls(quiet=quiet, verbose=verbose, show=show)

    def step(self, text: str) -> None:
        """One line on stderr: what starts now."""
        if self.show:
            click.echo(f"graphopt: {text} …", err=True)

    def instrument(self, total: int) -> PassInstrumentation:
        """An instrumentation that announces each pass and, when slow, its time."""
        return _PassProgress(self, total)


class _PassProgress(PassInstrumentation):
    def __init__(self, feedback: Feedback, total: int) -> None:
        self.feedback = feedback
        self.total = total
        self._start = 0.0

    def before_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self._start = time.perf_counter()
        self.feedback.step(f"[{record.index + 1}/{self.total}] {record.name}")

    def _done(self, record: PassRecord, what: str) -> None:
        took = time.perf_counter() - self._start
        if self.feedback.show and took > SLOW_S:
            click.echo(f"graphopt: [{record.index + 1}/{self.total}] {record.name} {what} in {took:.1f} s", err=True)

    def after_pass(self, record: PassRecord, model: onnx.ModelProto) -> None:
        self._done(record, "done")

    def after_pass_failed(self, record: PassRecord, model: onnx.ModelProto, reason: str) -> None:
        self._done(record, "failed")
