"""Dask backend: lazy ``dask.array.Array`` in, lazy array out, through array-api-compat.

The math runs chunk by chunk and ``sum``/``mean`` are Dask's own tree reductions, so the loss
over an array larger than memory streams through it. Nothing is computed until ``.compute()``;
therefore the probability BCE's [0, 1] value check is skipped (it would compute the graph).
"""

import sys

NAME = "dask"
INSTALL = "pip install 'bce_compat[dask]'"
NUMPY_OPERANDS = True  # the library's own operations accept NumPy arrays beside its own


def array_types():
    array = sys.modules.get("dask.array")  # `import dask` alone cannot have made a dask array
    return () if array is None else (array.Array,)


def namespace(x):
    import array_api_compat.dask.array as xp

    return xp


def version():
    import dask

    return dask.__version__


def values_are_concrete(x):
    return False  # reading values would compute the whole graph


def engines():
    return ()


def bench():
    """The test bench: one-chunk dask arrays from NumPy, computed to read them back."""
    import dask
    import dask.array as da
    import numpy as np

    from bce_compat.contract import Bench

    def to_numpy(a):
        a = np.asarray(a.compute() if hasattr(a, "compute") else a)
        return a.astype(np.float64) if a.dtype.itemsize < 4 else a

    return Bench("dask", dask, lambda values, dtype: da.from_array(np.asarray(values, dtype=dtype), chunks=-1),
                 to_numpy, lambda values: da.from_array(values, chunks=-1),
                 dtypes=("float16", "float32", "float64"), lazy=True)
