"""The adapter contract: every adapter (built-in or plugin) has the names of ``contract.AdapterModule``,
every namespace the whole ``contract.ArrayNamespace``, and our own namespaces (Paddle, TF) compute
each function as NumPy does, on 0-d, one-element, empty, 2-d and strided inputs.
"""

from __future__ import annotations

import array_api_compat.numpy as npx
import numpy as np
import pytest

from bce_compat import _registry
from bce_compat.contract import AdapterModule, ArrayNamespace, missing_members
from conftest import ALL_NAMES, _require


@pytest.mark.parametrize("name", _registry.names())
def test_builtin_adapter_provides_the_contract(name):
    adapter = _registry.adapter(name)
    assert missing_members(adapter, AdapterModule) == []
    assert isinstance(adapter, AdapterModule)
    assert adapter.NAME == name


@pytest.mark.parametrize("bench_name", ALL_NAMES)
def test_namespace_provides_the_protocol(bench_name):
    fw = _require(bench_name)
    x = fw.asarray([0.5, -1.0], "float32")
    xp = _registry.backend_for_type(type(x)).namespace(x)
    assert missing_members(xp, ArrayNamespace) == []
    assert isinstance(xp, ArrayNamespace)


def test_plugin_adapter_and_namespace_provide_the_contract(toy_plugin):
    adapter = _registry.adapter("toyarray")
    assert missing_members(adapter, AdapterModule) == []
    import toyarray

    x = toyarray.asarray([0.5, -1.0], "float32")
    backend = _registry.backend_for_type(type(x))
    assert backend is not None and backend.name == "toyarray"
    assert missing_members(backend.namespace(x), ArrayNamespace) == []


def test_missing_members_names_what_is_missing():
    class Partial:
        float32 = float64 = None

        def exp(self, x):
            return x

    missing = missing_members(Partial(), ArrayNamespace)
    assert "exp" not in missing and "float32" not in missing
    assert {"log1p", "where", "sum", "broadcast_to"} <= set(missing)


# --- our own namespaces compute what NumPy computes -------------------------------------------

OWN_NAMESPACES = ("paddle", "tensorflow")
RNG = np.random.default_rng(7)
BASE = RNG.standard_normal((3, 2))
LAYOUTS = {  # name -> (NumPy values, whether to transpose in the library: a strided view)
    "0d": (np.float64(0.75), False),
    "one": (np.array([-1.5]), False),
    "empty": (np.zeros((0, 2)), False),
    "2d": (BASE.T.copy(), False),
    "strided": (BASE, True),
}
UNARY = ("abs", "negative", "exp", "expm1", "log", "log1p", "sqrt", "square", "isnan", "isinf", "isfinite")
BINARY = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "equal", "not_equal", "less",
          "less_equal", "greater", "greater_equal")
LOGICAL = ("logical_and", "logical_or", "logical_xor")
REDUCTIONS = ("sum", "prod", "mean", "max", "min", "any", "all")
_POSITIVE_ONLY = ("log", "log1p", "sqrt")


def _transpose(fw, a):
    return fw.module.transpose(a, [1, 0]) if fw.name == "paddle" else fw.module.transpose(a)


def _inputs(fw, layout, dtype="float32"):
    """(the library's array, the same values as NumPy) for a layout."""
    values, strided = LAYOUTS[layout]
    if strided:
        return _transpose(fw, fw.asarray(values, dtype)), np.asarray(values, dtype).T
    return fw.asarray(values, dtype), np.asarray(values, dtype)


def _same(fw, got, want):
    got_np = np.asarray(fw.to_numpy(got))
    want = np.asarray(want)
    assert got_np.shape == want.shape
    assert got_np.dtype == want.dtype, (got_np.dtype, want.dtype)
    np.testing.assert_allclose(got_np, want, rtol=2e-6, atol=0, equal_nan=True)


@pytest.fixture(params=OWN_NAMESPACES)
def own(request):
    fw = _require(request.param)
    x = fw.asarray([0.0], "float32")
    return fw, _registry.backend_for_type(type(x)).namespace(x)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("fn", UNARY)
def test_unary(own, fn, layout):
    fw, xp = own
    x, ref = _inputs(fw, layout)
    if fn in _POSITIVE_ONLY:
        x, ref = xp.abs(x), np.abs(ref)
    _same(fw, getattr(xp, fn)(x), getattr(npx, fn)(ref))


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("fn", BINARY)
def test_binary_with_arrays_and_scalars(own, fn, layout):
    fw, xp = own
    x, ref = _inputs(fw, layout)
    y, ref_y = xp.multiply(x, x), ref * ref
    _same(fw, getattr(xp, fn)(x, y), getattr(npx, fn)(ref, ref_y))
    _same(fw, getattr(xp, fn)(x, 0.5), getattr(npx, fn)(ref, np.float32(0.5)))


@pytest.mark.parametrize("fn", LOGICAL)
def test_logical(own, fn):
    fw, xp = own
    x, ref = _inputs(fw, "2d")
    a, b, ref_a, ref_b = xp.greater(x, 0.0), xp.less(x, 0.5), ref > 0, ref < 0.5
    _same(fw, getattr(xp, fn)(a, b), getattr(npx, fn)(ref_a, ref_b))
    _same(fw, xp.logical_not(a), np.logical_not(ref_a))


@pytest.mark.parametrize("layout", ["0d", "one", "2d", "strided", "empty"])
@pytest.mark.parametrize("fn", REDUCTIONS)
def test_reductions(own, fn, layout):
    fw, xp = own
    x, ref = _inputs(fw, layout)
    if fn in ("any", "all"):
        x, ref = xp.greater(x, 0.0), ref > 0
    if layout == "empty" and fn in ("max", "min", "mean"):
        pytest.skip(f"{fn} of an empty array is an error or NaN with a warning in NumPy")
    _same(fw, getattr(xp, fn)(x), getattr(npx, fn)(ref))
    if ref.ndim == 2:
        _same(fw, getattr(xp, fn)(x, axis=0), getattr(npx, fn)(ref, axis=0))
        _same(fw, getattr(xp, fn)(x, axis=1, keepdims=True), getattr(npx, fn)(ref, axis=1, keepdims=True))


def test_sum_with_dtype(own):
    fw, xp = own
    x, ref = _inputs(fw, "2d")
    _same(fw, xp.sum(x, dtype=xp.float64), npx.sum(ref, dtype=np.float64))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_creation_and_dtypes(own, layout):
    fw, xp = own
    x, ref = _inputs(fw, layout)
    for fn in ("zeros_like", "ones_like"):
        _same(fw, getattr(xp, fn)(x), getattr(npx, fn)(ref))
        _same(fw, getattr(xp, fn)(x, dtype=xp.float64), getattr(npx, fn)(ref, dtype=np.float64))
    _same(fw, xp.full_like(x, 2.5), npx.full_like(ref, 2.5))
    _same(fw, xp.astype(x, xp.float64), ref.astype(np.float64))
    shape = tuple(ref.shape)
    _same(fw, xp.zeros(shape, dtype=xp.float32), np.zeros(shape, np.float32))
    _same(fw, xp.ones(shape, dtype=xp.float64), np.ones(shape, np.float64))
    _same(fw, xp.full(shape, -1.0, dtype=xp.float32), np.full(shape, -1.0, np.float32))
    _same(fw, xp.asarray(ref), ref)
    _same(fw, xp.asarray(x, dtype=xp.float64), ref.astype(np.float64))
    assert xp.result_type(x, xp.float64) == xp.float64 and xp.result_type(xp.float32, x) == xp.float32
    assert xp.isdtype(x.dtype, "real floating") and not xp.isdtype(x.dtype, "integral")


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_where_clip_and_manipulation(own, layout):
    fw, xp = own
    x, ref = _inputs(fw, layout)
    _same(fw, xp.where(xp.greater(x, 0.0), x, xp.zeros_like(x)), np.where(ref > 0, ref, 0))
    _same(fw, xp.where(xp.greater(x, 0.0), x, 0.0), np.where(ref > 0, ref, np.float32(0)))
    _same(fw, xp.clip(x, min=-0.5, max=0.5), npx.clip(ref, min=-0.5, max=0.5))
    _same(fw, xp.clip(x, min=0.0), npx.clip(ref, min=0.0))
    _same(fw, xp.reshape(x, (-1,)), np.reshape(ref, (-1,)))
    _same(fw, xp.expand_dims(x, axis=0), np.expand_dims(ref, 0))
    target = (4, *ref.shape)
    _same(fw, xp.broadcast_to(x, target), np.broadcast_to(ref, target))
    row = xp.ones((1,) * max(ref.ndim, 1), dtype=xp.float32)
    got = xp.broadcast_arrays(x, row)
    want = np.broadcast_arrays(ref, np.ones((1,) * max(ref.ndim, 1), np.float32))
    assert len(got) == 2
    for g, w in zip(got, want):
        _same(fw, g, w)
