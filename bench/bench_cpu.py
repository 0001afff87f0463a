"""CPU benchmarks (issue 6, parts 2 and 3): the NumPy fast path, and the shim's overhead on torch and Paddle.

Data: logits [N/64, 64] float32 (standard normal times 3), targets in {0, 1}, pos_weight [64].
Native ops: torch.nn.functional.binary_cross_entropy_with_logits and Paddle's, on the same data.
Floor: bytes that must move (read x and y, write the loss for "none") / the copy bandwidth
measured here (np.copyto of an array of N float32).

    python bench/bench_cpu.py            # 2**24 and 128 elements
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile

import numpy as np
from _timing import interleaved, print_table, row


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((max(n // 64, 1), min(n, 64))) * 3).astype(np.float32)
    y = (rng.random(x.shape) > 0.5).astype(np.float32)
    p = (rng.random(x.shape[-1]) + 0.5).astype(np.float32)
    return x, y, p


def naive_numpy(x, y, p):
    """What a user would write with NumPy: the stable formula, one full-size temporary per op."""
    sp_pos = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    sp_neg = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))
    coefficient = p * y
    return coefficient * np.where(coefficient == 0, 0, sp_neg) + (1 - y) * np.where(y == 1, 0, sp_pos)


NUMEXPR_EXPR = (
    "where(p * y == 0, 0, p * y * (where(x > 0, 0, -x) + log1p(exp(-abs(x)))))"
    " + where(1 - y == 0, 0, (1 - y) * (where(x > 0, x, 0) + log1p(exp(-abs(x)))))"
)


def copy_seconds(n: int, repeat: int) -> float:
    a, b = np.ones(n, np.float32), np.empty(n, np.float32)
    return interleaved({"copy": lambda: np.copyto(b, a)}, repeat)["copy"]


def numpy_rows(n: int, repeat: int) -> list[dict]:
    """NumPy fast path vs torch's CPU op, the naive NumPy composite and numexpr, same data."""
    import bce_compat

    x, y, p = data(n)
    floor_per_byte = copy_seconds(n, repeat) / (8 * n)  # copy reads 4 and writes 4 bytes per element
    fns = {
        "ours none": lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction="none"),
        "ours mean": lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p),
        "naive": lambda: naive_numpy(x, y, p),
    }
    try:
        import torch

        tx, ty, tp = map(torch.from_numpy, (x, y, p))
        f = torch.nn.functional.binary_cross_entropy_with_logits
        fns["torch none"] = lambda: f(tx, ty, pos_weight=tp, reduction="none")
        fns["torch mean"] = lambda: f(tx, ty, pos_weight=tp)
    except ImportError:
        torch = None
    try:
        import numexpr

        out = np.empty_like(x)
        fns["numexpr"] = lambda: numexpr.evaluate(NUMEXPR_EXPR, local_dict={"x": x, "y": y, "p": p}, out=out)
    except ImportError:
        numexpr = None
    t = interleaved(fns, repeat)
    size = f"2^{int(math.log2(n))}" if n & (n - 1) == 0 else str(n)
    rows = []
    if torch is not None:
        rows.append(row(f"numpy fast, none, {size}", t["ours none"], t["torch none"], "torch CPU op", 12 * n * floor_per_byte))
        rows.append(row(f"numpy fast, mean, {size}", t["ours mean"], t["torch mean"], "torch CPU op", 8 * n * floor_per_byte))
    rows.append(row(f"numpy fast, none, {size}", t["ours none"], t["naive"], "naive NumPy composite", 12 * n * floor_per_byte))
    if numexpr is not None:
        rows.append(row(f"numpy fast, none, {size}", t["ours none"], t["numexpr"], "numexpr fused expr", 12 * n * floor_per_byte))
    return rows


def torch_rows(n: int, repeat: int, number: int = 1) -> list[dict]:
    """The portable call on torch CPU tensors (its fast path) vs torch's own op."""
    try:
        import torch
    except ImportError:
        return []
    import bce_compat

    x, y, p = (torch.from_numpy(a) for a in data(n))
    xg = x.clone().requires_grad_(True)
    f = torch.nn.functional.binary_cross_entropy_with_logits

    def ours_fb():
        bce_compat.binary_cross_entropy_with_logits(xg, y, pos_weight=p).backward()

    def native_fb():
        f(xg, y, pos_weight=p).backward()

    t = interleaved(
        {
            "ours": lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p),
            "native": lambda: f(x, y, pos_weight=p),
            "ours fb": ours_fb,
            "native fb": native_fb,
        },
        repeat,
        number=number,
    )
    size = f"2^{int(math.log2(n))}" if n & (n - 1) == 0 else str(n)
    return [
        _overhead_row(f"torch CPU via shim, mean fwd, {size}", t["ours"], t["native"], "torch CPU op", n),
        _overhead_row(f"torch CPU via shim, mean fwd+bwd, {size}", t["ours fb"], t["native fb"], "torch CPU op", n),
    ]


def paddle_rows(n: int, repeat: int, number: int = 1) -> list[dict]:
    """The portable call on Paddle CPU tensors vs Paddle's own op."""
    try:
        import paddle
    except ImportError:
        return []
    import bce_compat

    x, y, p = (paddle.to_tensor(a) for a in data(n))
    f = paddle.nn.functional.binary_cross_entropy_with_logits
    t = interleaved(
        {
            "ours": lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p),
            "native": lambda: f(x, y, pos_weight=p),
        },
        repeat,
        number=number,
    )
    size = f"2^{int(math.log2(n))}" if n & (n - 1) == 0 else str(n)
    return [_overhead_row(f"paddle CPU via shim, mean fwd, {size}", t["ours"], t["native"], "paddle op", n)]


def _overhead_row(case, ours, native, name, n):
    note = f"+{(ours - native) * 1e6:.1f} us/call" if n <= 4096 else ""
    return row(case, ours, native, name, note=note)


def import_row(runs: int = 7) -> dict:
    """``import bce_compat`` in fresh interpreters: best of ``runs`` (goal < 50 ms)."""
    code = "import time; s = time.perf_counter(); import bce_compat; print(time.perf_counter() - s)"
    # Outside the source tree: from the repository's root, its bce_compat/ would shadow the install.
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                  cwd=tempfile.gettempdir()).stdout) for _ in range(runs)]
    return row("import bce_compat (subprocess)", min(times), None, note=f"min of {runs}; goal < 50 ms")


def all_rows(sizes=(2**24, 128), repeat: int = 5) -> list[dict]:
    rows = []
    for n in sizes:
        # small inputs: each sample is 500 calls in a row (per-call overhead, not timer noise)
        number = 1 if n > 4096 else 500
        if n > 4096:
            rows += numpy_rows(n, repeat)
        rows += torch_rows(n, repeat, number)
        rows += paddle_rows(n, repeat, number)
    rows.append(import_row())
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2**24, 128])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print_table(all_rows(tuple(args.sizes), args.repeat))


if __name__ == "__main__":
    main()
