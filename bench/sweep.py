"""The size sweep: every selected family at every selected size, ours and the contender taking turns.

One record per (family, N): the median seconds per call of ours and of the contender over
interleaved samples (the order reversed every other round), every sample kept. Each sample
runs enough calls to last ``Sampling.sample_seconds``; a row takes as many sample pairs as fit
in ``Sampling.row_seconds``, within ``[min_samples, max_samples]``. On a shared VM the per-call
cost moves by 2x for seconds at a time: many short samples, alternating, put both contenders in
the same spells, and the median ignores the spells that hit a few samples.

>>> selection = Selection(frameworks=("torch", "numpy"), entries=("logits",), dtypes=("float32",),
...                       directions=("fwd", "fwd+bwd"), exponents=(7,), floor=False)
>>> [f.label for f in selection.families("float32", 7)]
['torch · logits · float32 · fwd', 'torch · logits · float32 · fwd+bwd', 'numpy · logits · float32 · fwd']
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from _cases import COMPILE_FROM, FLOOR, FRAMEWORKS, Family, Unsupported, build, make_data, not_applicable
from _timing import calls_per_sample, paired_samples, seconds_per_call


@dataclass(frozen=True)
class Sampling:
    sample_seconds: float  # one sample: this many seconds of calls in a row (at least one call)
    min_samples: int
    max_samples: int
    row_seconds: float  # per (family, N): as many sample pairs as fit in this
    slow_pair_seconds: float = 0.5  # a pair of calls slower than this: 3 samples (long calls vary little)

    def samples(self, pair_seconds: float) -> int:
        """Samples per side for a row whose sample pair takes ``pair_seconds``.

        >>> FULL.samples(0.01), FULL.samples(0.04), FULL.samples(0.2), FULL.samples(0.6), QUICK.samples(0.01)
        (25, 6, 5, 3, 3)
        """
        if pair_seconds > self.slow_pair_seconds:
            return min(3, self.min_samples)
        return min(self.max_samples, max(self.min_samples, int(self.row_seconds / max(pair_seconds, 1e-9))))


FULL = Sampling(sample_seconds=0.005, min_samples=5, max_samples=25, row_seconds=0.25)
QUICK = Sampling(sample_seconds=0.001, min_samples=3, max_samples=3, row_seconds=0.0)


@dataclass(frozen=True)
class Selection:
    frameworks: tuple[str, ...]
    entries: tuple[str, ...]
    dtypes: tuple[str, ...]
    directions: tuple[str, ...]
    exponents: tuple[int, ...]
    floor: bool = True  # the memory-floor line for each dtype and size (needs torch)

    def families(self, dtype: str, exponent: int) -> list[Family]:
        """The families measured at this dtype and size, in the order they run."""
        out = [Family(FLOOR, "logits", dtype, "fwd")] if self.floor else []
        for framework in (f for f in FRAMEWORKS if f in self.frameworks):
            if framework == "torch.compile" and exponent < COMPILE_FROM:
                continue
            for entry in self.entries:
                for direction in self.directions:
                    family = Family(framework, entry, dtype, direction)
                    if not_applicable(family) is None:
                        out.append(family)
        return out


class SideFailed(Exception):
    def __init__(self, side: str, exc: BaseException):
        super().__init__(f"{side} failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}")
        self.side = side


def measure(ours: Callable[[], object], theirs: Callable[[], object], sampling: Sampling) -> dict:
    """Median seconds per call of each side, every sample, and what each side's first call
    returned (``value``: a float where it is a scalar loss); SideFailed if a side raises."""
    fns = {"ours": ours, "theirs": theirs}
    once, values = {}, {}
    for name, fn in fns.items():
        try:
            start = time.perf_counter()
            values[name] = fn()  # warm-up: first-call costs (plans, caches, the allocator)
            once[name] = time.perf_counter() - start
            if once[name] < 20 * sampling.sample_seconds:  # small: calibrate on warm calls
                once[name] = seconds_per_call(fn, sampling.sample_seconds)
        except Exception as exc:
            raise SideFailed(name, exc) from exc
    numbers = {name: calls_per_sample(once[name], sampling.sample_seconds) for name in fns}
    pair = sum(numbers[name] * once[name] for name in fns)
    samples = sampling.samples(pair)
    # a row may take 3x its plan (or 2 s) before it stops at min_samples: the machine slowed down
    raw = paired_samples(fns, samples, numbers, max_seconds=max(3 * samples * pair, 2.0), min_samples=min(samples, sampling.min_samples))
    return {
        "ours_s": statistics.median(raw["ours"]),
        "theirs_s": statistics.median(raw["theirs"]),
        "ours_samples": raw["ours"],
        "theirs_samples": raw["theirs"],
        "calls_per_sample": numbers,
        "ours_value": _scalar(values["ours"]),
        "theirs_value": _scalar(values["theirs"]),
    }


def _scalar(value) -> float | None:
    """A 0-d loss as a float (torch, Paddle, NumPy, TF's .numpy()); None for anything else."""
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) not in ((), (1,)):
        return None
    return float(value)


def relative_difference(record: dict) -> float | None:
    """|ours − theirs| / |theirs| of the losses a forward row computed (None where not scalars).

    >>> round(relative_difference({"ours_value": 1.01, "theirs_value": 1.0}), 6)
    0.01
    >>> relative_difference({"ours_value": 1.0, "theirs_value": float("nan")})
    inf
    """
    ours, theirs = record.get("ours_value"), record.get("theirs_value")
    if ours is None or theirs is None:
        return None
    if math.isnan(ours) or math.isnan(theirs):
        return 0.0 if math.isnan(ours) and math.isnan(theirs) else math.inf
    if ours == theirs:
        return 0.0
    return abs(ours - theirs) / abs(theirs) if theirs else float("inf")


def _record(family: Family, exponent: int, **fields) -> dict:
    return {"framework": family.framework, "entry": family.entry, "dtype": family.dtype,
            "direction": family.direction, "exponent": exponent, "n": 2**exponent, **fields}  # fmt: skip


def run(selection: Selection, sampling: Sampling, progress: Callable[[str], None] = print) -> list[dict]:
    """Every family of the selection at every size: one record each (status "ok", or the reason
    it did not run; a family that failed once is not tried again at larger sizes)."""
    records: list[dict] = []
    failed: dict[Family, str] = {}
    for dtype in selection.dtypes:
        for exponent in selection.exponents:
            data = make_data(2**exponent, dtype)
            for family in selection.families(dtype, exponent):
                start = time.perf_counter()
                if family in failed:
                    record = _record(family, exponent, status="skipped", reason=failed[family])
                else:
                    record = _one(family, exponent, data, sampling)
                    if record["status"] != "ok":
                        failed[family] = f"as at 2^{exponent}: {record['reason']}"
                record["seconds"] = time.perf_counter() - start
                records.append(record)
                progress(_progress_line(record))
            del data
            if exponent >= 20:  # free the large inputs now (a collection takes ~1 s with three frameworks loaded)
                gc.collect()
    return records


def _one(family: Family, exponent: int, data, sampling: Sampling) -> dict:
    try:
        case = build(family, data)
        result = measure(case.ours, case.theirs, sampling)
    except Unsupported as exc:
        return _record(family, exponent, status="no contender", reason=str(exc))
    except SideFailed as exc:
        status = "ours failed" if exc.side == "ours" else "no contender"
        return _record(family, exponent, status=status, reason=str(exc))
    return _record(family, exponent, status="ok", reason="", contender=case.contender,
                   compile_s=case.compile_seconds, **result)  # fmt: skip


def _progress_line(record: dict) -> str:
    head = f"{record['framework']:>13} {record['entry']:<15} {record['dtype']:<8} {record['direction']:<7} 2^{record['exponent']:<2}"
    if record["status"] != "ok":
        return f"{head}  {record['status']}: {record['reason']}"
    ours, theirs = record["ours_s"] * 1e6, record["theirs_s"] * 1e6
    return f"{head}  ours {ours:10.1f} us  theirs {theirs:10.1f} us  ratio {ours / theirs:5.2f}  ({record['seconds']:.1f} s)"


def peak_extra_memory(n: int = 2**22, dtype: str = "float32") -> dict:
    """Peak NumPy memory beyond inputs and result during one call (tracemalloc), in units of x's size."""
    import tracemalloc

    import bce_compat

    data = make_data(n, dtype)
    x, y, p = (a.astype(dtype, copy=False) for a in (data.x, data.y, data.p))
    out = {}
    for reduction in ("mean", "none"):
        bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction=reduction)
        tracemalloc.start()
        result = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction=reduction)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[reduction] = (peak - np.asarray(result).nbytes) / x.nbytes
    return out
