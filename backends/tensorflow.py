"""TensorFlow backend: ``tf.Tensor`` and ``tf.Variable``, with a thin array-API namespace."""

from bce_compat.backends import _float_dtypes

NAME = "tensorflow"
INSTALL = "pip install 'bce_compat[tf]'"


def array_types():
    import tensorflow as tf

    return (tf.Tensor, tf.Variable)


def namespace(x):
    global _NAMESPACE
    if _NAMESPACE is None:
        _NAMESPACE = TensorFlowNamespace()
    return _NAMESPACE


def version():
    import tensorflow as tf

    return tf.__version__


def values_are_concrete(x):
    import tensorflow as tf

    return tf.executing_eagerly()


def engines():
    return ()


_NAMESPACE = None


class TensorFlowNamespace:
    """The part of the array-API standard the frontend uses, on TF ops.

    >>> xp = namespace(None); float(xp.sum(xp.exp(tf.zeros([2]))))
    2.0
    """

    def __init__(self):
        import tensorflow as tf

        self._tf = tf
        self.float16, self.bfloat16 = tf.float16, tf.bfloat16
        self.float32, self.float64 = tf.float32, tf.float64
        self._by_name = {n: getattr(tf, n) for n in ("float16", "bfloat16", "float32", "float64")}
        self.exp, self.log, self.log1p = tf.math.exp, tf.math.log, tf.math.log1p
        self.isnan, self.isinf = tf.math.is_nan, tf.math.is_inf
        self.logical_or, self.logical_and = tf.math.logical_or, tf.math.logical_and
        self.zeros_like, self.ones_like = tf.zeros_like, tf.ones_like
        self.where, self.sum, self.any = tf.where, tf.reduce_sum, tf.reduce_any

    isdtype = staticmethod(_float_dtypes.isdtype)

    def result_type(self, *dtypes):
        return _float_dtypes.float_result_type(self._by_name, *dtypes)

    def astype(self, x, dtype):
        return x if x.dtype == dtype else self._tf.cast(x, dtype)

    def full_like(self, x, fill_value):
        return self._tf.fill(self._tf.shape(x), self._tf.constant(fill_value, dtype=x.dtype))
