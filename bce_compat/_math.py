"""The loss, written once against the array-API standard (``xp`` is the inputs' namespace).

Every function here takes already-validated arrays of one floating dtype.
"""

from __future__ import annotations

import math
import struct

LOG_CLAMP = 100.0  # torch and Paddle clamp log(q) and log(1 - q) at -100
_SMALLEST_UNCLAMPED = math.exp(-LOG_CLAMP)


def softplus(xp, x):
    """log(1 + exp(x)) without overflow, and with the exact gradient sigmoid(x) everywhere.

    Written as max(x, 0) + log1p(exp(-|x|)), but with ``where`` instead of ``maximum``/``abs``:
    their gradients at x = 0 differ between libraries (TF gives 1, torch 0.5), while these
    branches give sigmoid(0) = 0.5 on all of them. exp only ever sees -|x| <= 0, so it never
    overflows and no masked branch can leak a NaN into the gradient.
    """
    positive = x > 0
    minus_abs_x = xp.where(positive, -x, x)
    return xp.where(positive, x, xp.zeros_like(x)) + xp.log1p(xp.exp(minus_abs_x))


def _times(xp, coefficient, term):
    """coefficient * term, where a coefficient of exactly 0 gives 0 even if term is infinite.

    Only an infinite term is masked: masking every term at coefficient 0 would also zero the
    gradient with respect to the coefficient (i.e. the target) at y = 0 and y = 1.
    """
    masked = xp.logical_and(coefficient == 0, xp.isinf(term))
    return coefficient * xp.where(masked, xp.zeros_like(term), term)


def bce_with_logits(xp, x, y, weight=None, pos_weight=None, y_neg=None):
    """Unreduced  w * [p*y*softplus(-x) + (1-y)*softplus(x)]  (= -w*[p*y*log sig(x) + (1-y)*log(1-sig(x))]).

    Both terms are non-negative, so nothing cancels: x = -20, y = 0 gives 2.06e-9, not 0.
    log(1 - sigmoid(x)) is computed as -softplus(x), never as log of a rounded 1 - sigmoid.
    ``y_neg`` is the coefficient 1 - y when the caller has it more accurately (label smoothing).
    """
    y_neg = 1 - y if y_neg is None else y_neg
    positive_coefficient = y if pos_weight is None else pos_weight * y
    loss = _times(xp, positive_coefficient, softplus(xp, -x)) + _times(xp, y_neg, softplus(xp, x))
    return loss if weight is None else weight * loss


def _neg_log_clamped(xp, q):
    """min(-log q, 100); its gradient is 0 (not NaN) where the clamp holds, q = 0 included.

    Every q below e^-100 is clamped before the log is taken, not after: Paddle's log backward
    multiplies by 1/q, which is inf for a subnormal q, and 0 * inf would leak a NaN. The
    explicit q <= 0 is for kernels that flush the subnormal e^-100 itself to 0 (TF, XLA).
    """
    clamped = xp.logical_or(q <= 0, q < _SMALLEST_UNCLAMPED)
    neg_log = -xp.log(xp.where(clamped, xp.ones_like(q), q))
    return xp.where(xp.logical_or(clamped, neg_log > LOG_CLAMP), xp.full_like(q, LOG_CLAMP), neg_log)


def _neg_log1m_clamped(xp, q):
    """min(-log(1 - q), 100), via log1p so that q near 0 keeps its digits."""
    clamped = q >= 1
    neg_log = -xp.log1p(-xp.where(clamped, xp.zeros_like(q), q))
    return xp.where(xp.logical_or(clamped, neg_log > LOG_CLAMP), xp.full_like(q, LOG_CLAMP), neg_log)


def bce(xp, q, y, weight=None, y_neg=None):
    """Unreduced  -w * [y*max(log q, -100) + (1-y)*max(log(1-q), -100)]  on probabilities q."""
    y_neg = 1 - y if y_neg is None else y_neg
    loss = y * _neg_log_clamped(xp, q) + y_neg * _neg_log1m_clamped(xp, q)
    return loss if weight is None else weight * loss


def sigmoids(xp, x):
    """(sigmoid(x), sigmoid(-x)), each within a few ulp: both from exp(-|x|), which cannot overflow."""
    positive = x > 0
    t = xp.exp(xp.where(positive, -x, x))
    large, small = 1 / (1 + t), t / (1 + t)
    return xp.where(positive, large, small), xp.where(positive, small, large)


def smoothed_targets(xp, y, eps: float):
    """Keras' label smoothing: (y*(1-eps) + eps/2, (1-y)*(1-eps) + eps/2).

    The complement is built the same way rather than as 1 - (smoothed y), which would cancel
    for y near 1 (and its error is multiplied by |x| in the loss).
    """
    keep, shift = 1.0 - eps, eps / 2
    return y * keep + shift, (1 - y) * keep + shift


def _focal_modulator(xp, x, y, y_neg, gamma):
    """(1 - p_t)**gamma with 1 - p_t = (1-y)*sigmoid(x) + y*sigmoid(-x), and a finite gradient everywhere.

    The power is taken of the accurately computed 1 - p_t (exp(gamma*log m) would lose
    |gamma*log m| ulps). Its derivative gamma*m**(gamma-1) overflows as m -> 0 (the NaN gradients
    optax fixed in PR #1346), so where m is below the normal range the factor is computed in
    log space instead: m is then the sigmoid of the better-predicted side, log m = -softplus(±x),
    whose gradient is bounded; the loss there is below the smallest normal anyway.
    ``gamma`` is a number, or a 0-d array (traced) of any floating dtype.
    """
    s_pos, s_neg = sigmoids(xp, x)
    m = _times(xp, y_neg, s_pos) + _times(xp, y, s_neg)
    tiny = m < _smallest_normal(xp, m)
    if not isinstance(gamma, float):
        gamma = xp.astype(gamma, m.dtype)
    direct = _power(xp, xp.where(tiny, xp.ones_like(m), m), gamma)
    log_m = -softplus(xp, xp.where(y > 0.5, x, -x))
    return xp.where(tiny, xp.exp(gamma * log_m), direct)


def _power(xp, base, exponent):
    """base**exponent for base >= 1e-38 or so, with a Python-number exponent wherever that is exact.

    Paddle rounds a Python-number exponent to float32 but has no second derivative for a tensor
    one, so a float64 exponent is split into its float32 part and a tiny rest r:
    base**e = base**e32 * exp(r*log(base)), where |r*log(base)| < 2**-14 costs no accuracy.
    """
    if not isinstance(exponent, float):
        return base**exponent
    leading = float(struct.unpack("f", struct.pack("f", exponent))[0])
    rest = exponent - leading
    power = base**leading
    return power if rest == 0 else power * xp.exp(rest * xp.log(base))


def _smallest_normal(xp, a) -> float:
    return 2.0**-1022 if a.dtype == xp.float64 else 2.0**-126


def sigmoid_focal(xp, x, y, alpha, gamma, y_neg=None):
    """torchvision's sigmoid focal loss, unreduced: alpha_t * bce_with_logits(x, y) * (1 - p_t)**gamma.

    alpha_t = alpha*y + (1-alpha)*(1-y); a negative alpha means no weighting (torchvision).
    ``alpha`` and ``gamma`` are numbers, or 0-d arrays whose values are not known yet (traced
    under ``jax.jit``): then the choices made on their values are array operations.
    """
    y_neg = 1 - y if y_neg is None else y_neg
    loss = bce_with_logits(xp, x, y, y_neg=y_neg)
    if not isinstance(gamma, float) or gamma != 0:
        # Where the cross entropy is infinite (x = ±inf on the wrong side) the factor is > 0, so
        # inf * 1 is the same value, and the factor's zero gradient never meets inf (0 * inf = NaN).
        # gamma = 0 gives a factor of exactly 1 with a gradient of exactly 0.
        infinite = xp.isinf(loss)
        loss = loss * xp.where(infinite, xp.ones_like(loss), _focal_modulator(xp, x, y, y_neg, gamma))
    if isinstance(alpha, float):
        if alpha >= 0:
            loss = _times(xp, alpha * y + (1 - alpha) * y_neg, loss)  # alpha_t = 0 gives 0, even next to inf
        return loss
    a = xp.astype(alpha, loss.dtype)
    weighted = xp.logical_and(a >= 0, xp.ones_like(loss) > 0)  # alpha's choice, broadcast to the loss
    return _times(xp, xp.where(weighted, a * y + (1 - a) * y_neg, xp.ones_like(loss)), loss)


def sigmoid_focal_grad(xp, x, y, alpha, gamma, y_neg=None):
    """d/dx of ``sigmoid_focal`` (unreduced), in ops a framework can differentiate again.

    With s = sigmoid(x), sn = sigmoid(-x), ce = y softplus(-x) + y- softplus(x) and
    m = 1 - p_t = y- s + y sn: dce/dx = y- s - y sn and dm/dx = (y- - y) s sn, so
        d/dx = alpha_t * m**gamma * (y- s - y sn + gamma * ce * (y- - y) * r),  r = s sn / m,
    where r is at most max(s, sn) <= 1 (m >= min(s, sn) as y + y- = 1): m**gamma * r stays
    finite where m**(gamma - 1) would overflow. m**gamma is the loss's own factor
    (``_focal_modulator``). Where ce is infinite (x = +-inf on the wrong side) r is 0 and the
    exact limit of that term is 0. ``alpha`` and ``gamma`` are numbers.

    >>> import numpy as np
    >>> [round(float(v), 6) for v in sigmoid_focal_grad(np, np.array([-1.0, 0.5]), np.array([0.0, 1.0]), 0.25, 2.0)]
    [0.039436, -0.034484]
    """
    y_neg = 1 - y if y_neg is None else y_neg
    s, sn = sigmoids(xp, x)
    slope = y_neg * s - y * sn
    if gamma == 0:
        g = slope
    else:
        m = y_neg * s + y * sn
        r = s * sn / xp.where(m > 0, m, xp.ones_like(m))
        ce = bce_with_logits(xp, x, y, y_neg=y_neg)
        finite = xp.logical_not(xp.isinf(ce))
        term = xp.where(finite, gamma * xp.where(finite, ce, xp.zeros_like(ce)) * (y_neg - y) * r, xp.zeros_like(ce))
        g = _focal_modulator(xp, x, y, y_neg, gamma) * (slope + term)
    return g if alpha < 0 else (alpha * y + (1 - alpha) * y_neg) * g


def drop_ignored(xp, ignored, a):
    """``a`` with the ignored elements set to exactly 0 (their gradient is 0 too)."""
    return xp.where(ignored, xp.zeros_like(a), a)


def mean_over_axis(xp, loss, axis: int):
    """Keras' mean over one axis (sum / length; NaN for a zero-length axis)."""
    length = loss.shape[axis]
    total = xp.sum(loss, axis=axis)
    return total / length if length else total * math.nan


def reduce(xp, loss, reduction: str, count=None):
    """"none" keeps the shape; "sum" and "mean" (= sum / size, NaN when empty) give 0-d arrays.

    ``count`` (an array), when given, replaces the size as the mean's denominator (ignore_index).
    """
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    if count is not None:
        some = count > 0
        return xp.where(some, total / xp.where(some, count, xp.ones_like(count)), xp.full_like(total, math.nan))
    if not all(type(d) is int and d >= 0 for d in loss.shape):  # a graph's size unknown until run (Paddle: -1)
        return reduce(xp, loss, reduction, xp.sum(xp.ones_like(loss)))
    size = math.prod(loss.shape)
    # by a 0-d array, not a number: Paddle's graphs turn x / n into a multiply by float32(1 / n)
    return total / xp.full_like(total, size) if size else total * math.nan
