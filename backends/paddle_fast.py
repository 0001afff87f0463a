"""Paddle CPU engine for BCE-with-logits: ``numpy_fast``'s kernel on zero-copy views of the tensors.

Every dygraph call on CPU tensors of float16/32/64 takes it, whether a gradient is wanted or
not, so the loss has the same bits either way (docs/contract.md §3). With a gradient wanted for the logit,
the kernel runs inside a ``paddle.autograd.PyLayer`` whose forward is the very same NumPy call
and whose backward is ``numpy_fast.grad``; when Paddle asks that backward for a graph of its
own (``paddle.grad(..., create_graph=True)``) it is computed from Paddle ops, so the second
derivative is Paddle's to take. Gradients towards label, weight and pos_weight come from
Paddle's autograd through a zero-valued term (``_with_operand_grads``). Static programs and
``to_static`` (graph values), GPU places, bfloat16 and empty inputs are declined: the portable
path computes those.

>>> import paddle
>>> float(bce_with_logits(paddle.to_tensor([-20.0]), paddle.to_tensor([0.0]), None, None, "sum", paddle.float32))
2.06115369216775e-09
"""

from __future__ import annotations

import math

import numpy as np
import paddle
from paddle import _C_ops  # the kernel behind paddle.full, without its Python wrapper

from bce_compat.backends import numpy_fast
from bce_compat.backends._float_dtypes import dtype_name
from bce_compat.backends.contract import Declined, NamedEngine, Problem

_NUMPY_DTYPES = {name: np.dtype(name) for name in ("float16", "float32", "float64")}
_CPU = paddle.CPUPlace()
_COPY_BELOW = 2048  # elements: a copy to NumPy costs less than a DLPack view up to here


def _cpu_only_build() -> bool:
    """A Paddle built for the CPU alone (the PyPI ``paddlepaddle`` wheel) has no other place, so
    the engine can skip reading each tensor's place (about 1 µs apiece)."""
    device = paddle.device
    others = ("is_compiled_with_cuda", "is_compiled_with_rocm", "is_compiled_with_xpu", "is_compiled_with_ipu")
    return not any(getattr(device, name, lambda: True)() for name in others) and not device.get_all_custom_device_type()


_CPU_ONLY = _cpu_only_build()


def bce_with_logits(x, y, weight, pos_weight, reduction, out_dtype):
    """The loss from the compiled pass, differentiable where a gradient is wanted; NotImplemented if ineligible."""
    wants = _scan(x, (y, weight, pos_weight)) if dtype_name(out_dtype) in _NUMPY_DTYPES else None
    if wants is None:
        return NotImplemented
    x_wants, others_want = wants
    if x_wants:
        value = _KernelLoss.apply(x, _Operands(y, weight, pos_weight), reduction, out_dtype)
    else:
        value = _forward(x, y, weight, pos_weight, reduction, out_dtype)
    if others_want:
        value = _with_operand_grads(value, Problem("logits", x, y, weight, pos_weight, reduction, out_dtype))
    return value


def _scan(x, others):
    """One pass over the tensors: None where ineligible, else (x wants a gradient, another operand does)."""
    if not paddle.in_dynamic_mode() or not isinstance(x, paddle.Tensor):
        return None
    grad_on = paddle.is_grad_enabled()
    others_want = False
    for t in (x, *others):
        if not _is_tensor(t):
            continue
        if not isinstance(t, paddle.Tensor) or dtype_name(t.dtype) not in _NUMPY_DTYPES:
            return None
        if not _CPU_ONLY and not t.place.is_cpu_place():
            return None
        if t is not x:
            others_want = others_want or not t.stop_gradient
    if 0 in x.shape:
        return None
    return grad_on and not x.stop_gradient, grad_on and others_want


def _forward(x, y, weight, pos_weight, reduction, out_dtype):
    small = math.prod(x.shape) <= _COPY_BELOW
    operands = tuple(_numpy(a, small) for a in (y, weight, pos_weight))
    result = numpy_fast.loss(_numpy(x, small), *operands, reduction, _NUMPY_DTYPES[dtype_name(out_dtype)])
    return _to_paddle(result, out_dtype)


class _Operands:
    """label, weight, pos_weight, handed to the PyLayer in a box so that it does not take them as inputs.

    A PyLayer with two differentiable inputs fails under ``paddle.grad`` when one of them is
    not on the way to the requested inputs (Paddle 3.3 then wants None for it, and a backward
    cannot tell); so the kernel's PyLayer differentiates the logit only, and the others get
    their gradients from ``_with_operand_grads``.
    """

    __slots__ = ("y", "weight", "pos_weight")

    def __init__(self, y, weight, pos_weight):
        self.y, self.weight, self.pos_weight = y, weight, pos_weight


class _KernelLoss(paddle.autograd.PyLayer):
    """The NumPy kernel as a Paddle op of the logit: its forward bits are exactly ``_forward``'s."""

    @staticmethod
    def forward(ctx, x, operands, reduction, out_dtype):
        ctx.save_for_backward(x)
        ctx.operands, ctx.reduction = operands, reduction
        return _forward(x, operands.y, operands.weight, operands.pos_weight, reduction, out_dtype)

    @staticmethod
    def backward(ctx, upstream):
        (x,) = ctx.saved_tensor()
        o = ctx.operands
        if paddle.is_grad_enabled():  # create_graph: Paddle must be able to differentiate this one
            return _graph_grad_x(x, o.y, o.weight, o.pos_weight, upstream, ctx.reduction)
        return _kernel_grad_x(x, o.y, o.weight, o.pos_weight, upstream, ctx.reduction)


def _kernel_grad_x(x, y, weight, pos_weight, upstream, reduction):
    """d loss / d logit from NumPy's kernel, in the logit's dtype."""
    small = math.prod(x.shape) <= _COPY_BELOW
    if reduction == "none":
        up = _numpy(upstream, small)
    else:
        up = float(upstream) / (math.prod(x.shape) if reduction == "mean" else 1)
    operands = tuple(_numpy(a, small) for a in (y, weight, pos_weight))
    g = numpy_fast.grad(_numpy(x, small), *operands, up, np.dtype(dtype_name(x.dtype)))
    return _to_paddle(g, x.dtype)


def _graph_grad_x(x, y, weight, pos_weight, upstream, reduction):
    """d loss / d logit = w*((1-y)*sigmoid(x) - p*y*sigmoid(-x)) times upstream, in Paddle ops.

    Each sigmoid comes from exp(-|x|) (no overflow, and 0.5 at x = 0); Paddle differentiates
    this again, towards the logit and towards label, weight and pos_weight.
    """
    from bce_compat.backends.paddle import namespace

    xp = namespace(x)
    dtype = _compute_dtype(x, y, weight, pos_weight)
    xc, yc, wc, pc = (xp.astype(a, dtype) if _is_tensor(a) else a for a in (x, y, weight, pos_weight))
    u = xp.astype(upstream, dtype)
    if reduction == "mean":
        u = u / math.prod(x.shape)
    positive = xc > 0
    e = xp.exp(xp.where(positive, -xc, xc))  # exp(-|x|)
    r = 1 / (1 + e)
    sigmoid, sigmoid_neg = xp.where(positive, r, e * r), xp.where(positive, e * r, r)
    c_pos = yc if pc is None else pc * yc
    g = u * ((1 - yc) * sigmoid - c_pos * sigmoid_neg)
    return xp.astype(g if wc is None else g * wc, x.dtype)


def _with_operand_grads(value, problem: Problem):
    """``value`` unchanged bit for bit, with Paddle's gradient towards label, weight and pos_weight.

    The portable loss of the detached logit, c, carries those gradients; ``value - (c' - c)``
    with c' = c detached adds them, and subtracting the exact +0 of c' - c keeps every bit of
    ``value`` (even -0). Where c is not finite, c' - c would be NaN: there the term is 0.
    """
    from bce_compat import _loss
    from bce_compat.backends.paddle import namespace

    xp = namespace(problem.x)
    dtype = _compute_dtype(*problem.arrays())
    # in float32 for float16 (Paddle has no float16 CPU subtract); the round trip is exact
    c = _loss.portable(problem._replace(x=problem.x.detach(), out_dtype=dtype), xp, dtype)
    c_const = c.detach()
    zero = xp.where(xp.isfinite(c_const), c_const - c, xp.zeros_like(c))
    return xp.astype(xp.astype(value, dtype) - zero, problem.out_dtype)


def _compute_dtype(*arrays):
    """The promoted dtype of the tensors, float32 for float16 (as the portable path computes)."""
    names = {dtype_name(a.dtype) for a in arrays if _is_tensor(a)}
    widest = "float64" if "float64" in names else "float32"
    return getattr(paddle, widest)


def _is_tensor(a) -> bool:
    return a is not None and type(a) not in (bool, int, float)


def _numpy(t, small: bool):
    """NumPy data of a CPU tensor: a zero-copy DLPack view, or for small ones a copy (cheaper)."""
    if not _is_tensor(t):
        return t
    return t.numpy() if small else np.from_dlpack(t.detach())


def _to_paddle(array, dtype):
    """Our results are fresh C-contiguous arrays: DLPack hands them over without a copy.

    A 0-d result (mean, sum) is made by Paddle's ``full`` kernel on the CPU instead (2 us, against
    12 for ``paddle.full``'s Python wrapper); the value is already rounded to ``dtype``, so it is exact.
    """
    if array.ndim == 0:
        try:
            return _C_ops.full([], float(array), dtype, _CPU)
        except (AttributeError, TypeError, ValueError):  # another Paddle's internal signature: DLPack
            pass
    return paddle.utils.dlpack.from_dlpack(array if array.flags.c_contiguous else array.copy())


_OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


def _solve(problem: Problem):
    """The engine's entry: the logits loss without options, or Declined."""
    declined = numpy_fast.declines(problem, _OPTIONS)
    if declined is not None:
        return declined
    result = bce_with_logits(*problem.arrays(), problem.reduction, problem.out_dtype)
    return Declined("inputs outside this engine's dtypes, devices or modes") if result is NotImplemented else result


ENGINE = NamedEngine("paddle-cpu-numpy", _solve)
