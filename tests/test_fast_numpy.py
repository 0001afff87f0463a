"""The NumPy engine (backends/numpy_fast.py) and the CPU pass under it, against the exact loss and the
portable path (docs/contract.md §3-4)."""

from __future__ import annotations

import math

import array_api_compat.numpy as xp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import _cpu_pass_calls as calls
import bce_compat
from _reference import EDGE_P, EDGE_W, EDGE_X, EDGE_Y, assert_close, exact_logits_grad, exact_logits_loss, reduce_exact
from bce_compat import _math
from bce_compat._registry import load_backend
from bce_compat.backends import cpu_pass, numpy_fast

# the edge values of _reference.py (columns: (y, pos_weight, weight)), under short names
X, Y, P, W = EDGE_X, EDGE_Y, EDGE_P, EDGE_W


def edge_grid(dtype):
    with np.errstate(over="ignore"):  # 1e30 is inf in float16
        x = np.repeat(np.asarray(X, dtype)[:, None], 3, axis=1)
    y = np.broadcast_to(np.asarray(Y, dtype), x.shape).copy()
    return x, y, np.asarray(W, dtype), np.asarray(P, dtype)


def portable(x, y, w, p, reduction="none"):
    """The portable array-API path in float64 (the semantics the fast path must reproduce)."""
    as64 = [None if a is None or isinstance(a, float) else np.asarray(a, np.float64) for a in (x, y, w, p)]
    as64 = [a if a is not None else v for a, v in zip(as64, (x, y, w, p))]
    return _math.reduce(xp, _math.bce_with_logits(xp, *as64), reduction)


def test_registered_for_numpy():
    assert load_backend("numpy").engines == (numpy_fast.ENGINE,)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_edge_values_match_exact(dtype, reduction):
    x, y, w, p = edge_grid(dtype)
    got = calls.loss(x, y, w, p, reduction, np.dtype(dtype))
    exact = reduce_exact(exact_logits_loss(x, y, w, p), reduction)
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype)
    assert got.shape == (x.shape if reduction == "none" else ())
    assert_close(got, exact, dtype, ulps=1 if dtype == "float16" else 4, size=1 if reduction == "none" else x.size)


def test_zero_coefficient_and_nan():
    x = np.array([math.inf, math.inf, -math.inf, -math.inf, math.nan, math.nan, 0.0], np.float32)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, math.nan], np.float32)
    got = calls.loss(x, y, None, None, "none", np.dtype(np.float32))
    np.testing.assert_array_equal(got, [0.0, math.inf, 0.0, math.inf, math.nan, math.nan, math.nan])
    assert math.isnan(calls.loss(x, y, None, None, "mean", np.dtype(np.float32)))


def test_no_cancellation_at_minus_20():
    got = bce_compat.binary_cross_entropy_with_logits(np.float32([-20.0]), np.float32([0.0]), reduction="none")
    assert got[0] == np.float32(2.0611537e-09)


def test_empty_mean_is_nan_and_sum_is_zero():
    x = np.zeros((0, 3), np.float32)
    mean = calls.loss(x, x, None, None, "mean", np.dtype(np.float32))
    total = calls.loss(x, x, None, None, "sum", np.dtype(np.float32))
    assert mean.shape == () and mean.dtype == np.float32 and math.isnan(mean)
    assert total.shape == () and total == 0
    assert calls.loss(x, x, None, None, "none", np.dtype(np.float32)).shape == (0, 3)


@pytest.mark.parametrize(
    "shape, w_shape, p_shape",
    [
        ((5000, 37), (37,), (5000, 1)),  # rows per chunk, pos_weight along the last axis
        ((3, 70001), (3, 1), (70001,)),  # one long axis: chunks cut inside a row
        (((1 << 18) + 3,), None, None),  # over PARALLEL_MIN: the thread pool
        ((4, 3, 50, 50), (3, 1, 1), (3, 1, 1)),  # images, [C, 1, 1]
    ],
)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_chunked_and_threaded_match_portable(shape, w_shape, p_shape, reduction):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 8).astype(np.float32)
    y = rng.random(shape).astype(np.float32)
    y[..., ::3] = 0.0
    y[..., 1::3] = 1.0
    w = None if w_shape is None else rng.random(w_shape).astype(np.float32)
    p = 3.0 if p_shape is None else (rng.random(p_shape) * 2).astype(np.float32)
    before = [a.copy() for a in (x, y, w, p) if isinstance(a, np.ndarray)]
    got = calls.loss(x, y, w, p, reduction, np.dtype(np.float32))
    expected = portable(x, y, w, p, reduction)
    assert_close(got, expected, "float32", ulps=2, size=1 if reduction == "none" else x.size)
    for old, new in zip(before, (a for a in (x, y, w, p) if isinstance(a, np.ndarray))):
        np.testing.assert_array_equal(old, new)  # inputs never modified


def test_non_contiguous_and_mixed_dtypes():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, 300)) * 5).astype(np.float32).T  # transposed view
    y = rng.random((64, 300)).astype(np.float64).T
    got = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=np.float16(2.0), reduction="none")
    assert got.dtype == np.float64 and got.shape == x.shape
    assert_close(got, portable(x, y, None, 2.0), "float64", ulps=4)


@pytest.mark.parametrize("argument", ["input", "target", "weight", "pos_weight"])
def test_a_structured_arrays_field_is_a_value_like_any_other(argument):
    """A field of a packed structured array (strides of 5 bytes over float32) is a valid array,
    but not one of whole elements: the pass refuses such strides, so the engine declines it and
    the portable path computes. It raised the pass's "strides that are not whole elements"."""
    rng = np.random.default_rng(3)
    values = {"input": rng.standard_normal(6) * 4, "target": rng.random(6), "weight": rng.random(6) + 0.5,
              "pos_weight": rng.random(6) * 3}
    arrays = {name: v.astype(np.float32) for name, v in values.items()}
    expected = bce_compat.binary_cross_entropy_with_logits(
        arrays["input"], arrays["target"], arrays["weight"], reduction="none", pos_weight=arrays["pos_weight"])
    record = np.zeros(6, dtype=[("value", np.float32), ("flag", np.uint8)])
    record["value"] = arrays[argument]
    arrays[argument] = record["value"]
    assert arrays[argument].strides == (5,)
    got = bce_compat.binary_cross_entropy_with_logits(
        arrays["input"], arrays["target"], arrays["weight"], reduction="none", pos_weight=arrays["pos_weight"])
    assert got.dtype == np.float32 and got.shape == (6,)
    assert_close(got, np.asarray(expected, np.float64), "float32", ulps=4)


def test_public_call_uses_the_pass(monkeypatch):
    seen = []
    original = cpu_pass.run

    def spy(*args, **kwargs):
        seen.append(kwargs["reduction"])
        return original(*args, **kwargs)

    monkeypatch.setattr(cpu_pass, "run", spy)
    x = np.float32([0.0, 1.0])
    assert float(bce_compat.binary_cross_entropy_with_logits(x, x)) == pytest.approx(0.5032, abs=1e-4)
    assert seen == ["mean"]


def test_grad_kernel_matches_exact():
    x, y, w, p = edge_grid("float64")
    got = calls.grad(x, y, w, p, 1.0, np.float64)
    expected, bound = exact_logits_grad(x, y, w, p)
    assert_close(got, expected, "float64", ulps=4, bound=bound)


_floats = st.floats(min_value=-1.0000000150474662e30, max_value=1.0000000150474662e30, width=32)


@settings(max_examples=60, deadline=None)
@given(
    xs=st.lists(_floats, min_size=1, max_size=20),
    y=st.sampled_from([0.0, 1.0, 0.5, 0.1]),
    p=st.floats(min_value=0.0, max_value=10.0, width=32),
)
def test_property_matches_exact(xs, y, p):
    x = np.asarray(xs, np.float32)
    yy = np.full_like(x, y)
    got = calls.loss(x, yy, None, np.float32(p), "none", np.dtype(np.float32))
    assert_close(got, exact_logits_loss(x, yy, None, p), "float32", ulps=4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_chunk_and_many_chunks_give_the_same_bits(dtype):
    """One chunk (the ufuncs broadcast) and the same values tiled over many chunks and threads."""
    x, y, w, p = edge_grid(dtype)
    x = np.concatenate([x, np.full((1, 3), np.nan, dtype)])
    y = np.concatenate([y, y[:1]])
    small = calls.loss(x, y, w, p, "none", np.dtype(dtype))
    reps = cpu_pass.PARALLEL_MIN // x.size + 2
    big = calls.loss(np.tile(x, (reps, 1)), np.tile(y, (reps, 1)), w, p, "none", np.dtype(dtype))
    assert x.size <= cpu_pass.BLOCK and big.size > cpu_pass.PARALLEL_MIN
    np.testing.assert_array_equal(big, np.tile(small, (reps, 1)))


def test_docstring_examples_run():
    import doctest

    failures, tried = doctest.testmod(numpy_fast, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


# --- the public API on every layout; same bits with and without the gradient (issue 12.1-2) -----

_BASE = (np.random.default_rng(5).standard_normal((40, 30)) * 4).astype(np.float32)
_TARGET = np.random.default_rng(6).random((40, 30)).astype(np.float32)
LAYOUTS = {
    "0-d": (_BASE[0, 0], _TARGET[0, 0]),
    "0-d array": (np.asarray(_BASE[0, 0]), np.asarray(_TARGET[0, 0])),
    "one": (_BASE[:1, :1], _TARGET[:1, :1]),
    "empty": (_BASE[:0], _TARGET[:0]),
    "transposed": (_BASE.T, _TARGET.T),
    "strided": (_BASE[::3, 1::2], _TARGET[::3, 1::2]),
    "broadcast": (np.broadcast_to(_BASE[:1], (40, 30)), _TARGET),
    "many chunks": (np.tile(_BASE, (60, 1))[:, ::2], np.tile(_TARGET, (60, 1))[:, ::2]),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layouts_match_portable_and_grad_out_keeps_the_bits(layout, reduction, dtype):
    x, y = (np.asarray(a).astype(dtype) if layout != "broadcast" else np.broadcast_to(np.asarray(a, dtype), (40, 30))
            for a in LAYOUTS[layout])
    w = np.asarray(0.5, dtype) if x.ndim == 0 else np.linspace(0.5, 2.0, x.shape[-1], dtype=dtype)
    plain = calls.loss(x, y, w, 2.0, reduction, dtype)
    assert isinstance(plain, np.ndarray) and plain.dtype == np.dtype(dtype)
    assert plain.shape == (np.shape(x) if reduction == "none" else ())
    assert_close(plain, portable(x, y, w, 2.0, reduction), dtype, ulps=4, size=max(1, x.size) if reduction != "none" else 1)
    grad_out = np.empty(np.shape(x), dtype)
    with_grad = calls.loss(x, y, w, 2.0, reduction, dtype, grad_out=grad_out)
    np.testing.assert_array_equal(with_grad, plain)
    np.testing.assert_array_equal(calls.loss(x, y, w, 2.0, reduction, dtype), plain)  # run to run
    if x.size:
        upstream = 1.0 / x.size if reduction == "mean" else 1.0
        expected, bound = exact_logits_grad(np.asarray(x, np.float64), np.asarray(y, np.float64), w, 2.0)
        assert_close(grad_out, expected * upstream, dtype, ulps=4, bound=bound * upstream)
        assert_close(calls.grad(x, y, w, 2.0, upstream, dtype), expected * upstream, dtype, ulps=4, bound=bound * upstream)


def test_public_call_on_0d_arrays():
    """Issue 12.1: 0-d NumPy arrays (np.copysign returned a scalar there) give 0-d arrays."""
    for reduction in ("none", "mean", "sum"):
        got = bce_compat.binary_cross_entropy_with_logits(np.array(1.5, np.float32), np.array(0.0, np.float32), reduction=reduction)
        assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float32
        assert got == np.float32(math.log1p(math.exp(1.5)))


def test_grad_with_an_upstream_array():
    x = np.array([[-20.0, 0.0, 3.0]], np.float32)
    y = np.array([[0.0, 1.0, 0.5]], np.float32)
    upstream = np.array([[1.0], [-2.0]], np.float32)  # broadcast against x: the result has x's shape
    got = calls.grad(np.broadcast_to(x, (2, 3)), y, None, 3.0, upstream, np.float32)
    expected, _ = exact_logits_grad(np.broadcast_to(x, (2, 3)).astype(np.float64), np.broadcast_to(y, (2, 3)).astype(np.float64), None, 3.0)
    np.testing.assert_allclose(got, expected * upstream, rtol=2e-7)
