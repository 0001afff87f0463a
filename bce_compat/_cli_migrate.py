"""``bce-compat migrate``: rewrite binary-cross-entropy loss calls (a dry-run diff unless ``--write``).

torch <-> Paddle (``--to paddle``, ``--to torch``), or torch, Paddle, Keras, ``tf.nn`` and optax
calls into bce_compat (``--to portable``). Only text is rewritten; no framework is imported.
libcst is imported when the command runs.

    bce-compat migrate --to paddle train.py          # show the diff
    bce-compat migrate --to paddle --write src/      # apply it
    cat train.py | bce-compat migrate --to torch     # piped stdin (or '-'); a terminal gets the usage
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="rewrite BCE loss calls: torch <-> Paddle, or torch/Paddle/Keras/tf.nn/optax into bce_compat",
        description=(
            "Rewrite binary-cross-entropy loss calls. --to paddle and --to torch convert torch's and "
            "Paddle's loss calls into each other's; they convert the loss calls only (and their "
            "imports): the rest of the script (tensors, model, optimizer) stays as it is. --to portable "
            "turns torch, Paddle, Keras (binary_crossentropy, BinaryCrossentropy), tf.nn "
            "(sigmoid_cross_entropy_with_logits, weighted_cross_entropy_with_logits) and optax "
            "(sigmoid_binary_cross_entropy) calls into "
            "bce_compat calls with the same signature, which run on any framework's arrays. Prints a "
            "unified diff unless --write. Calls that cannot be converted safely are left as they were and "
            "reported as path:line:col. Exit status: 0 all converted, 1 some call left, 2 a file that does "
            "not parse or a missing path."
        ),
    )
    parser.add_argument("--to", choices=("paddle", "torch", "portable"), default="paddle",
                        help="target: Paddle's API, torch's API, or bce_compat calls (default: paddle)")
    parser.add_argument("--write", action="store_true",
                        help="apply the changes (for '-', print the rewritten source instead of a diff)")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or directories (*.py, recursively); '-' reads stdin (as does no path "
                             "when stdin is piped)")
    parser.set_defaults(run=run, usage=parser.format_usage)


def run(args, stdin=None) -> int:
    stdin = stdin or sys.stdin
    if not args.paths and stdin.isatty():  # nothing piped in: waiting silently for typing would look hung
        print(args.usage().rstrip(), file=sys.stderr)
        print("bce-compat migrate: give files or directories, or '-' to read the source from stdin", file=sys.stderr)
        return 2
    try:
        import libcst  # noqa: F401
    except ImportError:
        print("bce-compat migrate needs libcst: pip install 'bce_compat[migrate]'", file=sys.stderr)
        return 2
    from bce_compat.migrate._driver import migrate_paths

    return migrate_paths(args.paths, args.to, write=args.write, stdin=stdin)
