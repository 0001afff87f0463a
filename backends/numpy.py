"""NumPy backend: ``numpy.ndarray`` and NumPy scalars, through array-api-compat."""

NAME = "numpy"
INSTALL = "pip install numpy"


def array_types():
    import numpy

    return (numpy.ndarray, numpy.generic)


def namespace(x):
    import array_api_compat.numpy as xp

    return xp


def version():
    import numpy

    return numpy.__version__


def values_are_concrete(x):
    return True


def as_result(value):
    """NumPy reductions return scalars; a 0-d array keeps the result an ndarray like the input."""
    import numpy

    return numpy.asarray(value)


def check_array(fn, arg, value):
    """NumPy masked arrays are refused: their mask would be silently dropped (docs/contract.md §5)."""
    if type(value).__module__.startswith("numpy.ma"):
        raise TypeError(
            f"{fn}: `{arg}` is a NumPy masked array, whose mask bce_compat would ignore; pass its data "
            f"(`a.filled(...)`) and leave the masked elements out with `weight` (0 there) or `ignore_index`"
        )


def engines():
    from bce_compat.backends import numpy_fast

    return (numpy_fast.ENGINE,)


def bench():
    """The test bench: NumPy arrays as they are (no bfloat16 in NumPy itself)."""
    import numpy as np

    from bce_compat.contract import Bench

    def to_numpy(a):
        a = np.asarray(a)
        return a.astype(np.float64) if a.dtype.itemsize < 4 else a

    return Bench("numpy", np, lambda values, dtype: np.asarray(values, dtype=dtype), to_numpy, np.asarray,
                 dtypes=("float16", "float32", "float64"))
