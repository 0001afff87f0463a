"""PaddlePaddle backend: ``paddle.Tensor`` in dygraph mode, graph values in static programs.

In a static-graph program (``paddle.enable_static()``, ``paddle.static.data``) and inside
``paddle.jit.to_static`` the inputs are graph values (``paddle.pir.Value``; legacy programs:
``paddle.static.Variable``): the loss then adds Paddle ops to the program, and checks on
values are skipped (there are none yet).

>>> import paddle
>>> from bce_compat.backends import paddle as adapter
>>> adapter.values_are_concrete(paddle.zeros([2])), adapter.NAME
(True, 'paddle')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bce_compat.backends import _float_dtypes

if TYPE_CHECKING:
    from bce_compat.contract import Bench, NamedEngine

NAME = "paddle"
INSTALL = "pip install 'bce_compat[paddle]'"
AUTOGRAD = True


def array_types() -> tuple[type, ...]:
    """Eager tensors, PIR graph values, and the legacy static ``Variable``."""
    import paddle

    return (paddle.Tensor, paddle.pir.Value, paddle.static.Variable)


def namespace(x: Any) -> PaddleNamespace:
    global _NAMESPACE
    if _NAMESPACE is None:
        _NAMESPACE = PaddleNamespace()
    if not _PIR_NOTICE_ABSORBED and not isinstance(x, _NAMESPACE._paddle.Tensor):
        _absorb_pir_out_notice(_NAMESPACE._paddle)
    return _NAMESPACE


def version() -> str:
    import paddle

    return paddle.__version__


def values_are_concrete(x: Any) -> bool:
    """Only an eager tensor holds values; a graph value is filled when the program runs."""
    import paddle

    return isinstance(x, paddle.Tensor) and paddle.in_dynamic_mode()


def engines() -> tuple[NamedEngine, ...]:
    from bce_compat.backends import paddle_fast

    return (paddle_fast.ENGINE,)


_NAMESPACE: PaddleNamespace | None = None
_PIR_OUT_NOTICE = b"Paddle static graph(PIR) not support input out tensor for now"
_PIR_NOTICE_ABSORBED = False


def _absorb_pir_out_notice(paddle: Any) -> None:
    """Have Paddle log its PIR ``out`` notice now, into a filtered fd 2, so that our graph ops log nothing.

    Paddle 3.3's Python ops pass ``out=None`` to their C ops in a PIR program (``+``, ``-``,
    ``/``, ``==``, ``<``, ``<=``, ``>=``, ``**``, ``clip``, ``mean``, ``where`` on graph values),
    and the first such call in a process logs "W... eager_utils.cc:3584] Paddle static graph(PIR)
    not support input out tensor for now!!!!!", although no ``out`` was given. paddle.nn's losses
    call C ops directly and never log it; the portable path uses these operators. So before the
    first graph op of ours, one such op goes into a throwaway program with that line dropped.
    """
    global _PIR_NOTICE_ABSORBED
    if not paddle.framework.in_pir_mode():
        return  # a legacy (non-PIR) program: its ops take no `out`
    from bce_compat._stderr_lines import fd2_filtered

    with fd2_filtered(lambda line: _PIR_OUT_NOTICE in line):
        with paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
            probe = paddle.static.data("bce_compat_probe", [1], "float32")
            paddle.add(probe, probe)
    _PIR_NOTICE_ABSORBED = True


# is_float64 -> (exp rounds to 0 below, exp is normal above, shift for the subnormal range)
_EXP_UNDERFLOW = {False: (-104.0, -87.0, 32.0), True: (-746.0, -708.0, 64.0)}


class PaddleNamespace:
    """The array-API namespace (``contract.ArrayNamespace``) on Paddle ops.

    >>> import paddle
    >>> xp = namespace(paddle.zeros([2])); xp.sum(xp.exp(paddle.zeros([2]))).item()
    2.0
    """

    def __init__(self):
        import paddle

        self._paddle = paddle
        self.bool = paddle.bool
        self.float16, self.bfloat16 = paddle.float16, paddle.bfloat16
        self.float32, self.float64 = paddle.float32, paddle.float64
        self._by_name = {n: getattr(paddle, n) for n in ("float16", "bfloat16", "float32", "float64")}
        for name, op in _PADDLE_UNARY.items():
            setattr(self, name, getattr(paddle, op))

    isdtype = staticmethod(_float_dtypes.isdtype)

    # --- creation
    def asarray(self, obj, /, *, dtype=None, device=None, copy=None):
        if isinstance(obj, array_types()):
            return obj if dtype is None else self.astype(obj, dtype)
        return self._paddle.to_tensor(obj, dtype=dtype, place=device)

    def zeros(self, shape, *, dtype=None, device=None):
        return self._paddle.zeros(_shape(shape), dtype=dtype or self.float32)

    def ones(self, shape, *, dtype=None, device=None):
        return self._paddle.ones(_shape(shape), dtype=dtype or self.float32)

    def full(self, shape, fill_value, *, dtype=None, device=None):
        return self._paddle.full(_shape(shape), fill_value, dtype=dtype or self.float32)

    def zeros_like(self, x, /, *, dtype=None, device=None):
        return self.full_like(x, 0, dtype=dtype, device=device)

    def ones_like(self, x, /, *, dtype=None, device=None):
        return self.full_like(x, 1, dtype=dtype, device=device)

    def full_like(self, x, /, fill_value, *, dtype=None, device=None):
        if device is None and not isinstance(x, self._paddle.Tensor):
            # A graph value has no place (Paddle warns when asked); its ops run on the current device
            device = self._paddle.get_device()
        return self._paddle.full_like(x, fill_value, dtype=dtype, device=device)

    # --- data types
    def result_type(self, *arrays_and_dtypes):
        dtypes = [getattr(a, "dtype", a) for a in arrays_and_dtypes]  # paddle.dtype has no .dtype
        return _float_dtypes.float_result_type(self._by_name, *dtypes)

    def astype(self, x, dtype, /, *, copy=True, device=None):
        return x if x.dtype == dtype else self._paddle.cast(x, dtype)

    # --- element-wise (operators accept Python scalars and broadcast)
    def add(self, x1, x2, /):
        return x1 + x2

    def subtract(self, x1, x2, /):
        return x1 - x2

    def multiply(self, x1, x2, /):
        return x1 * x2

    def divide(self, x1, x2, /):
        return x1 / x2

    def equal(self, x1, x2, /):
        return x1 == x2

    def not_equal(self, x1, x2, /):
        return x1 != x2

    def less(self, x1, x2, /):
        return x1 < x2

    def less_equal(self, x1, x2, /):
        return x1 <= x2

    def greater(self, x1, x2, /):
        return x1 > x2

    def greater_equal(self, x1, x2, /):
        return x1 >= x2

    def maximum(self, x1, x2, /):
        return self._paddle.maximum(*self._tensors(x1, x2))

    def minimum(self, x1, x2, /):
        return self._paddle.minimum(*self._tensors(x1, x2))

    def clip(self, x, /, min=None, max=None):
        return self._paddle.clip(x, min=min, max=max)

    def logical_and(self, x1, x2, /):
        return self._paddle.logical_and(x1, x2)

    def logical_or(self, x1, x2, /):
        return self._paddle.logical_or(x1, x2)

    def logical_xor(self, x1, x2, /):
        return self._paddle.logical_xor(x1, x2)

    def where(self, condition, x1, x2, /):
        return self._paddle.where(condition, *self._tensors(x1, x2))

    def _tensors(self, x1, x2):
        """Python scalars as 0-d tensors of the other argument's dtype (Paddle's ops want tensors)."""
        if not hasattr(x1, "dtype"):
            x1 = self._paddle.full([], x1, dtype=x2.dtype)
        if not hasattr(x2, "dtype"):
            x2 = self._paddle.full([], x2, dtype=x1.dtype)
        return x1, x2

    def exp(self, x, /):
        """paddle.exp, except where Paddle's vectorised kernel is wrong: deep underflow.

        Paddle 3.3's CPU exp returns 2.94e-39 for float32 exp(-700) and floors float64 results
        at 5.56e-309 (exact: 0 and subnormals). Below the normal range we compute
        exp(x + S) * exp(-S) instead, and below the subnormal range, the correctly rounded 0.
        """
        paddle = self._paddle
        zero_below, normal_above, shift = _EXP_UNDERFLOW[self._is_float64(x)]
        scaled = paddle.exp(x + shift) * math.exp(-shift)
        exact = paddle.where(x < normal_above, scaled, paddle.exp(x))
        return paddle.where(x < zero_below, self.zeros_like(x), exact)

    def log1p(self, x, /):
        """log(1 + x) from log, add, subtract, divide and where: Paddle 3.3's log1p has no
        second-derivative kernel (``paddle.grad(..., create_graph=True)`` then fails), these do.

        u = 1 + x is rounded; log(u) - ((u - 1) - x) / u removes that rounding to first order
        ((u - 1) - x is exact), which keeps the result within about 1 ulp of log1p, and exactly
        x where u rounds to 1. Its derivative 1/u + ((u - 1) - x)/u**2 is as accurate.
        """
        u = 1 + x
        exact_u = self._paddle.logical_and(self._paddle.isfinite(u), u != 0)  # 1 + x = 0 or inf: log(u) is right
        safe_u = self._paddle.where(exact_u, u, self.ones_like(u))
        correction = self._paddle.where(exact_u, ((safe_u - 1) - x) / safe_u, self.zeros_like(u))
        return self._paddle.log(u) - correction

    def _is_float64(self, x):
        return x.dtype == self._paddle.float64

    # --- reductions
    def sum(self, x, /, *, axis=None, dtype=None, keepdims=False):
        return self._paddle.sum(x if dtype is None else self.astype(x, dtype), axis=axis, keepdim=keepdims)

    def prod(self, x, /, *, axis=None, dtype=None, keepdims=False):
        return self._paddle.prod(x if dtype is None else self.astype(x, dtype), axis=axis, keepdim=keepdims)

    def mean(self, x, /, *, axis=None, keepdims=False):
        return self._paddle.mean(x, axis=axis, keepdim=keepdims)

    def max(self, x, /, *, axis=None, keepdims=False):
        return self._paddle.max(x, axis=axis, keepdim=keepdims)

    def min(self, x, /, *, axis=None, keepdims=False):
        return self._paddle.min(x, axis=axis, keepdim=keepdims)

    def any(self, x, /, *, axis=None, keepdims=False):
        return self._paddle.any(x, axis=axis, keepdim=keepdims)

    def all(self, x, /, *, axis=None, keepdims=False):
        return self._paddle.all(x, axis=axis, keepdim=keepdims)

    # --- manipulation
    def reshape(self, x, /, shape, *, copy=None):
        return self._paddle.reshape(x, _shape(shape))

    def broadcast_to(self, x, /, shape):
        return self._paddle.broadcast_to(x, _shape(shape))

    def broadcast_arrays(self, *arrays):
        return self._paddle.broadcast_tensors(list(arrays))

    def expand_dims(self, x, /, *, axis=0):
        return self._paddle.unsqueeze(x, axis)


# array-API name -> Paddle function, for the one-argument element-wise functions
_PADDLE_UNARY = {
    "abs": "abs", "negative": "neg", "expm1": "expm1", "log": "log", "sqrt": "sqrt",
    "square": "square", "isnan": "isnan", "isinf": "isinf", "isfinite": "isfinite", "logical_not": "logical_not",
}


def _shape(shape: int | Sequence[int]) -> list[int]:
    return [shape] if isinstance(shape, int) else list(shape)


def bench() -> Bench:
    """The test bench: dygraph tensors from NumPy, gradients by ``paddle.grad``."""
    import numpy as np
    import paddle

    from bce_compat.contract import Bench

    def asarray(values, dtype):
        return paddle.to_tensor(np.asarray(values, dtype=np.float64)).astype(dtype)

    def to_numpy(t):
        if t.dtype in (paddle.float16, paddle.bfloat16):
            t = t.astype("float64")
        return np.asarray(t.numpy())

    def value_and_grad(fn, args, wrt):
        args = [a.detach() if hasattr(a, "detach") else a for a in args]
        for i in wrt:
            args[i].stop_gradient = False
        value = fn(*args)
        grads = paddle.grad(value.sum(), [args[i] for i in wrt], allow_unused=True)
        return value, [None if g is None else to_numpy(g) for g in grads]

    return Bench("paddle", paddle, asarray, to_numpy, paddle.to_tensor, value_and_grad)
