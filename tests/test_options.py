"""label_smoothing, ignore_index and sigmoid_focal_loss on every backend, against the exact loss (mpmath)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bce_compat
from _options_reference import exact_focal, exact_smoothed_logits, exact_smoothed_probs, masked_mean
from _reference import assert_close, assert_result, reduce_exact, skip_unless_dtype
from bce_compat.dialects import paddle as P

LOGITS = [-math.inf, -1e30, -100.0, -20.0, -1.0, 0.0, 1e-3, 1.0, 20.0, 100.0, 1e30, math.inf]
FINITE_LOGITS = [v for v in LOGITS if math.isfinite(v)]
TARGETS = [0.0, 0.3, 1.0]
PROBS = [0.0, 1e-7, 0.25, 0.5, 0.9999999, 1.0]
DTYPES = ["float32", "float64"]


def _grid(rows, dtype, targets=TARGETS):
    x = np.repeat(np.asarray(rows, dtype=dtype)[:, None], len(targets), axis=1)
    return x, np.broadcast_to(np.asarray(targets, dtype=dtype), x.shape).copy()


def _arrays(framework, dtype, *values):
    return [framework.asarray(v, dtype) for v in values]


# --- label smoothing ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_label_smoothing_with_logits_is_exact(framework, eps, reduction, dtype):
    skip_unless_dtype(framework, dtype)
    x_np, y_np = _grid(LOGITS, dtype)
    x, y = _arrays(framework, dtype, x_np, y_np)
    result = bce_compat.binary_cross_entropy_with_logits(x, y, reduction=reduction, label_smoothing=eps)
    expected = reduce_exact(exact_smoothed_logits(x_np, y_np, eps)[0], reduction)
    assert_result(result, x, framework, dtype, expected.shape, expected, size=x_np.size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.2, 1.0])
def test_label_smoothing_on_probabilities_is_exact(framework, eps, dtype):
    skip_unless_dtype(framework, dtype)
    q_np, y_np = _grid(PROBS, dtype)
    q, y = _arrays(framework, dtype, q_np, y_np)
    result = bce_compat.binary_cross_entropy(q, y, reduction="none", label_smoothing=eps)
    expected = exact_smoothed_probs(q_np, y_np, eps)[0]
    assert_result(result, q, framework, dtype, expected.shape, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.1, 1.0])
def test_label_smoothing_gradient_is_exact(autograd_framework, eps, dtype):
    fw = autograd_framework
    skip_unless_dtype(fw, dtype)
    x_np, y_np = _grid(FINITE_LOGITS, dtype)
    x, y = _arrays(fw, dtype, x_np, y_np)
    loss = lambda a, b: bce_compat.binary_cross_entropy_with_logits(a, b, reduction="none", label_smoothing=eps)  # noqa: E731
    _, (grad,) = fw.value_and_grad(loss, [x, y], [0])
    _, expected, bound = exact_smoothed_logits(x_np, y_np, eps)
    assert_close(grad, expected, dtype, bound=bound, flush_subnormals=fw.name in ("jax", "tensorflow"))


def test_label_smoothing_equals_smoothing_the_target_by_hand():
    x = np.linspace(-5, 5, 12).reshape(3, 4)
    y = np.tile([0.0, 1.0, 0.3, 1.0], (3, 1))
    eps = 0.2
    by_hand = bce_compat.binary_cross_entropy_with_logits(x, y * (1 - eps) + eps / 2)
    np.testing.assert_allclose(bce_compat.binary_cross_entropy_with_logits(x, y, label_smoothing=eps), by_hand, rtol=1e-15)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "0.1", True])
def test_label_smoothing_out_of_range_names_the_argument(bad):
    with pytest.raises((ValueError, TypeError), match="label_smoothing"):
        bce_compat.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2), label_smoothing=bad)
    with pytest.raises((ValueError, TypeError), match="label_smoothing"):
        bce_compat.BCELoss(label_smoothing=bad)


# --- ignore_index ------------------------------------------------------------------------------

IGNORE = -100.0


def _with_ignored(rows, dtype, ignored_rows):
    x, y = _grid(rows, dtype)
    y[ignored_rows, :] = IGNORE
    return x, y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ignore_index_gives_zero_and_leaves_the_denominator(framework, reduction, dtype):
    skip_unless_dtype(framework, dtype)
    x_np, y_np = _with_ignored(LOGITS, dtype, [0, 4, 11])  # ±inf rows ignored too
    x, y = _arrays(framework, dtype, x_np, y_np)
    result = bce_compat.binary_cross_entropy_with_logits(x, y, reduction=reduction, ignore_index=IGNORE)
    kept = y_np != IGNORE
    loss = np.where(kept, exact_smoothed_logits(x_np, np.where(kept, y_np, 0.0))[0], 0.0)
    expected = masked_mean(loss, kept) if reduction == "mean" else reduce_exact(loss, reduction)
    assert_result(result, x, framework, dtype, expected.shape, expected, size=x_np.size)


@pytest.mark.parametrize("shape", [(0,), (3,)], ids=["empty", "all-ignored"])
def test_ignore_index_all_ignored_or_empty_mean_is_nan(framework, shape):
    skip_unless_dtype(framework, "float32")
    x, y = framework.asarray(np.zeros(shape), "float32"), framework.asarray(np.full(shape, IGNORE), "float32")
    mean = bce_compat.binary_cross_entropy_with_logits(x, y, ignore_index=IGNORE)
    total = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="sum", ignore_index=IGNORE)
    assert math.isnan(float(framework.to_numpy(mean))) and float(framework.to_numpy(total)) == 0.0


@pytest.mark.parametrize("wrt", [[0, 1], [0]], ids=["input-and-target", "input-alone"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ignore_index_gradient_is_exactly_zero_there(autograd_framework, dtype, wrt):
    """Towards the input alone, as a training loop asks, the fast paths use the derivative their
    pass wrote and divide it by the elements kept afterwards (the count is known only then);
    towards the target too, every gradient comes from the formula."""
    fw = autograd_framework
    skip_unless_dtype(fw, dtype)
    x_np, y_np = _with_ignored(LOGITS, dtype, [0, 3, 11])
    x, y = _arrays(fw, dtype, x_np, y_np)
    loss = lambda a, b: bce_compat.binary_cross_entropy_with_logits(a, b, reduction="mean", ignore_index=IGNORE)  # noqa: E731
    _, (gx, *others) = fw.value_and_grad(loss, [x, y], wrt)
    kept = y_np != IGNORE
    assert (gx[~kept] == 0).all() and all((g[~kept] == 0).all() for g in others)
    finite = kept & np.isfinite(x_np)
    _, expected, bound = exact_smoothed_logits(x_np, np.where(kept, y_np, 0.0))
    count = kept.sum()
    assert_close(gx[finite], expected[finite] / count, dtype, bound=bound[finite] / count,
                 flush_subnormals=fw.name in ("jax", "tensorflow"))


def test_ignore_index_on_probabilities_skips_the_range_check_for_ignored_targets():
    q, y = np.array([0.25, 0.5, 0.9]), np.array([1.0, -100.0, 0.0])
    got = bce_compat.binary_cross_entropy(q, y, ignore_index=-100)
    expected = masked_mean(exact_smoothed_probs(q, np.where(y == -100, 0, y))[0] * (y != -100), y != -100)
    assert_close(got, expected, "float64")
    with pytest.raises(ValueError, match="target"):
        bce_compat.binary_cross_entropy(q, y)


def test_module_forms_and_paddle_dialect_take_the_options():
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.0, -100.0, 0.0])
    want = bce_compat.binary_cross_entropy_with_logits(x, y, ignore_index=-100, label_smoothing=0.1)
    for got in (
        bce_compat.BCEWithLogitsLoss(ignore_index=-100, label_smoothing=0.1)(x, y),
        P.binary_cross_entropy_with_logits(x, y, ignore_index=-100, label_smoothing=0.1),
        P.BCEWithLogitsLoss(ignore_index=-100, label_smoothing=0.1)(x, y),
    ):
        assert float(got) == float(want)
    with pytest.raises(TypeError):
        bce_compat.binary_cross_entropy_with_logits(x, y, None, None, None, "mean", None, 0.1)  # keyword-only


def test_paddle_native_ignore_is_reproduced_by_none_then_mean(framework):
    """Paddle's op zeroes labels equal to -100 but divides by every element; the documented call matches it."""
    if framework.name != "paddle":
        pytest.skip("compares with Paddle's own op")
    import paddle

    logit = paddle.to_tensor([5.0, 1.0, 3.0, -2.0]); label = paddle.to_tensor([1.0, -100.0, 1.0, 0.0])
    native = paddle.nn.functional.binary_cross_entropy_with_logits(logit, label)
    ours = P.binary_cross_entropy_with_logits(logit, label, reduction="none", ignore_index=-100).mean()
    np.testing.assert_allclose(float(ours), float(native), rtol=1e-6)


def test_ignore_index_must_be_a_finite_number():
    for bad, error in ((math.inf, ValueError), ("x", TypeError)):
        with pytest.raises(error, match="ignore_index"):
            bce_compat.binary_cross_entropy_with_logits(np.zeros(1), np.zeros(1), ignore_index=bad)


# --- sigmoid_focal_loss ------------------------------------------------------------------------

FOCAL_PARAMS = [(0.25, 2.0), (-1.0, 0.0), (0.5, 0.5), (1.0, 3.0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,gamma", FOCAL_PARAMS)
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_focal_loss_is_exact(framework, alpha, gamma, reduction, dtype):
    skip_unless_dtype(framework, dtype)
    x_np, y_np = _grid(LOGITS, dtype)
    x, y = _arrays(framework, dtype, x_np, y_np)
    result = bce_compat.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction=reduction)
    expected = reduce_exact(exact_focal(x_np, y_np, alpha, gamma)[0], reduction)
    assert_result(result, x, framework, dtype, expected.shape, expected, size=x_np.size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,gamma", FOCAL_PARAMS + [(0.25, 0.01)])
def test_focal_loss_gradient_is_exact_and_finite(autograd_framework, alpha, gamma, dtype):
    fw = autograd_framework
    skip_unless_dtype(fw, dtype)
    x_np, y_np = _grid(LOGITS, dtype)
    x, y = _arrays(fw, dtype, x_np, y_np)
    loss = lambda a, b: bce_compat.sigmoid_focal_loss(a, b, alpha=alpha, gamma=gamma)  # noqa: E731
    _, (grad,) = fw.value_and_grad(loss, [x, y], [0])
    assert np.isfinite(grad).all(), grad
    finite = np.isfinite(x_np)
    _, expected, bound = exact_focal(x_np, y_np, alpha, gamma)
    assert_close(grad[finite], expected[finite], dtype, bound=bound[finite], flush_subnormals=fw.name in ("jax", "tensorflow"))


def test_focal_loss_matches_torchvision_formula_on_ordinary_values():
    torch = pytest.importorskip("torch")
    x = torch.linspace(-6, 6, 25, dtype=torch.float64).reshape(5, 5)
    y = (torch.arange(25, dtype=torch.float64).reshape(5, 5) % 3 == 0).double()
    # torchvision.ops.sigmoid_focal_loss, written out (torchvision is not a dependency)
    p = torch.sigmoid(x)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    native = (0.25 * y + 0.75 * (1 - y)) * ce * (1 - p_t) ** 2
    for reduction, reduce in (("none", lambda t: t), ("mean", torch.mean), ("sum", torch.sum)):
        torch.testing.assert_close(bce_compat.sigmoid_focal_loss(x, y, reduction=reduction), reduce(native), rtol=1e-12, atol=0)


@pytest.mark.parametrize("shape", [(), (1,), (0,)])
def test_focal_loss_on_0d_one_element_and_empty(shape):
    x, y = np.full(shape, 0.5), np.full(shape, 1.0)
    loss = bce_compat.sigmoid_focal_loss(x, y, reduction="none")
    assert loss.shape == shape
    assert math.isnan(float(bce_compat.sigmoid_focal_loss(x, y, reduction="mean"))) == (shape == (0,))


def test_focal_loss_on_strided_and_non_contiguous_inputs():
    base = np.linspace(-30, 30, 40).reshape(5, 8)
    x, y = base.T[::2], (base.T[::2] > 0).astype(np.float64)  # transposed, then every other row
    assert not x.flags.c_contiguous
    expected = exact_focal(x, y)[0]
    assert_close(bce_compat.sigmoid_focal_loss(x, y), expected, "float64")


@pytest.mark.parametrize("alpha,gamma,arg", [(1.5, 2.0, "alpha"), (0.25, -1.0, "gamma"), (0.25, math.inf, "gamma"), (None, 2.0, "alpha")])
def test_focal_loss_bad_parameters_name_the_argument(alpha, gamma, arg):
    with pytest.raises((ValueError, TypeError), match=arg):
        bce_compat.sigmoid_focal_loss(np.zeros(1), np.zeros(1), alpha=alpha, gamma=gamma)
    with pytest.raises(ValueError, match="reduction"):
        bce_compat.sigmoid_focal_loss(np.zeros(1), np.zeros(1), reduction="batchmean")


# --- the edge cases of every option on the layouts docs/contract.md §3 names --------------------------------


@pytest.mark.parametrize("shape", [(), (1,), (0,)], ids=["0d", "one", "empty"])
def test_options_on_0d_one_element_and_empty(framework, shape):
    skip_unless_dtype(framework, "float32")
    x = framework.asarray(np.full(shape, 2.0), "float32")
    y = framework.asarray(np.full(shape, 1.0), "float32")
    smoothed = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="none", label_smoothing=0.5)
    expected = exact_smoothed_logits(np.full(shape, 2.0), np.full(shape, 1.0), 0.5)[0]
    assert_result(smoothed, x, framework, "float32", shape, expected)
    ignored = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="none", ignore_index=1.0)
    assert_result(ignored, x, framework, "float32", shape, np.zeros(shape))


def test_options_on_broadcast_strided_views():
    x = np.broadcast_to(np.array([-3.0, 0.0, 4.0]), (4, 3))  # stride 0 along the first axis
    y = np.broadcast_to(np.array([1.0, -100.0, 0.0]), (4, 3))
    got = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="none", ignore_index=-100, label_smoothing=0.1)
    kept = y != -100
    expected = np.where(kept, exact_smoothed_logits(x, np.where(kept, y, 0), 0.1)[0], 0.0)
    assert_close(got, expected, "float64")
