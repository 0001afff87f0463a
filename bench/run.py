"""Every benchmark of issue 6 on whatever is installed, as one table: case, ours, native, ratio, floor ratio.

ratio = ours / native (below 1: we are faster); floor ratio = ours / memory floor (bytes that
must move / copy bandwidth measured in the same run). GPU rows only where torch sees CUDA.

    python bench/run.py                  # CPU: 2**24 and 128 elements; GPU: 2**27 (+ plot)
    python bench/run.py --quick          # 2**20 and 128, fewer repeats (a smoke run)
    python bench/run.py --json out.json  # the rows as JSON too
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

for _name in ("torch", "paddle"):  # the safe import order (never tensorflow: it breaks paddle and triton)
    try:
        __import__(_name)
    except ImportError:
        pass


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
    parser.add_argument("--plot", default="bench/gpu_time_vs_size.png", help="GPU time-vs-size plot (GPU only)")
    args = parser.parse_args(argv)

    import bench_cpu
    import bench_gpu

    print(f"# {datetime.date.today()}  {describe_machine()}")
    print(f"# {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    cpu_sizes = (2**20, 128) if args.quick else (2**24, 128)
    rows = bench_cpu.all_rows(cpu_sizes, 2 if args.quick else args.repeat)
    if bench_gpu.available():
        rows += bench_gpu.rows(2**24 if args.quick else 2**27, 5 if args.quick else 20)
    else:
        print("# no CUDA device: GPU rows skipped")
    print_table(rows)
    if bench_gpu.available() and not args.quick:
        bench_gpu.plot(bench_gpu.sweep([16, 18, 20, 22, 24, 26, 27]), args.plot)
        print(f"# plot: {args.plot}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": describe_machine(), "date": str(datetime.date.today()), "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
