"""docs/contract.md §5 / issue 11 item 4: NumPy operands where the library itself accepts them (Dask, JAX).

A small NumPy ``pos_weight`` beside a large lazy Dask array is the usual case; Dask's and JAX's
own operations take NumPy operands, so the loss does too (converted to the input's library).
Every other mix stays the TypeError of docs/contract.md §5.
"""

from __future__ import annotations

import numpy as np
import pytest

import bce_compat
from _float64_reference import logits_reference

X = np.array([[-2.0, 0.0, 3.0], [1.5, -0.5, 20.0]], np.float32)
Y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5]], np.float32)
W = np.array([1.0, 2.0, 0.5], np.float32)
P = np.array([3.0, 1.0, 0.25], np.float32)


@pytest.fixture(params=["dask", "jax", "tensorflow"])
def lazy_library(request):
    if request.param == "tensorflow":
        tf = pytest.importorskip("tensorflow")
        return "tensorflow", tf.constant, lambda r: r.numpy()
    if request.param == "dask":
        da = pytest.importorskip("dask.array")
        return "dask", lambda a: da.from_array(a, chunks=1), lambda r: np.asarray(r.compute())
    jnp = pytest.importorskip("jax.numpy")
    return "jax", jnp.asarray, np.asarray


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("numpy_args", [("pos_weight",), ("weight", "pos_weight"), ("target", "weight", "pos_weight")])
def test_numpy_operands_beside_dask_jax_and_tf_inputs(lazy_library, numpy_args, reduction):
    name, make, read = lazy_library
    args = {"target": Y, "weight": W, "pos_weight": P}
    args = {k: (v if k in numpy_args else make(v)) for k, v in args.items()}
    result = bce_compat.binary_cross_entropy_with_logits(make(X), reduction=reduction, **args)
    from bce_compat._registry import backend_for_type

    assert backend_for_type(type(result)).name == name, f"the result is a {type(result)}, not a {name} array"
    expected = logits_reference(X, Y, W, P, reduction)
    np.testing.assert_allclose(read(result), expected, rtol=2e-6)


def test_jax_gradient_flows_with_a_numpy_pos_weight():
    jax = pytest.importorskip("jax")
    grad = jax.grad(lambda x: bce_compat.binary_cross_entropy_with_logits(x, Y, pos_weight=P, reduction="sum"))(X)
    sigmoid = 1 / (1 + np.exp(-X.astype(np.float64)))
    np.testing.assert_allclose(np.asarray(grad), sigmoid * (1 + (P - 1) * Y) - P * Y, rtol=1e-5, atol=1e-7)


def test_a_numpy_input_beside_a_dask_target_is_still_refused():
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="one library"):
        bce_compat.binary_cross_entropy_with_logits(X, da.from_array(Y))


def test_torch_with_a_numpy_operand_is_still_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one library"):
        bce_compat.binary_cross_entropy_with_logits(torch.from_numpy(X), Y)
