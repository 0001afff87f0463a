"""The Triton kernels (backends/torch_triton.py), run on CPU tensors by Triton's interpreter.

Without CUDA, ``TRITON_INTERPRET=1`` is set before the module is imported. The interpreter has
no libdevice, so exp/log1p there are ``tl.exp`` and Goldberg's identity on ``tl.log`` (NumPy
float32, a few ulp), hence 8 ulp below for float32; on a GPU the kernels use libdevice. Small
sizes only.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

from _reference import assert_close, exact_logits_grad, exact_logits_loss, reduce_exact

if "tensorflow" in sys.modules:
    pytest.skip(
        "importing triton after tensorflow aborts the process; test_fast_triton.py runs this file in a subprocess",
        allow_module_level=True,
    )
torch = pytest.importorskip("torch")
pytest.importorskip("triton")
if "bce_compat.backends.torch_triton" not in sys.modules and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # with CUDA, the compiled kernels run (unless it is set already)
tt = pytest.importorskip("bce_compat.backends.torch_triton")
if not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"):
    pytest.skip("torch_triton was imported without TRITON_INTERPRET=1 and there is no GPU", allow_module_level=True)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the interpreter's NumPy on inf/NaN lanes

X = [-math.inf, -1e30, -100.0, -20.0, -3.46522, -1e-4, 0.0, 1e-4, 1.5, 20.0, 100.0, 1e30, math.inf]
Y, P, W = [0.0, 0.3, 1.0], [2.0, 0.5, 0.0], [0.5, 1.0, 2.0]
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
ULPS = {"float16": 1, "bfloat16": 1, "float32": 8}


def portable(x, y, w, p, reduction, out_dtype):
    """The portable path: the gradients towards target, weight and pos_weight come from it."""
    from bce_compat._plan import plan_for
    from bce_compat._validate import ArgNames
    from bce_compat.contract import Problem

    plan = plan_for("f", ArgNames(), x, y, w, p)
    return plan.portable(Problem("logits", x, y, w, p, reduction, out_dtype))


def run(x, y, w, p, reduction, out_dtype=None):
    return tt.bce_with_logits(x, y, w, p, reduction, out_dtype or x.dtype, portable, check=False)


def edge_grid(dtype):
    x = np.repeat(np.asarray(X)[:, None], 3, axis=1)
    y = np.broadcast_to(np.asarray(Y), x.shape)
    arrays = [torch.tensor(a, dtype=DTYPES[dtype], device=DEVICE) for a in (x, y, W, P)]
    return arrays, [a.double().cpu().numpy() for a in arrays]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_edge_values_and_gradients(dtype, reduction):
    (x, y, w, p), (xn, yn, wn, pn) = edge_grid(dtype)
    x.requires_grad_(True)
    result = run(x, y, w, p, reduction)
    assert type(result.grad_fn).__name__ == "_TritonLossBackward"
    assert result.dtype == x.dtype and result.device == x.device
    assert tuple(result.shape) == (tuple(x.shape) if reduction == "none" else ())
    exact = reduce_exact(exact_logits_loss(xn, yn, wn, pn), reduction)
    size = 1 if reduction == "none" else x.numel()
    assert_close(_interpreter_bf16(result, exact, dtype), exact, dtype, ulps=ULPS[dtype], size=size)

    (result.sum() if reduction == "none" else result).backward()
    grad, bound = exact_logits_grad(xn, yn, wn, pn)
    if reduction == "mean":
        grad, bound = grad / x.numel(), bound / x.numel()
    assert x.grad.dtype == x.dtype
    assert_close(_interpreter_bf16(x.grad, grad, dtype), grad, dtype, ulps=ULPS[dtype], bound=bound)


def _interpreter_bf16(result, exact, dtype):
    """The result as float64 NumPy; under the interpreter, bfloat16 subnormals are taken as exact.

    (Triton 3.9's interpreter rounds float32 -> bfloat16 wrongly below 2**-126, e.g. 1.9e-44 to
    7.3e-39; the GPU's cvt.rn.bf16.f32 does not. Only the edge row x = -100 lands there.)
    """
    got = result.detach().double().cpu().numpy()
    if dtype == "bfloat16" and DEVICE == "cpu":
        tiny = np.abs(np.asarray(exact)) < 2.0**-126
        got = np.where(tiny, exact, got)
    return got


def _grad_bound(x, y, w, p):
    """|w| * max(sigmoid(x) * (1 + (p - 1) y), p y): docs/contract.md §4's scale for the gradient's error."""
    p = torch.ones((), dtype=torch.float64) if p is None else p.double()
    w = torch.ones((), dtype=torch.float64) if w is None else w.double()
    first = torch.sigmoid(x.double()) * (1 + (p - 1) * y.double())
    return (w.abs() * torch.maximum(first.abs(), (p * y.double()).abs())).cpu().numpy()


def test_zero_coefficients_nan_and_minus_20():
    x = torch.tensor([math.inf, math.inf, -math.inf, math.nan, -20.0, 0.0], device=DEVICE, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, math.nan], device=DEVICE)
    result = run(x, y, None, None, "none")
    got = result.detach().cpu().numpy()
    np.testing.assert_array_equal(got[:3], [0.0, math.inf, 0.0])
    assert np.isnan(got[3]) and np.isnan(got[5])
    assert got[4] == pytest.approx(2.0611537e-09, rel=1e-6)
    result.sum().backward()
    g = x.grad.cpu().numpy()
    np.testing.assert_array_equal(g[:3], [0.0, 1.0, 0.0])
    assert np.isnan(g[3]) and np.isnan(g[5]) and g[4] == pytest.approx(2.0611537e-09, rel=1e-6)


def test_nan_input_gives_nan_even_where_both_coefficients_are_zero():
    """x = NaN, y = 1, pos_weight = 0: both coefficients (p*y and 1-y) are 0, and NaN in still gives
    NaN out (docs/contract.md §3), loss and gradient, as the portable path does."""
    x = torch.tensor([math.nan, math.nan, math.nan, math.inf], device=DEVICE, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.5, 1.0], device=DEVICE)
    p = torch.tensor([0.0, 0.0, 0.0, 0.0], device=DEVICE)
    result = run(x, y, None, p, "none")
    got = result.detach().cpu().numpy()
    assert np.isnan(got[:3]).all() and got[3] == 0.0, got
    result.sum().backward()
    g = x.grad.cpu().numpy()
    assert np.isnan(g[:3]).all() and g[3] == 0.0, g


@pytest.mark.parametrize(
    "shape, w_shape, p_shape",
    [
        ((40, 64), None, (64,)),  # the issue's [N/64, 64] with pos_weight [64]
        ((4, 3, 9, 7), (3, 1, 1), (3, 1, 1)),  # images
        ((5, 6, 7), (5, 1, 7), (6, 1)),  # two index terms
        ((2, 3, 4, 5), (2, 1, 4, 1), (3, 1, 5)),  # three terms for pos_weight: materialised once
        ((1500,), (1,), ()),  # several blocks, size-1 and 0-d operands
    ],
)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_broadcast_weights_match_float64_reference(shape, w_shape, p_shape, reduction):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=gen) * 6).to(DEVICE).requires_grad_(True)
    y = torch.rand(shape, generator=gen).to(DEVICE)
    w = None if w_shape is None else torch.rand(w_shape, generator=gen).to(DEVICE)
    p = (torch.rand(p_shape, generator=gen) * 3).to(DEVICE)
    result = run(x, y, w, p, reduction)
    result.sum().backward() if reduction == "none" else result.backward()

    xd = x.detach().double().requires_grad_(True)
    wd = None if w is None else w.double()
    reference = torch.nn.functional.binary_cross_entropy_with_logits(xd, y.double(), wd, pos_weight=p.double(), reduction=reduction)
    reference.sum().backward()
    size = 1 if reduction == "none" else x.numel()
    assert_close(result.detach().double().cpu().numpy(), reference.detach().cpu().numpy(), "float32", ulps=8, size=size)
    bound = np.broadcast_to(_grad_bound(x.detach(), y, w, p), x.shape) / (x.numel() if reduction == "mean" else 1)
    assert_close(x.grad.double().cpu().numpy(), xd.grad.cpu().numpy(), "float32", ulps=8, bound=bound)


def test_mixed_dtypes_promote_and_numbers():
    x = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float16, device=DEVICE)
    y = torch.tensor([0.0, 1.0, 0.25], dtype=torch.float32, device=DEVICE)
    result = run(x, y, 0.5, 2.0, "none", torch.float32)
    assert result.dtype == torch.float32
    expected = exact_logits_loss(x.double().cpu().numpy(), y.double().cpu().numpy(), 0.5, 2.0)
    assert_close(result.cpu().numpy(), expected, "float32", ulps=8)


def test_non_contiguous_input_and_upstream_gradient():
    x = (torch.randn(16, 24) * 4).to(DEVICE).t().requires_grad_(True)
    y = torch.rand(24, 16, device=DEVICE)
    upstream = torch.randn(24, 16, device=DEVICE)
    run(x, y, None, None, "none").backward(upstream)
    xd = x.detach().double().requires_grad_(True)
    torch.nn.functional.binary_cross_entropy_with_logits(xd, y.double(), reduction="none").backward(upstream.double())
    bound = _grad_bound(x.detach(), y, None, None) * upstream.abs().double().cpu().numpy()
    assert_close(x.grad.double().cpu().numpy(), xd.grad.cpu().numpy(), "float32", ulps=8, bound=bound)


def test_broadcast_terms():
    assert tt.broadcast_terms((8, 4, 64), (0, 0, 1)) == [(1, 64, 1)]
    assert tt.broadcast_terms((2, 3, 5, 5), (0, 1, 0, 0)) == [(25, 3, 1)]
    assert tt.broadcast_terms((5, 6, 7), (7, 0, 1)) == [(1, 7, 1), (42, 5, 7)]
    assert tt.broadcast_terms((5, 6, 7), (42, 7, 1)) == [(1, 210, 1)]
    assert tt.broadcast_terms((3, 1, 4), (0, 0, 0)) == []


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("upstream", [1.0, -2.5])
def test_gradient_written_in_forward_is_scaled_once(reduction, upstream):
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(30, 64, generator=gen) * 5).to(DEVICE).requires_grad_(True)
    y = torch.rand(30, 64, generator=gen).to(DEVICE)
    p = torch.rand(64, generator=gen).to(DEVICE) + 0.5
    result = run(x, y, None, p, reduction)
    assert result.grad_fn.grad_x is not None  # the fused forward wrote the gradient
    (result * upstream).backward(retain_graph=True)
    first = x.grad.clone()
    (result * upstream).backward()  # a second pass recomputes (the saved gradient was handed over)
    xd = x.detach().double().requires_grad_(True)
    reference = torch.nn.functional.binary_cross_entropy_with_logits(xd, y.double(), pos_weight=p.double(), reduction=reduction)
    (reference * upstream).backward()
    bound = _grad_bound(x.detach(), y, None, p) * abs(upstream) / (x.numel() if reduction == "mean" else 1)
    assert_close(first.double().cpu().numpy(), xd.grad.cpu().numpy(), "float32", ulps=8, bound=bound)
    assert_close(x.grad.double().cpu().numpy(), 2 * xd.grad.cpu().numpy(), "float32", ulps=8, bound=2 * bound)


def test_docstring_examples_run():
    import doctest

    failures, tried = doctest.testmod(tt, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_batched_upstream_and_gradients_for_every_argument(reduction):
    """is_grads_batched (a legacy-vmap upstream) and target/weight/pos_weight gradients, as torch's CPU engine."""
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(4, 3, generator=gen) * 3).to(DEVICE).requires_grad_(True)
    y = torch.rand(4, 3, generator=gen).to(DEVICE).requires_grad_(True)
    w = (torch.rand(3, generator=gen) + 0.5).to(DEVICE).requires_grad_(True)
    p = (torch.rand(3, generator=gen) + 0.5).to(DEVICE).requires_grad_(True)
    out = tt.bce_with_logits(x, y, w, p, reduction, torch.float32, portable, check=False)
    reference = torch.nn.functional.softplus
    ref = w * (p * y * reference(-x) + (1 - y) * reference(x))
    ref = ref if reduction == "none" else (ref.mean() if reduction == "mean" else ref.sum())
    eye = torch.eye(out.numel(), device=DEVICE).reshape(out.numel(), *out.shape)
    (got,) = torch.autograd.grad(out, x, eye, is_grads_batched=True, retain_graph=True)
    (expected,) = torch.autograd.grad(ref, x, eye, is_grads_batched=True, retain_graph=True)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    upstream = torch.ones_like(out)
    for got, expected in zip(torch.autograd.grad(out, (y, w, p), upstream), torch.autograd.grad(ref, (y, w, p), upstream)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
