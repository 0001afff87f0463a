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
        return from_legacy(size_average, reduce)
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated; use reduction='mean'", UserWarning, stacklevel=3)
        return "mean"
    for known in REDUCTIONS:
        if reduction == known:
            return known
    raise ValueError(f"{fn_name}: `reduction` must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduction!r}")
