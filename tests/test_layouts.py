"""Every backend and path on the layouts real code hands a loss: 0-d, one element, empty,
non-contiguous (sliced, transposed) and broadcast-strided (stride-0) inputs.

Each layout is built in the framework itself (a slice or transpose of a framework array, not a
NumPy copy), then the loss is checked against the exact reference, with and without a gradient,
for both kinds, both dialects and every reduction. Issue 12 item 1: a 0-d NumPy array once
crashed the fast path, and so did 0-d torch and Paddle tensors.
"""

from __future__ import annotations

import numpy as np
import pytest

from _calls import DIALECTS, probs, with_logits
from _reference import (
    assert_close,
    exact_logits_grad,
    exact_logits_loss,
    exact_probs_grad,
    exact_probs_loss,
    reduce_exact,
    skip_unless_dtype,
)

LAYOUTS = ("zero_d", "one_element", "empty", "sliced", "transposed", "broadcast")
REDUCTIONS = ("none", "mean", "sum")
_RNG = np.random.default_rng(12)


def _base_values(layout: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) in NumPy, of the shape the layout starts from."""
    shape = {"zero_d": (), "one_element": (1,), "empty": (0, 4), "sliced": (6, 8), "transposed": (4, 3),
             "broadcast": (3, 4)}[layout]
    if kind == "logits":
        x = _RNG.normal(scale=4.0, size=shape)
    else:
        x = _RNG.uniform(0.05, 0.95, size=shape)
    y = _RNG.uniform(0.0, 1.0, size=shape).round(2)
    return np.asarray(x), np.asarray(y)


def _transpose(name: str, a):
    if name == "tensorflow":
        import tensorflow as tf

        return tf.transpose(a)
    return a.T


def _broadcast_to(name: str, a, shape):
    if name == "paddle":
        import paddle

        return paddle.expand(a, shape)
    if name == "tensorflow":
        import tensorflow as tf

        return tf.broadcast_to(a, shape)
    if name == "torch":
        return a.expand(*shape)
    import array_api_compat

    return array_api_compat.array_namespace(a).broadcast_to(a, shape)


def _layout(framework, layout: str, base: np.ndarray, dtype: str):
    """(the framework's array in ``layout``, the same values in NumPy): a view made in the framework."""
    a = framework.asarray(base, dtype)
    if layout == "sliced":
        return a[::2, 1::2], base[::2, 1::2]
    if layout == "transposed":
        return _transpose(framework.name, a), base.T
    if layout == "broadcast":  # a stride-0 view of one row
        row = framework.asarray(base[0], dtype)
        return _broadcast_to(framework.name, row, base.shape), np.broadcast_to(base[0], base.shape)
    return a, base


def _call(kind, dialect, x, y, reduction, weight=None, pos_weight=None):
    if kind == "logits":
        return with_logits(dialect, x, y, weight=weight, pos_weight=pos_weight, reduction=reduction)
    return probs(dialect, x, y, weight=weight, reduction=reduction)


def _exact(kind, x, y, weight=None, pos_weight=None):
    if kind == "logits":
        return exact_logits_loss(x, y, weight, pos_weight)
    return exact_probs_loss(x, y, weight)


def _rounded(framework, values, dtype):
    return framework.to_numpy(framework.asarray(values, dtype))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layout_gives_the_exact_loss(framework, dtype, layout, kind, dialect, reduction):
    skip_unless_dtype(framework, dtype)
    x_values, y_values = _base_values(layout, kind)
    x, x_seen = _layout(framework, layout, _rounded(framework, x_values, dtype), dtype)
    y, y_seen = _layout(framework, layout, _rounded(framework, y_values, dtype), dtype)
    weight_values = _rounded(framework, _RNG.uniform(0.5, 2.0, size=x_seen.shape[-1:]), dtype) if x_seen.ndim else None
    weight = None if weight_values is None else framework.asarray(weight_values, dtype)
    result = _call(kind, dialect, x, y, reduction, weight=weight)
    expected = reduce_exact(_exact(kind, x_seen, y_seen, weight_values), reduction)
    assert tuple(result.shape) == expected.shape
    assert_close(framework.to_numpy(result), expected, dtype, size=max(x_seen.size, 1), flush_subnormals=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layout_gives_the_exact_gradient(autograd_framework, dtype, layout, kind, reduction):
    framework = autograd_framework
    skip_unless_dtype(framework, dtype)
    x_values, y_values = _base_values(layout, kind)
    x_values, y_values = _rounded(framework, x_values, dtype), _rounded(framework, y_values, dtype)
    y, y_seen = _layout(framework, layout, y_values, dtype)
    pos_weight = 2.5 if kind == "logits" else None

    def loss_of(x):
        extra = {"pos_weight": pos_weight} if kind == "logits" else {}
        return _call(kind, "torch", x, y, reduction, **extra)

    value, grad, x_seen = _value_and_grad_through_layout(framework, layout, x_values, dtype, loss_of)
    expected = reduce_exact(_exact(kind, x_seen, y_seen, None, pos_weight), reduction)
    assert_close(framework.to_numpy(value), expected, dtype, size=max(x_seen.size, 1), flush_subnormals=True)
    scale = 1.0 / x_seen.size if reduction == "mean" and x_seen.size else 1.0
    if kind == "logits":
        exact_grad, bound = exact_logits_grad(x_seen, y_seen, None, pos_weight)
    else:
        exact_grad = exact_probs_grad(x_seen, y_seen)
        # w*[(1-y)/(1-q) - y/q]: its two terms may cancel, so (as for logits) the larger one bounds the error
        bound = np.maximum(np.abs((1 - y_seen) / (1 - x_seen)), np.abs(y_seen / x_seen))
    bound = None if bound is None else bound * scale
    assert_close(grad, exact_grad * scale, dtype, bound=bound, flush_subnormals=True)


def _value_and_grad_through_layout(framework, layout, x_values, dtype, loss_of):
    """(loss, d loss.sum() / d x as NumPy, x's values): x is a view of a leaf, made in the framework."""
    name = framework.name
    if name == "torch":
        import torch

        x, x_seen = _layout(framework, layout, x_values, dtype)
        leaf = x.detach().clone() if layout == "broadcast" else None
        if leaf is not None:  # a stride-0 view of a leaf row
            row = framework.asarray(x_values[0], dtype).requires_grad_(True)
            x = row.expand(*x_values.shape)
        else:
            base = framework.asarray(x_values, dtype).requires_grad_(True)
            x = {"sliced": lambda b: b[::2, 1::2], "transposed": lambda b: b.T}.get(layout, lambda b: b * 1)(base)
        value = loss_of(x)
        (grad,) = torch.autograd.grad(value.sum(), x)
        return value, framework.to_numpy(grad), x_seen
    if name == "paddle":
        import paddle

        x, x_seen = _layout(framework, layout, x_values, dtype)
        base = framework.asarray(x_values[0] if layout == "broadcast" else x_values, dtype)
        base.stop_gradient = False
        x = {
            "sliced": lambda b: b[::2, 1::2],
            "transposed": lambda b: b.T,
            "broadcast": lambda b: paddle.expand(b, x_values.shape),
        }.get(layout, lambda b: b * 1)(base)
        value = loss_of(x)
        (grad,) = paddle.grad(value.sum(), [x])
        return value, framework.to_numpy(grad), x_seen
    x, x_seen = _layout(framework, layout, x_values, dtype)  # TF, JAX: values have no strides
    value, (grad,) = framework.value_and_grad(loss_of, [x], [0])
    return value, grad, x_seen
