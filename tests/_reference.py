"""The exact loss and gradient (mpmath, 60 digits) at the given rounded inputs, and a strict comparer.

The precision is set in a local mpmath context (``workdps``) for each evaluation, never globally:
another module (the conformance reference) may use mpmath with its own precision in the same run.

>>> float(exact_logits_loss(np.array([0.0]), np.array([1.0]))[0])
0.6931471805599453
"""

from __future__ import annotations

import functools
import itertools
import math

import mpmath
import numpy as np

from bce_compat._registry import backend_for_type
from bce_compat.backends._float_dtypes import dtype_name

DIGITS = 60
_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
_SMALLEST_NORMAL = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}
FLUSHES_SUBNORMALS = ("jax", "tensorflow")  # XLA and TF's Eigen kernels flush subnormal results to 0
_TINY = {"float16": 2.0**-24, "bfloat16": 2.0**-133, "float32": 2.0**-149, "float64": 2.0**-1074}


# docs/contract.md edge values for the fast paths' tests; columns are (y, pos_weight, weight) =
# (0, 2, 0.5), (0.3, 0.5, 1), (1, 0, 2): the last has both coefficients 0, so even x = -inf gives 0.
EDGE_X = [-math.inf, -1e30, -100.0, -20.0, -3.46522, -1e-4, 0.0, 1e-4, 1.5, 20.0, 100.0, 1e30, math.inf]
EDGE_Y, EDGE_P, EDGE_W = [0.0, 0.3, 1.0], [2.0, 0.5, 0.0], [0.5, 1.0, 2.0]


def edge_grid_values() -> tuple:
    """(x [13, 3], y [13, 3], weight [3], pos_weight [3]) in float64: the edge grid before each
    test converts it to its framework's arrays."""
    x = np.repeat(np.asarray(EDGE_X)[:, None], 3, axis=1)
    return x, np.broadcast_to(np.asarray(EDGE_Y), x.shape), np.asarray(EDGE_W), np.asarray(EDGE_P)


def _exact(fn):
    """Run ``fn`` with mpmath at ``DIGITS`` significant digits, in a local context."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpmath.workdps(DIGITS):
            return fn(*args, **kwargs)

    return wrapper


def _softplus(v):
    if mpmath.isinf(v):
        return mpmath.mpf(0) if v < 0 else mpmath.inf
    return v + mpmath.log1p(mpmath.exp(-v)) if v > 0 else mpmath.log1p(mpmath.exp(v))


def _times(coefficient, term):
    return mpmath.mpf(0) if coefficient == 0 else coefficient * term


def _broadcast(shape, *arrays):
    return [np.broadcast_to(np.asarray(1.0 if a is None else a, dtype=np.float64), shape) for a in arrays]


@_exact
def exact_logits_loss(x, y, weight=None, pos_weight=None) -> np.ndarray:
    """Unreduced w*[p*y*softplus(-x) + (1-y)*softplus(x)], exact, rounded once to float64."""
    x = np.asarray(x, dtype=np.float64)
    y, w, p = _broadcast(x.shape, y, weight, pos_weight)
    out = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        if any(math.isnan(v[i]) for v in (x, y, w, p)):
            out[i] = math.nan
            continue
        xi, yi, wi, pi = (mpmath.mpf(float(v[i])) for v in (x, y, w, p))
        out[i] = float(wi * (_times(pi * yi, _softplus(-xi)) + _times(1 - yi, _softplus(xi))))
    return out


@_exact
def logits_loss_ulps(actual, x, y, weight=None, pos_weight=None, dtype: str = "float64") -> np.ndarray:
    """Per element, |actual - exact| in ulps of ``dtype`` at the exact value (which is not rounded
    first: a float64 reference rounded to float64 would blur a float64 result by half an ulp).

    >>> float(logits_loss_ulps(np.array([np.log(2.0)]), np.array([0.0]), np.array([1.0]))[0]) < 0.5
    True
    """
    actual = np.asarray(actual, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y, w, p = _broadcast(x.shape, y, weight, pos_weight)
    info = np.finfo(dtype)
    out = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        if any(math.isnan(v[i]) for v in (x, y, w, p)):
            out[i] = 0.0 if math.isnan(actual[i]) else math.inf
            continue
        xi, yi, wi, pi = (mpmath.mpf(float(v[i])) for v in (x, y, w, p))
        exact = wi * (_times(pi * yi, _softplus(-xi)) + _times(1 - yi, _softplus(xi)))
        if mpmath.isinf(exact) or math.isinf(actual[i]):
            out[i] = 0.0 if exact == actual[i] else math.inf
            continue
        magnitude = abs(exact)
        ulp = mpmath.mpf(2) ** (mpmath.floor(mpmath.log(magnitude, 2)) - info.nmant) if magnitude >= info.tiny \
            else mpmath.mpf(_TINY[dtype])
        out[i] = float(abs(mpmath.mpf(float(actual[i])) - exact) / ulp)
    return out


@_exact
def flushable_logits_terms(x, y, weight=None, pos_weight=None, dtype: str = "float32") -> np.ndarray:
    """Per element, the exact size of the loss terms a flush-to-zero kernel (TF, XLA) may drop.

    A term of ``w*[p*y*softplus(-x) + (1-y)*softplus(x)]`` is dropped when any product of its
    factors is a nonzero subnormal of ``dtype``: not only a subnormal result, but also an
    intermediate such as ``p*y`` (y = 2**-126, p = 0.5 in float32 gives 2**-127, flushed to 0,
    and the whole positive term with it, however large softplus(-x) is). The order in which a
    kernel multiplies is its own, so every sub-product counts.

    >>> flushable_logits_terms(np.array([-100.0]), np.array([2.0**-126]), pos_weight=np.array([0.5])) > 0
    array([ True])
    >>> flushable_logits_terms(np.array([-100.0]), np.array([0.5]), pos_weight=np.array([0.5]))
    array([0.])
    """
    x = np.asarray(x, dtype=np.float64)
    y, w, p = _broadcast(x.shape, y, weight, pos_weight)
    smallest_normal = mpmath.mpf(_SMALLEST_NORMAL[dtype])
    out = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        if any(math.isnan(v[i]) for v in (x, y, w, p)):
            continue
        xi, yi, wi, pi = (mpmath.mpf(float(v[i])) for v in (x, y, w, p))
        for factors in ((wi, pi, yi, _softplus(-xi)), (wi, 1 - yi, _softplus(xi))):
            if _has_subnormal_product(factors, smallest_normal):
                out[i] += float(abs(functools.reduce(lambda a, b: a * b, factors)))
    return out


def _has_subnormal_product(factors, smallest_normal) -> bool:
    if any(mpmath.isinf(f) for f in factors):
        return False
    for n in range(1, len(factors) + 1):
        for subset in itertools.combinations(factors, n):
            product = abs(functools.reduce(lambda a, b: a * b, subset))
            if 0 < product < smallest_normal:
                return True
    return False


@_exact
def exact_probs_loss(q, y, weight=None) -> np.ndarray:
    """Unreduced -w*[y*max(log q, -100) + (1-y)*max(log(1-q), -100)], exact, rounded to float64."""
    q = np.asarray(q, dtype=np.float64)
    y, w = _broadcast(q.shape, y, weight)

    def clamped_log(v):
        return mpmath.mpf(-100) if v <= 0 else max(mpmath.log(v), mpmath.mpf(-100))

    out = np.empty(q.shape)
    for i in np.ndindex(q.shape):
        if any(math.isnan(v[i]) for v in (q, y, w)):
            out[i] = math.nan
            continue
        qi, yi, wi = (mpmath.mpf(float(v[i])) for v in (q, y, w))
        out[i] = float(-wi * (yi * clamped_log(qi) + (1 - yi) * clamped_log(1 - qi)))
    return out


@_exact
def exact_logits_grad(x, y, weight=None, pos_weight=None):
    """(dl/dx, bound) with dl/dx = w*[sigmoid(x)*(1+(p-1)y) - p*y] and bound = w*max of its two terms."""
    x = np.asarray(x, dtype=np.float64)
    y, w, p = _broadcast(x.shape, y, weight, pos_weight)
    grad, bound = np.empty(x.shape), np.empty(x.shape)
    for i in np.ndindex(x.shape):
        xi, yi, wi, pi = (mpmath.mpf(float(v[i])) for v in (x, y, w, p))
        first = mpmath.mpf(1) / (1 + mpmath.exp(-xi)) * (1 + (pi - 1) * yi)
        grad[i] = float(wi * (first - pi * yi))
        bound[i] = float(abs(wi) * max(abs(first), abs(pi * yi)))
    return grad, bound


@_exact
def exact_probs_grad(q, y, weight=None):
    """dl/dq = w*[(1-y)/(1-q) - y/q] (inside the clamp; the tests keep q away from it)."""
    q = np.asarray(q, dtype=np.float64)
    y, w = _broadcast(q.shape, y, weight)
    grad = np.empty(q.shape)
    for i in np.ndindex(q.shape):
        qi, yi, wi = (mpmath.mpf(float(v[i])) for v in (q, y, w))
        grad[i] = float(wi * ((1 - yi) / (1 - qi) - yi / qi))
    return grad


def rounded_once(value: float, name: str) -> float:
    """``value`` rounded once (nearest-even) to ``name``'s format, independently of the code under
    test. NumPy converts a double to float16 and float32 directly; for bfloat16 the double goes to
    float32 rounded to odd, which keeps what the second rounding needs, and then to bfloat16 by
    ml_dtypes (whose own double -> bfloat16 rounds through float32 to nearest: twice).

    >>> rounded_once(1.0 + 2.0**-8 + 2.0**-30, "bfloat16")
    1.0078125
    """
    if name == "float64" or not math.isfinite(value):
        return value
    with np.errstate(over="ignore"):
        if name != "bfloat16":
            return float(np.asarray(value).astype(name))
        import ml_dtypes

        f = np.asarray(value).astype(np.float32)
        if np.isfinite(f) and float(f) != value:
            if abs(float(f)) > abs(value):  # round to odd: toward zero, then the last bit set
                f = np.nextafter(f, np.float32(0))
            f = (np.asarray(f, np.float32).view(np.uint32) | np.uint32(1)).view(np.float32)
        return float(np.asarray(f).astype(ml_dtypes.bfloat16))


def reduce_exact(loss: np.ndarray, reduction: str):
    """The exact mean/sum of already-exact elements (math.fsum), as a 0-d float64 array."""
    if reduction == "none":
        return loss
    total = math.fsum(loss.ravel().tolist())
    return np.asarray(total if reduction == "sum" else (total / loss.size if loss.size else math.nan))


def ulp_tolerance(dtype: str, ulps: float, size: int = 1) -> float:
    """Relative tolerance: ``ulps`` ulps, plus log2(size) more for a pairwise sum."""
    return (ulps + math.ceil(math.log2(max(size, 1)))) * _EPS[dtype]


def assert_result(
    result, like, framework, dtype: str, shape: tuple, expected: np.ndarray, ulps: float = 4, bound=None, size=1,
    flushable=None,
):
    """Library, dtype, shape and device first, then values within ``ulps`` of ``expected`` (or of ``bound``).

    ``flushable`` (from ``flushable_logits_terms``, reduced like ``expected``) is the extra error
    allowed on backends that flush subnormals, and only there.
    """
    got_backend = backend_for_type(type(result))
    want_backend = backend_for_type(type(like))
    assert got_backend is not None and got_backend.name == want_backend.name, f"result is a {type(result)}, input a {type(like)}"
    assert dtype_name(result.dtype) == dtype, f"dtype {result.dtype}, expected {dtype}"
    assert tuple(result.shape) == tuple(shape), f"shape {tuple(result.shape)}, expected {tuple(shape)}"
    if hasattr(like, "device") and hasattr(result, "device") and framework.name == "torch":
        assert result.device == like.device
    assert_close(
        framework.to_numpy(result), expected, dtype, ulps, bound=bound, size=size,
        flush_subnormals=framework.name in FLUSHES_SUBNORMALS, flushable=flushable,
    )


def skip_unless_dtype(framework, dtype: str) -> None:
    import pytest

    if dtype not in framework.dtypes:
        pytest.skip(f"{framework.name} has no {dtype} here")


def assert_close(
    actual, expected, dtype: str, ulps: float = 4, bound=None, size=1, flush_subnormals=False, flushable=None
):
    """|actual - expected| <= tol * |bound or expected| (+ ulps subnormal ulps); inf and NaN exact.

    With ``flush_subnormals`` (TF, XLA), a subnormal expected value may come out as 0, and the
    terms in ``flushable`` (their exact size, see ``flushable_logits_terms``) may be missing.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.abs(expected if bound is None else np.asarray(bound, dtype=np.float64))
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    nan_mismatch = np.isnan(actual) != np.isnan(expected)
    assert not nan_mismatch.any(), f"NaN where not expected (or missing): {actual[nan_mismatch]} vs {expected[nan_mismatch]}"
    finite = np.isfinite(expected)
    inf_mismatch = ~finite & ~np.isnan(expected) & (actual != expected)
    assert not inf_mismatch.any(), f"infinite values differ: {actual[inf_mismatch]} vs {expected[inf_mismatch]}"
    with np.errstate(invalid="ignore"):
        error = np.where(finite, np.abs(actual - expected), 0.0)
    allowed = ulp_tolerance(dtype, ulps, size) * np.where(finite, scale, 0.0) + ulps * _TINY[dtype]  # subnormal ulps
    if flush_subnormals and flushable is not None:
        allowed = allowed + (1 + ulp_tolerance(dtype, ulps, size)) * np.asarray(flushable, dtype=np.float64)
    if flush_subnormals:
        allowed = np.where((actual == 0) & (np.abs(expected) < _SMALLEST_NORMAL[dtype]), np.inf, allowed)
    worst = np.unravel_index(np.argmax(error - allowed), error.shape) if error.size else None
    assert (error <= allowed).all(), (
        f"{dtype}: max error {error[worst]:.3g} > allowed {allowed[worst]:.3g} at {worst}: "
        f"got {actual[worst]!r}, exact {expected[worst]!r}"
    )
