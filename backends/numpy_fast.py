"""Fast CPU engine for BCE-with-logits: one fused NumPy kernel, chunked, float64 inside each chunk.

Public API (used by the torch and Paddle CPU engines; keep the names stable):

- ``loss(x, y, weight, pos_weight, reduction, out_dtype, *, grad_out=None)``: the loss (0-d for
  mean/sum); with ``grad_out`` (an array of x's shape) it also writes d loss / d x for an
  upstream gradient of 1 into it, in the same pass, with bit-identical loss values.
- ``grad(x, y, weight, pos_weight, upstream, out_dtype)``: d loss / d x times ``upstream``
  (an array broadcastable to x, or a number already scaled for mean).

The formula exists once, in ``_kernel``. With e = exp(-|x|), t = log1p(e), c+ = p*y (or y),
c- = 1 - y and s = c+ + c- (all float64):

    loss = s*t + k*x            k = c- where x > 0, else -c+    (= c+*softplus(-x) + c-*softplus(x))
    dloss/dx = (k + j*e) / (1 + e)   j = -c+ where x > 0, else c-

Every term is a sum of non-negative parts (k*x >= 0), so nothing cancels in the loss: x = -20,
y = 0 gives 2.06e-9, not 0. The only product that can be 0 * inf is k*x at an infinite x; the
zero-coefficient rule (``_zero_coefficient_rule``) makes it exactly 0 there.

Why float64 libm and not NumPy's float32 SIMD exp: the latter measures 2.52 ulp, and through
the formula up to 5 ulp of the result (docs/contract.md §4 allows 4). Chunks of ``CHUNK`` elements keep the
scratch buffers in L2; large inputs are split into one contiguous run of chunks per thread
(NumPy releases the GIL inside ufuncs). A caller may lend faster float64 exp/log1p
(``Elementary``, e.g. torch's vectorised ones) where its accuracy argument holds.

>>> import numpy as np
>>> float(loss(np.array([-20.0], np.float32), np.zeros(1, np.float32), None, None, "sum", np.float32))
2.06115369216775e-09
>>> g = np.empty(2); float(loss(np.zeros(2), np.array([1.0, 0.0]), None, 2.0, "mean", np.float64, grad_out=g)), g.tolist()
(1.0397207708399179, [-0.5, 0.25])
>>> grad(np.array(0.0), np.array(1.0), None, None, 1.0, np.float64).tolist()
-0.5
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Real

import numpy as np

from bce_compat.backends.contract import Declined, NamedEngine, Problem, unsupported

CHUNK = 1 << 13  # elements per chunk: 7 float64 buffers of it (448 KiB) stay in L2
PARALLEL_MIN = 1 << 16  # below this, one thread (the pool hand-off costs more than it saves)
DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Elementary:
    """The kernel's float64 exp and log1p, written into ``out=``: NumPy's (libm) by default."""

    exp: Callable = np.exp
    log1p: Callable = np.log1p


LIBM = Elementary()
_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def loss(x, y, weight, pos_weight, reduction, out_dtype, *, grad_out=None, elementary=None) -> np.ndarray:
    """The loss in ``out_dtype`` (0-d for mean/sum); d loss/d x (upstream 1) into ``grad_out`` if given.

    >>> float(loss(np.array(0.0), np.array(1.0), None, None, "none", np.float64))
    0.6931471805599453
    """
    x, y, weight, pos_weight = _arrays(x, y, weight, pos_weight)
    out_dtype = np.dtype(out_dtype)
    size = x.size
    if reduction != "none" and size == 0:
        return np.asarray(math.nan if reduction == "mean" else 0.0, out_dtype)
    scale = 1.0 / size if reduction == "mean" and grad_out is not None else 1.0
    return _evaluate(x, (y, weight, pos_weight, None), reduction, out_dtype, grad_out, scale, elementary or LIBM)


def grad(x, y, weight, pos_weight, upstream, out_dtype, *, elementary=None) -> np.ndarray:
    """d loss / d x times ``upstream`` (broadcastable to x, or a number), in ``out_dtype``, x's shape.

    >>> grad(np.array([0.0, 100.0]), np.zeros(2), None, None, np.array([2.0, 1.0]), np.float32).tolist()
    [1.0, 1.0]
    """
    x, y, weight, pos_weight = _arrays(x, y, weight, pos_weight)
    out = np.empty(x.shape, np.dtype(out_dtype))
    if x.size:
        upstream = upstream if isinstance(upstream, Real) else np.asarray(upstream)
        _evaluate(x, (y, weight, pos_weight, upstream), None, None, out, 1.0, elementary or LIBM)
    return out


def _arrays(x, y, weight, pos_weight):
    """NumPy arrays, Python numbers kept as numbers (they broadcast for free)."""
    return tuple(a if a is None or isinstance(a, Real) and not isinstance(a, np.ndarray) else np.asarray(a)
                 for a in (np.asarray(x), y, weight, pos_weight))


def _evaluate(x, operands, reduction, out_dtype, grad_out, scale, fns):
    """Run ``_kernel`` over chunks of ``x``; returns the loss (None when ``reduction`` is None).

    ``operands`` is (y, weight, pos_weight, upstream), each broadcast to x, a number or None.
    """
    want_loss = reduction is not None
    size = x.size
    if size <= CHUNK:  # one chunk: the ufuncs broadcast the operands themselves
        with np.errstate(all="ignore"):
            result = _kernel(x, *operands, _scratch(x.shape), fns, want_loss, grad_out, scale)
            if reduction == "none":
                return result.astype(out_dtype)
            if reduction is None:
                return None
            total = np.add.reduce(result, axis=None)
        return np.asarray(total / size if reduction == "mean" else total, out_dtype)
    views = [o if o is None or isinstance(o, Real) else np.broadcast_to(o, x.shape) for o in operands]
    out = np.empty(x.shape, out_dtype) if reduction == "none" else None
    slices = list(_chunk_slices(x.shape))
    runs = _split(slices, _threads() if size >= PARALLEL_MIN else 1)

    def run(chunk_indices):
        return _run_chunks(x, views, out, grad_out, scale, fns, want_loss, chunk_indices)

    # Chunks are summed in a fixed order whatever the thread count, so results repeat bit for bit.
    partials = [s for part in (_get_pool().map(run, runs) if len(runs) > 1 else [run(slices)]) for s in part]
    if out is not None or not want_loss:
        return out
    total = math.fsum(partials)  # exact sum of the chunk sums: pairwise or better across chunks
    return np.asarray(total / size if reduction == "mean" else total, out_dtype)


def _split(items: list, parts: int) -> list[list]:
    """``items`` cut into at most ``parts`` contiguous runs of nearly equal length."""
    parts = max(1, min(parts, len(items)))
    bounds = [len(items) * i // parts for i in range(parts + 1)]
    return [items[a:b] for a, b in zip(bounds, bounds[1:])]


def _run_chunks(x, views, out, grad_out, scale, fns, want_loss, chunk_indices) -> list[float]:
    """One thread's run of chunks: each chunk's sum (reductions) or its slice of ``out`` filled."""
    sums = []
    with np.errstate(all="ignore"):  # 0 * inf is masked afterwards; NaN in gives NaN out, quietly
        for index in chunk_indices:
            xc = x[index]
            args = [v if v is None or isinstance(v, Real) else v[index] for v in views]
            g = None if grad_out is None else grad_out[index]
            result = _kernel(xc, *args, _scratch(xc.shape), fns, want_loss, g, scale)
            if out is not None:
                out[index] = result
            elif want_loss:
                sums.append(float(np.add.reduce(result, axis=None)))
    return sums


def _kernel(x, y, w, p, upstream, bufs, fns, want_loss, grad_out, scale):
    """The loss terms of one chunk (float64, returned) and/or the gradient (into ``grad_out``).

    See the module docstring for the formula; ``upstream`` multiplies the gradient, ``scale``
    too (1/size for the gradient of a mean).
    """
    e, t, cp, cn, k, j, positive = bufs
    np.copysign(x, -1.0, out=e)  # -|x|, in float64
    fns.exp(e, out=e)  # exp(-|x|) is in [0, 1]: never overflows
    np.greater(x, 0.0, out=positive)
    if p is None:
        np.copyto(cp, y)
    else:
        np.multiply(y, p, out=cp, dtype=np.float64)
    np.subtract(1.0, y, out=cn, dtype=np.float64)
    np.negative(cp, out=k)
    np.copyto(k, cn, where=positive)  # k = c- where x > 0, else -c+
    result = None
    if want_loss:
        fns.log1p(e, out=t)
        if p is not None:  # without pos_weight, s = y + (1 - y) = 1
            np.add(cp, cn, out=j)
            np.multiply(t, j, out=t)
        np.multiply(k, x, out=j)  # k*x = c-*max(x, 0) + c+*max(-x, 0) >= 0
        _zero_coefficient_rule(j, k, x)
        np.add(t, j, out=t)
        if w is not None:
            np.multiply(t, w, out=t)
        result = t
    if grad_out is not None:
        np.copyto(j, cn)
        np.negative(cp, out=j, where=positive)  # j = -c+ where x > 0, else c-
        np.multiply(j, e, out=j)
        np.add(j, k, out=j)
        np.add(e, 1.0, out=e)
        np.divide(j, e, out=j)
        if w is not None:
            np.multiply(j, w, out=j)
        if upstream is not None:
            np.multiply(j, upstream, out=j)
        if scale != 1.0:
            np.multiply(j, scale, out=j)
        np.copyto(grad_out, j, casting="same_kind")
    return result


def _zero_coefficient_rule(product, coefficient, x):
    """product = coefficient * x, made exactly 0 where the coefficient is 0 and x is infinite.

    With every x finite the product is already 0 there, so the masks are only built otherwise.
    """
    if not np.isfinite(np.add.reduce(product, axis=None)):
        np.copyto(product, 0.0, where=(coefficient == 0) & np.isinf(x))


def _chunk_slices(shape):
    """Index tuples that cut ``shape`` into pieces of at most about CHUNK elements, in C order."""
    if not shape:
        yield ()
        return
    axis, inner = len(shape) - 1, 1
    while axis > 0 and inner * shape[axis] <= CHUNK:
        inner *= shape[axis]
        axis -= 1
    if inner * shape[axis] <= CHUNK:
        yield (slice(None),) * len(shape)
        return
    step = max(1, CHUNK // inner)
    for outer in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            yield (*outer, slice(start, min(start + step, shape[axis])))


def _scratch(shape):
    """Per-thread scratch viewed with ``shape``: six float64 buffers and one bool mask."""
    cached = getattr(_local, "views", None)
    if cached is not None and cached[0] == shape:
        return cached[1]
    n = math.prod(shape)
    bufs = getattr(_local, "bufs", None)
    if bufs is None or bufs[0].size < n:
        size = max(n, CHUNK)
        bufs = [np.empty(size, np.float64) for _ in range(6)] + [np.empty(size, np.bool_)]
        if n <= CHUNK * 4:  # keep chunk-sized scratch; a rare huge chunk (one long row) is not kept
            _local.bufs = bufs
    views = [b[:n].reshape(shape) for b in bufs]
    if bufs is getattr(_local, "bufs", None):
        _local.views = (shape, views)
    return views


def _threads() -> int:
    return min(4, os.cpu_count() or 1)


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="bce_compat")
        return _pool


OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


def _solve(problem: Problem):
    """The engine's entry: the logits loss on NumPy arrays of float16/32/64, without options."""
    declined = unsupported(problem, kinds=("logits",), options=OPTIONS)
    if declined is not None:
        return declined
    out_dtype = np.dtype(problem.out_dtype)
    if out_dtype not in DTYPES or not isinstance(problem.x, np.ndarray):
        return Declined("inputs outside this engine's dtypes (float16/32/64 ndarrays)")
    return loss(*problem.arrays(), problem.reduction, out_dtype)


ENGINE = NamedEngine("numpy-cpu-fused", _solve)
