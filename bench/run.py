"""The CPU sweep of every dtype and entry point against each framework's op (issue 26), and GPU rows.

Families: framework (torch, NumPy arrays against torch's op, torch.compile, Paddle, TF) ×
entry point (logits, probs, label_smoothing, ignore_index, focal, transposed) × dtype × direction
(fwd, fwd+bwd), at N = 2**7 ... 2**24; torch.compile from 2**12; a memory-floor line per
dtype and size. Writes sweep.md (a table per family), sweep.json (every sample) and one plot
per dtype × direction under bench/results/ (not in git).

    python bench/run.py                  # everything (about 40 minutes on 2 cores)
    python bench/run.py --quick          # smoke run: 2**7, 2**12, 2**16, 3 samples a row
    python bench/run.py --frameworks torch,torch.compile --dtypes float32 --entries logits --sizes 12-24
    python bench/run.py --sizes 7,10,14 --directions fwd --no-compile
    python bench/run.py --update-readme  # also the tables into bench/README.md (a quiet machine only)
    python bench/run.py --from-json bench/results/sweep.json --update-readme   # an earlier run's, nothing measured

GPU rows (bench_gpu.py) are added where torch sees CUDA.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _cases  # noqa: E402
import _report  # noqa: E402
import sweep  # noqa: E402

QUICK_SIZES = (7, 12, 16)
SIZES = (6, 30)  # the exponents --sizes accepts (at least one row of 64)
# what each framework needs imported; imported in this order (tensorflow before paddle segfaults)
NEEDS = {"torch": ("torch",), "numpy": ("torch",), "torch.compile": ("torch", "triton"), "paddle": ("paddle",),
         "tensorflow": ("tensorflow",)}  # fmt: skip
IMPORT_ORDER = ("torch", "paddle", "tensorflow")


def parse_sizes(text: str) -> tuple[int, ...]:
    """Exponents of two from ``7-24``, ``7,10,14`` or ``7-9,12``.

    >>> parse_sizes("7-9,12"), parse_sizes("24,7")
    ((7, 8, 9, 12), (7, 24))
    """
    exponents: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected exponents of two such as 7-24, 7,10,14 or 7-9,12; got {text!r}") from None
        if first > last or first < SIZES[0] or last > SIZES[1]:
            raise argparse.ArgumentTypeError(
                f"expected ascending exponents within {SIZES[0]}-{SIZES[1]} (2**{SIZES[0]} is one row of 64); got {part.strip()!r}")
        exponents.update(range(first, last + 1))
    return tuple(sorted(exponents))


def choices(allowed: tuple[str, ...], aliases: dict[str, str] | None = None) -> Callable[[str], tuple[str, ...]]:
    """A parser of a comma-separated subset of ``allowed`` ("all": every one), in ``allowed``'s order.

    >>> choices(("a", "b", "c"))("c,a"), choices(("a", "b"))("all")
    (('a', 'c'), ('a', 'b'))
    """
    aliases = aliases or {}

    def parse(text: str) -> tuple[str, ...]:
        if text.strip() == "all":
            return allowed
        names = {aliases.get(name.strip(), name.strip()) for name in text.split(",") if name.strip()}
        unknown = sorted(names - set(allowed))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(allowed)} (or all); got {text!r}")
        return tuple(name for name in allowed if name in names)

    return parse


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.splitlines()[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="\n".join(__doc__.splitlines()[1:]))  # fmt: skip
    def subset(names, also=""):
        return f"comma-separated, from {', '.join(names)}{also} (default: all)"

    cli.add_argument("--dtypes", type=choices(_cases.DTYPES), default=_cases.DTYPES, help=subset(_cases.DTYPES))
    cli.add_argument("--entries", type=choices(tuple(_cases.ENTRIES)), default=tuple(_cases.ENTRIES), help=subset(_cases.ENTRIES))
    cli.add_argument("--frameworks", type=choices(_cases.FRAMEWORKS, {"tf": "tensorflow", "compile": "torch.compile"}),
                     default=_cases.FRAMEWORKS, help=subset(_cases.FRAMEWORKS, "; tf, compile"))  # fmt: skip
    cli.add_argument("--directions", type=choices(_cases.DIRECTIONS, {"bwd": "fwd+bwd"}), default=_cases.DIRECTIONS,
                     help=subset(_cases.DIRECTIONS, "; bwd"))  # fmt: skip
    cli.add_argument("--sizes", type=parse_sizes, default=None, help="exponents of two: 7-24 (default), 7,10,14, 7-9,12")
    cli.add_argument("--quick", action="store_true", help=f"3 samples a row, sizes {','.join(map(str, QUICK_SIZES))} unless --sizes")
    cli.add_argument("--no-compile", action="store_true", help="leave out the torch.compile contender")
    cli.add_argument("--no-floor", action="store_true", help="leave out the memory-floor line")
    cli.add_argument("--no-plots", action="store_true", help="no figures (they need matplotlib)")
    cli.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder (default bench/results)")
    cli.add_argument("--update-readme", action="store_true", help="write the tables and figures into bench/README.md")
    cli.add_argument("--from-json", metavar="SWEEP_JSON", help="measure nothing: report an earlier run's sweep.json again")
    return cli


def import_frameworks(frameworks: tuple[str, ...], floor: bool) -> tuple[tuple[str, ...], dict[str, str]]:
    """Import what the selection needs, torch then paddle then tensorflow; the frameworks that can
    run, and why the others cannot."""
    wanted = {module for f in frameworks for module in NEEDS[f]} | ({"torch"} if floor else set())
    missing: dict[str, str] = {}
    for module in IMPORT_ORDER:
        if module in wanted:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                missing[module] = f"not installed ({exc})"
        if module == "torch" and "tensorflow" in wanted and importlib.util.find_spec("triton") is not None:
            # torch.compile loads Triton, which aborts the process when it comes after TensorFlow
            # ("LLVM ERROR: ... registered more than once"); loaded first, both work
            if "tensorflow" not in sys.modules:
                importlib.import_module("triton")
            elif "triton" not in sys.modules:
                missing["triton"] = "TensorFlow was imported before Triton, so torch.compile would abort the process"
    usable = tuple(f for f in frameworks if not any(m in missing for m in NEEDS[f]))
    unavailable = {f: "; ".join(f"{m}: {missing[m]}" for m in NEEDS[f] if m in missing) for f in frameworks if f not in usable}
    return usable, unavailable


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.update_readme and args.quick:
        raise SystemExit("--update-readme takes a full run's numbers: leave out --quick")
    if args.from_json:
        return report_again(args)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    frameworks = tuple(f for f in args.frameworks if not (args.no_compile and f == "torch.compile"))
    extras: dict[str, object] = {}

    import bench_gpu  # GPU rows first: Triton cannot be imported after TensorFlow

    if bench_gpu.available():
        from _timing import print_table

        extras["gpu_rows"] = bench_gpu.rows(2**24 if args.quick else 2**27, 5 if args.quick else 20)
        print_table(extras["gpu_rows"])
    frameworks, unavailable = import_frameworks(frameworks, floor=not args.no_floor)
    floor = not args.no_floor and "torch" in sys.modules
    selection = sweep.Selection(frameworks, args.entries, args.dtypes, args.directions,
                                args.sizes or (QUICK_SIZES if args.quick else tuple(range(7, 25))), floor)  # fmt: skip
    sampling = sweep.QUICK if args.quick else sweep.FULL
    command = shlex.join(["python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    m = _report.machine()
    print(f"# {_report.utc_now()}  {command}\n# {m['cpu']}, {m['isa']}, {m['cpus']} cpus; {m['software']}", flush=True)
    for name, why in unavailable.items():
        print(f"# {name}: {why}")

    memory_exponent = 16 if args.quick else 22
    memory = {d: sweep.peak_extra_memory(2**memory_exponent, d) for d in selection.dtypes if d != "bfloat16"}
    import bench_cpu

    import_ms = bench_cpu.import_row(runs=2 if args.quick else 7)["ours_ms"]
    records = sweep.run(selection, sampling, progress=lambda line: print(line, flush=True))

    meta = {
        "date": _report.utc_now(), "command": command, "commit": _report.commit(HERE), "machine": _report.machine(),
        "load_start": load_start, "load_end": os.getloadavg()[0], "duration_s": time.perf_counter() - started,
        "sampling": vars(sampling), "selection": {**vars(selection), "frameworks": frameworks},
        "unavailable": unavailable, "peak_extra_memory": memory, "peak_extra_memory_exponent": memory_exponent,
        "import_ms": import_ms,
    }  # fmt: skip
    return report(args, meta, records, extras)


def report(args: argparse.Namespace, meta: dict, records: list[dict], extras: dict) -> int:
    """Write the outputs (and the README with --update-readme); print the summary."""
    written = _report.write(args.out, meta, records, extras, plots=not args.no_plots)
    if written["note"]:
        print(f"# {written['note']}")
    if args.update_readme:
        _report.update_readme(os.path.join(HERE, "README.md"), meta, records, args.out, written["figures"])
        print("# bench/README.md updated")
    print(_report.summary_table(_report.by_family(records)))
    print(time_spent(records))
    print(f"# {len(records)} rows, measured in {meta['duration_s'] / 60:.1f} min; results in {args.out}")
    return 0


def report_again(args: argparse.Namespace) -> int:
    """--from-json: the tables, plots (and README) of an earlier run's sweep.json, nothing measured."""
    with open(args.from_json) as fh:
        saved = json.load(fh)
    meta, records = saved.pop("meta"), saved.pop("records")
    if args.update_readme and "--quick" in shlex.split(meta["command"]):
        raise SystemExit(f"--update-readme takes a full run's numbers: {args.from_json} is a --quick run's")
    return report(args, meta, records, saved)


def time_spent(records: list[dict]) -> str:
    """Seconds spent per framework and dtype, for sizing a run.

    >>> print(time_spent([{"framework": "torch", "dtype": "float32", "seconds": 2.0}]))
    # seconds per framework: torch 2 (float32 2)
    """
    spent: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        spent[r["framework"]][r["dtype"]] += r.get("seconds", 0.0)
    parts = [f"{fw} {sum(d.values()):.0f} ({', '.join(f'{k} {v:.0f}' for k, v in d.items())})" for fw, d in spent.items()]
    return "# seconds per framework: " + "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
