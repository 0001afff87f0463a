"""``bce-compat backends``: which backends are installed, their versions, and their active fast paths."""

from __future__ import annotations

import importlib
import importlib.util


def register(subparsers) -> None:
    parser = subparsers.add_parser("backends", help="list installed backends, versions and fast paths")
    parser.set_defaults(run=run)


def installed_backends() -> list[dict]:
    """One row per known backend: name, installed, version, fast paths (imports installed frameworks in the safe order)."""
    from bce_compat._registry import adapter_paths, load_backend
    from bce_compat.conformance.frameworks import import_installed

    import_installed()  # torch -> paddle -> tensorflow; the listing below must not reorder them
    rows = []
    for name in adapter_paths():
        installed = importlib.util.find_spec(name.split(".")[0]) is not None
        row = {"name": name, "installed": installed, "version": "", "fast_paths": [], "install": ""}
        adapter = importlib.import_module(adapter_paths()[name])
        row["install"] = adapter.INSTALL
        if installed:
            try:
                importlib.import_module(name)
                backend = load_backend(name)
                row["version"] = adapter.version()
                row["fast_paths"] = [engine.name for engine in backend.engines]
            except Exception as exc:  # installed but broken: say so instead of failing the listing
                row["installed"], row["version"] = False, f"import failed: {exc.__class__.__name__}: {exc}"
        rows.append(row)
    return rows


def run(args) -> int:
    rows = installed_backends()
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        if row["installed"]:
            fast = "; ".join(row["fast_paths"]) or "portable array-API path"
            print(f"{row['name']:<{width}}  {row['version']:<14}  {fast}")
        else:
            detail = row["version"] or f"not installed ({row['install']})"
            print(f"{row['name']:<{width}}  {'-':<14}  {detail}")
    return 0
