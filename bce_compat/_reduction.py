"""The ``reduction`` argument, including torch's legacy ``size_average``/``reduce`` pair."""

from __future__ import annotations

import warnings
from typing import get_args

from bce_compat.contract import Reduction

REDUCTIONS: tuple[Reduction, ...] = get_args(Reduction)


def from_legacy(size_average: bool | None, reduce: bool | None) -> Reduction:
    """torch's mapping: reduce=False -> "none"; else size_average=False -> "sum"; else "mean".

    >>> import warnings; warnings.simplefilter("ignore")
    >>> from_legacy(False, None)
    'sum'
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction: Reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        f"size_average and reduce are deprecated; use reduction={reduction!r} instead",
        UserWarning,
        stacklevel=4,
    )
    return reduction


def resolve(
    fn_name: str, reduction: str, size_average: bool | None = None, reduce: bool | None = None
) -> Reduction:
    """The effective reduction; legacy arguments, when given, override ``reduction`` as in torch.

    >>> resolve("f", "sum")
    'sum'
    """
    if size_average is not None or reduce is not None:
        _check_legacy_flag(fn_name, "size_average", size_average)
        _check_legacy_flag(fn_name, "reduce", reduce)
        return from_legacy(size_average, reduce)
    try:
        if reduction == "elementwise_mean":
            warnings.warn("reduction='elementwise_mean' is deprecated; use reduction='mean'", UserWarning,
                          stacklevel=3)
            return "mean"
        for known in REDUCTIONS:
            if reduction == known:
                return known
    except (ValueError, TypeError, RuntimeError):  # an array (a slip of position): == is element-wise
        pass
    given = repr(reduction) if isinstance(reduction, str) else _described(reduction)
    raise ValueError(f"{fn_name}: `reduction` must be one of {', '.join(map(repr, REDUCTIONS))}; got {given}")


def _check_legacy_flag(fn_name: str, arg: str, value: object) -> None:
    """``size_average``/``reduce`` are flags: a reduction name or an array there is a positional slip.

    ``F(x, y, None, "sum")`` sets ``size_average="sum"``, which torch reads as True: a mean, silently.

    >>> _check_legacy_flag("f", "size_average", "sum")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: f: `size_average` must be a bool or None (a deprecated torch flag); got a str ('sum')...
    """
    if value is None or isinstance(value, (bool, int)):
        return
    message = f"{fn_name}: `{arg}` must be a bool or None (a deprecated torch flag); got {_described(value)}"
    if isinstance(value, str):
        message += f". To choose the reduction, pass reduction={value!r} by keyword"
    raise TypeError(message)


def _described(value: object) -> str:
    """A str, a number or None as its repr; anything else (an array) by its type."""
    if value is None or isinstance(value, (str, int, float)):
        return f"a str ({value!r})" if isinstance(value, str) else repr(value)
    cls = type(value)
    return f"a {cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else f"a {cls.__name__}"
