"""Every private Paddle API the Paddle engine uses, in one place, each with its reason.

Speed (bench/private_apis.py measures each against its public fallback, ``BCE_COMPAT_PUBLIC_ONLY=1``;
docs/architecture.md lists the savings that keep it here):
- ``empty_like(x, dtype)``: the ``empty_like`` kernel without its Python wrapper, for the pass's
  outputs (the public ``paddle.empty_like`` costs 15-25 µs more per call);
- ``scalar(value, dtype)``: a 0-d CPU tensor by the ``full`` kernel (the public ``paddle.full``
  costs 15-25 µs more), for mean and sum results.

Safety:
- ``capacity(t)``: the bytes the tensor's allocation holds from its first element
  (``_holder_size`` minus ``_offset``), so that the pass refuses a view past a freed or shrunk
  allocation; without these names, None (the pass still refuses a null data pointer).

Each is checked against the Paddle versions it was verified with (``VERIFIED``); outside them,
or with ``$BCE_COMPAT_PUBLIC_ONLY`` set, the public fallback is used.
"""

from __future__ import annotations

import os
from typing import Any

import paddle

VERIFIED = ((3, 0), (3, 3))  # Paddle versions, inclusive, on which these private names were checked


def _paddle_version() -> tuple[int, int]:
    try:
        major, minor = (int(part) for part in paddle.__version__.split(".")[:2])
    except ValueError:  # a development build ("0.0.0" or a commit hash)
        return (0, 0)
    return major, minor


PUBLIC_ONLY = bool(os.environ.get("BCE_COMPAT_PUBLIC_ONLY")) or not (
    VERIFIED[0] <= _paddle_version() <= VERIFIED[1]
)
_CPU = paddle.CPUPlace()
_ops = None if PUBLIC_ONLY else getattr(paddle, "_C_ops", None)


def empty_like(x: Any, dtype: Any) -> Any:
    """An uninitialised CPU tensor of x's shape and ``dtype``."""
    if _ops is not None:
        try:
            return _ops.empty_like(x, dtype, _CPU)
        except (AttributeError, TypeError, ValueError):  # another internal signature
            pass
    return paddle.empty_like(x, dtype=dtype)


def scalar(value: float, dtype: Any) -> Any:
    """A 0-d CPU tensor holding ``value`` converted to ``dtype`` by Paddle (C's double -> float
    for float32: one rounding; callers round float16/bfloat16 values themselves first)."""
    if _ops is not None:
        try:
            return _ops.full([], value, dtype, _CPU)
        except (AttributeError, TypeError, ValueError):
            pass
    return paddle.full([], value, dtype=dtype)


def capacity(t: Any) -> int | None:
    """Bytes the allocation behind ``t`` holds from its first element, or None where Paddle
    does not say."""
    try:
        return int(t._holder_size()) - int(t._offset())
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return None
