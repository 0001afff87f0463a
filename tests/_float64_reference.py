"""A fast float64 NumPy reference for tests on large or random arrays (``_reference`` is the exact one).

Sums use math.fsum (correctly rounded), so chunking or tree reductions cannot hide an error.

>>> float(logits_reference([0.0], [1.0], reduction="sum"))
0.6931471805599453
"""

from __future__ import annotations

import math

import numpy as np


def softplus64(x):
    return np.logaddexp(0.0, np.asarray(x, np.float64))


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    total = math.fsum(loss.ravel())
    return total if reduction == "sum" else total / loss.size


def logits_reference(x, y, w=1.0, p=1.0, reduction="none"):
    """w*[p*y*softplus(-x) + (1-y)*softplus(x)] in float64."""
    x, y, w, p = (np.asarray(a, np.float64) for a in (x, y, w, p))
    return _reduce(w * (p * y * softplus64(-x) + (1 - y) * softplus64(x)), reduction)


def probs_reference(q, y, w=1.0, reduction="none"):
    """-w*[y*max(log q, -100) + (1-y)*max(log(1-q), -100)] in float64."""
    q, y, w = (np.asarray(a, np.float64) for a in (q, y, w))
    with np.errstate(divide="ignore"):
        loss = -w * (y * np.maximum(np.log(q), -100) + (1 - y) * np.maximum(np.log1p(-q), -100))
    return _reduce(loss, reduction)
