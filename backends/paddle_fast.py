"""Paddle CPU engine for BCE-with-logits: ``numpy_fast``'s compiled pass on the tensors' memory.

Every dygraph call on CPU tensors of float16/32/64 takes it, whether a gradient is wanted or
not, so the loss has the same bits either way (docs/contract.md §3). Inputs of one block
(``numpy_fast.BLOCK`` elements) hand the pass their ``data_ptr()``; larger ones, and float16,
go through NumPy views. With a gradient wanted for the logit, the pass runs inside a
``paddle.autograd.PyLayer`` and writes d loss/d x in the same pass, which the backward
multiplies by the upstream gradient; when Paddle asks that backward for a graph of its
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

import ctypes
import math

import numpy as np
import paddle
from paddle import _C_ops  # the kernel behind paddle.full, without its Python wrapper

from bce_compat.backends import numpy_fast
from bce_compat.backends._float_dtypes import dtype_name
from bce_compat.backends.contract import Declined, NamedEngine, Problem

_NUMPY_DTYPES = {name: np.dtype(name) for name in ("float16", "float32", "float64")}
_FLOATS = frozenset((paddle.float16, paddle.float32, paddle.float64))  # dygraph dtypes (a set probe, not dtype_name's)
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
    wants = _scan(x, (y, weight, pos_weight)) if out_dtype in _FLOATS else None
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
        if not isinstance(t, paddle.Tensor) or t.dtype not in _FLOATS:
            return None
        if not _CPU_ONLY and not t.place.is_cpu_place():
            return None
        if t is not x:
            others_want = others_want or not t.stop_gradient
    if 0 in x.shape:
        return None
    return grad_on and not x.stop_gradient, grad_on and others_want


def _forward(x, y, weight, pos_weight, reduction, out_dtype, d=None):
    """The loss as a Paddle tensor; d loss/d x (upstream 1, scaled for mean) into the tensor ``d`` if given."""
    result = _one_block(x, y, weight, pos_weight, reduction, out_dtype, d)
    if result is not None:
        return result
    small = math.prod(x.shape) <= _COPY_BELOW
    operands = tuple(_numpy(a, small) for a in (y, weight, pos_weight))
    grad_out = None if d is None else np.from_dlpack(d)  # writable: the pass writes the tensor itself
    out = _NUMPY_DTYPES[dtype_name(out_dtype)]
    result = numpy_fast.loss(_numpy(x, small), *operands, reduction, out, grad_out=grad_out)
    return _to_paddle(result, out_dtype)


_WIDE = {paddle.float32: False, paddle.float64: True}  # what the pass reads and writes as it is: is it float64


def _one_block(x, y, weight, pos_weight, reduction, out_dtype, d):
    """The pass straight on the tensors' memory (their ``data_ptr()``) for inputs of one block,
    without NumPy copies or views; None where ``numpy_fast.raw_inputs`` says it does not apply."""
    wide_out = _WIDE.get(out_dtype)
    if wide_out is None:
        return None
    inputs = numpy_fast.raw_inputs(x, (y, weight, pos_weight), _WIDE)
    if inputs is None:
        return None
    raw_x, operands, size = inputs
    loss_out = _empty_like(x, out_dtype) if reduction == "none" else None
    total = numpy_fast.one_block(
        raw_x, operands, size, _raw(loss_out, size), _raw(d, size), reduction, precise=wide_out or raw_x[2]
    )
    return loss_out if total is None else _scalar(total, out_dtype)


def _raw(t, size):
    return None if t is None else (t.data_ptr(), size, t.dtype == paddle.float64)


def _empty_like(x, dtype):
    """An uninitialised CPU tensor of x's shape, by Paddle's ``empty_like`` kernel (2 µs, against
    11 for ``paddle.empty``'s Python wrapper)."""
    try:
        return _C_ops.empty_like(x, dtype, _CPU)
    except (AttributeError, TypeError, ValueError):  # another Paddle's internal signature
        return paddle.empty(x.shape, dtype=dtype)


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
    """The NumPy kernel as a Paddle op of the logit: its forward bits are exactly ``_forward``'s,
    and the same pass writes d loss/d x, which the backward multiplies by the upstream gradient."""

    @staticmethod
    def forward(ctx, x, operands, reduction, out_dtype):
        ctx.save_for_backward(x)
        ctx.operands, ctx.reduction, ctx.x_dtype, ctx.out_dtype = operands, reduction, x.dtype, out_dtype
        ctx.d = _derivative_buffer(x)
        return _forward(x, operands.y, operands.weight, operands.pos_weight, reduction, out_dtype, ctx.d)

    @staticmethod
    def backward(ctx, upstream):
        if paddle.is_grad_enabled():  # create_graph: Paddle must be able to differentiate this one
            (x,) = ctx.saved_tensor()
            o = ctx.operands
            return _graph_grad_x(x, o.y, o.weight, o.pos_weight, upstream, ctx.reduction)
        d = ctx.d
        if d is not None and d.dtype == ctx.x_dtype and _is_one(upstream):  # loss.backward(): d is the gradient
            ctx.d = None  # handed over once (Paddle may keep it as x.grad); a retained graph recomputes it
            return d
        if d is None:  # a retained graph's second backward, after d was handed over
            (x,) = ctx.saved_tensor()
            o = ctx.operands
            d = _derivative_buffer(x)
            _forward(x, o.y, o.weight, o.pos_weight, ctx.reduction, ctx.out_dtype, d)
        return _times_upstream(d, upstream, ctx.x_dtype)


def _derivative_buffer(x):
    """Where the pass writes d loss/d x: x's shape, float64 for float64 x, else float32 (for
    float16 x the backward then rounds once more, to float16)."""
    return _empty_like(x, paddle.float64 if x.dtype == paddle.float64 else paddle.float32)


def _is_one(upstream) -> bool:
    """Whether a 0-d float32/float64 upstream gradient is exactly 1, read from its memory (1 µs;
    14 for ``float()``)."""
    c_type = _C_FLOATS.get(upstream.dtype)
    return c_type is not None and not upstream.shape and c_type.from_address(upstream.data_ptr()).value == 1.0


_C_FLOATS = {paddle.float32: ctypes.c_float, paddle.float64: ctypes.c_double}


def _times_upstream(d, upstream, dtype):
    """d * upstream by Paddle's kernels, in ``dtype`` (d is kept: a retained graph reuses it)."""
    if upstream.dtype != d.dtype:
        upstream = _C_ops.cast(upstream, d.dtype)
    grad = _C_ops.multiply(d, upstream)
    return grad if grad.dtype == dtype else _C_ops.cast(grad, dtype)


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
        return _scalar(float(array), dtype)
    return paddle.utils.dlpack.from_dlpack(array if array.flags.c_contiguous else array.copy())


def _scalar(value: float, dtype):
    """A 0-d CPU tensor of ``value`` rounded once to ``dtype``, by Paddle's ``full`` kernel.

    ``full`` rounds a float32 or float64 value once itself (C's double -> float), tested; float16
    and values past float32's range are rounded by NumPy first, so that ``full`` finds them exact.
    """
    if not (dtype in _WIDE and abs(value) <= _FLOAT32_MAX):
        value = float(_NUMPY_DTYPES[dtype_name(dtype)].type(value))
    try:
        return _C_ops.full([], value, dtype, _CPU)
    except (AttributeError, TypeError, ValueError):  # another Paddle's internal signature: DLPack
        return paddle.utils.dlpack.from_dlpack(np.asarray(value, _NUMPY_DTYPES[dtype_name(dtype)]))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


_OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


def _solve(problem: Problem):
    """The engine's entry: the logits loss without options, or Declined."""
    declined = numpy_fast.declines(problem, _OPTIONS)
    if declined is not None:
        return declined
    result = bce_with_logits(*problem.arrays(), problem.reduction, problem.out_dtype)
    return Declined("inputs outside this engine's dtypes, devices or modes") if result is NotImplemented else result


ENGINE = NamedEngine("paddle-cpu-numpy", _solve)
