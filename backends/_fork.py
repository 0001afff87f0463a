"""Whether this process is a fork of one that had imported bce_compat.

A forked child (multiprocessing's default start method on Linux) inherits its parent's memory
but none of its threads: an OpenMP team the parent used then hangs the child on its first
parallel region (torch's own ops included). The CPU pass asks this before it hands work to a
host OpenMP team (``cpu_pass.use_host_openmp``). ``cpu_pass`` imports this module, so the
marker is registered before the pass can have used a team.

>>> forked
False
"""

from __future__ import annotations

import os

forked = False


def _mark_forked() -> None:
    global forked
    forked = True


if hasattr(os, "register_at_fork"):  # POSIX; registered at package import, before any fork
    os.register_at_fork(after_in_child=_mark_forked)
