"""A GPU kernel is trusted on a device and dtype only once it has matched the portable path there.

The Triton kernels of ``torch_triton`` are compiled for whatever GPU the user has. Before their
first use on each (device, dtype), :func:`trusted` runs the kernel and the portable path (the
``reference``, handed in by the engine, so that this module imports nothing of the core) on
one small fixed grid of edge cases: x = ±inf, NaN, ±1e30 (float16: its largest finite),
±100, ±20, ±1, ±0 and ± the smallest subnormal; targets 0, 0.3 and 1; a broadcast ``weight``
(1, 0.7 and the smallest subnormal) and a broadcast ``pos_weight`` (0, 0.5, 3); every
reduction, and d loss/d x under an upstream gradient. They must agree as docs/contract.md §4
asks of any path: within 4 ulp for float32/float64 and 1 ulp of the dtype for
float16/bfloat16 (a gradient relative to the larger of its two terms), NaN where NaN, and
exactly where the portable path gives ±inf, and where its loss is 0 at x = ±inf (the limits).

On any difference beyond that, or an error from the kernel (one that does not compile for this
GPU), it warns once, a :class:`KernelCheckWarning` naming the device, dtype, case and both
values, and answers False for that device and dtype from then on: the engine declines and the
portable path computes. The check is three small kernel calls (one per reduction, 270-540
elements) with their gradients, once per device and dtype in a process.

>>> import torch
>>> def formula(x, y, weight, pos_weight, reduction, out_dtype):  # a reference in torch ops
...     sp = torch.nn.functional.softplus
...     w, p = (1.0 if a is None else a for a in (weight, pos_weight))
...     loss = w * (torch.where(p * y == 0, 0.0, p * y * sp(-x)) + torch.where(y == 1, 0.0, (1 - y) * sp(x)))
...     return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction].to(out_dtype)
>>> trusted(torch.device("cpu"), torch.float64, kernel=formula, reference=formula)
True
>>> reset()
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch

# loss(x, y, weight, pos_weight, reduction, out_dtype): the loss as a tensor, differentiable in x
LossFunction = Callable[[torch.Tensor, torch.Tensor, Any, Any, str, torch.dtype], torch.Tensor]


class KernelCheckWarning(RuntimeWarning):
    """A kernel disagreed with the portable path on a device and dtype; the portable path computes there."""


_VERDICTS: dict[tuple[str, torch.dtype], bool] = {}  # (device, dtype) -> the kernel is trusted there
_LOCK = threading.Lock()  # held while a first check runs, so that each key is checked once
_CHECKING = threading.local()  # set on the thread running a check


def trusted(device: torch.device, dtype: torch.dtype, kernel: LossFunction, reference: LossFunction) -> bool:
    """Whether ``kernel`` may compute on ``device`` in ``dtype``: checked against ``reference`` once.

    False, with no verdict kept, for a call made while this thread runs a check (the reference
    calling back into the engine: the portable path then computes that call) and while a CUDA
    graph is being captured (the check reads values back to the host).
    """
    key = (str(device), dtype)
    verdict = _VERDICTS.get(key)
    if verdict is not None:
        return verdict
    if getattr(_CHECKING, "active", False):
        return False
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return False
    with _LOCK:
        verdict = _VERDICTS.get(key)
        if verdict is None:
            _CHECKING.active = True
            try:
                failure = disagreement(device, dtype, kernel, reference)
            finally:
                _CHECKING.active = False
            verdict = _VERDICTS[key] = failure is None
            if failure is not None:
                warnings.warn(
                    f"bce_compat: the Triton kernel disagrees with the portable path on {device}, {dtype}: "
                    f"{failure}. The portable path computes on {device}, {dtype} from now on.",
                    KernelCheckWarning,
                    stacklevel=2,
                )
    return verdict


def reset() -> None:
    """Forget every verdict: the next call on each device and dtype checks again (for tests)."""
    with _LOCK:
        _VERDICTS.clear()


def verdicts() -> dict[tuple[str, torch.dtype], bool]:
    """The verdicts so far, (device, dtype) -> trusted, as a copy."""
    return dict(_VERDICTS)


class Case(NamedTuple):
    """One call of the check: a name, the operands, the reduction and the upstream gradient."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    weight: Any
    pos_weight: Any
    reduction: str
    upstream: torch.Tensor


def disagreement(device: torch.device, dtype: torch.dtype, kernel: LossFunction, reference: LossFunction) -> str | None:
    """The first difference between ``kernel`` and ``reference`` beyond §4 on the grid, described; else None.

    An error raised by ``reference`` propagates (it is the path that computes otherwise).
    """
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        for case in cases(device, dtype):
            try:
                got = _value_and_grad(kernel, case)
            except Exception as error:  # a kernel that does not compile or launch here is not trusted
                return f"{case.name}: the kernel raised {type(error).__name__}: {error}"
            failure = _compare(case, dtype, got, _value_and_grad(reference, case))
            if failure is not None:
                return failure
    return None


_Y = (0.0, 0.3, 1.0)
_POS_WEIGHT = (0.0, 0.5, 3.0)
_UPSTREAM = (1.0, -0.5, 2.0, 0.75)  # exact in every dtype; 4 long, so it does not follow one axis of 3


def edges(dtype: torch.dtype) -> tuple[list[float], list[float]]:
    """The values of x: (all of them, the finite ones with |x| <= 100).

    >>> edges(torch.float16)[0][:2], edges(torch.float32)[0][:2]
    ([-inf, -65504.0], [-inf, -1e+30])
    """
    info = torch.finfo(dtype)
    big, subnormal = min(1e30, info.max), info.smallest_normal * info.eps
    moderate = [-100.0, -20.0, -1.0, -subnormal, -0.0, 0.0, subnormal, 1.0, 20.0, 100.0]
    return [-math.inf, -big, *moderate, big, math.inf, math.nan], moderate


def cases(device: torch.device, dtype: torch.dtype) -> Iterator[Case]:
    """The grid: x along axis 0, weight along axis 1 (shape [3, 1, 1]), y along 2, pos_weight along 3 ([3]).

    "none" on every edge with a varying upstream gradient; "mean" and "sum" on the finite edges
    (so that the sums are finite), "sum" with weight None and a number pos_weight (as the
    engine passes them) and an upstream gradient of -0.5.
    """
    info = torch.finfo(dtype)
    weight = torch.tensor([1.0, 0.7, info.smallest_normal * info.eps], dtype=dtype, device=device).reshape(3, 1, 1)
    pos_weight = torch.tensor(_POS_WEIGHT, dtype=dtype, device=device)
    every, moderate = edges(dtype)
    for name, values, w, p, reduction, upstream in (
        ("reduction='none'", every, weight, pos_weight, "none", _UPSTREAM),
        ("reduction='mean' over the finite edges", moderate, weight, pos_weight, "mean", 1.0),
        ("reduction='sum' over the finite edges", moderate, None, 3.0, "sum", -0.5),
    ):
        shape = (len(values), 3, len(_Y), len(_POS_WEIGHT))
        x = torch.tensor(values, dtype=dtype, device=device).reshape(-1, 1, 1, 1).expand(shape).contiguous()
        y = torch.tensor(_Y, dtype=dtype, device=device).reshape(-1, 1).expand(shape).contiguous()
        g = torch.tensor(upstream, dtype=dtype, device=device)
        if reduction == "none":
            g = g.repeat(x.numel() // g.numel() + 1)[: x.numel()].reshape(shape)
        yield Case(name, x, y, w, p, reduction, g)


def _value_and_grad(loss: LossFunction, case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and d loss/d x times the upstream gradient, detached."""
    x = case.x.detach().clone().requires_grad_(True)
    value = loss(x, case.y, case.weight, case.pos_weight, case.reduction, case.x.dtype)
    (grad,) = torch.autograd.grad(value, x, case.upstream)
    return value.detach(), grad


def _ulps(dtype: torch.dtype) -> int:
    return 1 if dtype in (torch.float16, torch.bfloat16) else 4


def _allowed(case: Case, dtype: torch.dtype, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """How far the kernel's loss and d loss/d x may be from the portable path's ``loss`` and gradient.

    ulps (§4) of the loss, and of the gradient's scale |w| * max(sigmoid(x) * |1 + (p - 1) y|, |p y|);
    a sum adds 4 + log2(n) float32 ulp (the grid's losses are >= 0, so |the sum| is the sum of
    their magnitudes). Plus, for results in the subnormal range, ulps of the smallest subnormal
    times (1 + |w|) (1 + |p y| + |1 - y|) (1 + |upstream|): a product rounded there is off by up
    to half of it, times the factors that either path applies after it, in its own order.
    """
    x, y = case.x.double().cpu(), case.y.double().cpu()
    w, p = (torch.ones(()) if a is None else torch.as_tensor(a).double().cpu() for a in (case.weight, case.pos_weight))
    upstream = case.upstream.double().cpu().abs()
    info, ulps, n = torch.finfo(dtype), _ulps(dtype), x.numel()
    per_mean = n if case.reduction == "mean" else 1
    subnormal = ulps * info.smallest_normal * info.eps * (1 + w.abs()) * (1 + (p * y).abs() + (1 - y).abs())
    scale = w.abs() * torch.maximum(torch.sigmoid(x) * (1 + (p - 1) * y).abs(), (p * y).abs())
    grad = ulps * info.eps * scale * upstream / per_mean + subnormal * (1 + upstream)
    if case.reduction == "none":
        return ulps * info.eps * loss.abs() + subnormal, grad
    summed = ulps * info.eps + (4 + math.ceil(math.log2(n))) * torch.finfo(torch.float32).eps
    return summed * loss.abs() + subnormal.sum() / per_mean, grad


def _compare(
    case: Case, dtype: torch.dtype, got: tuple[torch.Tensor, torch.Tensor], want: tuple[torch.Tensor, torch.Tensor]
) -> str | None:
    """The kernel's first loss or gradient element outside the allowed difference, described; else None."""
    for what, kernel, portable in (("the loss", got[0], want[0]), ("d loss/d x", got[1], want[1])):
        if kernel.shape != portable.shape or kernel.dtype != portable.dtype or kernel.device != portable.device:
            return f"{what}, {case.name}: the kernel gives {_kind(kernel)}, the portable path {_kind(portable)}"
    allowed = _allowed(case, dtype, want[0].double().cpu())
    x_infinite = case.x.isinf().cpu().reshape(-1)
    for what, kernel, portable, tolerance in zip(("the loss", "d loss/d x"), got, want, allowed):
        kernel, portable = kernel.double().cpu().reshape(-1), portable.double().cpu().reshape(-1)
        elementwise = portable.numel() == x_infinite.numel()
        tolerance = tolerance.expand(case.x.shape if elementwise else ()).reshape(-1)
        exact = portable.isnan() | portable.isinf()
        if elementwise and what == "the loss":
            exact |= x_infinite & (portable == 0)  # the limits at x = ±inf
        equal = (kernel == portable) | (kernel.isnan() & portable.isnan())
        bad = torch.where(exact, ~equal, ~((kernel - portable).abs() <= tolerance))
        if bad.any():
            i = int(torch.nonzero(bad)[0])
            where = _describe(case, i) if elementwise else _describe_operands(case)
            need = "exactly" if exact[i] else f"within {tolerance[i].item():.3g}"
            return (
                f"{what}, {where}: kernel {kernel[i].item()!r}, portable path {portable[i].item()!r} "
                f"(must agree {need}; {int(bad.sum())} of {bad.numel()} differ)"
            )
    return None


def _kind(t: torch.Tensor) -> str:
    return f"shape {list(t.shape)} {t.dtype} on {t.device}"


def _describe(case: Case, index: int) -> str:
    """The operands at flat ``index`` of the grid."""
    i, j, k, m = (int(v) for v in torch.unravel_index(torch.tensor(index), case.x.shape))
    weight = "None" if case.weight is None else _element(case.weight, j)
    return (
        f"{case.name} at x={case.x[i, j, k, m].item()!r}, y={case.y[i, j, k, m].item()!r}, "
        f"weight={weight}, pos_weight={_element(case.pos_weight, m)}"
    )


def _describe_operands(case: Case) -> str:
    """The operands of a reduced case, by shape."""
    weight, pos_weight = (
        f"of shape {list(a.shape)}" if isinstance(a, torch.Tensor) else repr(a) for a in (case.weight, case.pos_weight)
    )
    return f"{case.name}, weight {weight}, pos_weight {pos_weight}"


def _element(operand: Any, index: int) -> str:
    return repr(operand.reshape(-1)[index].item()) if isinstance(operand, torch.Tensor) else repr(operand)
