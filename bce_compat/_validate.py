"""Checks that turn bad input into the clear errors of docs/contract.md §5, and the dtype rules of §3."""

from __future__ import annotations

from bce_compat._dispatch import is_array, is_python_number


class ArgNames:
    """What the dialect calls each argument, so that messages use the user's own names.

    A plain class: Paddle's to_static (SOT) hands a named tuple to the called function as a
    bare tuple, and a dataclass would import ``dataclasses`` (and ``inspect``) at package import.

    >>> ArgNames(input="logit").input, ArgNames().target
    ('logit', 'target')
    """

    def __init__(self, input: str = "input", target: str = "target", weight: str = "weight",
                 pos_weight: str = "pos_weight") -> None:
        self.input, self.target, self.weight, self.pos_weight = input, target, weight, pos_weight

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"ArgNames({names})"


def shape_of(x) -> tuple:
    return tuple(x.shape)


def broadcast_shape(a: tuple, b: tuple) -> tuple | None:
    """The standard broadcast of two shapes, or None if they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            return None
        out.append(db if da == 1 else da)
    return tuple(reversed(out))


def check_known_shape(fn: str, arg: str, x) -> None:
    """Dask marks a size it cannot know before computing (after boolean indexing) as NaN; refuse those."""
    if any(isinstance(d, float) for d in shape_of(x)):
        raise ValueError(
            f"{fn}: `{arg}` must have a known shape; got shape {list(shape_of(x))} with unknown sizes "
            f"(for a Dask array, call `.compute_chunk_sizes()` on it first)"
        )


def check_is_array(fn: str, arg: str, value) -> None:
    """``input`` and ``target`` must be arrays: None or a Python number is a TypeError naming the argument.

    (Any other non-array is refused by dispatch, with the list of backends and how to install them.)

    >>> check_is_array("f", "target", None)
    Traceback (most recent call last):
    TypeError: f: `target` must be an array; got None
    """
    if value is None:
        raise TypeError(f"{fn}: `{arg}` must be an array; got None")
    if is_python_number(value):
        raise TypeError(f"{fn}: `{arg}` must be an array; got a {type(value).__name__} ({value!r})")


def check_same_shape(fn: str, names: ArgNames, x, y) -> None:
    check_is_array(fn, names.input, x)
    check_is_array(fn, names.target, y)
    check_known_shape(fn, names.input, x)
    check_known_shape(fn, names.target, y)
    if shape_of(x) != shape_of(y):
        raise ValueError(
            f"{fn}: `{names.target}` must have the same shape as `{names.input}`; "
            f"`{names.input}` has shape {list(shape_of(x))}, `{names.target}` has shape {list(shape_of(y))}"
        )


def check_weight_shape(fn: str, arg: str, names: ArgNames, w, x) -> None:
    """``w`` must broadcast to ``x``'s shape without enlarging it."""
    if not is_array(w):
        return
    check_known_shape(fn, arg, w)
    if broadcast_shape(shape_of(w), shape_of(x)) != shape_of(x):
        raise ValueError(
            f"{fn}: `{arg}` must broadcast to the shape of `{names.input}` {list(shape_of(x))} "
            f"without enlarging it; got `{arg}` of shape {list(shape_of(w))}"
        )


def check_floating_input(fn: str, arg: str, xp, x) -> None:
    check_is_array(fn, arg, x)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{fn}: `{arg}` must be a real floating array (float16/32/64, bfloat16); got dtype {x.dtype}")


def needs_float_cast(fn: str, arg: str, xp, value) -> bool:
    """True for bool and integer arrays (they become the input's dtype); complex ones are refused."""
    if not is_array(value) or xp.isdtype(value.dtype, "real floating"):
        return False
    if xp.isdtype(value.dtype, ("bool", "integral")):
        return True
    raise TypeError(f"{fn}: `{arg}` must be a real (floating, integer or bool) array; got dtype {value.dtype}")


def check_unit_interval(fn: str, arg: str, xp, values, backend) -> None:
    """Eager backends only: values outside [0, 1] are an error (NaN passes and gives NaN)."""
    if values is None or not backend.values_are_concrete(values):
        return
    outside = xp.logical_or(values < 0, values > 1)
    if bool(xp.any(outside)):
        count, size, index, value = _first_outside(xp, values, outside)
        raise ValueError(
            f"{fn}: every element of `{arg}` must be between 0 and 1; {count} of {size} are outside [0, 1], "
            f"the first at index {index}: {value!r}"
        )


def _first_outside(xp, values, outside) -> tuple[int, int, tuple[int, ...], float]:
    """(how many, of how many, index of the first, its value) for the error message.

    Only namespace functions every adapter has (reshape, any, sum, astype) and slicing: the
    first index is found by bisection, so no backend needs ``nonzero`` or ``arange``.
    Runs only on the error path.
    """
    flat = xp.reshape(outside, (-1,))
    size = int(flat.shape[0])
    count = int(xp.sum(xp.astype(flat, xp.float32)))  # exact below 2**24 elements
    lo, hi = 0, size  # invariant: the first True is in flat[lo:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bool(xp.any(flat[lo:mid])):
            hi = mid
        else:
            lo = mid
    index = []
    rest = lo
    for side in reversed(tuple(int(d) for d in shape_of(values))):
        rest, i = divmod(rest, side)
        index.append(i)
    return count, size, tuple(reversed(index)), float(xp.reshape(values, (-1,))[lo])
