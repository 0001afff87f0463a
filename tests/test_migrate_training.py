"""A whole training script through ``bce-compat migrate --to portable``: it still runs, gives the same
numbers, and its loss module's checkpoint still loads into the framework's own module (issue 11.2).

The script text is migrated, both versions are executed, and their per-step losses compared.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from bce_compat.conformance import frameworks

pytest.importorskip("libcst")
from bce_compat.migrate._source import migrate_source  # noqa: E402

FRAMEWORKS = frameworks.available()  # torch before paddle (TF before Paddle segfaults)

TORCH_SCRIPT = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    def train(dtype, steps=6, device="cpu"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to(device=device, dtype=dtype)
        pos_weight = torch.tensor([4.0, 2.0, 1.0], dtype=dtype)
        criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight).to(device)  # rare positives
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(32, 6, generator=gen, dtype=dtype).to(device)
        y = (torch.rand(32, 3, generator=gen) < 0.2).to(dtype).to(device)
        losses = []
        for _ in range(steps):
            optimizer.zero_grad()
            logits = model(x)
            loss = criterion(logits, y) + 0.1 * F.binary_cross_entropy_with_logits(logits, y, size_average=False) / 96
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses, {"model": model.state_dict(), "criterion": criterion.state_dict()}, criterion
''')

PADDLE_SCRIPT = textwrap.dedent('''
    import numpy as np
    import paddle


    def train(dtype, steps=6):
        paddle.seed(0)
        paddle.set_default_dtype(dtype)
        try:
            model = paddle.nn.Sequential(paddle.nn.Linear(6, 8), paddle.nn.Tanh(), paddle.nn.Linear(8, 3))
        finally:
            paddle.set_default_dtype("float32")
        criterion = paddle.nn.BCEWithLogitsLoss(pos_weight=paddle.to_tensor([4.0, 2.0, 1.0], dtype=dtype))
        optimizer = paddle.optimizer.Momentum(learning_rate=0.1, momentum=0.9, parameters=model.parameters())
        rng = np.random.default_rng(1)
        x = paddle.to_tensor(rng.normal(size=(32, 6)).astype(dtype))
        y = paddle.to_tensor((rng.random((32, 3)) < 0.2).astype(dtype))
        losses = []
        for _ in range(steps):
            logits = model(x)
            loss = criterion(logits, y) + 0.1 * paddle.nn.functional.binary_cross_entropy_with_logits(
                logits, y, reduction='sum') / 96
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            losses.append(float(loss))
        return losses, {"criterion": criterion.state_dict()}, criterion
''')


def _run(code: str, dtype: str):
    namespace: dict = {}
    exec(compile(code, "<training script>", "exec"), namespace)
    return namespace["train"](dtype)


def _migrated(code: str) -> str:
    outcome = migrate_source(code, "portable")
    assert outcome.error is None and outcome.left == [] and outcome.converted == 2, outcome.findings
    return outcome.code


TOL = {"float32": 1e-5, "float64": 1e-12}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_migrated_torch_training_script_runs_with_the_same_numbers(dtype):
    if "torch" not in FRAMEWORKS:
        pytest.skip("torch is not installed")
    import torch

    code = _migrated(TORCH_SCRIPT)
    assert "criterion = bce_compat.torch.BCEWithLogitsLoss(pos_weight=pos_weight).to(device)" in code
    assert "bce_compat.binary_cross_entropy_with_logits(logits, y, reduction='sum')" in code
    expected, expected_checkpoint, _ = _run(TORCH_SCRIPT, getattr(torch, dtype))
    losses, checkpoint, criterion = _run(code, getattr(torch, dtype))
    assert type(criterion).__module__ == "bce_compat.torch"
    np.testing.assert_allclose(losses, expected, rtol=TOL[dtype], atol=0)
    assert losses[-1] < losses[0]
    # the checkpoint is interchangeable with torch's own module, strictly, both ways
    native = torch.nn.BCEWithLogitsLoss(pos_weight=torch.zeros(3, dtype=getattr(torch, dtype)))
    native.load_state_dict(checkpoint["criterion"], strict=True)
    criterion.load_state_dict(expected_checkpoint["criterion"], strict=True)
    assert torch.equal(native.pos_weight, criterion.pos_weight)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_migrated_paddle_training_script_runs_with_the_same_numbers(dtype):
    if "paddle" not in FRAMEWORKS:
        pytest.skip("paddle is not installed")
    import paddle

    code = _migrated(PADDLE_SCRIPT)
    assert "criterion = bce_compat.paddle.BCEWithLogitsLoss(pos_weight=" in code
    assert "bce_paddle.binary_cross_entropy_with_logits(" in code
    expected, expected_checkpoint, _ = _run(PADDLE_SCRIPT, dtype)
    losses, checkpoint, criterion = _run(code, dtype)
    assert isinstance(criterion, paddle.nn.Layer) and type(criterion).__module__ == "bce_compat.paddle"
    np.testing.assert_allclose(losses, expected, rtol=TOL[dtype], atol=0)
    # Paddle's own module keeps pos_weight as a plain attribute, outside its state_dict: so does ours
    native = paddle.nn.BCEWithLogitsLoss(pos_weight=paddle.zeros([3], dtype=dtype))
    assert list(checkpoint["criterion"]) == list(expected_checkpoint["criterion"]) == list(native.state_dict())
    np.testing.assert_array_equal(criterion.pos_weight.numpy(), [4.0, 2.0, 1.0])
