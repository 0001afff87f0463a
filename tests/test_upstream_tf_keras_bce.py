"""tf-keras' ``BinaryCrossentropyTest``, ported onto bce_compat's Keras dialect on TensorFlow.

Upstream: keras-team/tf-keras, ``tf_keras/losses_test.py``, class ``BinaryCrossentropyTest``
(read at commit dd0a7237b9b24132dba3f491f3c84b0094ab796e). Each test keeps its inputs, expected
values and tolerances; ``losses.BinaryCrossentropy`` becomes the dialect's class of the same name
(``bce_compat.dialects.keras.BinaryCrossentropy``; ``losses_utils.ReductionV2.SUM`` and ``NONE``
are the strings "sum" and "none"). Harness: pytest instead of ``tf.test.TestCase``; upstream's
``test_combinations`` run each test in graph and eager mode: here "graph" computes the losses in a
``tf.function``. ``assertAlmostEqual(a, b, 3)`` is 3 decimal places; ``assertAllClose(a, b, 3)``
passes 3 as ``rtol``, as upstream does. The cases with probabilities of exactly 0 or 1 are split
into tests of their own: Keras clips probabilities to [1e-7, 1 - 1e-7] (and adds 1e-7 inside the
log), the dialect clamps the log at -100 as torch and Paddle do (README, "Dialect × backend").
"""

from __future__ import annotations

import numpy as np
import pytest

from bce_compat.dialects import keras as K

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'bce_compat[tf]')")

losses = K  # the module whose BinaryCrossentropy the tests construct
KERAS_CLIPS = ("Keras clips probabilities to [1e-7, 1 - 1e-7] (15.33 per element where the dialect's -100 log "
               "clamp gives 100): README, 'Dialect × backend'")


@pytest.fixture(params=["graph", "eager"])
def evaluate(request):
    """``evaluate(compute)``: the value of ``compute()``'s loss, computed eagerly or in a graph."""

    def run(compute):
        loss = tf.function(compute)() if request.param == "graph" else compute()
        return np.asarray(loss)

    return run


def assert_almost_equal(actual, desired, places=7):
    assert round(abs(float(actual) - desired), places) == 0, (actual, desired)


def test_config():
    bce_obj = losses.BinaryCrossentropy(reduction="sum", name="bce_1")
    assert bce_obj.name == "bce_1"
    assert bce_obj.reduction == "sum"


def test_all_correct_unweighted(evaluate):
    y_true = tf.constant([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=tf.float32)

    def probabilities():
        return losses.BinaryCrossentropy()(y_true, y_true)

    assert_almost_equal(evaluate(probabilities), 0.0, 3)

    # Test with logits.
    logits = tf.constant([[100.0, -100.0, -100.0], [-100.0, 100.0, -100.0], [-100.0, -100.0, 100.0]])

    def with_logits():
        return losses.BinaryCrossentropy(from_logits=True)(y_true, logits)

    assert_almost_equal(evaluate(with_logits), 0.0, 3)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=KERAS_CLIPS)
def test_unweighted_probabilities_at_0_and_1(evaluate):
    """test_unweighted's first case."""
    def compute():
        y_true = np.asarray([1, 0, 1, 0]).reshape([2, 2])
        y_pred = np.asarray([1, 1, 1, 0], dtype=np.float32).reshape([2, 2])
        return losses.BinaryCrossentropy()(y_true, y_pred)

    # Keras: [-log(Y_MAX + EPSILON), -log(1 - Y_MAX + EPSILON), ...] = [0, 15.33, 0, 0]; 15.33 / 4
    assert_almost_equal(evaluate(compute), 3.833, 3)


def test_unweighted(evaluate):
    """test_unweighted's second case (with logits)."""
    def compute():
        y_true = tf.constant([[1, 0, 1], [0, 1, 1]])
        logits = tf.constant([[100.0, -100.0, 100.0], [100.0, 100.0, -100.0]])
        return losses.BinaryCrossentropy(from_logits=True)(y_true, logits)

    # [(0 + 0 + 0) / 3, 200 / 3]; reduced: (0 + 66.666) / 2
    assert_almost_equal(evaluate(compute), 33.333, 3)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=KERAS_CLIPS)
def test_scalar_weighted_probabilities_at_0_and_1(evaluate):
    """test_scalar_weighted's first case."""
    def compute():
        y_true = np.asarray([1, 0, 1, 0]).reshape([2, 2])
        y_pred = np.asarray([1, 1, 1, 0], dtype=np.float32).reshape([2, 2])
        return losses.BinaryCrossentropy()(y_true, y_pred, sample_weight=2.3)

    assert_almost_equal(evaluate(compute), 8.817, 3)


def test_scalar_weighted(evaluate):
    """test_scalar_weighted's second case (with logits)."""
    def compute():
        y_true = tf.constant([[1, 0, 1], [0, 1, 1]])
        logits = tf.constant([[100.0, -100.0, 100.0], [100.0, 100.0, -100.0]])
        return losses.BinaryCrossentropy(from_logits=True)(y_true, logits, sample_weight=2.3)

    assert_almost_equal(evaluate(compute), 76.667, 3)


@pytest.mark.xfail(strict=True, raises=TypeError, reason=(
    "NumPy y_true/y_pred with a TensorFlow sample_weight are arrays of two libraries in one call, a TypeError "
    "(docs/contract.md §5: NumPy operands are converted beside a TensorFlow input, not the other way round); "
    "tf.keras converts all three to tensors. The values would differ too: " + KERAS_CLIPS))
def test_sample_weighted_probabilities_at_0_and_1(evaluate):
    """test_sample_weighted's first case."""
    def compute():
        y_true = np.asarray([1, 0, 1, 0]).reshape([2, 2])
        y_pred = np.asarray([1, 1, 1, 0], dtype=np.float32).reshape([2, 2])
        sample_weight = tf.constant([1.2, 3.4], shape=(2, 1))
        return losses.BinaryCrossentropy()(y_true, y_pred, sample_weight=sample_weight)

    assert_almost_equal(evaluate(compute), 4.6, 3)


def test_sample_weighted(evaluate):
    """test_sample_weighted's second case (with logits)."""
    def compute():
        y_true = tf.constant([[1, 0, 1], [0, 1, 1]])
        logits = tf.constant([[100.0, -100.0, 100.0], [100.0, 100.0, -100.0]])
        weights = tf.constant([4, 3])
        return losses.BinaryCrossentropy(from_logits=True)(y_true, logits, sample_weight=weights)

    assert_almost_equal(evaluate(compute), 100, 3)


def test_no_reduction(evaluate):
    def compute():
        y_true = tf.constant([[1, 0, 1], [0, 1, 1]])
        logits = tf.constant([[100.0, -100.0, 100.0], [100.0, 100.0, -100.0]])
        return losses.BinaryCrossentropy(from_logits=True, reduction="none")(y_true, logits)

    np.testing.assert_allclose((0.0, 66.6666), evaluate(compute), 3)


def test_label_smoothing(evaluate):
    label_smoothing = 0.1

    def compute():
        logits = tf.constant([[100.0, -100.0, -100.0]])
        y_true = tf.constant([[1, 0, 1]])
        return losses.BinaryCrossentropy(from_logits=True, label_smoothing=label_smoothing)(y_true, logits)

    # (100 + 50L) * 1/3
    assert_almost_equal(evaluate(compute), (100.0 + 50.0 * label_smoothing) / 3.0, 3)


def test_label_smoothing_ndarray(evaluate):
    label_smoothing = 0.1

    def compute():
        logits = np.asarray([[100.0, -100.0, -100.0]])
        y_true = np.asarray([[1, 0, 1]])
        return losses.BinaryCrossentropy(from_logits=True, label_smoothing=label_smoothing)(y_true, logits)

    assert_almost_equal(evaluate(compute), (100.0 + 50.0 * label_smoothing) / 3.0, 3)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=KERAS_CLIPS)
def test_ragged_tensors_probabilities_at_0_and_1(evaluate):
    """test_ragged_tensors' first case."""
    def compute():
        y_true = tf.ragged.constant([[1, 0, 1], [0]])
        y_pred = tf.ragged.constant([[1, 1, 1], [0]], dtype=tf.float32)
        sample_weight = tf.constant([1.2, 3.4], shape=(2, 1))
        return losses.BinaryCrossentropy()(y_true, y_pred, sample_weight=sample_weight)

    # per batch loss = [sum([0, 15.33, 0]) / 3, 0.] = [5.11, 0]; reduced: 5.11 * 1.2 / 2
    assert_almost_equal(evaluate(compute), 3.0666, 3)


def test_ragged_tensors(evaluate):
    """test_ragged_tensors' second case (with logits)."""
    def compute():
        y_true = tf.ragged.constant([[1, 0, 1], [0, 1]])
        logits = tf.ragged.constant([[100.0, -100.0, 100.0], [100.0, 100.0]])
        weights = tf.constant([4, 3])
        return losses.BinaryCrossentropy(from_logits=True)(y_true, logits, sample_weight=weights)

    # [(0 + 0 + 0) / 3, 100 / 2]; weighted [0 * 4, 50 * 3]; reduced (0 + 50 * 3) / 2
    assert_almost_equal(evaluate(compute), 75.0, 3)
