"""The compiled modules as setup.py declares them, read without running setup.py.

setup.py keeps ``C_EXTENSIONS``, ``LIMITED_API``, ``ABI3_TAG`` and ``UNIX_FLAGS`` as literals, so
the release checks (.ci/compile_check.py, .ci/check_dists.py, tests/test_packaging.py) all read
that one declaration: renaming or adding a C file there is the only edit they need.

    spec = read()                       # {"C_EXTENSIONS": [{"name": ..., "sources": [...], ...}], ...}
    sources(spec), headers(spec), module_names(spec)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("C_EXTENSIONS", "LIMITED_API", "ABI3_TAG", "UNIX_FLAGS")


def read(setup_py: Path = ROOT / "setup.py") -> dict:
    """The literals ``NAMES`` assigned at the top level of ``setup_py``; a missing one is an error."""
    found = {}
    for node in ast.parse(setup_py.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in NAMES:
                found[node.targets[0].id] = ast.literal_eval(node.value)
    missing = [name for name in NAMES if name not in found]
    if missing:
        raise ValueError(f"{setup_py}: no literal {', '.join(missing)} at the top level")
    return found


def sources(spec: dict) -> list[str]:
    """Every C source of every extension, as paths relative to the project root."""
    return [source for ext in spec["C_EXTENSIONS"] for source in ext["sources"]]


def headers(spec: dict) -> list[str]:
    """Every header the extensions declare (``depends``), relative to the project root."""
    return [header for ext in spec["C_EXTENSIONS"] for header in ext["depends"]]


def module_names(spec: dict) -> list[str]:
    """The extensions' importable names, e.g. ``bce_compat.backends._cpu_pass``."""
    return [ext["name"] for ext in spec["C_EXTENSIONS"]]
