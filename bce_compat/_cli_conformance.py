"""``bce-compat conformance``: run every case on every installed backend, print the table and summary.

Exit status 1 when our shim fails a case or backends disagree; native-op divergences are reported
(``--divergences``, and in ``--json``) but never fatal.
"""

from __future__ import annotations

import shutil
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("conformance", help="run the conformance suite (shim and native ops, every backend)")
    parser.add_argument("--backends", help="comma-separated backends (default: every installed one)")
    parser.add_argument("--cases",
                        help="comma-separated case filters: id/file globs or substrings, or 'ours'/'documented'")
    parser.add_argument("--native", action=argparse_bool(), default=True,
                        help="also run each framework's own op (default)")
    parser.add_argument("--divergences", action="store_true", help="print where native ops depart from docs/exact math")
    parser.add_argument("--json", metavar="FILE", help="write every result, agreement and divergence as JSON")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--quiet", action="store_true", help="no progress indicator")
    parser.set_defaults(run=run)


def argparse_bool():
    import argparse

    return argparse.BooleanOptionalAction


def progress_printer(stream=None):
    """A progress indicator on ``stream`` (stderr): an updating line on a terminal, a line per 10 cases otherwise."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    room = max(20, shutil.get_terminal_size().columns - 12) if tty else 0

    def progress(i, n, case_id):
        label = case_id or "done"
        if tty:
            end = "\n" if i == n else ""
            stream.write(f"\r[{i:3d}/{n}] {label[:room]:<{room}}{end}")
        elif i % 10 == 0 or i == n:
            stream.write(f"[{i}/{n}] {label}\n")
        stream.flush()

    return progress


def table_width(stream=None) -> int:
    """The terminal's width for the table; unbounded (one line per case) when the output is not a terminal."""
    stream = stream or sys.stdout
    return shutil.get_terminal_size().columns if stream.isatty() else 10_000


def unknown_backends(requested: list[str]) -> tuple[list[str], list[str]]:
    """The requested names no registered backend has, and the known names (installed or not)."""
    from bce_compat.conformance import frameworks

    known = list(frameworks.bench_names())
    return [b for b in requested if b not in known], known


def run(args, shim_module_override=None) -> int:
    from bce_compat.conformance import casedata, report, runner

    backends = [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else None
    if backends is not None:
        unknown, known = unknown_backends(backends)
        if unknown or not backends:
            print(f"bce-compat conformance: unknown backend {', '.join(map(repr, unknown)) or repr(args.backends)}; "
                  f"known backends: {', '.join(known)}", file=sys.stderr)
            return 2
    patterns = [p.strip() for p in args.cases.split(",")] if args.cases else None
    cases = casedata.load_cases(patterns)
    if not cases:
        print(f"no case matches {args.cases!r}", file=sys.stderr)
        return 2
    progress = None if args.quiet else progress_printer()
    result = runner.run(cases, backends, native=args.native, shim_module_override=shim_module_override,
                        progress=progress)
    if backends:
        missing = [b for b in backends if b not in result.backends]
        if missing:
            print(f"not installed (skipped): {', '.join(missing)}", file=sys.stderr)
    print(report.table(result, width=table_width()))
    print("\nlegend: ok = matches the document / exact math; FAIL = our shim is wrong; div = the framework's own op")
    print("departs (reported, not fatal); skip = not applicable (reasons below); !! = backends disagree")
    failures = report.failures_text(result)
    if failures:
        print("\n" + failures)
    skips = report.skips_text(result)
    if skips:
        print("\nskipped:\n" + skips)
    if args.divergences:
        print("\n" + report.divergences_text(result))
    print("\n" + report.agreement_text(result))
    if args.json:
        report.write_json(result, args.json)
    if args.junit:
        report.write_junit(result, args.junit)
    print(f"{report.summary_line(result.counts())} in {result.seconds:.1f}s")
    return result.exit_code
