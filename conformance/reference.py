"""The exact answer a case expects: the documents' formulas evaluated in mpmath (50 digits).

Never computed by the shim under test. Inputs are the values the backends see (already rounded
to the case's dtype); the result is the exact value of the formula at those inputs, its gradient
(of the summed output) with respect to each array argument, and the scale each tolerance is
relative to (the magnitude of the terms that may cancel, docs/contract.md). The precision is
set for each evaluation in a local mpmath context (``workdps``), never globally, so no other
user of mpmath in the same process is affected.

>>> import numpy as np
>>> r = exact_logits(np.array([1.5]), np.array([1.0]), None, None, "mean")
>>> round(float(r.value), 6)
0.201413
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath as mp
import numpy as np

DIGITS = 50
CLAMP = -100  # torch and Paddle clamp log(q) and log(1-q) at -100 (docs/contract.md)


@dataclass
class Exact:
    value: np.ndarray  # float64, the reduced (or unreduced) loss
    scale: np.ndarray  # float64, magnitude the value's tolerance is relative to
    grads: dict  # argument name -> (exact gradient, its scale), shaped like the argument
    n_summed: int  # how many elements a reduction adds (for the summation allowance)


def _softplus(x):
    return mp.log1p(mp.exp(x)) if x < 30 else x + mp.log1p(mp.exp(-x))


def _sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def _mul(coef, term):
    """coef * term, with 0 * inf = 0 (a term whose coefficient is exactly 0 contributes 0)."""
    return mp.mpf(0) if coef == 0 else coef * term


def _mpf(v):
    return mp.mpf(float(v)) if math.isfinite(v) else (mp.inf if v > 0 else (-mp.inf if v < 0 else mp.nan))


_PADDLE_FORMULAS = {
    # Out = Logit - Logit * Labels + log(1 + e^{-Logit})
    "paddle": lambda x, y: x - x * y + mp.log(1 + mp.exp(-x)),
    # Out = max(Logit, 0) - Logit * Labels + log(1 + e^{-|Logit|})
    "paddle_stable": lambda x, y: max(x, 0) - x * y + mp.log(1 + mp.exp(-abs(x))),
}


def _logits_element(x, y, w, p, formula="torch"):
    """(loss, scale, dloss/dx, scale, d/dy, scale, d/dw, scale, d/dp, scale) at one element."""
    x, y, w, p = map(_mpf, (x, y, w, p))
    if any(mp.isnan(v) for v in (x, y, w, p)):
        return (mp.nan,) * 10
    sp_neg, sp_pos = _softplus(-x), _softplus(x)
    pos_term = _mul(p * y, sp_neg)
    neg_term = _mul(1 - y, sp_pos)
    loss = _mul(w, pos_term + neg_term)
    if formula != "torch":  # seed 004's two forms (no pos_weight there); exact in mpmath for finite x
        if p != 1 or mp.isinf(x):
            raise ValueError(f"formula {formula!r} is stated for finite logits without pos_weight")
        alt = _PADDLE_FORMULAS[formula](x, y)
        loss = _mul(w, alt)
    scale = abs(w) * (abs(pos_term) + abs(neg_term))
    s = _sigmoid(x)
    gx_a, gx_b = _mul(w, s * (1 + (p - 1) * y)), _mul(w, p * y)
    gx = gx_a - gx_b
    gy_a, gy_b = _mul(w * p, sp_neg), _mul(w, sp_pos)
    gy = gy_a - gy_b
    gw = pos_term + neg_term
    gp = _mul(w * y, sp_neg)
    return (
        loss, scale, gx, abs(gx_a) + abs(gx_b), gy, abs(gy_a) + abs(gy_b),
        gw, abs(pos_term) + abs(neg_term), gp, abs(gp),
    )


def _log_clamped(v):
    """(max(log v, -100), derivative) with log 0 = -inf clamped to -100."""
    if v <= 0:
        return mp.mpf(CLAMP), mp.mpf(0)
    lv = mp.log(v)
    return (mp.mpf(CLAMP), mp.mpf(0)) if lv < CLAMP else (lv, 1 / v)


def _probs_element(q, y, w, _p=None, formula="torch"):
    q, y, w = map(_mpf, (q, y, w))
    if any(mp.isnan(v) for v in (q, y, w)):
        return (mp.nan,) * 10
    log_q, dlog_q = _log_clamped(q)
    log_1mq, dlog_1mq = _log_clamped(1 - q)
    a, b = _mul(y, log_q), _mul(1 - y, log_1mq)
    loss = -w * (a + b)
    ga, gb = _mul(y, dlog_q), _mul(1 - y, dlog_1mq)
    gq = -w * (ga - gb)
    gy = -w * (log_q - log_1mq)
    gw = -(a + b)
    return (
        loss, abs(w) * (abs(a) + abs(b)), gq, abs(w) * (abs(ga) + abs(gb)),
        gy, abs(w) * (abs(log_q) + abs(log_1mq)), gw, abs(a) + abs(b), mp.mpf(0), mp.mpf(0),
    )


def exact(logits: bool, x, y, weight, pos_weight, reduction: str, formula: str = "torch") -> Exact:
    """The exact loss and gradients; ``weight``/``pos_weight`` are arrays, numbers or None."""
    with mp.workdps(DIGITS):
        return _exact(logits, x, y, weight, pos_weight, reduction, formula)


def _exact(logits: bool, x, y, weight, pos_weight, reduction: str, formula: str) -> Exact:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.asarray(1.0 if weight is None else weight, np.float64)
    p = np.asarray(1.0 if pos_weight is None else pos_weight, np.float64)
    shape = np.broadcast_shapes(x.shape, y.shape, w.shape, p.shape)
    bx, by, bw, bp = (np.broadcast_to(a, shape) for a in (x, y, w, p))
    element = _logits_element if logits else _probs_element
    out = np.empty((10,) + shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[(slice(None),) + idx] = element(bx[idx], by[idx], bw[idx], bp[idx], formula)
    n = int(np.prod(shape))
    factor = mp.mpf(1) / n if (reduction == "mean" and n) else mp.mpf(1)

    def to_float(a):
        # a plain loop, not np.vectorize: a NaN result (NaN in, NaN out) would raise numpy's
        # "invalid value encountered" RuntimeWarning there
        return np.array([float(v) for v in a.ravel()], np.float64).reshape(a.shape)

    def reduce_to(a, target_shape):
        """Sum a broadcast gradient back to an argument's shape (exactly, in mpmath)."""
        a = a * factor if reduction != "none" else a
        lead = a.ndim - len(target_shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(target_shape) if d == 1 and a.shape[lead + i] != 1)
        for axis in sorted(axes, reverse=True):
            a = np.apply_along_axis(lambda v: mp.fsum(v), axis, a) if a.shape[axis] else np.zeros(a.shape[:axis] + a.shape[axis + 1:], object)
        return to_float(a.reshape(target_shape))

    loss, loss_scale = out[0], out[1]
    if reduction == "none":
        value, scale = to_float(loss), to_float(loss_scale)
    else:
        total = mp.fsum(loss.ravel()) if n else mp.mpf(0)
        total_scale = mp.fsum(loss_scale.ravel()) if n else mp.mpf(0)
        if reduction == "mean":
            value = np.float64(float(total / n)) if n else np.float64("nan")
            scale = np.float64(float(total_scale / n)) if n else np.float64(0.0)
        else:
            value, scale = np.float64(float(total)), np.float64(float(total_scale))
    grads = {
        "input": (reduce_to(out[2], x.shape), reduce_to(out[3], x.shape)),
        "target": (reduce_to(out[4], y.shape), reduce_to(out[5], y.shape)),
    }
    if weight is not None:
        grads["weight"] = (reduce_to(out[6], w.shape), reduce_to(out[7], w.shape))
    if pos_weight is not None and logits:
        grads["pos_weight"] = (reduce_to(out[8], p.shape), reduce_to(out[9], p.shape))
    return Exact(np.asarray(value), np.asarray(scale), grads, max(n, 1))


def exact_logits(x, y, weight, pos_weight, reduction, formula="torch") -> Exact:
    return exact(True, x, y, weight, pos_weight, reduction, formula)
