"""Timing helpers shared by the benchmarks: interleaved samples, best-of-N, CUDA events.

Ours and the native op are timed alternately in the same loop, so a busy machine slows both
alike. ``interleaved`` reports each side's best (minimum) time; ``paired_samples`` keeps every
sample (the sweep of ``run.py`` reports their medians).

>>> best = interleaved({"a": lambda: None, "b": lambda: None}, repeat=3)
>>> sorted(best)
['a', 'b']
>>> samples = paired_samples({"a": lambda: None, "b": lambda: None}, samples=4, numbers={"a": 10, "b": 1})
>>> [len(samples["a"]), len(samples["b"])]
[4, 4]
"""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved(fns: dict, repeat: int = 5, sync=None, number: int = 1) -> dict[str, float]:
    """Best wall time (seconds per call) of each callable, taking turns; one warm-up call each first.

    Each sample times ``number`` calls in a row (use many for microsecond calls: one call is
    below the timer's resolution and dominated by cache misses from the other contender).
    """
    for fn in fns.values():
        fn()
    if sync:
        sync()
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            if sync:
                sync()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


def calls_per_sample(seconds_per_call: float, sample_seconds: float, most: int = 10_000) -> int:
    """How many calls in a row make one sample last about ``sample_seconds`` (at least one).

    >>> calls_per_sample(20e-6, 0.005), calls_per_sample(0.3, 0.005), calls_per_sample(0.0, 0.005)
    (250, 1, 10000)
    """
    if seconds_per_call <= 0:
        return most
    return max(1, min(most, round(sample_seconds / seconds_per_call)))


def paired_samples(
    fns: dict[str, Callable[[], object]],
    samples: int,
    numbers: dict[str, int],
    max_seconds: float = float("inf"),
    min_samples: int = 1,
) -> dict[str, list[float]]:
    """``samples`` samples (seconds per call) of each callable, taken in turns.

    One sample of ``name`` times ``numbers[name]`` calls in a row. The order within a round is
    reversed every other round (A B, B A, ...), so neither side always runs right after the
    other's data went through the caches. After ``max_seconds`` no new round starts once
    ``min_samples`` rounds are done (a machine that slowed down after the calibration).
    """
    names = list(fns)
    out: dict[str, list[float]] = {name: [] for name in names}
    began = time.perf_counter()
    for i in range(samples):
        if i >= min_samples and time.perf_counter() - began > max_seconds:
            break
        for name in names if i % 2 == 0 else names[::-1]:
            fn, number = fns[name], numbers[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            out[name].append((time.perf_counter() - start) / number)
    return out


def seconds_per_call(fn: Callable[[], object], seconds: float) -> float:
    """Mean seconds per call over calls in a row lasting at least ``seconds`` (two calls at least).

    >>> seconds_per_call(lambda: None, 0.001) < 0.001
    True
    """
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= 2 and elapsed >= seconds:
            return elapsed / calls


def cuda_interleaved(fns: dict, repeat: int = 20) -> dict[str, float]:
    """Like ``interleaved`` but with CUDA events around each call (seconds, best of ``repeat``)."""
    import torch

    for fn in fns.values():
        fn()
        fn()
    torch.cuda.synchronize()
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            best[name] = min(best[name], start.elapsed_time(end) / 1e3)
    return best


def row(case: str, ours: float, native: float | None, native_name: str = "", floor: float | None = None, note: str = "") -> dict:
    """One table row; times in seconds, ratio = ours / native, floor ratio = ours / memory floor."""
    return {
        "case": case,
        "ours_ms": ours * 1e3,
        "native": native_name,
        "native_ms": None if native is None else native * 1e3,
        "ratio": None if native is None else ours / native,
        "floor_ratio": None if floor is None else ours / floor,
        "note": note,
    }


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    width = max(len(r["case"]) for r in rows)
    native_width = max(len(r["native"] or "-") for r in rows)
    print(f"{'case':<{width}}  {'ours ms':>10}  {'native':<{native_width}}  {'native ms':>10}  {'ratio':>6}  {'floor':>6}  note")
    for r in rows:
        print(
            f"{r['case']:<{width}}  {_fmt(r['ours_ms'], '10.3f')}  {r['native'] or '-':<{native_width}}  "
            f"{_fmt(r['native_ms'], '10.3f')}  {_fmt(r['ratio'], '6.2f')}  {_fmt(r['floor_ratio'], '6.2f')}  {r['note']}"
        )
