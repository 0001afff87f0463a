"""Torch fast path for BCE-with-logits: one ``torch.autograd.Function`` per device kind.

CPU tensors run the chunked float64 kernels of ``numpy_fast`` on zero-copy NumPy views (forward
and analytic backward); CUDA tensors run the Triton kernels of ``torch_triton``. Anything else
(bfloat16 on CPU, float64 on CUDA, CUDA without an importable Triton, gradients wanted for target/weight/pos_weight, torch.compile
tracing, functorch transforms, forward-mode AD, tensor subclasses, empty input, mixed devices)
returns NotImplemented and takes the portable path, which handles every case.

>>> import torch
>>> x = torch.tensor([-20.0, 0.0], requires_grad=True)
>>> loss = bce_with_logits(x, torch.zeros(2), None, None, "sum", torch.float32)
>>> loss.backward(); x.grad
tensor([2.0612e-09, 5.0000e-01])
"""

from __future__ import annotations

import functools
import importlib.util
import sys

import torch

from bce_compat.backends import numpy_fast
from bce_compat.backends.contract import Declined, NamedEngine, Problem, unsupported_options

_CPU_DTYPES = (torch.float16, torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def bce_with_logits(x, y, weight, pos_weight, reduction, out_dtype):
    """autograd.Function: Triton kernels on CUDA (fp32/fp16/bf16), chunked float64 kernels on CPU."""
    if x.is_cpu:
        if out_dtype not in _CPU_DTYPES or not eligible(x, (y, weight, pos_weight), _CPU_DTYPES):
            return NotImplemented
        if x.requires_grad and torch.is_grad_enabled():
            return _CPULoss.apply(x, y, weight, pos_weight, reduction, out_dtype)
        return _cpu_forward(x, y, weight, pos_weight, reduction, out_dtype)  # no graph to record
    if not x.is_cuda or out_dtype not in _CUDA_DTYPES or not eligible(x, (y, weight, pos_weight), _CUDA_DTYPES):
        return NotImplemented
    if not triton_importable():
        return NotImplemented
    from bce_compat.backends import torch_triton

    return torch_triton.bce_with_logits(x, y, weight, pos_weight, reduction, out_dtype)


def _cpu_forward(x, y, weight, pos_weight, reduction, out_dtype):
    operands = tuple(map(_numpy, (y, weight, pos_weight)))
    result = numpy_fast.evaluate(
        numpy_fast._loss_chunk, _numpy(x), operands, reduction, _numpy_dtype(out_dtype), fns=_elementary(out_dtype, x.numel())
    )
    return torch.from_numpy(result)


def _vectorised(op):
    def apply(a, out):
        op(torch.from_numpy(a), out=torch.from_numpy(out))
        return out

    return apply


# torch's own float64 exp and log1p (SLEEF, vectorised, within 1 ulp) are 2-3x faster than
# libm's. For float16/float32 results that extra float64 ulp is ~2**-29 of a result ulp, so the
# loss still rounds within SPEC §4; float64 results keep libm's (an ulp there counts). Up to one
# chunk, wrapping the buffers for torch costs more than it saves.
_TORCH_ELEMENTARY = numpy_fast.Elementary(exp=_vectorised(torch.exp), log1p=_vectorised(torch.log1p))


def _elementary(out_dtype, size):
    if out_dtype == torch.float64 or size <= numpy_fast.CHUNK:
        return numpy_fast.LIBM
    return _TORCH_ELEMENTARY


@functools.cache
def triton_importable() -> bool:
    """Triton is installed and can be imported (importing it after tensorflow aborts the process)."""
    if "triton" in sys.modules:
        return True
    return "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None


def eligible(x, others, dtypes) -> bool:
    """Plain strided tensors on x's device, dtypes in ``dtypes``, only ``x`` wanting a gradient."""
    if x.numel() == 0 or torch.compiler.is_compiling() or _forward_ad_active():
        return False
    grad_on, device = torch.is_grad_enabled(), x.device
    if not _plain(x) or x.dtype not in dtypes:
        return False
    for t in others:
        if t is None or type(t) is float or type(t) is int:
            continue
        if not _plain(t) or t.dtype not in dtypes or t.device != device or (grad_on and t.requires_grad):
            return False
    return True


_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_functorch_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", lambda t: False)


def _plain(t) -> bool:
    return type(t) in _PLAIN_TYPES and t.layout == torch.strided and not _functorch_wrapped(t)


def _forward_ad_active() -> bool:
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


def _numpy(t):
    """A zero-copy NumPy view of a CPU tensor (numbers and None pass through)."""
    if t is None or type(t) is float or type(t) is int:
        return t
    return t.detach().numpy() if t.requires_grad else t.numpy()


_NUMPY_DTYPES: dict = {}


def _numpy_dtype(dtype):
    if dtype not in _NUMPY_DTYPES:
        _NUMPY_DTYPES[dtype] = torch.empty((), dtype=dtype).numpy().dtype
    return _NUMPY_DTYPES[dtype]


class _CPULoss(torch.autograd.Function):
    """Forward and analytic backward through the chunked float64 NumPy kernels."""

    @staticmethod
    def forward(ctx, x, y, weight, pos_weight, reduction, out_dtype):
        operands = (y, weight, pos_weight)
        ctx.grad_x = None
        if ctx.needs_input_grad[0] and reduction != "none" and x.dtype in (torch.float32, torch.float64):
            # mean/sum: the gradient comes out of the same pass; backward only scales it
            ctx.grad_x = torch.empty(x.shape, dtype=x.dtype)
            result = numpy_fast.loss_and_grad(
                _numpy(x), *map(_numpy, operands), reduction, _numpy_dtype(out_dtype), ctx.grad_x.numpy(), _elementary(x.dtype, x.numel())
            )
        else:
            result = _cpu_forward(x, y, weight, pos_weight, reduction, out_dtype)
        ctx.reduction, ctx.numbers = reduction, [a if isinstance(a, (int, float)) else None for a in operands]
        ctx.save_for_backward(x, *(a if torch.is_tensor(a) else None for a in operands))
        return result if torch.is_tensor(result) else torch.from_numpy(result)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.needs_input_grad[0]:
            return (None,) * 6
        x, *saved = ctx.saved_tensors
        y, weight, pos_weight = (t if t is not None else n for t, n in zip(saved, ctx.numbers))
        grad_x, ctx.grad_x = ctx.grad_x, None  # handed over once; a retain_graph rerun recomputes
        if grad_x is not None and not torch.is_grad_enabled():
            g = float(grad)
            return (grad_x if g == 1.0 else grad_x.mul_(g)), None, None, None, None, None
        if torch.is_grad_enabled():  # create_graph=True: a differentiable formula for double backward
            grad_x = grad_reference(x, y, weight, pos_weight, grad, ctx.reduction)
        else:
            g = _numpy(grad.contiguous()) if ctx.reduction == "none" else _scalar_grad(grad, ctx.reduction, x.numel())
            grad_x = torch.from_numpy(
                numpy_fast.grad_logits(
                    _numpy(x), _numpy(y), _numpy(weight), _numpy(pos_weight), g, _numpy_dtype(x.dtype), _elementary(x.dtype, x.numel())
                )
            )
        return grad_x, None, None, None, None, None


def _scalar_grad(grad, reduction, size):
    g = float(grad)
    return g / size if reduction == "mean" else g


def grad_reference(x, y, weight, pos_weight, grad, reduction):
    """d loss / d x times ``grad`` with differentiable torch ops (float32 for half inputs).

    w * [(1-y)*sigmoid(x) - p*y*sigmoid(-x)], each term exactly 0 where its coefficient is 0.
    """
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xc = x.to(compute)
    y = y.to(compute)
    positive = y if pos_weight is None else y * (pos_weight.to(compute) if torch.is_tensor(pos_weight) else pos_weight)
    negative = 1 - y
    zero = torch.zeros((), dtype=compute, device=x.device)
    d = torch.where(negative == 0, zero, negative * torch.sigmoid(xc)) - torch.where(
        positive == 0, zero, positive * torch.sigmoid(-xc)
    )
    if weight is not None:
        d = d * (weight.to(compute) if torch.is_tensor(weight) else weight)
    g = grad.to(compute)
    if reduction == "mean":
        g = g / x.numel()
    return (d * g).to(x.dtype)


_OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


def _solve(problem: Problem):
    """The engine's entry: the logits loss without options, or Declined."""
    if problem.kind != "logits":
        return Declined(f"kind {problem.kind!r} is not implemented")
    declined = unsupported_options(problem, _OPTIONS)
    if declined is not None:
        return declined
    result = bce_with_logits(*problem.arrays(), problem.reduction, problem.out_dtype)
    return Declined("inputs outside this engine's dtypes, devices or modes") if result is NotImplemented else result


ENGINE = NamedEngine('torch-cpu-chunked+triton-cuda', _solve)
