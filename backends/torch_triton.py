"""Triton kernel for BCE-with-logits on CUDA tensors: one kernel for the loss and the gradient.

The forward reads x and y once, gathers ``weight``/``pos_weight`` in-kernel through their
broadcast strides (no expanded copies), computes in float32 and either stores the loss in the
output dtype or writes one float32 partial sum per block (mean/sum fused; the partials, 1/BLOCK
of the input, are summed in float64). For mean/sum of float32 with x requiring grad it also
writes dL/dx in the same pass, and the backward only scales it in place by the upstream
gradient, returning at once when that is 1 (``loss.backward()``): forward + backward then moves
12 bytes per element, the memory floor. Otherwise the backward runs the same kernel for the
gradient alone: it reads x, y (and the upstream gradient for reduction="none") and writes dL/dx.
Peak memory is inputs + output + gradient. ``exp``/``log1p`` come from libdevice (accurate, not
the ``.approx`` instructions). Tested on CPU with ``TRITON_INTERPRET=1``, which runs the kernels
on CPU tensors; the interpreter has no libdevice, so there (only) exp is ``tl.exp`` and log1p is
Goldberg's identity on ``tl.log``.

Given the portable path as ``reference``, :func:`bce_with_logits` first checks the kernel
against it once per device and dtype (``torch_triton_check``), and returns None where the
kernel disagreed, after one ``torch_triton_check.KernelCheckWarning``: the engine then declines.

>>> x = torch.randn(1024, 64, device="cuda", requires_grad=True)  # doctest: +SKIP
>>> p = torch.ones(64, device="cuda")  # doctest: +SKIP
>>> loss = bce_with_logits(x, torch.rand_like(x), None, p, "mean", torch.float32, reference=portable)  # doctest: +SKIP
>>> loss.backward()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

from bce_compat.backends import torch_triton_check
from bce_compat.backends.torch_triton_check import LossFunction

BLOCK = 1024
NUM_WARPS = 4
MAX_TERMS = 2  # broadcast patterns with more (rare) index terms are materialised once

ABSENT, NUMBER, TENSOR = 0, 1, 2

if os.environ.get("TRITON_INTERPRET") == "1":  # libdevice has no interpreter implementation

    @triton.jit
    def _exp(x):
        return tl.exp(x)

    @triton.jit
    def _log1p(e):
        u = 1.0 + e  # log1p(e) = log(u) * e / (u - 1), exact where 1 + e rounds to 1 (Goldberg)
        return tl.where(u == 1.0, e, tl.log(u) * (e / (u - 1.0)))

else:
    _exp, _log1p = libdevice.exp, libdevice.log1p


@triton.jit
def _gather(ptr, offs, mask, number, d0, n0, s0, d1, n1, s1, KIND: tl.constexpr, TERMS: tl.constexpr):
    """The broadcast operand at flat output index ``offs`` as float32 (KIND ABSENT gives 1)."""
    if KIND == 2:
        index = offs * 0
        if TERMS >= 1:
            index += ((offs // d0) % n0) * s0
        if TERMS >= 2:
            index += ((offs // d1) % n1) * s1
        return tl.load(ptr + index, mask=mask, other=1.0).to(tl.float32)
    elif KIND == 1:
        return tl.zeros_like(offs).to(tl.float32) + number
    else:
        return tl.zeros_like(offs).to(tl.float32) + 1.0


@triton.jit
def _offsets(n, BLOCK: tl.constexpr, INT64: tl.constexpr):
    pid = tl.program_id(0)
    if INT64:
        start = pid.to(tl.int64) * BLOCK
    else:
        start = pid * BLOCK
    offs = start + tl.arange(0, BLOCK)
    return offs, offs < n


@triton.jit
def _times(c, term):
    """c * term, exactly 0 where the coefficient c is 0 and term is infinite; a NaN term stays NaN."""
    return tl.where((c == 0) & (tl.abs(term) == float("inf")), 0.0, c * term)


@triton.jit
def _kernel(
    x_ptr, y_ptr, w_ptr, p_ptr, g_ptr, out_ptr, gx_ptr, n, w_number, p_number, g_scale,
    wd0, wn0, ws0, wd1, wn1, ws1, pd0, pn0, ps0, pd1, pn1, ps1,
    W_KIND: tl.constexpr, W_TERMS: tl.constexpr, P_KIND: tl.constexpr, P_TERMS: tl.constexpr,
    LOSS: tl.constexpr, REDUCE: tl.constexpr, GRAD: tl.constexpr, G_KIND: tl.constexpr,
    INT64: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """The one formula: the loss (LOSS; per-block partial sums if REDUCE) and/or dL/dx (GRAD).

    loss = c+ * softplus(-x) + c- * softplus(x), dL/dx = c- * sigmoid(x) - c+ * sigmoid(-x),
    with c+ = p*y, c- = 1 - y, both times w; everything from e = exp(-|x|). The gradient is
    times g_scale and the upstream gradient: none (G_KIND 0), one number at g_ptr (1), or a
    full array at g_ptr (2).
    """
    offs, mask = _offsets(n, BLOCK, INT64)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    w = _gather(w_ptr, offs, mask, w_number, wd0, wn0, ws0, wd1, wn1, ws1, W_KIND, W_TERMS)
    p = _gather(p_ptr, offs, mask, p_number, pd0, pn0, ps0, pd1, pn1, ps1, P_KIND, P_TERMS)
    e = _exp(-tl.abs(x))  # exp(-|x|) <= 1: never overflows
    c_pos = p * y
    c_neg = 1.0 - y
    if LOSS:
        t = _log1p(e)
        sp_pos = tl.where(x > 0, x, 0.0) + t  # softplus(x); where (not maximum) keeps NaN in t
        sp_neg = t - tl.where(x > 0, 0.0, x)  # softplus(-x), not softplus(x) - x (cancellation)
        loss = _times(c_pos, sp_neg) + _times(c_neg, sp_pos)
        if W_KIND != 0:
            loss = loss * w
        if REDUCE:
            tl.store(out_ptr + tl.program_id(0), tl.sum(tl.where(mask, loss, 0.0), axis=0))
        else:
            tl.store(out_ptr + offs, loss.to(out_ptr.dtype.element_ty), mask=mask)
    if GRAD:
        r = 1.0 / (1.0 + e)
        s_pos = tl.where(x > 0, r, e * r)  # sigmoid(x); 0.5 at x = 0
        s_neg = tl.where(x > 0, e * r, r)  # sigmoid(-x)
        d = _times(c_neg, s_pos) - _times(c_pos, s_neg)
        if W_KIND != 0:
            d = d * w
        if G_KIND == 2:
            d = d * tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        elif G_KIND == 1:
            d = d * tl.load(g_ptr).to(tl.float32)
        tl.store(gx_ptr + offs, (d * g_scale).to(gx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _scale_kernel(gx_ptr, g_ptr, n, INT64: tl.constexpr, BLOCK: tl.constexpr):
    """gx *= g in place; with g == 1 (loss.backward()) every block returns after one load."""
    g = tl.load(g_ptr).to(tl.float32)
    if g != 1.0:
        offs, mask = _offsets(n, BLOCK, INT64)
        v = tl.load(gx_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(gx_ptr + offs, (v * g).to(gx_ptr.dtype.element_ty), mask=mask)


def broadcast_terms(shape: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int, int]]:
    """(divisor, size, stride) terms so that offset = sum(((i // d) % n) * s) for flat index i.

    >>> broadcast_terms((8, 4, 64), (0, 0, 1))  # pos_weight [64]
    [(1, 64, 1)]
    >>> broadcast_terms((2, 3, 5, 5), (0, 1, 0, 0))  # pos_weight [3, 1, 1]
    [(25, 3, 1)]
    """
    terms: list[tuple[int, int, int]] = []
    div = 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size != 1 and stride != 0:
            if terms and terms[-1][0] * terms[-1][1] == div and terms[-1][2] * terms[-1][1] == stride:
                d, n, s = terms[-1]
                terms[-1] = (d, n * size, s)
            else:
                terms.append((div, size, stride))
        div *= size
    return terms


def _operand(value: Any, x: torch.Tensor) -> tuple[torch.Tensor, float, int, int, tuple[int, ...]]:
    """(tensor-or-x, number, kind, terms, index arguments) for a weight argument."""
    if value is None:
        return x, 1.0, ABSENT, 0, (1, 1, 0, 1, 1, 0)
    if isinstance(value, (int, float)):
        return x, float(value), NUMBER, 0, (1, 1, 0, 1, 1, 0)
    view = value.expand(x.shape)
    terms = broadcast_terms(view.shape, view.stride())
    if len(terms) > MAX_TERMS:
        view = view.contiguous()
        terms = [(1, view.numel(), 1)]
    flat = [v for term in terms for v in term] + [1, 1, 0] * (MAX_TERMS - len(terms))
    return view, 1.0, TENSOR, len(terms), tuple(flat)


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def _launch(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: Any,
    pos_weight: Any,
    *,
    out: torch.Tensor | None = None,
    grad_x: torch.Tensor | None = None,
    reduce: bool = False,
    upstream: torch.Tensor | None = None,
    g_kind: int = 0,
    g_scale: float = 1.0,
) -> None:
    n = x.numel()
    w, w_number, w_kind, w_terms, w_index = _operand(weight, x)
    p, p_number, p_kind, p_terms, p_index = _operand(pos_weight, x)
    _kernel[_grid(n)](
        x, y, w, p,
        x if upstream is None else upstream, x if out is None else out, x if grad_x is None else grad_x,
        n, w_number, p_number, g_scale, *w_index, *p_index,
        W_KIND=w_kind, W_TERMS=w_terms, P_KIND=p_kind, P_TERMS=p_terms,
        LOSS=out is not None, REDUCE=reduce, GRAD=grad_x is not None, G_KIND=g_kind,
        INT64=n + BLOCK >= 2**31, BLOCK=BLOCK, num_warps=NUM_WARPS,
    )  # fmt: skip


def forward(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: Any,
    pos_weight: Any,
    reduction: str,
    out_dtype: torch.dtype,
    save_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(loss, dL/dx or None), no autograd: "none" in ``out_dtype``, "mean"/"sum" 0-d in ``out_dtype``.

    ``save_grad`` also writes dL/dx for an upstream gradient of 1 (scaled by 1/n for mean), in
    x's dtype.
    """
    n = x.numel()
    reduce = reduction != "none"
    shape = _grid(n) if reduce else x.shape
    out = torch.empty(shape, dtype=torch.float32 if reduce else out_dtype, device=x.device)
    grad_x = torch.empty(x.shape, dtype=x.dtype, device=x.device) if save_grad else None
    g_scale = 1.0 / n if reduction == "mean" else 1.0
    _launch(x, y, weight, pos_weight, out=out, grad_x=grad_x, reduce=reduce, g_scale=g_scale)
    if not reduce:
        return out, grad_x
    total = out.sum(dtype=torch.float64)
    return (total / n if reduction == "mean" else total).to(out_dtype), grad_x


def scale_(grad_x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """grad_x *= grad (a one-element tensor), in place, without a host sync."""
    n = grad_x.numel()
    _scale_kernel[_grid(n)](grad_x, grad.reshape(1), n, INT64=n + BLOCK >= 2**31, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return grad_x


def backward(
    x: torch.Tensor, y: torch.Tensor, weight: Any, pos_weight: Any, grad: torch.Tensor, reduction: str
) -> torch.Tensor:
    """dL/dx times the upstream ``grad`` (full for "none", 0-d for mean/sum), in x's dtype."""
    full = reduction == "none"
    grad = grad.expand(x.shape).contiguous() if full else grad.reshape(1)
    grad_x = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    _launch(x, y, weight, pos_weight, grad_x=grad_x, upstream=grad, g_kind=2 if full else 1,
            g_scale=1.0 / x.numel() if reduction == "mean" else 1.0)
    return grad_x


class _TritonLoss(torch.autograd.Function):
    """One kernel forward (loss, and dL/dx in the same pass for float32 reductions) and backward.

    Gradients for target/weight/pos_weight, double backward and batched upstream gradients
    use ``torch_fast``'s portable-formula gradients and torch ops.
    """

    @staticmethod
    def forward(ctx, x, y, weight, pos_weight, reduction, out_dtype, reference):
        ctx.reduction, ctx.out_dtype, ctx.reference = reduction, out_dtype, reference
        ctx.numbers = [a if not torch.is_tensor(a) else None for a in (weight, pos_weight)]
        ctx.save_for_backward(x, y, *(a if torch.is_tensor(a) else None for a in (weight, pos_weight)))
        # Reductions in float32: the gradient is written in the forward pass (x and y are read once
        # for both), and backward only scales it by the upstream gradient (nothing when that is 1).
        save_grad = ctx.needs_input_grad[0] and x.dtype == torch.float32 and reduction != "none"
        loss, ctx.grad_x = forward(x.contiguous(), y.contiguous(), weight, pos_weight, reduction, out_dtype, save_grad)
        return loss

    @staticmethod
    def backward(ctx, grad):
        from bce_compat.backends._torch_private import batched as is_batched

        x, y, *saved = ctx.saved_tensors
        weight, pos_weight = (t if t is not None else n for t, n in zip(saved, ctx.numbers))
        wanted = ctx.needs_input_grad[:4]

        def portable_grads(which: tuple, create_graph: bool) -> list:
            if ctx.reference is None:
                raise RuntimeError("bce_compat: this gradient needs the portable formula (pass `reference`)")
            return reference_grads(ctx.reference, (x, y, weight, pos_weight), ctx.reduction, ctx.out_dtype, grad,
                                   which, create_graph)

        if torch.is_grad_enabled():  # create_graph=True: differentiable, through the portable formula
            return (*portable_grads(wanted, True), None, None, None)
        grads: list[torch.Tensor | None] = [None] * 7
        if wanted[0]:
            grad_x, ctx.grad_x = ctx.grad_x, None  # hand it over once; a retain_graph rerun recomputes
            if is_batched(grad):  # a vmap level (is_grads_batched): torch ops only
                if grad_x is None:
                    contiguous = x.contiguous(), y.contiguous()
                    grad_x = forward(*contiguous, weight, pos_weight, ctx.reduction, x.dtype, save_grad=True)[1]
                grads[0] = (grad_x * grad).to(x.dtype)
            elif grad_x is not None:
                grads[0] = scale_(grad_x, grad)
            else:
                grads[0] = backward(x.contiguous(), y.contiguous(), weight, pos_weight, grad, ctx.reduction)
        if any(wanted[1:]):
            grads[1:4] = portable_grads((False, *wanted[1:]), False)[1:]
        return tuple(grads)


def reference_grads(reference: LossFunction, operands: tuple, reduction: str, out_dtype: torch.dtype, grad,
                    wanted: tuple, create_graph: bool) -> list:
    """Gradients of ``reference``'s loss (the portable formula, in torch ops) towards the operands
    where ``wanted``, each of its operand's shape and dtype."""
    with torch.enable_grad():
        leaves = operands if create_graph else tuple(
            a.detach().requires_grad_(w) if torch.is_tensor(a) else a for a, w in zip(operands, wanted)
        )
        loss = reference(leaves[0], leaves[1], leaves[2], leaves[3], reduction, out_dtype)
        targets = [a for a, w in zip(leaves, wanted) if w]
        found = iter(torch.autograd.grad(loss, targets, grad.to(loss.dtype), create_graph=create_graph,
                                         allow_unused=True))
    return [next(found) if w else None for w in wanted]


def bce_with_logits(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: Any,
    pos_weight: Any,
    reduction: str,
    out_dtype: torch.dtype,
    reference: LossFunction | None = None,
    check: bool = True,
) -> torch.Tensor | None:
    """Triton: the one kernel (reduction fused) forward and backward, as an autograd.Function.

    With ``reference`` (the portable path, called with these same six arguments), the kernel is
    first checked against it on ``x``'s device in ``out_dtype``, once per process
    (``torch_triton_check.trusted``; ``check=False`` skips that, for the kernels' own tests), and
    None is returned where it failed that check: the engine then declines, and the portable path
    computes. The reference also gives the gradients towards target, weight and pos_weight and
    the second derivative; without it, the kernel runs unchecked and only d loss/d x is available.
    """
    if reference is not None and check and not torch_triton_check.trusted(x.device, out_dtype, _kernel_loss,
                                                                          reference):
        return None
    return _TritonLoss.apply(x, y, weight, pos_weight, reduction, out_dtype, reference)


def _kernel_loss(
    x: torch.Tensor, y: torch.Tensor, weight: Any, pos_weight: Any, reduction: str, out_dtype: torch.dtype
) -> torch.Tensor:
    """The kernel's loss with no check: what ``torch_triton_check`` compares with the reference."""
    return _TritonLoss.apply(x, y, weight, pos_weight, reduction, out_dtype, None)
