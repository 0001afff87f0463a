"""The one code path behind every dialect: dispatch, validate, promote, compute, reduce."""

from __future__ import annotations

from bce_compat import _math
from bce_compat._dispatch import is_array
from bce_compat._plan import plan_for
from bce_compat._validate import ArgNames, check_unit_interval
from bce_compat.backends._float_dtypes import dtype_name

_HALF_PRECISION = ("float16", "bfloat16")  # computed in float32, rounded once at the end


def compute(kind: str, fn: str, names: ArgNames, x, y, weight, pos_weight, reduction: str):
    """The loss for ``kind`` "logits" or "probs", in the inputs' own library, dtype and device.

    >>> import numpy as np
    >>> float(compute("logits", "f", ArgNames(), np.array([0.0]), np.array([1.0]), None, None, "mean"))
    0.6931471805599453
    """
    plan = plan_for(fn, names, x, y, weight, pos_weight)
    backend, xp, out_dtype = plan.backend, plan.xp, plan.out_dtype
    y, weight, pos_weight = plan.cast(x, y, weight, pos_weight)
    if kind == "probs":
        check_unit_interval(fn, names.input, xp, x, backend)
        check_unit_interval(fn, names.target, xp, y, backend)

    fast_path = backend.fast_paths.get(kind)
    if fast_path is not None:
        result = fast_path(x, y, weight, pos_weight, reduction, out_dtype)
        if result is not NotImplemented:
            return backend.as_result(result)

    compute_dtype = xp.float32 if dtype_name(out_dtype) in _HALF_PRECISION else out_dtype
    x, y, weight, pos_weight = (
        xp.astype(a, compute_dtype) if is_array(a) else a
        for a in (x, y, weight, pos_weight)
    )
    if kind == "logits":
        loss = _math.bce_with_logits(xp, x, y, weight, pos_weight)
    else:
        loss = _math.bce(xp, x, y, weight)
    return backend.as_result(xp.astype(_math.reduce(xp, loss, reduction), out_dtype))
