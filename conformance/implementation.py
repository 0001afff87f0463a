"""The implementation under test (``--impl MODULE:CALLABLE``): anyone's BCE, run through the cases.

``load(spec, dialect)`` imports the callable; it stands for one function of the dialect (by
default the dialect's with-logits loss, see ``FUNCTIONS``), called with that dialect's signature
and argument order. ``applicable(cases)`` keeps the cases that call that function in that
dialect; the others are left out with the reason. Torch's and Paddle's loss-object cases
(``BCEWithLogitsLoss(...)(x, y)``) call the function with the constructor's arguments.

>>> impl = load("bce_compat:binary_cross_entropy_with_logits", "torch")
>>> impl.function, impl.label
('binary_cross_entropy_with_logits', 'bce_compat:binary_cross_entropy_with_logits')
>>> from bce_compat.conformance import casedata
>>> cases, left_out = impl.applicable(casedata.load_cases(["ours-probs-q-at-0-and-1", "ours-inf"]))
>>> [c.id for c in cases][:2]
['ours-inf-pos-y1-is-zero', 'ours-inf-pos-y0-is-inf']
>>> left_out["ours-probs-q-at-0-and-1"]
"calls torch's binary_cross_entropy, not binary_cross_entropy_with_logits (see --function)"
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bce_compat.conformance import calls
from bce_compat.conformance.casedata import DIALECTS, Case

# dialect -> the functions a callable may stand for (the first is the default)
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("binary_cross_entropy_with_logits", "binary_cross_entropy", "sigmoid_focal_loss"),
    "paddle": ("binary_cross_entropy_with_logits", "binary_cross_entropy"),
    "keras": ("binary_crossentropy", "BinaryCrossentropy"),
    "tf": ("sigmoid_cross_entropy_with_logits", "weighted_cross_entropy_with_logits"),
    "optax": ("sigmoid_binary_cross_entropy", "sigmoid_focal_loss"),
}
# torch's and Paddle's loss objects, served by the function they wrap
_LOSS_OBJECTS = {"binary_cross_entropy_with_logits": "BCEWithLogitsLoss", "binary_cross_entropy": "BCELoss"}
WITH_LOGITS = {"binary_cross_entropy_with_logits", "binary_crossentropy", "BinaryCrossentropy",
               "sigmoid_cross_entropy_with_logits", "sigmoid_binary_cross_entropy"}


class ImplementationError(ValueError):
    """``--impl``/``--dialect``/``--function`` cannot be used (the message says why)."""


@dataclass(frozen=True)
class Implementation:
    """A callable standing for ``function`` of ``dialect``, named ``spec`` (``MODULE:CALLABLE``)."""

    spec: str
    dialect: str
    function: str
    fn: Callable[..., Any]

    @property
    def label(self) -> str:
        return self.spec

    @property
    def with_logits(self) -> bool:
        """Whether it is a plain BCE on logits (what the accuracy atlas plots)."""
        return self.function in WITH_LOGITS

    def describe(self) -> str:
        """``mylib:bce as torch's binary_cross_entropy_with_logits``."""
        return f"{self.spec} as {self.dialect}'s {self.function}"

    def namespace(self) -> _Namespace:
        """A module-like object with the dialect's names, for the mappers of ``calls.py``."""
        names: dict[str, Any] = {self.function: self.fn}
        if self.dialect in ("torch", "paddle") and self.function in _LOSS_OBJECTS:
            names[_LOSS_OBJECTS[self.function]] = _loss_object(self.fn)
        return _Namespace(self, names)

    def call(self, case: Case) -> calls.Call:
        """(label, fn) calling the implementation for ``case``; raises ``calls.Unsupported`` where it does not apply."""
        if self.dialect not in case.dialects:
            raise calls.Unsupported(f"not a {self.dialect}-dialect case (it runs on {', '.join(case.dialects)})")
        _, fn = calls.dialect_call(case, self.namespace(), self.dialect, self.spec)
        return self.label, fn

    def applies(self, case: Case) -> str | None:
        """None if ``case`` runs on the implementation, else the reason it does not."""
        try:
            self.call(case)
        except calls.Unsupported as exc:
            return str(exc)
        return None

    def applicable(self, cases: Iterable[Case]) -> tuple[list[Case], dict[str, str]]:
        """(the cases that run on the implementation, case id -> why each other one does not)."""
        kept, left_out = [], {}
        for case in cases:
            reason = self.applies(case)
            if reason is None:
                kept.append(case)
            else:
                left_out[case.id] = reason
        return kept, left_out


class _Namespace:
    """The implementation under the dialect's names; any other name is a case it does not apply to."""

    def __init__(self, impl: Implementation, names: dict[str, Any]):
        self._impl = impl
        self.__dict__.update(names)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        impl = self._impl
        raise calls.Unsupported(f"calls {impl.dialect}'s {name}, not {impl.function} (see --function)")


def _loss_object(fn: Callable[..., Any]) -> Callable[..., Callable[..., Any]]:
    """``BCEWithLogitsLoss(**options)(x, y)`` as ``fn(x, y, **options)``."""

    def construct(**options: Any) -> Callable[..., Any]:
        return lambda input, target: fn(input, target, **options)

    return construct


def load(spec: str, dialect: str, function: str | None = None) -> Implementation:
    """Import ``MODULE:CALLABLE`` (``CALLABLE`` may be dotted: ``mylib:Losses.bce``), standing for ``function``.

    The current directory is searched first, as ``python -m`` does, so a module beside the
    user's shell is found by the ``bce-compat`` command too.

    >>> try:
    ...     load("bce_compat", "torch")
    ... except ImplementationError as exc:
    ...     print(exc)
    --impl must be MODULE:CALLABLE (e.g. mylib.losses:bce), got 'bce_compat'
    """
    if dialect not in FUNCTIONS:
        raise ImplementationError(f"--dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    function = function or FUNCTIONS[dialect][0]
    if function not in FUNCTIONS[dialect]:
        raise ImplementationError(f"--function for the {dialect} dialect must be one of "
                                  f"{', '.join(FUNCTIONS[dialect])}, got {function!r}")
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ImplementationError(f"--impl must be MODULE:CALLABLE (e.g. mylib.losses:bce), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplementationError(f"--impl {spec}: cannot import {module_name!r} ({exc})") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ImplementationError(f"--impl {spec}: {module_name} has no attribute {attribute!r}") from exc
    if not callable(target):
        raise ImplementationError(f"--impl {spec}: {attribute} is a {type(target).__name__}, not a callable")
    return Implementation(spec, dialect, function, target)
