"""Runs the Triton tests in a subprocess without TensorFlow, where this run has imported it.

Importing triton after tensorflow aborts the process (both bundle LLVM), and conftest imports
every installed framework, so the kernel tests (test_fast_triton_kernels.py) and the kernels'
self-check tests (test_fast_triton_self_check.py) get one fresh interpreter with only NumPy and
torch, where Triton's interpreter runs the kernels on CPU tensors.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TRITON_TESTS = [HERE / "test_fast_triton_kernels.py", HERE / "test_fast_triton_self_check.py"]


def test_triton_kernels_in_a_subprocess_without_tensorflow():
    if "tensorflow" not in sys.modules:
        pytest.skip("tensorflow is not imported here: the Triton test files run in this process")
    for name in ("torch", "triton"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed")
    env = {**os.environ, "BCE_COMPAT_BACKENDS": "numpy,torch", "TRITON_INTERPRET": "1"}
    env.pop("BCE_COMPAT_REQUIRE_BACKENDS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, TRITON_TESTS)],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout.splitlines()[-1], done.stdout[-2000:]
