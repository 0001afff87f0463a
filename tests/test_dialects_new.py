"""The Keras, tf.nn and optax dialects: exact on every backend, and equal to each framework's own op where that op is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _options_reference import exact_focal, exact_smoothed_logits, exact_smoothed_probs
from _reference import (
    assert_close,
    assert_result,
    exact_logits_grad,
    exact_logits_loss,
    exact_probs_loss,
    skip_unless_dtype,
)
from bce_compat.dialects import keras as K
from bce_compat.dialects import optax as O
from bce_compat.dialects import tf as T

LOGITS = [-math.inf, -1e30, -100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 100.0, 1e30, math.inf]
TARGETS = [0.0, 0.3, 1.0]
PROBS = [0.0, 1e-7, 0.25, 0.5, 0.9999999, 1.0]
DTYPES = ["float32", "float64"]
FLUSH = ("jax", "tensorflow")


def _grid(rows, dtype):
    x = np.repeat(np.asarray(rows, dtype=dtype)[:, None], len(TARGETS), axis=1)
    return x, np.broadcast_to(np.asarray(TARGETS, dtype=dtype), x.shape).copy()


def _arrays(framework, dtype, *values):
    return [framework.asarray(v, dtype) for v in values]


def _mean_last_axis(loss):
    return np.asarray([math.fsum(row) / len(row) for row in loss.tolist()])


# --- exact on every backend ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_tf_dialect_is_exact_and_takes_labels_first(framework, dtype):
    skip_unless_dtype(framework, dtype)
    x_np, y_np = _grid(LOGITS, dtype)
    x, y = _arrays(framework, dtype, x_np, y_np)
    assert_result(T.sigmoid_cross_entropy_with_logits(y, x), x, framework, dtype, x_np.shape, exact_logits_loss(x_np, y_np))
    assert_result(T.sigmoid_cross_entropy_with_logits(labels=y, logits=x), x, framework, dtype, x_np.shape, exact_logits_loss(x_np, y_np))
    q = np.asarray([3.0, 1.0, 0.25], dtype=dtype)
    result = T.weighted_cross_entropy_with_logits(y, x, framework.asarray(q, dtype))
    assert_result(result, x, framework, dtype, x_np.shape, exact_logits_loss(x_np, y_np, pos_weight=q))
    assert_result(T.weighted_cross_entropy_with_logits(y, x, 2.0), x, framework, dtype, x_np.shape, exact_logits_loss(x_np, y_np, pos_weight=2.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_optax_dialect_is_exact_and_takes_logits_first(framework, dtype):
    skip_unless_dtype(framework, dtype)
    x_np, y_np = _grid(LOGITS, dtype)
    x, y = _arrays(framework, dtype, x_np, y_np)
    assert_result(O.sigmoid_binary_cross_entropy(x, y), x, framework, dtype, x_np.shape, exact_logits_loss(x_np, y_np))
    assert_result(O.sigmoid_focal_loss(x, y), x, framework, dtype, x_np.shape, exact_focal(x_np, y_np, -1.0, 2.0)[0])
    assert_result(O.sigmoid_focal_loss(x, y, alpha=0.25, gamma=0.5), x, framework, dtype, x_np.shape, exact_focal(x_np, y_np, 0.25, 0.5)[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_keras_function_is_the_exact_mean_over_axis(framework, from_logits, eps, dtype):
    skip_unless_dtype(framework, dtype)
    x_np, y_np = _grid(LOGITS if from_logits else PROBS, dtype)
    x, y = _arrays(framework, dtype, x_np, y_np)
    result = K.binary_crossentropy(y, x, from_logits=from_logits, label_smoothing=eps)
    exact = (exact_smoothed_logits if from_logits else exact_smoothed_probs)(x_np, y_np, eps)[0]
    assert_result(result, x, framework, dtype, (x_np.shape[0],), _mean_last_axis(exact), size=x_np.shape[1])
    first_axis = K.binary_crossentropy(y, x, from_logits=from_logits, label_smoothing=eps, axis=0)
    assert_result(first_axis, x, framework, dtype, (x_np.shape[1],), _mean_last_axis(exact.T), size=x_np.shape[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_new_dialect_gradients_are_exact(autograd_framework, dtype):
    fw = autograd_framework
    skip_unless_dtype(fw, dtype)
    x_np, y_np = _grid([v for v in LOGITS if math.isfinite(v)], dtype)
    x, y = _arrays(fw, dtype, x_np, y_np)
    grad, bound = exact_logits_grad(x_np, y_np)
    for loss in (
        lambda a, b: T.sigmoid_cross_entropy_with_logits(b, a),
        lambda a, b: O.sigmoid_binary_cross_entropy(a, b),
        lambda a, b: K.binary_crossentropy(b, a, from_logits=True) * x_np.shape[1],  # undo the mean
    ):
        _, (got,) = fw.value_and_grad(loss, [x, y], [0])
        assert_close(got, grad, dtype, bound=bound, flush_subnormals=fw.name in FLUSH)
    q = 3.0
    _, (got,) = fw.value_and_grad(lambda a, b: T.weighted_cross_entropy_with_logits(b, a, q), [x, y], [0])
    grad, bound = exact_logits_grad(x_np, y_np, pos_weight=q)
    assert_close(got, grad, dtype, bound=bound, flush_subnormals=fw.name in FLUSH)
    _, (got,) = fw.value_and_grad(lambda a, b: O.sigmoid_focal_loss(a, b, alpha=0.25), [x, y], [0])
    _, grad, bound = exact_focal(x_np, y_np, 0.25, 2.0)
    assert_close(got, grad, dtype, bound=bound, flush_subnormals=fw.name in FLUSH)


# --- Keras' reductions ---------------------------------------------------------------------------

Y_TRUE = np.array([[0.0, 1.0], [0.0, 0.0]])
Y_PRED = np.array([[-18.6, 0.51], [2.94, -12.8]])  # Keras' BinaryCrossentropy page example


def _keras_value(reduction, sample_weight):
    """The same call through bce_compat's Keras dialect, in float64 NumPy, computed by hand."""
    per_sample = _mean_last_axis(exact_logits_loss(Y_PRED, Y_TRUE))
    weighted = per_sample if sample_weight is None else per_sample * np.asarray(sample_weight)
    if reduction in (None, "none"):
        return weighted
    total = math.fsum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return total / math.fsum(np.atleast_1d(sample_weight).tolist())  # Keras: sum of the weights as given
    return total / weighted.size


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight"])
@pytest.mark.parametrize("sample_weight", [None, [0.8, 0.2], 2.0], ids=["none", "per-sample", "scalar"])
def test_keras_class_reductions(reduction, sample_weight):
    sw = np.asarray(sample_weight) if isinstance(sample_weight, list) else sample_weight
    got = K.BinaryCrossentropy(from_logits=True, reduction=reduction)(Y_TRUE, Y_PRED, sample_weight=sw)
    assert_close(got, _keras_value(reduction, sample_weight), "float64", ulps=8)


def test_keras_class_zero_divisor_and_rank_matching():
    loss = K.BinaryCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
    assert float(loss(Y_TRUE, Y_PRED, sample_weight=np.zeros(2))) == 0.0  # divide_no_nan
    y_true, y_pred = np.array([1.0, 0.0, 1.0]), np.array([[2.0], [-1.0], [0.5]])  # (N,) against (N, 1)
    got = K.BinaryCrossentropy(from_logits=True, reduction=None)(y_true, y_pred)
    assert_close(got, exact_logits_loss(y_pred[:, 0], y_true), "float64")
    with pytest.raises(ValueError, match="reduction"):
        K.BinaryCrossentropy(reduction="batchmean")
    with pytest.raises(ValueError, match="axis"):
        K.binary_crossentropy(Y_TRUE, Y_PRED, axis=2)
    with pytest.raises(ValueError, match="label_smoothing"):
        K.BinaryCrossentropy(label_smoothing=2.0)


def test_keras_class_weights_summing_to_zero_give_zero_not_the_weighted_total():
    """divide_no_nan with a nonzero numerator: weights [1, -1] sum to 0 while the weighted total is
    loss(row 0) - loss(row 1) = -1.26; Keras 3.15 gives 0.0 for this call, and so must the dialect."""
    loss = K.BinaryCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
    per_sample = _mean_last_axis(exact_logits_loss(Y_PRED, Y_TRUE))
    assert abs(per_sample[0] - per_sample[1]) > 0.5  # the numerator that must not come back
    assert float(loss(Y_TRUE, Y_PRED, sample_weight=np.array([1.0, -1.0]))) == 0.0


@pytest.mark.parametrize("true_shape, weight_shape, expected_shape", [
    ((5, 1, 1), (5,), (5, 1)),  # per-sample losses (5, 1) against weights (5,): the weights gain the axis
    ((5, 1), (5, 1), (5, 1)),  # losses (5,) against weights (5, 1): the losses gain it
    ((5, 3), (5, 1), (5, 1)),
])
def test_keras_class_matches_the_ranks_of_losses_and_sample_weight_as_keras(true_shape, weight_shape, expected_shape):
    """Keras' ``squeeze_or_expand_to_same_rank`` between the per-sample losses and
    ``sample_weight``; the shapes are Keras 3.15's own for these inputs."""
    rng = np.random.default_rng(5)
    y_true, y_pred = (rng.random(true_shape) > 0.5).astype(np.float64), rng.standard_normal(true_shape) * 3
    weight = rng.random(weight_shape) + 0.5
    got = K.BinaryCrossentropy(from_logits=True, reduction=None)(y_true, y_pred, sample_weight=weight)
    per_sample = _mean_last_axis(exact_logits_loss(y_pred, y_true).reshape(-1, true_shape[-1]))
    assert got.shape == expected_shape
    assert_close(got.reshape(-1), per_sample * weight.reshape(-1), "float64", ulps=8)


def test_keras_class_half_dtype_rounds_sample_weight_to_it_before_weighting():
    """With ``dtype="float16"``, Keras rounds ``sample_weight`` to float16 and weighs the float32
    losses with it; the product is then rounded once. Bit for bit, on weights float16 cannot hold
    (a tolerance of an ulp cannot tell the rounded weight from the unrounded one)."""
    rng = np.random.default_rng(0)
    y_true, y_pred = (rng.random((4000, 1)) > 0.5).astype(np.float32), rng.random((4000, 1)).astype(np.float32)
    weight = (rng.random(4000) * 3).astype(np.float32)
    got = K.BinaryCrossentropy(dtype="float16", reduction=None)(y_true, y_pred, sample_weight=weight)
    widened = [a.astype(np.float16).astype(np.float32) for a in (y_true, y_pred, weight)]
    losses = K.binary_crossentropy(widened[0], widened[1])  # float32, as the class computes them
    expected = (losses * widened[2]).astype(np.float16)
    assert got.dtype == np.float16 and np.array_equal(got, expected)
    assert not np.array_equal(expected, (losses * weight).astype(np.float16))  # the weight's rounding shows


def test_keras_dtype_casts_both_inputs():
    got = K.BinaryCrossentropy(from_logits=True, dtype="float32")(Y_TRUE, Y_PRED)
    assert got.dtype == np.float32


@pytest.mark.parametrize("axis, kept", [(-2, 1), (-1, 0), (0, 1), (1, 0)])
def test_keras_axis_takes_every_valid_negative_and_positive_value(axis, kept):
    """Keras' ``axis`` is any int in [-ndim, ndim): axis=-2 of a 2-D batch is axis 0, the mean down each
    column; -3 and 2 are out of range, a ValueError naming ``axis``."""
    got = K.binary_crossentropy(Y_TRUE, Y_PRED, from_logits=True, axis=axis)
    exact = exact_logits_loss(Y_PRED, Y_TRUE)
    assert_close(got, _mean_last_axis(exact if kept == 0 else exact.T), "float64")
    for bad in (-3, 2):
        with pytest.raises(ValueError, match="axis"):
            K.binary_crossentropy(Y_TRUE, Y_PRED, from_logits=True, axis=bad)


def test_keras_class_half_dtype_rounds_soft_targets_as_well():
    """With ``dtype="float16"`` Keras casts ``y_true`` to float16 too, not only ``y_pred``: a soft target
    of 0.999 becomes 0.99902, which changes the loss at x = 10 by 2% (its 1 - y is 0.001). The result is
    the exact loss of both rounded inputs, rounded once."""
    y_true, y_pred = np.array([[0.999], [0.3], [0.7]]), np.array([[10.0], [-2.0], [3.0]])
    got = K.BinaryCrossentropy(from_logits=True, dtype="float16", reduction=None)(y_true, y_pred)
    rounded = [a.astype(np.float16).astype(np.float64) for a in (y_true, y_pred)]
    assert got.dtype == np.float16
    assert_close(got, _mean_last_axis(exact_logits_loss(rounded[1], rounded[0])), "float16", ulps=1)


def test_keras_float_targets_take_the_predictions_dtype():
    got = K.binary_crossentropy(Y_TRUE.astype(np.float64), Y_PRED.astype(np.float32), from_logits=True)
    assert got.dtype == np.float32


@pytest.mark.parametrize("layout", ["0d-target-error", "strided", "empty"])
def test_new_dialects_on_layouts(layout):
    if layout == "0d-target-error":
        with pytest.raises(ValueError, match="axis"):
            K.binary_crossentropy(np.array(1.0), np.array(0.5))
        assert T.sigmoid_cross_entropy_with_logits(np.array(1.0), np.array(0.0)).shape == ()
        return
    if layout == "strided":
        x = np.linspace(-40, 40, 24).reshape(4, 6)[:, ::2]
        y = (x > 0).astype(np.float64)
    else:
        x = y = np.zeros((2, 0))
    assert_close(O.sigmoid_binary_cross_entropy(x, y), exact_logits_loss(x, y), "float64")
    assert_close(T.sigmoid_cross_entropy_with_logits(y, x), exact_logits_loss(x, y), "float64")
    keras_mean = K.binary_crossentropy(y, x, from_logits=True)
    expected = _mean_last_axis(exact_logits_loss(x, y)) if x.shape[1] else np.full(x.shape[0], np.nan)
    assert_close(keras_mean, expected, "float64")


def test_tf_dialect_needs_both_arguments():
    with pytest.raises(ValueError, match="labels"):
        T.sigmoid_cross_entropy_with_logits(logits=np.zeros(2))


# --- each framework's own op, where it is exact ---------------------------------------------------

RNG = np.random.default_rng(7)
ORDINARY_X = RNG.normal(scale=4.0, size=(6, 5)).astype(np.float32)
ORDINARY_Y = (RNG.random((6, 5)) < 0.4).astype(np.float32)
ORDINARY_Q = RNG.uniform(1e-3, 1 - 1e-3, size=(6, 5)).astype(np.float32)


def _tf():
    return pytest.importorskip("tensorflow")


def test_tf_dialect_matches_tf_nn():
    """tf.nn computes max(x, 0) - x*z + log1p(exp(-|x|)), which cancels for z = 1, x >> 0 (1% off at
    x = 10 in float32); in float64 that error is far below float32's, so float64 tf.nn is the reference."""
    tf = _tf()
    x, y = tf.constant(ORDINARY_X), tf.constant(ORDINARY_Y)
    x64, y64 = tf.cast(x, tf.float64), tf.cast(y, tf.float64)
    np.testing.assert_allclose(T.sigmoid_cross_entropy_with_logits(y, x), tf.nn.sigmoid_cross_entropy_with_logits(y64, x64), rtol=1e-6)
    np.testing.assert_allclose(
        T.weighted_cross_entropy_with_logits(y, x, 2.5), tf.nn.weighted_cross_entropy_with_logits(y64, x64, 2.5), rtol=1e-6
    )


def test_keras_dialect_matches_keras():
    _tf()
    keras = pytest.importorskip("keras")
    for from_logits, pred in ((True, ORDINARY_X), (False, ORDINARY_Q)):
        for eps in (0.0, 0.2):
            want = keras.losses.binary_crossentropy(ORDINARY_Y, pred, from_logits=from_logits, label_smoothing=eps)
            got = K.binary_crossentropy(ORDINARY_Y, pred, from_logits=from_logits, label_smoothing=eps)
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5)
    sw = np.linspace(0.1, 1.0, 6).astype(np.float32)
    for reduction in ("sum_over_batch_size", "sum", None, "mean", "mean_with_sample_weight"):
        want = keras.losses.BinaryCrossentropy(from_logits=True, reduction=reduction)(ORDINARY_Y, ORDINARY_X, sample_weight=sw)
        got = K.BinaryCrossentropy(from_logits=True, reduction=reduction)(ORDINARY_Y, ORDINARY_X, sample_weight=sw)
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5)


def test_optax_dialect_matches_optax():
    pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    x, y = jnp.asarray(ORDINARY_X), jnp.asarray(ORDINARY_Y)
    np.testing.assert_allclose(O.sigmoid_binary_cross_entropy(x, y), optax.losses.sigmoid_binary_cross_entropy(x, y), rtol=2e-6, atol=1e-7)
    for alpha, gamma in ((None, 2.0), (0.25, 2.0), (0.5, 0.5)):
        np.testing.assert_allclose(
            O.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma),
            optax.losses.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma),
            rtol=1e-4, atol=1e-7,
        )


def test_keras_loss_subclass_trains_like_keras():
    _tf()
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the comparison below runs on TF-backed Keras")
    from bce_compat.keras import BinaryCrossentropy

    x = RNG.normal(size=(32, 3)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")

    def fit(loss):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
        return np.asarray(history.history["loss"]), model.get_weights()[0]

    ours, theirs = fit(BinaryCrossentropy(from_logits=True)), fit(keras.losses.BinaryCrossentropy(from_logits=True))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    config = BinaryCrossentropy(from_logits=True, label_smoothing=0.1).get_config()
    assert BinaryCrossentropy.from_config(config).label_smoothing == 0.1


def test_keras_loss_subclass_keeps_axis_and_smoothing_through_its_config():
    """``bce_compat.keras.BinaryCrossentropy(axis=0, label_smoothing=0.2)`` averages the smoothed loss
    over axis 0 (one value per column), and so does the loss rebuilt by ``from_config(get_config())``."""
    _tf()
    pytest.importorskip("keras")
    from bce_compat.keras import BinaryCrossentropy

    loss = BinaryCrossentropy(from_logits=True, label_smoothing=0.2, axis=0, reduction=None)
    exact = exact_smoothed_logits(ORDINARY_X.astype(np.float64), ORDINARY_Y.astype(np.float64), 0.2)[0]
    for candidate in (loss, BinaryCrossentropy.from_config(loss.get_config())):
        got = np.asarray(candidate(ORDINARY_Y, ORDINARY_X))
        assert_close(got, _mean_last_axis(exact.T), "float32", ulps=8)


@pytest.mark.parametrize("missing", ["y_true", "y_pred"])
def test_keras_dialect_names_a_missing_argument(missing):
    args = {"y_true": np.zeros((2, 3)), "y_pred": np.full((2, 3), 0.5), missing: None}
    with pytest.raises(TypeError, match=f"`{missing}` must be an array; got None"):
        K.binary_crossentropy(**args)
    with pytest.raises(TypeError, match=f"`{missing}` must be an array; got None"):
        K.BinaryCrossentropy()(**args)


# --- Keras' `dtype` argument in half precision (issue 23 item 9): computed in float32, rounded once


HALF_Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
HALF_Q = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7], [0.6, 0.45, 0.05]])
HALF_X = np.array([[2.5, -1.0, -3.0], [-0.5, 1.5, -8.0], [-2.0, 0.25, 4.0], [10.0, -0.75, 0.0]])


@pytest.mark.parametrize("half", ["bfloat16", "float16"])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_keras_class_dtype_half_is_rounded_once_on_every_backend(framework, from_logits, reduction, half):
    skip_unless_dtype(framework, half)
    pred_np = HALF_X if from_logits else HALF_Q
    y_true, y_pred = (framework.asarray(a, "float32") for a in (HALF_Y, pred_np))
    sample_weight = framework.asarray([0.5, 2.0, 1.25, 3.0], "float32")
    got = K.BinaryCrossentropy(from_logits=from_logits, reduction=reduction, dtype=half)(y_true, y_pred, sample_weight)
    # Keras casts both inputs to `dtype` first: the exact loss of the rounded inputs, rounded once
    rounded = [framework.to_numpy(framework.asarray(a, half)) for a in (HALF_Y, pred_np, [0.5, 2.0, 1.25, 3.0])]
    exact_elements = (exact_logits_loss if from_logits else exact_probs_loss)(rounded[1], rounded[0])
    per_sample = _mean_last_axis(exact_elements) * rounded[2]
    expected = {"none": per_sample, "sum": math.fsum(per_sample), "sum_over_batch_size": math.fsum(per_sample) / 4,
                "mean_with_sample_weight": math.fsum(per_sample) / math.fsum(rounded[2])}[reduction]
    assert_result(got, y_pred, framework, half, np.shape(expected), np.asarray(expected), ulps=1)


def test_keras_class_dtype_the_library_lacks_names_the_argument():
    with pytest.raises(TypeError, match="`dtype` must be a floating dtype that numpy arrays have; got 'bfloat16'"):
        K.BinaryCrossentropy(dtype="bfloat16")(HALF_Y, HALF_Q)


def test_keras_class_half_inputs_without_dtype_keep_their_dtype_and_round_once(framework):
    skip_unless_dtype(framework, "bfloat16")
    y_true, y_pred = (framework.asarray(a, "bfloat16") for a in (HALF_Y, HALF_X))
    got = K.BinaryCrossentropy(from_logits=True)(y_true, y_pred, framework.asarray([0.5, 2.0, 1.25, 3.0], "bfloat16"))
    rounded = [framework.to_numpy(a) for a in (y_true, y_pred)]
    weights = framework.to_numpy(framework.asarray([0.5, 2.0, 1.25, 3.0], "bfloat16"))
    expected = math.fsum(_mean_last_axis(exact_logits_loss(rounded[1], rounded[0])) * weights) / 4
    assert_result(got, y_pred, framework, "bfloat16", (), np.asarray(expected), ulps=1)


# --- tf.keras' ragged batches: one loss per row, the mean over the row's own length


def _ragged_case():
    tf = _tf()
    rows_x = [[100.0, -100.0, 2.5], [0.5, -3.0], [7.0]]
    rows_y = [[1.0, 0.0, 0.3], [0.0, 1.0], [0.75]]
    exact_rows = [float(np.mean(exact_logits_loss(np.array(x), np.array(y)))) for x, y in zip(rows_x, rows_y)]
    return tf, tf.ragged.constant(rows_y, dtype=tf.float32), tf.ragged.constant(rows_x, dtype=tf.float32), exact_rows


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_keras_dialect_takes_ragged_batches_row_by_row(mode):
    tf, y_true, logits, exact_rows = _ragged_case()

    def losses():
        per_row = K.binary_crossentropy(y_true, logits, from_logits=True)
        weighted = K.BinaryCrossentropy(from_logits=True)(y_true, logits, sample_weight=tf.constant([1.0, 2.0, 4.0]))
        return per_row, weighted

    per_row, weighted = tf.function(losses)() if mode == "tf.function" else losses()
    assert per_row.dtype == tf.float32 and tuple(per_row.shape) == (3,)
    assert_close(per_row.numpy(), np.asarray(exact_rows), "float32", ulps=8)
    expected = math.fsum(r * w for r, w in zip(exact_rows, (1.0, 2.0, 4.0))) / 3
    assert_close(weighted.numpy(), np.asarray(expected), "float32", ulps=8)


def test_keras_dialect_ragged_probabilities_smoothing_and_half_dtype():
    tf, y_true, _, _ = _ragged_case()
    q = tf.ragged.constant([[0.9, 0.2, 0.5], [0.4, 0.7], [0.6]], dtype=tf.float32)
    got = K.binary_crossentropy(y_true, q, label_smoothing=0.2).numpy()
    rows = [exact_smoothed_probs(np.asarray(a, np.float64), np.asarray(b, np.float64), 0.2)[0].mean()
            for a, b in zip(q.numpy(), y_true.numpy())]
    assert_close(got, np.asarray(rows), "float32", ulps=8)
    half = K.BinaryCrossentropy(dtype="bfloat16")(y_true, q)
    assert half.dtype == tf.bfloat16
    rounded = [(np.asarray(tf.cast(tf.cast(a, tf.bfloat16), tf.float64)), np.asarray(b, np.float64))
               for a, b in zip(q.numpy(), y_true.numpy())]
    expected = math.fsum(float(exact_probs_loss(a, b).mean()) for a, b in rounded) / 3
    assert_close(np.asarray(tf.cast(half, tf.float64)), np.asarray(expected), "bfloat16", ulps=1)


def test_keras_dialect_ragged_errors_name_the_problem():
    tf, y_true, logits, _ = _ragged_case()
    with pytest.raises(TypeError, match="both be ragged or both dense"):
        K.binary_crossentropy(y_true.to_tensor(), logits, from_logits=True)
    with pytest.raises(ValueError, match=r"shape \[batch, None\]"):
        K.binary_crossentropy(y_true, logits, from_logits=True, axis=0)
    other_rows = tf.ragged.constant([[1.0, 0.0], [0.0, 1.0, 1.0], [0.75]])
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="row lengths differ"):
        K.binary_crossentropy(other_rows, logits, from_logits=True)
