"""The pass abstraction: a small class with keyword-only configuration and one ``call``."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import onnx

from ..errors import PreconditionError
from ..options import OptimizeOptions
from ..traffic import TrafficChange

__all__ = ["FunctionPass", "Pass", "PassResult", "PostconditionError", "PreconditionError"]

logger = logging.getLogger(__name__)


class PostconditionError(RuntimeError):
    """A pass's rewrite broke what it promises (raised by ``Pass.ensures``); the pipeline rolls it back."""


@dataclass
class PassResult:
    """What a pass returns.

    Attributes:
        model: the rewritten model (may be the object the pass was given).
        modified: whether the pass changed anything; a second run of a pass on
            its own output must report ``False``.
        stats: small counts of what the pass did, e.g. ``{"identity": 3}``.
        traffic: for a pass that moves host work into the graph, the boundary
            traffic per frame before and after.
        note: one sentence for the report when the pass has something to say
            beyond its counts (e.g. why it did nothing).
        details: rows the report lists under the pass, each a small mapping of
            strings (e.g. the nodes a conversion kept in float32, and why).
        evidence: what the pass's :meth:`Pass.ensures` needs from its rewrite
            to check it (e.g. which tensors of the new graph to compare); not reported.
    """

    model: onnx.ModelProto
    modified: bool
    stats: Mapping[str, float] = field(default_factory=dict)
    traffic: TrafficChange | None = None
    note: str | None = None
    details: Sequence[Mapping[str, str]] = ()
    evidence: Any = None


class Pass(abc.ABC):
    """Base class of graphopt passes.

    Subclasses set :attr:`name` (the registry name used by ``--passes``), take
    their configuration as keyword-only ``__init__`` arguments and implement
    :meth:`call`. Calling a pass object never changes the model given to it:
    :meth:`__call__` hands :meth:`call` a copy, which ``call`` may rewrite in
    place. The class docstring's first line is the description shown by
    ``graphopt passes``.

    Contracts, as in onnx-ir's pass infrastructure: the pipeline calls
    :meth:`requires` before the pass and :meth:`ensures` after it. A pass
    whose requirement is missing is skipped, with the reason in the report,
    when it came from a default pipeline, and is an error naming what is
    missing when the user named it; a pass whose ensures fails is rolled
    back like one that raised.
    """

    name: ClassVar[str]
    #: Whether the pass may change the model's inputs or outputs (a pass that
    #: does without saying so is rolled back). Such a pass checks its rewrite
    #: itself; verification then continues from its output.
    changes_interface: ClassVar[bool] = False
    #: Whether the pass lowers numeric precision on purpose (float16). Such a
    #: pass checks its outputs itself (its precision guard); verification
    #: records its output errors without rolling it back, and continues from
    #: its outputs.
    changes_precision: ClassVar[bool] = False
    #: Whether the pass changes detections on purpose, by an assumption about
    #: the inputs (ground-plane slicing: nothing is detected where no person
    #: can stand). Such a pass checks its rewrite itself where the assumption
    #: does not matter; verification records its output changes without
    #: rolling it back, and continues from its outputs.
    changes_detections: ClassVar[bool] = False
    #: Whether the pass changes the work per frame (ground-plane slicing).
    #: With ``latency_repeats`` the pipeline's latency instrument times the
    #: graph before and after it; the pass itself times nothing.
    changes_work: ClassVar[bool] = False

    @classmethod
    def from_options(cls, options: OptimizeOptions) -> Pass:
        """Builds the pass from the options of a pipeline run (CLI flags)."""
        return cls()

    @classmethod
    def description(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def requires(self, model: onnx.ModelProto) -> None:  # noqa: B027 - no requirement unless a pass declares one
        """Raises :class:`PreconditionError` saying what the pass needs when it cannot run on ``model``."""

    def ensures(self, before: onnx.ModelProto, result: PassResult) -> None:  # noqa: B027 - likewise
        """Raises :class:`PostconditionError` when ``result`` breaks what the pass promises about ``before``."""

    def __call__(self, model: onnx.ModelProto) -> PassResult:
        """Runs :meth:`call` on a copy of ``model``, then :meth:`ensures` on the result.

        Raises:
            PostconditionError: the rewrite broke what the pass promises.
        """
        work = onnx.ModelProto()
        work.CopyFrom(model)
        result = self.call(work)
        self.ensures(model, result)
        return result

    @abc.abstractmethod
    def call(self, model: onnx.ModelProto) -> PassResult:
        """Rewrites ``model`` (a private copy) and says what changed."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FunctionPass(Pass):
    """A caller's function as a pass, so that a pipeline times, verifies and reports it like its own.

    ``function(model)`` gets a private copy of the model and returns the
    rewritten model (or a :class:`PassResult`); ``modified`` is whether the
    serialized model changed.

    Args:
        function: ``onnx.ModelProto -> onnx.ModelProto | PassResult``.
        name: the row's name in the report; default the function's name.
    """

    name = "function"

    def __init__(self, function: Callable[[onnx.ModelProto], onnx.ModelProto | PassResult], *,
                 name: str | None = None) -> None:
        self.function = function
        self.name = str(name or getattr(function, "__name__", "function"))  # type: ignore[misc]

    @classmethod
    def description(cls) -> str:
        return "A caller's function run as a pass."

    def call(self, model: onnx.ModelProto) -> PassResult:
        before = model.SerializeToString()
        result = self.function(model)
        if isinstance(result, PassResult):
            return result
        if not isinstance(result, onnx.ModelProto):
            raise TypeError(f"pass '{self.name}' returned {type(result).__name__}, not an onnx.ModelProto")
        return PassResult(result, result.SerializeToString() != before)

    def __repr__(self) -> str:
        return f"FunctionPass({self.function!r}, name={self.name!r})"
