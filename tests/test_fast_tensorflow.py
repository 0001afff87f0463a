"""The TensorFlow CPU engine (backends/tensorflow_fast.py): values and gradients against the exact loss.

Each test checks which path ran by calling the engine itself beside the public call: a result
(not ``Declined``) means the compiled pass computed it.
"""

from __future__ import annotations

import numpy as np
import pytest

import _cpu_pass_calls as calls
from _reference import (
    assert_close,
    edge_grid_values,
    exact_logits_grad,
    exact_logits_loss,
    reduce_exact,
    rounded_once,
)

pytest.importorskip("torch")  # import order: torch, paddle, then tensorflow
pytest.importorskip("paddle")
tf = pytest.importorskip("tensorflow")

import bce_compat  # noqa: E402
from bce_compat._registry import load_backend  # noqa: E402
from bce_compat.backends import cpu_pass, tensorflow_fast  # noqa: E402
from bce_compat.backends.tensorflow import constant  # noqa: E402
from bce_compat.contract import Declined, Problem  # noqa: E402

pytestmark = pytest.mark.skipif(not cpu_pass.AVAILABLE, reason="the compiled pass was not built")

DTYPES = {"float16": tf.float16, "bfloat16": tf.bfloat16, "float32": tf.float32, "float64": tf.float64}


def edge_grid(dtype):
    arrays = [tf.constant(a, dtype=DTYPES[dtype]) for a in edge_grid_values()]
    return arrays, [a.numpy().astype(np.float64) for a in arrays]


def loss(x, y, w=None, p=None, reduction="none"):
    return bce_compat.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p, reduction=reduction)


def engine_result(x, y, w, p, reduction):
    return tensorflow_fast.ENGINE(Problem("logits", x, y, w, p, reduction, x.dtype))


def test_registered_for_tensorflow():
    assert load_backend("tensorflow").engines == (tensorflow_fast.ENGINE,)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_values_and_gradients_match_exact(dtype, reduction):
    (x, y, w, p), (xn, yn, wn, pn) = edge_grid(dtype)
    assert not isinstance(engine_result(x, y, w, p, reduction), Declined)
    plain = loss(x, y, w, p, reduction)
    with tf.GradientTape() as tape:
        tape.watch(x)
        result = loss(x, y, w, p, reduction)
    assert result.dtype == x.dtype and result.shape == (x.shape if reduction == "none" else ())
    np.testing.assert_array_equal(result.numpy(), plain.numpy())  # same bits with a tape
    exact = reduce_exact(exact_logits_loss(xn, yn, wn, pn), reduction)
    tight = 1 if dtype in ("float16", "bfloat16") else 4
    assert_close(result.numpy().astype(np.float64), exact, dtype, ulps=tight, size=1 if reduction == "none" else xn.size)
    grad = tape.gradient(result, x)
    expected, bound = exact_logits_grad(xn, yn, wn, pn)
    if reduction == "mean":
        expected, bound = expected / xn.size, bound / xn.size
    assert grad.dtype == x.dtype
    assert_close(grad.numpy().astype(np.float64), expected, dtype, ulps=tight, bound=bound)


def test_upstream_gradient_and_variables():
    x = tf.Variable([[-20.0, 0.0, 3.0]])
    y = tf.constant([[0.0, 1.0, 0.5]])
    upstream = tf.constant([[1.0, -2.0, 0.5]])
    with tf.GradientTape(persistent=True) as tape:
        result = loss(x, y, 2.0, 3.0)
    expected, bound = exact_logits_grad(x.numpy().astype(np.float64), y.numpy().astype(np.float64), 2.0, 3.0)
    for _ in range(2):  # a persistent tape runs the backward twice: the saved derivative is not consumed
        grad = tape.gradient(result, x, output_gradients=upstream)
        assert_close(grad.numpy(), expected * upstream.numpy(), "float32", ulps=4, bound=bound * 2)


@pytest.mark.parametrize("watched", [1, 2, 3])
def test_gradients_of_target_weight_and_pos_weight_match_tf_autodiff(watched):
    """The value stays the pass's; the operands' gradients come from TF's autodiff of the portable formula."""
    rng = np.random.default_rng(watched)
    x, y = tf.constant(rng.standard_normal((4, 5)) * 3), tf.constant(rng.random((4, 5)))
    w, p = tf.constant(rng.random(5) + 0.5), tf.constant(rng.random((4, 1)) + 0.5)
    arrays = [x, y, w, p]
    plain = loss(*arrays, "mean")
    with tf.GradientTape() as tape:
        tape.watch([x, arrays[watched]])
        result = loss(*arrays, "mean")
    np.testing.assert_array_equal(result.numpy(), plain.numpy())
    grads = tape.gradient(result, [x, arrays[watched]])
    with tf.GradientTape() as tape:
        tape.watch([x, arrays[watched]])
        native = tf.reduce_mean(w * tf.nn.weighted_cross_entropy_with_logits(y, x, p))
    expected = tape.gradient(native, [x, arrays[watched]])
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-15)


def test_second_derivative_matches_tf():
    rng = np.random.default_rng(0)
    x, y = tf.constant(rng.standard_normal(16) * 2), tf.constant(rng.random(16))
    hessians = []
    for fn in (lambda: loss(x, y, None, 1.5, "sum"),
               lambda: tf.reduce_sum(tf.nn.weighted_cross_entropy_with_logits(y, x, 1.5))):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                value = fn()
            g = inner.gradient(value, x)
        hessians.append(outer.gradient(g, x))
    assert float(tf.reduce_max(tf.abs(hessians[0]))) > 0.01
    np.testing.assert_allclose(hessians[0].numpy(), hessians[1].numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case, reason", [
    ("graph", "graph mode"),
    ("empty", "empty input"),
])
def test_declines_and_the_portable_path_computes(case, reason):
    x, y = tf.constant([[0.5, -2.0]]), tf.constant([[1.0, 0.0]])
    if case == "bfloat16":
        x, y = tf.cast(x, tf.bfloat16), tf.cast(y, tf.bfloat16)
    if case == "empty":
        x, y = tf.zeros([0, 2]), tf.zeros([0, 2])
    if case == "graph":
        seen = []

        @tf.function
        def run(a, b):
            seen.append(engine_result(a, b, None, None, "sum"))
            return loss(a, b, None, None, "sum")

        value = run(x, y)
        declined = seen[0]
    else:
        declined = engine_result(x, y, None, None, "sum")
        value = loss(x, y, None, None, "sum")
    assert isinstance(declined, Declined) and reason in declined.reason
    expected = reduce_exact(exact_logits_loss(x.numpy().astype(np.float64), y.numpy().astype(np.float64)), "sum")
    assert_close(tf.cast(value, tf.float64).numpy(), expected, "float32" if case != "bfloat16" else "bfloat16",
                 ulps=4, size=max(1, x.shape.num_elements()))


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_large_inputs_over_threads_and_numpy_operands(reduction):
    rng = np.random.default_rng(5)
    n = cpu_pass.PARALLEL_MIN * 2 + 3
    xn, yn = (rng.standard_normal(n) * 5).astype(np.float32), rng.random(n).astype(np.float32)
    value = loss(tf.constant(xn), yn, None, np.float32(2.5), reduction)  # NumPy operands beside a tensor
    assert isinstance(value, tf.Tensor)
    exact = reduce_exact(exact_logits_loss(xn.astype(np.float64), yn.astype(np.float64), None, 2.5), reduction)
    assert_close(value.numpy(), exact, "float32", ulps=4, size=1 if reduction == "none" else n)


@pytest.mark.parametrize("upstream", [1.0, 3.0])
def test_float16_gradient_rounds_once_into_subnormals(upstream):
    """A float16 mean over 4096 elements has gradients near 1e-4, many of them float16 subnormals:
    the float32 derivative times the upstream, rounded once to float16 (by TF's cast)."""
    rng = np.random.default_rng(4)
    xn = (rng.standard_normal((64, 64)) * 3).astype(np.float16)
    yn = (rng.random((64, 64)) > 0.5).astype(np.float16)
    x = tf.Variable(xn)
    with tf.GradientTape() as tape:
        loss = bce_compat.binary_cross_entropy_with_logits(x, tf.constant(yn)) * upstream
    grad = tape.gradient(loss, x).numpy()
    derivative = np.empty(xn.shape, np.float32)
    calls.loss(xn, yn, None, None, "mean", np.float16, grad_out=derivative)
    expected = (derivative * np.float32(upstream)).astype(np.float16)
    assert grad.dtype == np.float16 and np.count_nonzero(np.abs(expected) < np.finfo(np.float16).tiny) > 100
    assert grad.tobytes() == expected.tobytes()


def test_scalar_results_and_the_namespaces_fills_are_rounded_once():
    """The 0-d result of a mean or sum, and the namespace's ``full``/``full_like`` (the portable
    path's constants): the double rounded once to the dtype. TF's cast of a double to bfloat16, and
    ml_dtypes', go through float32, which rounds 1 + 2**-8 + 2**-30 to the bfloat16 midpoint
    1 + 2**-8 and then to even (1.0), where one rounding gives 1 + 2**-7."""
    rng = np.random.default_rng(3)
    crafted = [1.0 + 2.0**-8 + 2.0**-30, -(1.0 + 2.0**-8 + 2.0**-30), 1.0 + 2.0**-11 + 2.0**-30, 65519.0, 1e-46, 3.5e38]
    values = list(rng.standard_normal(300) * 10.0 ** rng.integers(-40, 39, 300)) + crafted
    xp = load_backend("tensorflow").namespace(tf.zeros([1]))
    for name in ("float16", "bfloat16", "float32", "float64"):
        dtype = getattr(tf, name)
        like = tf.zeros([2], dtype)
        for value in values:
            expected = np.float64(rounded_once(float(value), name))
            made = {
                "constant": constant(float(value), dtype),
                "full": xp.full((2,), float(value), dtype=dtype),
                "full_like": xp.full_like(like, float(value)),
            }
            for how, tensor in made.items():
                got = tensor.numpy().astype(np.float64).reshape(-1)
                assert (got.view(np.int64) == expected.view(np.int64)).all(), (how, value, name, got, expected)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_the_engines_0d_result_is_the_passs_double_rounded_once(monkeypatch, name):
    """Whatever double the pass's sum comes to, the engine's 0-d result is it rounded once (the
    sums here are set through ``cpu_pass.settle``: real inputs cannot aim at a rounding midpoint)."""
    x = tf.zeros([4], getattr(tf, name))
    for value in (1.0 + 2.0**-8 + 2.0**-30, -(1.0 + 2.0**-11 + 2.0**-30), 1e-46, 3.5e38, -0.0):
        monkeypatch.setattr(cpu_pass, "settle", lambda *args, v=value: cpu_pass.Settled(False, v, 1.0))
        got = engine_result(x, x, None, None, "sum").numpy().astype(np.float64)
        expected = np.float64(rounded_once(value, name))
        assert got.tobytes() == expected.tobytes(), (value, name, got, expected)


def test_zeros_keep_their_sign_whatever_tfs_constant_cache_holds():
    """TF keeps the constants it makes from Python numbers in a cache keyed by value and dtype, where
    0.0 == -0.0: whichever zero a process made first, ``tf.constant`` gives it for the other too
    (after a ``tf.constant(-0.0, dtype=tf.float32)``, a loss of exactly 0 came back as -0.0). Both
    zeros are made here first, so one of them went through the cache with the other's sign."""
    tf.constant(-0.0, dtype=tf.float32), tf.constant(0.0, dtype=tf.float32)
    for zero in (0.0, -0.0):
        assert np.signbit(constant(zero, tf.float32).numpy()) == np.signbit(zero)
    x, y = tf.constant([-1e30, -1e30]), tf.constant([0.0, 0.0])
    total = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="sum")
    assert float(total) == 0.0 and not np.signbit(total.numpy())
    xp = load_backend("tensorflow").namespace(x)
    for zero in (0.0, -0.0):
        assert (np.signbit(xp.full_like(x, zero).numpy()) == np.signbit(zero)).all()
        assert (np.signbit(xp.full((2,), zero).numpy()) == np.signbit(zero)).all()
