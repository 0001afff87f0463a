"""toyarray: a minimal array library, NumPy values behind a wrapper of its own.

It has no ``__array_namespace__`` and is no NumPy subclass, so only its bce_compat plugin
(``toyarray_bce``) can take its arrays. ``namespace`` is its array-API namespace.

>>> x = asarray([1.0, 2.0]); namespace.sum(x * 2)
ToyArray(6.0)
"""

from __future__ import annotations

import operator

import array_api_compat.numpy as _xp
import numpy as _np

__version__ = "0.1.0"


class ToyArray:
    """An array: a NumPy array inside, reachable only through this library."""

    __slots__ = ("_values",)

    def __init__(self, values):
        self._values = _np.asarray(values)

    shape = property(lambda self: self._values.shape)
    dtype = property(lambda self: self._values.dtype)
    ndim = property(lambda self: self._values.ndim)
    size = property(lambda self: self._values.size)
    device = property(lambda self: "cpu")

    def __repr__(self):
        return f"ToyArray({self._values.tolist()!r})"

    def __bool__(self):
        return bool(self._values)

    def __float__(self):
        return float(self._values)

    def __int__(self):
        return int(self._values)

    def __index__(self):
        return operator.index(self._values)

    def __getitem__(self, key):
        return _wrap(self._values[_unwrap(key)])


def _unwrap(value):
    if isinstance(value, ToyArray):
        return value._values
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    if isinstance(value, (_np.ndarray, _np.generic)):
        return ToyArray(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _operator(op, reflected=False):
    def method(self, other):
        a, b = (other, self) if reflected else (self, other)
        return _wrap(op(_unwrap(a), _unwrap(b)))

    return method


for _name in ("add", "sub", "mul", "truediv", "pow", "lt", "le", "gt", "ge", "eq", "ne", "and", "or", "xor"):
    _op = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    setattr(ToyArray, f"__{_name}__", _operator(_op))
    setattr(ToyArray, f"__r{_name}__", _operator(_op, reflected=True))
ToyArray.__neg__ = lambda self: ToyArray(-self._values)
ToyArray.__invert__ = lambda self: ToyArray(~self._values)
ToyArray.__abs__ = lambda self: ToyArray(abs(self._values))
ToyArray.__hash__ = None


class _Namespace:
    """The array-API functions on ToyArrays: NumPy's (array-api-compat), unwrapped and rewrapped."""

    def __init__(self):
        for name in dir(_xp):
            fn = getattr(_xp, name)
            if name.startswith("_"):
                continue
            setattr(self, name, self._lift(fn) if callable(fn) and not isinstance(fn, type) else fn)

    @staticmethod
    def _lift(fn):
        def lifted(*args, **kwargs):
            return _wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

        lifted.__name__ = getattr(fn, "__name__", "lifted")
        return lifted


namespace = _Namespace()


def asarray(values, dtype=None) -> ToyArray:
    """A ToyArray of ``values`` (any NumPy-convertible data)."""
    return ToyArray(_np.asarray(values, dtype=dtype))


def to_numpy(a: ToyArray) -> _np.ndarray:
    """The values of ``a`` as a NumPy array (a copy)."""
    return _np.array(a._values)
