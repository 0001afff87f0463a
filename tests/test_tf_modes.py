"""TensorFlow's graph modes (issue 11 item 3): ``tf.function`` and XLA (``jit_compile=True``)
give the eager values and gradients, for both kinds, every reduction, float32 and float64.

Eager is itself checked against the exact reference elsewhere; here each mode is compared with
eager (to the bit, where XLA does not refuse: XLA fuses differently, so within 4 ulp there) and
with TF's own op on inputs where that op is exact (no ±inf, no x = 0 gradient).
"""

from __future__ import annotations

import numpy as np
import pytest

import bce_compat
from _reference import assert_close, exact_logits_grad, exact_logits_loss, reduce_exact

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'bce_compat[tf]')")

X = np.array([[-30.0, -2.5, 0.5, 4.0], [1.0, -0.25, 12.0, -7.0]])
Y = np.array([[0.0, 1.0, 0.3, 1.0], [0.0, 0.5, 1.0, 0.0]])
P = np.array([2.0, 0.5, 1.0, 3.0])
MODES = {
    "eager": lambda f: f,
    "tf.function": tf.function,
    "xla": lambda f: tf.function(f, jit_compile=True),
}


def _loss_and_grad(fn):
    def run(x, y, p):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = fn(x, y, p)
        return loss, tape.gradient(loss, x)

    return run


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_graph_modes_give_the_exact_loss_and_gradient(dtype, mode, reduction):
    def loss(x, y, p):
        return bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction=reduction)

    x, y, p = (tf.constant(a, dtype=getattr(tf, dtype)) for a in (X, Y, P))
    value, grad = MODES[mode](_loss_and_grad(loss))(x, y, p)
    assert value.dtype == x.dtype and tuple(value.shape) == (X.shape if reduction == "none" else ())
    assert_close(value.numpy(), reduce_exact(exact_logits_loss(X, Y, None, P), reduction), dtype,
                 size=X.size, flush_subnormals=True)
    exact_grad, bound = exact_logits_grad(X, Y, None, P)
    scale = 1 / X.size if reduction == "mean" else 1.0
    # the gradient of a reduced loss sums the upstream ones; "none" gets an upstream of ones
    assert_close(grad.numpy(), exact_grad * scale, dtype, bound=bound * scale, flush_subnormals=True)


@pytest.mark.parametrize("mode", ["tf.function", "xla"])
def test_graph_modes_match_tf_own_op_where_it_is_exact(mode):
    def ours(x, y, p):
        return bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction="none")

    def native(x, y, p):
        return tf.nn.weighted_cross_entropy_with_logits(labels=y, logits=x, pos_weight=p)

    # TF's own formula cancels at x = -30, y = 0 (it returns 9.24e-14, exact 9.36e-14): keep |x| small
    x_where_native_is_exact = np.clip(X, -5, 5)
    x, y, p = (tf.constant(a, dtype=tf.float64) for a in (x_where_native_is_exact, Y, P))
    ours_value, ours_grad = MODES[mode](_loss_and_grad(ours))(x, y, p)
    native_value, native_grad = MODES[mode](_loss_and_grad(native))(x, y, p)
    np.testing.assert_allclose(ours_value.numpy(), native_value.numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ours_grad.numpy(), native_grad.numpy(), rtol=1e-12, atol=1e-15)


def test_probability_loss_in_a_tf_function_skips_the_value_check_and_computes():
    @tf.function
    def loss(q, y):
        return bce_compat.binary_cross_entropy(q, y)

    q, y = tf.constant([0.25, 0.9]), tf.constant([0.0, 1.0])
    expected = -(np.log1p(-0.25) + np.log(0.9)) / 2
    np.testing.assert_allclose(loss(q, y).numpy(), expected, rtol=1e-6)


# --- jacobians (issue 23 item 8): TF runs the recorded backward inside a graph (pfor or a while loop)


def _jacobian_inputs(dtype):
    x = tf.Variable(np.clip(X, -5, 5), dtype=getattr(tf, dtype))  # where tf.nn's own op is exact
    return x, tf.constant(Y, dtype=x.dtype), tf.constant(P, dtype=x.dtype)


def _exact_jacobian(reduction):
    """d loss_i / d x_j of the unreduced loss is diagonal; "sum" makes it one row."""
    grad, bound = exact_logits_grad(np.clip(X, -5, 5), Y, None, P)
    if reduction == "sum":
        return grad, bound
    return np.diag(grad.ravel()).reshape(X.shape + X.shape), np.diag(bound.ravel()).reshape(X.shape + X.shape)


@pytest.mark.parametrize("use_pfor", [True, False], ids=["pfor", "while-loop"])
@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tape_jacobian_through_the_tf_dialect_is_exact_and_equals_tf_nn(dtype, reduction, use_pfor):
    from bce_compat.dialects import tf as T

    x, y, p = _jacobian_inputs(dtype)

    def jacobian(loss_of):
        with tf.GradientTape(persistent=not use_pfor) as tape:  # TF wants persistent for its while loop
            loss = loss_of(x)
            if reduction == "sum":
                loss = tf.reduce_sum(loss)
        return tape.jacobian(loss, x, experimental_use_pfor=use_pfor).numpy()

    ours = jacobian(lambda v: T.weighted_cross_entropy_with_logits(y, v, p))
    native = jacobian(lambda v: tf.nn.weighted_cross_entropy_with_logits(labels=y, logits=v, pos_weight=p))
    exact, bound = _exact_jacobian(reduction)
    assert_close(ours, exact, dtype, bound=bound)
    _assert_near_native(ours, native, bound, dtype)
    plain = jacobian(lambda v: T.sigmoid_cross_entropy_with_logits(y, v))
    plain_native = jacobian(lambda v: tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=v))
    _assert_near_native(plain, plain_native, _exact_jacobian(reduction)[1], dtype)


def _assert_near_native(ours, native, bound, dtype):
    """Within 8 ulp of the larger gradient term: tf.nn's own gradient cancels there too."""
    assert ours.shape == native.shape
    assert (np.abs(ours - native) <= 8 * np.finfo(dtype).eps * bound + np.finfo(dtype).tiny).all(), (ours, native)


@pytest.mark.parametrize("use_pfor", [True, False], ids=["pfor", "while-loop"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tape_batch_jacobian_through_the_tf_dialect_is_exact_and_equals_tf_nn(dtype, use_pfor):
    from bce_compat.dialects import tf as T

    x, y, p = _jacobian_inputs(dtype)

    def batch_jacobian(loss_of):
        with tf.GradientTape(persistent=not use_pfor) as tape:
            loss = loss_of(x)
        return tape.batch_jacobian(loss, x, experimental_use_pfor=use_pfor).numpy()

    ours = batch_jacobian(lambda v: T.weighted_cross_entropy_with_logits(y, v, p))
    native = batch_jacobian(lambda v: tf.nn.weighted_cross_entropy_with_logits(labels=y, logits=v, pos_weight=p))
    grad, bound = exact_logits_grad(np.clip(X, -5, 5), Y, None, P)
    assert ours.shape == X.shape + X.shape[1:]
    diagonal_bound = np.stack([np.diag(b) for b in bound])
    assert_close(ours, np.stack([np.diag(g) for g in grad]), dtype, bound=diagonal_bound)
    _assert_near_native(ours, native, diagonal_bound, dtype)


def test_tape_jacobian_of_a_mean_with_weight_is_exact():
    x, y, p = _jacobian_inputs("float64")
    w = tf.constant([[2.0, 3.0, 0.5, 1.0], [1.0, 0.25, 4.0, 2.0]], tf.float64)
    with tf.GradientTape() as tape:
        losses = tf.stack([bce_compat.binary_cross_entropy_with_logits(x, y, w, pos_weight=p, reduction=r)
                           for r in ("mean", "sum")])
    jac = tape.jacobian(losses, x).numpy()
    grad, bound = exact_logits_grad(np.clip(X, -5, 5), Y, w.numpy(), P)
    assert_close(jac[0], grad / X.size, "float64", bound=bound / X.size)
    assert_close(jac[1], grad, "float64", bound=bound)
