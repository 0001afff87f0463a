"""Lines a library writes straight to stderr (fd 2) from C/C++, kept out of the output.

TensorFlow 2.21 logs through absl before absl is set up, so on CPUs where oneDNN's custom ops
are on by default (AVX-512 ones) ``import tensorflow`` writes, whatever ``TF_CPP_MIN_LOG_LEVEL``
says::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796600833.465197    7643 port.cc:153] oneDNN custom operations are on. ...

Such writes bypass ``sys.stderr``, so :func:`fd2_filtered` points fd 2 at a temporary file
while a block runs, then writes back what was written there, in order, less the lines it is told
to drop. :func:`log_lines_filtered` drops the log lines below the level that the frameworks'
log-level variables ask for (``TF_CPP_MIN_LOG_LEVEL``, ``GLOG_minloglevel``; the lower of the
two when both are set): INFO lines from level 1, WARNING lines from level 2. Errors (``E``/``F``
lines) and every other line pass through; with neither variable set (level 0) nothing is
redirected. A process killed inside the block (a segfault) loses what the block wrote.

>>> line = b"I0000 00:00:1796600833.4 7643 port.cc:153] oneDNN custom operations are on.\\n"
>>> filtered(line + b"kept\\n", level=3)
b'kept\\n'
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping

LEVEL_VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel")  # 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL
# glog's and absl's prefix: severity letter, MMDD, time, thread id, file:line]
_LOG_LINE = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+(?:\.\d+)? +\d+ [^\s\]]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {b"I": 0, b"W": 1}  # E and F lines are never dropped


def level_from(environ: Mapping[str, str]) -> int:
    """The log level the variables ask for: the lowest of those set (0 when none is set or readable).

    >>> level_from({"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "1"}), level_from({})
    (1, 0)
    """
    levels = []
    for name in LEVEL_VARIABLES:
        try:
            levels.append(int(environ[name]))
        except (KeyError, ValueError):
            continue
    return min(levels, default=0)


def dropped(line: bytes, level: int) -> bool:
    """Whether ``line`` is a framework log line below ``level`` (INFO below 1, WARNING below 2)."""
    if line.rstrip(b"\r\n") == _ABSL_PREAMBLE:
        return level >= 2
    match = _LOG_LINE.match(line)
    return match is not None and _SEVERITY.get(match.group(1), 9) < level


def filtered(data: bytes, level: int) -> bytes:
    """``data`` without its log lines below ``level``; every other byte kept, in order."""
    return b"".join(line for line in data.splitlines(keepends=True) if not dropped(line, level))


@contextlib.contextmanager
def log_lines_filtered(environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """Within the block, the log lines written to fd 2 below the variables' level are dropped."""
    level = level_from(os.environ if environ is None else environ)
    if level == 0:
        yield
        return
    with fd2_filtered(lambda line: dropped(line, level)):
        yield


@contextlib.contextmanager
def fd2_filtered(drop: Callable[[bytes], bool]) -> Iterator[None]:
    """Within the block fd 2 goes to a temporary file; on leaving, its lines but those ``drop`` accepts go to fd 2."""
    import tempfile  # not at import: `import bce_compat` stays light

    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to filter (a process started without stderr)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        _flush_stderr()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().splitlines(keepends=True)
            _write_all(2, b"".join(line for line in lines if not drop(line)))


def _flush_stderr() -> None:
    with contextlib.suppress(Exception):  # sys.stderr may be None or closed
        sys.stderr.flush()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
