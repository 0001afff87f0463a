"""The compiled CPU pass (backends/_fused.c) behind numpy_fast, torch_fast and paddle_fast.

Its operand layouts (full, tiled, per-row, materialised broadcasts), its two exp/log1p routes,
the thread split, its argument checks, and what happens where it was not built.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import bce_compat
from _reference import assert_close, exact_logits_grad, exact_logits_loss, reduce_exact
from bce_compat.backends import numpy_fast

needs_pass = pytest.mark.skipif(not numpy_fast.AVAILABLE, reason="the compiled pass was not built (no C compiler?)")


def test_the_pass_is_built_in_ci():
    """CI builds from source with a compiler: a silent fall-back to the slow path would hide there."""
    if not os.environ.get("CI") and not numpy_fast.AVAILABLE:
        pytest.skip("the compiled pass was not built here (no C compiler?); CI requires it")
    assert numpy_fast.AVAILABLE, "bce_compat.backends._fused did not build"


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    y = rng.random(shape).astype(np.float32)
    return x, y


# operand shape against x's shape: full, tiled along the last axes, per row, and a broadcast the
# pass cannot view (materialised), 0-d and one-element arrays
LAYOUTS = [
    ((6, 5), (6, 5)),
    ((6, 5), (5,)),
    ((6, 5), (6, 1)),
    ((6, 5), (1, 5)),
    ((2, 3, 4, 5), (3, 1, 1)),  # pos_weight [C, 1, 1] over images [N, C, H, W]
    ((2, 3, 4, 5), (2, 1, 4, 1)),  # materialised
    ((2, 3, 4), (3, 4)),
    ((2, 3, 4), ()),
    ((2, 3, 4), (1, 1, 1)),
    ((7,), (7,)),
    ((), ()),
]


@needs_pass
@pytest.mark.parametrize("x_shape, operand_shape", LAYOUTS)
@pytest.mark.parametrize("which", ["weight", "pos_weight"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_operand_layouts_match_exact(x_shape, operand_shape, which, dtype):
    x, y = _data(x_shape)
    x, y = x.astype(dtype), y.astype(dtype)
    operand = (np.random.default_rng(1).random(operand_shape) * 3).astype(dtype)
    w, p = (operand, None) if which == "weight" else (None, operand)
    expected = exact_logits_loss(x, y, w, p)
    got = numpy_fast.loss(x, y, w, p, "none", np.dtype(dtype))
    assert got.shape == x.shape and got.dtype == np.dtype(dtype)
    assert_close(got, expected, dtype, ulps=4)
    total = numpy_fast.loss(x, y, w, p, "sum", np.dtype(dtype))
    assert_close(total, reduce_exact(expected, "sum"), dtype, ulps=4, size=max(1, x.size))
    g = np.empty(x.shape, dtype)
    numpy_fast.loss(x, y, w, p, "sum", np.dtype(dtype), grad_out=g)
    grad, bound = exact_logits_grad(x, y, w, p)
    assert_close(g, grad, dtype, ulps=4, bound=bound)


@needs_pass
@pytest.mark.parametrize("make", [
    lambda a: a.T,  # transposed
    lambda a: a[:, ::2],  # strided
    lambda a: np.broadcast_to(a[:1], a.shape),  # stride 0
    lambda a: a.astype(np.float16).astype(np.float32)[::-1],  # reversed
], ids=["transposed", "strided", "stride-0", "reversed"])
def test_non_contiguous_inputs_match_exact_and_are_not_modified(make):
    x, y = _data((8, 6))
    x, y = make(x), make(y)
    before = x.copy(), y.copy()
    got = numpy_fast.loss(x, y, None, 2.0, "none", np.dtype(np.float32))
    assert_close(got, exact_logits_loss(x, y, None, 2.0), "float32", ulps=4)
    g = numpy_fast.grad(x, y, None, 2.0, np.full(x.shape, 0.5), np.dtype(np.float32))
    grad, bound = exact_logits_grad(x, y, None, 2.0)
    assert_close(g, grad * 0.5, "float32", ulps=4, bound=bound * 0.5)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])


@needs_pass
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_integer_bool_and_half_operands(dtype):
    x, _ = _data((4, 8))
    x = x.astype(dtype)
    y = np.arange(32).reshape(4, 8) % 2 == 0
    w = np.arange(8, dtype=np.int64)
    p = np.full(8, 3, np.float16)
    got = numpy_fast.loss(x, y, w, p, "none", np.dtype(dtype))
    assert got.dtype == np.dtype(dtype)
    assert_close(got, exact_logits_loss(x, y.astype(np.float64), w.astype(np.float64), p.astype(np.float64)), dtype,
                 ulps=1 if dtype == "float16" else 4)


@needs_pass
def test_fast_route_exp_and_log1p_agree_with_libm_to_2e_10():
    """The vectorised route (float16/float32 results) against libm's (float64 results), both written
    in float64: the polynomials' error must stay far below a float32 ulp (6e-8) everywhere; 2e-10 is
    0.004 ulp (the degrees are chosen for that, see _fused.c). The loss's error is relative to it, the
    gradient's to the larger of its two terms (docs/contract.md §4: where they cancel, no float can do
    better). Below exp(-708) the fast route's exp stays at exp(-708) (values under 1e-300, far outside
    float32's range)."""
    x = np.concatenate([
        np.linspace(-750.0, 750.0, 300_001),
        np.geomspace(1e-300, 1e3, 20_000), -np.geomspace(1e-300, 1e3, 20_000),
        [0.0, -0.0, 5e-324, -5e-324, 708.0, -708.0, 709.0, -745.0, 1e30, -1e30, math.inf, -math.inf],
    ])
    y = np.resize(np.array([0.0, 0.25, 1.0]), x.shape)
    p = 1.5
    results = {}
    for precise in (False, True):
        loss = np.empty(x.shape)
        grad = np.empty(x.shape)
        numpy_fast._fused.logits(x, (y, 1), None, (np.array([p]), 1), None, loss, grad, None, 0, x.size, 1.0, precise)
        results[precise] = loss, grad
    with np.errstate(over="ignore"):
        larger_grad_term = np.maximum((1 - y) / (1 + np.exp(-x)), p * y / (1 + np.exp(x)))
    for (fast, libm), scale in zip(zip(*results.values()), (np.abs(results[True][0]), larger_grad_term)):
        finite = np.isfinite(libm) & (scale > 1e-290)
        assert np.array_equal(np.isnan(fast), np.isnan(libm))
        assert np.array_equal(fast[~np.isfinite(libm)], libm[~np.isfinite(libm)])
        tiny = np.isfinite(libm) & ~finite
        assert np.abs(fast[tiny] - libm[tiny]).max() < 1e-290
        relative = np.abs(fast[finite] - libm[finite]) / scale[finite]
        assert relative.max() < 2e-10, relative.max()


@needs_pass
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_same_bits_on_one_thread_and_on_many(monkeypatch, reduction):
    x, y = _data((numpy_fast.BLOCK * 5 + 3,), seed=3)
    p = np.float32(1.7)
    g_many = np.empty(x.shape, np.float32)
    many = numpy_fast.loss(x, y, None, p, reduction, np.dtype(np.float32), grad_out=g_many)
    assert x.size >= numpy_fast.PARALLEL_MIN
    monkeypatch.setattr(numpy_fast, "PARALLEL_MIN", 1 << 60)
    g_one = np.empty(x.shape, np.float32)
    one = numpy_fast.loss(x, y, None, p, reduction, np.dtype(np.float32), grad_out=g_one)
    np.testing.assert_array_equal(many, one)
    np.testing.assert_array_equal(g_many, g_one)
    monkeypatch.setattr(numpy_fast, "_threads", lambda: 3)  # an uneven split
    monkeypatch.setattr(numpy_fast, "PARALLEL_MIN", 1)
    np.testing.assert_array_equal(numpy_fast.loss(x, y, None, p, reduction, np.dtype(np.float32)), many)


@pytest.fixture
def host_team():
    """The OpenMP team of the runtime torch loaded (the torch engine registers it); forgotten after."""
    torch = pytest.importorskip("torch")
    if not torch.backends.openmp.is_available():
        pytest.skip("this torch does not run on OpenMP")
    was_set = numpy_fast._host_team
    assert numpy_fast.use_host_openmp(), "torch runs on OpenMP, but GOMP_parallel was not found in the process"
    yield
    numpy_fast.use_host_openmp(was_set)


@needs_pass
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("threads", [2, 3, 64, -1])
def test_same_bits_over_the_host_openmp_team(host_team, reduction, threads):
    """Parts of whole blocks computed by torch's OpenMP threads give the bits of one thread: rows of
    96 do not line up with the blocks, so the tiled pos_weight[96] and the per-row weight[B, 1] are
    cut mid-row; 64 threads is more than the 6 blocks."""
    rows = numpy_fast.BLOCK * 5 // 96 + 7
    x, y = _data((rows, 96), seed=5)
    rng = np.random.default_rng(6)
    p = rng.random(96).astype(np.float32) * 3
    w = rng.random((rows, 1)).astype(np.float32)
    f32 = np.dtype(np.float32)
    g_team, g_one = np.empty(x.shape, np.float32), np.empty(x.shape, np.float32)
    team = numpy_fast.loss(x, y, w, p, reduction, f32, grad_out=g_team, host_threads=threads)
    one = numpy_fast.loss(x, y, w, p, reduction, f32, grad_out=g_one, parallel_min=1 << 60)
    np.testing.assert_array_equal(team, one)
    np.testing.assert_array_equal(g_team, g_one)
    upstream = rng.random(x.shape).astype(np.float32)
    np.testing.assert_array_equal(
        numpy_fast.grad(x, y, w, p, upstream, f32, host_threads=threads),
        numpy_fast.grad(x, y, w, p, upstream, f32, parallel_min=1 << 60))


@needs_pass
def test_host_team_from_several_python_threads_at_once(host_team):
    """Each calling thread gets a team of its own from the runtime (as torch's ops from several
    threads do): concurrent calls neither block each other nor mix their parts."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = [_data((numpy_fast.BLOCK * 3 + 11,), seed=s) for s in range(6)]
    f32 = np.dtype(np.float32)
    expected = [numpy_fast.loss(x, y, None, 2.0, "none", f32, parallel_min=1 << 60) for x, y in inputs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda xy: numpy_fast.loss(*xy, None, 2.0, "none", f32, host_threads=2), inputs * 4))
    for i, result in enumerate(got):
        np.testing.assert_array_equal(result, expected[i % len(inputs)])


def _in_a_forked_child(compute):
    """``compute()`` run in a child made by multiprocessing's fork start method (Linux's default)."""
    import multiprocessing
    import queue as queues

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=lambda: results.put(compute()))
    child.start()
    try:  # read before joining: a child still writing a large result into the pipe cannot exit
        result = results.get(timeout=120)
    except queues.Empty:
        child.kill()
        pytest.fail("the forked child hung")
    child.join(60)
    assert child.exitcode == 0
    return result


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


@needs_pass
@needs_fork
def test_a_forked_child_gets_a_fresh_thread_pool():
    """The parent's pool threads do not exist in a fork: the child must not hand them work."""
    x, y = _data((numpy_fast.BLOCK * 3 + 5,), seed=9)
    f32 = np.dtype(np.float32)
    in_parent = numpy_fast.loss(x, y, None, 2.0, "sum", f32, parallel_min=1)  # the pool is running now
    in_child = _in_a_forked_child(lambda: numpy_fast.loss(x, y, None, 2.0, "sum", f32, parallel_min=1))
    assert in_child == in_parent


@needs_pass
@needs_fork
def test_a_forked_child_forgets_the_host_team(host_team):
    """A team the parent used hangs a forked child (torch's own ops hang there): the child computes
    without it, on the calling thread, with the same bits."""
    x, y = _data((numpy_fast.BLOCK * 3 + 5,), seed=10)
    f32 = np.dtype(np.float32)
    in_parent = numpy_fast.loss(x, y, None, 2.0, "none", f32, host_threads=2)  # the team is running now

    def compute():
        return numpy_fast._host_team, numpy_fast.use_host_openmp(), numpy_fast.loss(
            x, y, None, 2.0, "none", f32, host_threads=2)

    team_at_fork, team_found, in_child = _in_a_forked_child(compute)
    assert (team_at_fork, team_found) == (False, False)
    np.testing.assert_array_equal(in_child, in_parent)


@needs_pass
def test_host_team_arguments(host_team):
    x, y = _data((numpy_fast.BLOCK * 3,), seed=7)
    logits = numpy_fast._fused.logits
    with pytest.raises(ValueError, match="sums buffer"):  # a total from parts would depend on the split
        logits(x, (y, 1), None, None, None, None, None, True, 0, x.size, 1.0, False, 2)
    sums = np.empty(3)
    total = logits(x, (y, 1), None, None, None, None, None, sums, 0, x.size, 1.0, False, 2)
    assert total == logits(x, (y, 1), None, None, None, None, None, np.empty(3), 0, x.size, 1.0, False)
    assert total == (sums[0] + sums[1]) + sums[2]  # in block order, as one thread adds them
    assert numpy_fast.use_host_openmp(False) is False  # forgotten: one thread computes, same bits
    alone = np.empty(3)
    logits(x, (y, 1), None, None, None, None, None, alone, 0, x.size, 1.0, False, 2)
    np.testing.assert_array_equal(sums, alone)


@needs_pass
def test_argument_errors_are_clear():
    x = np.zeros(4, np.float32)
    logits = numpy_fast._fused.logits
    with pytest.raises(TypeError, match="float32 or float64"):
        logits(np.zeros(4, np.int32), (x, 1), None, None, None, None, None, True, 0, 4, 1.0, False)
    with pytest.raises(ValueError, match="length differs"):
        logits(x, (x, 1), None, None, None, np.empty(3, np.float32), None, None, 0, 4, 1.0, False)
    with pytest.raises(ValueError, match="start and stop"):
        logits(x, (x, 1), None, None, None, None, None, True, 1, 4, 1.0, False)
    with pytest.raises(ValueError, match="target is required"):
        logits(x, None, None, None, None, None, None, True, 0, 4, 1.0, False)
    with pytest.raises(ValueError, match="empty"):
        logits(x, (np.zeros(0, np.float32), 1), None, None, None, None, None, True, 0, 4, 1.0, False)


@needs_pass
def test_raw_buffers_read_and_write_what_the_buffers_do():
    """(address, length, is_double): memory without the buffer protocol (a torch tensor's data_ptr)."""
    x, y = _data((3, 5))
    pos_weight = np.linspace(0.5, 2.0, 5)  # float64 beside float32 operands
    raw = lambda a: (a.ctypes.data, a.size, a.dtype == np.float64)  # noqa: E731
    logits = numpy_fast._fused.logits
    for reduction_sum in (True, None):
        outs = [np.zeros((3, 5), np.float32) for _ in range(4)]
        by_buffer = logits(x, (y, 1), None, (pos_weight, 1), None, outs[0] if not reduction_sum else None, outs[1],
                           reduction_sum, 0, x.size, 1.0, False)
        by_raw = logits(raw(x), (raw(y), 1), None, (raw(pos_weight), 1), None,
                        raw(outs[2]) if not reduction_sum else None, raw(outs[3]), reduction_sum, 0, x.size, 1.0, False)
        assert by_raw == by_buffer
        np.testing.assert_array_equal(outs[2], outs[0])
        np.testing.assert_array_equal(outs[3], outs[1])
    assert numpy_fast.one_block(raw(x), ((raw(y), 1), None, 2.0), x.size, None, None, "mean", precise=True) == \
        numpy_fast.loss(x, y, None, 2.0, "mean", np.float64).item()
    with pytest.raises(ValueError, match="non-null address"):
        logits((0, 4, False), (y, 1), None, None, None, None, None, True, 0, 4, 1.0, False)
    with pytest.raises(ValueError, match="length differs"):
        logits(raw(x), (raw(y), 1), None, None, None, (outs[0].ctypes.data, 3, False), None, None, 0, 15, 1.0, False)
    with pytest.raises(ValueError, match="at most BLOCK"):
        big = np.zeros(numpy_fast.BLOCK + 1)
        numpy_fast.one_block(big, (big, 1), big.size, None, None, "sum", precise=True)


def test_without_the_pass_every_engine_on_it_declines_and_the_portable_path_computes(monkeypatch):
    """A source install without a C compiler: same numbers, from the portable path."""
    from bce_compat.backends.contract import Declined, Problem

    x, y = _data((3, 4))
    expected = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=np.float32(2.0))
    monkeypatch.setattr(numpy_fast, "AVAILABLE", False)
    declined = numpy_fast.ENGINE(Problem("logits", x, y, None, 2.0, "mean", x.dtype))
    assert isinstance(declined, Declined) and "not built" in declined.reason
    got = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=np.float32(2.0))
    assert_close(got, expected, "float32", ulps=4)
    for name in ("torch", "paddle"):
        module = pytest.importorskip(name)
        from bce_compat.backends import paddle_fast, torch_fast

        engine = torch_fast.ENGINE if name == "torch" else paddle_fast.ENGINE
        tx, ty = (module.to_tensor(a) if name == "paddle" else module.from_numpy(a) for a in (x, y))
        problem = Problem("logits", tx, ty, None, 2.0, "mean", tx.dtype)
        result = engine(problem)
        assert isinstance(result, Declined) and "not built" in result.reason, (name, result)
        value = bce_compat.binary_cross_entropy_with_logits(tx, ty, pos_weight=2.0)
        assert_close(np.asarray(float(value)), expected, "float32", ulps=4)
