"""The CPU pass (``bce_compat.backends.cpu_pass``) as one NumPy call, for the tests of the pass.

``loss(x, y, weight, pos_weight, reduction, dtype)`` is what the NumPy engine computes, with the
front end's casts done here (bool and integer operands become x's dtype), an optional
``grad_out`` (d loss / d x, upstream 1, scaled for a mean) and the pass's thread settings.
``grad(..., upstream, dtype)`` is d loss / d x times an upstream gradient.

>>> float(loss(np.array([0.0]), np.array([1.0]), None, None, "mean", np.float64))
0.6931471805599453
"""

from __future__ import annotations

import math

import numpy as np

from bce_compat.backends import cpu_pass


def _as_operand(a, dtype):
    if a is None or type(a) in (bool, int, float):
        return a
    a = np.asarray(a)
    return a.astype(dtype) if a.dtype.kind in "biu" else a


def loss(x, y, weight, pos_weight, reduction, dtype, *, grad_out=None, kind="logits", options=None, threads=1,
         host_team=False, parallel_min=cpu_pass.PARALLEL_MIN):
    """The pass's loss in ``dtype`` (0-d for mean and sum), and d loss / d x into ``grad_out``."""
    dtype = np.dtype(dtype)
    x = np.asarray(x)
    y, weight, pos_weight = (_as_operand(a, x.dtype) for a in (y, weight, pos_weight))
    options = options or {}
    if x.size == 0:
        return np.empty(x.shape, dtype) if reduction == "none" else np.asarray(
            math.nan if reduction == "mean" else 0.0, dtype)
    loss_out = np.empty_like(x, dtype=dtype) if reduction == "none" else None
    totals = cpu_pass.run(kind, x, y, weight, pos_weight, reduction=reduction, loss_out=loss_out, grad_out=grad_out,
                          result_dtype=dtype.name, size_hint=x.size, options=options, threads=threads, host_team=host_team,
                          parallel_min=parallel_min)
    settled = cpu_pass.settle(totals, reduction, options)
    if grad_out is not None and settled.grad_scale != 1.0:
        grad_out *= settled.grad_scale
    return loss_out if loss_out is not None else np.asarray(settled.value, dtype)


def grad(x, y, weight, pos_weight, upstream, dtype, **settings):
    """d loss / d x (reduction "none") times ``upstream``, rounded once to ``dtype`` (float32 or float64)."""
    x = np.asarray(x)
    d = np.empty(x.shape, np.float64)
    loss(x, y, weight, pos_weight, "none", np.float64 if x.dtype == np.float64 else np.float32, grad_out=d, **settings)
    return (d * np.asarray(upstream, np.float64)).astype(dtype)
