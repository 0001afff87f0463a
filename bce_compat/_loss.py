"""The one code path behind every dialect: dispatch, validate, describe the problem, solve it.

The call becomes one ``Problem`` (``bce_compat.contract``); the backend's engines get the first
try, each computing it or declining by name, and the portable array-API path
(``bce_compat._portable``) computes whatever they all decline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bce_compat import _math
from bce_compat._graph_marks import unified_in_graphs
from bce_compat._plan import Plan, plan_for
from bce_compat._validate import ArgNames, check_unit_interval
from bce_compat.contract import NO_OPTIONS, Declined, Kind, Problem, Reduction


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
    if plan.autocast is not None:
        widened = plan.autocast(x, y, weight, pos_weight)
        if widened is not None:  # the library's autocast is on, and its loss ops run in float32
            x, y, weight, pos_weight = widened
            plan = plan_for(fn, names, x, y, weight, pos_weight)
    if plan.casts:
        y, weight, pos_weight = plan.cast(x, y, weight, pos_weight)
    problem = Problem(
        kind, x, y, weight, pos_weight, reduction, plan.out_dtype, options or NO_OPTIONS, plan.memo, plan.portable
    )
    return plan.backend.as_result(solve(problem, plan, fn, names))


def solve(problem: Problem, plan: Plan, fn: str = "binary_cross_entropy", names: ArgNames | None = None) -> Any:
    """The first engine's answer that is not Declined, else the portable path's.

    An engine checks the probabilities' [0, 1] range itself (and declines where it finds values
    outside); before the portable path computes, the check here raises the error that says which.
    """
    for engine in plan.backend.engines:
        result = engine(problem)
        if not isinstance(result, Declined):
            return result
    if problem.kind == "probs":
        _check_probabilities(problem, plan, fn, names or ArgNames())
    return plan.portable(problem)


def _check_probabilities(problem: Problem, plan: Plan, fn: str, names: ArgNames) -> None:
    """docs/contract.md §5: probabilities and targets outside [0, 1] are a ValueError (eager
    backends; ignored targets are exempt)."""
    ignore = problem.options.get("ignore_index")
    check_unit_interval(fn, names.input, plan.xp, problem.x, plan.backend)
    y = problem.y
    targets = y if ignore is None else _math.drop_ignored(plan.xp, y == ignore, y)
    check_unit_interval(fn, names.target, plan.xp, targets, plan.backend)
