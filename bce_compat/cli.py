"""The ``bce-compat`` command (also ``python -m bce_compat``): each subcommand lives in its own module
with a ``register(subparsers)``.

>>> main(["--version"])  # doctest: +SKIP
bce-compat 0.1.0
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bce_compat._cli_quiet import framework_warnings_ignored, silence_framework_logs
from bce_compat._version import __version__

# Modules whose register(subparsers) adds one subcommand each (imported only to build the parser;
# each defers importing frameworks until its command runs).
SUBCOMMAND_MODULES = [
    "bce_compat._cli_backends",
    "bce_compat._cli_conformance",
    "bce_compat._cli_diff",
    "bce_compat._cli_migrate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bce-compat",
        description="One binary-cross-entropy loss with the same numbers on NumPy, PyTorch, Paddle and TF.",
    )
    parser.add_argument("--version", action="version", version=f"bce-compat {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv=None) -> int:
    """Run one subcommand; the exit status. Frameworks' log lines and warnings are kept out of the output."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    silence_framework_logs()  # before any subcommand imports a framework
    with framework_warnings_ignored():
        return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
