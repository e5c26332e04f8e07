"""Capturing what third-party C/C++ code prints, so that the CLI can summarise it instead.

onnxsim's C++ core writes ``WARNING: failed to run "Concat" op … skip`` lines
straight to file descriptor 2, and onnxruntime writes its warnings there too;
Python's ``contextlib.redirect_stderr`` cannot catch them. The CLI wraps its
work in :func:`capture_native_output`, which points descriptors 1 and 2 at a
temporary file for the duration while Python's own ``sys.stdout``,
``sys.stderr`` and logging handlers keep writing to the terminal; the lines
caught are summarised (:func:`summarise`) into the report.

Only the CLI does this: the library (``graphopt.optimize``) leaves the host
program's file descriptors alone.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NativeOutput", "capture_native_output", "summarise"]

logger = logging.getLogger(__name__)

_ONNXSIM_SKIP = re.compile(r'failed to run "(\w+)" op')
_ORT_LINE = re.compile(r"^\S+ \S+ \[(?P<level>[WEI]):onnxruntime:[^\]]*\] (?P<text>.*)$")


@dataclass
class NativeOutput:
    """The lines third-party code printed while captured."""

    lines: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        return summarise(self.lines)


def summarise(lines: list[str]) -> list[str]:
    """A few sentences for many lines: onnxsim's skipped folds by op type, then the other lines counted."""
    skipped: collections.Counter[str] = collections.Counter()
    others: collections.Counter[str] = collections.Counter()
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        found = _ONNXSIM_SKIP.search(line)
        if found:
            skipped[found.group(1)] += 1
            continue
        ort = _ORT_LINE.match(line)
        others[f"onnxruntime: {ort.group('text')}" if ort else line] += 1
    summary = []
    if skipped:
        ops = ", ".join(f"{op} ×{n}" for op, n in skipped.most_common())
        summary.append(
            f"onnxsim skipped folding {sum(skipped.values())} node(s) whose inputs are not constant "
            f"and left them in the graph ({ops})"
        )
    for text, count in others.most_common(10):
        summary.append(text if count == 1 else f"{text} (×{count})")
    if len(others) > 10:
        summary.append(f"… and {len(others) - 10} other line(s) of third-party output")
    return summary


@contextlib.contextmanager
def _python_streams_to(out: io.TextIOBase, err: io.TextIOBase) -> Iterator[None]:
    """Python's stdout, stderr and the stream handlers on them write to ``out``/``err`` meanwhile."""
    old_out, old_err = sys.stdout, sys.stderr
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.stream for h in handlers]
    sys.stdout, sys.stderr = out, err
    for handler, stream in zip(handlers, streams, strict=True):
        handler.setStream(err if stream in (old_err, sys.__stderr__) else out)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


def _onward(stream: Any, saved_fd: int) -> Any:
    """Where ``stream``'s text goes while descriptors 1 and 2 are captured."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return _Unclosed(stream)
    return open(saved_fd, "w", encoding="utf-8", closefd=False, buffering=1)


class _Unclosed:
    """A stream the capture hands on without closing it (it is not the capture's)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def close(self) -> None:
        self._stream.flush()


def _flush_c_streams() -> None:
    """C's stdio buffers (printf from native code) are flushed while still pointed at the capture."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def capture_native_output() -> Iterator[NativeOutput]:
    """Descriptors 1 and 2 go to a temporary file meanwhile; Python's output still reaches the terminal."""
    captured = NativeOutput()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    sink = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in the finally below)
    try:
        # Python's streams keep writing where they wrote: to the saved descriptors when they wrote to 1 and 2,
        # or on to themselves when they never went through a descriptor (click's CliRunner, a StringIO).
        out = _onward(sys.stdout, saved[1])
        err = _onward(sys.stderr, saved[2])
        for fd in (1, 2):
            os.dup2(sink.fileno(), fd)
        try:
            with _python_streams_to(out, err):
                yield captured
        finally:
            _flush_c_streams()
            out.flush()
            err.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
            out.close()
            err.close()
            sink.seek(0)
            captured.lines = sink.read().decode("utf-8", errors="replace").splitlines()
            if captured.lines:
                logger.debug("captured %d line(s) of third-party output", len(captured.lines))
    finally:
        sink.close()
        for copy in saved.values():
            os.close(copy)
