"""Any array with ``__array_namespace__`` (array-api-strict, and libraries that follow the standard)."""

NAME = "array_api"
INSTALL = "use arrays that implement __array_namespace__ (e.g. pip install array-api-strict)"


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
