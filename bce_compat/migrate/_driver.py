"""Files, directories and stdin: print a unified diff (dry run) or write the rewrite; decide the exit status.

Exit status: 0 everything converted (or nothing to do), 1 some call left unchanged and reported,
2 a path that does not exist or a file that does not parse (left alone).

>>> import io
>>> migrate_paths(["-"], "paddle", write=True, stdin=io.StringIO("import torch\\nl = torch.nn.BCELoss()\\n"))
import paddle
<BLANKLINE>
l = paddle.nn.BCELoss()
0
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path

from bce_compat.migrate._source import migrate_source

EXIT_OK, EXIT_LEFT, EXIT_ERROR = 0, 1, 2
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "build", "dist"}


def iter_python_files(path: Path):
    """``path`` itself if it is a file, else the ``*.py`` files under it (hidden folders, venvs and caches skipped)."""
    if not path.is_dir():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                         and not (Path(root, d) / "pyvenv.cfg").exists())
        yield from (Path(root, f) for f in sorted(files) if f.endswith(".py"))


def migrate_paths(paths, to: str, write: bool = False, out=None, err=None, stdin=None) -> int:
    """Rewrite every path (``-`` is stdin); report findings on ``err`` as ``path:line:col: ...``."""
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    status = EXIT_OK
    for raw in paths or ["-"]:
        if raw == "-":
            status = max(status, _migrate_stdin(stdin.read(), to, write, out, err))
            continue
        if not os.path.exists(raw):
            print(f"{raw}: no such file or directory", file=err)
            status = max(status, EXIT_ERROR)
            continue
        for path in iter_python_files(Path(raw)):
            status = max(status, _migrate_file(path, to, write, out, err))
    return status


def _migrate_file(path: Path, to: str, write: bool, out, err) -> int:
    original = path.read_bytes()
    outcome = migrate_source(original, to)
    status = _report(str(path), outcome, err)
    if outcome.error is None and outcome.code != original:
        if write:
            _write_atomically(path, outcome.code)
            print(f"{path}: rewrote {outcome.converted} call(s)", file=err)
        else:
            _print_diff(str(path), _text(original), _text(outcome.code), out)
    return status


def _migrate_stdin(original: str, to: str, write: bool, out, err) -> int:
    """With ``--write`` the rewritten source goes to stdout (a filter); without, the diff does."""
    outcome = migrate_source(original, to)
    status = _report("<stdin>", outcome, err)
    if write:
        out.write(outcome.code)
    elif outcome.code != original:
        _print_diff("<stdin>", original, outcome.code, out)
    return status


def _report(name: str, outcome, err) -> int:
    if outcome.error is not None:
        print(f"{name}:{outcome.error}", file=err)
        return EXIT_ERROR
    for finding in outcome.findings:
        label = "left unchanged" if finding.severity == "left" else "note"
        print(f"{name}:{finding.line}:{finding.column}: {label}: {finding.message}", file=err)
    return EXIT_LEFT if outcome.left else EXIT_OK


def _print_diff(name: str, before: str, after: str, out) -> None:
    out.writelines(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"{name}\t(original)", f"{name}\t(migrated)"
    ))


def _text(source: bytes) -> str:
    return source.decode("utf-8", errors="replace")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the file, keep its permissions, then replace it in one step."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
