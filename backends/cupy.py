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
