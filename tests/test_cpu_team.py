"""The thread teams the pass splits over: its own (backends/_cpu_team.h), which splits NumPy,
Paddle and TensorFlow inputs, the Python pool that stands in for it where there is none
(Windows), and torch's OpenMP team (torch tensors).

What a borrowed team must survive: several Python threads calling at once, a fork while another
thread is inside a job (its locks held), signals (they must reach the thread that handles them),
and an idle process (the workers must sleep, not spin). Bits never depend on the split.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import _cpu_pass_calls as calls
from bce_compat.backends import cpu_pass

needs_team = pytest.mark.skipif(not cpu_pass.OWN_TEAM, reason="no native team here (no POSIX threads): the Python pool splits")
needs_pass = pytest.mark.skipif(not cpu_pass.AVAILABLE, reason="the compiled pass was not built (no C compiler?)")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
F32 = np.dtype(np.float32)
SPLIT = cpu_pass.BLOCK + 1  # the smallest input the pass can split (two blocks), passed as parallel_min


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 4).astype(np.float32), rng.random(shape).astype(np.float32)


def _script(code: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (from the temporary directory: the clone's source tree
    must not shadow the installed package). A hang is a failure."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ, **(env or {})), cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        pytest.fail(f"the script hung (over {timeout} s)")


@pytest.fixture(params=["native team", "python pool", "torch's openmp team"])
def team(request, monkeypatch) -> dict:
    """Each way of splitting, as ``calls.loss`` keywords: the native team, the Python pool (forced
    where a native team exists) and torch's OpenMP team (the ``host_team`` fixture)."""
    if request.param == "native team" and not cpu_pass.OWN_TEAM:
        pytest.skip("no native team on this platform")
    if request.param == "python pool":
        monkeypatch.setattr(cpu_pass, "OWN_TEAM", False)
    if request.param == "torch's openmp team":
        request.getfixturevalue("host_team")
        return {"host_team": True}
    return {}


@needs_pass
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("threads", [2, 3, 64])
def test_same_bits_on_one_thread_and_split(team, reduction, threads):
    """Rows of 96 do not line up with the blocks (the tiled pos_weight[96] and the per-row weight
    are cut mid-row); 64 threads is more than the 6 blocks."""
    rows = cpu_pass.BLOCK * 5 // 96 + 7
    x, y = _data((rows, 96), seed=5)
    rng = np.random.default_rng(6)
    p = rng.random(96).astype(np.float32) * 3
    w = rng.random((rows, 1)).astype(np.float32)
    g_split, g_one = np.empty(x.shape, np.float32), np.empty(x.shape, np.float32)
    split = calls.loss(x, y, w, p, reduction, F32, grad_out=g_split, threads=threads, parallel_min=SPLIT, **team)
    one = calls.loss(x, y, w, p, reduction, F32, grad_out=g_one)
    np.testing.assert_array_equal(split, one)
    np.testing.assert_array_equal(g_split, g_one)


@needs_pass
def test_every_element_is_computed_once_whatever_the_split(team):
    """A part dropped or computed twice shows in the sum of an input whose every element has a
    different loss (a dropped block's 8192 losses, or a doubled one, move the sum by far more
    than its rounding)."""
    for blocks in (2, 3, 7, 17, 40):
        x = np.linspace(-30, 30, blocks * cpu_pass.BLOCK - 5).astype(np.float64)
        y = np.zeros_like(x)
        expected = float(np.sum(np.logaddexp(0.0, x)))
        for threads in (2, 3, 4):
            got = float(calls.loss(x, y, None, None, "sum", np.float64, threads=threads, parallel_min=SPLIT, **team))
            assert got == pytest.approx(expected, rel=1e-12), (blocks, threads)


@needs_pass
def test_several_python_threads_call_at_once(team):
    """Our team runs one job at a time (a caller that finds it busy computes alone); torch's
    runtime gives each calling thread a team of its own. Either way: the same bits, no caller
    waits for ever or gets another's parts."""
    inputs = [_data((cpu_pass.BLOCK * 6 + 11,), seed=s) for s in range(6)]
    expected = [calls.loss(x, y, None, 2.0, "none", F32) for x, y in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda xy: calls.loss(*xy, None, 2.0, "none", F32, threads=2, parallel_min=SPLIT, **team),
                            inputs * 8))
    for i, result in enumerate(got):
        np.testing.assert_array_equal(result, expected[i % len(inputs)])


@needs_pass
@needs_team
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_fork_while_another_thread_runs_a_job():
    """The fork can come while a job holds the team's locks (another Python thread's loss, as in a
    server that forks per request): each child must compute, split, with the parent's bits."""
    done = _script("""
        import os, sys, threading, numpy as np
        from bce_compat.backends import cpu_pass
        x = np.linspace(-8, 8, cpu_pass.BLOCK * 40).astype(np.float32); y = np.full_like(x, 0.25)
        run = lambda: cpu_pass.run("logits", x, y, reduction="sum", size_hint=x.size, threads=2)
        def threads_alive():  # our workers as the kernel lists them
            return sum(open(f"/proc/self/task/{t}/comm").read().startswith("bce_compat") for t in os.listdir("/proc/self/task"))
        expected = run().sum
        stop = False
        def busy():
            while not stop:
                run()
        worker = threading.Thread(target=busy); worker.start()
        bad = 0
        for _ in range(20):
            pid = os.fork()
            if pid == 0:  # the parent's workers are not here: the child's team starts empty, then grows
                fresh = cpu_pass.threads_started() == 0
                ok = run().sum == expected and run().sum == expected
                real = threads_alive() if sys.platform.startswith("linux") else cpu_pass.threads_started()
                os._exit(0 if fresh and ok and cpu_pass.threads_started() == real == 1 else 3)
            _, status = os.waitpid(pid, 0)
            bad += os.waitstatus_to_exitcode(status) != 0
        stop = True; worker.join()
        print("bad children", bad)
    """, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bad children 0" in done.stdout, done.stdout


@needs_pass
@needs_team
@linux_only
def test_workers_are_named_counted_and_block_signals():
    """Every worker is a ``bce_compat_N`` thread, as many as ``threads_started()`` says, and blocks
    SIGINT and SIGTERM: Python's handlers need them on the threads that run them."""
    done = _script("""
        import os, numpy as np
        from bce_compat.backends import cpu_pass
        x = np.zeros(cpu_pass.BLOCK * 8, np.float32)
        cpu_pass.run("logits", x, x, reduction="sum", size_hint=x.size, threads=3)
        names, masks = [], []
        for tid in os.listdir("/proc/self/task"):
            name = open(f"/proc/self/task/{tid}/comm").read().strip()
            if name.startswith("bce_compat"):
                names.append(name)
                status = open(f"/proc/self/task/{tid}/status").read()
                masks.append(int(status.split("SigBlk:")[1].split()[0], 16))
        print("counted", cpu_pass.threads_started(), "named", sorted(names))
        print("blocked", all(mask & (1 << 1) and mask & (1 << 14) for mask in masks))  # SIGINT 2, SIGTERM 15
    """, env={"BCE_COMPAT_NUM_THREADS": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "counted 2 named ['bce_compat_0', 'bce_compat_1']" in done.stdout, done.stdout
    assert "blocked True" in done.stdout, done.stdout


@needs_pass
@needs_team
def test_idle_workers_sleep():
    """After a job the workers spin briefly, then sleep: an idle process burns no CPU. (Process CPU
    time over 0.3 s of idleness: a spinning worker would take all of it.)"""
    done = _script("""
        import time, numpy as np
        from bce_compat.backends import cpu_pass
        x = np.zeros(cpu_pass.BLOCK * 8, np.float32)
        for _ in range(20):
            cpu_pass.run("logits", x, x, reduction="sum", size_hint=x.size, threads=3)
        time.sleep(0.05)
        start = time.process_time(); time.sleep(0.3)
        print("idle cpu", time.process_time() - start, "workers", cpu_pass.threads_started())
    """, env={"BCE_COMPAT_NUM_THREADS": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    assert float(words[words.index("cpu") + 1]) < 0.05 and words[-1] == "2", done.stdout


@needs_pass
def test_the_team_computes_at_interpreter_exit_from_a_daemon_thread():
    """Daemon threads still inside a split call while the interpreter finalizes: no traceback, no
    hang (the native workers hold no Python state; the Python pool's runs fall back to the caller)."""
    for setting in ("native", "python"):
        done = _script(f"""
            import threading, numpy as np
            from bce_compat.backends import cpu_pass
            cpu_pass.OWN_TEAM = cpu_pass.OWN_TEAM and {setting!r} == "native"
            x = np.linspace(-8, 8, cpu_pass.BLOCK * 30).astype(np.float32)
            def work():
                while True:
                    cpu_pass.run("logits", x, x, reduction="sum", size_hint=x.size, threads=2)
            for _ in range(3):
                threading.Thread(target=work, daemon=True).start()
            import time; time.sleep(0.3)
        """, timeout=60)
        assert done.returncode == 0, (setting, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (setting, done.stderr[-2000:])


class _TeamRecorder:
    """Stands in for the compiled module: records the (threads, team) each run asks for."""

    def __init__(self, module):
        self.module, self.asked = module, []

    def __getattr__(self, name):
        return getattr(self.module, name)

    def run(self, *args):
        self.asked.append(args[-2:])
        return self.module.run(*args)


@needs_team
@needs_pass
def test_where_each_team_starts_to_split(monkeypatch):
    """The rule of cpu_pass's docstring: torch tensors split over torch's team from two blocks;
    NumPy arrays (like Paddle and TF tensors) over ours only past PARALLEL_MIN (four blocks)."""
    import bce_compat

    recorder = _TeamRecorder(cpu_pass._cpu_pass)
    monkeypatch.setattr(cpu_pass, "_cpu_pass", recorder)
    monkeypatch.setattr(cpu_pass, "num_threads", lambda: 2)
    block = cpu_pass.BLOCK
    assert cpu_pass.PARALLEL_MIN == 4 * block + 1
    for n in (cpu_pass.PARALLEL_MIN - 1, cpu_pass.PARALLEL_MIN):
        bce_compat.binary_cross_entropy_with_logits(np.zeros(n, np.float32), np.zeros(n, np.float32))
    assert recorder.asked == [(1, cpu_pass._TEAM_NONE), (2, cpu_pass._TEAM_OWN)]

    torch = pytest.importorskip("torch", reason="torch is not installed")
    from bce_compat.backends import torch_fast

    if not torch_fast.HOST_OPENMP:
        pytest.skip("torch does not run on OpenMP here")
    recorder.asked.clear()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for n in (block, 2 * block):
            bce_compat.binary_cross_entropy_with_logits(torch.zeros(n), torch.zeros(n))
    finally:
        torch.set_num_threads(threads)
    assert recorder.asked == [(1, cpu_pass._TEAM_NONE), (2, cpu_pass._TEAM_HOST)]
