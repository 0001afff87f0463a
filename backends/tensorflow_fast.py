"""TensorFlow engine for BCE-with-logits: eager CPU tensors through ``numpy_fast``'s compiled pass.

Eager float16/32/64 CPU tensors are read through zero-copy NumPy views and the result comes back
through DLPack (no copy) or, for a 0-d result, as a constant. Where a ``GradientTape`` records
the logit, the loss is a ``tf.custom_gradient``: its forward writes d loss/d x in the same pass
(so the loss has the same bits with or without a tape), its backward multiplies that by the
upstream gradient. Gradients towards the target, weight and pos_weight, and a backward that a
tape differentiates again (a second derivative), come from TF ops through the portable formula;
the loss value is the compiled pass's in every case.

Declined (the portable path computes): graph mode (``tf.function``, XLA), devices other than
the CPU, bfloat16 and empty inputs.

>>> import tensorflow as tf
>>> from bce_compat.backends.contract import Problem
>>> float(ENGINE(Problem("logits", tf.constant([-20.0]), tf.constant([0.0]), reduction="sum", out_dtype=tf.float32)))
2.06115369216775e-09
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import record  # whether a tape records a tensor (TF has no public query)

from bce_compat.backends import numpy_fast
from bce_compat.backends.contract import Declined, NamedEngine, Problem

_DTYPES = {tf.float16: np.float16, tf.float32: np.float32, tf.float64: np.float64}
OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


def _solve(problem: Problem):
    """The engine's entry: the logits loss without options on eager CPU tensors, or Declined."""
    declined = numpy_fast.declines(problem, OPTIONS)
    if declined is not None:
        return declined
    if not tf.executing_eagerly():
        return Declined("graph mode (tf.function, XLA)")
    if problem.out_dtype not in _DTYPES:
        return Declined("dtypes other than float16/32/64")
    arrays = [tf.convert_to_tensor(a) if isinstance(a, tf.Variable) else a for a in problem.arrays()]
    for a in arrays:
        if a is None or type(a) is float or type(a) is int:
            continue
        if not isinstance(a, tf.Tensor) or not hasattr(a, "_numpy"):
            return Declined("not an eager tensor")
        if a.dtype not in _DTYPES or not a.device.endswith("CPU:0"):
            return Declined("a device other than the CPU, or dtypes other than float16/32/64")
    x, *others = arrays
    if x.shape.num_elements() == 0:
        return Declined("empty input")
    others_recorded = record.should_record_backprop([a for a in others if isinstance(a, tf.Tensor)])
    if others_recorded or record.should_record_backprop([x]):
        return _with_gradient(arrays, problem.reduction, problem.out_dtype, others_recorded)
    y, weight, pos_weight = others
    return _to_tf(_loss_numpy(x, y, weight, pos_weight, problem.reduction, problem.out_dtype), problem.out_dtype)


ENGINE = NamedEngine("tensorflow-cpu-fused", _solve)


def _with_gradient(arrays, reduction, out_dtype, others_recorded):
    """The loss as a function of its tensors, with its own gradient.

    Its value always comes from the compiled pass. d loss/d x comes from the same pass where only
    the logit is recorded; where a tape records the target, weight or pos_weight too, or
    differentiates the backward itself, all gradients come from TF ops (the portable formula).
    """
    at = [i for i, a in enumerate(arrays) if isinstance(a, tf.Tensor)]

    @tf.custom_gradient
    def loss_of(*tensors):
        full = list(arrays)
        for i, t in zip(at, tensors):
            full[i] = t
        x, y, weight, pos_weight = full
        derivative = None
        if not others_recorded:
            derivative = numpy_fast.aligned_empty(x.shape, np.float64 if x.dtype == tf.float64 else np.float32)
        value = _loss_numpy(x, y, weight, pos_weight, reduction, out_dtype, derivative)

        def backward(upstream):
            # operands, a second derivative, or a graph's upstream (a jacobian runs this in pfor or a while loop)
            if derivative is None or record.should_record_backprop(tensors) or not hasattr(upstream, "_numpy"):
                return _portable_grads(full, at, reduction, upstream)
            grad_x = _to_tf(_times_upstream(derivative, upstream), _WIDE[derivative.dtype])
            if grad_x.dtype != x.dtype:  # float16: TF's cast (NumPy's takes ~90 ns an element to a subnormal)
                grad_x = tf.cast(grad_x, x.dtype)
            return [grad_x] + [tf.zeros_like(t) for t in tensors[1:]]

        return _to_tf(value, out_dtype), backward

    return loss_of(*[arrays[i] for i in at])


def _portable_grads(arrays, at, reduction, upstream):
    """Gradients towards the tensors at ``at`` from TF ops (differentiable again), through the portable formula."""
    from bce_compat import _loss
    from bce_compat.backends.tensorflow import namespace

    x = arrays[0]
    compute = tf.float32 if x.dtype in (tf.float16, tf.bfloat16) else x.dtype
    tensors = [arrays[i] for i in at]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        x_c, y_c, weight_c, pos_weight_c = (tf.cast(a, compute) if isinstance(a, tf.Tensor) else a for a in arrays)
        problem = Problem("logits", x_c, y_c, weight_c, pos_weight_c, reduction, compute)
        value = _loss.portable(problem, namespace(x), compute)
    grads = tape.gradient(value, tensors, output_gradients=tf.cast(upstream, compute),
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [tf.cast(g, t.dtype) for g, t in zip(grads, tensors)]


def _times_upstream(derivative, upstream):
    """derivative * upstream in NumPy, in the derivative's dtype (TF's CPU kernels flush
    subnormal products to 0). The rounding to float16 is TF's cast: correctly rounded too, and
    NumPy's float32 -> float16 conversion takes ~90 ns an element where the result is subnormal,
    as a mean's gradient over 2**20 elements is.

    ``derivative`` is never modified: a persistent tape may run the backward again.
    """
    up = _view(upstream)
    if up.ndim == 0 and float(up) == 1.0:
        return derivative
    out = numpy_fast.aligned_empty(derivative.shape, derivative.dtype)
    return np.multiply(derivative, up, out=out, casting="unsafe")


_WIDE = {np.dtype(np.float32): tf.float32, np.dtype(np.float64): tf.float64}  # the derivative's dtypes


def _loss_numpy(x, y, weight, pos_weight, reduction, out_dtype, grad_out=None):
    return numpy_fast.loss(_view(x), _view(y), _view(weight), _view(pos_weight), reduction, _DTYPES[out_dtype],
                           grad_out=grad_out)


def _view(t):
    """A zero-copy NumPy view of an eager CPU tensor (numbers and None pass through)."""
    return t._numpy() if isinstance(t, tf.Tensor) else t


def _to_tf(array, dtype):
    """A 0-d result as a constant (its value is already rounded to dtype), others through DLPack
    (TF adopts only 64-byte aligned data: ``numpy_fast`` allocates its results so; others are copied)."""
    if array.ndim == 0:
        return tf.constant(float(array), dtype=dtype)
    if array.ctypes.data % 64 or not array.flags.c_contiguous:
        return tf.convert_to_tensor(array)
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
