"""``bce-compat conformance``: run every case on every installed backend, print the table and summary.

Exit status 1 when our shim fails a case or backends disagree; native-op divergences are reported
(``--divergences``, and in ``--json``) but never fatal. With ``--impl MODULE:CALLABLE --dialect D``
the run is of that callable instead (the cases that apply to it): 1 when a case fails or nothing
passed, naming the failing cases; a TypeError where a result was expected is "unsupported".
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from typing import IO, Any

DIALECTS = ("torch", "paddle", "keras", "tf", "optax")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("conformance", help="run the conformance suite (shim and native ops, every backend)")
    parser.add_argument("--backends", help="comma-separated backends (default: every installed one)")
    parser.add_argument("--cases",
                        help="comma-separated case filters: id/file globs or substrings, or 'ours'/'documented'")
    parser.add_argument("--native", action=argparse.BooleanOptionalAction, default=True,
                        help="also run each framework's own op (default)")
    parser.add_argument("--divergences", action="store_true", help="print where native ops depart from docs/exact math")
    parser.add_argument("--impl", metavar="MODULE:CALLABLE",
                        help="run the cases on this callable instead of bce_compat (e.g. mylib.losses:bce)")
    parser.add_argument("--dialect", choices=DIALECTS,
                        help="the signature --impl has: its argument names and order (required with --impl)")
    parser.add_argument("--function", help="which of the dialect's functions --impl is (default: its with-logits loss, "
                                           "e.g. binary_cross_entropy for probabilities)")
    parser.add_argument("--json", metavar="FILE", help="write every result, agreement and divergence as JSON")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--html", metavar="FILE",
                        help="write one self-contained HTML page: summary, case table, accuracy atlas")
    parser.add_argument("--quiet", action="store_true", help="no progress indicator")
    parser.set_defaults(run=run)


def progress_printer(stream: IO[str] | None = None) -> Callable[[int, int, str], None]:
    """A progress indicator on ``stream`` (stderr): an updating line on a terminal, a line per 10 cases otherwise."""
    out = stream or sys.stderr
    tty = out.isatty()
    room = max(20, shutil.get_terminal_size().columns - 12) if tty else 0

    def progress(i: int, n: int, case_id: str) -> None:
        label = case_id or "done"
        if tty:
            end = "\n" if i == n else ""
            out.write(f"\r[{i:3d}/{n}] {label[:room]:<{room}}{end}")
        elif i % 10 == 0 or i == n:
            out.write(f"[{i}/{n}] {label}\n")
        out.flush()

    return progress


def table_width(stream: IO[str] | None = None) -> int:
    """The terminal's width for the table; unbounded (one line per case) when the output is not a terminal."""
    out = stream or sys.stdout
    return shutil.get_terminal_size().columns if out.isatty() else 10_000


def unknown_backends(requested: list[str]) -> tuple[list[str], list[str]]:
    """The requested names no registered backend has, and the known names (installed or not)."""
    from bce_compat.conformance import frameworks

    known = list(frameworks.bench_names())
    return [b for b in requested if b not in known], known


def _error(message: str) -> int:
    print(f"bce-compat conformance: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace, shim_module_override: dict[str, Any] | None = None) -> int:
    from bce_compat.conformance import casedata, implementation, report, runner

    backends = [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else None
    if backends is not None:
        unknown, known = unknown_backends(backends)
        if unknown or not backends:
            return _error(f"unknown backend {', '.join(map(repr, unknown)) or repr(args.backends)}; "
                          f"known backends: {', '.join(known)}")
    impl = None
    if args.impl or args.dialect or args.function:
        if not (args.impl and args.dialect):
            return _error(f"--impl MODULE:CALLABLE and --dialect ({', '.join(DIALECTS)}) go together")
        try:
            impl = implementation.load(args.impl, args.dialect, args.function)
        except implementation.ImplementationError as exc:
            return _error(str(exc))
    patterns = [p.strip() for p in args.cases.split(",")] if args.cases else None
    cases = casedata.load_cases(patterns)
    if not cases:
        return _error(f"no case matches {args.cases!r}")
    progress = None if args.quiet else progress_printer()
    result = runner.run(cases, backends, native=args.native, shim_module_override=shim_module_override,
                        progress=progress, impl=impl)
    if impl is not None and not result.cases:
        print(f"no case applies to {impl.describe()}:\n{report.not_applicable_text(result)}", file=sys.stderr)
        return 1
    if backends:
        missing = [b for b in backends if b not in result.backends]
        if missing:
            print(f"not installed (skipped): {', '.join(missing)}", file=sys.stderr)
    _print_report(result, args, report)
    if args.json:
        report.write_json(result, args.json)
    if args.junit:
        report.write_junit(result, args.junit)
    if args.html:
        _write_html(result, args, impl)
    return result.exit_code


def _print_report(result: Any, args: argparse.Namespace, report: Any) -> None:
    print(report.table(result, width=table_width()))
    if result.impl:
        print("\nlegend: ok = matches the document / exact math; FAIL = the implementation is wrong; uns = unsupported")
        print("(it raised TypeError: an option it does not have); skip = not applicable (reasons below)")
    else:
        print("\nlegend: ok = matches the document / exact math; FAIL = our shim is wrong; div = the framework's")
        print("own op departs (reported, not fatal); skip = not applicable (reasons below); !! = backends disagree")
    failures = report.failures_text(result)
    if failures:
        print("\n" + failures)
    unsupported = report.skips_text(result, "unsupported")
    if unsupported:
        print("\nunsupported (the implementation raised TypeError or has no half-precision kernel):\n" + unsupported)
    for backend in report.refusing_backends(result):
        print(f"\nnote: the implementation refused every {backend} array (TypeError): test it with "
              f"--backends set to the libraries it takes")
    skips = report.skips_text(result)
    if skips:
        print("\nskipped:\n" + skips)
    if result.not_applicable:
        print(f"\n{len(result.not_applicable)} cases do not apply to {result.impl}:\n"
              + report.not_applicable_text(result))
    if args.divergences:
        print("\n" + report.divergences_text(result))
    if not result.impl:
        print("\n" + report.agreement_text(result))
    print(f"{report.summary_line(result.counts(), result.impl)} in {result.seconds:.1f}s")
    failing = result.failing_cases()
    if failing:
        print(f"failing cases ({len(failing)}): {', '.join(failing)}")
    elif result.impl and not result.counts()["passed"]:
        print("nothing passed: no case ran on the implementation")


def _write_html(result: Any, args: argparse.Namespace, impl: Any) -> None:
    from bce_compat.conformance import atlas, page

    contenders = atlas.contenders_for_run(result, impl)
    accuracy = atlas.build(contenders)
    command = "bce-compat conformance " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["conformance"] else None
    page.write(args.html, page.conformance_page(result, accuracy, command=command))
    print(f"wrote {args.html}")
