"""The torch engine (backends/torch_fast.py) on CPU: values and gradients against the exact loss.

Each test checks that the fast path ran (the result's grad_fn is its autograd.Function) or, for
the cases it declines, that the portable path ran and is still right.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _reference import assert_close, edge_grid_values, exact_logits_grad, exact_logits_loss, reduce_exact

torch = pytest.importorskip("torch")

import bce_compat  # noqa: E402
from bce_compat._registry import load_backend  # noqa: E402
from bce_compat.backends import cpu_pass, torch_fast  # noqa: E402

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def edge_grid(dtype):
    arrays = [torch.tensor(a, dtype=DTYPES[dtype]) for a in edge_grid_values()]
    return arrays, [a.double().numpy() for a in arrays]


HALF = ("float16", "bfloat16")


def loss(x, y, w=None, p=None, reduction="none"):
    return bce_compat.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p, reduction=reduction)


def used_fast_path(result) -> bool:
    return type(result.grad_fn).__name__ == "_CPULossBackward"


def test_registered_for_torch():
    assert load_backend("torch").engines == (torch_fast.ENGINE,)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_values_and_gradients_match_exact(dtype, reduction):
    (x, y, w, p), (xn, yn, wn, pn) = edge_grid(dtype)
    x.requires_grad_(True)
    before = [t.detach().clone() for t in (x, y, w, p)]
    result = loss(x, y, w, p, reduction)
    assert used_fast_path(result)
    assert result.dtype == x.dtype and result.device == x.device
    assert tuple(result.shape) == (tuple(x.shape) if reduction == "none" else ())
    exact = reduce_exact(exact_logits_loss(xn, yn, wn, pn), reduction)
    tight = 1 if dtype in HALF else 4
    assert_close(result.detach().double().numpy(), exact, dtype, ulps=tight, size=1 if reduction == "none" else x.numel())

    (result.sum() if reduction == "none" else result).backward()
    grad, bound = exact_logits_grad(xn, yn, wn, pn)
    if reduction == "mean":
        grad, bound = grad / x.numel(), bound / x.numel()
    assert x.grad.dtype == x.dtype
    assert_close(x.grad.double().numpy(), grad, dtype, ulps=tight, bound=bound)
    for old, new in zip(before, (x, y, w, p)):
        assert torch.equal(old, new.detach())


@pytest.mark.parametrize("split", ["torch's OpenMP team", "our thread pool"])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_many_blocks_and_threads_match_exact(dtype, split, monkeypatch):
    """Past one block and over threads: same bounds."""
    if split == "our thread pool":  # torch without OpenMP
        monkeypatch.setattr(torch_fast, "HOST_OPENMP", False)
        monkeypatch.setattr(torch_fast, "_PARALLEL_MIN", cpu_pass.PARALLEL_MIN)
    elif not torch_fast.HOST_OPENMP:
        pytest.skip("torch does not run on OpenMP here")
    (x, y, w, p), (xn, yn, wn, pn) = edge_grid(dtype)
    reps = cpu_pass.PARALLEL_MIN // x.numel() + 2
    x, y = x.repeat(reps, 1), y.repeat(reps, 1)
    xn, yn = np.tile(xn, (reps, 1)), np.tile(yn, (reps, 1))
    tight = 1 if dtype in HALF else 4
    with torch.no_grad():
        result = loss(x, y, w, p, "none")
    assert x.numel() > max(cpu_pass.BLOCK, cpu_pass.PARALLEL_MIN)
    assert_close(result.double().numpy(), exact_logits_loss(xn, yn, wn, pn), dtype, ulps=tight)
    x.requires_grad_(True)
    loss(x, y, w, p, "sum").backward()
    grad, bound = exact_logits_grad(xn, yn, wn, pn)
    assert_close(x.grad.double().numpy(), grad, dtype, ulps=tight, bound=bound)


def test_torch_splits_over_its_own_openmp_team():
    """Where torch runs on OpenMP (the CPU wheels do), the engine hands large inputs to torch's own
    team (cpu_pass.use_host_openmp); the bits are those of one thread whatever torch's thread count."""
    from bce_compat.backends import cpu_pass

    if not cpu_pass.AVAILABLE:
        pytest.skip("the compiled pass was not built")
    assert torch_fast.HOST_OPENMP == torch.backends.openmp.is_available()
    rng = np.random.default_rng(8)
    x = torch.from_numpy((rng.standard_normal((3 * cpu_pass.BLOCK // 64 + 5, 64)) * 5).astype(np.float32))
    y, p = torch.from_numpy(rng.random(x.shape).astype(np.float32)), torch.rand(64) * 2
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            xg = x.clone().requires_grad_(True)
            value = bce_compat.binary_cross_entropy_with_logits(xg, y, pos_weight=p)
            value.backward()
            results.append((value.detach(), xg.grad, bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction="none")))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_upstream_gradient_none_reduction_and_numbers():
    x = torch.tensor([-20.0, 0.0, 3.0], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.5])
    result = loss(x, y, 2.0, 3.0)
    assert used_fast_path(result)
    upstream = torch.tensor([1.0, -2.0, 0.5])
    result.backward(upstream)
    grad, _ = exact_logits_grad(x.detach().numpy(), y.numpy(), 2.0, 3.0)
    np.testing.assert_allclose(x.grad.numpy(), grad * upstream.numpy(), rtol=1e-6)


def test_nan_in_nan_out_and_empty():
    x = torch.tensor([math.nan, 0.0], requires_grad=True)
    y = torch.tensor([1.0, math.nan])
    result = loss(x, y)
    assert used_fast_path(result) and torch.isnan(result).all()
    result.sum().backward()
    assert torch.isnan(x.grad).all()
    empty = torch.zeros(0, 4)
    assert torch.isnan(loss(empty, empty, reduction="mean")) and loss(empty, empty, reduction="sum") == 0


def test_double_backward_matches_second_derivative():
    x = torch.tensor([-3.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    p = torch.tensor([2.0, 0.5, 1.5], dtype=torch.float64)
    result = loss(x, y, p=p, reduction="sum")
    assert used_fast_path(result)
    (g,) = torch.autograd.grad(result, x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    s = torch.sigmoid(x.detach())
    torch.testing.assert_close(h, s * (1 - s) * (1 + (p - 1) * y), rtol=1e-12, atol=0)


@pytest.mark.parametrize("wanted", ["target", "weight", "pos_weight"])
def test_gradients_for_target_weight_and_pos_weight(wanted):
    """The fast path serves them too (forward by the kernel, their gradients by the portable formula)."""
    x = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64, requires_grad=True)
    args = {"target": torch.tensor([1.0, 0.0, 0.3], dtype=torch.float64),
            "weight": torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64),
            "pos_weight": torch.tensor([3.0], dtype=torch.float64)}
    args[wanted].requires_grad_(True)
    result = loss(x, args["target"], args["weight"], args["pos_weight"], "sum")
    assert used_fast_path(result)
    result.backward()
    x0 = x.detach()
    y, w, p = (args[k].detach().clone().requires_grad_(k == wanted) for k in ("target", "weight", "pos_weight"))
    reference = (w * (p * y * torch.nn.functional.softplus(-x0) + (1 - y) * torch.nn.functional.softplus(x0))).sum()
    reference.backward()
    expected = {"target": y, "weight": w, "pos_weight": p}[wanted].grad
    torch.testing.assert_close(args[wanted].grad, expected, rtol=1e-14, atol=0)
    torch.testing.assert_close(x.grad, torch.sigmoid(x0) * (1 + (p.detach() - 1) * y.detach()) * w.detach()
                               - p.detach() * y.detach() * w.detach(), rtol=1e-14, atol=1e-16)


def declined(x, y, out_dtype, reduction="none"):
    from bce_compat.contract import Declined, Problem

    return isinstance(torch_fast.ENGINE(Problem("logits", x, y, reduction=reduction, out_dtype=out_dtype)), Declined)


def test_bfloat16_on_cpu_runs_the_pass_and_rounds_once():
    x = torch.tensor([-20.0, 0.0, 5.0], dtype=torch.bfloat16, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0], dtype=torch.bfloat16)
    assert not declined(x.detach(), y, torch.bfloat16)
    result = loss(x, y)
    assert used_fast_path(result) and result.dtype == torch.bfloat16
    assert_close(result.detach().double().numpy(), exact_logits_loss(x.detach().double().numpy(), y.double().numpy()),
                 "bfloat16", ulps=1)
    result.sum().backward()
    assert x.grad.dtype == torch.bfloat16


def test_declines_under_vmap_and_on_meta():
    y = torch.zeros(3)
    assert declined(torch.zeros(3, device="meta"), y.to("meta"), torch.float32)
    batched = torch.func.vmap(lambda row: loss(row, torch.zeros(3), reduction="sum"))(torch.zeros(2, 3))
    torch.testing.assert_close(batched, torch.full((2,), 3 * math.log(2.0)))


def test_large_broadcast_matches_float64_portable():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 3, 40, generator=gen) * 6
    y = torch.rand(2000, 3, 40, generator=gen)
    p = torch.rand(3, 1, generator=gen) * 3
    w = torch.rand(40, generator=gen)
    x.requires_grad_(True)
    result = loss(x, y, w, p, "mean")
    assert used_fast_path(result)
    result.backward()
    xd = x.detach().double().requires_grad_(True)
    import array_api_compat.torch as xp

    from bce_compat import _math

    reference = _math.bce_with_logits(xp, xd, y.double(), w.double(), p.double()).mean()
    reference.backward()
    assert abs(result.item() - reference.item()) <= 1e-6 * reference.item()
    # docs/contract.md §4: within 4 ulp of the larger of the gradient's two terms (they may cancel)
    xs, ys, ws, ps = xd.detach(), y.double(), w.double(), p.double()
    bound = ws * torch.maximum(torch.sigmoid(xs) * (1 + (ps - 1) * ys), ps * ys) / x.numel()
    assert ((x.grad.double() - xd.grad).abs() <= 4 * 2.0**-23 * bound).all()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("upstream", [1.0, -2.5])
def test_gradient_from_the_forward_pass_is_scaled_once(reduction, upstream):
    """mean/sum: the forward pass writes dL/dx; backward scales it (not at all for 1), once."""
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(700, 64, generator=gen) * 5).requires_grad_(True)  # several chunks
    y = torch.rand(700, 64, generator=gen)
    p = torch.rand(64, generator=gen) + 0.5
    result = loss(x, y, p=p, reduction=reduction)
    assert used_fast_path(result) and result.grad_fn.d is not None
    (result * upstream).backward(retain_graph=True)
    first = x.grad.clone()
    (result * upstream).backward()  # the saved gradient was handed over: this pass recomputes
    xd = x.detach().double()
    s = torch.sigmoid(xd)
    expected = (s * (1 + (p.double() - 1) * y.double()) - p.double() * y.double()) * upstream
    expected = expected / x.numel() if reduction == "mean" else expected
    torch.testing.assert_close(first.double(), expected, rtol=1e-6, atol=1e-6 * expected.abs().max().item())
    torch.testing.assert_close(x.grad.double(), 2 * expected, rtol=1e-6, atol=2e-6 * expected.abs().max().item())


def test_docstring_examples_run():
    import doctest

    failures, tried = doctest.testmod(torch_fast, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def _operand_forms(dtype):
    """Every form of weight/pos_weight over an x of shape [2, 4, 3]: each is read in place."""
    gen = torch.Generator().manual_seed(5)
    return {
        "absent": None,
        "number": 1.5,
        "full": torch.rand(2, 4, 3, generator=gen, dtype=dtype) + 0.5,
        "per channel": torch.rand(3, generator=gen, dtype=dtype) + 0.5,
        "per row": torch.rand(2, 4, 1, generator=gen, dtype=dtype) + 0.5,
        "one element": torch.tensor([2.0], dtype=dtype),
        "wider dtype": torch.rand(3, generator=gen, dtype=torch.float64) + 0.5,
        "not a tiling": torch.rand(2, 1, 3, generator=gen, dtype=dtype) + 0.5,
        "transposed": (torch.rand(3, 4, 2, generator=gen, dtype=dtype) + 0.5).permute(2, 1, 0),
        "negative bit": torch.complex(torch.zeros(3, dtype=dtype), -torch.rand(3, generator=gen, dtype=dtype) - 0.5
                                      ).conj().imag,
    }


@pytest.mark.parametrize("form", list(_operand_forms(torch.float32)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_every_operand_form_matches_the_exact_loss_and_gradient(form, dtype, reduction):
    gen = torch.Generator().manual_seed(7)
    x = (torch.randn(2, 4, 3, generator=gen, dtype=dtype) * 6).requires_grad_(True)
    y = torch.rand(2, 4, 3, generator=gen, dtype=dtype)
    operand = _operand_forms(dtype)[form]
    result = loss(x, y, w=operand, p=operand, reduction=reduction)
    (result.sum() if reduction == "none" else result).backward()
    assert used_fast_path(result)
    plain = None if operand is None or isinstance(operand, float) else operand.detach().resolve_neg().double().numpy()
    value = 1.5 if isinstance(operand, float) else plain
    xn, yn = x.detach().double().numpy(), y.double().numpy()
    name = "float32" if dtype == torch.float32 else "float64"
    exact = reduce_exact(exact_logits_loss(xn, yn, value, value), reduction)
    assert_close(result.detach().double().numpy(), exact, name, ulps=4, size=1 if reduction == "none" else x.numel())
    grad, bound = exact_logits_grad(xn, yn, value, value)
    scale = 1 / x.numel() if reduction == "mean" else 1
    assert_close(x.grad.double().numpy(), grad * scale, name, ulps=4, bound=bound * scale)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (7,)])
def test_zero_d_one_element_and_strided(shape):
    x = torch.full(shape, -20.0, requires_grad=True)
    result = loss(x, torch.zeros(shape), reduction="sum")
    result.backward()
    count = math.prod(shape)
    assert result.item() == pytest.approx(2.0611536e-09 * count, rel=1e-6)
    assert x.grad.shape == x.shape and torch.all(x.grad == result.detach() / count)
    strided = torch.full((7, 2), -20.0)[:, 0]
    assert loss(strided, torch.zeros(7), reduction="sum").item() == pytest.approx(7 * 2.0611536e-09, rel=1e-6)


@pytest.mark.parametrize("upstream", [
    torch.tensor(1.0),  # read from memory: the derivative is handed over as it is
    torch.tensor(1.0, dtype=torch.float64),  # the loss is float32: torch casts the upstream first
    torch.tensor(0.75),
    torch.tensor(1.0).expand(()),  # a view, as autograd may pass
    torch.tensor([3.0, 1.0])[1],  # 0-d with a storage offset
])
def test_zero_d_upstream_gradients(upstream):
    xn, yn = np.asarray([0.5, -1.0, 2.0, -20.0], np.float32), np.asarray([1.0, 0.0, 0.5, 0.0], np.float32)
    x = torch.tensor(xn, requires_grad=True)
    result = loss(x, torch.tensor(yn), reduction="mean")
    assert used_fast_path(result)
    (grad,) = torch.autograd.grad(result, x, upstream)
    expected = float(upstream) * exact_logits_grad(xn, yn, None, None)[0] / 4
    assert grad.dtype == torch.float32
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-6)


def test_batched_upstream_gradients():
    """is_grads_batched: the upstream is a vmap-batched 0-d tensor; never read from memory."""
    xn, yn = np.asarray([0.5, -1.0, 2.0], np.float32), np.asarray([1.0, 0.0, 0.5], np.float32)
    x = torch.tensor(xn, requires_grad=True)
    result = loss(x, torch.tensor(yn), reduction="sum")
    (grads,) = torch.autograd.grad(result, x, torch.tensor([1.0, 2.0, -0.5]), is_grads_batched=True)
    exact = exact_logits_grad(xn, yn, None, None)[0]
    np.testing.assert_allclose(grads.numpy(), np.outer([1.0, 2.0, -0.5], exact), rtol=1e-6)


def _upstreams():
    return {"1": lambda d: torch.tensor(1.0, dtype=d), "3": lambda d: torch.tensor(3.0, dtype=d),
            "-0.3": lambda d: torch.tensor(-0.3, dtype=d),
            "-1, memory +1": lambda d: torch._neg_view(torch.tensor(1.0, dtype=d))}  # a negative-bit view


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("kind, options, reduction", [
    ("logits", {}, "mean"), ("logits", {"label_smoothing": 0.1}, "sum"), ("logits", {"ignore_index": -100.0}, "mean"),
    ("probs", {}, "mean"), ("focal", {}, "sum"),
])
def test_half_gradients_handed_over_or_recomputed_have_the_float32_buffers_bits(dtype, kind, options, reduction,
                                                                                  monkeypatch):
    """float16/bfloat16: the forward writes d loss/d x in x's dtype, which an upstream of exactly 1
    takes as it is and any other upstream recomputes in float32. Every upstream, a retained graph's
    second backward and create_graph must give the bits of the float32 buffer rounded after."""
    gen = torch.Generator().manual_seed(7)
    dt = DTYPES[dtype]
    x0 = (torch.randn(64, 65, generator=gen) * 4).to(dt)
    y = torch.rand(64, 65, generator=gen).to(dt)
    if kind == "probs":
        x0 = torch.sigmoid(x0.float()).to(dt)
    if "ignore_index" in options:
        y[::7] = -100.0
    p = (torch.rand(65, generator=gen) * 3).to(dt) if kind == "logits" else None

    def grads(upstream):
        x = x0.clone().requires_grad_(True)
        if kind == "focal":
            result = bce_compat.sigmoid_focal_loss(x, y, reduction=reduction)
        elif kind == "probs":
            result = bce_compat.binary_cross_entropy(x, y, reduction=reduction)
        else:
            result = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=p, reduction=reduction, **options)
        assert used_fast_path(result)
        first = torch.autograd.grad(result, x, upstream, retain_graph=True)[0]
        second = torch.autograd.grad(result, x, upstream, retain_graph=True)[0]  # recomputed after the handover
        (graph,) = torch.autograd.grad(result, x, upstream, create_graph=True)
        return first, second, graph.detach()

    for name, make in _upstreams().items():
        upstream = make(dt)
        ours = grads(upstream)
        with monkeypatch.context() as m:  # the float32 buffer, rounded to x's dtype after the upstream
            m.setattr(torch_fast, "_forward_derivative_buffer", lambda x, problem: torch_fast._derivative_buffer(x))
            wide = grads(upstream)
        for got, want in zip(ours, wide):
            assert got.dtype == dt
            torch.testing.assert_close(got, want, rtol=0, atol=0, msg=f"upstream {name}")
        if kind == "logits" and not options:  # and the pass's own float32 derivative, by value
            d = torch.empty(x0.shape)
            cpu_pass.run("logits", x0, y, None, p, reduction=reduction, grad_out=d, result_dtype=dtype)
            expected = (d * float(upstream)).to(dt)
            torch.testing.assert_close(ours[0], expected, rtol=0, atol=0, msg=f"upstream {name}")
