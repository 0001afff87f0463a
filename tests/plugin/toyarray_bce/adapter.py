"""The adapter: the names of ``bce_compat.contract.AdapterModule``, plus a test bench."""

NAME = "toyarray"
INSTALL = "pip install ./tests/plugin"


def array_types():
    import toyarray

    return (toyarray.ToyArray,)


def namespace(x):
    import toyarray

    return toyarray.namespace


def version():
    import toyarray

    return toyarray.__version__


def values_are_concrete(x):
    return True


def engines():
    return ()


def bench():
    """NumPy data in and out, so bce_compat's conformance suite and tests can run on toyarray."""
    import toyarray

    from bce_compat.contract import Bench

    return Bench(NAME, toyarray, lambda values, dtype: toyarray.asarray(values, dtype), toyarray.to_numpy,
                 toyarray.asarray, dtypes=("float32", "float64"))
