"""Timing helpers shared by the benchmarks: interleaved best-of-N timing and copy bandwidth.

Ours and the native op are timed alternately in the same loop, so a busy machine slows both
alike; each side reports its best (minimum) time.

>>> best = interleaved({"a": lambda: None, "b": lambda: None}, repeat=3)
>>> sorted(best)
['a', 'b']
"""

from __future__ import annotations

import time


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
