"""TensorFlow's ``nn_xent_test.py``, ported onto ``bce_compat.dialects.tf``.

Upstream: tensorflow/tensorflow, ``tensorflow/python/ops/nn_xent_test.py`` (read at commit
229c5692a76ec07e8adbf979022165c966fe2d8c), classes ``SigmoidCrossEntropyWithLogitsTest`` and
``WeightedCrossEntropyTest``. Each test keeps its inputs, reference and tolerance; the call
``nn_impl.sigmoid_cross_entropy_with_logits`` / ``weighted_cross_entropy_with_logits`` becomes
the tf dialect's function of the same name (TF 1's ``targets=`` is TF 2's and the dialect's
``labels=``). Harness: pytest instead of ``tf.test.TestCase``; ``use_gpu`` runs on the CPU here;
``@run_deprecated_v1`` graph tests run in a ``tf.function`` graph (``tf.gradients`` there), and
``gradient_checker.compute_gradient_error`` is ``tf.test.compute_gradient``'s largest difference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bce_compat.dialects import tf as T

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'bce_compat[tf]')")

exp = math.exp
log = math.log

NAME_IGNORED = "the tf dialect accepts `name` and ignores it (its docstring): the result is not an op named so"
LISTS_ARE_NO_ARRAYS = (
    "bce_compat takes arrays, not Python lists: a list is an object no backend accepts, a TypeError "
    "(docs/contract.md §5). The same shapes as tensors give TF's ValueError: test_shape_error_with_tensors")


def _compute_gradient_error(fn, x):
    theoretical, numerical = tf.test.compute_gradient(fn, [x])
    return max(float(np.max(np.abs(t - n))) for t, n in zip(theoretical, numerical))


# --- SigmoidCrossEntropyWithLogitsTest ---------------------------------------------------------------


def _sigmoid_cross_entropy_with_logits(logits, targets):
    assert len(logits) == len(targets)
    pred = [1 / (1 + exp(-x)) for x in logits]
    eps = 0.0001
    pred = [min(max(p, eps), 1 - eps) for p in pred]
    return [-z * log(y) - (1 - z) * log(1 - y) for y, z in zip(pred, targets)]


def _sigmoid_inputs(x=None, y=None, dtype=tf.float64, sizes=None):
    x = [-100, -2, -2, 0, 2, 2, 2, 100] if x is None else x
    y = [0, 0, 1, 0, 0, 1, 0.5, 1] if y is None else y
    assert len(x) == len(y)
    sizes = sizes if sizes else [len(x)]
    logits = tf.constant(x, shape=sizes, dtype=dtype, name="logits")
    targets = tf.constant(y, shape=sizes, dtype=dtype, name="targets")
    losses = np.array(_sigmoid_cross_entropy_with_logits(x, y)).reshape(*sizes)
    return logits, targets, losses


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=NAME_IGNORED)
def test_sigmoid_construction_named():
    @tf.function
    def graph():
        logits, targets, _ = _sigmoid_inputs()
        loss = T.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits, name="mylogistic")
        assert loss.op.name == "mylogistic", loss.op.name
        return loss

    graph()


@pytest.mark.parametrize("use_gpu", [True, False])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16], ids=str)
def test_logistic_output(use_gpu, dtype):
    logits, targets, losses = _sigmoid_inputs(dtype=dtype)
    loss = T.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    np_loss = np.array(losses).astype(np.float32)
    tf_loss = loss.numpy()
    np.testing.assert_allclose(tf_loss, np_loss, rtol=1e-6, atol=0.001)


@pytest.mark.parametrize("use_gpu", [True, False])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16], ids=str)
def test_logistic_output_multi_dim(use_gpu, dtype):
    logits, targets, losses = _sigmoid_inputs(dtype=dtype, sizes=[2, 2, 2])
    loss = T.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    np_loss = np.array(losses).astype(np.float32)
    tf_loss = loss.numpy()
    np.testing.assert_allclose(tf_loss, np_loss, rtol=1e-6, atol=0.001)


def test_sigmoid_gradient():
    sizes = [4, 2]
    logits, targets, _ = _sigmoid_inputs(sizes=sizes)
    err = _compute_gradient_error(lambda v: T.sigmoid_cross_entropy_with_logits(labels=targets, logits=v), logits)
    assert err < 1e-7


def test_gradient_at_zero():
    @tf.function
    def graph():
        logits = tf.constant([0.0, 0.0], dtype=tf.float64)
        targets = tf.constant([0.0, 1.0], dtype=tf.float64)
        loss = T.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.gradients(loss, logits)[0]

    np.testing.assert_allclose(graph().numpy(), [0.5, -0.5], rtol=1e-6, atol=1e-6)


@pytest.mark.xfail(strict=True, raises=TypeError, reason=LISTS_ARE_NO_ARRAYS)
def test_sigmoid_shape_error():
    with pytest.raises(ValueError, match="must have the same shape"):
        T.sigmoid_cross_entropy_with_logits(labels=[1, 2, 3], logits=[[2, 1]])


# --- WeightedCrossEntropyTest ------------------------------------------------------------------------


def _weighted_cross_entropy(logits, targets, pos_coeff):
    assert len(logits) == len(targets)
    pred = [1 / (1 + exp(-x)) for x in logits]
    eps = 0.0001
    pred = [min(max(p, eps), 1 - eps) for p in pred]
    return [-z * pos_coeff * log(y) - (1 - z) * log(1 - y) for y, z in zip(pred, targets)]


def _weighted_inputs(x=None, y=None, q=3.0, dtype=tf.float64, sizes=None):
    x = [-100, -2, -2, 0, 2, 2, 2, 100] if x is None else x
    y = [0, 0, 1, 0, 0, 1, 0.5, 1] if y is None else y
    assert len(x) == len(y)
    sizes = sizes if sizes else [len(x)]
    logits = tf.constant(x, shape=sizes, dtype=dtype, name="logits")
    targets = tf.constant(y, shape=sizes, dtype=dtype, name="targets")
    losses = np.array(_weighted_cross_entropy(x, y, q)).reshape(*sizes)
    return logits, targets, q, losses


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=NAME_IGNORED)
def test_weighted_construction_named():
    @tf.function
    def graph():
        logits, targets, pos_weight, _ = _weighted_inputs()
        loss = T.weighted_cross_entropy_with_logits(labels=targets, logits=logits, pos_weight=pos_weight, name="mybce")
        assert loss.op.name == "mybce", loss.op.name
        return loss

    graph()


@pytest.mark.parametrize("use_gpu", [True, False])
def test_weighted_output(use_gpu):
    logits, targets, pos_weight, losses = _weighted_inputs(dtype=tf.float32)
    loss = T.weighted_cross_entropy_with_logits(labels=targets, logits=logits, pos_weight=pos_weight)
    np_loss = np.array(losses).astype(np.float32)
    tf_loss = loss.numpy()
    np.testing.assert_allclose(tf_loss, np_loss, rtol=1e-6, atol=0.001)


@pytest.mark.parametrize("use_gpu", [True, False])
def test_weighted_output_multi_dim(use_gpu):
    logits, targets, pos_weight, losses = _weighted_inputs(dtype=tf.float32, sizes=[2, 2, 2])
    loss = T.weighted_cross_entropy_with_logits(labels=targets, logits=logits, pos_weight=pos_weight)
    np_loss = np.array(losses).astype(np.float32)
    tf_loss = loss.numpy()
    np.testing.assert_allclose(tf_loss, np_loss, rtol=1e-6, atol=0.001)


def test_weighted_gradient():
    sizes = [4, 2]
    logits, targets, pos_weight, _ = _weighted_inputs(sizes=sizes)

    def loss(v):
        return T.weighted_cross_entropy_with_logits(labels=targets, logits=v, pos_weight=pos_weight)

    assert _compute_gradient_error(loss, logits) < 1e-7


@pytest.mark.xfail(strict=True, raises=TypeError, reason=LISTS_ARE_NO_ARRAYS)
def test_weighted_shape_error():
    with pytest.raises(ValueError, match="must have the same shape"):
        T.weighted_cross_entropy_with_logits(labels=[1, 2, 3], logits=[[2, 1]], pos_weight=2.0)


@pytest.mark.parametrize("fn", ["sigmoid", "weighted"])
def test_shape_error_with_tensors(fn):
    """testShapeError's shapes as float tensors: the ValueError TF's own op gives."""
    labels, logits = tf.constant([1.0, 2.0, 3.0]), tf.constant([[2.0, 1.0]])
    with pytest.raises(ValueError, match="must have the same shape"):
        if fn == "sigmoid":
            T.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        else:
            T.weighted_cross_entropy_with_logits(labels=labels, logits=logits, pos_weight=2.0)
