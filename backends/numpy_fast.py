"""Fast CPU engine for BCE-with-logits: one fused compiled pass (``_fused.c``), float64 inside.

Public API (used by the torch and Paddle CPU engines; keep the names stable):

- ``loss(x, y, weight, pos_weight, reduction, out_dtype, *, grad_out=None)``: the loss (0-d for
  mean/sum); with ``grad_out`` (an array of x's shape) it also writes d loss / d x for an
  upstream gradient of 1 into it, in the same pass, with bit-identical loss values.
- ``grad(x, y, weight, pos_weight, upstream, out_dtype)``: d loss / d x times ``upstream``
  (an array broadcastable to x, or a number already scaled for mean).
- ``one_block(x, operands, size, loss_out, grad_out, reduction, precise=...)``: one call of the
  pass over at most ``BLOCK`` elements, on buffers or raw ``(address, length, is_double)`` ones.
- ``raw_inputs(x, operands, wide)``: another library's CPU tensors of one block as ``one_block``
  takes them raw (their ``data_ptr()``), or None; it is ``raw_addresses(raw_layout(...), ...)``,
  the part decided by dtypes and shapes alone and the part read on every call.
- ``tiling_repeat(operand_shape, shape)``: the repeat under which a broadcast operand is a
  tiling of its own buffer (0: it is not).
- ``AVAILABLE``: whether the compiled pass was built. Without it (a source install with no C
  compiler) every engine built on it declines, and the portable path computes.

The formula exists once, in ``_fused.c``. With e = exp(-|x|), t = log1p(e), c+ = p*y (or y),
c- = 1 - y and s = c+ + c- (all float64):

    loss = s*t + k*x            k = c- where x > 0, else -c+    (= c+*softplus(-x) + c-*softplus(x))
    dloss/dx = (k + j*e) / (1 + e)   j = -c+ where x > 0, else c-

Every term is a sum of non-negative parts (k*x >= 0), so nothing cancels in the loss: x = -20,
y = 0 gives 2.06e-9, not 0. The zero-coefficient rule makes k*x exactly 0 where k = 0 and x is
infinite.

Routes: float16/float32 results use the pass's vectorised float64 exp/log1p (relative error below
2e-10, under 0.004 of a float32 ulp); float64 results use libm's exp/log1p in the same pass (a
double ulp counts there). Reductions sum per block of ``BLOCK`` elements in C, and the block sums
exactly (``math.fsum``), so the result does not depend on the thread count. Inputs of at least
``PARALLEL_MIN`` elements are split at block boundaries over a small thread pool (the pass
releases the GIL), or, with ``host_threads``, over the OpenMP team of the framework that owns
the process's OpenMP runtime (torch's; ``use_host_openmp``).

Operands are handed to the pass as a flat buffer plus a repeat: element i of x uses
buffer[(i // repeat) % len(buffer)]. A full array, pos_weight[C] over [B, C] and a per-row
weight[B, 1] are all views; any other broadcast is materialised first.

>>> import numpy as np
>>> float(loss(np.array([-20.0], np.float32), np.zeros(1, np.float32), None, None, "sum", np.float32))
2.06115369216775e-09
>>> g = np.empty(2); float(loss(np.zeros(2), np.array([1.0, 0.0]), None, 2.0, "mean", np.float64, grad_out=g)), g.tolist()
(1.0397207708399179, [-0.5, 0.25])
>>> grad(np.array(0.0), np.array(1.0), None, None, 1.0, np.float64).tolist()
-0.5
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from numbers import Real

import numpy as np

from bce_compat import _fork
from bce_compat.backends.contract import Declined, NamedEngine, Problem, unsupported

try:
    from bce_compat.backends import _fused
except ImportError:  # a source install without a C compiler: engines on this pass decline
    _fused = None

AVAILABLE = _fused is not None
BLOCK = _fused.BLOCK if _fused is not None else 8192  # elements per partial sum
PARALLEL_MIN = 1 << 15  # below this, one thread (the pool hand-off costs more than it saves)
DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_PASS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the compiled pass reads and writes
_FLOAT64 = np.dtype(np.float64)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def loss(x, y, weight, pos_weight, reduction, out_dtype, *, grad_out=None, parallel_min=None,
         host_threads=0) -> np.ndarray:
    """The loss in ``out_dtype`` (0-d for mean/sum); d loss/d x (upstream 1) into ``grad_out`` if given.

    ``parallel_min``: the size from which the pass is split over our thread pool (default
    ``PARALLEL_MIN``). ``host_threads`` above 1 (or -1, the team's size): split instead, from two
    blocks on, over that many threads of the host framework's OpenMP team (``use_host_openmp``).

    >>> float(loss(np.array(0.0), np.array(1.0), None, None, "none", np.float64))
    0.6931471805599453
    """
    x = _pass_array(x)
    if not isinstance(out_dtype, np.dtype):
        out_dtype = np.dtype(out_dtype)
    size = x.size
    if size == 0:
        return np.empty(x.shape, out_dtype) if reduction == "none" else np.asarray(
            math.nan if reduction == "mean" else 0.0, out_dtype)
    shape = x.shape
    scale = 1.0 / size if reduction == "mean" and grad_out is not None else 1.0
    operands = (_operand(y, shape), _operand(weight, shape), _operand(pos_weight, shape), None)
    precise = out_dtype == _FLOAT64 or (grad_out is not None and grad_out.dtype == _FLOAT64)
    grad_buffer, finish_grad = (None, None) if grad_out is None else _output(shape, grad_out.dtype, grad_out)
    if reduction == "none":
        loss_out, finish_loss = _output(shape, out_dtype)
        _run(x, operands, loss_out, grad_buffer, None, scale, precise, parallel_min, host_threads)
    else:
        total = _run(x, operands, None, grad_buffer, True, scale, precise, parallel_min, host_threads)
    if finish_grad is not None:
        finish_grad()
    if reduction == "none":
        return finish_loss()
    return np.asarray(_reduced(total, size, reduction), out_dtype)


def one_block(x, operands, size, loss_out, grad_out, reduction, *, precise) -> float | None:
    """The pass on the calling thread over an x of ``size`` elements, at most ``BLOCK``, with
    operands as ``_fused.logits`` takes them and every buffer C-contiguous, raw ones
    ``(address, length, is_double)`` included: the loss as a float for mean and sum (loss_out
    None), else None (written into loss_out). For engines whose arrays NumPy cannot view cheaply.

    >>> x = np.zeros(2); one_block(x, ((np.ones(2), 1), None, None), 2, None, None, "mean", precise=True)
    0.6931471805599453
    """
    if size > BLOCK:
        raise ValueError(f"one_block takes at most BLOCK = {BLOCK} elements, got {size}")
    scale = 1.0 / size if reduction == "mean" and grad_out is not None else 1.0
    sums = None if reduction == "none" else True
    total = _fused.logits(x, *operands, None, loss_out, grad_out, sums, 0, size, scale, precise)
    return None if total is None else _reduced(total, size, reduction)


def raw_inputs(x, operands, wide) -> tuple | None:
    """``(x, operands, size)`` as ``one_block`` takes them raw, from another library's CPU tensors
    (anything with ``data_ptr()``, ``is_contiguous()``, ``shape`` and ``dtype``); None where the
    pass cannot read them in place: more than ``BLOCK`` elements, a dtype not in ``wide`` (the
    library's float32/float64 -> whether it is float64), a non-contiguous tensor, or a broadcast
    operand that is not a tiling of its buffer. Operands may also be None or Python numbers.
    It is ``raw_addresses(raw_layout(...), ...)``; a caller may keep the layout per signature.

    >>> raw_inputs(np.zeros(3), [None, 2.0], {}) is None  # float64 is not in ``wide``
    True
    """
    layout = raw_layout(x, operands, wide)
    return None if layout is None else raw_addresses(layout, x, operands)


def raw_layout(x, operands, wide) -> tuple | None:
    """What ``raw_inputs`` decides from dtypes and shapes alone, which a caller may remember for
    arrays of the same dtypes and shapes: ``(x's size, whether x is float64, operand forms)``,
    a form being None (None or a Python number) or ``(length, is_double, repeat)``; None where
    the pass cannot read such arrays in place.

    >>> raw_layout(np.zeros((2, 3), np.float32), [np.zeros(3, np.float32), 1.0], {np.dtype(np.float32): False})
    (6, False, ((3, False, 1), None))
    """
    is_double = wide.get(x.dtype)
    shape = tuple(x.shape)
    size = math.prod(shape)
    if is_double is None or size > BLOCK:
        return None
    forms = []
    for a in operands:
        if a is None or type(a) in _NUMBERS:
            forms.append(None)
            continue
        a_double = wide.get(a.dtype)
        if a_double is None:
            return None
        a_shape = tuple(a.shape)
        length = math.prod(a_shape)
        # a one-element buffer is read at index 0 throughout
        repeat = 1 if length == 1 or a_shape == shape else tiling_repeat(a_shape, shape)
        if not repeat:
            return None
        forms.append((length, a_double, repeat))
    return size, is_double, tuple(forms)


def raw_addresses(layout, x, operands) -> tuple | None:
    """``(x, operands, size)`` for ``one_block``: the tensors' ``data_ptr()`` now, in the form a
    ``raw_layout`` of such tensors gives; None if one of them is not C-contiguous."""
    size, is_double, forms = layout
    if not x.is_contiguous():
        return None
    raw = []
    for a, form in zip(operands, forms):
        if form is None:
            raw.append(a)
            continue
        if not a.is_contiguous():
            return None
        length, a_double, repeat = form
        raw.append(((a.data_ptr(), length, a_double), repeat))
    return (x.data_ptr(), size, is_double), raw, size


_NUMBERS = (bool, int, float)  # Python numbers the pass takes as constants


def _reduced(total: float, size: int, reduction) -> float:
    return total / size if reduction == "mean" else total


def grad(x, y, weight, pos_weight, upstream, out_dtype, *, parallel_min=None, host_threads=0) -> np.ndarray:
    """d loss / d x times ``upstream`` (broadcastable to x, or a number), in ``out_dtype``, x's shape.

    >>> grad(np.array([0.0, 100.0]), np.zeros(2), None, None, np.array([2.0, 1.0]), np.float32).tolist()
    [1.0, 1.0]
    """
    x = _pass_array(x)
    out_dtype = np.dtype(out_dtype)
    out, finish = _output(x.shape, out_dtype)
    if x.size:
        operands = [_operand(a, x.shape) for a in (y, weight, pos_weight, upstream)]
        _run(x, operands, None, out, None, 1.0, out_dtype == _FLOAT64, parallel_min, host_threads)
    return finish()


def _pass_array(a) -> np.ndarray:
    """``a`` as a C-contiguous float32/float64 array (float16 and others are widened: exact)."""
    if type(a) is not np.ndarray:
        a = np.asarray(a)
    if a.dtype not in _PASS_DTYPES:
        a = a.astype(np.float32 if a.dtype == np.float16 else np.float64)
    return a if a.flags.c_contiguous else a.copy(order="C")  # (np.ascontiguousarray makes 0-d 1-d)


def _operand(a, shape):
    """None, a number, or (C-contiguous buffer, repeat) such that element i of x uses buffer[(i // repeat) % len]."""
    if a is None:
        return None
    if type(a) is not np.ndarray:
        if isinstance(a, Real):
            return float(a)
        a = np.asarray(a)
    if a.shape == shape and a.size > 1:
        return _pass_array(a), 1
    if a.size == 1:
        return float(a.reshape(()))
    repeat = tiling_repeat(a.shape, shape)
    if repeat:
        return _pass_array(a), repeat
    return _pass_array(np.broadcast_to(a, shape)), 1


def tiling_repeat(operand_shape, shape) -> int:
    """``_tiling_repeat``, remembered per pair of shapes (a training loop has a handful).

    >>> tiling_repeat((64,), (2, 64))
    1
    """
    key = (operand_shape, shape)
    repeat = _REPEATS.get(key)
    if repeat is None:
        if len(_REPEATS) >= 256:  # never let it grow unbounded
            _REPEATS.clear()
        repeat = _REPEATS[key] = _tiling_repeat(operand_shape, shape)
    return repeat


_REPEATS: dict = {}  # (operand shape, x shape) -> _tiling_repeat's answer


def _tiling_repeat(operand_shape, shape) -> int:
    """The repeat under which a broadcast operand is a tiling of its own buffer, or 0 if it is not.

    >>> _tiling_repeat((64,), (2, 64)), _tiling_repeat((2, 1), (2, 64)), _tiling_repeat((2, 1, 3), (2, 4, 3))
    (1, 64, 0)
    """
    dims = (1,) * (len(shape) - len(operand_shape)) + tuple(operand_shape)
    varying = [d for d, n in enumerate(dims) if n != 1]
    first, last = varying[0], varying[-1]
    if all(dims[d] == shape[d] for d in range(first, last + 1)):  # one run of x's own dims
        return math.prod(shape[last + 1:])
    return 0


def _output(shape, dtype, given=None):
    """(buffer the pass writes, finish() -> the result): ``given`` itself where the pass can write it."""
    dtype = np.dtype(dtype)
    if given is not None and given.dtype in _PASS_DTYPES and given.flags.c_contiguous:
        return given, lambda: given
    if given is None and dtype in _PASS_DTYPES:
        out = aligned_empty(shape, dtype)
        return out, lambda: out
    # float16 (and non-contiguous targets): computed in float64, rounded once
    wide = np.empty(shape, np.float64)

    def finish():
        if given is None:
            return wide.astype(dtype)
        np.copyto(given, wide, casting="unsafe")
        return given

    return wide, finish


def aligned_empty(shape, dtype, alignment: int = 64) -> np.ndarray:
    """``np.empty`` whose data starts on an ``alignment``-byte boundary (TensorFlow requires 64
    for tensors it adopts through DLPack; NumPy guarantees only 16).

    >>> aligned_empty((3, 2), np.float32).ctypes.data % 64
    0
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def _run(x, operands, loss_out, grad_out, sums, scale, precise, parallel_min=None, host_threads=0):
    """The compiled pass over all of x (the loss sum when ``sums``), split over threads when large.

    Past one block the sum is the exact sum of the per-block sums, so it does not depend on
    how the blocks were split.
    """
    size = x.size
    if (host_threads > 1 or host_threads == -1) and size > BLOCK:  # one call; the host's OpenMP team runs the parts
        block_sums = np.empty(-(-size // BLOCK), np.float64) if sums else None
        _fused.logits(x, *operands, loss_out, grad_out, block_sums, 0, size, scale, precise, host_threads)
        return math.fsum(block_sums) if sums else None
    if size <= BLOCK or size < (PARALLEL_MIN if parallel_min is None else parallel_min):
        if size > BLOCK and sums:
            sums = np.empty(-(-size // BLOCK), np.float64)
            _fused.logits(x, *operands, loss_out, grad_out, sums, 0, size, scale, precise)
            return math.fsum(sums)
        return _fused.logits(x, *operands, loss_out, grad_out, sums, 0, size, scale, precise)
    threads = _threads()
    blocks = -(-size // BLOCK)
    bounds = [min(size, blocks * i // threads * BLOCK) for i in range(threads)] + [size]
    block_sums = np.empty(blocks, np.float64) if sums else None

    def part(i):
        _fused.logits(x, *operands, loss_out, grad_out, block_sums, bounds[i], bounds[i + 1], scale, precise)

    others = [_get_pool().submit(part, i) for i in range(1, threads)]
    part(0)  # the calling thread takes the first part itself
    for future in others:
        future.result()
    return math.fsum(block_sums) if sums else None


def use_host_openmp(enable: bool = True) -> bool:
    """Hand the pass the OpenMP runtime already loaded in this process (its ``GOMP_parallel``, the
    ABI that libgomp, Intel's and LLVM's runtimes all export), for ``host_threads``; whether one was
    found. ``enable=False`` forgets it, and so does a forked child (``bce_compat._fork``).

    The torch engine calls this: torch's OpenMP workers spin-wait after each torch op, so work
    handed to them starts at once, where a thread of ours would share a core with a spinning one.
    """
    global _host_team
    if _fused is None:
        return False
    addresses = [0, 0]
    if enable and not _fork.forked:  # a parent's team hangs a forked child (see bce_compat._fork)
        try:
            process = ctypes.CDLL(None)
            addresses = [ctypes.cast(getattr(process, name), ctypes.c_void_p).value or 0
                         for name in ("GOMP_parallel", "omp_get_max_threads")]
        except (AttributeError, OSError, TypeError):  # no OpenMP runtime loaded, or no dlopen(NULL) (Windows)
            pass
    _host_team = _fused.set_host_parallel(*addresses)
    return _host_team


_host_team = False  # whether use_host_openmp found a team: NumPy inputs then split over it too


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="bce_compat")
        return _pool


def _after_fork_in_child() -> None:
    """A forked child (multiprocessing's default on Linux) has none of its parent's threads: the
    parent's pool would take work and never run it, and an OpenMP team used in the parent hangs
    the child (libgomp's, torch's own ops included). So the child starts a fresh pool on first use
    and forgets the team (the pass then runs on the calling thread, or over the pool)."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()
    if _host_team:
        use_host_openmp(False)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


OPTIONS: tuple = ()  # options beyond torch's signature that this engine implements


def declines(problem: Problem, options: tuple = ()) -> Declined | None:
    """Why an engine on this pass declines ``problem`` before looking at its arrays, or None:
    a kind or option it does not implement (``contract.unsupported``), or no compiled pass.

    >>> declines(Problem("probs", np.zeros(1), np.zeros(1))).reason
    "kind 'probs' is not implemented"
    """
    declined = unsupported(problem, kinds=("logits",), options=options)
    if declined is None and not AVAILABLE:
        return Declined("the compiled CPU pass (bce_compat.backends._fused) was not built")
    return declined


def _solve(problem: Problem):
    """The engine's entry: the logits loss on NumPy arrays of float16/32/64, without options."""
    declined = declines(problem, OPTIONS)
    if declined is not None:
        return declined
    out_dtype = np.dtype(problem.out_dtype)
    if out_dtype not in DTYPES or not isinstance(problem.x, np.ndarray):
        return Declined("inputs outside this engine's dtypes (float16/32/64 ndarrays)")
    return loss(*problem.arrays(), problem.reduction, out_dtype, host_threads=-1 if _host_team else 0)


ENGINE = NamedEngine("numpy-cpu-fused", _solve)
