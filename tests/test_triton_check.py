"""The GPU kernels' self-check (backends/torch_triton_check.py), with "kernels" made of torch ops.

The check needs no Triton and no GPU: it compares any function with the kernel's signature
against a reference. Here the reference is the real portable path (``_portable.portable``), and the
kernels are the portable path itself (trusted) or the portable path with one defect each (not
trusted: one warning, and False from then on). The real Triton kernels, and deliberately broken
ones, are checked under Triton's interpreter in test_fast_triton_self_check.py.
"""

from __future__ import annotations

import math
import threading
import warnings

import pytest

torch = pytest.importorskip("torch")
xp = pytest.importorskip("array_api_compat.torch")

from bce_compat._portable import portable  # noqa: E402
from bce_compat.backends import torch_triton_check as check  # noqa: E402
from bce_compat.contract import Problem  # noqa: E402

CPU = torch.device("cpu")
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def portable_path(x, y, weight, pos_weight, reduction, out_dtype):
    """The portable path with the kernel's signature: what the engine hands the check."""
    compute = torch.float32 if out_dtype in (torch.float16, torch.bfloat16) else out_dtype
    return portable(Problem("logits", x, y, weight, pos_weight, reduction, out_dtype), xp, compute)


@pytest.fixture(autouse=True)
def fresh_verdicts():
    check.reset()
    yield
    check.reset()


def run_check(kernel, dtype=torch.float32, device=CPU, reference=portable_path):
    """(verdict, the KernelCheckWarnings it gave)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verdict = check.trusted(device, dtype, kernel, reference)
    return verdict, [w for w in caught if issubclass(w.category, check.KernelCheckWarning)]


class _FlipGradient(torch.autograd.Function):
    """Identity forward, negated backward: a kernel whose loss is right and whose d loss/d x is not."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _tiny(dtype):
    info = torch.finfo(dtype)
    return info.smallest_normal * info.eps


# name -> (kernel with one defect, text its warning must contain)
DEFECTS = {
    "sign of one loss": (
        lambda x, y, w, p, r, d: (lambda out: torch.where(x == 20, -out, out) if r == "none" else out)(
            portable_path(x, y, w, p, r, d)
        ),
        "the loss, reduction='none' at x=20.0",
    ),
    "8 ulp everywhere": (
        lambda x, y, w, p, r, d: portable_path(x, y, w, p, r, d) * (1 + 8 * torch.finfo(d).eps),
        "the loss, reduction='none'",
    ),
    "sign of the gradient": (
        lambda x, y, w, p, r, d: portable_path(_FlipGradient.apply(x), y, w, p, r, d),
        "d loss/d x, reduction='none'",
    ),
    "a limit at +inf not exact": (
        lambda x, y, w, p, r, d: (lambda out: torch.where(x.isinf() & (out == 0), _tiny(d), out))(
            portable_path(x, y, w, p, r, d)
        ),
        "must agree exactly",
    ),
    "NaN swallowed": (
        lambda x, y, w, p, r, d: (lambda out: torch.where(out.isnan(), 0.0, out))(portable_path(x, y, w, p, r, d)),
        "x=nan",
    ),
    "subnormal results flushed to zero": (
        lambda x, y, w, p, r, d: (lambda out: torch.where(out.abs() < torch.finfo(d).smallest_normal, 0.0, out))(
            portable_path(x, y, w, p, r, d)
        ),
        "portable path 3.9",  # x = -100, y = 0: 3.92e-44, a float32 subnormal
    ),
    "only the sum": (
        lambda x, y, w, p, r, d: portable_path(x, y, w, p, r, d) * (1.001 if r == "sum" else 1.0),
        "the loss, reduction='sum' over the finite edges, weight None, pos_weight 3.0",
    ),
    "wrong dtype": (
        lambda x, y, w, p, r, d: portable_path(x, y, w, p, r, torch.float64),
        "the kernel gives shape [15, 3, 3, 3] torch.float64",
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_the_portable_path_is_trusted_against_itself(dtype):
    verdict, warned = run_check(portable_path, dtype)
    assert verdict is True and warned == []
    assert check.verdicts() == {("cpu", dtype): True}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_a_defect_is_found_warned_once_and_kept(defect):
    broken, expected_text = DEFECTS[defect]
    calls = []

    def kernel(*args):
        calls.append(args[4])
        return broken(*args)

    verdict, warned = run_check(kernel)
    assert verdict is False and len(warned) == 1
    message = str(warned[0].message)
    for part in ("cpu", "torch.float32", expected_text, "kernel ", "portable path", "from now on"):
        assert part in message, (part, message)
    assert check.verdicts() == {("cpu", torch.float32): False}
    calls.clear()
    assert run_check(kernel) == (False, [])  # decided: no second check, no second warning
    assert calls == []


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_differences_within_the_contract_are_trusted(dtype):
    """float16/bfloat16: computed in float64 and rounded once (1 ulp of the dtype allowed);
    float32/float64: 2 ulp off everywhere (4 allowed)."""

    def kernel(x, y, w, p, r, d):
        if d in (torch.float16, torch.bfloat16):
            return portable_path(x, y, w, p, r, torch.float64).to(d)
        return portable_path(x, y, w, p, r, d) * (1 + 2 * torch.finfo(d).eps)

    assert run_check(kernel, dtype) == (True, [])


def test_a_kernel_that_raises_is_not_trusted():
    def kernel(*args):
        raise RuntimeError("no kernel image is available for execution on the device")

    verdict, warned = run_check(kernel)
    assert verdict is False and len(warned) == 1
    assert "the kernel raised RuntimeError: no kernel image" in str(warned[0].message)


def test_an_error_of_the_reference_propagates_and_decides_nothing():
    def reference(*args):
        raise ValueError("broken reference")

    with pytest.raises(ValueError, match="broken reference"):
        check.trusted(CPU, torch.float32, portable_path, reference)
    assert check.verdicts() == {}
    assert run_check(portable_path) == (True, [])


def test_a_call_from_inside_the_check_declines_instead_of_recursing(monkeypatch):
    """The reference calling back into the engine (as a portable path routed through the front end
    might): the inner call gets False at once, without waiting on the check's lock."""
    monkeypatch.setattr(check, "_LOCK", threading.Lock())  # should it deadlock, only this test's lock is held
    inner = []

    def reference(*args):
        inner.append(check.trusted(CPU, torch.float32, portable_path, reference))
        return portable_path(*args)

    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(run_check(portable_path, reference=reference)), daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the check deadlocked on its own lock"
    assert outcome == [(True, [])]
    assert inner and not any(inner)


@pytest.mark.parametrize("good", [True, False])
def test_threads_share_one_check(good):
    """Eight threads on a fresh key: the check runs once, all get its verdict, one warning at most."""
    calls, lock, start = [], threading.Lock(), threading.Barrier(8)

    def kernel(*args):
        with lock:
            calls.append(args[4])
        out = portable_path(*args)
        return out if good else out * 1.01

    verdicts = []

    def user():
        start.wait()
        verdicts.append(check.trusted(CPU, torch.float32, kernel, portable_path))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=user, daemon=True) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert verdicts == [good] * 8
    assert calls == (["none", "mean", "sum"] if good else ["none"])
    assert len([w for w in caught if issubclass(w.category, check.KernelCheckWarning)]) == (0 if good else 1)


def test_verdicts_are_per_device_and_dtype():
    def kernel(x, y, w, p, r, d):
        out = portable_path(x, y, w, p, r, d)
        return -out if d == torch.float16 else out

    assert run_check(kernel, torch.float32)[0] is True
    verdict, warned = run_check(kernel, torch.float16)
    assert verdict is False and "torch.float16" in str(warned[0].message)
    assert run_check(kernel, torch.bfloat16)[0] is True
    assert check.verdicts() == {("cpu", torch.float32): True, ("cpu", torch.float16): False, ("cpu", torch.bfloat16): True}


def test_the_check_runs_under_no_grad_inference_mode_and_autocast():
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert run_check(portable_path) == (True, [])
    check.reset()
    with torch.no_grad():
        assert run_check(lambda *a: -portable_path(*a))[0] is False


def test_while_a_cuda_graph_is_captured_it_declines_without_a_verdict(monkeypatch):
    """A capture cannot read values back; a later call outside it checks (simulated: no GPU here)."""
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    called = []
    assert check.trusted(torch.device("cuda:0"), torch.float32, lambda *a: called.append(a), portable_path) is False
    assert called == [] and check.verdicts() == {}


def test_the_grid_covers_the_edges():
    cases = list(check.cases(CPU, torch.float32))
    assert [c.reduction for c in cases] == ["none", "mean", "sum"]
    everything = cases[0]
    x = set(everything.x.reshape(-1).tolist())
    for value in (math.inf, -math.inf, 1e30, -1e30, 0.0, 100.0, -100.0, _tiny(torch.float32)):
        assert any(v == pytest.approx(value, rel=1e-6) or v == value for v in x), value
    assert any(math.isnan(v) for v in x)
    assert sorted(set(everything.y.reshape(-1).tolist())) == [0.0, pytest.approx(0.3), 1.0]
    assert everything.weight.shape == (3, 1, 1) and everything.pos_weight.shape == (3,)  # broadcast on two axes
    assert _tiny(torch.float32) in everything.weight.reshape(-1).tolist() and 0.0 in everything.pos_weight.tolist()
    assert len(set(everything.upstream.reshape(-1).tolist())) == 4
    assert cases[2].weight is None and cases[2].pos_weight == 3.0 and cases[2].upstream.item() == -0.5
    assert all(torch.isfinite(c.x).all() for c in cases[1:])
    assert check.edges(torch.float16)[0][1] == -65504.0
