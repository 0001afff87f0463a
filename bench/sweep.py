"""CPU size sweep (issue 13.3): ours vs each framework's own op at N = 2**7 ... 2**24.

Rows: torch fwd, torch fwd+bwd, NumPy (vs torch's own CPU op on the same data), Paddle fwd,
Paddle fwd+bwd, TF fwd and TF fwd+bwd (vs ``tf.nn.weighted_cross_entropy_with_logits`` +
``reduce_mean``, the gradient from a ``GradientTape``). Data: logits
``[N/64, 64]`` (normal x 3), targets in {0, 1}, ``pos_weight [64]``, reduction mean. Ours and
native take turns in one loop (best of ``repeat``, three times as many samples up to
``MANY_SAMPLES_UP_TO`` elements); each sample runs enough calls to last about 20 ms, so small
sizes show steady per-call cost.

    python bench/sweep.py --exponents 7 12 16 20 24 --plot bench/cpu_sweep.png
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from _timing import interleaved, print_table, row

SAMPLE_SECONDS = 0.02
# On a shared VM the per-call cost moves by 2x for seconds at a time: with only a few samples,
# one contender can fall in a slow spell and the other not. Small sizes get three times the
# samples (0.6 s a row), for both contenders alike.
MANY_SAMPLES_UP_TO = 2**14


def data(n: int, dtype="float32", seed: int = 0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((max(n // 64, 1), min(n, 64))) * 3).astype(dtype)
    y = (rng.random(x.shape) > 0.5).astype(dtype)
    p = (rng.random(x.shape[-1]) + 0.5).astype(dtype)
    return x, y, p


def _torch_cases(n, dtype):
    import torch

    import bce_compat

    f = torch.nn.functional.binary_cross_entropy_with_logits
    x, y, p = (torch.from_numpy(a) for a in data(n, dtype))
    xg = x.clone().requires_grad_(True)
    xn, yn, pn = data(n, dtype)

    def backward(loss):
        loss.backward()
        xg.grad = None

    return {
        "torch fwd": (lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p), lambda: f(x, y, pos_weight=p)),
        "torch fwd+bwd": (lambda: backward(bce_compat.binary_cross_entropy_with_logits(xg, y, pos_weight=p)),
                          lambda: backward(f(xg, y, pos_weight=p))),
        "numpy (vs torch op)": (lambda: bce_compat.binary_cross_entropy_with_logits(xn, yn, pos_weight=pn),
                                lambda: f(x, y, pos_weight=p)),
    }  # fmt: skip


def _paddle_cases(n, dtype):
    import paddle

    import bce_compat

    f = paddle.nn.functional.binary_cross_entropy_with_logits
    xn, yn, pn = data(n, dtype)
    x, y, p = (paddle.to_tensor(a) for a in (xn, yn, pn))
    xg = paddle.to_tensor(xn, stop_gradient=False)

    def backward(loss):
        loss.backward()
        xg.clear_gradient(False)  # released, as torch's grad = None

    return {
        "paddle fwd": (lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p), lambda: f(x, y, pos_weight=p)),
        "paddle fwd+bwd": (lambda: backward(bce_compat.binary_cross_entropy_with_logits(xg, y, pos_weight=p)),
                           lambda: backward(f(xg, y, pos_weight=p))),
    }  # fmt: skip


def _tf_cases(n, dtype):
    import tensorflow as tf

    import bce_compat

    x, y, p = (tf.constant(a) for a in data(n, dtype))

    xv = tf.Variable(x)

    def native_loss(logits):
        return tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(y, logits, p))

    def ours_loss(logits):
        return bce_compat.binary_cross_entropy_with_logits(logits, y, pos_weight=p)

    def gradient(loss_fn):
        with tf.GradientTape() as tape:
            loss = loss_fn(xv)
        return tape.gradient(loss, xv).numpy()

    return {
        "tf fwd": (lambda: ours_loss(x).numpy(), lambda: native_loss(x).numpy()),
        "tf fwd+bwd": (lambda: gradient(ours_loss), lambda: gradient(native_loss)),
    }


CASES = {"torch": _torch_cases, "paddle": _paddle_cases, "tensorflow": _tf_cases}  # the safe import order


def _calls_per_sample(fn) -> int:
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(2000, int(SAMPLE_SECONDS / once)))


def measure(exponents, repeat: int = 5, dtype: str = "float32", libraries=tuple(CASES)) -> list[dict]:
    """One row per (engine, N): seconds per call of ours and of native, interleaved, best of
    ``repeat`` samples (``3 * repeat`` up to ``MANY_SAMPLES_UP_TO`` elements)."""
    rows = []
    for name in libraries:
        try:
            __import__(name)
        except ImportError:
            continue
        for e in exponents:
            n = 2**e
            for case, (ours, native) in CASES[name](n, dtype).items():
                number = _calls_per_sample(native)
                samples = 3 * repeat if n <= MANY_SAMPLES_UP_TO else repeat
                best = interleaved({"ours": ours, "native": native}, samples, number=number)
                rows.append({"engine": case, "n": n, "dtype": dtype, "ours": best["ours"], "native": best["native"]})
    return rows


def table_rows(points: list[dict]) -> list[dict]:
    """The sweep as ``run.print_table`` rows: ratio, and ns per element in the note."""
    out = []
    for pt in points:
        n = pt["n"]
        note = f"{pt['ours'] / n * 1e9:7.2f} vs {pt['native'] / n * 1e9:7.2f} ns/elem"
        if pt["native"] < 100e-6:
            note += f"  {(pt['ours'] - pt['native']) * 1e6:+.1f} us"
        native_name = "torch op" if pt["engine"].startswith(("torch", "numpy")) else pt["engine"].split()[0] + " op"
        out.append(row(f"{pt['engine']}, {pt['dtype']}, 2^{int(math.log2(n))}", pt["ours"], pt["native"], native_name, note=note))
    return out


def peak_extra_memory(n: int = 2**22) -> dict:
    """Peak NumPy memory beyond inputs and result during one call (tracemalloc), in units of x's size."""
    import tracemalloc

    import bce_compat

    x, y, p = data(n)
    out = {}
    for reduction in ("mean", "none"):
        bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction=reduction)
        tracemalloc.start()
        result = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction=reduction)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[reduction] = (peak - np.asarray(result).nbytes) / x.nbytes
    return out


def plot(points: list[dict], path: str) -> None:
    """Log-log time per element vs N, ours (solid) and native (dashed) per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for i, engine in enumerate(dict.fromkeys(pt["engine"] for pt in points)):
        mine = [pt for pt in points if pt["engine"] == engine]
        sizes = [pt["n"] for pt in mine]
        color = f"C{i}"
        ax.plot(sizes, [pt["ours"] / pt["n"] * 1e9 for pt in mine], "-o", color=color, ms=3, label=f"{engine}: bce_compat")
        ax.plot(sizes, [pt["native"] / pt["n"] * 1e9 for pt in mine], "--", color=color, label=f"{engine}: native")
    ax.set(xscale="log", yscale="log", xlabel="elements N (float32 [N/64, 64], pos_weight [64], mean)", ylabel="ns per element")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exponents", type=int, nargs="+", default=list(range(7, 25)))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args(argv)
    points = measure(args.exponents, args.repeat, args.dtype)
    print_table(table_rows(points))
    if args.plot:
        plot(points, args.plot)


if __name__ == "__main__":
    main()
