"""Exact (mpmath, 60 digits) values and gradients for the options: label smoothing, ignore_index, focal.

Each element is evaluated at the given rounded inputs and rounded once to float64; ε, alpha and
gamma are the Python floats the user passed.

>>> float(exact_focal([0.0], [1.0])[0][0])
0.04332169878499658
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

mpmath.mp.dps = 60


def _mp(v):
    return mpmath.mpf(float(v))


def _softplus(v):
    if mpmath.isinf(v):
        return mpmath.mpf(0) if v < 0 else mpmath.inf
    return v + mpmath.log1p(mpmath.exp(-v)) if v > 0 else mpmath.log1p(mpmath.exp(v))


def _sigmoid(v):
    if mpmath.isinf(v):
        return mpmath.mpf(1) if v > 0 else mpmath.mpf(0)
    return 1 / (1 + mpmath.exp(-v))


def _times(c, term):
    return mpmath.mpf(0) if c == 0 else c * term


def _smoothed(y, eps):
    keep, shift = 1 - _mp(eps), _mp(eps) / 2
    return y * keep + shift, (1 - y) * keep + shift


def _elementwise(fn, x, y, *extra):
    x = np.asarray(x, dtype=np.float64)
    y = np.broadcast_to(np.asarray(y, dtype=np.float64), x.shape)
    outs = None
    for i in np.ndindex(x.shape):
        if math.isnan(x[i]) or math.isnan(y[i]):
            values = (math.nan,) * (len(outs) if outs else 3)
        else:
            values = fn(_mp(x[i]), _mp(y[i]), *extra)
        if outs is None:
            outs = [np.empty(x.shape) for _ in values]
        for out, v in zip(outs, values):
            out[i] = float(v)
    return outs or [np.empty(x.shape)] * 3


def _logits_terms(x, y, eps):
    """(loss, dloss/dx, bound) of y_s*softplus(-x) + y_n*softplus(x), smoothed with eps."""
    ys, yn = _smoothed(y, eps)
    loss = _times(ys, _softplus(-x)) + _times(yn, _softplus(x))
    pos, neg = ys * _sigmoid(-x), yn * _sigmoid(x)
    return loss, neg - pos, max(abs(pos), abs(neg))


def exact_smoothed_logits(x, y, eps=0.0):
    """(loss, grad wrt x, grad bound): BCE with logits on the Keras-smoothed target."""
    return _elementwise(_logits_terms, x, y, eps)


def _clamped_neg_log(v):
    return mpmath.mpf(100) if v <= 0 else min(-mpmath.log(v), mpmath.mpf(100))


def _probs_terms(q, y, eps):
    ys, yn = _smoothed(y, eps)
    loss = ys * _clamped_neg_log(q) + yn * _clamped_neg_log(1 - q)
    grad = yn / (1 - q) - ys / q if 0 < q < 1 else mpmath.nan
    return loss, grad, abs(grad)


def exact_smoothed_probs(q, y, eps=0.0):
    """(loss, grad wrt q (inside the clamp), bound): BCE on probabilities with the smoothed target."""
    return _elementwise(_probs_terms, q, y, eps)


def _focal_terms(x, y, alpha, gamma):
    ce = _times(y, _softplus(-x)) + _times(1 - y, _softplus(x))
    sp, sn = _sigmoid(x), _sigmoid(-x)
    m = (1 - y) * sp + y * sn
    mod = mpmath.mpf(1) if gamma == 0 else m ** _mp(gamma)
    weight = alpha * y + (1 - alpha) * (1 - y) if alpha >= 0 else mpmath.mpf(1)
    loss = _times(weight, mpmath.mpf(0) if mod == 0 else ce * mod)
    if mpmath.isinf(x):
        return loss, mpmath.nan, mpmath.nan
    # d ce/dx = (1-y)*sigmoid(x) - y*sigmoid(-x): two terms that cancel near sigmoid(x) = y (docs/contract.md §4 bound)
    dce_terms = ((1 - y) * sp, y * sn)
    dmod = mpmath.mpf(0) if gamma == 0 else _mp(gamma) * m ** (_mp(gamma) - 1) * (1 - 2 * y) * sp * sn
    first, second = (dce_terms[0] - dce_terms[1]) * mod, ce * dmod
    bound = (abs(dce_terms[0]) + abs(dce_terms[1])) * mod + abs(second)
    return loss, weight * (first + second), abs(weight) * bound


def exact_focal(x, y, alpha=0.25, gamma=2.0):
    """(loss, grad wrt x, bound): torchvision's focal loss alpha_t * ce * (1 - p_t)**gamma."""
    return _elementwise(_focal_terms, x, y, _mp(alpha), gamma)


def masked_mean(loss: np.ndarray, kept: np.ndarray):
    """sum(loss[kept]) / count(kept), exactly (fsum); NaN when nothing is kept."""
    count = int(kept.sum())
    return np.asarray(math.fsum(loss[kept].tolist()) / count if count else math.nan)
