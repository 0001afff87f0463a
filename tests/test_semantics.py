"""docs/contract.md §2-3 beyond the values: dtypes, casting, half precision, empty inputs, legacy arguments, no mutation."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

import bce_compat
from _calls import DIALECTS, module, probs, with_logits
from _reference import assert_result, exact_logits_loss, exact_probs_loss, reduce_exact, skip_unless_dtype
from bce_compat import _math
from bce_compat.backends._float_dtypes import dtype_name
from bce_compat.conformance import frameworks

X = np.asarray([-3.0, -0.5, 0.0, 0.5, 3.0])
Y = np.asarray([0.0, 1.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("target_dtype", ["int64", "int32", "bool"])
def test_integer_and_bool_targets_are_cast_to_the_input_dtype(framework, target_dtype):
    y = frameworks.asarray_keep_dtype(framework.name, Y.astype(target_dtype))
    x = framework.asarray(X, "float32")
    result = with_logits("torch", x, y, reduction="none")
    assert_result(result, x, framework, "float32", X.shape, exact_logits_loss(X, Y))


@pytest.mark.parametrize("x_dtype, y_dtype, expected", [
    ("float32", "float64", "float64"),
    ("float64", "float32", "float64"),
    ("float32", "float32", "float32"),
])
def test_result_dtype_is_the_promotion_of_floating_inputs(framework, x_dtype, y_dtype, expected):
    skip_unless_dtype(framework, "float64")
    x, y = framework.asarray(X, x_dtype), framework.asarray(Y, y_dtype)
    for reduction in ("none", "mean"):
        assert dtype_name(with_logits("torch", x, y, reduction=reduction).dtype) == expected
    w = framework.asarray([2.0], y_dtype)
    assert dtype_name(with_logits("torch", framework.asarray(X, x_dtype), framework.asarray(Y, x_dtype), weight=w).dtype) == expected


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_half_precision_is_within_one_ulp_of_the_output_dtype(framework, dtype, kind):
    """Computed in float32 and rounded once: within 1 ulp of the output dtype (Paddle has no CPU
    float16 kernels of its own; the upcast makes it work)."""
    skip_unless_dtype(framework, dtype)
    values = np.linspace(-8, 8, 33) if kind == "logits" else np.linspace(0, 1, 33)
    targets = np.resize([0.0, 0.5, 1.0], values.shape)
    # the exact loss of the inputs as rounded to the half dtype
    rounded = framework.to_numpy(framework.asarray(values, dtype))
    x, y = framework.asarray(values, dtype), framework.asarray(targets, dtype)
    if kind == "logits":
        result, exact = with_logits("torch", x, y, reduction="none"), exact_logits_loss(rounded, targets)
    else:
        result, exact = probs("torch", x, y, reduction="none"), exact_probs_loss(rounded, targets)
    assert_result(result, x, framework, dtype, values.shape, exact, ulps=1)
    total = with_logits("torch", x, y, reduction="sum") if kind == "logits" else probs("torch", x, y, reduction="sum")
    assert dtype_name(total.dtype) == dtype


@pytest.mark.parametrize("dialect", DIALECTS)
def test_empty_input_mean_is_nan_sum_is_zero(framework, dialect):
    x = framework.asarray(np.zeros((0, 3)), "float32")
    for call in (with_logits, probs):
        assert_result(call(dialect, x, x, reduction="mean"), x, framework, "float32", (), np.asarray(np.nan))
        assert_result(call(dialect, x, x, reduction="sum"), x, framework, "float32", (), np.asarray(0.0))
        assert_result(call(dialect, x, x, reduction="none"), x, framework, "float32", (0, 3), np.zeros((0, 3)))


def test_python_numbers_for_weight_and_pos_weight(framework):
    x, y = framework.asarray(X, "float32"), framework.asarray(Y, "float32")
    result = with_logits("torch", x, y, weight=2.0, pos_weight=3, reduction="none")
    assert_result(result, x, framework, "float32", X.shape, exact_logits_loss(X, Y, 2.0, 3.0))


@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_inputs_are_never_modified(framework, kind):
    values = X if kind == "logits" else np.asarray([0.1, 0.5, 0.0, 1.0, 0.9])
    arrays = [framework.asarray(a, "float32") for a in (values, Y, [0.5, 1, 2, 1, 1], [2.0, 1, 1, 1, 3])]
    before = [framework.to_numpy(a).copy() for a in arrays]
    for reduction in ("none", "mean", "sum"):
        if kind == "logits":
            with_logits("torch", *arrays[:2], arrays[2], arrays[3], reduction=reduction)
        else:
            probs("paddle", *arrays[:3], reduction=reduction)
    for array, old in zip(arrays, before):
        np.testing.assert_array_equal(framework.to_numpy(array), old)


@pytest.mark.parametrize("size_average, reduce, expected", [
    (None, None, "mean"),
    (True, None, "mean"),
    (False, None, "sum"),
    (None, True, "mean"),
    (False, True, "sum"),
    (True, False, "none"),
    (False, False, "none"),
])
def test_legacy_arguments_map_as_torch_does_and_warn(size_average, reduce, expected):
    x, y = np.asarray(X), np.asarray(Y)
    reference = bce_compat.binary_cross_entropy_with_logits(x, y, reduction=expected)
    legacy_given = size_average is not None or reduce is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = bce_compat.binary_cross_entropy_with_logits(x, y, size_average=size_average, reduce=reduce, reduction="sum")
        got_probs = bce_compat.BCELoss(size_average=size_average, reduce=reduce)(1 / (1 + np.exp(-x)), y)
    np.testing.assert_array_equal(got, reference if legacy_given else bce_compat.binary_cross_entropy_with_logits(x, y, reduction="sum"))
    assert np.shape(got_probs) == (np.shape(reference) if legacy_given else ())
    assert any(issubclass(w.category, Warning) and "deprecated" in str(w.message) for w in caught) == legacy_given


def test_elementwise_mean_is_mean_with_a_warning():
    x, y = np.asarray(X), np.asarray(Y)
    with pytest.warns(UserWarning, match="elementwise_mean"):
        got = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="elementwise_mean")
    assert got == bce_compat.binary_cross_entropy_with_logits(x, y)


def test_mean_is_a_plain_mean_of_weighted_losses_not_a_weighted_average():
    x, y, w = np.asarray(X), np.asarray(Y), np.asarray([0.0, 0.0, 0.0, 0.0, 5.0])
    got = bce_compat.binary_cross_entropy_with_logits(x, y, weight=w)
    np.testing.assert_allclose(got, reduce_exact(exact_logits_loss(X, Y, w), "sum") / 5)


def test_module_keeps_its_weights_and_reduction():
    loss = bce_compat.BCEWithLogitsLoss(weight=np.asarray([2.0]), pos_weight=np.asarray([3.0]), reduction="none")
    assert loss.reduction == "none" and "none" in repr(loss)
    np.testing.assert_allclose(loss(np.asarray(X), np.asarray(Y)), exact_logits_loss(X, Y, 2.0, 3.0), rtol=1e-15)
    assert module("paddle", "logits", reduction="sum").reduction == "sum"


def test_probability_bce_of_seed_002_random_example(framework):
    """002_5ec8eb12346d8d1f.txt: F.binary_cross_entropy(torch.sigmoid(input), target) with target ~ U(0, 1)."""
    skip_unless_dtype(framework, "float64")
    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(3, 2)), rng.random((3, 2))
    q = 1 / (1 + np.exp(-logits))
    result = probs("torch", framework.asarray(q, "float64"), framework.asarray(target, "float64"))
    expected = reduce_exact(exact_probs_loss(q, target), "mean")
    assert_result(result, framework.asarray(q, "float64"), framework, "float64", (), expected, size=6)


def test_torch_cuda_tensors_stay_on_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.randn(4, 8, device="cuda", requires_grad=True)
    y = torch.rand(4, 8, device="cuda")
    out = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=torch.ones(8, device="cuda"))
    out.backward()
    assert out.device.type == "cuda" and x.grad.device.type == "cuda"


def test_the_portable_clamp_keeps_gradients_finite_where_log_is_differentiated_as_a_reciprocal():
    """Some kernels differentiate log as g * (1/q) rather than g / q. For a subnormal q, 1/q is inf,
    and the zero gradient of a clamped element would become 0 * inf = NaN, unless q is clamped
    before the log is taken (``_math._neg_log_clamped``). The libraries installed here divide, so
    a torch log that multiplies by the reciprocal stands in for such a kernel."""
    torch = pytest.importorskip("torch")
    from array_api_compat import torch as xp_torch

    class ReciprocalLog(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q):
            ctx.save_for_backward(q)
            return torch.log(q)

        @staticmethod
        def backward(ctx, g):
            (q,) = ctx.saved_tensors
            return g * (1 / q)

    xp = types.SimpleNamespace(logical_or=xp_torch.logical_or, where=xp_torch.where, ones_like=xp_torch.ones_like,
                               full_like=xp_torch.full_like, log=ReciprocalLog.apply)
    q = torch.tensor([1e-45, 3e-44, 0.0], dtype=torch.float32, requires_grad=True)  # subnormal, under e**-100, zero
    value = _math._neg_log_clamped(xp, q)
    value.sum().backward()
    assert value.tolist() == [100.0, 100.0, 100.0]
    assert q.grad.tolist() == [0.0, 0.0, 0.0]
