"""TensorFlow backend: ``tf.Tensor`` and ``tf.Variable``, with a thin array-API namespace."""

import numpy as np

from bce_compat.backends import _float_dtypes

NAME = "tensorflow"
INSTALL = "pip install 'bce_compat[tf]'"
NUMPY_OPERANDS = True  # TF's own operations accept NumPy arrays beside tensors (tf.nn losses take NumPy labels)
AUTOGRAD = True


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
    from bce_compat.backends import tensorflow_fast

    return (tensorflow_fast.ENGINE,)


_NAMESPACE: "TensorFlowNamespace | None" = None


def constant(value, dtype):
    """``value`` as a 0-d tensor of ``dtype``, a number rounded once to it.

    Made from a NumPy value, not a Python number: TF caches the constants it makes from Python
    numbers by value, where 0.0 == -0.0 (after a ``tf.constant(-0.0)``, ``tf.constant(0.0)`` is
    -0.0). Half dtypes are rounded here first: TF's cast and ml_dtypes round a double through
    float32, twice.

    >>> import tensorflow as tf
    >>> float(constant(1.0 + 2.0**-8 + 2.0**-30, tf.bfloat16))  # above the midpoint: up
    1.0078125
    """
    import tensorflow as tf

    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = _float_dtypes.once_rounded(value, _float_dtypes.dtype_name(dtype))
    with np.errstate(over="ignore"):  # out of the dtype's range: inf, as TF's own conversion gives
        return tf.constant(np.asarray(value, dtype.as_numpy_dtype))


class TensorFlowNamespace:
    """The array-API namespace (``contract.ArrayNamespace``) on TF ops.

    >>> import tensorflow as tf
    >>> xp = namespace(tf.zeros([2])); float(xp.sum(xp.exp(tf.zeros([2]))))
    2.0
    """

    def __init__(self):
        import tensorflow as tf

        self._tf = tf
        self.bool = tf.bool
        self.float16, self.bfloat16 = tf.float16, tf.bfloat16
        self.float32, self.float64 = tf.float32, tf.float64
        self._by_name = {n: getattr(tf, n) for n in ("float16", "bfloat16", "float32", "float64")}
        for name, op in _TF_FUNCTIONS.items():
            setattr(self, name, getattr(tf.math, op))
        self.where = tf.where

    isdtype = staticmethod(_float_dtypes.isdtype)

    # --- creation
    def asarray(self, obj, /, *, dtype=None, device=None, copy=None):
        if isinstance(obj, (self._tf.Tensor, self._tf.Variable)):
            return obj if dtype is None else self.astype(obj, dtype)
        return self._tf.convert_to_tensor(obj, dtype=dtype)

    def zeros(self, shape, *, dtype=None, device=None):
        return self._tf.zeros(shape, dtype=dtype or self.float32)

    def ones(self, shape, *, dtype=None, device=None):
        return self._tf.ones(shape, dtype=dtype or self.float32)

    def full(self, shape, fill_value, *, dtype=None, device=None):
        return self._tf.fill(shape, self._fill_value(fill_value, dtype or self.float32))

    def zeros_like(self, x, /, *, dtype=None, device=None):
        return self._tf.zeros_like(x, dtype=dtype)

    def ones_like(self, x, /, *, dtype=None, device=None):
        return self._tf.ones_like(x, dtype=dtype)

    def full_like(self, x, /, fill_value, *, dtype=None, device=None):
        return self._tf.fill(self._tf.shape(x), self._fill_value(fill_value, dtype or x.dtype))

    def _fill_value(self, value, dtype):
        return constant(value, dtype)

    # --- data types
    def result_type(self, *arrays_and_dtypes):
        dtypes = [a.dtype if isinstance(a, (self._tf.Tensor, self._tf.Variable)) else a for a in arrays_and_dtypes]
        return _float_dtypes.float_result_type(self._by_name, *dtypes)

    def astype(self, x, dtype, /, *, copy=True, device=None):
        return x if x.dtype == dtype else self._tf.cast(x, dtype)

    # --- element-wise (besides the plain tf.math ones set in __init__)
    def clip(self, x, /, min=None, max=None):
        tf = self._tf
        if min is not None:
            x = tf.math.maximum(x, tf.cast(min, x.dtype))
        if max is not None:
            x = tf.math.minimum(x, tf.cast(max, x.dtype))
        return x

    # --- reductions
    def sum(self, x, /, *, axis=None, dtype=None, keepdims=False):
        return self._tf.reduce_sum(x if dtype is None else self.astype(x, dtype), axis=axis, keepdims=keepdims)

    def prod(self, x, /, *, axis=None, dtype=None, keepdims=False):
        return self._tf.reduce_prod(x if dtype is None else self.astype(x, dtype), axis=axis, keepdims=keepdims)

    def mean(self, x, /, *, axis=None, keepdims=False):
        return self._tf.reduce_mean(x, axis=axis, keepdims=keepdims)

    def max(self, x, /, *, axis=None, keepdims=False):
        return self._tf.reduce_max(x, axis=axis, keepdims=keepdims)

    def min(self, x, /, *, axis=None, keepdims=False):
        return self._tf.reduce_min(x, axis=axis, keepdims=keepdims)

    def any(self, x, /, *, axis=None, keepdims=False):
        return self._tf.reduce_any(x, axis=axis, keepdims=keepdims)

    def all(self, x, /, *, axis=None, keepdims=False):
        return self._tf.reduce_all(x, axis=axis, keepdims=keepdims)

    # --- manipulation
    def reshape(self, x, /, shape, *, copy=None):
        return self._tf.reshape(x, shape)

    def broadcast_to(self, x, /, shape):
        return self._tf.broadcast_to(x, shape)

    def broadcast_arrays(self, *arrays):
        shape = self._tf.shape(arrays[0])
        for a in arrays[1:]:
            shape = self._tf.broadcast_dynamic_shape(shape, self._tf.shape(a))
        return [self._tf.broadcast_to(a, shape) for a in arrays]

    def expand_dims(self, x, /, *, axis=0):
        return self._tf.expand_dims(x, axis)


# array-API name -> tf.math function (these accept Python scalars and broadcast)
_TF_FUNCTIONS = {
    "abs": "abs", "negative": "negative", "exp": "exp", "expm1": "expm1", "log": "log", "log1p": "log1p",
    "sqrt": "sqrt", "square": "square", "isnan": "is_nan", "isinf": "is_inf", "isfinite": "is_finite",
    "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "truediv",
    "maximum": "maximum", "minimum": "minimum", "equal": "equal", "not_equal": "not_equal",
    "less": "less", "less_equal": "less_equal", "greater": "greater", "greater_equal": "greater_equal",
    "logical_and": "logical_and", "logical_or": "logical_or", "logical_not": "logical_not",
    "logical_xor": "logical_xor",
}


def bench():
    """The test bench: eager tensors from NumPy, gradients by ``tf.GradientTape``."""
    import tensorflow as tf

    from bce_compat.contract import Bench

    def asarray(values, dtype):
        return tf.cast(tf.constant(np.asarray(values, dtype=np.float64)), getattr(tf, dtype))

    def to_numpy(t):
        if t.dtype in (tf.float16, tf.bfloat16):
            t = tf.cast(t, tf.float64)
        return np.asarray(t.numpy())

    def value_and_grad(fn, args, wrt):
        with tf.GradientTape() as tape:
            for i in wrt:
                tape.watch(args[i])
            value = fn(*args)
            total = tf.reduce_sum(value)
        grads = tape.gradient(total, [args[i] for i in wrt])
        return value, [None if g is None else to_numpy(g) for g in grads]

    return Bench("tensorflow", tf, asarray, to_numpy, tf.constant, value_and_grad)
