"""Focal ``alpha``/``gamma`` as traced values (issue 23 item 7): under ``jax.jit`` and ``tf.function``.

optax's own ``sigmoid_focal_loss`` takes them as traced values (its tests jit the call with
``gamma=...`` as an argument); only concrete values can be checked, so traced ones go through
and the math runs on them as arrays. Values and gradients are checked against optax's op under
``jit`` and against the exact focal loss.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import bce_compat
from _options_reference import exact_focal
from _reference import assert_close
from bce_compat.dialects import optax as O

X = np.array([[-30.0, -2.5, 0.0, 0.5, 4.0], [1.0, -0.25, 12.0, -7.0, 90.0]])
Y = np.array([[0.0, 1.0, 0.3, 1.0, 0.0], [0.0, 0.5, 1.0, 0.0, 1.0]])
PARAMS = [(None, 0.0), (None, 2.0), (0.25, 0.5), (1.0, 3.0), (0.0, 1.5)]


def _jax():
    jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'bce_compat[jax]')")
    return jax, jax.numpy


def _float32(a):
    return np.asarray(a, np.float32).astype(np.float64)


@pytest.mark.parametrize("alpha,gamma", PARAMS)
def test_optax_dialect_under_jit_takes_traced_alpha_and_gamma(alpha, gamma):
    jax, jnp = _jax()
    x, y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    got = jax.jit(O.sigmoid_focal_loss)(x, y, alpha=alpha, gamma=gamma)
    assert isinstance(got, jax.Array) and got.dtype == jnp.float32 and got.shape == X.shape
    exact = exact_focal(_float32(X), _float32(Y), -1.0 if alpha is None else alpha, gamma)[0]
    assert_close(np.asarray(got), exact, "float32", flush_subnormals=True)


@pytest.mark.parametrize("alpha,gamma", PARAMS)
def test_optax_dialect_under_jit_matches_optax_values_and_gradients(alpha, gamma):
    jax, jnp = _jax()
    optax = pytest.importorskip("optax", reason="optax is not installed")
    finite = np.abs(X) < 20  # where optax's log-space form is exact to float32 too
    x, y = jnp.asarray(X[finite], jnp.float32), jnp.asarray(Y[finite], jnp.float32)
    ours, theirs = jax.jit(O.sigmoid_focal_loss), jax.jit(optax.losses.sigmoid_focal_loss)
    np.testing.assert_allclose(ours(x, y, alpha=alpha, gamma=gamma), theirs(x, y, alpha=alpha, gamma=gamma),
                               rtol=2e-5, atol=1e-7)

    def total(fn):
        return lambda x, a, g: jnp.sum(fn(x, y, alpha=None if alpha is None else a, gamma=g))

    a0 = 0.5 if alpha is None else alpha
    for argnum in (0, 1, 2):  # to the logits, to alpha and to gamma, all traced
        if argnum == 1 and alpha is None:
            continue
        g_ours = jax.jit(jax.grad(total(O.sigmoid_focal_loss), argnums=argnum))(x, a0, gamma)
        g_theirs = jax.jit(jax.grad(total(optax.losses.sigmoid_focal_loss), argnums=argnum))(x, a0, gamma)
        assert np.isfinite(np.asarray(g_ours)).all()
        np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("alpha,gamma", [(-1.0, 0.0), (0.25, 2.0), (0.5, 0.5)])
def test_torch_dialect_focal_under_jit_with_traced_parameters_is_exact(alpha, gamma):
    jax, jnp = _jax()
    x, y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    got = jax.jit(bce_compat.sigmoid_focal_loss, static_argnames="reduction")(x, y, alpha, gamma, reduction="sum")
    exact = math.fsum(exact_focal(_float32(X), _float32(Y), alpha, gamma)[0].ravel().tolist())
    assert_close(np.asarray(got), np.asarray(exact), "float32", size=X.size, flush_subnormals=True)
    grad = jax.jit(jax.grad(lambda a: bce_compat.sigmoid_focal_loss(a, y, alpha, gamma, "sum")))(x)
    _, exact_grad, bound = exact_focal(_float32(X), _float32(Y), alpha, gamma)
    assert_close(np.asarray(grad), exact_grad, "float32", bound=bound, flush_subnormals=True)


def test_traced_gamma_under_vmap_gives_each_gammas_loss():
    jax, jnp = _jax()
    x, y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    gammas = jnp.asarray([0.0, 0.5, 2.0], jnp.float32)
    got = jax.vmap(lambda g: O.sigmoid_focal_loss(x, y, gamma=g))(gammas)
    for row, gamma in zip(np.asarray(got), (0.0, 0.5, 2.0)):
        assert_close(row, exact_focal(_float32(X), _float32(Y), -1.0, gamma)[0], "float32", flush_subnormals=True)


def test_focal_parameters_as_tensors_in_a_tf_function():
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'bce_compat[tf]')")

    @tf.function
    def loss(x, y, alpha, gamma):
        return O.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma)

    x, y = tf.constant(X), tf.constant(Y)
    for alpha, gamma in [(0.25, 0.5), (1.0, 3.0), (0.0, 0.0)]:
        got = loss(x, y, tf.constant(alpha, tf.float64), tf.constant(gamma, tf.float64))
        assert got.dtype == tf.float64
        assert_close(got.numpy(), exact_focal(X, Y, alpha, gamma)[0], "float64", flush_subnormals=True)


@pytest.mark.parametrize("arg,value", [("gamma", -1.0), ("alpha", 1.5)])
def test_concrete_array_parameters_are_still_checked(arg, value):
    jax, jnp = _jax()
    x = jnp.zeros(3)
    with pytest.raises(ValueError, match=f"`{arg}`"):
        O.sigmoid_focal_loss(x, x, **{arg: jnp.float32(value)})
    with pytest.raises(ValueError, match=f"`{arg}`"):
        bce_compat.sigmoid_focal_loss(np.zeros(3), np.zeros(3), **{arg: np.asarray(value)})


def test_concrete_array_parameters_give_the_numbers_loss():
    jax, jnp = _jax()
    x, y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    as_arrays = O.sigmoid_focal_loss(x, y, alpha=jnp.float32(0.25), gamma=jnp.float32(0.5))
    np.testing.assert_array_equal(as_arrays, O.sigmoid_focal_loss(x, y, alpha=0.25, gamma=0.5))


def test_integer_0d_array_parameters_are_read_as_their_numbers():
    """A 0-d integer array (``np.array(2)``, a counter's dtype) is a number like any other:
    gamma=np.array(2) and alpha=np.array(1, np.uint8) give the loss of gamma=2.0 and alpha=1.0,
    in torchvision's and optax's signatures."""
    expected = exact_focal(X, Y, 1.0, 2.0)[0]
    alpha, gamma = np.array(1, np.uint8), np.array(2)
    for got in (
        bce_compat.sigmoid_focal_loss(X, Y, alpha=alpha, gamma=gamma),
        O.sigmoid_focal_loss(X, Y, alpha=alpha, gamma=gamma),
    ):
        assert_close(got, expected, "float64")


@pytest.mark.parametrize("value", [np.ones(2), "2", [2.0]], ids=["1-d array", "str", "list"])
def test_parameters_that_are_no_number_name_the_argument(value):
    with pytest.raises(TypeError, match="`gamma` must be a number"):
        bce_compat.sigmoid_focal_loss(np.zeros(2), np.zeros(2), gamma=value)
