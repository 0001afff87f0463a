"""The one code path behind every dialect: dispatch, validate, describe the problem, solve it.

The call becomes one ``Problem`` (``bce_compat.backends.contract``); the backend's engines get
the first try, each computing it or declining by name, and the portable array-API path
(``_math``) computes whatever they all decline.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from bce_compat import _math
from bce_compat._dispatch import is_array
from bce_compat._plan import plan_for
from bce_compat._validate import ArgNames, check_unit_interval
from bce_compat.backends.contract import Declined, Kind, Problem, Reduction

_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


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
    """The loss for ``kind`` "logits" or "probs", in the inputs' own library, dtype and device.

    ``options`` holds only options set away from their defaults (see ``contract.Problem``).

    >>> import numpy as np
    >>> float(compute("logits", "f", ArgNames(), np.array([0.0]), np.array([1.0]), None, None, "mean"))
    0.6931471805599453
    """
    plan = plan_for(fn, names, x, y, weight, pos_weight)
    y, weight, pos_weight = plan.cast(x, y, weight, pos_weight)
    if kind == "probs":
        check_unit_interval(fn, names.input, plan.xp, x, plan.backend)
        check_unit_interval(fn, names.target, plan.xp, y, plan.backend)
    problem = Problem(kind, x, y, weight, pos_weight, reduction, plan.out_dtype, options or _NO_OPTIONS)
    return plan.backend.as_result(solve(problem, plan))


def solve(problem: Problem, plan) -> Any:
    """The first engine's answer that is not Declined, else the portable path's."""
    for engine in plan.backend.engines:
        result = engine(problem)
        if not isinstance(result, Declined):
            return result
    return portable(problem, plan.xp, plan.compute_dtype)


def portable(problem: Problem, xp: Any, compute_dtype: Any) -> Any:
    """The array-API path: every kind and option, on any backend (half precision in float32)."""
    x, y, weight, pos_weight = (xp.astype(a, compute_dtype) if is_array(a) else a for a in problem.arrays())
    if problem.kind == "logits":
        loss = _math.bce_with_logits(xp, x, y, weight, pos_weight)
    else:
        loss = _math.bce(xp, x, y, weight)
    return xp.astype(_math.reduce(xp, loss, problem.reduction), problem.out_dtype)
