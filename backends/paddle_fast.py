"""Paddle engine: the CPU pass (``cpu_pass``) on dygraph CPU tensors.

Every call on CPU tensors of float16, bfloat16, float32 and float64 takes it, with or without a
gradient wanted, so the loss has the same bits either way (docs/contract.md §3). The tensors go
to the pass as they are (it reads them through Paddle's DLPack exchange API, with the size of
their allocation), any layout. With a gradient wanted for the logit, the pass runs inside a
``paddle.autograd.PyLayer`` and writes d loss/d x in the same loop; the backward multiplies it by
the upstream gradient, or, when Paddle asks the backward for a graph of its own
(``paddle.grad(..., create_graph=True)``), writes the derivative in Paddle ops
(``_graph_grad_x``), so that the second derivative is Paddle's to take. Gradients towards label,
weight and pos_weight come from Paddle's autograd through a zero-valued term
(``_with_operand_grads``).

Declined (the portable path computes): static programs and ``to_static`` (graph values), GPU
places, subclasses of ``paddle.Tensor`` and empty inputs.

>>> import paddle
>>> float(bce_with_logits(paddle.to_tensor([-20.0]), paddle.to_tensor([0.0]), None, None, "sum", paddle.float32))
2.06115369216775e-09
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import paddle

from bce_compat.backends import _paddle_private as private
from bce_compat.backends import cpu_pass
from bce_compat.backends._float_dtypes import once_rounded
from bce_compat.contract import Declined, NamedEngine, Problem, focal_grad_by_formula

_NAMES = {paddle.float16: "float16", paddle.bfloat16: "bfloat16", paddle.float32: "float32",
          paddle.float64: "float64"}
_TENSOR_TYPES = (paddle.Tensor, paddle.base.framework.EagerParamBase)
_NAME = "paddle-cpu-pass"
_STATIC = Declined("a static graph (to_static, static programs): the portable path records Paddle ops")
_ELSEWHERE = Declined("a tensor off the CPU")
_OUTSIDE = Declined("values outside [0, 1]: the front end's check reports them")


def _cpu_only_build() -> bool:
    """A Paddle built for the CPU alone (the PyPI ``paddlepaddle`` wheel) has no other place, so
    the engine can skip reading each tensor's place."""
    device = paddle.device
    others = ("is_compiled_with_cuda", "is_compiled_with_rocm", "is_compiled_with_xpu", "is_compiled_with_ipu")
    return not any(getattr(device, name, lambda: True)() for name in others) and not device.get_all_custom_device_type()


_CPU_ONLY = _cpu_only_build()


def bce_with_logits(x, y, weight, pos_weight, reduction, out_dtype):
    """The loss from the pass, differentiable where a gradient is wanted; NotImplemented if ineligible."""
    result = _solve(Problem("logits", x, y, weight, pos_weight, reduction, out_dtype))
    return NotImplemented if isinstance(result, Declined) else result


class _Route(NamedTuple):
    """What the engine decides from the arrays' types, dtypes and shapes alone: once per
    signature when the front end keeps it (``Problem.memo``)."""

    declined: Declined | None  # such arrays are not this engine's
    tensors: tuple = ()  # which of (label, weight, pos_weight) are tensors
    result: str = ""  # the result dtype's name
    x_double: bool = False  # x is float64 (its derivative is then float64, else float32)


def _solve(problem: Problem) -> Any:
    """The engine's entry: the result as a Paddle tensor, or Declined."""
    declined = cpu_pass.declines(problem)
    if declined is not None:
        return declined
    route = _route_of(problem)
    if route.declined is not None:
        return route.declined
    if not paddle.in_dynamic_mode():
        return _STATIC
    x = problem.x
    operands = (problem.y, problem.weight, problem.pos_weight)
    if not _CPU_ONLY and not all(t.place.is_cpu_place() for t in (x, *(operands[i] for i in route.tensors))):
        return _ELSEWHERE
    if not paddle.is_grad_enabled():
        return _forward(x, problem, route)
    value = _forward(x, problem, route) if x.stop_gradient else _apply_kernel(x, problem, route)
    if isinstance(value, Declined):
        return value
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
    if not all(type(a) in _TENSOR_TYPES for a in arrays):
        return _Route(Declined("not plain Paddle tensors (subclasses take the portable path)"))
    if problem.out_dtype not in _NAMES or not all(a.dtype in _NAMES for a in arrays):
        return _Route(Declined("a dtype other than float16/bfloat16/float32/float64"))
    if 0 in x.shape:
        return _Route(Declined("an empty input"))
    return _Route(None, tensors, _NAMES[problem.out_dtype], x.dtype == paddle.float64)


def _arg(t: Any) -> Any:
    """A tensor as the pass takes it, with the bytes its allocation holds (numbers pass through)."""
    if not _is_tensor(t):
        return t
    capacity = private.capacity(t)
    return t if capacity is None else (t, capacity)


def _forward(x, problem: Problem, route: _Route, d=None) -> Any:
    """The loss as a Paddle tensor (d loss/d x, upstream 1, into ``d`` if given), or Declined for
    probabilities outside [0, 1]."""
    reduction, out_dtype = problem.reduction, problem.out_dtype
    loss_out = private.empty_like(x, out_dtype) if reduction == "none" else None
    size = math.prod(x.shape)
    totals = cpu_pass.run(
        problem.kind, _arg(x), _arg(problem.y), _arg(problem.weight), _arg(problem.pos_weight), reduction=reduction,
        loss_out=loss_out, grad_out=d, result_dtype=route.result, size_hint=size, options=problem.options,
        threads=cpu_pass.num_threads() if size >= cpu_pass.PARALLEL_MIN else 1,
    )
    settled = cpu_pass.settle(totals, reduction, problem.options)
    if settled.outside:
        return _OUTSIDE
    if d is not None and settled.grad_scale != 1.0:
        d.scale_(settled.grad_scale)
    return loss_out if loss_out is not None else _scalar(settled.value, out_dtype, route.result)


class _Call:
    """One call's problem and route, handed to the PyLayer as one argument. Not a tuple: the
    PyLayer would take the tensors in a tuple as its inputs (see ``_KernelLoss``)."""

    __slots__ = ("problem", "route")

    def __init__(self, problem: Problem, route: _Route):
        self.problem, self.route = problem, route


class _OutsideUnitInterval(Exception):
    """Probabilities outside [0, 1], found by the pass inside the PyLayer."""


def _apply_kernel(x, problem: Problem, route: _Route) -> Any:
    try:
        return _KernelLoss.apply(x, _Call(problem, route))
    except _OutsideUnitInterval:
        return _OUTSIDE


class _KernelLoss(paddle.autograd.PyLayer):
    """The pass as a Paddle op of the logit: its forward bits are exactly ``_forward``'s, and the
    same loop writes d loss/d x, which the backward multiplies by the upstream gradient.

    It differentiates the logit only, and takes the rest in one ``_Call``: a PyLayer with two
    differentiable inputs fails under ``paddle.grad`` when one of them is not on the way to
    the requested inputs (Paddle 3.3 then wants None for it, and a backward cannot tell), so
    label, weight and pos_weight get their gradients from ``_with_operand_grads``.
    """

    @staticmethod
    def forward(ctx, x, call):
        # x is kept with its in-place version rather than by save_for_backward: only a
        # graph-building or second backward reads it, through _saved_x.
        ctx.x, ctx.x_version, ctx.call = x, x.inplace_version, call
        ctx.d = _derivative_buffer(x, call.route)
        value = _forward(x, call.problem, call.route, ctx.d)
        if isinstance(value, Declined):
            raise _OutsideUnitInterval
        return value

    @staticmethod
    def backward(ctx, upstream):
        call = ctx.call
        if paddle.is_grad_enabled():  # create_graph: Paddle must be able to differentiate this one
            return _graph_grad_x(_saved_x(ctx), call.problem, upstream)
        d = ctx.d
        if d is not None and not upstream.shape and cpu_pass.is_one(upstream):  # loss.backward(): d is the gradient
            ctx.d = None  # handed over once (Paddle may keep it as x.grad); a retained graph recomputes it
            return d
        if d is None:  # a retained graph's second backward, after d was handed over
            x = _saved_x(ctx)
            d = _derivative_buffer(x, call.route)
            _forward(x, call.problem, call.route, d)
        return _times_upstream(d, upstream, ctx.x.dtype)


def _saved_x(ctx):
    """The logit as the forward saw it; an error, as Paddle gives for its saved tensors, if it
    was modified in place since (the derivative made in the forward needs no x)."""
    x = ctx.x
    if x.inplace_version != ctx.x_version:
        raise RuntimeError(
            f"bce_compat: the logit was modified by an in-place operation after the loss was computed "
            f"(its version is {x.inplace_version}, the loss saw {ctx.x_version}); this gradient needs "
            f"its values as they were. Compute the loss again after the in-place change, or change a copy."
        )
    return x


def _derivative_buffer(x, route: _Route):
    """Where the pass writes d loss/d x: x's shape, float64 for float64 x, else float32 (the
    backward rounds once more, to x's dtype)."""
    return private.empty_like(x, paddle.float64 if route.x_double else paddle.float32)


def _times_upstream(d, upstream, dtype):
    """d * upstream by Paddle's kernels, in ``dtype`` (d is kept: a retained graph reuses it)."""
    if upstream.dtype != d.dtype:
        upstream = paddle.cast(upstream, d.dtype)
    grad = d * upstream
    return grad if grad.dtype == dtype else paddle.cast(grad, dtype)


def _graph_grad_x(x, problem: Problem, upstream):
    """d loss / d input times upstream, in Paddle ops that Paddle differentiates again.

    Logits: w * (y- * sigmoid(x) - p * y+ * sigmoid(-x)), each sigmoid from exp(-|x|) (no
    overflow; 0.5 at x = 0). Probabilities: w * (y- / (1 - q) - y+ / q) where the log is not
    clamped at -100, else 0. Focal: ``contract.focal_grad_by_formula``. y+ and y- are the
    (smoothed) coefficients; ignored elements give 0, and a mean divides by the elements kept.
    """
    from bce_compat.backends.paddle import namespace

    xp = namespace(x)
    y, weight, pos_weight = problem.y, problem.weight, problem.pos_weight
    dtype = _compute_dtype(x, y, weight, pos_weight)
    xc, yc, wc, pc = (xp.astype(a, dtype) if _is_tensor(a) else a for a in (x, y, weight, pos_weight))
    options = problem.options
    eps = options.get("label_smoothing", 0.0)
    y_pos, y_neg = yc * (1 - eps) + eps / 2, (1 - yc) * (1 - eps) + eps / 2
    kept = None
    if "ignore_index" in options:
        kept = xp.astype(yc != options["ignore_index"], dtype)
    if problem.kind == "probs":
        clamp = math.exp(-100.0)
        g = (xp.where(xc < 1 - clamp, y_neg / (1 - xc), xp.zeros_like(xc))
             - xp.where(xc > clamp, y_pos / xc, xp.zeros_like(xc)))
    elif problem.kind == "focal":
        g = focal_grad_by_formula(xp, xc, y_pos, y_neg, options)
    else:
        positive = xc > 0
        e = xp.exp(xp.where(positive, -xc, xc))  # exp(-|x|)
        r = 1 / (1 + e)
        sigmoid, sigmoid_neg = xp.where(positive, r, e * r), xp.where(positive, e * r, r)
        c_pos = y_pos if pc is None else pc * y_pos
        g = y_neg * sigmoid - c_pos * sigmoid_neg
    if wc is not None:
        g = g * wc
    if kept is not None:
        g = g * kept
    u = xp.astype(upstream, dtype)
    if problem.reduction == "mean":
        count = xp.sum(kept) if kept is not None else math.prod(x.shape)
        u = u / count
    return xp.astype(u * g, x.dtype)


def _with_operand_grads(value, problem: Problem):
    """``value`` unchanged bit for bit, with Paddle's gradient towards label, weight and pos_weight.

    The portable loss of the detached logit, c, carries those gradients; ``value - (c' - c)``
    with c' = c detached adds them, and subtracting the exact +0 of c' - c keeps every bit of
    ``value`` (even -0). Where c is not finite, c' - c would be NaN: there the term is 0.
    """
    from bce_compat.backends.paddle import namespace

    xp = namespace(problem.x)
    dtype = _compute_dtype(*problem.arrays())
    # in float32 for float16 (Paddle has no float16 CPU subtract); the round trip is exact
    c = xp.astype(problem.by_formula(problem._replace(x=problem.x.detach())), dtype)
    c_const = c.detach()
    zero = xp.where(paddle.isfinite(c_const), c_const - c, xp.zeros_like(c))
    return xp.astype(xp.astype(value, dtype) - zero, problem.out_dtype)


def _compute_dtype(*arrays):
    """The promoted dtype of the tensors, float32 for float16/bfloat16."""
    widest = "float64" if any(_is_tensor(a) and a.dtype == paddle.float64 for a in arrays) else "float32"
    return getattr(paddle, widest)


def _is_tensor(a) -> bool:
    return a is not None and type(a) not in (bool, int, float)


def _scalar(value: float, dtype, name: str):
    """A 0-d CPU tensor of ``value`` rounded once to ``dtype``: Paddle's ``full`` rounds a float32
    or float64 value once itself (C's double -> float); what it would round twice, or not
    define, is rounded first (``once_rounded``)."""
    return private.scalar(once_rounded(value, name), dtype)


ENGINE = NamedEngine(_NAME, _solve)
