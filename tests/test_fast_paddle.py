"""The Paddle engine (backends/paddle_fast.py): values and gradients against the exact loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _reference import assert_close, exact_logits_grad, exact_logits_loss, reduce_exact, rounded_once

paddle = pytest.importorskip("paddle")

import bce_compat  # noqa: E402
from bce_compat._registry import load_backend  # noqa: E402
from bce_compat.backends import paddle_fast  # noqa: E402

X = [-math.inf, -1e30, -100.0, -20.0, -3.46522, -1e-4, 0.0, 1e-4, 1.5, 20.0, 100.0, 1e30, math.inf]
Y, P, W = [0.0, 0.3, 1.0], [2.0, 0.5, 0.0], [0.5, 1.0, 2.0]


def edge_grid(dtype):
    x = np.repeat(np.asarray(X, np.float64)[:, None], 3, axis=1)
    y = np.broadcast_to(np.asarray(Y), x.shape)
    arrays = [paddle.to_tensor(np.asarray(a), dtype=dtype) for a in (x, y, W, P)]
    return arrays, [a.astype("float64").numpy() for a in arrays]



def test_registered_for_paddle():
    assert load_backend("paddle").engines == (paddle_fast.ENGINE,)


def test_place_check_is_skipped_only_on_a_cpu_only_build(monkeypatch):
    """The engine reads each tensor's place only where Paddle was built for another device too."""
    from bce_compat.contract import Declined, Problem

    device = paddle.device
    assert paddle_fast._CPU_ONLY == (not device.is_compiled_with_cuda() and not device.is_compiled_with_xpu()
                                     and not device.get_all_custom_device_type())
    x, y = paddle.to_tensor([[0.5, -20.0]]), paddle.to_tensor([[1.0, 0.0]])
    results = []
    for cpu_only in (False, True):
        monkeypatch.setattr(paddle_fast, "_CPU_ONLY", cpu_only)
        results.append(paddle_fast.ENGINE(Problem("logits", x, y, None, None, "none", x.dtype)))
    assert not any(isinstance(r, Declined) for r in results)
    np.testing.assert_array_equal(results[0].numpy(), results[1].numpy())


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_values_match_exact(dtype, reduction, monkeypatch):
    calls = []
    monkeypatch.setattr(paddle_fast, "_forward", _spy(paddle_fast._forward, calls))
    (x, y, w, p), (xn, yn, wn, pn) = edge_grid(dtype)
    result = bce_compat.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p, reduction=reduction)
    assert calls, "the fast path did not run"
    assert result.dtype == x.dtype and tuple(result.shape) == (tuple(x.shape) if reduction == "none" else ())
    exact = reduce_exact(exact_logits_loss(xn, yn, wn, pn), reduction)
    size = 1 if reduction == "none" else x.size
    assert_close(result.astype("float64").numpy(), exact, dtype, ulps=1 if dtype == "float16" else 4, size=size)


def _spy(fn, calls):
    def spy(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return spy


def test_without_gradients_keeps_0d():
    x = paddle.to_tensor([-20.0, 0.0])
    result = bce_compat.binary_cross_entropy_with_logits(x, paddle.zeros([2]), reduction="mean")
    assert tuple(result.shape) == () and result.stop_gradient
    assert float(result) == pytest.approx((2.0611537e-09 + math.log(2.0)) / 2, rel=1e-7)


def test_runs_when_a_gradient_is_wanted_with_the_same_bits(monkeypatch):
    """Issue 12.2: the value must not depend on whether a gradient is wanted."""
    calls = []
    monkeypatch.setattr(paddle_fast, "_forward", _spy(paddle_fast._forward, calls))
    xn = np.asarray([0.5, -1.0, 2.0, -20.0, 1e30], np.float32)
    yn = np.asarray([1.0, 0.0, 0.5, 0.0, 1.0], np.float32)
    for reduction in ("none", "mean", "sum"):
        x = paddle.to_tensor(xn, stop_gradient=False)
        with_grad = bce_compat.binary_cross_entropy_with_logits(x, paddle.to_tensor(yn), reduction=reduction)
        without = bce_compat.binary_cross_entropy_with_logits(paddle.to_tensor(xn), paddle.to_tensor(yn), reduction=reduction)
        assert not with_grad.stop_gradient and without.stop_gradient
        assert with_grad.numpy().tobytes() == without.numpy().tobytes()
    assert len(calls) == 6, "the fast path did not run for every call"


def test_gradient_matches_exact_and_double_backward_works():
    x = paddle.to_tensor([0.5, -1.0, 2.0, 0.0, -30.0], dtype="float64", stop_gradient=False)
    y = paddle.to_tensor([1.0, 0.0, 0.5, 0.0, 1.0], dtype="float64")
    loss = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=2.0, reduction="sum")
    (grad,) = paddle.grad(loss, [x], create_graph=True)
    exact, _ = exact_logits_grad(x.numpy(), y.numpy(), None, 2.0)
    assert_close(grad.numpy(), exact, "float64")
    (second,) = paddle.grad(grad.sum(), [x])
    s = 1 / (1 + np.exp(-x.numpy()))
    # d2/dx2 of w*[p*y*softplus(-x) + (1-y)*softplus(x)] = w*(p*y + 1 - y)*s*(1-s)
    np.testing.assert_allclose(second.numpy(), (2.0 * y.numpy() + 1 - y.numpy()) * s * (1 - s), rtol=1e-12)


@pytest.mark.parametrize("wrt", ["logit", "label", "pos_weight", "weight", "all"])
def test_partial_gradients_towards_any_argument(wrt):
    """paddle.grad towards a subset of the arguments (a PyLayer with two differentiable inputs fails there)."""
    xn, yn = np.asarray([[0.5, -1.0], [2.0, 0.0]]), np.asarray([[1.0, 0.0], [0.3, 1.0]])
    wn, pn = np.asarray([1.5, 0.5]), np.asarray([2.0, 3.0])
    args = {k: paddle.to_tensor(v, stop_gradient=False) for k, v in
            {"logit": xn, "label": yn, "weight": wn, "pos_weight": pn}.items()}
    loss = bce_compat.binary_cross_entropy_with_logits(
        args["logit"], args["label"], weight=args["weight"], pos_weight=args["pos_weight"], reduction="mean"
    )
    names = list(args) if wrt == "all" else [wrt]
    grads = dict(zip(names, paddle.grad(loss, [args[n] for n in names])))
    sp_neg, sp_pos = exact_logits_loss(xn, np.ones_like(xn)), exact_logits_loss(xn, np.zeros_like(xn))
    expected = {  # each over the 4 elements of the mean
        "logit": exact_logits_grad(xn, yn, wn, pn)[0] / 4,
        "label": wn * (pn * sp_neg - sp_pos) / 4,
        "weight": ((pn * yn * sp_neg + (1 - yn) * sp_pos) / 4).sum(axis=0),
        "pos_weight": (wn * yn * sp_neg / 4).sum(axis=0),
    }
    for name, grad in grads.items():
        assert tuple(grad.shape) == tuple(args[name].shape)
        np.testing.assert_allclose(grad.numpy(), expected[name], rtol=1e-13, atol=1e-300)


def test_label_gradient_without_logit_gradient():
    x = paddle.to_tensor([0.5, -1.0])
    y = paddle.to_tensor([1.0, 0.0], stop_gradient=False)
    result = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="sum")
    result.backward()
    np.testing.assert_allclose(y.grad.numpy(), -x.numpy(), rtol=1e-6)  # d/dy = softplus(-x) - softplus(x) = -x


def test_inputs_not_modified_and_upstream_gradient():
    x = paddle.to_tensor([-3.0, 0.0, 2.0], stop_gradient=False)
    y = paddle.to_tensor([0.0, 0.3, 1.0])
    before = (x.numpy().copy(), y.numpy().copy())
    result = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=2.0, reduction="none")
    upstream = paddle.to_tensor([1.0, -2.0, 0.5])
    (result * upstream).sum().backward()
    grad, _ = exact_logits_grad(before[0], before[1], None, 2.0)
    np.testing.assert_allclose(x.grad.numpy(), grad * upstream.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(x.numpy(), before[0])
    np.testing.assert_array_equal(y.numpy(), before[1])


def test_docstring_examples_run():
    import doctest

    failures, tried = doctest.testmod(paddle_fast, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_float16_with_every_gradient_keeps_the_bits():
    """float16 on CPU: Paddle has no float16 subtract there; the zero-valued term runs in float32."""
    xn, yn = np.asarray([0.5, -3.0, 8.0], np.float16), np.asarray([1.0, 0.25, 0.0], np.float16)
    args = [paddle.to_tensor(a, stop_gradient=False) for a in (xn, yn)]
    loss = bce_compat.binary_cross_entropy_with_logits(*args, pos_weight=2.0, reduction="none")
    plain = bce_compat.binary_cross_entropy_with_logits(*(paddle.to_tensor(a) for a in (xn, yn)), pos_weight=2.0, reduction="none")
    assert loss.dtype == paddle.float16 and loss.numpy().tobytes() == plain.numpy().tobytes()
    gx, gy = paddle.grad(loss.sum(), args)
    assert gx.dtype == gy.dtype == paddle.float16
    np.testing.assert_allclose(gx.numpy(), exact_logits_grad(xn, yn, None, 2.0)[0], rtol=2e-3)


def _operand_forms(dtype):
    """weight/pos_weight over an x of shape [2, 4, 3]: the pass reads each in place."""
    rng = np.random.default_rng(5)
    return {
        "absent": None,
        "number": 1.5,
        "full": paddle.to_tensor(rng.random((2, 4, 3)) + 0.5, dtype=dtype),
        "per channel": paddle.to_tensor(rng.random(3) + 0.5, dtype=dtype),
        "per row": paddle.to_tensor(rng.random((2, 4, 1)) + 0.5, dtype=dtype),
        "one element": paddle.to_tensor([2.0], dtype=dtype),
        "wider dtype": paddle.to_tensor(rng.random(3) + 0.5, dtype="float64"),
        "not a tiling": paddle.to_tensor(rng.random((2, 1, 3)) + 0.5, dtype=dtype),
        "transposed": paddle.transpose(paddle.to_tensor(rng.random((3, 4, 2)) + 0.5, dtype=dtype), [2, 1, 0]),
    }


@pytest.mark.parametrize("form", list(_operand_forms("float32")))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_every_operand_form_matches_the_exact_loss_and_gradient(form, dtype, reduction):
    rng = np.random.default_rng(7)
    xn, yn = rng.standard_normal((2, 4, 3)) * 6, rng.random((2, 4, 3))
    x, y = paddle.to_tensor(xn, dtype=dtype, stop_gradient=False), paddle.to_tensor(yn, dtype=dtype)
    operand = _operand_forms(dtype)[form]
    result = bce_compat.binary_cross_entropy_with_logits(x, y, weight=operand, pos_weight=operand, reduction=reduction)
    (result.sum() if reduction == "none" else result).backward()
    value = operand.astype("float64").numpy() if isinstance(operand, paddle.Tensor) else operand
    xs, ys = x.astype("float64").numpy(), y.astype("float64").numpy()
    exact = reduce_exact(exact_logits_loss(xs, ys, value, value), reduction)
    assert_close(result.astype("float64").numpy(), exact, dtype, ulps=4, size=1 if reduction == "none" else xn.size)
    grad, bound = exact_logits_grad(xs, ys, value, value)
    scale = 1 / xn.size if reduction == "mean" else 1
    assert_close(x.grad.astype("float64").numpy(), grad * scale, dtype, ulps=4, bound=bound * scale)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("upstream", [1.0, 2.5])
def test_the_saved_derivative_is_the_gradient_once_and_accumulates(upstream, dtype, monkeypatch):
    """An upstream of exactly 1 hands the forward's derivative over as the gradient (no multiply);
    x.grad then accumulates over iterations like any Paddle gradient."""
    multiplied = []
    times_upstream = paddle_fast._times_upstream
    monkeypatch.setattr(paddle_fast, "_times_upstream", lambda *a: multiplied.append(1) or times_upstream(*a))
    xn, yn = np.asarray([0.5, -1.0, 2.0, -20.0], dtype), np.asarray([1.0, 0.0, 0.5, 0.0], dtype)
    x = paddle.to_tensor(xn, stop_gradient=False)
    for _ in range(3):
        loss = bce_compat.binary_cross_entropy_with_logits(x, paddle.to_tensor(yn), reduction="mean")
        (loss * upstream if upstream != 1.0 else loss).backward()
    assert len(multiplied) == (0 if upstream == 1.0 else 3)
    exact, _ = exact_logits_grad(xn, yn, None, None)
    np.testing.assert_allclose(x.grad.numpy(), 3 * upstream * exact / 4, rtol=1e-6 if dtype == "float32" else 1e-14)


def test_a_second_backward_recomputes_the_handed_over_derivative():
    """The first backward hands the derivative over; a second one through the retained graph
    (paddle.grad: Paddle 3.3 crashes in any PyLayer's second ``backward(retain_graph=True)``)
    recomputes it, and the first gradient is left as it was."""
    xn, yn = np.asarray([0.5, -1.0, 2.0], np.float32), np.asarray([1.0, 0.0, 0.5], np.float32)
    x = paddle.to_tensor(xn, stop_gradient=False)
    loss = bce_compat.binary_cross_entropy_with_logits(x, paddle.to_tensor(yn), pos_weight=2.0, reduction="sum")
    (first,) = paddle.grad(loss, [x], retain_graph=True)
    kept = first.numpy().copy()
    (second,) = paddle.grad(loss * 3.0, [x], retain_graph=True)
    (third,) = paddle.grad(loss, [x])
    exact = exact_logits_grad(xn, yn, None, 2.0)[0]
    np.testing.assert_allclose(kept, exact, rtol=1e-6)
    np.testing.assert_array_equal(first.numpy(), kept)
    np.testing.assert_allclose(second.numpy(), 3 * exact, rtol=1e-6)
    np.testing.assert_array_equal(third.numpy(), kept)


def test_scalar_results_are_rounded_once():
    """The 0-d result from Paddle's ``full``: float32/float64 rounded by it, once; float16, bfloat16
    and values past float32's range first (the double is never rounded twice)."""
    rng = np.random.default_rng(3)
    values = list(rng.standard_normal(500) * 10.0 ** rng.integers(-40, 39, 500)) + [3.5e38, -1e300, 1e-46, 65519.0,
                                                                                    3.4e38, 1.0 + 2.0**-8, 2.0**-133]
    values += [1.0 + 2.0**-8 + 2.0**-30, -(1.0 + 2.0**-11 + 2.0**-30)]  # rounded through float32, these round wrong
    for value in values:
        for name in ("float16", "bfloat16", "float32", "float64"):
            got = paddle_fast._scalar(float(value), getattr(paddle, name), name)
            got = got.astype("float64").numpy()
            expected = np.float64(rounded_once(float(value), name))
            assert got.tobytes() == expected.tobytes(), (value, name, got, expected)


def test_a_bool_weight_is_a_number():
    """Python bools are numbers (as everywhere in bce_compat): weight=True equals weight=1.0."""
    x, y = paddle.to_tensor([0.5, -1.0, 3.0]), paddle.to_tensor([1.0, 0.0, 0.5])
    as_bool = bce_compat.binary_cross_entropy_with_logits(x, y, weight=True, pos_weight=True, reduction="none")
    as_float = bce_compat.binary_cross_entropy_with_logits(x, y, weight=1.0, pos_weight=1.0, reduction="none")
    assert as_bool.numpy().tobytes() == as_float.numpy().tobytes()


def test_the_route_is_worked_out_once_per_signature_and_the_rest_on_every_call(monkeypatch):
    """What dtypes and shapes decide is kept in the plan's memo; whether a gradient is wanted and
    the layout are read on every call (the same signature can differ there)."""
    from bce_compat import _plan

    monkeypatch.setattr(_plan, "_plans", {})
    routes = []
    route = paddle_fast._route
    monkeypatch.setattr(paddle_fast, "_route", lambda problem: routes.append(1) or route(problem))
    rng = np.random.default_rng(11)
    xn, yn = rng.standard_normal((3, 5)) * 4, rng.random((3, 5))
    y = paddle.to_tensor(yn, dtype="float32")
    contiguous = paddle.to_tensor(xn, dtype="float32")
    strided = paddle.transpose(paddle.to_tensor(xn.T.copy(), dtype="float32"), [1, 0])  # same shape, same values
    assert not strided.is_contiguous()
    expected = bce_compat.binary_cross_entropy_with_logits(contiguous, y, reduction="none").numpy()
    np.testing.assert_array_equal(bce_compat.binary_cross_entropy_with_logits(strided, y, reduction="none").numpy(), expected)

    learned = paddle.to_tensor(xn, dtype="float32", stop_gradient=False)  # the same signature, now with a gradient
    loss = bce_compat.binary_cross_entropy_with_logits(learned, y, reduction="sum")
    loss.backward()
    np.testing.assert_allclose(learned.grad.numpy(), exact_logits_grad(xn, yn, None, None)[0], rtol=1e-5, atol=1e-7)
    assert len(routes) == 1


def test_an_in_place_change_of_the_logit_after_the_loss():
    """``backward()`` hands over the derivative made in the forward, which is the gradient of
    the loss as computed; a gradient that needs x again (a graph of the gradient) is refused
    with a clear error, as Paddle refuses its own op's (it was silently computed on the new x)."""
    xn, yn = np.asarray([0.5, -1.0, 2.0], np.float32), np.asarray([1.0, 0.0, 1.0], np.float32)
    exact = exact_logits_grad(xn, yn, None, None)[0]
    for create_graph in (False, True):
        leaf = paddle.to_tensor(xn, stop_gradient=False)
        x = leaf * 1.0
        loss = bce_compat.binary_cross_entropy_with_logits(x, paddle.to_tensor(yn), reduction="sum")
        x.add_(paddle.ones([3]))
        if not create_graph:
            loss.backward()
            np.testing.assert_allclose(leaf.grad.numpy(), exact, rtol=1e-6)
        else:
            with pytest.raises(Exception, match="modified by an in-place operation after the loss was computed"):
                paddle.grad(loss, [leaf], create_graph=True)


@pytest.mark.parametrize("upstream", [
    paddle.to_tensor(1.0, dtype="float64"),  # cast to the loss's dtype by Paddle: handed over as is
    paddle.to_tensor(1.0, dtype="float16"),
    paddle.to_tensor([1.0], dtype="float32"),  # paddle.grad passes a [1] upstream of a 0-d loss through
    paddle.to_tensor(0.75, dtype="float32"),
])
def test_upstream_gradients_of_other_dtypes_and_shapes(upstream):
    xn, yn = np.asarray([0.5, -1.0, 2.0, -20.0], np.float32), np.asarray([1.0, 0.0, 0.5, 0.0], np.float32)
    x = paddle.to_tensor(xn, stop_gradient=False)
    loss = bce_compat.binary_cross_entropy_with_logits(x, paddle.to_tensor(yn), reduction="mean")
    (grad,) = paddle.grad([loss], [x], grad_outputs=[upstream])
    expected = float(upstream.astype("float32").numpy().reshape(())) * exact_logits_grad(xn, yn, None, None)[0] / 4
    assert grad.dtype == paddle.float32 and tuple(grad.shape) == (4,)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-6)
