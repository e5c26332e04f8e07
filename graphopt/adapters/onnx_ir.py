"""graphopt passes inside an onnx-ir pass manager, and onnx-ir passes inside a graphopt pipeline.

onnx-ir (``pip install 'graphopt[ir]'``) is the in-memory IR and pass
infrastructure of PyTorch's ONNX exporter and onnxscript. Both directions
convert at the boundary with ``onnx_ir.serde`` (``serialize_model`` /
``deserialize_model``), once per pass:

* :func:`as_ir_pass` wraps a graphopt pass as an ``onnx_ir.passes.FunctionalPass``:
  it runs on a copy of the model, returns a new ``ir.Model`` and reports
  ``modified`` like any onnx-ir pass; the graphopt :class:`~graphopt.passes.PassResult`
  (stats, note) of its last run is kept on the adapter;
* :class:`IrPass` wraps an onnx-ir pass as a graphopt pass, so a
  :class:`~graphopt.Pipeline` times, counts, verifies, rolls back and reports
  it like its own passes.

``onnx_ir`` is imported when an adapter is made, never by ``import graphopt``.
"""

from __future__ import annotations

import logging
import re
from types import ModuleType
from typing import Any

import onnx

from ..errors import GraphoptError
from ..passes.base import Pass, PassResult

__all__ = ["IrPass", "as_ir_pass", "load_onnx_ir"]

logger = logging.getLogger(__name__)


def load_onnx_ir() -> ModuleType:
    """Imports ``onnx_ir``, or says in one sentence how to install it."""
    try:
        import onnx_ir
    except ImportError:
        raise GraphoptError("the onnx-ir adapters need onnx-ir: pip install 'graphopt[ir]'") from None
    return onnx_ir


def as_ir_pass(graphopt_pass: Pass) -> Any:
    """``graphopt_pass`` as an ``onnx_ir.passes.FunctionalPass`` (returns a new ``ir.Model``).

    Example::

        import onnx_ir as ir
        from graphopt.adapters.onnx_ir import as_ir_pass
        from graphopt.passes import RemoveRedundantNodesPass

        manager = ir.passes.PassManager([ir.passes.common.RemoveUnusedNodesPass(),
                                         as_ir_pass(RemoveRedundantNodesPass())])
        result = manager(ir.load("model.onnx"))
    """
    ir = load_onnx_ir()

    class GraphoptIrPass(ir.passes.FunctionalPass):  # type: ignore[name-defined]
        __doc__ = f"graphopt's {graphopt_pass.name} as an onnx-ir pass: {type(graphopt_pass).description()}"

        def __init__(self) -> None:
            super().__init__()
            self.graphopt_pass = graphopt_pass
            self.last_result: PassResult | None = None

        def call(self, model: Any) -> Any:
            result = self.graphopt_pass(ir.serde.serialize_model(model))
            self.last_result = result
            return ir.passes.PassResult(ir.serde.deserialize_model(result.model), result.modified)

        def __repr__(self) -> str:
            return f"as_ir_pass({self.graphopt_pass!r})"

    GraphoptIrPass.__name__ = GraphoptIrPass.__qualname__ = f"GraphoptIrPass_{graphopt_pass.name}"
    return GraphoptIrPass()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Pass")).lower()


class IrPass(Pass):
    """Runs an onnx-ir pass as a graphopt pass (timed, verified and reported like the built-in ones).

    Args:
        ir_pass: an ``onnx_ir.passes.PassBase`` instance.
        name: the row's name in the report; default ``ir.`` and the pass's
            class name in snake case (``ir.remove_unused_nodes``).
    """

    name = "ir_pass"

    def __init__(self, ir_pass: Any, *, name: str | None = None) -> None:
        self.ir = load_onnx_ir()
        if not isinstance(ir_pass, self.ir.passes.PassBase):
            raise GraphoptError(f"{ir_pass!r} is not an onnx-ir pass (onnx_ir.passes.PassBase)")
        self.ir_pass = ir_pass
        self.name = name or f"ir.{_snake(type(ir_pass).__name__)}"  # type: ignore[misc]

    @classmethod
    def description(cls) -> str:
        return "An onnx-ir pass run inside a graphopt pipeline."

    def call(self, model: onnx.ModelProto) -> PassResult:
        result = self.ir_pass(self.ir.serde.deserialize_model(model))
        return PassResult(self.ir.serde.serialize_model(result.model), bool(result.modified))

    def __repr__(self) -> str:
        return f"IrPass({self.ir_pass!r}, name={self.name!r})"
