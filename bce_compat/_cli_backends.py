"""``bce-compat backends``: which backends are installed, their versions, and their active fast paths."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("backends", help="list installed backends, versions and fast paths")
    parser.set_defaults(run=run)


def installed_backends() -> list[dict]:
    """One row per registered backend (plugins included): name, installed, version, fast paths.

    Imports the installed libraries through the registry, in its safe order.
    """
    from bce_compat import _registry

    _registry.import_installed()  # torch -> paddle -> tensorflow, before any adapter touches them
    rows = []
    for name in _registry.names():
        row = {"name": name, "installed": _registry.is_installed(name), "version": "", "fast_paths": [], "install": ""}
        try:
            adapter = _registry.adapter(name)
            row["install"] = adapter.INSTALL
            if row["installed"]:
                backend = _registry.load_backend(name)
                if backend is None:
                    raise RuntimeError("its adapter failed to load")
                row["version"] = adapter.version()
                row["fast_paths"] = [engine.name for engine in backend.engines]
        except Exception as exc:  # installed but broken: say so instead of failing the listing
            row["installed"], row["version"] = False, f"import failed: {exc.__class__.__name__}: {exc}"
        rows.append(row)
    return rows


def run(args) -> int:
    rows = installed_backends()
    width = max(len(r["name"]) for r in rows)
    vwidth = max([14] + [len(r["version"]) for r in rows if r["installed"]])
    for row in rows:
        if row["installed"]:
            fast = "; ".join(row["fast_paths"]) or "portable array-API path"
            print(f"{row['name']:<{width}}  {row['version']:<{vwidth}}  {fast}")
        else:
            detail = row["version"] or f"not installed ({row['install']})"
            print(f"{row['name']:<{width}}  {'-':<{vwidth}}  {detail}")
    print(compiled_pass_line())
    return 0


def compiled_pass_line() -> str:
    """Whether the CPU fast paths (``*-cpu-pass``) can run: the compiled pass was built or not."""
    from bce_compat.backends import cpu_pass

    if cpu_pass.AVAILABLE:
        return "compiled CPU pass: built (the *-cpu-pass fast paths run)"
    return ("compiled CPU pass: not built (no wheel for this platform and no C compiler at install): "
            "the *-cpu-pass fast paths step aside and the portable path computes the same numbers, slower")
