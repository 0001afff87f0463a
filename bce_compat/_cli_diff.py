"""``bce-compat diff torch paddle``: where two frameworks' own BCE ops give different numbers or behaviour.

Built from the conformance suite's native-op results; one line of advice per difference. A side
is a native contender: torch, paddle, tensorflow (``tf.nn``), keras (``keras.losses``, run on
TensorFlow), jax (optax). ``--html FILE`` also writes the differences and the two ops' accuracy
atlas (with bce_compat's beside them) as one self-contained page.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    from bce_compat.conformance.natives import NATIVE_FRAMEWORKS as NATIVE  # the frameworks with a native op

    parser = subparsers.add_parser("diff", help="divergence guide: where two frameworks' own ops differ")
    parser.add_argument("a", choices=NATIVE, help="first framework")
    parser.add_argument("b", choices=NATIVE, help="second framework")
    parser.add_argument("--cases", help="comma-separated case filters (as for conformance)")
    parser.add_argument("--json", metavar="FILE", help="write the differences as JSON")
    parser.add_argument("--html", metavar="FILE", help="write the differences and both ops' accuracy atlas as HTML")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from bce_compat.conformance import casedata, natives, report, runner

    if args.a == args.b:
        print("diff needs two different frameworks", file=sys.stderr)
        return 2
    cases = casedata.load_cases([p.strip() for p in args.cases.split(",")] if args.cases else None)
    benches = list(dict.fromkeys(natives.bench_of(side) for side in (args.a, args.b)))  # keras runs on tensorflow
    result = runner.run(cases, benches, native=True, shim=False)
    missing = [f for f in (args.a, args.b) if natives.bench_of(f) not in result.backends]
    if missing:
        print(f"not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = report.diff_rows(result, args.a, args.b)
    print(report.diff_text(rows, args.a, args.b))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    if args.html:
        from bce_compat.conformance import atlas, page

        accuracy = atlas.build(atlas.contenders_for_diff(args.a, args.b))
        command = "bce-compat " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["diff"] else None
        page.write(args.html, page.diff_page(rows, args.a, args.b, accuracy, command=command))
        print(f"\nwrote {args.html}")
    return 0
