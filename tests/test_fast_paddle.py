"""The Paddle CPU fast path (backends/paddle_fast.py): values and gradients against the exact loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _reference import assert_close, exact_logits_grad, exact_logits_loss, reduce_exact

paddle = pytest.importorskip("paddle")

import bce_compat  # noqa: E402
from bce_compat._registry import load_backend  # noqa: E402
from bce_compat.backends import paddle_fast  # noqa: E402

X = [-math.inf, -1e30, -100.0, -20.0, -3.46522, -1e-4, 0.0, 1e-4, 1.5, 20.0, 100.0, 1e30, math.inf]
Y, P, W = [0.0, 0.3, 1.0], [2.0, 0.5, 0.0], [0.5, 1.0, 2.0]


def edge_grid(dtype):
    x = np.repeat(np.asarray(X, np.float64)[:, None], 3, axis=1)
    y = np.broadcast_to(np.asarray(Y), x.shape)
    arrays = [paddle.to_tensor(np.asarray(a), dtype=dtype) for a in (x, y, W, P)]
    return arrays, [a.astype("float64").numpy() for a in arrays]



def test_registered_for_paddle():
    assert load_backend("paddle").engines == (paddle_fast.ENGINE,)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_values_match_exact(dtype, reduction, monkeypatch):
    calls = []
    monkeypatch.setattr(paddle_fast, "_forward", _spy(paddle_fast._forward, calls))
    (x, y, w, p), (xn, yn, wn, pn) = edge_grid(dtype)
    result = bce_compat.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p, reduction=reduction)
    assert calls, "the fast path did not run"
    assert result.dtype == x.dtype and tuple(result.shape) == (tuple(x.shape) if reduction == "none" else ())
    exact = reduce_exact(exact_logits_loss(xn, yn, wn, pn), reduction)
    size = 1 if reduction == "none" else x.size
    assert_close(result.astype("float64").numpy(), exact, dtype, ulps=1 if dtype == "float16" else 4, size=size)


def _spy(fn, calls):
    def spy(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return spy


def test_without_gradients_keeps_0d():
    x = paddle.to_tensor([-20.0, 0.0])
    result = bce_compat.binary_cross_entropy_with_logits(x, paddle.zeros([2]), reduction="mean")
    assert tuple(result.shape) == () and result.stop_gradient
    assert float(result) == pytest.approx((2.0611537e-09 + math.log(2.0)) / 2, rel=1e-7)


def test_declines_when_a_gradient_is_wanted():
    """With a gradient wanted the portable path records Paddle's own graph, so a second
    derivative fails loudly (Paddle has no log1p double-grad op) instead of silently
    leaving x.grad empty, as a PyLayer over NumPy kernels would."""
    x = paddle.to_tensor([0.5, -1.0, 2.0], stop_gradient=False)
    y = paddle.to_tensor([1.0, 0.0, 0.5])
    assert paddle_fast.bce_with_logits(x, y, None, None, "sum", paddle.float32) is NotImplemented
    loss = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="sum")
    (grad,) = paddle.grad(loss, [x])
    sigma = 1 / (1 + np.exp(-np.asarray([0.5, -1.0, 2.0])))
    np.testing.assert_allclose(grad.numpy(), sigma - np.asarray([1.0, 0.0, 0.5]), rtol=1e-6)
    loss = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="sum")
    with pytest.raises(RuntimeError, match="grad op"):
        paddle.grad(loss, [x], create_graph=True)


def test_declines_when_label_needs_gradient():
    x = paddle.to_tensor([0.5, -1.0], stop_gradient=False)
    y = paddle.to_tensor([1.0, 0.0], stop_gradient=False)
    assert paddle_fast.bce_with_logits(x, y, None, None, "sum", paddle.float32) is NotImplemented
    result = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="sum")
    result.backward()
    assert y.grad is not None and x.grad is not None


def test_inputs_not_modified_and_upstream_gradient():
    x = paddle.to_tensor([-3.0, 0.0, 2.0], stop_gradient=False)
    y = paddle.to_tensor([0.0, 0.3, 1.0])
    before = (x.numpy().copy(), y.numpy().copy())
    result = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=2.0, reduction="none")
    upstream = paddle.to_tensor([1.0, -2.0, 0.5])
    (result * upstream).sum().backward()
    grad, _ = exact_logits_grad(before[0], before[1], None, 2.0)
    np.testing.assert_allclose(x.grad.numpy(), grad * upstream.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(x.numpy(), before[0])
    np.testing.assert_array_equal(y.numpy(), before[1])


def test_docstring_examples_run():
    import doctest

    failures, tried = doctest.testmod(paddle_fast, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
