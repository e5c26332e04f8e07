"""The training script's network is the exported network, and its loss holds margins at the cap.

These tests need PyTorch, the optional ``train`` extra; without it they are
skipped (the shipped model's own tests do not need it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from graphopt.verify import run_onnxruntime
from graphopt_person.network import build_naive_model, check_weights

torch = pytest.importorskip("torch", reason="training needs the optional 'train' extra (torch==2.13.0)")

SCRIPT = Path(__file__).parents[2] / "examples" / "02_person_detector" / "train.py"


@pytest.fixture(scope="module")
def train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_detector", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trained_looking(train: ModuleType) -> object:
    torch.manual_seed(0)
    model = train.PersonNet()
    with torch.no_grad():
        for name, value in model.named_buffers():
            if name.endswith("running_mean"):
                value.normal_(0, 0.5)
            elif name.endswith("running_var"):
                value.uniform_(0.5, 2.0)
    return model.eval()


def test_torch_network_and_onnx_export_agree(train: ModuleType, tmp_path: Path) -> None:
    model = _trained_looking(train)
    weights = train.export(model, tmp_path)
    check_weights(weights)
    x = np.random.default_rng(0).standard_normal((1, 3, 140, 64)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    probabilities = run_onnxruntime(build_naive_model(weights), {"image": x})["probabilities"]
    expected = torch.softmax(torch.from_numpy(logits), dim=1).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "weights.npz").is_file()


def test_capped_loss_is_cross_entropy_below_the_cap_and_pulls_back_above(train: ModuleType) -> None:
    weight = torch.tensor([1.0, 1.0])
    target = torch.tensor([1, 1, 0])
    logits = torch.tensor([[0.0, 2.0], [0.0, 20.0], [3.0, 0.0]], requires_grad=True)
    loss = train.capped_cross_entropy(logits, target, weight, 16.0)
    loss.backward()
    plain = torch.nn.functional.cross_entropy(logits[[0, 2]], target[[0, 2]], reduction="sum") / 3
    overshoot = 0.5 * (20.0 - 16.0) ** 2 / 3
    assert loss.item() == pytest.approx(plain.item() + overshoot, rel=1e-5)
    grad = logits.grad
    assert grad is not None
    assert grad[0, 1] < 0 and grad[2, 0] < 0  # below the cap: pushed apart
    assert grad[1, 1] > 0 and grad[1, 0] < 0  # above the cap: pulled back together
