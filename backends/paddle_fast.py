"""Paddle fast path for BCE-with-logits on CPU: the chunked float64 kernels of ``numpy_fast``.

Tensors go to NumPy and back through DLPack (zero-copy both ways). Only calls that record no
gradient take it (evaluation, ``paddle.no_grad``); anything else (gradients wanted, GPU places,
bfloat16, static graph mode, empty input) returns NotImplemented and takes the portable path.

>>> import paddle
>>> float(bce_with_logits(paddle.to_tensor([-20.0]), paddle.to_tensor([0.0]), None, None, "sum", paddle.float32))
2.06115369216775e-09
"""

from __future__ import annotations

import math

import numpy as np
import paddle

from bce_compat.backends import numpy_fast
from bce_compat.backends.contract import Declined, NamedEngine, Problem, unsupported_options
from bce_compat.backends._float_dtypes import dtype_name

_DTYPES = ("float16", "float32", "float64")


def bce_with_logits(x, y, weight, pos_weight, reduction, out_dtype):
    """Chunked float64 NumPy kernels on zero-copy DLPack views (CPU, float16/32/64, no gradient)."""
    out_name = dtype_name(out_dtype)
    if out_name not in _DTYPES or not _eligible(x, (y, weight, pos_weight)):
        return NotImplemented
    if not x.stop_gradient and paddle.is_grad_enabled():
        # A PyLayer over NumPy kernels would have a backward Paddle cannot differentiate again
        # (double backward would silently lose x.grad); the portable path records a real graph.
        return NotImplemented
    return _to_paddle(_forward(x, y, weight, pos_weight, reduction, np.dtype(out_name)), out_dtype)


def _forward(x, y, weight, pos_weight, reduction, out_dtype):
    small = math.prod(x.shape) <= numpy_fast.SMALL
    operands = tuple(_numpy(a, small) for a in (y, weight, pos_weight))
    return numpy_fast.evaluate(numpy_fast._loss_chunk, _numpy(x, small), operands, reduction, out_dtype)


def _eligible(x, others) -> bool:
    if not paddle.in_dynamic_mode() or not x.place.is_cpu_place() or dtype_name(x.dtype) not in _DTYPES:
        return False
    if math.prod(x.shape) == 0:
        return False
    grad_on = paddle.is_grad_enabled()
    for t in others:
        if t is None or type(t) is float or type(t) is int:
            continue
        if dtype_name(t.dtype) not in _DTYPES or not t.place.is_cpu_place() or (grad_on and not t.stop_gradient):
            return False
    return True


def _numpy(t, small: bool):
    """NumPy data of a CPU tensor: a zero-copy DLPack view, or for small ones a copy (cheaper)."""
    if t is None or type(t) is float or type(t) is int:
        return t
    return t.numpy() if small else np.from_dlpack(t.detach())


def _to_paddle(array, dtype):
    """Our results are fresh C-contiguous arrays: DLPack hands them over without a copy.

    A 0-d result (mean, sum) is made with ``paddle.full`` instead, which costs half as much; the
    value is already rounded to ``dtype``, so it is exact. ``paddle.full`` puts it on Paddle's
    current device, so only when that is the CPU (like the inputs).
    """
    if array.ndim == 0 and paddle.get_device() == "cpu":
        return paddle.full([], float(array), dtype)
    return paddle.utils.dlpack.from_dlpack(array)


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


ENGINE = NamedEngine('paddle-cpu-chunked', _solve)
