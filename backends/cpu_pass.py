"""The one way into the compiled CPU pass (``backends/_cpu_pass.c``), for every CPU engine.

The pass computes the canonical problem (``bce_compat.contract.Problem``) of kinds "logits",
"probs" and "focal", with the options ``label_smoothing``, ``ignore_index``, ``alpha`` and
``gamma``, on float16, bfloat16, float32 and float64 arrays of any layout, in one loop: the
element-wise loss, its sum, and d loss / d input.

The trust boundary is C's: every array is handed over as the object itself (a NumPy array, a
torch or Paddle tensor), or as ``(object, capacity)``, and C reads its shape, strides, dtype and
memory through the buffer protocol or DLPack, checking each against the others; nothing of the
layout is computed here. What C cannot see is the caller's to settle first (torch's negative and
conjugate view bits: ``torch_fast`` resolves them).

Threads follow one rule. A call is split at block boundaries (``BLOCK`` elements each; a
reduction sums per block and then exactly, so the bits do not depend on the split):
- torch tensors of more than one block: over torch's own OpenMP team (``use_host_openmp``),
  ``torch.get_num_threads()`` threads, or, where torch has no OpenMP, over our team with at most
  that many threads;
- everything else (NumPy, Paddle, TensorFlow) of at least ``PARALLEL_MIN`` elements: over our
  team of ``num_threads()`` threads, set by the environment variable ``BCE_COMPAT_NUM_THREADS``
  (default: the CPUs this process may use, at most 4).
Our team is native (``_cpu_team.h``: POSIX threads that hold no Python state, so it computes
during interpreter shutdown too, and a forked child starts it afresh); where there is none
(Windows) it is a Python pool, whose runs the calling thread computes while the interpreter
shuts down. A forked child never uses an OpenMP team (``_fork``). ``threads_started()`` counts
our threads.

>>> import numpy as np
>>> total = run("logits", np.array([-20.0, 0.0], np.float32), np.zeros(2, np.float32), reduction="sum")
>>> value = settle(total, "sum", {}).value  # in double; the caller rounds it to float32 once
>>> bool(abs(value - (np.log(2) + np.log1p(np.exp(-20.0)))) < 1e-9), np.float32(value)
(True, np.float32(0.6931472))
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from bce_compat.backends import _fork
from bce_compat.contract import Declined, Problem, unsupported

_cpu_pass: Any
try:
    _cpu_pass = importlib.import_module("bce_compat.backends._cpu_pass")
except ImportError:  # a source install without a C compiler: the engines decline
    _cpu_pass = None

AVAILABLE = _cpu_pass is not None
# Whether the pass has its native team (_cpu_team.h: POSIX threads); else our Python pool splits
OWN_TEAM = bool(_cpu_pass is not None and _cpu_pass.OWN_TEAM)
# Whether float16 runs convert 8 values an instruction (_cpu_f16c.h: where the CPU has F16C; the
# same bits either way). BCE_COMPAT_NO_F16C=1 converts value by value, as on a CPU without it.
F16C = bool(_cpu_pass is not None and _cpu_pass.use_f16c(not os.environ.get("BCE_COMPAT_NO_F16C")))
_TEAM_NONE, _TEAM_HOST, _TEAM_OWN = 0, 1, 2  # _cpu_pass.run's team argument
BLOCK: int = _cpu_pass.BLOCK if _cpu_pass is not None else 2048  # elements per partial sum
# Below this one thread on our team: split over it, inputs of two to four blocks ran slower than
# on one thread with another library's op between calls (Paddle's, at 2**12: 135 against 54 µs);
# the Python pool (where there is no native team) hands a run over in ~150 µs, so it splits from
# 2**18 (bench/README.md, "Threads").
PARALLEL_MIN = 4 * BLOCK + 1 if OWN_TEAM else 1 << 18
KINDS = {"logits": 0, "probs": 1, "focal": 2}
OPTIONS = ("label_smoothing", "ignore_index", "alpha", "gamma")  # what the pass implements
ROUTES = {"float16": 0, "bfloat16": 0, "float32": 1, "float64": 2}  # the result dtype's route (see _cpu_pass.c)
NO_GRAD_SCALE = 1.0


class Totals(NamedTuple):
    """What a pass returns besides its outputs: the loss summed (exactly rounded from the
    blocks' sums), the elements kept (not ignored), the probabilities and kept targets found
    outside [0, 1] (kind "probs"), and the input's size as C read it."""

    sum: float
    kept: int
    bad_input: int
    bad_target: int
    size: int


def declines(problem: Problem) -> Declined | None:
    """Why the pass cannot take ``problem`` before looking at its arrays, or None.

    >>> declines(Problem("logits", None, None, options={"mean_axis": 1})).reason
    "option 'mean_axis' is not implemented"
    """
    declined = unsupported(problem, kinds=tuple(KINDS), options=OPTIONS)
    if declined is None and not AVAILABLE:
        return Declined("the compiled CPU pass (bce_compat.backends._cpu_pass) was not built")
    return declined


def route(dtype_name: str) -> int | None:
    """The pass's route for a result dtype (by name), or None if it has none.

    >>> route("float32"), route("int8")
    (1, None)
    """
    return ROUTES.get(dtype_name)


def run(kind: str, x: Any, y: Any, weight: Any = None, pos_weight: Any = None, *, reduction: str,
        loss_out: Any = None, grad_out: Any = None, result_dtype: str = "float32", size_hint: int = 0,
        options: Mapping[str, Any] | None = None, grad_scale: float | None = None, threads: int = 1,
        host_team: bool = False, parallel_min: int = PARALLEL_MIN) -> Totals:
    """The pass over all of ``x``: the element-wise loss into ``loss_out``, d loss / d x into
    ``grad_out`` (times ``grad_scale``: by default 1 / size for a mean without ``ignore_index``,
    else 1), and the totals.

    Arrays as ``_cpu_pass`` takes them (module docstring); ``weight``/``pos_weight`` may also be
    None or Python numbers. ``threads`` above 1 splits inputs of ``parallel_min`` elements or more
    (``size_hint``, the caller's count, says whether to look; the split itself uses the size C
    reads): over the host's OpenMP team when ``host_team`` (torch's, see ``use_host_openmp``),
    else over our team. ``options`` are the problem's (``OPTIONS``).
    """
    options = options or {}
    ignore = options.get("ignore_index")
    if grad_scale is None:
        grad_scale = -1.0 if reduction == "mean" and ignore is None else NO_GRAD_SCALE  # -1: C's 1 / size
    want_sum = reduction != "none" or ignore is not None
    settings = (
        want_sum, float(options.get("label_smoothing", 0.0)), ignore, kind == "probs",
        float(options.get("alpha", 0.25)), float(options.get("gamma", 2.0)), grad_scale,
    )
    args = (KINDS[kind], ROUTES[result_dtype], x, y, weight, pos_weight, loss_out, grad_out, settings)
    if threads < 2 or size_hint < parallel_min:
        return Totals(*_cpu_pass.run(*args, 0, -1, None, 1, _TEAM_NONE))
    if host_team and _host_team_ready():
        return Totals(*_cpu_pass.run(*args, 0, -1, None, threads, _TEAM_HOST))
    if OWN_TEAM:
        return Totals(*_cpu_pass.run(*args, 0, -1, None, min(threads, num_threads()), _TEAM_OWN))
    n = _cpu_pass.size(x)
    if n <= BLOCK:
        return Totals(*_cpu_pass.run(*args, 0, -1, None, 1, _TEAM_NONE))
    return _run_on_pool(args, n, min(threads, num_threads()))


class Settled(NamedTuple):
    """What an engine does with a pass's totals: decline (``outside``), its mean or sum, and the
    factor its d loss/d x still needs."""

    outside: bool  # probabilities or kept targets outside [0, 1]: the front end's check reports them
    value: float  # the mean (over the kept elements with ignore_index; NaN when none) or the sum
    grad_scale: float  # 1 / kept for a mean with ignore_index (unknown before the pass), else 1


def settle(totals: Totals, reduction: str, options: Mapping[str, Any]) -> Settled:
    """The totals of a pass as an engine uses them.

    >>> settle(Totals(3.0, 2, 0, 0, 4), "mean", {"ignore_index": -1.0})
    Settled(outside=False, value=1.5, grad_scale=0.5)
    >>> settle(Totals(3.0, 4, 0, 0, 4), "mean", {}).value
    0.75
    """
    ignoring = "ignore_index" in options
    if reduction == "sum":
        value = totals.sum
    else:
        count = totals.kept if ignoring else totals.size
        value = totals.sum / count if count else math.nan
    scale = 1.0
    if reduction == "mean" and ignoring:
        scale = 1.0 / totals.kept if totals.kept else math.nan
    return Settled(bool(totals.bad_input or totals.bad_target), value, scale)


def is_one(upstream: Any) -> bool:
    """Whether a one-element float array holds exactly 1, read through the boundary (the
    caller resolves a torch view's negative bit first)."""
    return bool(_cpu_pass.is_one(upstream))


def aligned_empty(shape: tuple, dtype: Any, alignment: int = 64) -> Any:
    """``np.empty`` whose data starts on an ``alignment``-byte boundary (TensorFlow adopts
    through DLPack only 64-byte aligned data; NumPy guarantees 16).

    >>> import numpy as np
    >>> aligned_empty((3, 2), np.float32).ctypes.data % 64
    0
    """
    import numpy as np

    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def num_threads() -> int:
    """Threads for NumPy, Paddle and TensorFlow inputs: ``$BCE_COMPAT_NUM_THREADS`` if set (a
    positive integer), else the CPUs this process may run on, at most 4.

    >>> num_threads() >= 1
    True
    """
    setting = os.environ.get("BCE_COMPAT_NUM_THREADS", "").strip()
    if setting:
        try:
            value = int(setting)
        except ValueError:
            value = 0
        if value >= 1:
            return value
        raise ValueError(f"BCE_COMPAT_NUM_THREADS must be a positive integer; got {setting!r}")
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(4, cpus))


def threads_started() -> int:
    """The threads of ours running in this process: the native team's workers, or the Python
    pool's (the calling thread computes a part itself and is not counted).

    >>> threads_started() >= 0
    True
    """
    native = _cpu_pass.team_threads() if OWN_TEAM else 0
    return native + sum(t.name.startswith("bce_compat") for t in threading.enumerate())


# --- Our Python pool, where there is no native team ----------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _run_on_pool(args: tuple, n: int, threads: int) -> Totals:
    """The blocks split into ``threads`` runs, the first on the calling thread; per-block rows
    summed exactly. A run the pool cannot take (the interpreter is shutting down, or the pool
    was shut down) is computed on the calling thread too."""
    import numpy as np

    blocks = -(-n // BLOCK)
    threads = min(threads, blocks)
    bounds = [min(n, blocks * i // threads * BLOCK) for i in range(threads)] + [n]
    rows = np.zeros((blocks, 4), np.float64)
    pool = None if sys.is_finalizing() else _get_pool(threads - 1)
    handed: list[Future] = []
    mine = [0]
    for i in range(1, threads):
        try:
            if pool is None:
                raise RuntimeError("no pool")
            handed.append(pool.submit(_run_part, args, bounds[i], bounds[i + 1], rows))
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            pool = None
            mine.append(i)
    for i in mine:
        _run_part(args, bounds[i], bounds[i + 1], rows)
    for future in handed:
        future.result()
    kept, bad_input, bad_target = (int(v) for v in rows[:, 1:].sum(axis=0))
    return Totals(math.fsum(rows[:, 0].tolist()), kept, bad_input, bad_target, n)


def _run_part(args: tuple, start: int, stop: int, rows: Any) -> None:
    _cpu_pass.run(*args, start, stop, rows, 1, _TEAM_NONE)


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool, _pool_size = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bce_compat"), workers
        return _pool


_pool_size = 0


# --- The host's OpenMP team (torch's) -------------------------------------------------------------

_host_team = False


def use_host_openmp(enable: bool = True) -> bool:
    """Hand the pass the OpenMP runtime already loaded in this process (its ``GOMP_parallel``, the
    ABI that libgomp, Intel's and LLVM's runtimes export), for ``run(..., host_team=True)``;
    whether one was found. The torch engine calls this: torch's OpenMP workers spin-wait after
    each torch op, so work handed to them starts at once. ``enable=False`` forgets it, and so
    does a forked child."""
    global _host_team
    if _cpu_pass is None:
        return False
    address = 0
    if enable and not _fork.forked:
        try:
            import ctypes

            process = ctypes.CDLL(None)
            address = ctypes.cast(process.GOMP_parallel, ctypes.c_void_p).value or 0
        except (AttributeError, OSError, TypeError):  # no OpenMP runtime loaded, or no dlopen(NULL) (Windows)
            address = 0
    _host_team = bool(_cpu_pass.set_host_parallel(address))
    return _host_team


def _host_team_ready() -> bool:
    return _host_team and not _fork.forked


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: the parent's pool would take work and
    never run it, and an OpenMP team the parent used hangs the child. So the child starts a
    fresh pool on first use and forgets the team."""
    global _pool, _pool_lock, _pool_size, _host_team
    _pool, _pool_lock, _pool_size = None, threading.Lock(), 0
    if _host_team and _cpu_pass is not None:
        _cpu_pass.set_host_parallel(0)
        _host_team = False


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)

