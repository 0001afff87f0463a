"""PaddlePaddle backend: ``paddle.Tensor`` in dygraph mode, with a thin array-API namespace."""

from bce_compat.backends import _float_dtypes

NAME = "paddle"
INSTALL = "pip install 'bce_compat[paddle]'"


def array_types():
    import paddle

    return (paddle.Tensor,)


def namespace(x):
    global _NAMESPACE
    if _NAMESPACE is None:
        _NAMESPACE = PaddleNamespace()
    return _NAMESPACE


def version():
    import paddle

    return paddle.__version__


def values_are_concrete(x):
    import paddle

    return paddle.in_dynamic_mode()


def fast_paths():
    return {}


_NAMESPACE = None


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
        self.exp, self.log, self.log1p = paddle.exp, paddle.log, paddle.log1p
        self.isnan, self.logical_or = paddle.isnan, paddle.logical_or
        self.zeros_like, self.ones_like = paddle.zeros_like, paddle.ones_like
        self.full_like = paddle.full_like

    isdtype = staticmethod(_float_dtypes.isdtype)

    def result_type(self, *dtypes):
        return _float_dtypes.float_result_type(self._by_name, *dtypes)

    def astype(self, x, dtype):
        return x if x.dtype == dtype else self._paddle.cast(x, dtype)

    def where(self, condition, x1, x2):
        return self._paddle.where(condition, x1, x2)

    def sum(self, x):
        return self._paddle.sum(x)

    def any(self, x):
        return self._paddle.any(x)
