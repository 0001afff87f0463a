"""Dask: a lazy dask array in, a lazy dask array out; the element-wise math runs per chunk and
``sum``/``mean`` are Dask's own reductions, exact (to rounding) across many chunks; a
``dask.distributed`` LocalCluster gives the NumPy answer.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import bce_compat
from _float64_reference import logits_reference, probs_reference
from bce_compat.dialects import paddle as paddle_dialect

da = pytest.importorskip("dask.array")

REDUCTIONS = ("none", "mean", "sum")
RNG = np.random.default_rng(11)


def sample(shape):
    x = RNG.normal(0, 3, shape)
    y = RNG.choice([0.0, 1.0, 0.25], shape)
    w = RNG.uniform(0.5, 2.0, shape)
    p = RNG.uniform(0.5, 3.0, shape[-1:])
    return x, y, w, p


def assert_lazy(result):
    assert isinstance(result, da.Array), type(result)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_result_is_lazy_and_nothing_is_computed_at_call_time(kind, reduction):
    computed = []

    def watched(block):
        computed.append(block.shape)
        return block

    x = da.from_array(np.linspace(0.05, 0.95, 40), chunks=10).map_blocks(watched, meta=np.empty(0))
    y = da.from_array(np.tile([0.0, 1.0], 20), chunks=10)
    fn = bce_compat.binary_cross_entropy_with_logits if kind == "logits" else bce_compat.binary_cross_entropy
    result = fn(x, y, reduction=reduction)
    assert_lazy(result)
    assert computed == []  # no validation, promotion or reduction step read a value
    assert result.shape == ((40,) if reduction == "none" else ())
    result.compute()
    assert len(computed) == 4  # one call per chunk when computed


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", ["torch", "paddle"])
def test_many_chunks_match_float64_reference(dialect, reduction):
    x, y, w, p = sample((300, 40))
    dx, dy, dw = (da.from_array(a, chunks=(17, 9)) for a in (x, y, w))  # 18 x 5 ragged chunks
    dp = da.from_array(p, chunks=7)
    fn = bce_compat.binary_cross_entropy_with_logits if dialect == "torch" else paddle_dialect.binary_cross_entropy_with_logits
    result = fn(dx, dy, dw, reduction=reduction, pos_weight=dp)
    assert_lazy(result)
    assert dx.npartitions == 90
    if reduction != "none":
        assert result.npartitions == 1
        # the reduction is a Dask tree reduction over the chunks, not a single gathered sum
        assert any(name.startswith("sum-aggregate") for name in result.dask.layers), list(result.dask.layers)
    value = result.compute()
    assert value.dtype == np.float64
    np.testing.assert_allclose(value, logits_reference(x, y, w, p, reduction), rtol=1e-13, atol=0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probabilities_over_chunks(reduction):
    q = RNG.uniform(0, 1, (1000,))
    q[:4] = [0.0, 1.0, 1e-300, 1 - 1e-16]
    y = RNG.choice([0.0, 1.0, 0.5], (1000,))
    w = RNG.uniform(0.5, 2.0, (1000,))
    dq, dy, dw = (da.from_array(a, chunks=64) for a in (q, y, w))
    result = bce_compat.binary_cross_entropy(dq, dy, dw, reduction=reduction)
    assert_lazy(result)
    np.testing.assert_allclose(result.compute(), probs_reference(q, y, w, reduction), rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_lower_precision_keeps_dtype(dtype):
    x, y, _, _ = sample((64, 8))
    dx, dy = (da.from_array(a.astype(dtype), chunks=16) for a in (x, y))
    result = bce_compat.binary_cross_entropy_with_logits(dx, dy, reduction="sum")
    assert result.dtype == np.dtype(dtype)
    expected = logits_reference(x.astype(dtype), y.astype(dtype), reduction="sum")
    np.testing.assert_allclose(float(result.compute()), expected, rtol=float(np.finfo(dtype).eps) * 2)


def test_integer_targets_are_cast_lazily():
    x = da.from_array(np.array([0.0, 2.0, -2.0]), chunks=2)
    y = da.from_array(np.array([1, 0, 1]), chunks=2)
    result = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert_lazy(result)
    np.testing.assert_allclose(result.compute(), logits_reference([0.0, 2.0, -2.0], [1, 0, 1]), rtol=1e-15)


def test_empty_input_mean_is_nan_and_sum_is_zero():
    x = da.from_array(np.zeros((0, 3)), chunks=2)
    assert float(bce_compat.binary_cross_entropy_with_logits(x, x, reduction="sum").compute()) == 0.0
    with np.errstate(invalid="ignore"):
        assert math.isnan(float(bce_compat.binary_cross_entropy_with_logits(x, x).compute()))


def test_out_of_core_sized_input_streams_through_chunks():
    # 2e7 logits (160 MB per array as float64) generated chunk by chunk, never held whole:
    # x = 0, y = 1 gives log 2 per element, so mean = log 2 and sum = n log 2.
    n = 20_000_000
    x = da.zeros(n, chunks=1_000_000)
    y = da.ones(n, chunks=1_000_000)
    mean, total = (bce_compat.binary_cross_entropy_with_logits(x, y, reduction=r) for r in ("mean", "sum"))
    mean, total = da.compute(mean, total)
    assert mean == pytest.approx(math.log(2), rel=1e-15)
    assert total == pytest.approx(n * math.log(2), rel=1e-14)


def test_unknown_chunk_sizes_give_a_clear_error():
    x = da.from_array(np.linspace(-2, 2, 20), chunks=5)
    y = da.from_array(np.tile([0.0, 1.0], 10), chunks=5)
    keep = x > 0
    xs, ys = x[keep], y[keep]
    assert math.isnan(xs.shape[0])
    with pytest.raises(ValueError, match=r"`input` must have a known shape.*compute_chunk_sizes"):
        bce_compat.binary_cross_entropy_with_logits(xs, ys)
    xs, ys = xs.compute_chunk_sizes(), ys.compute_chunk_sizes()
    result = bce_compat.binary_cross_entropy_with_logits(xs, ys, reduction="mean")
    keep_np = np.linspace(-2, 2, 20) > 0
    expected = logits_reference(np.linspace(-2, 2, 20)[keep_np], np.tile([0.0, 1.0], 10)[keep_np], reduction="mean")
    np.testing.assert_allclose(result.compute(), expected, rtol=1e-15)


def test_probability_value_check_is_skipped_for_lazy_arrays():
    q = da.from_array(np.array([0.5, 1.5]), chunks=1)
    y = da.from_array(np.array([1.0, 0.0]), chunks=1)
    result = bce_compat.binary_cross_entropy(q, y)  # eager backends raise ValueError here
    assert_lazy(result)
    with pytest.raises(ValueError, match="between 0 and 1"):
        bce_compat.binary_cross_entropy(q.compute(), y.compute())  # the same values in NumPy


def test_shape_and_library_errors():
    x = da.zeros((4, 3), chunks=2)
    with pytest.raises(ValueError, match=r"\[4, 3\].*\[3, 4\]"):
        bce_compat.binary_cross_entropy_with_logits(x, da.zeros((3, 4), chunks=2))
    with pytest.raises(ValueError, match="pos_weight"):
        bce_compat.binary_cross_entropy_with_logits(x, x, pos_weight=da.ones(4, chunks=2))
    # a NumPy target beside a Dask input is accepted (issue 11.4); the input decides the library
    with pytest.raises(TypeError, match="one library"):
        bce_compat.binary_cross_entropy_with_logits(np.zeros((4, 3)), x)


def test_inputs_are_not_modified():
    x, y, w, p = sample((20, 4))
    arrays = [da.from_array(a.copy(), chunks=5) for a in (x, y, w, p)]
    bce_compat.binary_cross_entropy_with_logits(*arrays[:3], pos_weight=arrays[3]).compute()
    for original, array in zip((x, y, w, p), arrays):
        np.testing.assert_array_equal(array.compute(), original)


def test_local_cluster_with_several_workers_matches_numpy():
    distributed = pytest.importorskip("distributed")
    x, y, w, p = sample((4000, 50))
    dx, dy, dw = (da.from_array(a, chunks=(500, 25)) for a in (x, y, w))
    dp = da.from_array(p, chunks=25)
    with distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 3
        lazy = [
            bce_compat.binary_cross_entropy_with_logits(dx, dy, dw, reduction=r, pos_weight=dp)
            for r in ("none", "mean", "sum")
        ]
        none, mean, total = client.compute(lazy, sync=True)
        processed = client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
    assert sum(processed.values()) > 0 and len(processed) == 3
    expected_none = bce_compat.binary_cross_entropy_with_logits(x, y, w, reduction="none", pos_weight=p)
    np.testing.assert_allclose(none, expected_none, rtol=1e-15, atol=0)
    np.testing.assert_allclose(mean, logits_reference(x, y, w, p, "mean"), rtol=1e-13, atol=0)
    np.testing.assert_allclose(total, logits_reference(x, y, w, p, "sum"), rtol=1e-13, atol=0)


def test_detection_does_not_import_dask_array(tmp_path):
    # `import dask` alone cannot have produced a dask array, so detecting another library's
    # array must not import dask.array (fresh interpreter: this process has it imported already).
    code = (
        "import sys, dask, array_api_strict as xps, bce_compat\n"
        "bce_compat.binary_cross_entropy_with_logits(xps.asarray([0.0]), xps.asarray([1.0]))\n"
        "assert 'dask.array' not in sys.modules, 'detection imported dask.array'\n"
    )
    pytest.importorskip("array_api_strict")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
