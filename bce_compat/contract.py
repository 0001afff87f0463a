"""What the front end hands an engine, and how an engine says no.

The front end validates a call once and describes it as a :class:`Problem`: the kind of loss,
the arrays (already dispatched to one backend, bool/int ones cast), the reduction, the result
dtype and any options beyond torch's signature. Every engine (a backend's fused or fast path)
receives that one object and either computes it, or returns a :class:`Declined` saying why; the
portable array-API path (``bce_compat._math``) then computes it. An engine must decline every
option it does not implement (``unsupported`` does that check), so no option can be
silently ignored.

>>> p = Problem("logits", x=None, y=None, reduction="mean", out_dtype="float32", options={"label_smoothing": 0.1})
>>> unsupported(p, kinds=("logits",))
Declined(reason="option 'label_smoothing' is not implemented")
>>> unsupported(p, kinds=("logits",), options=("label_smoothing",)) is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

# Named tuples rather than dataclasses: ``import bce_compat`` then does not import dataclasses
# (and inspect, 10-15 ms), and a Problem is built on every call (0.5 µs, a frozen dataclass 1.5).

Kind = Literal["logits", "probs", "focal"]  # focal: torchvision's sigmoid_focal_loss on logits
Reduction = Literal["none", "mean", "sum"]
NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


class Problem(NamedTuple):
    """One call of the loss, validated: every engine computes exactly this or declines it.

    ``x`` is the input (logits for ``kind="logits"``, probabilities for ``"probs"``), ``y`` the
    target, ``weight``/``pos_weight`` arrays of the same backend, Python numbers, or None.
    ``out_dtype`` is the backend's own dtype object for the result. ``options`` holds only the
    options the user set away from their defaults (an empty mapping for a plain torch call).

    ``memo`` is a dict that lives as long as the front end's plan for calls whose arrays have
    these types, dtypes and shapes (``bce_compat._plan``), or None (a Problem built by hand).
    An engine may keep there, under its own name, what it works out from those alone, so that
    a training loop pays for it once; nothing that depends on values, devices, strides or the
    reduction and options (which vary between such calls) may be kept there.

    ``portable`` computes a Problem of the same signature by the portable array-API path, in
    the backend's own ops (differentiable by its autograd): an engine that needs the formula
    as framework ops (the gradients towards target, weight and pos_weight, a second
    derivative) calls it instead of importing the front end. None for a Problem built by hand.
    """

    kind: Kind
    x: Any
    y: Any
    weight: Any = None
    pos_weight: Any = None
    reduction: Reduction = "mean"
    out_dtype: Any = None
    options: Mapping[str, Any] = NO_OPTIONS
    memo: dict | None = None
    portable: Callable[[Problem], Any] | None = None

    def arrays(self) -> tuple:
        """(x, y, weight, pos_weight), the order every engine's kernels take them in."""
        return self.x, self.y, self.weight, self.pos_weight

    def by_formula(self, problem: Problem | None = None) -> Any:
        """``problem`` (by default this one) computed by the portable path, ``portable``; a clear
        error for a Problem built by hand without it."""
        if self.portable is None:
            raise RuntimeError("this Problem has no portable path (Problem.portable); the front end sets it")
        return self.portable(self if problem is None else problem)


def focal_grad_by_formula(xp, x: Any, y_pos: Any, y_neg: Any, options: Mapping[str, Any]) -> Any:
    """d loss / d x of the focal loss (unreduced, ``options``' alpha and gamma or torchvision's
    defaults) in the namespace ``xp``'s ops, which its framework can differentiate again: for an
    engine whose backward must itself be differentiable (Paddle under ``create_graph=True``)."""
    from bce_compat import _math
    from bce_compat._options import FOCAL_ALPHA, FOCAL_GAMMA

    alpha, gamma = options.get("alpha", FOCAL_ALPHA), options.get("gamma", FOCAL_GAMMA)
    return _math.sigmoid_focal_grad(xp, x, y_pos, alpha, gamma, y_neg)


class Declined(NamedTuple):
    """An engine's "not this one", with the reason (shown by ``bce-compat backends`` and tests)."""

    reason: str

    def __bool__(self) -> bool:
        return False


class Engine(Protocol):
    """A fast path: ``engine(problem)`` is the result in the backend's own array type, or Declined."""

    name: str

    def __call__(self, problem: Problem) -> Any: ...


def unsupported(problem: Problem, kinds: Collection[str], options: Collection[str] = ()) -> Declined | None:
    """Declined if ``problem``'s kind is not in ``kinds`` or one of its options not in ``options``; else None.

    Every engine starts with this, so no engine can compute a kind or option it does not know.
    """
    if problem.kind not in kinds:
        return Declined(f"kind {problem.kind!r} is not implemented")
    for option in problem.options:
        if option not in options:
            return Declined(f"option {option!r} is not implemented")
    return None


class NamedEngine(NamedTuple):
    """An engine made of a name and a function ``fn(problem) -> result | Declined``.

    >>> engine = NamedEngine("never", lambda problem: Declined("demo"))
    >>> engine.name, bool(engine(None))
    ('never', False)
    """

    name: str
    fn: Any

    def __call__(self, problem: Problem) -> Any:
        return self.fn(problem)


# --- The adapter contract --------------------------------------------------------------------


@runtime_checkable
class AdapterModule(Protocol):
    """What every backend adapter provides (a module in ``backends/``, or a plugin's module/object).

    Optional: ``as_result(value)``, a last conversion of the result (NumPy: scalar -> 0-d
    array); ``AUTOGRAD = True`` where the library differentiates; ``check_array(fn, arg, value)``,
    the adapter's own refusals (NumPy: masked arrays); ``result_type(dtypes)``, the promoted
    dtype where the namespace's ``result_type`` will not do (torch: one that ``torch.compile``
    traces); ``autocast(x, y, weight, pos_weight)``, asked per call for half-precision results:
    the arrays widened to float32 where the library's mixed-precision mode says so (torch's
    autocast), else None; ``float64_available(x)``, False where the library cannot compute in
    float64 for x; and the test bench ``bench()`` (returns a :class:`Bench`), with ``BENCH_NAME`` when it
    is not ``NAME``.
    """

    NAME: str  # the backend's name = the array library's module name
    INSTALL: str  # how a user installs the library

    def array_types(self) -> tuple[type, ...]: ...  # the array classes it accepts (imports the library)

    def namespace(self, x: Any) -> ArrayNamespace: ...  # an array-API namespace for arrays like x

    def version(self) -> str: ...

    def values_are_concrete(self, x: Any) -> bool: ...  # False under tracing or for lazy arrays

    def engines(self) -> tuple[Engine, ...]: ...  # fast paths, tried in order; may be empty


@runtime_checkable
class ArrayNamespace(Protocol):
    """The array-API functions the loss code may use; every backend's namespace has all of them.

    Signatures follow the array-API standard (reductions take ``axis`` and ``keepdims``).
    """

    float32: Any
    float64: Any

    # creation
    def asarray(self, obj, /, *, dtype=None, device=None, copy=None): ...
    def zeros(self, shape, *, dtype=None, device=None): ...
    def ones(self, shape, *, dtype=None, device=None): ...
    def full(self, shape, fill_value, *, dtype=None, device=None): ...
    def zeros_like(self, x, /, *, dtype=None, device=None): ...
    def ones_like(self, x, /, *, dtype=None, device=None): ...
    def full_like(self, x, /, fill_value, *, dtype=None, device=None): ...
    # data types
    def astype(self, x, dtype, /, *, copy=True, device=None): ...
    def result_type(self, *arrays_and_dtypes): ...
    def isdtype(self, dtype, kind): ...
    # element-wise
    def abs(self, x, /): ...
    def negative(self, x, /): ...
    def add(self, x1, x2, /): ...
    def subtract(self, x1, x2, /): ...
    def multiply(self, x1, x2, /): ...
    def divide(self, x1, x2, /): ...
    def exp(self, x, /): ...
    def expm1(self, x, /): ...
    def log(self, x, /): ...
    def log1p(self, x, /): ...
    def sqrt(self, x, /): ...
    def square(self, x, /): ...
    def maximum(self, x1, x2, /): ...
    def minimum(self, x1, x2, /): ...
    def clip(self, x, /, min=None, max=None): ...
    def equal(self, x1, x2, /): ...
    def not_equal(self, x1, x2, /): ...
    def less(self, x1, x2, /): ...
    def less_equal(self, x1, x2, /): ...
    def greater(self, x1, x2, /): ...
    def greater_equal(self, x1, x2, /): ...
    def isnan(self, x, /): ...
    def isinf(self, x, /): ...
    def isfinite(self, x, /): ...
    def logical_and(self, x1, x2, /): ...
    def logical_or(self, x1, x2, /): ...
    def logical_not(self, x, /): ...
    def logical_xor(self, x1, x2, /): ...
    def where(self, condition, x1, x2, /): ...
    # reductions
    def sum(self, x, /, *, axis=None, dtype=None, keepdims=False): ...
    def prod(self, x, /, *, axis=None, dtype=None, keepdims=False): ...
    def mean(self, x, /, *, axis=None, keepdims=False): ...
    def max(self, x, /, *, axis=None, keepdims=False): ...
    def min(self, x, /, *, axis=None, keepdims=False): ...
    def any(self, x, /, *, axis=None, keepdims=False): ...
    def all(self, x, /, *, axis=None, keepdims=False): ...
    # manipulation
    def reshape(self, x, /, shape, *, copy=None): ...
    def broadcast_to(self, x, /, shape): ...
    def broadcast_arrays(self, *arrays): ...
    def expand_dims(self, x, /, *, axis=0): ...


class Bench(NamedTuple):
    """An adapter's test bench: NumPy data in, the library's arrays out, read back, differentiated.

    ``asarray(values, dtype)`` makes the library's array of a floating dtype name;
    ``keep_dtype(values)`` keeps the NumPy dtype (int and bool labels); ``to_numpy`` reads
    back (float64 for half precision); ``value_and_grad(fn, args, wrt)`` is
    ``(value, [gradients as NumPy])`` or None without autograd. ``skip_dtypes`` says why a
    float dtype is missing from ``dtypes``; ``lazy`` backends never have values to check.
    """

    name: str
    module: Any  # the library, imported
    asarray: Callable
    to_numpy: Callable
    keep_dtype: Callable
    value_and_grad: Callable | None = None
    dtypes: tuple = ("float16", "bfloat16", "float32", "float64")
    skip_dtypes: Mapping[str, str] = MappingProxyType({})
    lazy: bool = False

    def dtype_skip_reason(self, dtype: str) -> str | None:
        """Why this bench cannot run ``dtype``, or None if it can."""
        if dtype in self.dtypes:
            return None
        return self.skip_dtypes.get(dtype, f"{self.name} test bench has no {dtype}")


def members(protocol: type) -> tuple[str, ...]:
    """The names a protocol requires (attributes and methods), in definition order."""
    names = [n for n in getattr(protocol, "__annotations__", {})]
    names += [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
    return tuple(dict.fromkeys(names))


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The names of ``protocol`` that ``obj`` lacks (a method must be callable).

    >>> import types
    >>> missing_members(types.SimpleNamespace(NAME="x", INSTALL="pip install x"), AdapterModule)
    ['array_types', 'namespace', 'version', 'values_are_concrete', 'engines']
    """
    annotated = getattr(protocol, "__annotations__", {})
    return [n for n in members(protocol)
            if not hasattr(obj, n) or (n not in annotated and not callable(getattr(obj, n)))]
