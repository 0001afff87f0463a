"""First and second derivatives on every backend with double backward, against exact values.

torch (``torch.autograd.grad(create_graph=True)``), Paddle (``paddle.grad(create_graph=True)``),
TensorFlow (nested ``GradientTape``s) and JAX (``jax.vjp`` inside ``jax.grad``), float64. Each
case has a weight, a pos_weight (or focal ``alpha``/``gamma``), a reduction and an upstream
gradient U that is not 1; the first derivative g = d(U . loss)/dx is then contracted with
another vector C, and d(C . g) is taken with respect to the logit and, for the BCE, the target,
weight and pos_weight too. The exact values are mpmath's derivatives (60 digits) of the exact
loss per element (issue 23 items 10 and 11: Paddle's focal loss had no second derivative, and a
Paddle backward that dropped the weight under ``create_graph`` went unnoticed).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import bce_compat
from _reference import assert_close

X = np.array([[-4.0, -1.5, -0.25, 0.0], [0.5, 1.0, 2.5, 5.5]])
Y = np.array([[0.0, 1.0, 0.3, 1.0], [0.0, 0.75, 1.0, 0.5]])
W = np.array([[2.0, 3.0, 0.5, 1.25], [1.5, 0.25, 4.0, 2.0]])
P = np.array([2.0, 0.5, 1.0, 3.0])  # along the last axis: its gradient sums over the rows
Q = np.array([[0.05, 0.9, 0.3, 0.5], [0.6, 0.2, 0.99, 0.45]])  # probabilities, inside the -100 clamp
U_NONE = np.array([[0.75, -2.0, 1.5, 0.5], [3.0, 1.0, -0.5, 2.25]])  # the upstream gradient of "none"
U_SCALAR = -1.75  # of "mean" and "sum"
C = np.array([[1.5, -0.5, 2.0, 1.0], [-1.0, 0.25, 3.0, 0.75]])  # contracts the first derivative
DOUBLE_BACKWARD = ("torch", "paddle", "tensorflow", "jax")
NAMES = ("x", "y", "w", "p")


# --- exact values ---------------------------------------------------------------------------------


def _softplus(v):
    return v + mpmath.log1p(mpmath.exp(-v)) if v > 0 else mpmath.log1p(mpmath.exp(v))


def _sigmoid(v):
    return 1 / (1 + mpmath.exp(-v))


def _bce_logits(x, y, w, p):
    return w * (p * y * _softplus(-x) + (1 - y) * _softplus(x))


def _bce_probs(q, y, w, p):
    return -w * (y * mpmath.log(q) + (1 - y) * mpmath.log1p(-q))


def _focal(alpha, gamma):
    def loss(x, y, w, p):
        ce = y * _softplus(-x) + (1 - y) * _softplus(x)
        m = (1 - y) * _sigmoid(x) + y * _sigmoid(-x)
        alpha_t = alpha * y + (1 - alpha) * (1 - y) if alpha >= 0 else 1
        return alpha_t * ce * (m ** gamma if gamma else 1)

    return loss


def _upstream(reduction):
    if reduction == "none":
        return U_NONE
    return np.full(X.shape, U_SCALAR / (X.size if reduction == "mean" else 1))


def exact_derivatives(element_loss, x, reduction, wrt):
    """(g, {name: d(C . g)/d name}) for L = U . loss, g = dL/dx; p's derivative sums over the rows."""
    upstream = _upstream(reduction)
    g = np.empty(x.shape)
    second = {name: np.zeros(x.shape) for name in wrt}
    with mpmath.workdps(60):
        for i in np.ndindex(x.shape):
            point = [mpmath.mpf(float(v)) for v in (x[i], Y[i], W[i], P[i[-1]])]

            def at(*args):
                return element_loss(*args)

            g[i] = float(upstream[i] * mpmath.diff(at, point, (1, 0, 0, 0)))
            for name in wrt:
                order = [1, 0, 0, 0]
                order[NAMES.index(name)] += 1
                second[name][i] = float(C[i] * upstream[i] * mpmath.diff(at, point, tuple(order)))
    if "p" in second:
        second["p"] = second["p"].sum(axis=0)
    return g, second


# --- each backend's double backward -------------------------------------------------------------


def _torch(fn, args, wrt, upstream, contraction):
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=name in wrt) for name, a in zip(NAMES, args)]
    loss = fn(*tensors)
    (g,) = torch.autograd.grad(loss, tensors[0], grad_outputs=torch.tensor(upstream).reshape(loss.shape),
                               create_graph=True)
    seconds = torch.autograd.grad(g, [tensors[NAMES.index(n)] for n in wrt], grad_outputs=torch.tensor(contraction))
    return g.detach().numpy(), [s.numpy() for s in seconds]


def _paddle(fn, args, wrt, upstream, contraction):
    paddle = pytest.importorskip("paddle")
    tensors = []
    for name, a in zip(NAMES, args):
        t = paddle.to_tensor(a, dtype="float64")
        t.stop_gradient = name not in wrt
        tensors.append(t)
    loss = fn(*tensors)
    (g,) = paddle.grad(loss, tensors[0], grad_outputs=paddle.to_tensor(upstream).reshape(loss.shape),
                       create_graph=True)
    seconds = paddle.grad(g, [tensors[NAMES.index(n)] for n in wrt], grad_outputs=paddle.to_tensor(contraction))
    return g.numpy(), [s.numpy() for s in seconds]


def _tensorflow(fn, args, wrt, upstream, contraction):
    tf = pytest.importorskip("tensorflow")
    tensors = [tf.constant(a, dtype=tf.float64) for a in args]
    watched = [tensors[NAMES.index(n)] for n in wrt]
    with tf.GradientTape() as outer:
        outer.watch(watched)
        with tf.GradientTape() as inner:
            inner.watch(watched)
            loss = fn(*tensors)
        g = inner.gradient(loss, tensors[0], output_gradients=tf.reshape(tf.constant(upstream), loss.shape))
    seconds = outer.gradient(g, watched, output_gradients=tf.constant(contraction))
    return g.numpy(), [s.numpy() for s in seconds]


def _jax(fn, args, wrt, upstream, contraction):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    with jax.enable_x64(True):
        arrays = [jnp.asarray(a, jnp.float64) for a in args]

        def first(*a):
            loss, pullback = jax.vjp(lambda v: fn(v, *a[1:]), a[0])
            return pullback(jnp.reshape(jnp.asarray(upstream), loss.shape))[0]

        def contracted(*a):
            return jnp.sum(jnp.asarray(contraction) * first(*a))

        argnums = tuple(NAMES.index(n) for n in wrt)
        seconds = jax.grad(contracted, argnums=argnums)(*arrays)
        return np.asarray(first(*arrays)), [np.asarray(s) for s in seconds]


RUN = {"torch": _torch, "paddle": _paddle, "tensorflow": _tensorflow, "jax": _jax}


def _check(backend, fn, element_loss, x, reduction, wrt, second_tolerance=2.0**-40):
    upstream = U_NONE if reduction == "none" else np.asarray(U_SCALAR)
    g, seconds = RUN[backend](fn, [x, Y, W, P], wrt, upstream, C)
    exact_g, exact_seconds = exact_derivatives(element_loss, x, reduction, wrt)
    # the first derivative within 8 ulp of its largest value; the second within 2**-40 of it (by default)
    assert_close(g, exact_g, "float64", ulps=8, bound=np.full(x.shape, np.abs(exact_g).max()))
    for name, got in zip(wrt, seconds):
        want = exact_seconds[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        scale = max(np.abs(want).max(), 1e-300)
        np.testing.assert_allclose(got, want, rtol=0, atol=second_tolerance * scale, err_msg=f"d(C.g)/d{name} on {backend}")


# --- the cases ------------------------------------------------------------------------------------


def _logits(x, y, w, p, reduction):
    return bce_compat.binary_cross_entropy_with_logits(x, y, w, reduction=reduction, pos_weight=p)


@pytest.mark.parametrize("wrt", [("x",), NAMES], ids=["logit-only", "every-operand"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("backend", DOUBLE_BACKWARD)
def test_logits_loss_first_and_second_derivatives_with_weight_and_pos_weight(backend, reduction, wrt):
    _check(backend, lambda x, y, w, p: _logits(x, y, w, p, reduction), _bce_logits, X, reduction, wrt)


@pytest.mark.parametrize("backend", DOUBLE_BACKWARD)
def test_paddle_dialect_first_and_second_derivatives(backend):
    from bce_compat.dialects import paddle as P_

    def loss(x, y, w, p):
        return P_.binary_cross_entropy_with_logits(x, y, w, reduction="mean", pos_weight=p)

    _check(backend, loss, _bce_logits, X, "mean", ("x", "w"))


@pytest.mark.parametrize("backend", DOUBLE_BACKWARD)
def test_label_smoothing_first_and_second_derivatives(backend):
    eps = 0.2

    def loss(x, y, w, p):
        return bce_compat.binary_cross_entropy_with_logits(x, y, w, reduction="mean", pos_weight=p, label_smoothing=eps)

    def exact(x, y, w, p):
        return _bce_logits(x, y * (1 - eps) + eps / 2, w, p)

    _check(backend, loss, exact, X, "mean", ("x", "w", "p"))


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("backend", DOUBLE_BACKWARD)
def test_probability_loss_first_and_second_derivatives_with_weight(backend, reduction):
    def loss(q, y, w, p):
        return bce_compat.binary_cross_entropy(q, y, w, reduction=reduction)

    def exact(q, y, w, p):
        return _bce_probs(q, y, w, 1)

    _check(backend, loss, exact, Q, reduction, ("x", "y", "w"))


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1.0, 0.0), (0.5, 0.5), (0.75, 3.0)])
@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("backend", DOUBLE_BACKWARD)
def test_focal_loss_first_and_second_derivatives(backend, reduction, alpha, gamma):
    def loss(x, y, w, p):
        return bce_compat.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction=reduction)

    _check(backend, loss, _focal(alpha, gamma), X, reduction, ("x", "y"))


@pytest.mark.parametrize("backend", DOUBLE_BACKWARD)
def test_focal_second_derivative_with_a_float64_gamma_float32_cannot_hold(backend):
    """gamma = 0.1 is not a float32: its power is split (Paddle's scalar pow rounds the exponent).

    Paddle's own second-derivative kernel of x**e works out e - 1 in float32 (8e-8 off for
    e = 0.1 in float64), so its second derivative there is float32's, not float64's.
    """
    def loss(x, y, w, p):
        return bce_compat.sigmoid_focal_loss(x, y, alpha=0.25, gamma=0.1, reduction="sum")

    _check(backend, loss, _focal(0.25, 0.1), X, "sum", ("x",), second_tolerance=2.0**-20 if backend == "paddle" else 2.0**-40)


def test_exact_reference_is_the_closed_form():
    """The reference itself: mpmath's derivatives equal the closed forms of the BCE's derivatives."""
    g, second = exact_derivatives(_bce_logits, X, "sum", ("x", "w"))
    s = 1 / (1 + np.exp(-X))
    closed_g = U_SCALAR * W * (s * (1 + (P - 1) * Y) - P * Y)
    np.testing.assert_allclose(g, closed_g, rtol=1e-14)
    np.testing.assert_allclose(second["x"], C * U_SCALAR * W * s * (1 - s) * (1 + (P - 1) * Y), rtol=1e-13)
    np.testing.assert_allclose(second["w"], C * U_SCALAR * (s * (1 + (P - 1) * Y) - P * Y), rtol=1e-13, atol=1e-15)
    assert math.isclose(float(mpmath.diff(lambda v: _softplus(v), mpmath.mpf(0))), 0.5)
