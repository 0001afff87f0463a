"""Any array with ``__array_namespace__`` (array-api-strict, and libraries that follow the standard)."""

NAME = "array_api"
INSTALL = "use arrays that implement __array_namespace__ (e.g. pip install array-api-strict)"
BENCH_NAME = "array_api_strict"  # the standard's reference library tests this adapter


def array_types():
    return ()  # matched by the __array_namespace__ attribute instead, see bce_compat._registry


def namespace(x):
    return x.__array_namespace__()


def version():
    return "array API standard"


def values_are_concrete(x):
    return True


def engines():
    return ()


def bench():
    """The test bench: array-api-strict, which offers nothing beyond the standard."""
    import array_api_strict as xps
    import numpy as np

    from bce_compat.contract import Bench

    def asarray(values, dtype):
        return xps.asarray(np.asarray(values, dtype=np.float64), dtype=getattr(xps, dtype))

    return Bench("array_api_strict", xps, asarray, np.from_dlpack, xps.asarray, dtypes=("float32", "float64"))
