"""The rewrite keeps the numbers: run the original on its framework and the rewrite on the other.

Each snippet in ``migrate_snippets/`` defines ``run(x, y, w, pw)`` returning a loss; the harness builds
the same float32 data in both frameworks, calls ``run``, backpropagates ``loss.sum()`` and compares
the loss and the gradient with respect to the logits/probabilities (torch allows none with respect
to ``weight`` or ``pos_weight``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bce_compat.conformance import frameworks

pytest.importorskip("libcst")
FRAMEWORKS = frameworks.available()  # torch before paddle (TF before Paddle segfaults)
from bce_compat.migrate._source import migrate_source  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated:UserWarning")
SNIPPETS = Path(__file__).parent / "migrate_snippets"
RTOL, ATOL = 1e-6, 1e-7  # float32; ATOL only for gradients that are ~0


def _data(probs: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.uniform(0.05, 0.95, (4, 3)) if probs else rng.normal(0, 3, (4, 3))
    return {
        "x": x.astype(np.float32),
        "y": rng.integers(0, 2, (4, 3)).astype(np.float32),
        "w": rng.uniform(0.5, 2.0, (4, 3)).astype(np.float32),
        "pw": rng.uniform(0.5, 3.0, (3,)).astype(np.float32),
    }


def _tensor(framework: str, value: np.ndarray, grad: bool):
    if framework == "torch":
        import torch

        return torch.tensor(value, requires_grad=grad)
    import paddle

    return paddle.to_tensor(value, stop_gradient=not grad)


def _execute(code: str, framework: str, data: dict) -> tuple[np.ndarray, dict]:
    """(loss, {argument: gradient}) from ``run`` in ``code`` on ``framework`` tensors."""
    namespace: dict = {}
    exec(compile(code, f"<{framework} snippet>", "exec"), namespace)
    tensors = {k: _tensor(framework, v, grad=k == "x") for k, v in data.items()}  # torch: no d/d weight, pos_weight
    loss = namespace["run"](**tensors)
    assert type(loss).__module__.split(".")[0] == framework, f"ran on {type(loss)}, not {framework}"
    loss.sum().backward()
    grads = {"x": tensors["x"].grad.numpy()}
    return loss.detach().numpy() if framework == "torch" else loss.numpy(), grads


def _compare(name: str, source_fw: str, to: str, run_on: str, measured: dict):
    if not {source_fw, run_on} <= set(FRAMEWORKS):
        pytest.skip(f"needs {source_fw} and {run_on}")
    original = (SNIPPETS / name).read_text()
    outcome = migrate_source(original, to)
    assert outcome.error is None and outcome.left == [], outcome.findings
    assert outcome.code != original and outcome.converted > 0
    data = _data(probs="probs" in name)
    expected_loss, expected_grads = _execute(original, source_fw, data)
    loss, grads = _execute(outcome.code, run_on, data)
    np.testing.assert_allclose(loss, expected_loss, rtol=RTOL)
    assert grads.keys() >= {"x"} and grads.keys() <= expected_grads.keys()
    worst = float(np.max(np.abs(loss - expected_loss) / np.maximum(np.abs(expected_loss), 1e-30)))
    for key, grad in grads.items():
        np.testing.assert_allclose(grad, expected_grads[key], rtol=RTOL, atol=ATOL, err_msg=f"d loss / d {key}")
        scale = np.maximum(np.abs(expected_grads[key]), 1e-30)
        worst = max(worst, float(np.max(np.abs(grad - expected_grads[key]) / scale)))
    measured[(name, to, run_on)] = (worst, sorted(grads))


TORCH_SNIPPETS = sorted(p.name for p in SNIPPETS.glob("torch_*.py"))
PADDLE_SNIPPETS = sorted(p.name for p in SNIPPETS.glob("paddle_*.py"))


@pytest.fixture(scope="module")
def measured():
    results: dict = {}
    yield results
    for (name, to, run_on), (worst, grads) in sorted(results.items()):
        print(f"\n{name} --to {to} on {run_on}: max relative difference {worst:.2e} (loss, d/d {', '.join(grads)})")


@pytest.mark.parametrize("name", TORCH_SNIPPETS)
def test_torch_to_paddle_same_loss_and_gradients(name, measured):
    _compare(name, "torch", "paddle", "paddle", measured)


@pytest.mark.parametrize("name", PADDLE_SNIPPETS)
def test_paddle_to_torch_same_loss_and_gradients(name, measured):
    _compare(name, "paddle", "torch", "torch", measured)


@pytest.mark.parametrize("run_on", ["torch", "paddle"])
@pytest.mark.parametrize("name", TORCH_SNIPPETS + PADDLE_SNIPPETS)
def test_portable_rewrite_runs_on_either_framework(name, run_on, measured):
    """Functional calls become dialect functions, which run on any backend; module constructions
    become ``bce_compat.torch``/``bce_compat.paddle`` classes, which belong to their framework."""
    source_fw = name.split("_")[0]
    rewritten = migrate_source((SNIPPETS / name).read_text(), "portable").code
    if run_on != source_fw and f"bce_compat.{source_fw}." in rewritten:
        pytest.skip(f"the rewrite constructs a bce_compat.{source_fw} module, which takes {source_fw} tensors")
    _compare(name, source_fw, "portable", run_on, measured)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_note_on_paddles_gradient_at_zero_is_true(dtype):
    """``--to paddle`` says: without pos_weight, Paddle's gradient at a logit of exactly 0 is 1 too
    small (σ(0) - y - 1), and right with pos_weight. Should Paddle fix it, this fails: update the note."""
    if "paddle" not in FRAMEWORKS:
        pytest.skip("paddle is not installed")
    import paddle

    labels = np.array([0.0, 0.25, 0.5, 1.0], dtype)
    x = paddle.zeros([4], dtype=dtype)
    x.stop_gradient = False
    paddle.nn.functional.binary_cross_entropy_with_logits(x, paddle.to_tensor(labels), reduction="sum").backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.5 - labels - 1)
    x.clear_gradient()
    pos_weight = paddle.full([4], 2.0, dtype=dtype)
    paddle.nn.functional.binary_cross_entropy_with_logits(
        x, paddle.to_tensor(labels), pos_weight=pos_weight, reduction="sum").backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.5 * (1 + labels) - 2 * labels)  # σ(0)(1+(p-1)y) - p·y
    note = migrate_source("import torch.nn.functional as F\nF.binary_cross_entropy_with_logits(x, y)\n", "paddle").findings[0]
    assert "without pos_weight its gradient at a logit of exactly 0 is 1 too small (σ(0) - y - 1)" in note.message
