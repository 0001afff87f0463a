"""The loss, written once against the array-API standard (``xp`` is the inputs' namespace).

Every function here takes already-validated arrays of one floating dtype.
"""

from __future__ import annotations

import math

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


def bce_with_logits(xp, x, y, weight=None, pos_weight=None):
    """Unreduced  w * [p*y*softplus(-x) + (1-y)*softplus(x)]  (= -w*[p*y*log sig(x) + (1-y)*log(1-sig(x))]).

    Both terms are non-negative, so nothing cancels: x = -20, y = 0 gives 2.06e-9, not 0.
    log(1 - sigmoid(x)) is computed as -softplus(x), never as log of a rounded 1 - sigmoid.
    """
    positive_coefficient = y if pos_weight is None else pos_weight * y
    loss = _times(xp, positive_coefficient, softplus(xp, -x)) + _times(xp, 1 - y, softplus(xp, x))
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


def bce(xp, q, y, weight=None):
    """Unreduced  -w * [y*max(log q, -100) + (1-y)*max(log(1-q), -100)]  on probabilities q."""
    loss = y * _neg_log_clamped(xp, q) + (1 - y) * _neg_log1m_clamped(xp, q)
    return loss if weight is None else weight * loss


def reduce(xp, loss, reduction: str):
    """"none" keeps the shape; "sum" and "mean" (= sum / size, NaN when empty) give 0-d arrays."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    size = math.prod(loss.shape)
    return total / size if size else total * math.nan
