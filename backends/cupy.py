"""CuPy backend: ``cupy.ndarray`` on the GPU, through array-api-compat."""

NAME = "cupy"
INSTALL = "pip install 'bce_compat[cupy]'"


def array_types():
    import cupy

    return (cupy.ndarray,)


def namespace(x):
    import array_api_compat.cupy as xp

    return xp


def version():
    import cupy

    return cupy.__version__


def values_are_concrete(x):
    return True


def engines():
    return ()


def bench():
    """The test bench: arrays on the current GPU (ImportError without one, so the bench is absent)."""
    import cupy
    import numpy as np

    from bce_compat.contract import Bench

    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy installed, no usable GPU
        raise ImportError(f"cupy has no GPU: {exc}") from exc

    def to_numpy(a):
        a = cupy.asnumpy(a)
        return a.astype(np.float64) if a.dtype.itemsize < 4 else a

    return Bench("cupy", cupy, lambda values, dtype: cupy.asarray(np.asarray(values, dtype=dtype)), to_numpy,
                 cupy.asarray, dtypes=("float16", "float32", "float64"))
