"""Torch engine: the CPU pass (``cpu_pass``) on CPU tensors, Triton kernels on CUDA.

CPU tensors of float16, bfloat16, float32 and float64, of any layout, every kind and option the
pass implements. The tensors themselves go to the pass, which reads them through torch's DLPack
exchange API; this module settles first what DLPack cannot carry: a view's negative bit is
resolved (``torch.complex(a, b).conj().imag`` is a value like any other), and each tensor's
storage size goes along, so the pass refuses a view past a freed or shrunk storage. Where a
gradient is wanted the pass runs inside a ``torch.autograd.Function`` and writes d loss/d x in
the same loop (the loss has the same bits either way); the backward multiplies it by the upstream
gradient. For float16 and bfloat16 inputs the pass writes it in their dtype, and an upstream of
exactly 1 takes it as it is (no float32 buffer, no conversion op). Gradients towards target,
weight and pos_weight, and double backward, come from torch's autograd through the portable
formula (``Problem.portable``). Inputs of ``PARALLEL_MIN`` elements or more are split over
torch's own OpenMP team, ``torch.get_num_threads()`` threads.

Declined (the portable path computes): ``torch.compile`` tracing, ``torch.func`` transforms,
forward-mode AD, tensor subclasses, sparse layouts, empty inputs, mixed devices; on CUDA, what
``torch_triton`` does not take (options, probabilities, float64).

>>> import torch
>>> from bce_compat.contract import Problem
>>> x = torch.tensor([-20.0, 0.0], requires_grad=True)
>>> loss = ENGINE(Problem("logits", x, torch.zeros(2), reduction="sum", out_dtype=torch.float32))
>>> loss.backward(); x.grad
tensor([2.0612e-09, 5.0000e-01])
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from typing import Any

import torch

from bce_compat.backends import _torch_private as private
from bce_compat.backends import cpu_pass
from bce_compat.contract import NO_OPTIONS, Declined, NamedEngine, Problem, unsupported

_CPU_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32", torch.float64: "float64"}
_CUDA_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_HALF = (torch.float16, torch.bfloat16)
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_OUTSIDE = Declined("values outside [0, 1]: the front end's check reports them")
# torch's OpenMP workers spin-wait after each torch op, so the pass splits over torch's own team
# (from two blocks on: they take a part at once) rather than over threads of ours that would
# share cores with them.
HOST_OPENMP = torch.backends.openmp.is_available() and cpu_pass.use_host_openmp()
_PARALLEL_MIN = cpu_pass.BLOCK + 1 if HOST_OPENMP else cpu_pass.PARALLEL_MIN


class _Outside(Exception):
    """Probabilities outside [0, 1], found by the pass inside the autograd Function."""


def _solve(problem: Problem) -> Any:
    """The engine's entry: the result as a torch tensor, or Declined."""
    x = problem.x
    if type(x) not in _PLAIN_TYPES:
        return Declined("input is not a plain torch.Tensor (subclasses take the portable path)")
    scanned = _scan(problem)
    if isinstance(scanned, Declined):
        return scanned
    if not x.is_cpu:
        return _cuda(problem)
    declined = cpu_pass.declines(problem)
    if declined is not None:
        return declined
    if problem.out_dtype not in _CPU_DTYPES:
        return Declined("a result dtype outside float16/bfloat16/float32/float64")
    if not scanned:
        return _forward(problem, problem.x, problem.y, problem.weight, problem.pos_weight)
    try:
        return _CPULoss.apply(problem.x, problem.y, problem.weight, problem.pos_weight, _settings(problem))
    except _Outside:
        return _OUTSIDE


def _scan(problem: Problem) -> bool | Declined:
    """One pass over the tensors: Declined where a mode, tensor kind, device or dtype needs the
    portable path; else whether any of them wants a gradient (with grad mode on)."""
    x = problem.x
    if x.numel() == 0:
        return Declined("empty input")
    if torch.compiler.is_compiling():
        return Declined("torch.compile tracing")
    if private.forward_ad_active():
        return Declined("forward-mode AD")
    cpu = x.is_cpu
    if not cpu and not x.is_cuda:
        return Declined("device outside CPU and CUDA")
    device = None if cpu else x.device
    wants_grad = False
    for t in problem.arrays():
        if t is None or type(t) is float or type(t) is int or type(t) is bool:
            continue
        if type(t) not in _PLAIN_TYPES or t.layout != torch.strided or private.functorch_wrapped(t):
            return Declined("tensor subclass, functorch transform or sparse layout")
        if not (t.is_cpu if cpu else t.device == device):
            return Declined("operands on another device")
        if t.dtype not in _CPU_DTYPES:
            return Declined("dtypes outside float16/bfloat16/float32/float64")
        wants_grad = wants_grad or t.requires_grad
    return wants_grad and torch.is_grad_enabled()


ENGINE = NamedEngine("torch-cpu-pass+triton-cuda", _solve)


def _arg(t: Any) -> Any:
    """A tensor as the pass takes it: its negative bit resolved (the pass reads memory, and
    DLPack has no such bit), with the bytes its storage holds from the tensor's first element,
    so that C refuses a view past a freed or shrunk storage. Numbers and None pass through."""
    if t is None or type(t) is float or type(t) is int or type(t) is bool:
        return t
    if t.is_neg():
        t = t.resolve_neg()
    return t, t.untyped_storage().nbytes() - t.storage_offset() * t.element_size()


def _forward(problem: Problem, x, y, weight, pos_weight, d=None) -> Any:
    """The loss as a tensor (d loss/d x, upstream 1, into ``d`` if given), or Declined for
    probabilities outside [0, 1]."""
    reduction, out_dtype = problem.reduction, problem.out_dtype
    loss_out = torch.empty_like(x, dtype=out_dtype) if reduction == "none" else None
    size = x.numel()
    big = size >= _PARALLEL_MIN
    totals = cpu_pass.run(
        problem.kind, _arg(x), _arg(y), _arg(weight), _arg(pos_weight), reduction=reduction, loss_out=loss_out,
        grad_out=d, result_dtype=_CPU_DTYPES[out_dtype], size_hint=size, options=problem.options,
        threads=torch.get_num_threads() if big else 1, host_team=HOST_OPENMP, parallel_min=_PARALLEL_MIN,
    )
    settled = cpu_pass.settle(totals, reduction, problem.options)
    if settled.outside:
        return _OUTSIDE
    if d is not None and settled.grad_scale != 1.0:
        d.mul_(settled.grad_scale)
    return loss_out if loss_out is not None else torch.scalar_tensor(settled.value, dtype=out_dtype)


def _settings(problem: Problem) -> Problem:
    """The problem with its tensors taken out, for the autograd Function: its tensors are the
    Function's inputs, saved with ``save_for_backward`` (so that in-place changes are caught and
    saved-tensor hooks, as activation checkpointing uses, see them); numbers and None stay.
    Built field by field: ``_replace`` costs µs on every call."""
    kind, _, y, weight, pos_weight, reduction, out_dtype, options, _, portable = problem
    return Problem(kind, None, _number(y), _number(weight), _number(pos_weight), reduction, out_dtype, options,
                   None, portable)


def _number(a: Any) -> Any:
    return None if isinstance(a, torch.Tensor) else a


def _tensor(a: Any) -> Any:
    return a if isinstance(a, torch.Tensor) else None


class _CPULoss(torch.autograd.Function):
    """Forward (loss, and d loss/d x in the same pass) by the CPU pass; backward by torch ops."""

    @staticmethod
    def forward(ctx, x, y, weight, pos_weight, settings):
        ctx.d = _forward_derivative_buffer(x, settings) if ctx.needs_input_grad[0] else None
        result = _forward(settings, x, y, weight, pos_weight, ctx.d)
        if isinstance(result, Declined):
            raise _Outside
        ctx.settings, ctx.x_dtype = settings, x.dtype
        ctx.save_for_backward(x, _tensor(y), _tensor(weight), _tensor(pos_weight))
        return result

    @staticmethod
    def backward(ctx, grad):
        d, ctx.d = ctx.d, None  # handed over once; a retain_graph rerun recomputes it
        one = _is_one(grad)
        if d is not None and d.dtype in _HALF and not one:
            d = None  # rounded to x's dtype already: only an upstream of exactly 1 may take it as it is
        wanted = ctx.needs_input_grad[:4]
        if d is not None and not (wanted[1] or wanted[2] or wanted[3]) and not torch.is_grad_enabled():
            # the common call, first-order and for x alone: the saved derivative times the upstream
            return _times_upstream(d, grad, ctx.x_dtype, one), None, None, None, None
        x, *saved = ctx.saved_tensors
        settings = ctx.settings
        y, weight, pos_weight = (t if t is not None else n for t, n in zip(saved, settings[2:5]))
        problem = settings._replace(x=x, y=y, weight=weight, pos_weight=pos_weight)
        if torch.is_grad_enabled():  # create_graph=True: differentiable, through the portable formula
            return (*portable_grads(problem, grad, wanted, create_graph=True), None)
        grads: list[Any] = [None] * 5
        if wanted[0]:
            if d is None:
                d = _derivative_buffer(x)
                _forward(problem, x, y, weight, pos_weight, d)
            grads[0] = _times_upstream(d, grad, x.dtype, one)
        if any(wanted[1:]):
            others = portable_grads(problem, grad, (False, *wanted[1:]), create_graph=False)
            grads[1:4] = others[1:]
        return tuple(grads)


def _times_upstream(d, grad, dtype, one: bool):
    """d * grad with torch ops, in ``dtype`` (a batched ``grad`` under is_grads_batched stays
    batched); ``one``: grad is exactly 1 (``_is_one``), d is the gradient as it is."""
    if one:
        pass
    elif grad.dim() == 0 and not private.batched(grad):
        d.mul_(float(grad))
    else:
        d = d * grad
    return d if d.dtype == dtype else d.to(dtype)


def _is_one(grad) -> bool:
    """Whether the upstream gradient is one element of exactly 1 on the CPU, read through the
    boundary (its negative bit resolved first), not a batch of them."""
    if grad.dim() != 0 or private.batched(grad) or not grad.is_cpu:
        return False
    return cpu_pass.is_one(grad.resolve_neg() if grad.is_neg() else grad)


def portable_grads(problem: Problem, grad, wanted, create_graph: bool) -> list:
    """Gradients of the portable formula's loss towards (x, y, weight, pos_weight) where ``wanted``,
    each of its operand's shape and dtype.

    >>> from bce_compat import _plan
    >>> from bce_compat._validate import ArgNames
    >>> x = torch.zeros(2); y = torch.tensor([1.0, 0.0], requires_grad=True)
    >>> plan = _plan.plan_for("f", ArgNames(), x, y, None, None)
    >>> p = Problem("logits", x, y, reduction="sum", out_dtype=torch.float32, portable=plan.portable)
    >>> portable_grads(p, torch.tensor(1.0), (False, True, False, False), False)[1]
    tensor([0., 0.])
    """
    operands = problem.arrays()
    with torch.enable_grad():
        leaves = operands if create_graph else tuple(
            a.detach().requires_grad_(w) if torch.is_tensor(a) else a for a, w in zip(operands, wanted)
        )
        loss = problem.by_formula(problem._replace(x=leaves[0], y=leaves[1], weight=leaves[2], pos_weight=leaves[3]))
        targets = [a for a, w in zip(leaves, wanted) if w]
        found = iter(torch.autograd.grad(loss, targets, grad.to(loss.dtype), create_graph=create_graph,
                                         allow_unused=True))
    return [next(found) if w else None for w in wanted]


def _derivative_buffer(x) -> torch.Tensor:
    """Where the pass writes d loss/d x: x's shape and layout, float64 for float64 x, else float32
    (the backward multiplies by the upstream and then rounds once to x's dtype)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return torch.empty_like(x, dtype=dtype)


def _forward_derivative_buffer(x, problem: Problem) -> torch.Tensor:
    """The forward's buffer for d loss/d x. For float16 and bfloat16 x it is in x's dtype: the pass
    writes the float32 derivative rounded once more, the gradient itself when the upstream is 1
    (``loss.backward()``), with no float32 buffer and no conversion after; any other upstream
    recomputes in float32 (``_CPULoss.backward``). Not where a mean over kept elements
    (``ignore_index``) scales d after the pass: that scaling needs the float32 value."""
    if x.dtype in _HALF and not (problem.reduction == "mean" and "ignore_index" in problem.options):
        return torch.empty_like(x)
    return _derivative_buffer(x)


def _cuda(problem: Problem) -> Any:
    """CUDA tensors: the Triton kernels, for the logits loss without options in float16,
    bfloat16 and float32."""
    declined = unsupported(problem, kinds=("logits",))
    if declined is not None:
        return declined
    if problem.out_dtype not in _CUDA_DTYPES:
        return Declined("CUDA dtypes other than float16/bfloat16/float32")
    if not triton_importable():
        return Declined("CUDA without an importable Triton")
    from bce_compat.backends import torch_triton

    portable = problem.portable
    if portable is None:
        return Declined("no portable path to check the Triton kernel against (a Problem built by hand)")
    plain = problem._replace(options=NO_OPTIONS, memo=None)

    def reference(x, y, weight, pos_weight, reduction, out_dtype):
        return portable(plain._replace(x=x, y=y, weight=weight, pos_weight=pos_weight, reduction=reduction,
                                       out_dtype=out_dtype))

    x, y, weight, pos_weight = problem.arrays()
    result = torch_triton.bce_with_logits(x, y, weight, pos_weight, problem.reduction, problem.out_dtype, reference)
    if result is None:
        return Declined("the Triton kernel failed its self-check on this device and dtype (KernelCheckWarning)")
    return result


@functools.cache
def triton_importable() -> bool:
    """Triton is installed and can be imported (importing it after tensorflow aborts the process)."""
    if "triton" in sys.modules:
        return True
    return "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None


def is_batched(t) -> bool:
    """A tensor of a vmap level (torch.func, or the legacy vmap behind is_grads_batched)."""
    return private.batched(t)
