"""What a call's argument types, dtypes and shapes decide, worked out once per such signature.

Dispatch, the dtype and shape checks of docs/contract.md §3 and §5 and the result dtype depend on nothing
else, so a training loop that calls the loss with the same kinds of arrays pays for them once;
only checks on values (BCE's [0, 1] range) run on every call. A bad call raises every time
(it is never remembered).

>>> import numpy as np
>>> from bce_compat._validate import ArgNames
>>> plan = plan_for("f", ArgNames(), np.zeros(3, np.float32), np.zeros(3, bool), None, 2.0)
>>> plan.backend.name, plan.out_dtype, plan.cast_to_float
('numpy', dtype('float32'), (True, False, False))
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from bce_compat._dispatch import PYTHON_NUMBER_TYPES, backend_of, is_array
from bce_compat._portable import portable
from bce_compat._registry import Backend, backend_for_type
from bce_compat._validate import (
    ArgNames,
    check_floating_input,
    check_is_array,
    check_same_shape,
    check_weight_shape,
    needs_float_cast,
)

_MAX_PLANS = 256  # distinct signatures kept; past that the memo starts afresh


class Plan(NamedTuple):
    backend: Backend
    xp: Any  # the array-API namespace of the inputs
    out_dtype: object  # the promoted dtype of every array argument (docs/contract.md §3)
    cast_to_float: tuple  # (target, weight, pos_weight): a bool/int array, cast to the input's dtype
    compute_dtype: object  # the portable path's: float64 for float32 (where usable), float32 for half precision
    portable: Callable[[Any], Any]  # the portable path for this signature (contract.Problem.portable)
    numpy_operands: tuple = (False, False, False)  # (target, weight, pos_weight): NumPy beside TF/JAX/Dask, converted
    memo: dict | None = None  # engines' own per-signature notes (contract.Problem.memo)
    casts: bool = False  # cast() changes an operand (not in the common call, which skips it)
    # the adapter's autocast(x, y, weight, pos_weight) for half-precision results: the arrays
    # widened to float32 where the library's autocast is on (torch), else None; checked per call
    autocast: Callable[..., tuple | None] | None = None

    def cast(self, x, y, weight, pos_weight) -> tuple:
        """``y, weight, pos_weight`` as arrays of ``x``'s library, bool/int ones cast to ``x``'s dtype."""
        if not self.casts:
            return y, weight, pos_weight
        xp = self.xp
        operands = (xp.asarray(a) if convert else a for a, convert in zip((y, weight, pos_weight), self.numpy_operands))
        return tuple(xp.astype(a, x.dtype) if cast else a for a, cast in zip(operands, self.cast_to_float))


_plans: dict = {}


def plan_for(fn: str, names: ArgNames, x, y, weight, pos_weight) -> Plan:
    """The plan for these arguments, validated; raises the docs/contract.md §5 errors for bad ones."""
    if _torch_compiling():
        # Dynamo may hash every key of the memo, and another library's dtype left there by an
        # earlier call (TF's C-level DType) is a graph break ("Untraceable C tp_hash"); tracing
        # runs once anyway.
        return _make_plan(fn, names, x, y, weight, pos_weight)
    key = _signature(x, y, weight, pos_weight)
    try:
        return _plans[key]
    except (KeyError, TypeError):  # new, or a dtype that cannot be hashed
        pass
    plan = _make_plan(fn, names, x, y, weight, pos_weight)
    if key is not None:
        _remember(key, plan)
    return plan


def _remember(key: tuple, plan: Plan) -> None:
    try:
        hash(key)
    except TypeError:  # a dtype that cannot be hashed: such calls are planned every time
        return
    if len(_plans) >= _MAX_PLANS:
        _plans.clear()
    _plans[key] = plan


def _torch_compiling() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and torch.compiler.is_compiling()


def _signature(x, y, weight, pos_weight):
    """Type, dtype and shape of each argument (type alone for numbers); None if one has no such key.

    The key is hashed once, by the memo's lookup (a Paddle dtype takes 0.5 µs to hash). Its
    dtypes are the objects themselves, not their ``id()``: a library may make a new dtype
    object on each read, and a dead object's id can come back as another dtype's.
    """
    try:  # input and target must be arrays; weights are often None (one call less each, in the hot path)
        return (
            (type(x), x.dtype, tuple(x.shape)),
            (type(y), y.dtype, tuple(y.shape)),
            None if weight is None else _arg_key(weight),
            None if pos_weight is None else _arg_key(pos_weight),
        )
    except (AttributeError, TypeError):  # not an array (the full checks will say so)
        return None


def _arg_key(a):
    kind = type(a)
    if kind in PYTHON_NUMBER_TYPES:
        return kind
    return kind, a.dtype, tuple(a.shape)


def _make_plan(fn: str, names: ArgNames, x, y, weight, pos_weight) -> Plan:
    check_is_array(fn, names.input, x)
    check_is_array(fn, names.target, y)
    backend = backend_of(fn, {names.input: x, names.target: y, names.weight: weight, names.pos_weight: pos_weight})
    check_array = getattr(backend.adapter, "check_array", None)  # an adapter's own refusals (NumPy: masked arrays)
    if check_array is not None:
        for arg, value in ((names.input, x), (names.target, y), (names.weight, weight), (names.pos_weight, pos_weight)):
            if is_array(value):
                check_array(fn, arg, value)
    xp = backend.namespace(x)
    check_floating_input(fn, names.input, xp, x)
    cast = tuple(
        needs_float_cast(fn, arg, xp, value)
        for arg, value in ((names.target, y), (names.weight, weight), (names.pos_weight, pos_weight))
    )
    check_same_shape(fn, names, x, y)
    check_weight_shape(fn, names.weight, names, weight, x)
    check_weight_shape(fn, names.pos_weight, names, pos_weight, x)
    dtypes = [x.dtype] + [x.dtype if c else a.dtype for a, c in zip((y, weight, pos_weight), cast) if is_array(a)]
    promote = getattr(backend.adapter, "result_type", None)  # an adapter's own (torch: traceable by Dynamo)
    out_dtype = promote(dtypes) if promote is not None else xp.result_type(*dtypes)
    compute = compute_dtype(backend, xp, x, out_dtype)
    numpy_operands = tuple(
        is_array(a) and backend.name != "numpy" and backend_for_type(type(a)) is not backend_for_type(type(x))
        for a in (y, weight, pos_weight)
    )
    casts = any(cast) or any(numpy_operands)
    autocast = getattr(backend.adapter, "autocast", None) if _is_half(xp, out_dtype) else None
    return Plan(
        backend, xp, out_dtype, cast, compute, partial(_portable, xp, compute), numpy_operands, {}, casts, autocast
    )


_HALF_NAMES = ("float16", "bfloat16")


def _is_half(xp: Any, dtype: Any) -> bool:
    # A NumPy dtype by its name: a namespace may lack float16 while its arrays hold it
    # (array_api_compat's Dask namespace). Others as the namespace's own dtype, looked up by name:
    # a NumPy dtype compares equal to None (np.dtype(None) is float64).
    if getattr(dtype, "name", None) in _HALF_NAMES:
        return True
    return any(hasattr(xp, n) and dtype == getattr(xp, n) for n in _HALF_NAMES)


def compute_dtype(backend: Backend, xp: Any, x: Any, out_dtype: Any) -> Any:
    """The portable path's compute dtype: float32 for float16/bfloat16 results (rounded once),
    float64 for float32 results where the backend can compute in float64 for ``x`` (the float32
    formula in float32 ops loses up to 6 ulp, docs/contract.md §4; in float64 it rounds once),
    else the result dtype. An adapter says where float64 is not available with
    ``float64_available(x)`` (JAX without x64, torch on MPS).
    """
    if _is_half(xp, out_dtype):
        return xp.float32
    if out_dtype == xp.float32 and hasattr(xp, "float64"):
        available = getattr(backend.adapter, "float64_available", None)
        if available is None or available(x):
            return xp.float64
    return out_dtype


def _portable(xp: Any, compute: Any, problem: Any) -> Any:
    return portable(problem, xp, compute)
