"""Every private torch API the torch engine uses, in one place, each with its reason.

Correctness needs these (torch has no public query for them):
- ``functorch_wrapped(t)``, ``legacy_batched(t)``, ``functorch_active()``: whether a tensor or
  the call is under a ``torch.func`` transform (vmap, grad, jacrev), where the engine's
  ``autograd.Function`` would see wrapped tensors; the engine declines there (or, for a batched
  upstream gradient, keeps it batched).
- ``forward_ad_active()``: forward-mode AD is on; the engine declines (its Function has no jvp).

Speed only (bench/run.py measures each against its public fallback with
``BCE_COMPAT_PUBLIC_ONLY=1``; docs/architecture.md lists the savings that keep it here):
- ``apply_function(cls)``: ``autograd.Function.apply`` without its Python wrapper, which only adds
  functorch handling; the wrapper is used whenever a functorch transform is active.

Each is checked against the torch versions it was verified with (``VERIFIED``); outside them,
or with ``$BCE_COMPAT_PUBLIC_ONLY`` set, the public fallback is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

VERIFIED = ((2, 3), (2, 14))  # torch versions, inclusive, on which these private names were checked


def _torch_version() -> tuple[int, int]:
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return major, minor


PUBLIC_ONLY = bool(os.environ.get("BCE_COMPAT_PUBLIC_ONLY")) or not (
    VERIFIED[0] <= _torch_version() <= VERIFIED[1]
)

_functorch = getattr(torch._C, "_functorch", None)
_wrapped: Callable[[Any], bool] = getattr(_functorch, "is_functorch_wrapped_tensor", lambda t: False)
_legacy: Callable[[Any], bool] = getattr(_functorch, "is_legacy_batchedtensor", lambda t: False)
_transforms_active: Callable[[], bool] = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


def functorch_wrapped(t: Any) -> bool:
    """A tensor wrapped by a ``torch.func`` transform (correctness: always checked)."""
    return bool(_wrapped(t))


def batched(t: Any) -> bool:
    """A tensor of a vmap level (torch.func, or the legacy vmap behind ``is_grads_batched``)."""
    return bool(_wrapped(t)) or bool(_legacy(t))


def functorch_active() -> bool:
    """A ``torch.func`` transform is active (True where torch cannot say: the safe answer)."""
    return bool(_transforms_active())


def forward_ad_active() -> bool:
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


def apply_function(cls: type) -> Callable[..., Any]:
    """``cls.apply`` for an ``autograd.Function`` subclass; without the Python wrapper where that is
    allowed (no functorch transform active) and verified for this torch."""
    public = cls.apply  # type: ignore[attr-defined]  # autograd.Function subclasses have apply
    if PUBLIC_ONLY:
        return public
    bypass = super(torch.autograd.Function, cls).apply  # type: ignore[misc]  # the C++ apply

    def apply(*args: Any) -> Any:
        return public(*args) if functorch_active() else bypass(*args)

    return apply
