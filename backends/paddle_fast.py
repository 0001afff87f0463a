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
from typing import NamedTuple

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
    result = _solve(Problem("logits", x, y, weight, pos_weight, reduction, out_dtype))
    return NotImplemented if isinstance(result, Declined) else result


class _Route(NamedTuple):
    """What the engine decides from the arrays' types, dtypes and shapes alone: once per
    signature when the front end keeps it (``Problem.memo``)."""

    declined: Declined | None  # such arrays are not this engine's
    tensors: tuple = ()  # which of (label, weight, pos_weight) are tensors
    x_dtype: object = None
    x_double: bool = False  # x is float64 (its derivative is then float64, else float32)
    small: bool = False  # NumPy copies cost less than DLPack views
    raw: tuple | None = None  # numpy_fast.raw_layout: the one-block route on the tensors' memory
    wide_out: bool = False  # the result is float64 (the pass's precise route)
    one_reader: object = None  # the ctypes type of a result element, where d is the gradient's dtype (see _is_one)


_NAME = "paddle-cpu-numpy"
_STATIC = Declined("a static graph (to_static, static programs): the portable path records Paddle ops")
_ELSEWHERE = Declined("a tensor off the CPU")


def _solve(problem: Problem):
    """The engine's entry: the logits loss without options, or Declined."""
    declined = numpy_fast.declines(problem, _OPTIONS)
    if declined is not None:
        return declined
    route = _route_of(problem)
    if route.declined is not None:
        return route.declined
    if not paddle.in_dynamic_mode():
        return _STATIC
    x, y, weight, pos_weight = problem.x, problem.y, problem.weight, problem.pos_weight
    operands = (y, weight, pos_weight)
    if not _CPU_ONLY and not all(t.place.is_cpu_place() for t in (x, *(operands[i] for i in route.tensors))):
        return _ELSEWHERE
    call = _Call(y, weight, pos_weight, problem.reduction, problem.out_dtype, route)
    if not paddle.is_grad_enabled():
        return _forward(x, call)
    value = _forward(x, call) if x.stop_gradient else _KernelLoss.apply(x, call)
    if not all(operands[i].stop_gradient for i in route.tensors):
        value = _with_operand_grads(value, problem)
    return value


def _route_of(problem: Problem) -> _Route:
    memo = problem.memo
    if memo is None:
        return _route(problem)
    route = memo.get(_NAME)
    if route is None:
        route = memo[_NAME] = _route(problem)
    return route


def _route(problem: Problem) -> _Route:
    x, *operands = problem.arrays()
    tensors = tuple(i for i, a in enumerate(operands) if _is_tensor(a))
    arrays = (x, *(operands[i] for i in tensors))
    if not all(isinstance(a, paddle.Tensor) for a in arrays):
        return _Route(Declined("not Paddle tensors"))
    if problem.out_dtype not in _FLOATS or not all(a.dtype in _FLOATS for a in arrays):
        return _Route(Declined("a dtype other than float16/32/64 (bfloat16: the portable path)"))
    if 0 in x.shape:
        return _Route(Declined("an empty input"))
    wide_out = _WIDE.get(problem.out_dtype)
    return _Route(
        declined=None,
        tensors=tensors,
        x_dtype=x.dtype,
        x_double=x.dtype == paddle.float64,
        small=math.prod(x.shape) <= _COPY_BELOW,
        raw=None if wide_out is None else numpy_fast.raw_layout(x, operands, _WIDE),
        wide_out=bool(wide_out),
        one_reader=None if x.dtype == paddle.float16 else _C_FLOATS.get(id(problem.out_dtype)),
    )


class _Call:
    """One call's label, weight, pos_weight, reduction, result dtype and route, handed to the
    PyLayer as one argument. Not a tuple: the PyLayer would take the tensors in a tuple as its
    inputs (see ``_KernelLoss``)."""

    __slots__ = ("y", "weight", "pos_weight", "reduction", "out_dtype", "route")

    def __init__(self, y, weight, pos_weight, reduction, out_dtype, route: _Route):
        self.y, self.weight, self.pos_weight = y, weight, pos_weight
        self.reduction, self.out_dtype, self.route = reduction, out_dtype, route

    def operands(self) -> tuple:
        return self.y, self.weight, self.pos_weight


def _forward(x, call: _Call, d=None):
    """The loss as a Paddle tensor; d loss/d x (upstream 1, scaled for mean) into the tensor ``d`` if given."""
    result = None if call.route.raw is None else _one_block(x, call, d)
    if result is not None:
        return result
    small = call.route.small
    operands = tuple(_numpy(a, small) for a in call.operands())
    grad_out = None if d is None else np.from_dlpack(d)  # writable: the pass writes the tensor itself
    out = _NUMPY_DTYPES[dtype_name(call.out_dtype)]
    result = numpy_fast.loss(_numpy(x, small), *operands, call.reduction, out, grad_out=grad_out)
    return _to_paddle(result, call.out_dtype)


_WIDE = {paddle.float32: False, paddle.float64: True}  # what the pass reads and writes as it is: is it float64


def _one_block(x, call: _Call, d):
    """The pass straight on the tensors' memory (their ``data_ptr()``) for inputs of one block,
    without NumPy copies or views; None where a tensor is not C-contiguous."""
    route = call.route
    inputs = numpy_fast.raw_addresses(route.raw, x, call.operands())
    if inputs is None:
        return None
    raw_x, operands, size = inputs
    loss_out = _empty_like(x, call.out_dtype) if call.reduction == "none" else None
    total = numpy_fast.one_block(
        raw_x, operands, size, _raw(loss_out, size, route.wide_out), _raw(d, size, route.x_double), call.reduction,
        precise=route.wide_out or route.x_double,
    )
    return loss_out if total is None else _scalar(total, call.out_dtype)


def _raw(t, size, is_double):
    return None if t is None else (t.data_ptr(), size, is_double)


def _empty_like(x, dtype):
    """An uninitialised CPU tensor of x's shape, by Paddle's ``empty_like`` kernel (2 µs, against
    11 for ``paddle.empty``'s Python wrapper)."""
    try:
        return _C_ops.empty_like(x, dtype, _CPU)
    except (AttributeError, TypeError, ValueError):  # another Paddle's internal signature
        return paddle.empty(x.shape, dtype=dtype)


class _KernelLoss(paddle.autograd.PyLayer):
    """The NumPy kernel as a Paddle op of the logit: its forward bits are exactly ``_forward``'s,
    and the same pass writes d loss/d x, which the backward multiplies by the upstream gradient.

    It differentiates the logit only, and takes the rest in one ``_Call``: a PyLayer with two
    differentiable inputs fails under ``paddle.grad`` when one of them is not on the way to
    the requested inputs (Paddle 3.3 then wants None for it, and a backward cannot tell), so
    label, weight and pos_weight get their gradients from ``_with_operand_grads``.
    """

    @staticmethod
    def forward(ctx, x, call):
        # x is kept with its in-place version rather than by save_for_backward (3-6 µs of every
        # backward): only a graph-building or second backward reads it, through _saved_x.
        ctx.x, ctx.x_version, ctx.call = x, x._inplace_version(), call
        ctx.d = _derivative_buffer(x, call.route)
        return _forward(x, call, ctx.d)

    @staticmethod
    def backward(ctx, upstream):
        call = ctx.call
        if paddle.is_grad_enabled():  # create_graph: Paddle must be able to differentiate this one
            return _graph_grad_x(_saved_x(ctx), *call.operands(), upstream, call.reduction)
        d, reader = ctx.d, call.route.one_reader
        if d is not None and reader is not None and _is_one(upstream, reader):  # loss.backward(): d is the gradient
            ctx.d = None  # handed over once (Paddle may keep it as x.grad); a retained graph recomputes it
            return d
        if d is None:  # a retained graph's second backward, after d was handed over
            x = _saved_x(ctx)
            d = _derivative_buffer(x, call.route)
            _forward(x, call, d)
        return _times_upstream(d, upstream, call.route.x_dtype)


def _saved_x(ctx):
    """The logit as the forward saw it; an error, as Paddle gives for its saved tensors, if it
    was modified in place since (the derivative made in the forward needs no x)."""
    x = ctx.x
    if x._inplace_version() != ctx.x_version:
        raise RuntimeError(
            f"bce_compat: the logit was modified by an in-place operation after the loss was computed "
            f"(its version is {x._inplace_version()}, the loss saw {ctx.x_version}); this gradient needs "
            f"its values as they were. Compute the loss again after the in-place change, or change a copy."
        )
    return x


def _derivative_buffer(x, route: _Route):
    """Where the pass writes d loss/d x: x's shape, float64 for float64 x, else float32 (for
    float16 x the backward then rounds once more, to float16)."""
    return _empty_like(x, paddle.float64 if route.x_double else paddle.float32)


def _is_one(upstream, c_type) -> bool:
    """Whether a 0-d upstream gradient is exactly 1, its element read from memory as ``c_type``.

    Paddle hands a PyLayer's backward the gradient in the dtype of its output (a grad_tensor
    of another dtype is cast first), so the result's dtype gives ``c_type``; in a backward,
    reading a tensor's dtype costs 2-3 µs, ``float()`` 14.
    """
    return not upstream.shape and c_type.from_address(upstream.data_ptr()).value == 1.0


# By identity: Paddle's dtypes are singletons, and hashing or comparing one costs 0.5-2 µs.
_C_FLOATS = {id(paddle.float32): ctypes.c_float, id(paddle.float64): ctypes.c_double}


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
    if not ((dtype is paddle.float32 or dtype is paddle.float64) and abs(value) <= _FLOAT32_MAX):  # by identity
        value = float(_NUMPY_DTYPES[dtype_name(dtype)].type(value))
    try:
        return _C_ops.full([], value, dtype, _CPU)
    except (AttributeError, TypeError, ValueError):  # another Paddle's internal signature: DLPack
        return paddle.utils.dlpack.from_dlpack(np.asarray(value, _NUMPY_DTYPES[dtype_name(dtype)]))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


_OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


ENGINE = NamedEngine(_NAME, _solve)
