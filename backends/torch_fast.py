"""Torch engine for BCE-with-logits: one ``torch.autograd.Function`` per device kind.

CPU tensors run ``numpy_fast``'s fused compiled pass on zero-copy NumPy views: the forward computes
the loss and, when x wants a gradient, d loss/d x in the same pass (saved; the backward only
multiplies it by the upstream gradient with torch ops, so batched gradients work). Inputs past
one block are split over torch's own OpenMP team, ``torch.get_num_threads()`` threads (see
``HOST_OPENMP``). CUDA tensors run the Triton kernels of ``torch_triton``. The forward is the
same kernel whether or not a gradient is wanted, so the loss has the same bits either way.

Gradients for target, weight and pos_weight, and double backward (``create_graph=True``), are
recomputed through the portable formula (``bce_compat._math``) under torch's autograd.

The engine declines (and the portable path computes) whatever it cannot serve reliably: kinds
and options it does not implement, bfloat16 on CPU, float64 on CUDA, CUDA without Triton,
``torch.compile`` tracing, ``torch.func`` transforms (functorch-wrapped tensors), forward-mode
AD, tensor subclasses, sparse layouts, empty input and mixed devices.

>>> import torch
>>> from bce_compat.backends.contract import Problem
>>> x = torch.tensor([-20.0, 0.0], requires_grad=True)
>>> loss = ENGINE(Problem("logits", x, torch.zeros(2), reduction="sum", out_dtype=torch.float32))
>>> loss.backward(); x.grad
tensor([2.0612e-09, 5.0000e-01])
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import sys

import numpy as np
import torch

from bce_compat.backends import numpy_fast
from bce_compat.backends.contract import Declined, NamedEngine, Problem, unsupported

_CPU_DTYPES = (torch.float16, torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


def _solve(problem: Problem):
    """The engine's entry: the logits loss without options on plain tensors, or Declined."""
    declined = unsupported(problem, kinds=("logits",), options=OPTIONS)
    if declined is not None:
        return declined
    x, out_dtype = problem.x, problem.out_dtype
    if not isinstance(x, torch.Tensor):
        return Declined("input is not a torch.Tensor")
    arrays = problem.arrays()
    scanned = _scan(x, arrays)
    if isinstance(scanned, Declined):
        return scanned
    if x.is_cpu:
        if not numpy_fast.AVAILABLE:
            return Declined("the compiled CPU pass was not built")
        if out_dtype not in _CPU_DTYPES:
            return Declined("CPU dtypes other than float16/32/64")
        return _cpu(*arrays, problem.reduction, out_dtype, wants_grad=scanned)
    if out_dtype not in _CUDA_DTYPES:
        return Declined("device or dtype outside CPU float16/32/64 and CUDA float16/bfloat16/32")
    if not triton_importable():
        return Declined("CUDA without an importable Triton")
    from bce_compat.backends import torch_triton

    return torch_triton.bce_with_logits(*arrays, problem.reduction, out_dtype)


def _scan(x, arrays) -> bool | Declined:
    """One pass over the tensors: Declined where a mode, tensor kind, device or dtype needs the
    portable path; else whether any of them wants a gradient (with grad mode on)."""
    if x.numel() == 0:
        return Declined("empty input")
    if torch.compiler.is_compiling():
        return Declined("torch.compile tracing")
    if _forward_ad_active():
        return Declined("forward-mode AD")
    cpu = x.is_cpu
    if not cpu and not x.is_cuda:
        return Declined("device outside CPU and CUDA")
    dtypes = _CPU_DTYPES if cpu else _CUDA_DTYPES
    device = None if cpu else x.device
    wants_grad = False
    for t in arrays:
        if t is None or type(t) is float or type(t) is int:
            continue
        if type(t) not in _PLAIN_TYPES or t.layout != torch.strided or _functorch_wrapped(t):
            return Declined("tensor subclass, functorch transform or sparse layout")
        if not (t.is_cpu if cpu else t.device == device):
            return Declined("operands on another device")
        if t.dtype not in dtypes:
            return Declined("dtypes outside CPU float16/32/64 and CUDA float16/bfloat16/32")
        wants_grad = wants_grad or t.requires_grad
    return wants_grad and torch.is_grad_enabled()


ENGINE = NamedEngine("torch-cpu-fused+triton-cuda", _solve)


def _cpu(x, y, weight, pos_weight, reduction, out_dtype, *, wants_grad):
    if wants_grad:
        # Function.apply's Python wrapper only adds functorch handling (about 6 µs a call); its C++
        # apply is called directly unless a torch.func transform is active.
        apply = _CPULoss.apply if torch._C._are_functorch_transforms_active() else _apply_cpu_loss
        return apply(x, y, weight, pos_weight, reduction, out_dtype)
    return _loss(x, y, weight, pos_weight, reduction, out_dtype)


def _loss(x, y, weight, pos_weight, reduction, out_dtype, d=None):
    """The loss as a tensor; d loss/d x (upstream 1) into the tensor ``d`` if given."""
    result = _one_block(x, y, weight, pos_weight, reduction, out_dtype, d)
    if result is None:
        result = torch.from_numpy(_loss_numpy(x, y, weight, pos_weight, reduction, out_dtype, _numpy(d)))
    return result


_WIDE = {torch.float32: False, torch.float64: True}  # what the pass reads and writes as it is: is it float64


def _one_block(x, y, weight, pos_weight, reduction, out_dtype, d):
    """The pass straight on the tensors' memory, for inputs of at most one block: their
    ``data_ptr()`` as raw buffers, where NumPy views and ``numpy_fast.loss`` would cost more than
    the pass itself (about 15 µs of a 30 µs call at 128 elements). None where it does not apply
    (``numpy_fast.raw_inputs``: more than one block, float16, a non-contiguous tensor, a
    broadcast that is not a tiling)."""
    if out_dtype not in _WIDE:
        return None
    inputs = numpy_fast.raw_inputs(x, (y, weight, pos_weight), _WIDE)
    if inputs is None:
        return None
    raw_x, operands, size = inputs
    loss_out = None
    if reduction == "none":
        loss_out = torch.empty_like(x) if out_dtype == x.dtype else torch.empty(x.shape, dtype=out_dtype)
    total = numpy_fast.one_block(
        raw_x, operands, size, _raw(loss_out), _raw(d), reduction, precise=_WIDE[out_dtype] or raw_x[2]
    )
    return loss_out if total is None else torch.scalar_tensor(total, dtype=out_dtype)


def _raw(t):
    return None if t is None else (t.data_ptr(), t.numel(), t.dtype == torch.float64)


# Right after a torch op, torch's OpenMP workers spin-wait on the other cores for a while, and a
# thread of ours shares a core with one of them: split over our pool below 2**20 elements, the
# pass ran slower than on one thread (bench/README.md). So where torch runs on OpenMP, the pass
# is split over torch's own team instead (torch.get_num_threads() of them, from two blocks);
# elsewhere over our pool from TORCH_PARALLEL_MIN.
TORCH_PARALLEL_MIN = 1 << 20
HOST_OPENMP = torch.backends.openmp.is_available() and numpy_fast.use_host_openmp()


def _loss_numpy(x, y, weight, pos_weight, reduction, out_dtype, grad_out=None):
    return numpy_fast.loss(
        _numpy(x), _numpy(y), _numpy(weight), _numpy(pos_weight), reduction, _numpy_dtype(out_dtype),
        grad_out=grad_out, parallel_min=TORCH_PARALLEL_MIN, host_threads=torch.get_num_threads() if HOST_OPENMP else 0,
    )


class _CPULoss(torch.autograd.Function):
    """Forward (loss, and d loss/d x in the same pass) by the fused kernel; backward by torch ops."""

    @staticmethod
    def forward(ctx, x, y, weight, pos_weight, reduction, out_dtype):
        # d loss/d x from the same pass (float32 for float16 x, so that the backward rounds once)
        wanted = ctx.needs_input_grad
        ctx.d = _derivative_buffer(x) if wanted[0] else None
        result = _loss(x, y, weight, pos_weight, reduction, out_dtype, ctx.d)
        ctx.reduction, ctx.out_dtype, ctx.x_dtype = reduction, out_dtype, x.dtype
        ctx.x_only = not (wanted[1] or wanted[2] or wanted[3])
        # numbers (and None) apart from the saved tensors; spelled out, as generators cost µs here
        tensor = isinstance(y, torch.Tensor), isinstance(weight, torch.Tensor), isinstance(pos_weight, torch.Tensor)
        ctx.numbers = (None if tensor[0] else y, None if tensor[1] else weight, None if tensor[2] else pos_weight)
        ctx.save_for_backward(x, y if tensor[0] else None, weight if tensor[1] else None, pos_weight if tensor[2] else None)
        return result

    @staticmethod
    def backward(ctx, grad):
        d, ctx.d = ctx.d, None  # handed over once; a retain_graph rerun recomputes it
        if d is not None and ctx.x_only and not torch.is_grad_enabled():
            # The common call, first-order and for x alone: the saved derivative times the
            # upstream gradient, with as few torch calls as possible (each costs µs here).
            return _times_upstream(d, grad, ctx.x_dtype), None, None, None, None, None
        x, *saved = ctx.saved_tensors
        y, weight, pos_weight = (t if t is not None else n for t, n in zip(saved, ctx.numbers))
        wanted = ctx.needs_input_grad[:4]
        if torch.is_grad_enabled():  # create_graph=True: differentiable, through the portable formula
            return (*portable_grads(x, y, weight, pos_weight, ctx.reduction, grad, wanted, create_graph=True), None, None)
        grads = [None] * 6
        if wanted[0]:
            if d is None:
                d = _derivative_buffer(x)
                _loss(x, y, weight, pos_weight, ctx.reduction, ctx.out_dtype, d)
            grads[0] = _times_upstream(d, grad, x.dtype)
        if any(wanted[1:]):
            others = portable_grads(x, y, weight, pos_weight, ctx.reduction, grad, (False, *wanted[1:]), create_graph=False)
            grads[1:4] = others[1:]
        return tuple(grads)


_apply_cpu_loss = super(torch.autograd.Function, _CPULoss).apply  # type: ignore[misc]


def _times_upstream(d, grad, dtype):
    """d * grad with torch ops (a batched ``grad`` under is_grads_batched stays batched)."""
    if grad.dim() == 0 and not is_batched(grad):
        if not _is_one(grad):
            d.mul_(float(grad))
    else:
        d = d * grad
    return d if d.dtype == dtype else d.to(dtype)


def _is_one(grad) -> bool:
    """Whether a plain 0-d CPU float32/float64 ``grad`` is exactly 1, read from its memory: 3 µs
    in a backward, where ``float(grad)`` takes 6-7."""
    reader = _C_FLOATS.get(grad.dtype)
    return reader is not None and grad.is_cpu and reader.from_address(grad.data_ptr()).value == 1.0


_C_FLOATS = {torch.float32: ctypes.c_float, torch.float64: ctypes.c_double}


def portable_grads(x, y, weight, pos_weight, reduction, grad, wanted, create_graph):
    """Gradients of the portable formula's loss for (x, y, weight, pos_weight) where ``wanted``.

    >>> x = torch.zeros(2); y = torch.tensor([1.0, 0.0], requires_grad=True)
    >>> portable_grads(x, y, None, None, "sum", torch.tensor(1.0), (False, True, False, False), False)[1]
    tensor([0., 0.])
    """
    import array_api_compat.torch as xp

    from bce_compat import _math

    operands = (x, y, weight, pos_weight)
    with torch.enable_grad():
        leaves = operands if create_graph else [
            a.detach().requires_grad_(w) if torch.is_tensor(a) else a for a, w in zip(operands, wanted)
        ]
        compute = _compute_dtype(x.dtype)
        cast = [a.to(compute) if torch.is_tensor(a) else a for a in leaves]
        loss = _math.reduce(xp, _math.bce_with_logits(xp, *cast), reduction)
        targets = [a for a, w in zip(leaves, wanted) if w]
        found = iter(torch.autograd.grad(loss, targets, grad.to(loss.dtype), create_graph=create_graph, allow_unused=True))
    return [next(found) if w else None for w in wanted]  # each of its operand's shape and dtype


def _derivative_buffer(x) -> torch.Tensor:
    """Where the pass writes d loss/d x: a C-contiguous tensor of x's shape, in x's compute dtype
    (float32 for float16)."""
    if x.dtype in _WIDE:
        return torch.empty_like(x, memory_format=torch.contiguous_format)
    return torch.empty(x.shape, dtype=_compute_dtype(x.dtype))


def _compute_dtype(dtype):
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@functools.cache
def triton_importable() -> bool:
    """Triton is installed and can be imported (importing it after tensorflow aborts the process)."""
    if "triton" in sys.modules:
        return True
    return "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None


_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_functorch_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", lambda t: False)


_legacy_batched = getattr(torch._C._functorch, "is_legacy_batchedtensor", lambda t: False)


def is_batched(t) -> bool:
    """A tensor of a vmap level (torch.func, or the legacy vmap behind is_grads_batched)."""
    return _functorch_wrapped(t) or _legacy_batched(t)


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
        _NUMPY_DTYPES[dtype] = np.dtype(str(dtype).removeprefix("torch."))
    return _NUMPY_DTYPES[dtype]
