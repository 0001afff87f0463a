"""Keras 3's ``BinaryCrossentropyTest``, ported onto bce_compat's Keras dialect, on every backend.

Upstream: keras-team/keras, ``keras/src/losses/losses_test.py``, class ``BinaryCrossentropyTest``
(read at commit 3422977a5e38fb2f7709aaa9a08e47f0c43d0f60). Each test keeps its inputs, expected
values and tolerances; ``losses.BinaryCrossentropy`` becomes, in turn, the dialect's class of the
same name (``bce_compat.dialects.keras.BinaryCrossentropy``) on each backend's arrays (Keras 3 is
multi-backend: the NumPy inputs are converted to the backend's arrays, dtypes kept), and
``bce_compat.keras.BinaryCrossentropy``, the ``keras.losses.Loss`` subclass (NumPy inputs, Keras'
own backend). Harness: pytest instead of ``testing.TestCase``; its ``assertAllClose`` (atol = rtol
= 1e-6) and ``assertAlmostEqual`` (3 decimals) are kept. The cases with probabilities of exactly
0 or 1 are split into tests of their own: Keras clips probabilities to [1e-7, 1 - 1e-7], the
dialect clamps the log at -100 as torch and Paddle do (README, "Dialect × backend").
"""

from __future__ import annotations

import numpy as np
import pytest

from bce_compat._registry import backend_for_type
from bce_compat.backends._float_dtypes import dtype_name
from bce_compat.conformance import frameworks
from bce_compat.dialects import keras as K

KERAS_CLIPS = ("Keras clips probabilities to [1e-7, 1 - 1e-7] (16.1 per element where the dialect's -100 log "
               "clamp gives 100): README, 'Dialect × backend'")
KERAS_LOSS = "keras.Loss"  # bce_compat.keras.BinaryCrossentropy on NumPy inputs


class Impl:
    """One implementation under test: the class, and how NumPy inputs become its arrays."""

    def __init__(self, name):
        self.name = name
        if name == KERAS_LOSS:
            pytest.importorskip("keras", reason="Keras is not installed")
            from bce_compat.keras import BinaryCrossentropy

            self.cls, self.bench = BinaryCrossentropy, None
            return
        benches = frameworks.available((name,))
        if name not in benches:
            pytest.skip(f"{name} is not installed or not selected")
        self.cls, self.bench = K.BinaryCrossentropy, benches[name]

    def array(self, values):
        return values if self.bench is None or not isinstance(values, np.ndarray) else self.bench.keep_dtype(values)

    def numpy(self, result):
        if self.bench is not None and backend_for_type(type(result)) is not None:
            return np.asarray(self.bench.to_numpy(result))
        return np.asarray(result, dtype=np.float64) if dtype_name(result.dtype) == "bfloat16" else np.asarray(result)

    def __call__(self, obj, y_true, y_pred, **kwargs):
        if isinstance(kwargs.get("sample_weight"), np.ndarray):
            kwargs["sample_weight"] = self.array(kwargs["sample_weight"])
        return obj(self.array(y_true), self.array(y_pred), **kwargs)


@pytest.fixture(params=[*frameworks.bench_names(), KERAS_LOSS])
def impl(request):
    return Impl(request.param)


def assert_all_close(impl, actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(impl.numpy(actual), desired, atol=atol, rtol=rtol)


def assert_almost_equal(impl, actual, desired, decimal=3):
    np.testing.assert_almost_equal(impl.numpy(actual), desired, decimal=decimal)


def test_config(impl):
    if impl.name != KERAS_LOSS:
        pytest.skip("the dialect's class is not a Keras object (no Keras serialization); the keras.Loss subclass is")
    from keras.src.testing import test_case

    test_case.TestCase().run_class_serialization_test(impl.cls(name="bce", axis=-1))


def test_all_correct_unweighted(impl):
    y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype="float32")
    bce_obj = impl.cls()
    loss = impl(bce_obj, y_true, y_true)
    assert_almost_equal(impl, loss, 0.0)

    # Test with logits.
    logits = np.array([[10.0, -10.0, -10.0], [-10.0, 10.0, -10.0], [-10.0, -10.0, 10.0]])
    bce_obj = impl.cls(from_logits=True)
    loss = impl(bce_obj, y_true, logits)
    assert_almost_equal(impl, loss, 0.0)


def test_unweighted(impl):
    y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype="float32")
    y_pred = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]], dtype="float32")
    bce_obj = impl.cls()
    loss = impl(bce_obj, y_true, y_pred)
    assert_all_close(impl, loss, 0.20046903)

    # Test with logits.
    y_true = np.array([[1, 0, 1], [0, 1, 1]])
    logits = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])
    bce_obj = impl.cls(from_logits=True)
    loss = impl(bce_obj, y_true, logits)
    assert_almost_equal(impl, loss, 3.3333)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=KERAS_CLIPS)
def test_unweighted_probabilities_at_0_and_1(impl):
    """test_unweighted's second case."""
    y_true = np.array([1, 0, 1, 0]).reshape([2, 2])
    y_pred = np.array([1, 1, 1, 0], dtype=np.float32).reshape([2, 2])
    bce_obj = impl.cls()
    loss = impl(bce_obj, y_true, y_pred)
    assert_almost_equal(impl, loss, 3.98559)


def test_scalar_weighted(impl):
    """test_scalar_weighted's second case (with logits); its first is the next test."""
    y_true = np.array([[1, 0, 1], [0, 1, 1]])
    logits = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])
    bce_obj = impl.cls(from_logits=True)
    loss = impl(bce_obj, y_true, logits, sample_weight=2.3)
    assert_almost_equal(impl, loss, 7.666)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=KERAS_CLIPS)
def test_scalar_weighted_probabilities_at_0_and_1(impl):
    bce_obj = impl.cls()
    y_true = np.array([1, 0, 1, 0]).reshape([2, 2])
    y_pred = np.array([1, 1, 1, 0], dtype="float32").reshape([2, 2])
    loss = impl(bce_obj, y_true, y_pred, sample_weight=2.3)
    assert_almost_equal(impl, loss, 9.1668)


def test_sample_weighted(impl):
    """test_sample_weighted's second case (with logits); its first is the next test."""
    y_true = np.array([[1, 0, 1], [0, 1, 1]])
    logits = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])
    weights = np.array([4, 3])
    bce_obj = impl.cls(from_logits=True)
    loss = impl(bce_obj, y_true, logits, sample_weight=weights)
    assert_almost_equal(impl, loss, 10.0)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=KERAS_CLIPS)
def test_sample_weighted_probabilities_at_0_and_1(impl):
    bce_obj = impl.cls()
    y_true = np.array([1, 0, 1, 0]).reshape([2, 2])
    y_pred = np.array([1, 1, 1, 0], dtype="float32").reshape([2, 2])
    sample_weight = np.array([1.2, 3.4]).reshape((2, 1))
    loss = impl(bce_obj, y_true, y_pred, sample_weight=sample_weight)
    assert_almost_equal(impl, loss, 4.7827)


def test_no_reduction(impl):
    y_true = np.array([[1, 0, 1], [0, 1, 1]])
    logits = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])
    bce_obj = impl.cls(from_logits=True, reduction=None)
    loss = impl(bce_obj, y_true, logits)
    assert_all_close(impl, loss, [0.0, 6.666], atol=1e-3)


def test_label_smoothing(impl):
    logits = np.array([[10.0, -10.0, -10.0]])
    y_true = np.array([[1, 0, 1]])
    label_smoothing = 0.1
    bce_obj = impl.cls(from_logits=True, label_smoothing=label_smoothing)
    loss = impl(bce_obj, y_true, logits)
    expected_value = (10.0 + 5.0 * label_smoothing) / 3.0
    assert_almost_equal(impl, loss, expected_value)


def test_shape_mismatch(impl):
    y_true = np.array([[0], [1], [2]])
    y_pred = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]])
    cce_obj = impl.cls()
    with pytest.raises(ValueError, match="must have the same shape"):
        impl(cce_obj, y_true, y_pred)


def test_dtype_arg(impl):
    if impl.bench is not None and "bfloat16" not in impl.bench.dtypes:
        pytest.skip(f"{impl.name} has no bfloat16")  # upstream skips Keras' torch backend likewise
    y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype="float32")
    y_pred = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]], dtype="float32")
    bce_obj = impl.cls(dtype="bfloat16")
    loss = impl(bce_obj, y_true, y_pred)
    assert dtype_name(loss.dtype) == "bfloat16"
