"""The ``reduction`` argument, including torch's legacy ``size_average``/``reduce`` pair."""

from __future__ import annotations

import warnings

REDUCTIONS = ("none", "mean", "sum")


def from_legacy(size_average, reduce) -> str:
    """torch's mapping: reduce=False -> "none"; else size_average=False -> "sum"; else "mean".

    >>> import warnings; warnings.simplefilter("ignore")
    >>> from_legacy(False, None)
    'sum'
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        f"size_average and reduce are deprecated; use reduction={reduction!r} instead",
        UserWarning,
        stacklevel=4,
    )
    return reduction


def resolve(fn_name: str, reduction, size_average=None, reduce=None) -> str:
    """The effective reduction; legacy arguments, when given, override ``reduction`` as in torch."""
    if size_average is not None or reduce is not None:
        return from_legacy(size_average, reduce)
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated; use reduction='mean'", UserWarning, stacklevel=3)
        return "mean"
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn_name}: `reduction` must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduction!r}")
    return reduction
