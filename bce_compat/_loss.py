"""The one code path behind every dialect: dispatch, validate, describe the problem, solve it.

The call becomes one ``Problem`` (``bce_compat.backends.contract``); the backend's engines get
the first try, each computing it or declining by name, and the portable array-API path
(``_math``) computes whatever they all decline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bce_compat import _math
from bce_compat._dispatch import is_array
from bce_compat._graph_marks import unified_in_graphs
from bce_compat._options import FOCAL_ALPHA, FOCAL_GAMMA
from bce_compat._plan import plan_for
from bce_compat._validate import ArgNames, check_unit_interval
from bce_compat.backends.contract import NO_OPTIONS, Declined, Kind, Problem, Reduction


@unified_in_graphs  # Paddle to_static records this call instead of tracing our Python
def compute(
    kind: Kind,
    fn: str,
    names: ArgNames,
    x: Any,
    y: Any,
    weight: Any,
    pos_weight: Any,
    reduction: Reduction,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """The loss for ``kind`` "logits", "probs" or "focal", in the inputs' own library, dtype and device.

    ``options`` holds only options set away from their defaults (see ``contract.Problem`` and
    ``_options``): ``label_smoothing``, ``ignore_index``, ``alpha``/``gamma`` (focal) and
    ``mean_axis`` (Keras' mean over one axis before ``reduction``).

    >>> import numpy as np
    >>> float(compute("logits", "f", ArgNames(), np.array([0.0]), np.array([1.0]), None, None, "mean"))
    0.6931471805599453
    """
    plan = plan_for(fn, names, x, y, weight, pos_weight)
    if plan.casts:
        y, weight, pos_weight = plan.cast(x, y, weight, pos_weight)
    if kind == "probs":
        ignore = options.get("ignore_index") if options else None
        check_unit_interval(fn, names.input, plan.xp, x, plan.backend)
        targets = y if ignore is None else _math.drop_ignored(plan.xp, y == ignore, y)
        check_unit_interval(fn, names.target, plan.xp, targets, plan.backend)
    problem = Problem(kind, x, y, weight, pos_weight, reduction, plan.out_dtype, options or NO_OPTIONS, plan.memo)
    return plan.backend.as_result(solve(problem, plan))


def solve(problem: Problem, plan) -> Any:
    """The first engine's answer that is not Declined, else the portable path's."""
    for engine in plan.backend.engines:
        result = engine(problem)
        if not isinstance(result, Declined):
            return result
    return portable(problem, plan.xp, plan.compute_dtype)


PORTABLE_OPTIONS = frozenset({"label_smoothing", "ignore_index", "alpha", "gamma", "mean_axis"})


def portable(problem: Problem, xp: Any, compute_dtype: Any) -> Any:
    """The array-API path: every kind and option, on any backend (half precision in float32)."""
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
