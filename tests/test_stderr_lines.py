"""Framework log lines written to fd 2 at import stay out of the CLI's output (issue 23, item 1).

TensorFlow 2.21 writes two lines straight to the process's stderr when it is imported on CPUs
where oneDNN's custom ops are on by default (AVX-512 ones), whatever ``TF_CPP_MIN_LOG_LEVEL``
says::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796600833.465197    7643 port.cc:153] oneDNN custom operations are on. ...

No Python-level capture sees such a write. The tests below make the same C-level write happen
during a framework's import on any CPU (a meta-path hook runs ``os.write(2, ...)`` before the
framework's module executes), and once with TensorFlow itself, told to turn oneDNN's custom
ops on (``TF_ENABLE_ONEDNN_OPTS=1``, which makes TF write the lines on any x86 CPU).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from importlib.util import find_spec

import pytest

from bce_compat import _stderr_lines

ABSL_LINE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN_LINE = ("I0000 00:00:1796600833.465197    7643 port.cc:153] oneDNN custom operations are on. You may see "
               "slightly different numerical results due to floating-point round-off errors from different "
               "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.")
GLOG_WARNING = "W1206 23:48:30.028832  9337 eager_utils.cc:3584] Paddle static graph(PIR) not support input out"
GLOG_ERROR = "E0000 00:00:1796600833.5 7643 some_kernel.cc:42] a real error from the framework"
PLAIN_LINE = "a line of the framework that is not a log line"
FRAMEWORKS = ("torch", "paddle", "tensorflow", "jax", "dask")

_QUIET_VARS = ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel")


# ---- which lines are dropped


@pytest.mark.parametrize("level, dropped", [
    (0, []),
    (1, [ONEDNN_LINE]),
    (2, [ABSL_LINE, ONEDNN_LINE, GLOG_WARNING]),
    (3, [ABSL_LINE, ONEDNN_LINE, GLOG_WARNING]),  # errors always pass
])
def test_log_lines_below_the_level_are_dropped_everything_else_kept(level, dropped):
    lines = [ABSL_LINE, ONEDNN_LINE, PLAIN_LINE, GLOG_WARNING, GLOG_ERROR]
    text = "\n".join(lines).encode() + b"\npartial line without a newline"
    kept = _stderr_lines.filtered(text, level).decode()
    assert kept.splitlines() == [line for line in lines if line not in dropped] + ["partial line without a newline"]


@pytest.mark.parametrize("env, level", [
    ({}, 0),
    ({"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}, 3),
    ({"TF_CPP_MIN_LOG_LEVEL": "0", "GLOG_minloglevel": "3"}, 0),  # a user who asks for TF's logs gets them
    ({"TF_CPP_MIN_LOG_LEVEL": "2"}, 2),
    ({"TF_CPP_MIN_LOG_LEVEL": "x"}, 0),
])
def test_level_follows_the_frameworks_log_level_variables(env, level):
    assert _stderr_lines.level_from(env) == level


def test_c_level_writes_are_filtered_and_the_rest_passes_in_order():
    """A real fd-2 write inside the block, in a fresh process (no pytest capture in between)."""
    script = (
        "import os, sys\n"
        "from bce_compat._stderr_lines import log_lines_filtered\n"
        "print('before', file=sys.stderr)\n"
        "with log_lines_filtered():\n"
        f"    os.write(2, {(ABSL_LINE + chr(10) + ONEDNN_LINE + chr(10) + PLAIN_LINE + chr(10)).encode()!r})\n"
        "    print('python inside', file=sys.stderr)\n"
        f"    os.write(2, {(GLOG_ERROR + chr(10)).encode()!r})\n"
        "print('after', file=sys.stderr)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["before", PLAIN_LINE, "python inside", GLOG_ERROR, "after"]


def test_nothing_is_redirected_at_level_0():
    script = (
        "import os\n"
        "from bce_compat._stderr_lines import log_lines_filtered\n"
        "before = os.fstat(2)\n"
        "with log_lines_filtered():\n"
        "    inside = os.fstat(2)\n"
        "print(before.st_ino == inside.st_ino)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in _QUIET_VARS}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tempfile.gettempdir())
    assert done.stdout.strip() == "True", done.stderr


# ---- the CLI, with a framework that writes to fd 2 while it is imported


NOISY_IMPORTS = """
import importlib.abc, importlib.machinery, os, sys

NOISE = {noise!r}
WATCHED = {watched!r}


class NoisyLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        os.write(2, NOISE)  # what TF's C++ does while `import tensorflow` runs
        self.loader.exec_module(module)


class NoisyFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in WATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = NoisyLoader(spec.loader)
        return spec


sys.meta_path.insert(0, NoisyFinder())
from bce_compat.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli_with_noisy_imports(*args):
    installed = [name for name in FRAMEWORKS if find_spec(name) is not None]
    if not installed:
        pytest.skip(f"needs one of {', '.join(FRAMEWORKS)} to import")
    noise = f"{ABSL_LINE}\n{ONEDNN_LINE}\n{PLAIN_LINE}\n".encode()
    script = NOISY_IMPORTS.format(noise=noise, watched=tuple(installed))
    env = {k: v for k, v in os.environ.items() if k not in _QUIET_VARS}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=tempfile.gettempdir())
    return installed, done


def _assert_log_lines_dropped_plain_lines_kept(done):
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "absl::InitializeLog" not in output and "oneDNN" not in output, done.stderr[-3000:]
    assert PLAIN_LINE in done.stderr  # not a log line: passed through


def test_backends_listing_drops_log_lines_written_during_framework_imports():
    installed, done = _cli_with_noisy_imports("backends")
    _assert_log_lines_dropped_plain_lines_kept(done)
    assert done.stderr.count(PLAIN_LINE) == len(installed)  # each framework imported once, its plain line kept
    for name in installed:
        assert any(line.split()[0] == name for line in done.stdout.splitlines() if line.strip())


def test_conformance_drops_log_lines_written_during_framework_imports():
    installed = [name for name in FRAMEWORKS if find_spec(name) is not None]
    chosen = "tensorflow" if "tensorflow" in installed else (installed or ["numpy"])[0]
    _, done = _cli_with_noisy_imports("conformance", "--backends", f"numpy,{chosen}",
                                      "--cases", "ours-inf-pos-y1-is-zero", "--quiet")
    _assert_log_lines_dropped_plain_lines_kept(done)
    assert "conformance:" in done.stdout


# ---- TensorFlow itself, with oneDNN's custom ops turned on as on AVX-512 CPUs


def test_tensorflow_onednn_lines_stay_out_of_the_backends_listing():
    if find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    env = {k: v for k, v in os.environ.items() if k not in _QUIET_VARS}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # the default on AVX-512 CPUs; here it makes TF print its line on any x86
    done = subprocess.run([sys.executable, "-m", "bce_compat", "backends"], capture_output=True, text=True,
                          env=env, timeout=600, cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    assert "tensorflow" in done.stdout
    assert done.stderr == "", done.stderr


def test_only_lines_that_start_as_log_lines_are_dropped():
    """A line that quotes a log line after other text (a traceback, a test's output) is not a log line: kept."""
    quoted = "RuntimeError: the op failed after " + ONEDNN_LINE
    assert _stderr_lines.filtered((quoted + "\n" + ONEDNN_LINE + "\n").encode(), 3).decode() == quoted + "\n"
