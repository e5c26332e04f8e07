"""graphopt passes in an onnx-ir pass manager, and an onnx-ir pass in a graphopt pipeline.

Runs on example 01 (a CNN export with redundancy) and prints what each side
did. Needs the ``ir`` extra: ``pip install 'graphopt[ir]'``.

    python examples/04_onnx_ir_pipeline/pipeline.py [OUTDIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common as common

from graphopt import Pipeline
from graphopt.adapters.onnx_ir import IrPass, as_ir_pass
from graphopt.passes import PinStaticShapesPass, RemoveRedundantNodesPass
from graphopt.verify import random_inputs, run_onnxruntime

MODEL = Path(__file__).parents[1] / "01_redundant_cnn" / "model.onnx"
SHAPE = {"input": (1, 3, 48, 64)}


def in_onnx_ir() -> tuple[onnx.ModelProto, list[str]]:
    """An onnx-ir pass manager with onnx-ir's own passes and two of graphopt's."""
    redundancy = as_ir_pass(RemoveRedundantNodesPass())
    shapes = as_ir_pass(PinStaticShapesPass(input_shapes=SHAPE))
    manager = ir.passes.PassManager([common.IdentityEliminationPass(), redundancy, shapes,
                                     common.RemoveUnusedNodesPass()])
    result = manager(ir.load(str(MODEL)))
    stats = [f"{p.graphopt_pass.name}: {dict(p.last_result.stats)}" for p in (redundancy, shapes)]
    return ir.serde.serialize_model(result.model), stats


def in_graphopt() -> tuple[onnx.ModelProto, list[str]]:
    """A graphopt pipeline with an onnx-ir pass among graphopt's, timed and verified like them."""
    passes = [IrPass(common.IdentityEliminationPass()), RemoveRedundantNodesPass(),
              PinStaticShapesPass(input_shapes=SHAPE)]
    model, report = Pipeline(passes).run(onnx.load(str(MODEL)))
    rows = [f"{r.name}: {r.status}, {r.nodes_before} → {r.nodes_after} nodes, {r.wall_ms:.1f} ms"
            for r in report.passes]
    return model, rows


def main() -> None:
    original = onnx.load(str(MODEL))
    feeds = random_inputs(original, SHAPE)
    expected = run_onnxruntime(original, feeds)
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for title, (model, lines) in (("onnx-ir pass manager", in_onnx_ir()), ("graphopt pipeline", in_graphopt())):
        found = run_onnxruntime(model, feeds)
        error = max(float(np.abs(found[k] - v).max()) for k, v in expected.items())
        print(f"{title}: {len(original.graph.node)} → {len(model.graph.node)} nodes, max |error| {error:.2g}")
        for line in lines:
            print(f"  {line}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            onnx.save(model, str(out / f"{title.split()[0]}.onnx"))


if __name__ == "__main__":
    main()
