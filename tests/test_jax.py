"""JAX: the portable call on ``jax.numpy`` arrays, under ``grad``, ``jit`` and ``vmap``, against a
float64 reference and ``optax.sigmoid_binary_cross_entropy``.

float32 is JAX's default and is tested as is; float64 tests run inside ``jax.enable_x64(True)``,
which restores the flag on exit.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import bce_compat
from _float64_reference import logits_reference, probs_reference, softplus64
from bce_compat.dialects import paddle as paddle_dialect

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

REDUCTIONS = ("none", "mean", "sum")
RNG = np.random.default_rng(7)


def sample(shape=(4, 5)):
    """Logits incl. 0 and large magnitudes, hard and soft targets, positive weights."""
    x = RNG.normal(0, 4, shape)
    x.flat[:4] = [0.0, -30.0, 25.0, 0.0]
    y = RNG.choice([0.0, 1.0, 0.3, 0.75], shape)
    w = RNG.uniform(0.5, 2.0, shape)
    p = RNG.uniform(0.5, 3.0, shape[-1:])
    return x, y, w, p


def as_jax(*arrays, dtype="float32"):
    return [jnp.asarray(a, dtype=getattr(jnp, dtype)) for a in arrays]


def assert_jax_close(result, expected, dtype, rtol):
    assert isinstance(result, jax.Array), type(result)
    assert result.dtype == getattr(jnp, dtype)
    assert result.shape == np.shape(expected)
    np.testing.assert_allclose(np.asarray(result, np.float64), expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", ["torch", "paddle"])
def test_logits_float32_match_reference(dialect, reduction):
    x, y, w, p = sample()
    jx, jy, jw, jp = as_jax(x, y, w, p)
    if dialect == "torch":
        result = bce_compat.binary_cross_entropy_with_logits(jx, jy, jw, reduction=reduction, pos_weight=jp)
    else:
        result = paddle_dialect.binary_cross_entropy_with_logits(jx, jy, jw, reduction=reduction, pos_weight=jp)
    # reference at the float32-rounded inputs
    expected = logits_reference(*(np.asarray(a, np.float64) for a in (jx, jy, jw, jp)), reduction=reduction)
    assert_jax_close(result, expected, "float32", rtol=2e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probs_float32_match_reference(reduction):
    q = np.array([[0.0, 1.0, 1e-30, 0.5, 0.999], [0.2, 0.7, 1e-7, 0.01, 0.9]])
    y = np.array([[0.0, 1.0, 1.0, 0.4, 0.0], [1.0, 0.0, 0.0, 1.0, 1.0]])
    w = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    jq, jy, jw = as_jax(q, y, w)
    result = bce_compat.binary_cross_entropy(jq, jy, jw, reduction=reduction)
    expected = probs_reference(*(np.asarray(a, np.float64) for a in (jq, jy, jw)), reduction=reduction)
    assert_jax_close(result, expected, "float32", rtol=2e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_float64_under_enable_x64(reduction):
    x, y, w, p = sample()
    with jax.enable_x64(True):
        jx, jy, jw, jp = as_jax(x, y, w, p, dtype="float64")
        result = bce_compat.binary_cross_entropy_with_logits(jx, jy, jw, reduction=reduction, pos_weight=jp)
        assert_jax_close(result, logits_reference(x, y, w, p, reduction), "float64", rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_keeps_dtype(dtype):
    x, y, _, _ = sample()
    jx, jy = as_jax(x, y, dtype=dtype)
    result = bce_compat.binary_cross_entropy_with_logits(jx, jy, reduction="none")
    expected = logits_reference(np.asarray(jx, np.float64), np.asarray(jy, np.float64))
    assert result.dtype == getattr(jnp, dtype)
    eps = float(jnp.finfo(getattr(jnp, dtype)).eps)
    np.testing.assert_allclose(np.asarray(result.astype(jnp.float32), np.float64), expected, rtol=eps, atol=0)


def test_result_stays_on_input_device():
    jx, jy = as_jax([0.5, -1.0], [1.0, 0.0])
    result = bce_compat.binary_cross_entropy_with_logits(jx, jy)
    assert result.devices() == jx.devices()


# ---- gradients: the analytic derivatives of w*[p*y*softplus(-x) + (1-y)*softplus(x)]

def analytic_grads(x, y, w, p):
    sig = 1 / (1 + np.exp(-x))
    return {
        "input": w * (sig * (1 + (p - 1) * y) - p * y),
        "target": w * (p * softplus64(-x) - softplus64(x)),
        "weight": p * y * softplus64(-x) + (1 - y) * softplus64(x),
        "pos_weight": w * y * softplus64(-x),
    }


def test_grad_float64_all_arguments_match_analytic():
    x, y, w, _ = sample()
    p = RNG.uniform(0.5, 3.0, x.shape)  # full shape: its gradient is element-wise
    with jax.enable_x64(True):
        args = as_jax(x, y, w, p, dtype="float64")
        loss = functools.partial(bce_compat.binary_cross_entropy_with_logits, reduction="sum")
        grads = jax.grad(lambda a, b, c, d: loss(a, b, c, pos_weight=d), argnums=(0, 1, 2, 3))(*args)
        expected = analytic_grads(x, y, w, p)
        # docs/contract.md §4: within a few ulp of the larger of the two terms (they may cancel; x = 25, y = 1 does)
        sig = 1 / (1 + np.exp(-x))
        scale = {
            "input": w * np.maximum(sig * (1 + (p - 1) * y), p * y),
            "target": w * np.maximum(p * softplus64(-x), softplus64(x)),
            "weight": np.abs(expected["weight"]),
            "pos_weight": np.abs(expected["pos_weight"]),
        }
        eps = np.finfo(np.float64).eps
        for name, grad in zip(("input", "target", "weight", "pos_weight"), grads):
            assert grad.dtype == jnp.float64
            error = np.abs(np.asarray(grad) - expected[name])
            assert np.all(error <= 8 * eps * scale[name]), (name, error.max())


def test_grad_at_zero_logit_is_exact():
    # dl/dx at x = 0 is w*(0.5*(1+(p-1)y) - p*y): y=0 -> 0.5, y=1 (p=1) -> -0.5, y=1 (p=3) -> -1.5.
    x = jnp.zeros(3)
    y = jnp.array([0.0, 1.0, 1.0])
    p = jnp.array([1.0, 1.0, 3.0])
    grad = jax.grad(lambda a: bce_compat.binary_cross_entropy_with_logits(a, y, reduction="sum", pos_weight=p))(x)
    np.testing.assert_array_equal(np.asarray(grad), [0.5, -0.5, -1.5])


def test_grad_broadcast_pos_weight_sums_over_rows():
    x, y, w, p = sample()
    jx, jy, jw, jp = as_jax(x, y, w, p)
    grad = jax.grad(
        lambda d: bce_compat.binary_cross_entropy_with_logits(jx, jy, jw, reduction="sum", pos_weight=d)
    )(jp)
    assert grad.shape == p.shape
    x64, y64, w64 = (np.asarray(a, np.float64) for a in (jx, jy, jw))
    np.testing.assert_allclose(np.asarray(grad), (w64 * y64 * softplus64(-x64)).sum(axis=0), rtol=1e-5)


def test_grad_of_probability_bce():
    q = np.array([0.1, 0.5, 0.9, 0.3])
    y = np.array([1.0, 0.0, 0.25, 1.0])
    with jax.enable_x64(True):
        jq, jy = as_jax(q, y, dtype="float64")
        grad = jax.grad(lambda a: bce_compat.binary_cross_entropy(a, jy, reduction="sum"))(jq)
        np.testing.assert_allclose(np.asarray(grad), -y / q + (1 - y) / (1 - q), rtol=1e-13)


# ---- transformations

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_jit_matches_eager(kind, reduction):
    x, y, w, p = sample()
    if kind == "logits":
        fn = functools.partial(bce_compat.binary_cross_entropy_with_logits, reduction=reduction)
        args = as_jax(x, y, w)
        kwargs = {"pos_weight": jnp.asarray(p, jnp.float32)}
    else:
        fn = functools.partial(bce_compat.binary_cross_entropy, reduction=reduction)
        args = as_jax(1 / (1 + np.exp(-x)), y, w)
        kwargs = {}
    eager = fn(*args, **kwargs)
    jitted = jax.jit(fn)(*args, **kwargs)
    assert isinstance(jitted, jax.Array) and jitted.shape == eager.shape
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-6)


def test_jit_of_grad():
    x, y, _, _ = sample()
    jx, jy = as_jax(x, y)
    grad_fn = jax.grad(lambda a, b: bce_compat.binary_cross_entropy_with_logits(a, b))
    np.testing.assert_allclose(np.asarray(jax.jit(grad_fn)(jx, jy)), np.asarray(grad_fn(jx, jy)), rtol=1e-6)


def test_jit_of_the_module_class():
    x, y, w, p = sample()
    jx, jy, jw, jp = as_jax(x, y, w, p)
    loss = bce_compat.BCEWithLogitsLoss(weight=jw, pos_weight=jp)
    expected = logits_reference(*(np.asarray(a, np.float64) for a in (jx, jy, jw, jp)), reduction="mean")
    np.testing.assert_allclose(float(jax.jit(loss)(jx, jy)), expected, rtol=2e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_vmap_gives_one_loss_per_row(reduction):
    x, y, w, p = sample((6, 5))
    jx, jy, jw, jp = as_jax(x, y, w, p)
    per_row = jax.vmap(
        lambda a, b, c: bce_compat.binary_cross_entropy_with_logits(a, b, c, reduction=reduction, pos_weight=jp)
    )(jx, jy, jw)
    assert per_row.shape == (6,)
    expected = [
        logits_reference(*(np.asarray(a, np.float64) for a in (jx[i], jy[i], jw[i], jp)), reduction=reduction)
        for i in range(6)
    ]
    np.testing.assert_allclose(np.asarray(per_row), expected, rtol=2e-6)


def test_vmap_of_probability_bce():
    q = jnp.asarray(RNG.uniform(0.01, 0.99, (3, 4)), jnp.float32)
    y = jnp.asarray(RNG.choice([0.0, 1.0], (3, 4)), jnp.float32)
    per_row = jax.vmap(bce_compat.binary_cross_entropy)(q, y)
    expected = [probs_reference(np.asarray(q[i], np.float64), np.asarray(y[i], np.float64), reduction="mean") for i in range(3)]
    np.testing.assert_allclose(np.asarray(per_row), expected, rtol=2e-6)


# ---- the value check: eager arrays are checked, tracers are not (it would break tracing)

def test_probabilities_outside_unit_interval_raise_eagerly():
    q, y = as_jax([0.5, 1.5], [1.0, 0.0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        bce_compat.binary_cross_entropy(q, y)
    with pytest.raises(ValueError, match="`label`"):
        paddle_dialect.binary_cross_entropy(*as_jax([0.5, 0.5], [1.0, -1.0]))


def test_value_check_is_skipped_under_jit():
    q, y = as_jax([0.5, 1.5], [1.0, 0.0])
    # no ConcretizationTypeError and no ValueError: out-of-range values go undetected under tracing
    result = jax.jit(bce_compat.binary_cross_entropy)(q, y)
    assert result.shape == () and bool(jnp.isfinite(result))
    with pytest.raises(ValueError, match="between 0 and 1"):
        bce_compat.binary_cross_entropy(q, y)  # the same call outside jit is checked


def test_shape_errors_are_raised_while_tracing():
    # shapes are static in JAX, so shape checks still run under jit
    with pytest.raises(ValueError, match=r"\[3\].*\[2\]"):
        jax.jit(bce_compat.binary_cross_entropy_with_logits)(jnp.zeros(3), jnp.zeros(2))


def test_numpy_target_beside_jax_input_is_converted_but_not_the_reverse():
    # JAX's own operations take NumPy operands (issue 11.4); the input decides the library
    result = bce_compat.binary_cross_entropy_with_logits(jnp.zeros(2), np.zeros(2))
    assert isinstance(result, jax.Array)
    with pytest.raises(TypeError, match="one library"):
        bce_compat.binary_cross_entropy_with_logits(np.zeros(2), jnp.zeros(2))


# ---- optax: same semantics without weight/pos_weight

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_optax_sigmoid_binary_cross_entropy(dtype):
    optax_ = pytest.importorskip("optax")
    x = RNG.uniform(-10, 10, (8, 16))
    y = RNG.uniform(0, 1, (8, 16))
    y[::2] = np.round(y[::2])  # hard and soft labels
    with jax.enable_x64(dtype == "float64"):
        jx, jy = as_jax(x, y, dtype=dtype)
        ours = bce_compat.binary_cross_entropy_with_logits(jx, jy, reduction="none")
        theirs = optax_.sigmoid_binary_cross_entropy(jx, jy)
        assert ours.dtype == theirs.dtype
        rtol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=rtol, atol=1e-6 if dtype == "float32" else 1e-14)
        mean_ours = bce_compat.binary_cross_entropy_with_logits(jx, jy)
        np.testing.assert_allclose(float(mean_ours), float(jnp.mean(theirs)), rtol=rtol)
