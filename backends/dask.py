"""Dask backend: lazy ``dask.array.Array`` in, lazy array out, through array-api-compat."""

NAME = "dask"
INSTALL = "pip install 'bce_compat[dask]'"


def array_types():
    import dask.array

    return (dask.array.Array,)


def namespace(x):
    import array_api_compat.dask.array as xp

    return xp


def version():
    import dask

    return dask.__version__


def values_are_concrete(x):
    return False  # reading values would compute the whole graph


def fast_paths():
    return {}
