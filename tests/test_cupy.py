"""CuPy: ``cupy.ndarray`` on the GPU through the portable call; the result stays on the input's
device and matches a float64 NumPy reference. Skipped without CuPy or without a CUDA device
(CI has neither); run on a GPU machine with ``pip install 'bce_compat[cupy]'``.
"""

from __future__ import annotations

import numpy as np
import pytest

import bce_compat
from _float64_reference import logits_reference, probs_reference
from bce_compat.dialects import paddle as paddle_dialect

cp = pytest.importorskip("cupy", reason="CuPy is not installed (needs an NVIDIA GPU: pip install 'bce_compat[cupy]')")


def _device_count() -> int:
    try:
        return cp.cuda.runtime.getDeviceCount()
    except Exception:  # no driver / no device
        return 0


pytestmark = pytest.mark.skipif(_device_count() == 0, reason="CuPy is installed but no CUDA device is visible")

REDUCTIONS = ("none", "mean", "sum")
RNG = np.random.default_rng(5)
TOLERANCE = {"float32": 2e-6, "float64": 1e-14}


def check(result, expected, dtype, shape, device):
    assert isinstance(result, cp.ndarray), type(result)
    assert result.dtype == np.dtype(dtype)
    assert result.shape == shape
    assert result.device == device
    np.testing.assert_allclose(cp.asnumpy(result).astype(np.float64), expected, rtol=TOLERANCE[dtype], atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", ["torch", "paddle"])
def test_logits_match_float64_reference(dialect, reduction, dtype):
    shape = (64, 16)
    x = RNG.normal(0, 5, shape).astype(dtype)
    x.flat[:3] = [0.0, -40.0, 40.0]
    y = RNG.choice([0.0, 1.0, 0.3], shape).astype(dtype)
    w = RNG.uniform(0.5, 2.0, shape).astype(dtype)
    p = RNG.uniform(0.5, 3.0, shape[-1:]).astype(dtype)
    gx, gy, gw, gp = (cp.asarray(a) for a in (x, y, w, p))
    fn = bce_compat.binary_cross_entropy_with_logits if dialect == "torch" else paddle_dialect.binary_cross_entropy_with_logits
    result = fn(gx, gy, gw, reduction=reduction, pos_weight=gp)
    expected = logits_reference(*(a.astype(np.float64) for a in (x, y, w, p)), reduction)
    check(result, expected, dtype, shape if reduction == "none" else (), gx.device)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probabilities_match_float64_reference(reduction):
    q = RNG.uniform(0, 1, (500,))
    q[:3] = [0.0, 1.0, 1e-300]
    y = RNG.choice([0.0, 1.0, 0.5], (500,))
    w = RNG.uniform(0.5, 2.0, (500,))
    gq, gy, gw = (cp.asarray(a) for a in (q, y, w))
    result = bce_compat.binary_cross_entropy(gq, gy, gw, reduction=reduction)
    check(result, probs_reference(q, y, w, reduction), "float64", q.shape if reduction == "none" else (), gq.device)


def test_half_precision_keeps_dtype():
    x = cp.asarray(RNG.normal(0, 3, (32,)), dtype=cp.float16)
    y = cp.asarray(RNG.choice([0.0, 1.0], (32,)), dtype=cp.float16)
    result = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert result.dtype == cp.float16
    expected = logits_reference(cp.asnumpy(x).astype(np.float64), cp.asnumpy(y).astype(np.float64), 1.0, 1.0, "none")
    np.testing.assert_allclose(cp.asnumpy(result).astype(np.float64), expected, rtol=float(np.finfo(np.float16).eps))


def test_probability_values_are_checked_eagerly():
    with pytest.raises(ValueError, match="between 0 and 1"):
        bce_compat.binary_cross_entropy(cp.asarray([0.5, 1.5]), cp.asarray([1.0, 0.0]))


def test_mixing_cupy_and_numpy_is_a_type_error():
    with pytest.raises(TypeError, match="one library"):
        bce_compat.binary_cross_entropy_with_logits(cp.zeros(2), np.zeros(2))
