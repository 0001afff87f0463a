"""The loss inside torch's compiled and transformed graphs, on every path (issue 11.3, 12.1-2).

Each mode is checked on float32 and float64, values and gradients, against torch's own op on
inputs where that op is exact (moderate logits). The CPU engine serves plain tensors (with or
without gradients); the portable path serves what the engine declines (compile tracing,
``torch.func`` transforms): both are covered here.
"""

from __future__ import annotations

import logging
import math
import warnings

import pytest

torch = pytest.importorskip("torch")

import bce_compat  # noqa: E402
from bce_compat.backends import cpu_pass  # noqa: E402

F = torch.nn.functional
DTYPES = [torch.float32, torch.float64]
REDUCTIONS = ["none", "mean", "sum"]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}


def data(dtype, shape=(6, 4), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 3).to(dtype)
    y = torch.rand(shape, generator=gen).to(dtype)
    w = (torch.rand(shape[-1], generator=gen) + 0.5).to(dtype)
    p = (torch.rand(shape[-1], generator=gen) * 2 + 0.25).to(dtype)
    return x, y, w, p


def ours(x, y, w, p, reduction):
    return bce_compat.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p, reduction=reduction)


def native(x, y, w, p, reduction):
    return F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p, reduction=reduction)


def fast_path(result) -> bool:
    return type(result.grad_fn).__name__ == "_CPULossBackward"


# --- torch.compile ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_compile_fullgraph_no_graph_break_no_warning(dtype, caplog):
    torch._dynamo.reset()
    x, y, w, p = data(dtype)
    x.requires_grad_(True)

    def step(x, y, w, p):
        return ours(x, y, w, p, "mean")

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")  # fullgraph: a break raises
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        value = compiled(x, y, w, p)
        (grad,) = torch.autograd.grad(value, x)
    ours_said = [str(m.message) for m in caught if "bce_compat" in str(m.filename) + str(m.message)]
    ours_said += [r.getMessage() for r in caplog.records if "bce_compat" in r.getMessage()]
    assert ours_said == []
    xr = x.detach().requires_grad_(True)
    expected = native(xr, y, w, p, "mean")
    (expected_grad,) = torch.autograd.grad(expected, xr)
    torch.testing.assert_close(value, expected, **tol(dtype))
    torch.testing.assert_close(grad, expected_grad, **tol(dtype))


@pytest.mark.parametrize(
    "x_dtype, other_dtype",
    [(torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16), (torch.float16, torch.bfloat16),
     (torch.bfloat16, torch.float32), (torch.float32, torch.float64)],
    ids=str,
)
def test_compile_fullgraph_half_precision_and_mixed_dtypes(x_dtype, other_dtype):
    """Mixed-precision training feeds the loss float16/bfloat16 under torch.compile: the result
    dtype must be promoted by ops Dynamo traces (array-api-compat's result_type calls
    torch.result_type on tensors it makes for float16, a graph break that fullgraph raises).
    The compiled call gives the eager call's dtype, value and gradient bits."""
    torch._dynamo.reset()
    x, y, w, p = data(torch.float32)
    x = x.to(x_dtype).requires_grad_(True)
    y, w, p = y.to(other_dtype), w.to(x_dtype), p.to(other_dtype)
    compiled = torch.compile(lambda *a: ours(*a, "mean"), fullgraph=True, backend="aot_eager")
    value = compiled(x, y, w, p)
    (grad,) = torch.autograd.grad(value, x)
    expected = ours(x, y, w, p, "mean")
    (expected_grad,) = torch.autograd.grad(expected, x)
    assert value.dtype == expected.dtype == torch.promote_types(x_dtype, other_dtype)
    torch.testing.assert_close(value, expected, rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)


def test_compile_fullgraph_after_calls_on_other_libraries():
    """The per-signature plan memo holds other libraries' dtypes after their calls; Dynamo cannot
    hash some (TF's C-level DType: "Untraceable C tp_hash"), so a compiled torch call must not
    trace the memo (it broke the graph in the all-backends test run)."""
    from bce_compat.conformance import frameworks

    torch._dynamo.reset()
    for bench in frameworks.available().values():
        if "float32" in bench.dtypes:
            bce_compat.binary_cross_entropy_with_logits(bench.asarray([0.5], "float32"), bench.asarray([1.0], "float32"))
    x, y, w, p = data(torch.float32)
    compiled = torch.compile(lambda *a: ours(*a, "mean"), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, y, w, p), native(x, y, w, p, "mean"), **tol(torch.float32))


@pytest.mark.slow  # inductor compiles C++: about a minute on a small machine
def test_compile_with_inductor_matches_eager():
    torch._dynamo.reset()
    x, y, w, p = data(torch.float32)
    compiled = torch.compile(lambda *a: ours(*a, "none"), fullgraph=True)
    torch.testing.assert_close(compiled(x, y, w, p), native(x, y, w, p, "none"), **tol(torch.float32))


# --- torch.func ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_func_vmap_grad_jacrev(dtype):
    x, y, w, p = data(dtype)
    batched = torch.func.vmap(lambda xr, yr: ours(xr, yr, w, p, "sum"))(x, y)
    torch.testing.assert_close(batched, native(x, y, w.expand_as(x), p.expand_as(x), "none").sum(-1), **tol(dtype))

    grad = torch.func.grad(lambda xx: ours(xx, y, w, p, "mean"))(x)
    expected = torch.func.grad(lambda xx: native(xx, y, w, p, "mean"))(x)
    torch.testing.assert_close(grad, expected, **tol(dtype))

    jac = torch.func.jacrev(lambda xx: ours(xx, y[0], w, p, "none"))(x[0])
    expected = torch.func.jacrev(lambda xx: native(xx, y[0], w, p, "none"))(x[0])
    torch.testing.assert_close(jac, expected, **tol(dtype))

    per_sample = torch.func.vmap(torch.func.grad(lambda xr, yr: ours(xr, yr, w, p, "mean")))(x, y)
    torch.testing.assert_close(per_sample, torch.func.vmap(torch.func.grad(lambda xr, yr: native(xr, yr, w, p, "mean")))(x, y), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_func_functional_call(dtype):
    x, y, w, p = data(dtype)
    model = torch.nn.Linear(4, 4).to(dtype)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}

    def loss_of(params, loss_fn):
        return loss_fn(torch.func.functional_call(model, params, (x,)), y, w, p, "mean")

    grads = torch.func.grad(loss_of)(params, ours)
    expected = torch.func.grad(loss_of)(params, native)
    for name in params:
        torch.testing.assert_close(grads[name], expected[name], **tol(dtype))


# --- batched gradients, double backward ---------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_is_grads_batched_on_the_fast_path(dtype, reduction):
    x, y, w, p = data(dtype)
    x.requires_grad_(True)
    out = ours(x, y, w, p, reduction)
    assert fast_path(out)
    flat = out.reshape(-1)
    eye = torch.eye(flat.numel(), dtype=dtype).reshape(flat.numel(), *out.shape)
    (got,) = torch.autograd.grad(out, x, eye, is_grads_batched=True)
    reference = native(x, y, w, p, reduction)
    (expected,) = torch.autograd.grad(reference, x, eye, is_grads_batched=True)
    torch.testing.assert_close(got, expected, **tol(dtype))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_and_gradgradcheck_on_the_fast_path(reduction):
    """float64, gradients to every argument (torch's own op gives none for weight/pos_weight)."""
    x, y, w, p = data(torch.float64, shape=(3, 4))
    y = y.clamp(0.05, 0.95)
    args = tuple(a.requires_grad_(True) for a in (x, y, w, p))
    assert fast_path(ours(*args, reduction))
    fn = lambda *a: ours(*a, reduction)  # noqa: E731
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)
    assert torch.autograd.gradcheck(fn, args, check_batched_grad=True)


def test_gradgradcheck_on_the_portable_path():
    x, y, w, p = data(torch.float64, shape=(3, 4))
    args = tuple(a.requires_grad_(True) for a in (x, y, w, p))
    fn = torch.func.vmap(lambda *a: ours(*a, "sum"), in_dims=(0, 0, None, None))  # functorch-wrapped: the engine declines
    assert torch.autograd.gradgradcheck(fn, args)


@pytest.mark.parametrize("dtype", DTYPES)
def test_double_backward_matches_native(dtype):
    x, y, w, p = data(dtype)
    x.requires_grad_(True)
    out = ours(x, y, w, p, "mean")
    assert fast_path(out)
    (g,) = torch.autograd.grad(out, x, create_graph=True)
    (h,) = torch.autograd.grad((g * g).sum(), x)
    xr = x.detach().requires_grad_(True)
    (gr,) = torch.autograd.grad(native(xr, y, w, p, "mean"), xr, create_graph=True)
    (hr,) = torch.autograd.grad((gr * gr).sum(), xr)
    torch.testing.assert_close(g, gr, **tol(dtype))
    torch.testing.assert_close(h, hr, **tol(dtype))


# --- determinism and layouts (issue 12.1, 12.2) -------------------------------------------------

SIZES = [1, 7, cpu_pass.BLOCK + 5, cpu_pass.PARALLEL_MIN * 2 + 3]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_same_bits_whether_or_not_gradients_are_wanted(dtype, size, reduction):
    gen = torch.Generator().manual_seed(size)
    x = (torch.randn(size, generator=gen) * 4).to(dtype)
    y = torch.rand(size, generator=gen).to(dtype)
    w, p = torch.rand(size, generator=gen).to(dtype), torch.rand(1, generator=gen).to(dtype) + 0.5
    plain = ours(x, y, w, p, reduction)
    for wanted in range(4):
        args = [a.clone() for a in (x, y, w, p)]
        args[wanted].requires_grad_(True)
        with_grad = ours(*args, reduction)
        assert fast_path(with_grad)
        assert torch.equal(with_grad.detach(), plain), f"argument {wanted} requiring grad changed the bits"
        with torch.no_grad():
            assert torch.equal(ours(*args, reduction), plain)
    assert torch.equal(ours(x, y, w, p, reduction), plain)  # run to run


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ["0-d", "one", "empty", "transposed", "strided", "broadcast"])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_layouts_match_native(dtype, reduction, layout, requires_grad):
    base = (torch.randn(40, 30, generator=torch.Generator().manual_seed(3)) * 3).to(dtype)
    target = torch.rand(40, 30, generator=torch.Generator().manual_seed(4)).to(dtype)
    x, y = {
        "0-d": (base[0, 0], target[0, 0]),
        "one": (base[:1, :1], target[:1, :1]),
        "empty": (base[:0], target[:0]),
        "transposed": (base.T, target.T),
        "strided": (base[::3, 1::2], target[::3, 1::2]),
        "broadcast": (base[:1].expand(40, 30), target),
    }[layout]
    x = x.detach().requires_grad_(requires_grad) if layout != "broadcast" else base[:1].clone().requires_grad_(requires_grad).expand(40, 30)
    got = ours(x, y, None, 2.0 if layout != "0-d" else None, reduction)
    expected = native(x, y, None, None if layout == "0-d" else torch.tensor(2.0, dtype=dtype), reduction)
    assert got.shape == expected.shape and got.dtype == dtype
    torch.testing.assert_close(got, expected, equal_nan=True, **tol(dtype))
    if requires_grad and x.numel():
        (g,) = torch.autograd.grad(got.sum(), x)
        (ge,) = torch.autograd.grad(expected.sum(), x)
        torch.testing.assert_close(g, ge, **tol(dtype))
    if reduction == "mean" and x.numel() == 0:
        assert math.isnan(got.item())


# --- saved tensors: hooks and activation checkpointing ---------------------------------------------


def test_saved_tensor_hooks_see_every_tensor_operand():
    """The engine's Function keeps its tensors through ``save_for_backward`` only (not on ctx
    behind torch's back), so ``saved_tensors_hooks`` (offloading, activation checkpointing) pack
    each of them; and the gradients towards every operand are right when they are unpacked."""
    x, y, w, p = (t.requires_grad_(True) for t in data(torch.float64))
    packed = []

    def pack(t):
        packed.append(t)
        return t.clone()  # the graph then holds only what the hooks hand back

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = ours(x, y, w, p, "mean")
    assert fast_path(loss)
    assert {id(t) for t in (x, y, w, p)} <= {id(t) for t in packed}
    expected = ours(x, y, w, p, "mean")  # no hooks
    for got, want in zip(torch.autograd.grad(loss, (x, y, w, p)), torch.autograd.grad(expected, (x, y, w, p))):
        assert torch.equal(got, want)


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_activation_checkpointing(use_reentrant):
    """A loss inside ``torch.utils.checkpoint`` (recomputed in the backward) gives the gradients
    of the loss computed without it, bit for bit."""
    from torch.utils.checkpoint import checkpoint

    x, y, w, p = data(torch.float32)
    layer = torch.nn.Linear(4, 4)

    def block(inputs):
        return ours(layer(inputs), y, w, p, "mean")

    def gradients(run):  # .backward(): the reentrant checkpoint refuses autograd.grad
        inputs = x.clone().requires_grad_(True)
        layer.zero_grad()
        loss = run(inputs)
        loss.backward()
        return loss, inputs.grad, layer.weight.grad.clone()

    checkpointed = gradients(lambda inputs: checkpoint(block, inputs, use_reentrant=use_reentrant))
    plain = gradients(block)
    for a, b in zip(checkpointed, plain):
        assert torch.equal(a, b)


# --- torch.autocast (mixed precision) --------------------------------------------------------------


def _autocast_data(dtype):
    x, y, w, p = data(torch.float32)
    return x.to(dtype).requires_grad_(True), y.to(dtype), w.to(dtype), p.to(dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("entry", ["logits", "probs"])
def test_autocast_computes_in_float32_as_torch_does(dtype, entry):
    """Under ``torch.autocast`` torch's BCE ops cast half-precision inputs to float32 and return
    float32; ours gives the same dtype, the value within float32's rounding, and x's gradient in
    x's dtype, as torch's."""
    x, y, w, p = _autocast_data(dtype)

    def both(x):
        if entry == "logits":
            return ours(x, y, w, p, "mean"), native(x, y, w, p, "mean")
        q = torch.sigmoid(x)
        return bce_compat.binary_cross_entropy(q, y, weight=w), F.binary_cross_entropy(q, y, weight=w)

    with torch.autocast("cpu", dtype=dtype):
        got, want = both(x)
        assert got.dtype == want.dtype == torch.float32
        torch.testing.assert_close(got, want, **tol(torch.float32))
        (grad,) = torch.autograd.grad(got, x, retain_graph=True)  # probs: one sigmoid for both
        (expected_grad,) = torch.autograd.grad(want, x)
    assert grad.dtype == expected_grad.dtype == dtype
    torch.testing.assert_close(grad, expected_grad, rtol=2**-7, atol=1e-5)
    outside, _ = both(x)  # autocast off: the inputs' own dtype (docs/contract.md §3)
    assert outside.dtype == dtype


def test_autocast_leaves_float32_and_float64_alone_and_traces():
    x, y, w, p = data(torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ours(x, y, w, p, "mean").dtype == torch.float64
        assert ours(x.float(), y.float(), w.float(), p.float(), "mean").dtype == torch.float32
        torch._dynamo.reset()
        compiled = torch.compile(lambda *a: ours(*a, "none"), fullgraph=True, backend="aot_eager")
        half = [t.to(torch.bfloat16) for t in (x, y, w, p)]
        got = compiled(*half)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, native(*half, "none"), **tol(torch.float32))


def test_autocast_query_on_torch_before_2_4(monkeypatch):
    """torch 2.3 (our oldest) has no device argument to ``is_autocast_enabled``; its CPU autocast
    is ``is_autocast_cpu_enabled()``. Simulated here: the same loss dtypes as on this torch."""
    from bce_compat.backends import torch as adapter

    def old_query(*args):
        if args:
            raise TypeError("is_autocast_enabled() takes 0 positional arguments but 1 was given")
        return False  # CUDA autocast off

    monkeypatch.setattr(torch, "is_autocast_enabled", old_query)
    x = torch.zeros(3, dtype=torch.bfloat16)
    monkeypatch.setattr(torch, "is_autocast_cpu_enabled", lambda: False, raising=False)
    assert adapter.autocast(x, x, None, None) is None
    monkeypatch.setattr(torch, "is_autocast_cpu_enabled", lambda: True, raising=False)
    widened = adapter.autocast(x, x, None, None)
    assert [a.dtype if a is not None else None for a in widened] == [torch.float32, torch.float32, None, None]
