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

import math

from bce_compat.backends import _float_dtypes

NAME = "paddle"
INSTALL = "pip install 'bce_compat[paddle]'"


def array_types():
    """Eager tensors, PIR graph values, and the legacy static ``Variable``."""
    import paddle

    return (paddle.Tensor, paddle.pir.Value, paddle.static.Variable)


def namespace(x):
    global _NAMESPACE
    if _NAMESPACE is None:
        _NAMESPACE = PaddleNamespace()
    return _NAMESPACE


def version():
    import paddle

    return paddle.__version__


def values_are_concrete(x):
    """Only an eager tensor holds values; a graph value is filled when the program runs."""
    import paddle

    return isinstance(x, paddle.Tensor) and paddle.in_dynamic_mode()


def engines():
    from bce_compat.backends import paddle_fast

    return (paddle_fast.ENGINE,)


_NAMESPACE = None
# is_float64 -> (exp rounds to 0 below, exp is normal above, shift for the subnormal range)
_EXP_UNDERFLOW = {False: (-104.0, -87.0, 32.0), True: (-746.0, -708.0, 64.0)}


class PaddleNamespace:
    """The part of the array-API standard the frontend uses, on Paddle ops.

    >>> xp = namespace(None); xp.sum(xp.exp(paddle.zeros([2]))).item()
    2.0
    """

    def __init__(self):
        import paddle

        self._paddle = paddle
        self.float16, self.bfloat16 = paddle.float16, paddle.bfloat16
        self.float32, self.float64 = paddle.float32, paddle.float64
        self._by_name = {n: getattr(paddle, n) for n in ("float16", "bfloat16", "float32", "float64")}
        self.log, self.log1p = paddle.log, paddle.log1p
        self.isnan, self.isinf = paddle.isnan, paddle.isinf
        self.logical_or, self.logical_and = paddle.logical_or, paddle.logical_and
        self.zeros_like, self.ones_like = paddle.zeros_like, paddle.ones_like
        self.full_like = paddle.full_like

    isdtype = staticmethod(_float_dtypes.isdtype)

    def result_type(self, *dtypes):
        return _float_dtypes.float_result_type(self._by_name, *dtypes)

    def astype(self, x, dtype):
        return x if x.dtype == dtype else self._paddle.cast(x, dtype)

    def where(self, condition, x1, x2):
        return self._paddle.where(condition, x1, x2)

    def exp(self, x):
        """paddle.exp, except where Paddle's vectorised kernel is wrong: deep underflow.

        Paddle 3.3's CPU exp returns 2.94e-39 for float32 exp(-700) and floors float64 results
        at 5.56e-309 (exact: 0 and subnormals). Below the normal range we compute
        exp(x + S) * exp(-S) instead, and below the subnormal range, the correctly rounded 0.
        """
        paddle = self._paddle
        zero_below, normal_above, shift = _EXP_UNDERFLOW[self._is_float64(x)]
        scaled = paddle.exp(x + shift) * math.exp(-shift)
        exact = paddle.where(x < normal_above, scaled, paddle.exp(x))
        return paddle.where(x < zero_below, paddle.zeros_like(x), exact)

    def _is_float64(self, x):
        return x.dtype == self._paddle.float64

    def sum(self, x):
        return self._paddle.sum(x)

    def any(self, x):
        return self._paddle.any(x)
