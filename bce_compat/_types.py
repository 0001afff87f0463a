"""Type aliases of the public API.

bce_compat accepts the arrays of many libraries (NumPy, torch, Paddle, TensorFlow, JAX, Dask,
CuPy, any array-API array), which share no common static type, so array arguments are typed
``Array`` (an alias of ``Any``): the value must be an array of a backend ``bce-compat backends``
lists, and the result is an array of that same library. ``Weight`` is such an array, a Python
number, or None (no weighting).

>>> from typing import get_args
>>> get_args(Reduction)
('none', 'mean', 'sum')
"""

from __future__ import annotations

from typing import Any, TypeAlias

from bce_compat.contract import Reduction

Array: TypeAlias = Any
"""An array of any supported library (``numpy.ndarray``, ``torch.Tensor``, ``paddle.Tensor``, ...)."""

Weight: TypeAlias = Any
"""An array broadcastable to the input's shape, a Python ``int``/``float``, or None."""

__all__ = ["Array", "Reduction", "Weight"]
