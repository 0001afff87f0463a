"""Every benchmark on whatever is installed: the CPU size sweep, per-call overhead, GPU rows.

ratio = ours / native (below 1: we are faster); floor ratio = ours / memory floor (bytes that
must move / copy bandwidth measured in the same run). GPU rows only where torch sees CUDA.

    python bench/run.py                  # sweep 2**7 ... 2**24 (+ bench/cpu_sweep.png), 128-element rows, GPU
    python bench/run.py --quick          # 2**7, 2**12, 2**20, fewer repeats (a smoke run)
    python bench/run.py --json out.json  # the rows as JSON too
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _timing import print_table, row  # noqa: E402

for _name in ("torch", "paddle"):  # the safe import order (never tensorflow: it breaks paddle and triton)
    try:
        __import__(_name)
    except ImportError:
        pass


def describe_machine() -> str:
    import numpy

    parts = [platform.processor() or platform.machine(), f"{os.cpu_count()} cpus", f"numpy {numpy.__version__}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name())
    except ImportError:
        pass
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--plot", default=os.path.join(HERE, "cpu_sweep.png"), help="CPU sweep plot")
    parser.add_argument("--gpu-plot", default=os.path.join(HERE, "gpu_time_vs_size.png"), help="GPU time-vs-size plot (GPU only)")
    args = parser.parse_args(argv)

    import bench_cpu
    import bench_gpu
    import sweep

    print(f"# {datetime.date.today()}  {describe_machine()}")
    print(f"# {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    repeat = 2 if args.quick else args.repeat
    rows = []
    if bench_gpu.available():  # first: Triton cannot be imported after TensorFlow
        rows += bench_gpu.rows(2**24 if args.quick else 2**27, 5 if args.quick else 20)
        if not args.quick:
            bench_gpu.plot(bench_gpu.sweep([16, 18, 20, 22, 24, 26, 27]), args.gpu_plot)
            print(f"# GPU plot: {args.gpu_plot}")
    else:
        print("# no CUDA device: GPU rows skipped")
    exponents = [7, 12, 20] if args.quick else list(range(7, 25))
    points = sweep.measure(exponents, repeat)
    rows += sweep.table_rows(points)
    # reported beside the float32 goals (issue 13.2); Paddle has no float16 CPU kernels
    for dtype, libraries in (("float64", tuple(sweep.CASES)), ("float16", ("torch", "tensorflow"))):
        sizes = [7, 12, 20] if args.quick else [7, 12, 16, 20, 24]
        rows += sweep.table_rows(sweep.measure(sizes, repeat, dtype, libraries))
    rows += bench_cpu.all_rows((128,), repeat)
    memory = sweep.peak_extra_memory()
    rows.append(row("numpy peak extra memory, 2^22", 0.0, None,
                    note=f"x {memory['mean']:.3f} of the input for mean, {memory['none']:.3f} for none (beyond the result)"))
    print_table(rows)
    if not args.quick:
        try:
            sweep.plot(points, args.plot)
            print(f"# plot: {args.plot}")
        except ImportError:
            print("# no matplotlib: pip install 'bce_compat[bench]' for the plot")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": describe_machine(), "date": str(datetime.date.today()), "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
