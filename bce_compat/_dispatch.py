"""Pick the one backend that owns all the arrays of a call, or say clearly why there is none."""

from __future__ import annotations

from bce_compat._registry import Backend, backend_for_type, describe_backends

PYTHON_NUMBER_TYPES = (bool, int, float)  # exactly: subclasses (IntEnum, ...) are not plain numbers


def is_python_number(value) -> bool:
    return type(value) in PYTHON_NUMBER_TYPES


def is_array(value) -> bool:
    """An argument that is an array: neither None (not given) nor a Python number (weights may be)."""
    return value is not None and not is_python_number(value)


def backend_of(fn_name: str, arrays: dict) -> Backend:
    """The backend of every array in ``arrays`` (argument name -> value; None and numbers skipped).

    >>> import numpy as np
    >>> backend_of("f", {"input": np.zeros(2), "weight": 2.0}).name
    'numpy'
    """
    owner = None  # (argument name, value, backend)
    for arg, value in arrays.items():
        if not is_array(value):
            continue
        backend = backend_for_type(type(value))
        if backend is None:
            raise TypeError(
                f"{fn_name}: `{arg}` is a {_type_name(value)}, which no installed backend accepts. "
                f"Pass an array of one of these libraries:\n{describe_backends()}"
            )
        if owner is None:
            owner = (arg, value, backend)
        elif backend.name != owner[2].name and not accepts_numpy_operand(owner[2], backend):
            raise TypeError(
                f"{fn_name}: all arrays must come from one library, but `{owner[0]}` is a "
                f"{_type_name(owner[1])} and `{arg}` is a {_type_name(value)}; convert one of them"
            )
    if owner is None:
        raise TypeError(f"{fn_name}: no array given; `{next(iter(arrays))}` must be an array")
    return owner[2]


def accepts_numpy_operand(owner: Backend, operand: Backend) -> bool:
    """A NumPy array beside a library whose own operations take NumPy operands (Dask, JAX, TF: ``NUMPY_OPERANDS``)."""
    return operand.name == "numpy" and getattr(owner.adapter, "NUMPY_OPERANDS", False)


def _type_name(value) -> str:
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
