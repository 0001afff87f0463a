"""What the front end hands an engine, and how an engine says no.

The front end validates a call once and describes it as a :class:`Problem`: the kind of loss,
the arrays (already dispatched to one backend, bool/int ones cast), the reduction, the result
dtype and any options beyond torch's signature. Every engine (a backend's fused or fast path)
receives that one object and either computes it, or returns a :class:`Declined` saying why; the
portable array-API path (``bce_compat._math``) then computes it. An engine must decline every
option it does not implement (``unsupported_options`` does that check), so no option can be
silently ignored.

>>> p = Problem("logits", x=None, y=None, reduction="mean", out_dtype="float32", options={"label_smoothing": 0.1})
>>> unsupported_options(p, supported=())
Declined(reason="option 'label_smoothing' is not implemented")
>>> unsupported_options(p, supported=("label_smoothing",)) is None
True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

Kind = Literal["logits", "probs"]
Reduction = Literal["none", "mean", "sum"]


@dataclass(frozen=True)
class Problem:
    """One call of the loss, validated: every engine computes exactly this or declines it.

    ``x`` is the input (logits for ``kind="logits"``, probabilities for ``"probs"``), ``y`` the
    target, ``weight``/``pos_weight`` arrays of the same backend, Python numbers, or None.
    ``out_dtype`` is the backend's own dtype object for the result. ``options`` holds only the
    options the user set away from their defaults (an empty mapping for a plain torch call).
    """

    kind: Kind
    x: Any
    y: Any
    weight: Any = None
    pos_weight: Any = None
    reduction: Reduction = "mean"
    out_dtype: Any = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def arrays(self) -> tuple:
        """(x, y, weight, pos_weight), the order every engine's kernels take them in."""
        return self.x, self.y, self.weight, self.pos_weight


@dataclass(frozen=True)
class Declined:
    """An engine's "not this one", with the reason (shown by ``bce-compat backends`` and tests)."""

    reason: str

    def __bool__(self) -> bool:
        return False


class Engine(Protocol):
    """A fast path: ``engine(problem)`` is the result in the backend's own array type, or Declined."""

    name: str

    def __call__(self, problem: Problem) -> Any: ...


def unsupported_options(problem: Problem, supported: Collection[str]) -> Declined | None:
    """Declined for the first option of ``problem`` not in ``supported``; None if all are."""
    for option in problem.options:
        if option not in supported:
            return Declined(f"option {option!r} is not implemented")
    return None


@dataclass(frozen=True)
class NamedEngine:
    """An engine made of a name and a function ``fn(problem) -> result | Declined``.

    >>> engine = NamedEngine("never", lambda problem: Declined("demo"))
    >>> engine.name, bool(engine(None))
    ('never', False)
    """

    name: str
    fn: Any

    def __call__(self, problem: Problem) -> Any:
        return self.fn(problem)
