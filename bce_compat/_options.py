"""The options beyond torch's signature: validated here, carried in ``Problem.options``.

Only options set away from their defaults enter the mapping, so a plain call has none and
every engine may take it; an engine that does not implement an option declines the call and
the portable path (``_portable.portable``) computes it.

>>> options("f", label_smoothing=0.1, ignore_index=None)
{'label_smoothing': 0.1}
>>> options("f", label_smoothing=1.5)
Traceback (most recent call last):
ValueError: f: `label_smoothing` must be a number in [0, 1]; got 1.5
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from bce_compat._registry import backend_for_type
from bce_compat.backends._float_dtypes import dtype_name

FOCAL_ALPHA = 0.25  # torchvision's defaults
FOCAL_GAMMA = 2.0


def _real(fn: str, arg: str, value: Any, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
        raise TypeError(f"{fn}: `{arg}` must be {expected}; got {value!r}")
    return float(value)


def check_label_smoothing(fn: str, value: Any) -> float:
    """ε as a float in [0, 1] (Keras: y -> y·(1 - ε) + ε/2)."""
    eps = _real(fn, "label_smoothing", value, "a number in [0, 1]")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{fn}: `label_smoothing` must be a number in [0, 1]; got {value!r}")
    return eps


def check_ignore_index(fn: str, value: Any) -> float | None:
    """The target value whose elements are left out, a finite number, or None."""
    if value is None:
        return None
    index = _real(fn, "ignore_index", value, "a number or None")
    if not math.isfinite(index):
        raise ValueError(f"{fn}: `ignore_index` must be finite; got {value!r}")
    return index


def focal_options(fn: str, alpha: Any, gamma: Any) -> dict[str, Any]:
    """Non-default focal options. alpha in [0, 1], or negative for no weighting (torchvision); gamma >= 0.

    Each may be a number or a 0-d array. A 0-d array whose value can be read is checked and
    taken as its number; a traced one (``jax.jit``, ``tf.function``, a static program) has no
    value yet, so it is passed on unchecked, as an array, and the loss is computed with it.

    >>> focal_options("f", 0.25, 0.5)
    {'gamma': 0.5}
    """
    out: dict[str, Any] = {}
    a = _focal_parameter(fn, "alpha", alpha, "a number in [0, 1], or negative for no weighting")
    if isinstance(a, float) and a > 1.0:
        raise ValueError(f"{fn}: `alpha` must be in [0, 1], or negative for no weighting; got {alpha!r}")
    g = _focal_parameter(fn, "gamma", gamma, "a number >= 0")
    if isinstance(g, float) and not 0.0 <= g < math.inf:
        raise ValueError(f"{fn}: `gamma` must be a finite number >= 0; got {gamma!r}")
    if not (isinstance(a, float) and a == FOCAL_ALPHA):
        out["alpha"] = a
    if not (isinstance(g, float) and g == FOCAL_GAMMA):
        out["gamma"] = g
    return out


def _focal_parameter(fn: str, arg: str, value: Any, expected: str) -> Any:
    """A number as a float; a 0-d array as its number where its value can be read, else as is (traced)."""
    if isinstance(value, Real) or not hasattr(value, "shape"):
        return _real(fn, arg, value, expected)
    backend = backend_for_type(type(value))
    kind = dtype_name(getattr(value, "dtype", None))
    if backend is None or tuple(value.shape) != () or not (kind.startswith(("float", "bfloat", "int", "uint"))):
        raise TypeError(f"{fn}: `{arg}` must be {expected} (a number or a 0-d array); got {value!r}")
    if not backend.values_are_concrete(value):
        return value
    return _real(fn, arg, float(value), expected)


def options(fn: str, *, label_smoothing: Any = 0.0, ignore_index: Any = None) -> dict[str, Any]:
    """The non-default ones of ``label_smoothing`` and ``ignore_index``, validated."""
    out: dict[str, Any] = {}
    if type(label_smoothing) is float and label_smoothing == 0.0 and ignore_index is None:
        return out  # the defaults: the common call skips the checks (a per-call cost on small inputs)
    eps = check_label_smoothing(fn, label_smoothing)
    if eps:
        out["label_smoothing"] = eps
    index = check_ignore_index(fn, ignore_index)
    if index is not None:
        out["ignore_index"] = index
    return out
