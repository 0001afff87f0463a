"""TensorFlow engine: the CPU pass (``cpu_pass``) on eager CPU tensors.

Eager float16, bfloat16, float32 and float64 CPU tensors go to the pass as DLPack capsules
(TF's own export: the pass reads shape, dtype and memory from it); the result comes back through
DLPack (no copy) or, for a 0-d result, as a constant. Where a ``GradientTape`` records the logit,
the loss is a ``tf.custom_gradient``: its forward writes d loss/d x in the same loop (so the loss
has the same bits with or without a tape), its backward multiplies that by the upstream gradient.
Gradients towards the target, weight and pos_weight, a backward that a tape differentiates again
(a second derivative), and a backward run inside a graph (``GradientTape.jacobian`` and
``batch_jacobian`` run it in a loop or under pfor) come from TF ops through the portable formula
(``Problem.portable``); the loss value is the pass's in every case.

Declined (the portable path computes): graph mode (``tf.function``, XLA), devices other than the
CPU, and empty inputs.

>>> import tensorflow as tf
>>> from bce_compat.contract import Problem
>>> float(ENGINE(Problem("logits", tf.constant([-20.0]), tf.constant([0.0]), reduction="sum", out_dtype=tf.float32)))
2.06115369216775e-09
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from bce_compat.backends import _tf_private as private
from bce_compat.backends import cpu_pass
from bce_compat.backends.tensorflow import constant
from bce_compat.contract import Declined, NamedEngine, Problem

_NAMES = {tf.float16: "float16", tf.bfloat16: "bfloat16", tf.float32: "float32", tf.float64: "float64"}
# the NumPy dtype the pass writes each result dtype in (bfloat16: float32, rounded by TF's cast)
_WRITTEN = {"float16": np.float16, "bfloat16": np.float32, "float32": np.float32, "float64": np.float64}
_OUTSIDE = Declined("values outside [0, 1]: the front end's check reports them")


def _solve(problem: Problem) -> Any:
    """The engine's entry: the result as an eager tensor, or Declined."""
    declined = cpu_pass.declines(problem)
    if declined is not None:
        return declined
    if not tf.executing_eagerly():
        return Declined("graph mode (tf.function, XLA)")
    if problem.out_dtype not in _NAMES:
        return Declined("dtypes other than float16/bfloat16/float32/float64")
    arrays = [tf.convert_to_tensor(a) if isinstance(a, tf.Variable) else a for a in problem.arrays()]
    for a in arrays:
        if a is None or type(a) is float or type(a) is int or type(a) is bool:
            continue
        if not isinstance(a, tf.Tensor) or tf.is_symbolic_tensor(a):
            return Declined("not an eager tensor")
        if a.dtype not in _NAMES or not a.device.endswith("CPU:0"):
            return Declined("a device other than the CPU, or dtypes other than float16/bfloat16/float32/float64")
    x, *others = arrays
    if x.shape.num_elements() == 0:
        return Declined("empty input")
    problem = problem._replace(x=x, y=others[0], weight=others[1], pos_weight=others[2])
    others_recorded = private.recorded([a for a in others if isinstance(a, tf.Tensor)])
    if others_recorded or private.recorded([x]):
        return _with_gradient(problem, others_recorded)
    result = _forward(problem)
    return _OUTSIDE if result is None else result[0]


ENGINE = NamedEngine("tensorflow-cpu-pass", _solve)


def _arg(t: Any) -> Any:
    """A tensor as the pass takes it: TF's DLPack export (numbers and None pass through)."""
    return tf.experimental.dlpack.to_dlpack(t) if isinstance(t, tf.Tensor) else t


def _forward(problem: Problem, derivative: np.ndarray | None = None) -> tuple | None:
    """(the loss as a tensor, the factor d still needs), with d loss/d x (upstream 1) written into
    ``derivative``; None for probabilities outside [0, 1]."""
    x, reduction, out_dtype = problem.x, problem.reduction, problem.out_dtype
    name = _NAMES[out_dtype]
    size = int(x.shape.num_elements())
    loss_out = cpu_pass.aligned_empty(tuple(x.shape), _WRITTEN[name]) if reduction == "none" else None
    totals = cpu_pass.run(
        problem.kind, _arg(x), _arg(problem.y), _arg(problem.weight), _arg(problem.pos_weight), reduction=reduction,
        loss_out=loss_out, grad_out=derivative, result_dtype=name, size_hint=size, options=problem.options,
        threads=cpu_pass.num_threads() if size >= cpu_pass.PARALLEL_MIN else 1,
    )
    settled = cpu_pass.settle(totals, reduction, problem.options)
    if settled.outside:
        return None
    if loss_out is not None:
        value = _adopt(loss_out)
        return (value if value.dtype == out_dtype else tf.cast(value, out_dtype)), settled.grad_scale
    return constant(settled.value, out_dtype), settled.grad_scale  # rounded once, its sign kept


def _with_gradient(problem: Problem, others_recorded: bool):
    """The loss as a function of its tensors, with its own gradient.

    Its value always comes from the pass. d loss/d x comes from the same loop where only the logit
    is recorded; where a tape records the target, weight or pos_weight too, differentiates the
    backward itself, or runs it in a graph, all gradients come from TF ops (the portable formula).
    """
    arrays = list(problem.arrays())
    at = [i for i, a in enumerate(arrays) if isinstance(a, tf.Tensor)]

    @tf.custom_gradient
    def loss_of(*tensors):
        full = list(arrays)
        for i, t in zip(at, tensors):
            full[i] = t
        current = problem._replace(x=full[0], y=full[1], weight=full[2], pos_weight=full[3])
        x = full[0]
        derivative = None
        if not others_recorded:
            derivative = cpu_pass.aligned_empty(tuple(x.shape), np.float64 if x.dtype == tf.float64 else np.float32)
        result = _forward(current, derivative)
        if result is None:
            raise _OutsideUnitInterval
        value, scale = result

        def backward(upstream):
            graph = not tf.executing_eagerly() or tf.is_symbolic_tensor(upstream)
            if derivative is None or graph or private.recorded(tensors):
                return _portable_grads(current, at, upstream)
            grad_x = _adopt(_times_upstream(derivative, upstream, scale))
            if grad_x.dtype != x.dtype:  # half precision: TF's cast rounds once
                grad_x = tf.cast(grad_x, x.dtype)
            return [grad_x] + [tf.zeros_like(t) for t in tensors[1:]]

        return value, backward

    try:
        return loss_of(*[arrays[i] for i in at])
    except _OutsideUnitInterval:
        return _OUTSIDE


class _OutsideUnitInterval(Exception):
    """Probabilities outside [0, 1], found by the pass inside the custom gradient."""


def _portable_grads(problem: Problem, at, upstream):
    """Gradients towards the tensors at ``at`` from TF ops (differentiable again), through the
    portable formula."""
    arrays = list(problem.arrays())
    tensors = [arrays[i] for i in at]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        value = problem.by_formula()
    grads = tape.gradient(value, tensors, output_gradients=tf.cast(upstream, value.dtype),
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [tf.cast(g, t.dtype) for g, t in zip(grads, tensors)]


def _times_upstream(derivative: np.ndarray, upstream, scale: float) -> np.ndarray:
    """derivative * upstream * scale in NumPy, in the derivative's dtype (TF's CPU kernels flush
    subnormal products to 0). ``derivative`` is never modified: a persistent tape may run the
    backward again."""
    up = np.from_dlpack(upstream) if upstream.dtype != tf.bfloat16 else \
        np.asarray(tf.cast(upstream, tf.float32))
    if up.ndim == 0 and float(up) == 1.0 and scale == 1.0:
        return derivative
    out = cpu_pass.aligned_empty(derivative.shape, derivative.dtype)
    factor = up if scale == 1.0 else np.multiply(up, scale)
    return np.multiply(derivative, factor, out=out, casting="unsafe")


def _adopt(array: np.ndarray):
    """A NumPy result as a TF tensor without a copy (TF adopts only 64-byte aligned data:
    ``cpu_pass.aligned_empty`` allocates so; others are copied)."""
    if array.ctypes.data % 64 or not array.flags.c_contiguous:
        return tf.convert_to_tensor(array)
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
