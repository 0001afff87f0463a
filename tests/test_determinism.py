"""docs/contract.md §3 determinism: on one backend, the same inputs give the same bits whether or not a
gradient is requested (of any argument), and from run to run.

Issue 12 item 2: the Paddle dialect once gave different last bits with ``stop_gradient=False``
(portable path) than with ``True`` (fast path), in 89 of 100 random cases.
"""

from __future__ import annotations

import numpy as np
import pytest

from _calls import DIALECTS, probs, with_logits
from _reference import skip_unless_dtype

SIZES = (1, 97, 70_000)  # one element, one small chunk, several chunks (threaded) of the CPU kernels
REDUCTIONS = ("none", "mean", "sum")
GRAD_ARGS = ("input", "target", "weight", "pos_weight")


def _problem(size: int, kind: str, seed: int = 0):
    rng = np.random.default_rng(seed + size)
    columns = 7 if size % 7 == 0 else 1
    shape = (size // columns, columns)
    x = rng.normal(scale=5.0, size=shape) if kind == "logits" else rng.uniform(0.001, 0.999, size=shape)
    y = rng.uniform(0, 1, size=shape)
    weight = rng.uniform(0.5, 2.0, size=shape[-1:])
    pos_weight = rng.uniform(0.5, 3.0, size=shape[-1:])
    return x, y, weight, pos_weight


def _loss(kind, dialect, x, y, weight, pos_weight, reduction):
    if kind == "logits":
        return with_logits(dialect, x, y, weight=weight, pos_weight=pos_weight, reduction=reduction)
    return probs(dialect, x, y, weight=weight, reduction=reduction)


def _bits(framework, value) -> bytes:
    return np.ascontiguousarray(framework.to_numpy(value)).tobytes()


def _with_gradient(framework, arrays: list, index: int):
    """``arrays`` with the one at ``index`` asking for a gradient, in the framework's own way."""
    arrays = list(arrays)
    a = arrays[index]
    if framework.name == "torch":
        arrays[index] = a.detach().clone().requires_grad_(True)
    elif framework.name == "paddle":
        a = a.detach().clone()
        a.stop_gradient = False
        arrays[index] = a
    return arrays


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_bits_with_and_without_a_gradient(autograd_framework, dtype, size, kind, dialect, reduction):
    framework = autograd_framework
    skip_unless_dtype(framework, dtype)
    values = _problem(size, kind)
    arrays = [framework.asarray(v, dtype) for v in values]
    if kind == "probs":
        arrays[3] = None
    plain = _bits(framework, _loss(kind, dialect, *arrays, reduction))
    wanted = [i for i, a in enumerate(arrays) if a is not None]
    for index in wanted:
        with_grad = _with_gradient(framework, arrays, index)
        if framework.name == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                tape.watch(with_grad[index])
                value = _loss(kind, dialect, *with_grad, reduction)
        elif framework.name == "jax":
            import jax

            def loss_of(a, index=index, with_grad=with_grad):
                args = list(with_grad)
                args[index] = a
                return _loss(kind, dialect, *args, reduction)

            value, _ = jax.vjp(loss_of, with_grad[index])  # the value as computed for a gradient
        else:
            value = _loss(kind, dialect, *with_grad, reduction)
        assert _bits(framework, value) == plain, f"{GRAD_ARGS[index]} wanting a gradient changed the result"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("size", SIZES)
def test_same_bits_from_run_to_run(framework, size, reduction):
    dtype = "float32"
    arrays = [framework.asarray(v, dtype) for v in _problem(size, "logits", seed=5)]
    first = _bits(framework, _loss("logits", "torch", *arrays, reduction))
    for _ in range(3):
        assert _bits(framework, _loss("logits", "torch", *arrays, reduction)) == first
