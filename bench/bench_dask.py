"""Dask scaling: one fixed-size BCE-with-logits loss over several chunk counts and worker counts.

Baseline, measured in the same run: the NumPy portable path on the same data in memory.
Rows: Dask's threaded scheduler, then a ``dask.distributed`` LocalCluster with 1..N workers
(one thread each, in-process; the inputs are persisted on the workers first, so the
loss alone is timed). A second table shows the memory floor of the out-of-core case:
inputs generated chunk by chunk, peak traced memory against the size of the full inputs.

    python bench/bench_dask.py                 # 2**22 elements, chunk counts 1 4 16 64 256
    python bench/bench_dask.py --size 4000000 --chunks 1 8 64 --workers 1 2 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
import warnings

import numpy as np


def best_of(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2**22, help="number of logits")
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 4, 16, 64, 256], help="chunk counts")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="LocalCluster worker counts")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import dask
    import dask.array as da
    import distributed

    import bce_compat

    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, args.size)
    y = (rng.random(args.size) < 0.5).astype(np.float64)
    p = 2.0

    def loss(a, b):
        return bce_compat.binary_cross_entropy_with_logits(a, b, pos_weight=p)

    expected = float(loss(x, y))
    numpy_s = best_of(lambda: loss(x, y), args.repeat)
    print(f"# bce_compat {bce_compat.__version__}, dask {dask.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, n = {args.size:,} float64, reduction='mean', median of {args.repeat}")
    print(f"numpy portable path: {numpy_s * 1e3:8.1f} ms  (ratio baseline)")
    print(f"{'engine':<24}{'chunks':>8}{'chunk size':>12}{'ms':>10}{'x numpy':>9}")

    def row(engine, n_chunks, compute, client=None):
        dx = da.from_array(x, chunks=-(-args.size // n_chunks))
        dy = da.from_array(y, chunks=dx.chunks)
        if client is not None:  # put the data on the workers once, so only the loss is timed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "sending large graph": expected, once
                dx, dy = client.persist([dx, dy])
            distributed.wait([dx, dy])
        result = loss(dx, dy)  # lazy; the graph is built once, computed each repeat
        value = float(compute(result))
        assert abs(value - expected) <= 1e-12 * abs(expected), (value, expected)
        seconds = best_of(lambda: compute(result), args.repeat)
        print(f"{engine:<24}{dx.npartitions:>8}{dx.chunksize[0]:>12,}{seconds * 1e3:>10.1f}{seconds / numpy_s:>9.2f}")

    for n_chunks in args.chunks:
        row("dask threaded", n_chunks, lambda r: r.compute(scheduler="threads"))
    for n_workers in args.workers:
        with distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster, distributed.Client(cluster) as client:
            for n_chunks in args.chunks:
                row(f"LocalCluster {n_workers} worker(s)", n_chunks, lambda r: client.compute(r, sync=True), client)

    # Out of core: inputs generated per chunk; peak traced memory vs the full inputs' size.
    print(f"\n# memory floor, inputs generated per chunk (full x and y would be {2 * 8 * args.size / 2**20:.0f} MiB)")
    print(f"{'chunks':>8}{'peak MiB':>10}{'ms':>10}")
    for n_chunks in args.chunks:
        chunk = -(-args.size // n_chunks)
        gx = da.random.default_rng(1).normal(0, 3, args.size, chunks=chunk)
        gy = (da.random.default_rng(2).random(args.size, chunks=chunk) < 0.5).astype(np.float64)
        result = loss(gx, gy)
        tracemalloc.start()
        start = time.perf_counter()
        result.compute(scheduler="threads")
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{n_chunks:>8}{peak / 2**20:>10.1f}{seconds * 1e3:>10.1f}")


if __name__ == "__main__":
    main()
