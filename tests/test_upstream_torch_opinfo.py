"""Runs the port of torch's OpInfo BCE tests (test_upstream_torch_opinfo_bce.py) in a process of its own.

Importing ``torch.testing._internal.common_methods_invocations`` changes process-wide state: it freezes the
``torch.backends`` flags, loads its own Hypothesis profile, adds warning filters, sets an environment variable and
wraps the JIT's calls. The port gets a fresh interpreter with NumPy and torch only, so none of that reaches the
other tests.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PORT = HERE / "test_upstream_torch_opinfo_bce.py"


def test_torch_opinfo_port_in_its_own_process():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install 'bce_compat[torch]')")
    env = {**os.environ, "BCE_COMPAT_BACKENDS": "numpy,torch", "BCE_COMPAT_OPINFO_PROCESS": "1"}
    env.pop("BCE_COMPAT_REQUIRE_BACKENDS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PORT)],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary and "xfail" not in summary, done.stdout[-2000:]
