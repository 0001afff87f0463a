"""Gradients through each library's own autograd, against the analytic gradient (docs/contract.md §3-4), x = 0 included."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from _calls import DIALECTS, probs, with_logits
from _reference import assert_close, exact_logits_grad, skip_unless_dtype

X = [-30.0, -20.0, -3.0, -1.0, -1e-4, 0.0, 1e-4, 0.5, 2.0, 20.0, 40.0]
Y = [0.0, 0.25, 1.0]
W = [0.5, 1.0, 2.0]
P = [3.0, 1.0, 0.0]


def _grid(dtype):
    x = np.repeat(np.asarray(X, dtype=dtype)[:, None], len(Y), axis=1)
    y = np.broadcast_to(np.asarray(Y, dtype=dtype), x.shape).copy()
    return x, y, np.asarray(W, dtype=dtype), np.asarray(P, dtype=dtype)


def _softplus(v):
    v = mpmath.mpf(float(v))
    return mpmath.log1p(mpmath.exp(v))


def _exact_other_grads(x, y, w, p):
    """d/dy (with the bound its two terms allow), d/dw, d/dp, the last two summed over the broadcast axis."""
    dy, dy_bound, dw, dp = (np.empty(x.shape) for _ in range(4))
    for i in np.ndindex(x.shape):
        c = i[-1]
        sp_neg, sp_pos = _softplus(-x[i]), _softplus(x[i])
        dy[i] = float(w[c] * (p[c] * sp_neg - sp_pos))  # two terms that can cancel
        dy_bound[i] = float(w[c] * max(p[c] * sp_neg, sp_pos))
        dw[i] = float(p[c] * y[i] * sp_neg + (1 - y[i]) * sp_pos)
        dp[i] = float(w[c] * y[i] * sp_neg)
    return dy, dy_bound, dw.sum(axis=0), dp.sum(axis=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_gradient_wrt_input_matches_analytic(autograd_framework, dialect, dtype):
    fw = autograd_framework
    skip_unless_dtype(fw, dtype)
    x_np, y_np, w_np, p_np = _grid(dtype)
    args = [fw.asarray(a, dtype) for a in (x_np, y_np, w_np, p_np)]

    _, (grad_x,) = fw.value_and_grad(
        lambda x, y, w, p: with_logits(dialect, x, y, w, p, reduction="none"), args, wrt=[0]
    )

    expected, bound = exact_logits_grad(x_np, y_np, w_np, p_np)
    assert_close(grad_x, expected, dtype, ulps=4, bound=bound)


def test_gradient_at_zero_is_sigmoid_of_zero(autograd_framework):
    """x = 0: dl/dx = sigmoid(0) - y = 0.5 - y (torch, TF and Paddle disagree on max/abs there)."""
    fw = autograd_framework
    x, y = fw.asarray([0.0, 0.0, 0.0], "float32"), fw.asarray([0.0, 0.5, 1.0], "float32")
    _, (grad_x,) = fw.value_and_grad(lambda x, y: with_logits("torch", x, y, reduction="sum"), [x, y], wrt=[0])
    np.testing.assert_array_equal(grad_x, [0.5, 0.0, -0.5])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_gradients_wrt_target_weight_and_pos_weight(autograd_framework, dialect):
    fw = autograd_framework
    skip_unless_dtype(fw, "float64")
    x_np, y_np, w_np, p_np = _grid("float64")
    args = [fw.asarray(a, "float64") for a in (x_np, y_np, w_np, p_np)]

    _, (gy, gw, gp) = fw.value_and_grad(
        lambda x, y, w, p: with_logits(dialect, x, y, w, p, reduction="none"), args, wrt=[1, 2, 3]
    )

    dy, dy_bound, dw, dp = _exact_other_grads(x_np, y_np, w_np, p_np)
    assert_close(gy, dy, "float64", ulps=8, bound=dy_bound)
    assert_close(gw, dw, "float64", ulps=8, size=len(X))
    assert_close(gp, dp, "float64", ulps=8, size=len(X))


@pytest.mark.parametrize("reduction, scale", [("mean", 1 / 33), ("sum", 1.0)])
def test_gradient_of_reductions(autograd_framework, reduction, scale):
    fw = autograd_framework
    x_np, y_np, w_np, p_np = _grid("float32")
    args = [fw.asarray(a, "float32") for a in (x_np, y_np, w_np, p_np)]
    _, (grad_x,) = fw.value_and_grad(
        lambda x, y, w, p: with_logits("torch", x, y, w, p, reduction=reduction), args, wrt=[0]
    )
    expected, bound = exact_logits_grad(x_np, y_np, w_np, p_np)
    assert_close(grad_x, expected * scale, "float32", ulps=6, bound=bound * scale)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_probability_gradient(autograd_framework, dialect):
    fw = autograd_framework
    skip_unless_dtype(fw, "float64")
    q_np = np.repeat(np.asarray([1e-6, 0.1, 0.5, 0.9, 1 - 1e-6])[:, None], 3, axis=1)
    y_np = np.broadcast_to(np.asarray([0.0, 0.3, 1.0]), q_np.shape).copy()
    w_np = np.asarray([0.5, 1.0, 2.0])
    args = [fw.asarray(a, "float64") for a in (q_np, y_np, w_np)]

    _, (grad_q,) = fw.value_and_grad(lambda q, y, w: probs(dialect, q, y, w, reduction="none"), args, wrt=[0])

    first, second = (1 - y_np) / (1 - q_np), y_np / q_np
    assert_close(grad_q, w_np * (first - second), "float64", ulps=8, bound=w_np * np.maximum(first, second))


def test_probability_gradient_is_finite_at_clamped_ends(autograd_framework):
    """q = 0 with y = 0 and q = 1 with y = 1: the clamped log gives a finite loss and gradient."""
    fw = autograd_framework
    q, y = fw.asarray([0.0, 1.0], "float32"), fw.asarray([0.0, 1.0], "float32")
    value, (grad_q,) = fw.value_and_grad(lambda q, y: probs("torch", q, y, reduction="none"), [q, y], wrt=[0])
    np.testing.assert_array_equal(fw.to_numpy(value), [0.0, 0.0])
    assert np.isfinite(grad_q).all()
    np.testing.assert_allclose(grad_q, [1.0, -1.0])
