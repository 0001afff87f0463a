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
