"""Pick the one backend that owns all the arrays of a call, or say clearly why there is none."""

from __future__ import annotations

from bce_compat._registry import Backend, backend_for_type, describe_backends

PYTHON_NUMBER_TYPES = (bool, int, float)  # exactly: subclasses (IntEnum, ...) are not plain numbers
# every dialect's reduction names (torch, Paddle, Keras): a hint when one is passed where an array belongs
REDUCTION_NAMES = frozenset({"none", "mean", "sum", "elementwise_mean", "sum_over_batch_size",
                             "mean_with_sample_weight"})


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
        if backend is None and owner is not None:
            raise TypeError(not_of_the_input_library(fn_name, arg, value, owner[1]))
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


def not_of_the_input_library(fn_name: str, arg: str, value, input_array) -> str:
    """The message for an argument beside the input that no library owns: what it must be, what it is.

    A weight argument (``weight``, ``pos_weight``, ``sample_weight``) may also be a number or None.
    A reduction name there is the common slip of passing it positionally (``F(x, y, "mean")``: the
    third argument is ``weight``), so the message spells out the keyword.

    >>> import numpy as np
    >>> print(*not_of_the_input_library("f", "weight", "mean", np.zeros(2)).split("; "), sep="\\n")
    f: `weight` must be an array of the input's library (numpy.ndarray), a Python number or None
    got a str ('mean'). To choose the reduction, pass reduction='mean' by keyword
    """
    optional = ", a Python number or None" if arg.endswith("weight") else ""
    message = (f"{fn_name}: `{arg}` must be an array of the input's library ({_type_name(input_array)}){optional}; "
               f"got a {_type_name(value)} ({_short_repr(value)})")
    if isinstance(value, str) and value in REDUCTION_NAMES:
        message += f". To choose the reduction, pass reduction={value!r} by keyword"
    return message


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def accepts_numpy_operand(owner: Backend, operand: Backend) -> bool:
    """A NumPy array beside a library whose own operations take NumPy operands (Dask, JAX, TF: ``NUMPY_OPERANDS``)."""
    return operand.name == "numpy" and getattr(owner.adapter, "NUMPY_OPERANDS", False)


def _type_name(value) -> str:
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
