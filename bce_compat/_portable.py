"""The portable path: the canonical problem computed once, against the array-API standard.

Every kind and option, on any backend, in the backend's own ops (so its autograd, graphs and
compilers see plain operations). ``bce_compat._plan`` binds it to a call signature's namespace
and compute dtype; engines receive that as ``Problem.portable``.
"""

from __future__ import annotations

from typing import Any

from bce_compat import _math
from bce_compat._dispatch import is_array
from bce_compat._options import FOCAL_ALPHA, FOCAL_GAMMA
from bce_compat.contract import Problem

PORTABLE_OPTIONS = frozenset({"label_smoothing", "ignore_index", "alpha", "gamma", "mean_axis"})


def portable(problem: Problem, xp: Any, compute_dtype: Any) -> Any:
    """The array-API path: every kind and option, on any backend, computed in ``compute_dtype``
    (float64 for float32 results where the backend has it, float32 for half precision) and
    rounded once to the result dtype.
    """
    options = problem.options
    unknown = sorted(set(options) - PORTABLE_OPTIONS)
    if unknown:  # never silently ignored, here either
        raise ValueError(f"options {unknown} are not implemented; known: {sorted(PORTABLE_OPTIONS)}")
    x, y, weight, pos_weight = (xp.astype(a, compute_dtype) if is_array(a) else a for a in problem.arrays())
    ignored = None
    if "ignore_index" in options:
        # Ignored elements are computed at (x, y) = (0, 0), a finite point, then dropped: no NaN
        # or inf from them can reach the gradient of the others (0 * inf would).
        ignored = y == options["ignore_index"]
        x, y = _math.drop_ignored(xp, ignored, x), _math.drop_ignored(xp, ignored, y)
    y_neg = None
    if "label_smoothing" in options:
        y, y_neg = _math.smoothed_targets(xp, y, options["label_smoothing"])
    if problem.kind == "logits":
        loss = _math.bce_with_logits(xp, x, y, weight, pos_weight, y_neg)
    elif problem.kind == "probs":
        loss = _math.bce(xp, x, y, weight, y_neg)
    else:
        alpha, gamma = options.get("alpha", FOCAL_ALPHA), options.get("gamma", FOCAL_GAMMA)
        loss = _math.sigmoid_focal(xp, x, y, alpha, gamma, y_neg)
    count = None
    if ignored is not None:
        loss = _math.drop_ignored(xp, ignored, loss)
        count = xp.sum(_math.drop_ignored(xp, ignored, xp.ones_like(loss)))
    if "mean_axis" in options:
        loss = _math.mean_over_axis(xp, loss, options["mean_axis"])
    return xp.astype(_math.reduce(xp, loss, problem.reduction, count), problem.out_dtype)
