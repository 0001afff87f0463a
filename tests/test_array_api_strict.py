"""array-api-strict: the proof that the frontend uses only the array-API standard.

array_api_strict arrays offer nothing beyond the standard (no methods, no implicit NumPy
conversion, strict promotion), so the whole shim running on them, both dialects, every reduction,
weight, pos_weight and probabilities, and matching a float64 NumPy reference, shows that no
non-standard call hides in the validation, promotion, math or reduction.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import bce_compat
from _float64_reference import logits_reference, probs_reference
from bce_compat._registry import backend_for_type
from bce_compat.dialects import paddle as paddle_dialect

xps = pytest.importorskip("array_api_strict")

REDUCTIONS = ("none", "mean", "sum")
RNG = np.random.default_rng(3)
TOLERANCE = {"float32": 2e-6, "float64": 1e-14}


def strict(a, dtype):
    return xps.asarray(np.asarray(a, np.float64), dtype=getattr(xps, dtype))


def as_float64(a):
    """The values actually passed (after rounding to the test dtype), for the reference."""
    return np.asarray(np.from_dlpack(a), np.float64) if hasattr(a, "__dlpack__") else np.float64(a)


def check(result, expected, dtype, shape):
    assert type(result).__module__.startswith("array_api_strict"), type(result)
    assert result.dtype == getattr(xps, dtype)
    assert tuple(result.shape) == shape
    np.testing.assert_allclose(np.from_dlpack(result), expected, rtol=TOLERANCE[dtype], atol=0)


def test_dispatches_to_the_generic_standard_adapter():
    assert backend_for_type(type(xps.asarray([1.0]))).name == "array_api"


# weight / pos_weight variants: absent, Python number, full shape, broadcast along the last axis
WEIGHTS = {
    "none": lambda shape: None,
    "number": lambda shape: 1.7,
    "full": lambda shape: RNG.uniform(0.5, 2.0, shape),
    "last_axis": lambda shape: RNG.uniform(0.5, 2.0, shape[-1:]),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", ["torch", "paddle"])
@pytest.mark.parametrize("weighting", ["none", "number", "full", "last_axis"])
def test_logits_match_float64_reference(weighting, dialect, reduction, dtype):
    shape = (6, 5)
    x = RNG.normal(0, 5, shape)
    x.flat[:3] = [0.0, -40.0, 40.0]
    y = RNG.choice([0.0, 1.0, 0.3], shape)
    w, p = WEIGHTS[weighting](shape), WEIGHTS[weighting](shape)
    sx, sy = strict(x, dtype), strict(y, dtype)
    sw, sp = (v if v is None or isinstance(v, float) else strict(v, dtype) for v in (w, p))
    if dialect == "torch":
        result = bce_compat.binary_cross_entropy_with_logits(sx, sy, sw, reduction=reduction, pos_weight=sp)
    else:
        result = paddle_dialect.binary_cross_entropy_with_logits(sx, sy, sw, reduction=reduction, pos_weight=sp)
    w64, p64 = (1.0 if v is None else as_float64(v) for v in (sw, sp))
    expected = logits_reference(as_float64(sx), as_float64(sy), w64, p64, reduction)
    check(result, expected, dtype, shape if reduction == "none" else ())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", ["torch", "paddle"])
@pytest.mark.parametrize("weighting", ["none", "number", "full", "last_axis"])
def test_probabilities_match_float64_reference(weighting, dialect, reduction, dtype):
    shape = (4, 6)
    q = RNG.uniform(0, 1, shape)
    q.flat[:4] = [0.0, 1.0, 1e-30, 0.5]
    y = RNG.choice([0.0, 1.0, 0.6], shape)
    w = WEIGHTS[weighting](shape)
    sq, sy = strict(q, dtype), strict(y, dtype)
    sw = w if w is None or isinstance(w, float) else strict(w, dtype)
    if dialect == "torch":
        result = bce_compat.binary_cross_entropy(sq, sy, sw, reduction=reduction)
    else:
        result = paddle_dialect.binary_cross_entropy(sq, sy, sw, reduction=reduction)
    expected = probs_reference(as_float64(sq), as_float64(sy), 1.0 if sw is None else as_float64(sw), reduction)
    check(result, expected, dtype, shape if reduction == "none" else ())


def test_module_classes_of_both_dialects():
    x, y = strict([[0.0, 2.0], [-1.0, 3.0]], "float64"), strict([[1.0, 0.0], [0.0, 1.0]], "float64")
    pos = strict([2.0, 0.5], "float64")
    expected = logits_reference(as_float64(x), as_float64(y), 1.0, as_float64(pos), "sum")
    for loss in (bce_compat.BCEWithLogitsLoss(reduction="sum", pos_weight=pos),
                 paddle_dialect.BCEWithLogitsLoss(reduction="sum", pos_weight=pos)):
        check(loss(x, y), expected, "float64", ())
    q = strict([0.25, 0.75], "float32")
    t = strict([1.0, 0.0], "float32")
    for loss in (bce_compat.BCELoss(), paddle_dialect.BCELoss()):
        check(loss(q, t), 2 * math.log(4) / 2, "float32", ())


def test_promotion_and_casting_follow_the_standard():
    x32 = strict([0.5, -0.5], "float32")
    y64 = strict([1.0, 0.0], "float64")
    assert bce_compat.binary_cross_entropy_with_logits(x32, y64).dtype == xps.float64
    y_int = xps.asarray([1, 0], dtype=xps.int64)
    y_bool = xps.asarray([True, False])
    for y in (y_int, y_bool):
        result = bce_compat.binary_cross_entropy_with_logits(x32, y, reduction="none")
        check(result, logits_reference(as_float64(x32), np.array([1.0, 0.0]), 1.0, 1.0, "none"), "float32", (2,))


def test_infinite_logits_and_nan():
    x = strict([math.inf, math.inf, -math.inf, math.nan], "float64")
    y = strict([1.0, 0.0, 0.0, 1.0], "float64")
    result = np.from_dlpack(bce_compat.binary_cross_entropy_with_logits(x, y, reduction="none"))
    assert result[0] == 0.0 and result[1] == math.inf and result[2] == 0.0 and math.isnan(result[3])


def test_empty_input():
    x = xps.zeros((0, 2), dtype=xps.float64)
    assert math.isnan(float(bce_compat.binary_cross_entropy_with_logits(x, x)))
    assert float(bce_compat.binary_cross_entropy_with_logits(x, x, reduction="sum")) == 0.0


def test_errors():
    x = strict([[0.5, 0.5]], "float32")
    with pytest.raises(ValueError, match="between 0 and 1"):
        bce_compat.binary_cross_entropy(strict([[0.5, 1.5]], "float32"), x)
    with pytest.raises(ValueError, match="between 0 and 1"):
        bce_compat.binary_cross_entropy(x, strict([[-0.5, 1.0]], "float32"))
    with pytest.raises(ValueError, match="same shape"):
        bce_compat.binary_cross_entropy_with_logits(x, strict([0.5, 0.5], "float32"))
    with pytest.raises(ValueError, match="pos_weight"):
        bce_compat.binary_cross_entropy_with_logits(x, x, pos_weight=strict([1.0, 1.0, 1.0], "float32"))
    with pytest.raises(TypeError, match="real floating"):
        bce_compat.binary_cross_entropy_with_logits(xps.asarray([[1, 0]]), x)
    with pytest.raises(TypeError, match="one library"):
        bce_compat.binary_cross_entropy_with_logits(x, np.array([[0.5, 0.5]], np.float32))


def test_inputs_are_not_modified():
    x, y = strict([0.0, 1.0], "float64"), strict([1.0, 0.0], "float64")
    before = [np.from_dlpack(a).copy() for a in (x, y)]
    bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=2.0)
    for a, b in zip((x, y), before):
        np.testing.assert_array_equal(np.from_dlpack(a), b)


def test_dtype_names_of_two_libraries_are_not_compared_with_each_other():
    """The dtype-name memo once held NumPy and array-api-strict dtypes side by side; a dict probe
    compared them, which array-api-strict answers with a UserWarning on every such call."""
    import warnings

    from bce_compat.backends._float_dtypes import dtype_name

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dtype_name(np.dtype("float32")) == "float32"
        assert dtype_name(xps.float32) == "float32"
