"""Two graphopt passes in a ``torch.onnx.export`` script, checked against PyTorch's own outputs.

A small CNN (Conv, BatchNorm, ReLU, Dropout, Linear) exported with constant
folding off, as many export scripts leave it: the BatchNormalization stays a
node of its own and the batch is dynamic. ``remove_redundant_nodes`` and
``fold_batch_norm`` clean it up, ``pin_static_shapes`` fixes the batch at 1,
each checked by graphopt against onnxruntime (``verify=True``), and the
result is compared with the PyTorch module's own output. Needs the ``train`` extra (``torch==2.13.0``, the CPU build).

    python examples/05_torch_export/export.py [OUTDIR]
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

import graphopt
from graphopt.verify import run_onnxruntime


class SmallNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(8)
        self.drop = torch.nn.Dropout(0.2)
        self.head = torch.nn.Linear(8 * 16 * 16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.drop(torch.relu(self.norm(self.conv(x)))), 1))


def export(net: torch.nn.Module) -> onnx.ModelProto:
    """The TorchScript exporter (no onnxscript needed), constant folding off as many export scripts leave it."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (torch.randn(1, 3, 16, 16),), buffer, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"], dynamic_axes={"image": {0: "batch"}},
                          do_constant_folding=False)
    return onnx.load_from_string(buffer.getvalue())


def main() -> None:
    torch.manual_seed(0)
    net = SmallNet()
    with torch.no_grad():  # non-trivial statistics, so the BatchNorm fold is really checked
        net.norm.running_mean.uniform_(-0.5, 0.5)
        net.norm.running_var.uniform_(0.5, 1.5)
    net.eval()
    exported = export(net)
    optimized, report = graphopt.optimize(
        exported, passes=["remove_redundant_nodes", "fold_batch_norm", "pin_static_shapes"],
        input_shapes={"image": (1, 3, 16, 16)}, verify=True,
    )
    image = torch.rand(1, 3, 16, 16) + 0.5
    with torch.no_grad():
        expected = net(image).numpy()
    found = run_onnxruntime(optimized, {"image": image.numpy()})["logits"]
    error = float(np.abs(found - expected).max())
    print(f"exported: {[n.op_type for n in exported.graph.node]}")
    print(f"optimized: {[n.op_type for n in optimized.graph.node]}")
    for record in report.passes:
        print(f"  {record.name}: {record.status}, {record.nodes_before} → {record.nodes_after} nodes")
    print(f"max |onnxruntime(optimized) − torch| = {error:.2g}")
    if len(sys.argv) > 1:
        Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
        onnx.save(optimized, str(Path(sys.argv[1]) / "small_net.onnx"))


if __name__ == "__main__":
    main()
