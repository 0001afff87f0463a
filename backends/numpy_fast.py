"""NumPy engine: the CPU pass (``cpu_pass``) on NumPy arrays of float16, float32 and float64.

Every kind and option the pass implements, any layout (strided, transposed, broadcast operands
are read in place), the result an ndarray of the promoted dtype. Probabilities outside [0, 1]
are found by the pass itself; the engine then declines, and the front end's check says which.

>>> import numpy as np
>>> from bce_compat.contract import Problem
>>> float(ENGINE(Problem("logits", np.array([-20.0], np.float32), np.zeros(1, np.float32), reduction="sum",
...                      out_dtype=np.dtype(np.float32))))
2.06115369216775e-09
"""

from __future__ import annotations

import math

import numpy as np

from bce_compat.backends import cpu_pass
from bce_compat.contract import Declined, NamedEngine, Problem

_NAMES = {np.dtype(np.float16): "float16", np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_OUTSIDE = Declined("values outside [0, 1]: the front end's check reports them")


def _solve(problem: Problem):
    """The engine's entry: the result as a NumPy array, or Declined."""
    declined = cpu_pass.declines(problem)
    if declined is not None:
        return declined
    x, out_dtype = problem.x, problem.out_dtype
    name = _NAMES.get(out_dtype)
    if name is None or type(x) is not np.ndarray or x.dtype not in _NAMES:
        return Declined("not a float16/32/64 ndarray")
    if not _whole_aligned_elements(problem):
        return Declined("an array whose start or strides are not aligned whole elements (a structured array's "
                        "field): the pass reads whole elements")
    reduction = problem.reduction
    size = x.size
    if size == 0:
        return np.empty(x.shape, out_dtype) if reduction == "none" else np.asarray(
            math.nan if reduction == "mean" else 0.0, out_dtype)
    loss_out = np.empty_like(x, dtype=out_dtype) if reduction == "none" else None
    totals = cpu_pass.run(
        problem.kind, x, problem.y, problem.weight, problem.pos_weight, reduction=reduction, loss_out=loss_out,
        result_dtype=name, size_hint=size, options=problem.options, threads=cpu_pass.num_threads(),
    )
    settled = cpu_pass.settle(totals, reduction, problem.options)
    if settled.outside:
        return _OUTSIDE
    return loss_out if loss_out is not None else np.asarray(settled.value, out_dtype)


def _whole_aligned_elements(problem: Problem) -> bool:
    """Whether every ndarray operand is NumPy-aligned: a field of a packed structured array
    (``rec["x"]``, strides of 5 bytes over float32) is not, and the pass refuses such strides.

    >>> rec = np.zeros(3, dtype=[("x", np.float32), ("flag", np.uint8)])
    >>> _whole_aligned_elements(Problem("logits", rec["x"], np.zeros(3, np.float32)))
    False
    """
    for a in problem.arrays():
        if type(a) is np.ndarray and not a.flags.aligned:
            return False
    return True


ENGINE = NamedEngine("numpy-cpu-pass", _solve)
