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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def _softplus(x: Any) -> Any:
    return mp.log1p(mp.exp(x)) if x < 30 else x + mp.log1p(mp.exp(-x))


def _sigmoid(x: Any) -> Any:
    return 1 / (1 + mp.exp(-x))


def _mul(coef: Any, term: Any) -> Any:
    """coef * term, with 0 * inf = 0 (a term whose coefficient is exactly 0 contributes 0)."""
    return mp.mpf(0) if coef == 0 else coef * term


def _mpf(v: float) -> Any:
    return mp.mpf(float(v)) if math.isfinite(v) else (mp.inf if v > 0 else (-mp.inf if v < 0 else mp.nan))


_PADDLE_FORMULAS = {
    # Out = Logit - Logit * Labels + log(1 + e^{-Logit})
    "paddle": lambda x, y: x - x * y + mp.log(1 + mp.exp(-x)),
    # Out = max(Logit, 0) - Logit * Labels + log(1 + e^{-|Logit|})
    "paddle_stable": lambda x, y: max(x, 0) - x * y + mp.log(1 + mp.exp(-abs(x))),
}


def _smoothed(y: Any, eps: Any) -> tuple[Any, Any]:
    """(y', 1 - y') of Keras' label smoothing y' = y*(1-eps) + eps/2, both formed without cancellation."""
    if eps == 0:
        return y, 1 - y
    keep, shift = 1 - eps, eps / 2
    return y * keep + shift, (1 - y) * keep + shift


def _logits_element(x: float, y: float, w: float, p: float, formula: str = "torch", eps: Any = 0) -> tuple[Any, ...]:
    """(loss, scale, dloss/dx, scale, d/dy, scale, d/dw, scale, d/dp, scale) at one element."""
    x, y, w, p = map(_mpf, (x, y, w, p))
    if any(mp.isnan(v) for v in (x, y, w, p)):
        return (mp.nan,) * 10
    ys, yn = _smoothed(y, eps)
    sp_neg, sp_pos = _softplus(-x), _softplus(x)
    pos_term = _mul(p * ys, sp_neg)
    neg_term = _mul(yn, sp_pos)
    loss = _mul(w, pos_term + neg_term)
    if formula != "torch":  # seed 004's two forms (no pos_weight there); exact in mpmath for finite x
        if p != 1 or mp.isinf(x) or eps:
            raise ValueError(f"formula {formula!r} is stated for finite logits without pos_weight")
        alt = _PADDLE_FORMULAS[formula](x, y)
        loss = _mul(w, alt)
    scale = abs(w) * (abs(pos_term) + abs(neg_term))
    s = _sigmoid(x)
    gx_a, gx_b = _mul(w, s * (1 + (p - 1) * ys)), _mul(w, p * ys)
    gx = gx_a - gx_b
    keep = 1 - mp.mpf(eps)  # d y'/dy
    gy_a, gy_b = _mul(w * p * keep, sp_neg), _mul(w * keep, sp_pos)
    gy = gy_a - gy_b
    gw = pos_term + neg_term
    gp = _mul(w * ys, sp_neg)
    return (
        loss, scale, gx, abs(gx_a) + abs(gx_b), gy, abs(gy_a) + abs(gy_b),
        gw, abs(pos_term) + abs(neg_term), gp, abs(gp),
    )


def _log_clamped(v: Any) -> tuple[Any, Any]:
    """(max(log v, -100), derivative) with log 0 = -inf clamped to -100."""
    if v <= 0:
        return mp.mpf(CLAMP), mp.mpf(0)
    lv = mp.log(v)
    return (mp.mpf(CLAMP), mp.mpf(0)) if lv < CLAMP else (lv, 1 / v)


def _probs_element(q: float, y: float, w: float, _p: float | None = None, formula: str = "torch",
                   eps: Any = 0) -> tuple[Any, ...]:
    q, y, w = map(_mpf, (q, y, w))
    if any(mp.isnan(v) for v in (q, y, w)):
        return (mp.nan,) * 10
    ys, yn = _smoothed(y, eps)
    log_q, dlog_q = _log_clamped(q)
    log_1mq, dlog_1mq = _log_clamped(1 - q)
    a, b = _mul(ys, log_q), _mul(yn, log_1mq)
    loss = -w * (a + b)
    ga, gb = _mul(ys, dlog_q), _mul(yn, dlog_1mq)
    gq = -w * (ga - gb)
    keep = 1 - mp.mpf(eps)
    gy = -w * keep * (log_q - log_1mq)
    gw = -(a + b)
    return (
        loss, abs(w) * (abs(a) + abs(b)), gq, abs(w) * (abs(ga) + abs(gb)),
        gy, abs(w * keep) * (abs(log_q) + abs(log_1mq)), gw, abs(a) + abs(b), mp.mpf(0), mp.mpf(0),
    )


def _focal_element(x: float, y: float, alpha: float, gamma: float) -> tuple[Any, ...]:
    """torchvision's focal loss alpha_t * ce * (1 - p_t)**gamma and its d/dx (alpha < 0: no alpha_t).

    (loss, scale, d/dx, scale); 1 - p_t = (1-y)*sigmoid(x) + y*sigmoid(-x). A product with an
    exactly-zero factor is 0, so the limits at x = +-inf are finite.
    """
    x, y = _mpf(x), _mpf(y)
    if mp.isnan(x) or mp.isnan(y):
        return (mp.nan,) * 4
    alpha, gamma = mp.mpf(alpha), mp.mpf(gamma)
    ce = _mul(y, _softplus(-x)) + _mul(1 - y, _softplus(x))
    s, sn = _sigmoid(x), _sigmoid(-x)
    m = (1 - y) * s + y * sn
    mod = mp.mpf(1) if gamma == 0 else m**gamma
    a_t = alpha * y + (1 - alpha) * (1 - y) if alpha >= 0 else mp.mpf(1)
    loss = _mul(a_t, _mul(mod, ce))
    dce_pos, dce_neg = (1 - y) * s, y * sn  # d ce/dx = dce_pos - dce_neg: they cancel near sigmoid(x) = y
    dm = (1 - 2 * y) * s * sn
    dmod = mp.mpf(0) if gamma == 0 or dm == 0 else gamma * m ** (gamma - 1) * dm
    first, second = _mul(mod, dce_pos - dce_neg), _mul(dmod, ce)
    scale = abs(a_t) * ((abs(dce_pos) + abs(dce_neg)) * mod + abs(second))
    return loss, abs(loss), a_t * (first + second), scale


def _element_fn(logits: bool, formula: str, options: dict[str, Any]) -> Callable[..., tuple[Any, ...]]:
    """The per-element function for this loss: (x, y, w, p) -> the ten values of ``_logits_element``."""
    if "focal" in options:
        alpha, gamma = options["focal"]

        def focal(x: float, y: float, w: float, p: float) -> tuple[Any, ...]:
            loss, scale, gx, gx_scale = _focal_element(x, y, alpha, gamma)
            nan = mp.nan  # d/dy, d/dw, d/dp: not part of the reference (the runner checks d/dx only)
            return loss, scale, gx, gx_scale, nan, nan, nan, nan, nan, nan

        return focal
    eps = mp.mpf(float(options.get("label_smoothing", 0.0)))
    element = _logits_element if logits else _probs_element
    return lambda x, y, w, p: element(x, y, w, p, formula, eps)


def exact(logits: bool, x: Any, y: Any, weight: Any, pos_weight: Any, reduction: str, formula: str = "torch",
          options: dict[str, Any] | None = None) -> Exact:
    """The exact loss and gradients; ``weight``/``pos_weight`` are arrays, numbers or None.

    ``options``: ``label_smoothing`` (eps), ``ignore_index`` (those targets give 0 and leave the
    mean's denominator), ``mean_axis`` (Keras: the mean over that axis first, then ``reduction``
    over the per-sample values), ``focal`` ((alpha, gamma): torchvision's focal loss).

    >>> r = exact(True, np.array([[0.0, 0.0]]), np.array([[1.0, -100.0]]), None, None, "mean",
    ...           options={"ignore_index": -100})
    >>> round(float(r.value), 6), r.grads["input"][0].tolist()
    (0.693147, [[-0.5, 0.0]])
    """
    with mp.workdps(DIGITS):
        return _exact(logits, x, y, weight, pos_weight, reduction, formula, dict(options or {}))


def _exact(logits: bool, x: Any, y: Any, weight: Any, pos_weight: Any, reduction: str, formula: str,
           options: dict[str, Any]) -> Exact:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.asarray(1.0 if weight is None else weight, np.float64)
    p = np.asarray(1.0 if pos_weight is None else pos_weight, np.float64)
    shape = np.broadcast_shapes(x.shape, y.shape, w.shape, p.shape)
    bx, by, bw, bp = (np.broadcast_to(a, shape) for a in (x, y, w, p))
    element = _element_fn(logits, formula, options)
    ignore = options.get("ignore_index")
    out = np.empty((10,) + shape, dtype=object)
    kept = 0
    for idx in np.ndindex(*shape):
        if ignore is not None and by[idx] == ignore:  # exactly 0, gradients included
            out[(slice(None),) + idx] = (mp.mpf(0),) * 10
            continue
        kept += 1
        out[(slice(None),) + idx] = element(bx[idx], by[idx], bw[idx], bp[idx])
    n = int(np.prod(shape))
    if "mean_axis" in options:
        if ignore is not None:
            raise ValueError("mean_axis and ignore_index together are not part of the reference")
        return _exact_axis_mean(out, shape, int(options["mean_axis"]), reduction, (x, y, w, p),
                                weight is not None, pos_weight is not None and logits)
    count = kept if ignore is not None else n
    factor = mp.mpf(1) / count if (reduction == "mean" and count) else mp.mpf(1)

    def reduce_to(a: np.ndarray, target_shape: tuple[int, ...]) -> np.ndarray:
        return _sum_to(a * factor if reduction != "none" else a, target_shape)

    loss, loss_scale = out[0], out[1]
    value: np.ndarray | np.float64
    scale: np.ndarray | np.float64
    if reduction == "none":
        value, scale = _to_float(loss), _to_float(loss_scale)
    else:
        total = mp.fsum(loss.ravel()) if n else mp.mpf(0)
        total_scale = mp.fsum(loss_scale.ravel()) if n else mp.mpf(0)
        if reduction == "mean":
            value = np.float64(float(total / count)) if count else np.float64("nan")
            scale = np.float64(float(total_scale / count)) if count else np.float64(0.0)
        else:
            value, scale = np.float64(float(total)), np.float64(float(total_scale))
    grads = _gradients(out, reduce_to, (x, y, w, p), weight is not None, pos_weight is not None and logits)
    return Exact(np.asarray(value), np.asarray(scale), grads, max(n, 1))


def _gradients(out: np.ndarray, reduce: Callable[[np.ndarray, tuple[int, ...]], np.ndarray],
               operands: tuple[np.ndarray, ...], with_weight: bool,
               with_pos_weight: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Argument name -> (gradient, its scale): rows 2-9 of ``out``, each reduced to its argument's shape."""
    x, y, w, p = operands
    rows = {"input": (2, x), "target": (4, y)}
    if with_weight:
        rows["weight"] = (6, w)
    if with_pos_weight:
        rows["pos_weight"] = (8, p)
    return {name: (reduce(out[i], a.shape), reduce(out[i + 1], a.shape)) for name, (i, a) in rows.items()}


def _to_float(a: Any) -> np.ndarray:
    # a plain loop, not np.vectorize: a NaN result would raise numpy's "invalid value" RuntimeWarning there
    return np.array([float(v) for v in np.asarray(a, object).ravel()], np.float64).reshape(np.shape(a))


def _sum_to(a: np.ndarray, target_shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to an argument's shape (exactly, in mpmath)."""
    lead = a.ndim - len(target_shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(target_shape)
                                      if d == 1 and a.shape[lead + i] != 1)
    for axis in sorted(axes, reverse=True):
        if a.shape[axis]:
            a = np.apply_along_axis(mp.fsum, axis, a)
        else:
            a = np.zeros(a.shape[:axis] + a.shape[axis + 1:], object)
    return _to_float(a.reshape(target_shape))


def _exact_axis_mean(out: np.ndarray, shape: tuple[int, ...], axis: int, reduction: str,
                     operands: tuple[np.ndarray, ...], with_weight: bool, with_pos_weight: bool) -> Exact:
    """Keras: the per-sample mean over ``axis``, then ``reduction`` over the per-sample values."""
    axis = axis % len(shape)
    k = shape[axis]
    per_sample = np.moveaxis(out[:2], axis + 1, -1)  # (loss, scale) x samples x k
    samples = per_sample.shape[1:-1]
    means = np.empty((2,) + samples, object)
    for idx in np.ndindex(*((2,) + samples)):
        means[idx] = mp.fsum(per_sample[idx]) / k if k else mp.nan
    n_samples = int(np.prod(samples))
    value: np.ndarray | np.float64
    scale: np.ndarray | np.float64
    if reduction == "none":
        value, scale, outer = _to_float(means[0]), _to_float(means[1]), mp.mpf(1)
    else:
        outer = mp.mpf(1) / n_samples if reduction == "mean" and n_samples else mp.mpf(1)
        total = [mp.fsum(means[i].ravel()) * outer for i in (0, 1)]
        value = np.float64(float(total[0])) if n_samples or reduction == "sum" else np.float64("nan")
        scale = np.float64(float(total[1]))
    factor = outer / k if k else mp.mpf(0)
    grads = _gradients(out, lambda a, target: _sum_to(a * factor, target), operands, with_weight, with_pos_weight)
    return Exact(np.asarray(value), np.asarray(scale), grads, max(int(np.prod(shape)), 1))


def exact_logits(x: Any, y: Any, weight: Any, pos_weight: Any, reduction: str, formula: str = "torch") -> Exact:
    return exact(True, x, y, weight, pos_weight, reduction, formula)
