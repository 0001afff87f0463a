"""The fast paths' trust boundary, tried as a user's adversarial or unusual inputs would (issue 22).

Each test here failed before the CPU pass read arrays itself (backends/_cpu_pass.c): view bits
read from memory, sizes taken from Python properties, freed storage read through, the 4-ulp
promise broken on weighted soft targets, infinite weights differing between paths, a masked
array's mask dropped, a torch thread setting ignored. Items 3 and 8 (a fork after a NumPy loss,
a loss at interpreter exit) are tested beside the pass, in test_cpu_pass.py.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import textwrap

import mpmath
import numpy as np
import pytest

import bce_compat
from _reference import assert_close, exact_logits_grad, logits_loss_ulps
from bce_compat._plan import plan_for
from bce_compat._validate import ArgNames
from bce_compat.contract import Problem

F = bce_compat.binary_cross_entropy_with_logits


def _script(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        pytest.fail(f"the script hung (over {timeout} s)")


# --- item 1-2: torch views with the negative bit -------------------------------------------------


def _negative_view(values, dtype="float32"):
    """A real tensor whose value is ``values`` but whose memory holds their negation (the negative bit)."""
    torch = pytest.importorskip("torch")
    real = torch.tensor(values, dtype=getattr(torch, dtype))
    view = torch.complex(torch.zeros_like(real), -real).conj().imag
    assert view.is_neg() and torch.equal(view, real)
    return view


@pytest.mark.parametrize("size", [1, 5000])
@pytest.mark.parametrize("argument", ["input", "target", "weight", "pos_weight"])
def test_negative_bit_views_are_values_like_any_other(argument, size):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(size)
    values = {
        "input": (rng.standard_normal(size) * 3).tolist(),
        "target": rng.random(size).tolist(),
        "weight": (rng.random(size) * 2 + 0.5).tolist(),
        "pos_weight": (rng.random(size) * 2 + 0.5).tolist(),
    }
    plain = {k: torch.tensor(v) for k, v in values.items()}
    args = dict(plain, **{argument: _negative_view(values[argument])})
    for reduction in ("none", "sum"):
        got = F(args["input"], args["target"], args["weight"], reduction=reduction, pos_weight=args["pos_weight"])
        expected = F(plain["input"], plain["target"], plain["weight"], reduction=reduction,
                     pos_weight=plain["pos_weight"])
        assert torch.equal(got, expected), (argument, reduction)
    native = torch.nn.functional.binary_cross_entropy_with_logits(
        args["input"], args["target"], args["weight"], reduction="sum", pos_weight=args["pos_weight"])
    assert float(got) == pytest.approx(float(native), rel=1e-5)


def test_a_negative_bit_upstream_gradient_keeps_its_sign():
    """Item 2: a 0-d upstream whose value is -1 and whose memory holds +1."""
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.5])
    upstream = _negative_view(-1.0)
    (got,) = torch.autograd.grad(F(x, y, reduction="mean"), x, upstream)
    (plain,) = torch.autograd.grad(F(x, y, reduction="mean"), x, torch.tensor(-1.0))
    assert torch.equal(got, plain)
    expected = -exact_logits_grad(x.detach().numpy(), y.numpy())[0] / 3
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


# --- item 4: sizes from the real buffer, never from a Python property ---------------------------


def test_a_paddle_subclass_lying_about_its_shape_reads_only_its_own_memory():
    """Item 4: a ``paddle.Tensor`` subclass whose ``shape`` says 8192 over 4 elements crashed or
    corrupted memory; in a fresh process so that a crash cannot take the test run with it."""
    pytest.importorskip("paddle")
    done = _script("""
        import math, paddle, bce_compat
        class Lying(paddle.Tensor):
            @property
            def shape(self):
                return [8192]
        x = Lying(paddle.zeros([4])); y = paddle.zeros([4])
        for reduction in ("none", "sum", "mean"):
            try:
                value = bce_compat.binary_cross_entropy_with_logits(x, y, reduction=reduction)
                print(reduction, value.numpy().tolist())
            except (TypeError, ValueError) as error:
                print(reduction, "refused", type(error).__name__)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.split(" ", 1)[0] in
                 ("none", "sum", "mean"))
    assert set(lines) == {"none", "sum", "mean"}, done.stdout
    for reduction, shown in lines.items():
        if "refused" in shown:
            continue
        value = eval(shown)  # a list or a number printed by Paddle's tolist
        expected = [math.log(2)] * 4 if reduction == "none" else (4 * math.log(2) if reduction == "sum" else math.log(2))
        np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_a_torch_subclass_lying_about_its_shape_is_an_error_never_a_read_past_its_memory():
    torch = pytest.importorskip("torch")

    class Lying(torch.Tensor):
        @property
        def shape(self):
            return torch.Size([8192])

    x = torch.zeros(4).as_subclass(Lying)
    with pytest.raises(ValueError, match="same shape"):  # the front end's checks see the lie: a clear error
        F(x, torch.zeros(4), reduction="sum")
    with pytest.raises((ValueError, RuntimeError)):  # the subclass takes torch's own ops, which see 4 elements
        F(x, torch.zeros(8192), reduction="sum")


# --- item 5: freed storage ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [1_000, 100_000])
@pytest.mark.parametrize("argument", ["input", "target"])
def test_freed_storage_is_a_clear_error_naming_the_argument(size, argument):
    """Item 5: FSDP-style code frees a tensor's storage with ``untyped_storage().resize_(0)``; torch's
    own op says "data is not allocated yet"; we read garbage (100,000) or said something internal."""
    torch = pytest.importorskip("torch")
    tensors = {"input": torch.randn(size), "target": torch.rand(size)}
    tensors[argument].untyped_storage().resize_(0)
    with pytest.raises(ValueError, match=f"{argument}: its memory is not allocated"):
        F(tensors["input"], tensors["target"])


def test_a_shrunk_storage_is_refused():
    torch = pytest.importorskip("torch")
    x = torch.randn(1000)
    x.untyped_storage().resize_(8)
    with pytest.raises(ValueError, match="input: the view reaches past the memory its storage holds"):
        F(x, torch.zeros(1000))


@pytest.mark.parametrize("argument", ["input", "target", "weight", "pos_weight"])
def test_a_view_into_a_shrunk_storage_is_refused_counting_from_its_first_element(argument):
    """A view that starts inside its storage (``storage_offset() > 0``), which was then shrunk: the
    storage still holds more bytes than the view's elements take, but not from the view's first
    element on. What C may read is counted from there, never from the storage's start."""
    torch = pytest.importorskip("torch")
    bases = {name: torch.rand(2000) for name in ("input", "target", "weight", "pos_weight")}
    views = {name: base[1000:] for name, base in bases.items()}
    assert views[argument].storage_offset() == 1000
    bases[argument].untyped_storage().resize_(1200 * 4)  # elements 0-1199: the view's first 200
    with pytest.raises(ValueError, match=f"{argument}: the view reaches past the memory its storage holds"):
        F(views["input"], views["target"], weight=views["weight"], pos_weight=views["pos_weight"])


# --- item 6: the 4-ulp promise on weighted soft targets with large pos_weight --------------------

ISSUE_CASES = [  # (x, y, w, p, dtype): the issue's inputs, C path float64 and portable path float32
    (0.6524980479249236, 0.854204055726164, 1.76400485682397, 100.0, "float64"),
    (0.2207566286481822, 0.3204212330590819, 0.050485690469352695, 100.0, "float64"),
    (1.0069443, 0.7706736, 0.64685, 100.0, "float32"),
    (0.98767054, 0.8782767, None, 3.0, "float32"),
]


def _portable(x, y, w, p):
    """The portable path itself, on NumPy arrays (the path of array-api-strict, Dask, compiled graphs)."""
    plan = plan_for("f", ArgNames(), x, y, w, p)
    return plan.portable(Problem("logits", x, y, w, p, "none", plan.out_dtype))


@pytest.mark.parametrize("case", ISSUE_CASES)
@pytest.mark.parametrize("path", ["engine", "portable"])
def test_the_issues_4_ulp_cases(case, path):
    xv, yv, wv, pv, dtype = case
    x, y = np.array([xv], dtype), np.array([yv], dtype)
    w = None if wv is None else np.array([wv], dtype)
    p = np.array([pv], dtype)
    got = F(x, y, w, reduction="none", pos_weight=p) if path == "engine" else _portable(x, y, w, p)
    assert logits_loss_ulps(got, x, y, w, p, dtype).max() <= 4  # the strict ulp, at the unrounded exact value


def _search_inputs(dtype, count, seed):
    """Weighted soft targets, pos_weight up to 1e3, |x| from 1e-3 to 30 and up to 1e30: where the
    loss's terms are formed from several rounded products."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(count) * 10.0 ** rng.uniform(-3, 1.5, count)
    x[: count // 20] *= 1e28
    y = rng.random(count)
    y[::7] = 0.0
    y[1::7] = 1.0
    w = 10.0 ** rng.uniform(-2, 1, count)
    p = 10.0 ** rng.uniform(-2, 3, count)
    return (a.astype(dtype) for a in (x, y, w, p))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", ["engine", "portable"])
def test_a_random_search_against_mpmath_finds_nothing_past_4_ulp(dtype, path):
    x, y, w, p = _search_inputs(dtype, 600, seed=22 if dtype == "float32" else 23)
    got = F(x, y, w, reduction="none", pos_weight=p) if path == "engine" else _portable(x, y, w, p)
    off = logits_loss_ulps(got, x, y, w, p, dtype)
    assert off.max() <= 4, f"{off.max():.2f} ulp at {np.argmax(off)}"
    if path == "engine":
        g = np.empty(x.shape, dtype)
        from bce_compat.backends import cpu_pass

        if cpu_pass.AVAILABLE:
            cpu_pass.run("logits", x, y, w, p, reduction="none", grad_out=g, result_dtype=dtype)
            expected, bound = exact_logits_grad(x, y, w, p)
            assert_close(g, expected, dtype, ulps=4, bound=bound)


# --- item 7: infinite weights give the formula's value on every path -----------------------------


def _formula(x, y, w, p):
    """w * [p*y*softplus(-x) + (1-y)*softplus(x)] in mpmath, with IEEE's inf * 0 = NaN except for
    the contract's zero-coefficient rule."""
    with mpmath.workdps(50):
        def softplus(v):
            if mpmath.isinf(v):
                return mpmath.mpf(0) if v < 0 else mpmath.inf
            return mpmath.log1p(mpmath.exp(v)) if v < 0 else v + mpmath.log1p(mpmath.exp(-v))

        def times(c, t):
            if c == 0:
                return mpmath.mpf(0)
            if mpmath.isinf(c) and t == 0:
                return mpmath.nan
            return c * t

        c_pos = p * y if not (mpmath.isinf(p) and y == 0) else mpmath.nan
        total = times(c_pos, softplus(-x)) + times(1 - y, softplus(x))
        value = times(w, total) if total == total else total
        return float(value)


EDGES = [  # x, y, weight, pos_weight
    (0.0, 1.0, 1.0, math.inf), (-0.0, 0.5, 1.0, math.inf), (0.0, 0.0, 1.0, math.inf),
    (math.inf, 1.0, math.inf, 1.0), (-math.inf, 0.0, math.inf, 1.0), (2.0, 1.0, math.inf, 1.0),
    (-3.0, 0.0, 1.0, math.inf), (5.0, 0.25, math.inf, 2.0),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", ["engine", "portable"])
def test_infinite_weights_give_the_formulas_value_on_every_path(framework, dtype, path):
    if dtype not in framework.dtypes:
        pytest.skip(f"{framework.name} has no {dtype} here")
    columns = [np.array(c, np.float64) for c in zip(*EDGES)]
    x, y, w, p = (framework.asarray(c, dtype) for c in columns)
    if path == "engine":
        got = F(x, y, w, reduction="none", pos_weight=p)
    else:
        plan = plan_for("f", ArgNames(), x, y, w, p)
        got = plan.portable(Problem("logits", x, y, w, p, "none", plan.out_dtype))
    expected = np.array([_formula(*edge) for edge in EDGES])
    got = framework.to_numpy(got)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{got} vs {expected}")
    both = ~np.isnan(expected)
    np.testing.assert_allclose(got[both], expected[both], rtol=4 * np.finfo(dtype).eps)


# --- item 9: thread counts follow the host's setting ---------------------------------------------


def test_torch_with_one_thread_starts_no_thread_of_ours():
    """Item 9: DataLoader workers, forked children and users set ``torch.set_num_threads(1)``."""
    pytest.importorskip("torch")
    done = _script("""
        import torch, bce_compat
        from bce_compat.backends import cpu_pass
        torch.set_num_threads(1)
        x = torch.randn(1 << 21, requires_grad=True)
        bce_compat.binary_cross_entropy_with_logits(x, torch.rand(1 << 21)).backward()
        print("ours", cpu_pass.threads_started())
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ours 0" in done.stdout, done.stdout


# --- item 10: NumPy masked arrays ---------------------------------------------------------------


@pytest.mark.parametrize("argument", ["input", "target", "weight", "pos_weight"])
def test_a_masked_array_is_refused_not_silently_unmasked(argument):
    arrays = {"input": np.array([-3.0, 50.0, 1.0]), "target": np.zeros(3), "weight": np.ones(3),
              "pos_weight": np.ones(3)}
    arrays[argument] = np.ma.masked_array(arrays[argument], mask=[0, 1, 0])
    with pytest.raises(TypeError, match=f"`{argument}` is a NumPy masked array"):
        F(arrays["input"], arrays["target"], arrays["weight"], pos_weight=arrays["pos_weight"], reduction="sum")
