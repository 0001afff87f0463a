"""What the private framework APIs save: per-call time with them and with BCE_COMPAT_PUBLIC_ONLY=1.

    python bench/private_apis.py            # both settings, each in fresh interpreters, twice

Each row: framework, direction, N, then the median µs per call with private names and without
(float32 [N/64, 64], pos_weight [64], mean). docs/architecture.md ("Private APIs") has the
figures and the rule (a name kept for speed alone must save 5 µs a call).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

MEASURE = r"""
import statistics, time
import torch, paddle, tensorflow as tf  # torch, then paddle, then tensorflow: the safe order
import numpy as np
import bce_compat
from bce_compat.dialects import paddle as P

F = bce_compat.binary_cross_entropy_with_logits

def per_call(fn, reps=200, samples=15):
    for _ in range(50):
        fn()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - start) / reps * 1e6)
    return statistics.median(times)

rng = np.random.default_rng(0)
for n in (128, 4096):
    xs = (rng.normal(size=(n // 64, 64)) * 3).astype(np.float32)
    ys = (rng.random((n // 64, 64)) < 0.5).astype(np.float32)
    pw = np.full(64, 2.0, np.float32)
    x, y, p = torch.tensor(xs), torch.tensor(ys), torch.tensor(pw)
    xg = x.clone().requires_grad_()
    px, py, pp = paddle.to_tensor(xs), paddle.to_tensor(ys), paddle.to_tensor(pw)
    pxg = paddle.to_tensor(xs, stop_gradient=False)
    tx, ty, tp, tv = tf.constant(xs), tf.constant(ys), tf.constant(pw), tf.Variable(xs)

    def tf_backward():
        with tf.GradientTape() as tape:
            loss = F(tv, ty, pos_weight=tp)
        tape.gradient(loss, tv)

    rows = {
        "torch fwd": lambda: F(x, y, pos_weight=p),
        "torch fwd+bwd": lambda: F(xg, y, pos_weight=p).backward(),
        "paddle fwd": lambda: P.binary_cross_entropy_with_logits(px, py, pos_weight=pp),
        "paddle fwd+bwd": lambda: P.binary_cross_entropy_with_logits(pxg, py, pos_weight=pp).backward(),
        "tf fwd": lambda: F(tx, ty, pos_weight=tp),
        "tf fwd+bwd": tf_backward,
    }
    for name, call in rows.items():
        print(f"{name}\t{n}\t{per_call(call):.1f}", flush=True)
"""


def measure(public_only: bool) -> dict[tuple[str, str], float]:
    """One fresh interpreter (outside the source tree): {(row, N): µs per call}."""
    env = {k: v for k, v in os.environ.items() if k != "BCE_COMPAT_PUBLIC_ONLY"}
    if public_only:
        env["BCE_COMPAT_PUBLIC_ONLY"] = "1"
    done = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, env=env, check=True,
                          cwd=tempfile.gettempdir())
    result = {}
    for line in done.stdout.splitlines():
        name, n, micros = line.split("\t")
        result[(name, n)] = float(micros)
    return result


def main() -> None:
    runs = [(measure(False), measure(True)) for _ in range(2)]
    print("| call | N | private names µs | public only µs |\n|---|---|---|---|")
    for key in runs[0][0]:
        private = " / ".join(f"{run[0][key]:.1f}" for run in runs)
        public = " / ".join(f"{run[1][key]:.1f}" for run in runs)
        print(f"| {key[0]} | {key[1]} | {private} | {public} |")


if __name__ == "__main__":
    main()
