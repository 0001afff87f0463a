"""The CPU pass (backends/_cpu_pass.c, through backends/cpu_pass.py) behind every CPU engine.

Its trust boundary (what C accepts and refuses, and why), operand layouts, its three routes
against the exact loss, the thread split (our team and torch's OpenMP team, same bits either
way), forks, interpreter exit, and what happens where it was not built. Our native team's own
hazards (signals, concurrent callers, a fork during a job) are in test_cpu_team.py.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import _cpu_pass_calls as calls
import bce_compat
from _reference import assert_close, exact_logits_grad, exact_logits_loss, reduce_exact
from bce_compat.backends import cpu_pass

needs_pass = pytest.mark.skipif(not cpu_pass.AVAILABLE, reason="the compiled pass was not built (no C compiler?)")
F32 = np.dtype(np.float32)


def test_the_pass_is_built_in_ci():
    """CI builds from source with a compiler: a silent fall-back to the slow path would hide there."""
    if not os.environ.get("CI") and not cpu_pass.AVAILABLE:
        pytest.skip("the compiled pass was not built here (no C compiler?); CI requires it")
    assert cpu_pass.AVAILABLE, "bce_compat.backends._cpu_pass did not build"


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    y = rng.random(shape).astype(np.float32)
    return x, y


# operand shape against x's shape: full, tiled along the last axes, per row, broadcasts of any
# pattern (read in place through stride 0), 0-d and one-element arrays
LAYOUTS = [
    ((6, 5), (6, 5)),
    ((6, 5), (5,)),
    ((6, 5), (6, 1)),
    ((6, 5), (1, 5)),
    ((2, 3, 4, 5), (3, 1, 1)),  # pos_weight [C, 1, 1] over images [N, C, H, W]
    ((2, 3, 4, 5), (2, 1, 4, 1)),
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
    got = calls.loss(x, y, w, p, "none", dtype)
    assert got.shape == x.shape and got.dtype == np.dtype(dtype)
    assert_close(got, expected, dtype, ulps=4)
    total = calls.loss(x, y, w, p, "sum", dtype)
    assert_close(total, reduce_exact(expected, "sum"), dtype, ulps=4, size=max(1, x.size))
    g = np.empty(x.shape, dtype)
    calls.loss(x, y, w, p, "sum", dtype, grad_out=g)
    grad, bound = exact_logits_grad(x, y, w, p)
    assert_close(g, grad, dtype, ulps=4, bound=bound)


@needs_pass
@pytest.mark.parametrize("make", [
    lambda a: a.T,  # transposed
    lambda a: a[:, ::2],  # strided
    lambda a: np.broadcast_to(a[:1], a.shape),  # stride 0
    lambda a: a.astype(np.float16).astype(np.float32)[::-1],  # reversed: a negative stride
    lambda a: a[::-2, ::-3],  # negative strides on both axes
], ids=["transposed", "strided", "stride-0", "reversed", "negative-strides"])
def test_non_contiguous_inputs_match_exact_and_are_not_modified(make):
    x, y = _data((8, 6))
    x, y = make(x), make(y)
    before = x.copy(), y.copy()
    got = calls.loss(x, y, None, 2.0, "none", F32)
    assert_close(got, exact_logits_loss(x, y, None, 2.0), "float32", ulps=4)
    g = calls.grad(x, y, None, 2.0, np.full(x.shape, 0.5), F32)
    grad, bound = exact_logits_grad(x, y, None, 2.0)
    assert_close(g, grad * 0.5, "float32", ulps=4, bound=bound * 0.5)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])


@needs_pass
def test_a_result_keeps_the_layout_it_is_given():
    """Outputs may be strided (a transposed result, a torch.empty_like of a transposed x): the
    pass writes each element where the output's own strides say."""
    x, y = _data((16, 9))
    plain = calls.loss(x, y, None, 1.5, "none", F32)
    out = np.empty((9, 16), np.float32).T  # Fortran-ordered [16, 9]
    cpu_pass.run("logits", x, y, None, 1.5, reduction="none", loss_out=out)
    np.testing.assert_array_equal(out, plain)


# --- the trust boundary ------------------------------------------------------------------------


@needs_pass
def test_c_reads_shapes_from_the_buffer_not_from_python():
    """A NumPy subclass whose ``shape`` property lies: C reads the buffer's own shape."""

    class Lying(np.ndarray):
        @property
        def shape(self):
            return (8192,)

    x = np.zeros(4, np.float32).view(Lying)
    y = np.zeros(4, np.float32)
    out = np.empty(4, np.float32)
    totals = cpu_pass.run("logits", x, y, reduction="none", loss_out=out)
    assert totals.kept == 4
    np.testing.assert_array_equal(out, np.full(4, math.log(2), np.float32))
    with pytest.raises(ValueError, match="does not fit"):  # 8192 elements would not fit a 4-element output
        cpu_pass.run("logits", np.zeros(8192, np.float32), y, reduction="none", loss_out=out)


@needs_pass
@pytest.mark.parametrize("bad, match", [
    (np.zeros(4, np.int32), "not float16, float32 or float64"),
    (np.zeros(4, np.complex64), "not float16, float32 or float64"),
    ("text", "buffer protocol or DLPack"),
    (object(), "buffer protocol or DLPack"),
])
def test_arrays_c_cannot_verify_are_refused(bad, match):
    y = np.zeros(4, np.float32)
    with pytest.raises((TypeError, ValueError), match=match):
        cpu_pass.run("logits", bad, y, reduction="sum")
    with pytest.raises((TypeError, ValueError), match=match):
        cpu_pass.run("logits", y, bad, reduction="sum")


@needs_pass
def test_outputs_must_be_writable_and_of_the_inputs_shape():
    x, y = _data((4,))
    with pytest.raises((ValueError, BufferError), match="writable|read-only"):
        readonly = np.empty(4, np.float32)
        readonly.flags.writeable = False
        cpu_pass.run("logits", x, y, reduction="none", loss_out=readonly)
    with pytest.raises(ValueError, match="does not fit"):
        cpu_pass.run("logits", x, y, reduction="none", loss_out=np.empty(5, np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        cpu_pass.run("logits", x, y, reduction="none", loss_out=np.empty((1, 4), np.float32))


@needs_pass
@pytest.mark.parametrize("result", ["float16", "float32", "float64"])
def test_a_half_precision_gradient_is_the_float32_gradient_rounded_once_more(result):
    """grad_out in float16 (or bfloat16, through torch): what the engines' float32 buffer gives
    converted, on every route and kind, so that an engine may hand a half gradient over as it is."""
    x, y = _data((33, 17), seed=6)
    p = np.linspace(0.5, 30, 17).astype(np.float32)
    for kind, options in (("logits", {}), ("logits", {"label_smoothing": 0.1}), ("probs", {}), ("focal", {})):
        xs = (1 / (1 + np.exp(-x))).astype(np.float32) if kind == "probs" else x
        wide, half = np.empty(x.shape, np.float64 if result == "float64" else np.float32), np.empty(x.shape, np.float16)
        for out in (wide, half):
            cpu_pass.run(kind, xs.astype(result), y.astype(result), None, p if kind == "logits" else None,
                         reduction="mean", grad_out=out, result_dtype=result, options=options)
        np.testing.assert_array_equal(half, wide.astype(np.float32).astype(np.float16), err_msg=f"{kind} {options}")


@needs_pass
def test_operands_that_do_not_broadcast_are_refused():
    x, y = _data((4, 3))
    for bad in (np.zeros(4, np.float32), np.zeros((2, 4, 3), np.float32), np.zeros((4, 3, 1), np.float32)):
        with pytest.raises(ValueError, match="does not fit"):
            cpu_pass.run("logits", x, y, bad, reduction="sum")


@needs_pass
def test_a_capacity_smaller_than_the_view_is_refused():
    """``(array, capacity)``: the bytes the array's storage holds from its first element (what the
    torch and Paddle engines read from the storage object); a view reaching past it is refused."""
    x, y = _data((16,))
    assert cpu_pass.run("logits", (x, 64), y, reduction="sum").kept == 16
    with pytest.raises(ValueError, match="reaches past the memory"):
        cpu_pass.run("logits", (x, 60), y, reduction="sum")
    with pytest.raises(ValueError, match="reaches past the memory"):
        cpu_pass.run("logits", x, (y, 0), reduction="sum")
    with pytest.raises(ValueError, match="negative capacity"):
        cpu_pass.run("logits", (x, -1), y, reduction="sum")
    # the capacity counts from the first element forwards: a view that reaches before it is refused
    with pytest.raises(ValueError, match="reaches past the memory"):
        cpu_pass.run("logits", (x[::-1], 64), y, reduction="sum")


@needs_pass
def test_strides_of_part_of_an_element_are_refused():
    """A packed structured array's field: float32 every 5 bytes. The pass reads whole elements
    (the NumPy engine declines such arrays before it gets here)."""
    record = np.zeros(16, dtype=[("x", np.float32), ("flag", np.uint8)])
    _, y = _data((16,))
    with pytest.raises(ValueError, match="strides that are not whole elements"):
        cpu_pass.run("logits", record["x"], y, reduction="sum")


@needs_pass
def test_is_one_takes_one_element_only():
    """The backward's shortcut for an upstream of exactly 1 (``loss.backward()``): one element."""
    assert cpu_pass.is_one(np.array(1.0, np.float32)) and cpu_pass.is_one(np.array([1.0]))
    assert not cpu_pass.is_one(np.array([1.0, 1.0])) and not cpu_pass.is_one(np.array([1.0, 2.0]))
    assert not cpu_pass.is_one(np.array(-1.0)) and not cpu_pass.is_one(np.array(np.nextafter(1.0, 2.0)))


@needs_pass
def test_dlpack_capsules_are_read_like_buffers():
    x, y = _data((3, 5))
    expected = calls.loss(x, y, None, 2.0, "sum", F32)
    got = cpu_pass.run("logits", x.__dlpack__(), y.__dlpack__(max_version=(1, 0)), None, 2.0, reduction="sum")
    assert np.float32(got.sum) == expected


@needs_pass
def test_argument_errors_are_clear():
    x, y = _data((4,))
    run = cpu_pass._cpu_pass.run
    settings = (False, 0.0, None, False, 0.25, 2.0, 1.0)
    with pytest.raises(ValueError, match="start % BLOCK"):
        run(0, 1, x, y, None, None, None, None, settings, 1, 4, None, 1, 0)
    with pytest.raises(ValueError, match="stop <= size"):
        run(0, 1, x, y, None, None, None, None, settings, 0, 5, None, 1, 0)
    with pytest.raises(ValueError, match="unknown kind or route"):
        run(3, 1, x, y, None, None, None, None, settings, 0, 4, None, 1, 0)
    with pytest.raises(ValueError, match="rows"):
        run(0, 1, x, y, None, None, None, None, settings, 0, 4, np.zeros((1, 3)), 1, 0)
    with pytest.raises(ValueError, match="unknown team"):
        run(0, 1, x, y, None, None, None, None, settings, 0, 4, None, 2, 3)


# --- routes, kinds and options against the exact values ----------------------------------------


@needs_pass
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_route_is_within_the_contract_of_exact(dtype):
    """HALF (float16 results: float32 math), SINGLE (float32: float32 exp/log1p, double elsewhere)
    and DOUBLE, on |x| up to 1e30 and the subnormal range, soft targets, pos_weight up to 1e3."""
    rng = np.random.default_rng(11)
    x = np.concatenate([
        rng.standard_normal(400) * 30, rng.standard_normal(200), np.geomspace(1e-30, 80, 100), -np.geomspace(1e-30, 80, 100),
        [0.0, -0.0, 88.0, -88.0, 104.0, -104.0, 1e30, -1e30, 708.0, -745.0],
    ])
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
    y = rng.random(x.size).astype(dtype)
    y[::5] = 0.0
    y[1::5] = 1.0
    p = (10.0 ** rng.uniform(-2, 3, x.size)).astype(dtype)
    w = rng.random(x.size).astype(dtype) * 3
    loss = np.empty(x.shape, dtype)
    grad = np.empty(x.shape, np.float64 if dtype == "float64" else np.float32)
    cpu_pass.run("logits", x, y, w, p, reduction="none", loss_out=loss, grad_out=grad, result_dtype=dtype)
    assert_close(loss, exact_logits_loss(x, y, w, p), dtype, ulps=1 if dtype == "float16" else 4)
    expected, bound = exact_logits_grad(x, y, w, p)
    assert_close(grad, expected, "float32" if dtype != "float64" else "float64", ulps=4, bound=bound)


@needs_pass
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_loss_has_the_same_bits_with_and_without_the_gradient(dtype):
    """The loss loop is the same code in both (docs/contract.md §3, determinism)."""
    x, y = _data((40, 33), seed=4)
    x, y = x.astype(dtype), y.astype(dtype)
    p = np.linspace(0.5, 30, 33).astype(dtype)
    for kind, options in (("logits", {}), ("logits", {"label_smoothing": 0.1}), ("focal", {"gamma": 1.5}),
                          ("probs", {})):
        xs = 1 / (1 + np.exp(-x)) if kind == "probs" else x
        plain = calls.loss(xs, y, None, p if kind == "logits" else None, "none", dtype, kind=kind, options=options)
        with_grad = calls.loss(xs, y, None, p if kind == "logits" else None, "none", dtype, kind=kind, options=options,
                               grad_out=np.empty(x.shape, dtype))
        np.testing.assert_array_equal(plain, with_grad, err_msg=kind)


@needs_pass
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inputs_past_the_prefetch_size_give_the_bits_of_smaller_calls(dtype):
    """From PREFETCH_BYTES of x and y on, the pass asks for the next chunk's cache lines while it
    computes: the element-wise loss and gradient of such an input are those of the same elements
    passed in pieces below that size, and its sum is the sum over its blocks as on one thread."""
    itemsize = np.dtype(dtype).itemsize
    n = cpu_pass._cpu_pass.PREFETCH_BYTES // (2 * itemsize) + 1000  # past the size, and not a whole chunk
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(n) * 6).astype(dtype)
    y = rng.random(n).astype(dtype)
    p = np.float64(2.5)
    loss, grad = np.empty(n, dtype), np.empty(n, dtype)
    cpu_pass.run("logits", x, y, None, p, reduction="none", loss_out=loss, grad_out=grad, result_dtype=dtype)
    piece = n // 3 + 7
    parts = [(np.empty(len(x[i:i + piece]), dtype), np.empty(len(x[i:i + piece]), dtype)) for i in range(0, n, piece)]
    for (part_loss, part_grad), i in zip(parts, range(0, n, piece)):
        cpu_pass.run("logits", x[i:i + piece], y[i:i + piece], None, p, reduction="none", loss_out=part_loss,
                     grad_out=part_grad, result_dtype=dtype)
    np.testing.assert_array_equal(loss.view(f"u{itemsize}"), np.concatenate([a for a, _ in parts]).view(f"u{itemsize}"))
    np.testing.assert_array_equal(grad.view(f"u{itemsize}"), np.concatenate([g for _, g in parts]).view(f"u{itemsize}"))
    total = cpu_pass.run("logits", x, y, None, p, reduction="sum", result_dtype=dtype).sum
    assert total == cpu_pass.run("logits", x, y, None, p, reduction="sum", result_dtype=dtype, threads=2,
                                 size_hint=n).sum


@needs_pass
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("kind", ["logits", "probs", "focal"])
def test_weights_repeated_in_every_chunk_give_the_bits_of_full_arrays(dtype, kind):
    """A weight or pos_weight with the same values in every chunk (a number, or a row of a length
    that divides CHUNK over [B, C]) is filled once per call and read as it is; its results are
    those of the same values passed as full arrays (gathered chunk by chunk), partial last chunks,
    ignore_index (which rewrites the weights in scratch) and threads included."""
    rng = np.random.default_rng(9)
    chunk = cpu_pass._cpu_pass.CHUNK
    for rows, columns, w_shape, p_shape in ((37, 64, (64,), (64,)), (5, chunk, (1, chunk), (chunk,)),
                                           (300, 8, (), (1, 1)), (11, 6, (6,), (6,)), (300, 6, (6,), (6,)), (3, 2 * chunk, (2 * chunk,), ())):
        x = (rng.standard_normal((rows, columns)) * 4).astype(dtype)
        if kind == "probs":
            x = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(dtype)
        y = rng.random((rows, columns)).round().astype(dtype)
        w = (rng.random(w_shape) * 3).astype(dtype)
        if w_shape == (64,):  # a row read through a view: every other element, backwards
            w = (rng.random(128) * 3).astype(dtype)[::-2]
        p = None if kind != "logits" else (rng.random(p_shape) * 5).astype(dtype)
        for options in ({}, {"ignore_index": 1.0}):
            for threads in (1, 2):
                results = []
                for full in (False, True):
                    ww = np.broadcast_to(w, x.shape).copy() if full else w
                    pp = None if p is None else (np.broadcast_to(p, x.shape).copy() if full else p)
                    loss, grad = np.empty(x.shape, dtype), np.empty(x.shape, np.float64 if dtype == "float64" else np.float32)
                    total = cpu_pass.run(kind, x, y, ww, pp, reduction="none", loss_out=loss, grad_out=grad,
                                         result_dtype=dtype, options=options, threads=threads, size_hint=x.size,
                                         parallel_min=1).sum
                    results.append((loss.tobytes(), grad.tobytes(), total))
                assert results[0] == results[1], (rows, columns, w_shape, p_shape, options, threads)


_HALF_RUNS_SCRIPT = """
import sys
import numpy as np
from bce_compat.backends import cpu_pass

every = np.arange(65536, dtype=np.uint16).view(np.float16)  # every float16: NaNs, infinities, subnormals
rng = np.random.default_rng(5)
unit = rng.integers(0, 0x3C01, 65536, dtype=np.uint16).view(np.float16)  # float16 values in [0, 1]
results = []
# (1024, 64): runs of whole chunks; (255, 257) with a (257,) pos_weight: runs that end between 8-lane groups
for x, y, p in ((every.reshape(1024, 64), unit.reshape(1024, 64), unit[:64] * 30), (every[1:].reshape(255, 257), unit[1:].reshape(255, 257), unit[:257] * 30)):
    for kind in ("logits", "probs", "focal"):
        xs = np.abs(x) / np.float16(65504) if kind == "probs" else x  # [0, 1] and NaN
        loss = np.empty(x.shape, np.float16)
        grad = np.empty(x.shape, np.float32)
        totals = cpu_pass.run(kind, xs, y, y, p if kind == "logits" else None, reduction="none", loss_out=loss,
                              grad_out=grad, result_dtype="float16")
        results += [loss.view(np.uint16), grad.view(np.uint32), np.float64(totals.sum).reshape(1).view(np.uint64)]
np.save(sys.argv[1], np.concatenate([r.reshape(-1).astype(np.uint64) for r in results]))
print(int(cpu_pass.F16C))
"""


@needs_pass
def test_float16_runs_by_the_f16c_instructions_give_the_bits_of_the_value_by_value_conversion(tmp_path):
    """backends/_cpu_f16c.h: where the CPU has F16C, float16 operands are read and float16 results
    written 8 values an instruction. Every float16 value as input, target, weight and pos_weight,
    the three kinds, the loss written in float16: bit for bit the results of the value-by-value
    conversion ($BCE_COMPAT_NO_F16C turns the runs off, as on a CPU without F16C)."""
    if not cpu_pass.F16C:
        pytest.skip("no F16C runs here (a CPU without F16C, or not a GCC x86-64 build): one conversion only")
    outputs = {}
    for setting in ("", "1"):
        env = {**os.environ, "BCE_COMPAT_NO_F16C": setting}
        out = tmp_path / f"runs{setting}.npy"
        done = subprocess.run([sys.executable, "-c", _HALF_RUNS_SCRIPT, str(out)], capture_output=True, text=True,
                              env=env, timeout=120, cwd=tmp_path)  # not the source tree: the installed package
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == ("0" if setting else "1")
        outputs[setting] = np.load(out)
    np.testing.assert_array_equal(outputs[""], outputs["1"])


@needs_pass
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chunks_of_hard_targets_take_one_log_with_the_bits_of_two(dtype):
    """Probabilities: a chunk whose targets are all 0 or 1 takes one log and one division an element
    (probs_loss_hard, probs_grad_hard). The same chunk with one soft target takes the two-term
    loops: every other element's loss and gradient must have the same bits, -0.0 and +0.0 told
    apart, on q at the clamp's edge, 0, 1, subnormal and NaN."""
    from bce_compat.backends import _cpu_pass

    chunk = _cpu_pass.CHUNK
    info = np.finfo(dtype)
    edges = [0.0, float(info.smallest_subnormal), 3.720075976020836e-44, 3.7200759760208e-44, 3.72007597602084e-44,
             1e-30, 1e-8, 0.25, 0.5, 0.5 + float(info.eps), 1 - float(info.eps), 1 - float(info.epsneg), 1.0, math.nan]
    rng = np.random.default_rng(8)
    q = np.concatenate([edges, rng.random(chunk - len(edges)) ** 8]).astype(dtype)
    y = (np.arange(chunk) % 2).astype(dtype)
    y[: len(edges)] = 1.0
    q, y = np.concatenate([q, q, q]), np.concatenate([y, y, 1 - y])  # the third chunk: the edges with y = 0
    w = rng.random(3 * chunk).astype(dtype) * 4
    soft = y.copy()
    soft[[chunk - 1, 2 * chunk - 1, 3 * chunk - 1]] = 0.5  # one soft target a chunk: the two-log loop
    results, grads = [], []
    for targets in (y, soft):
        loss, grad = np.empty(q.shape, dtype), np.empty(q.shape, dtype)
        cpu_pass.run("probs", q, targets, w, None, reduction="mean", loss_out=loss, grad_out=grad, result_dtype=dtype)
        results.append(loss.view(np.uint32 if dtype == "float32" else np.uint64))
        grads.append(grad.view(results[-1].dtype))
    kept = np.ones(q.shape, bool)
    kept[[chunk - 1, 2 * chunk - 1, 3 * chunk - 1]] = False
    np.testing.assert_array_equal(results[0][kept], results[1][kept])
    np.testing.assert_array_equal(grads[0][kept], grads[1][kept])
    assert (results[0][:len(edges)] == np.zeros(1, dtype).view(results[0].dtype)).sum() >= 1  # q = 1, y = 1: +0.0, not -0.0


# --- threads --------------------------------------------------------------------------------------


@needs_pass
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_same_bits_on_one_thread_and_on_many(reduction):
    x, y = _data((cpu_pass.BLOCK * 5 + 3,), seed=3)
    p = np.float32(1.7)
    results = []
    for threads in (1, 2, 3, 64):  # 3: an uneven split; 64: more parts than blocks
        g = np.empty(x.shape, np.float32)
        results.append((calls.loss(x, y, None, p, reduction, F32, grad_out=g, threads=threads,
                                   parallel_min=cpu_pass.BLOCK + 1), g))
    for value, g in results[1:]:
        np.testing.assert_array_equal(value, results[0][0])
        np.testing.assert_array_equal(g, results[0][1])


@needs_pass
def test_the_thread_count_setting(monkeypatch):
    monkeypatch.setenv("BCE_COMPAT_NUM_THREADS", "3")
    assert cpu_pass.num_threads() == 3
    monkeypatch.setenv("BCE_COMPAT_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="positive integer"):
        cpu_pass.num_threads()
    monkeypatch.setenv("BCE_COMPAT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="positive integer"):
        cpu_pass.num_threads()
    monkeypatch.delenv("BCE_COMPAT_NUM_THREADS")
    assert 1 <= cpu_pass.num_threads() <= 4


def _run_script(code: str, timeout: float = 120, env=None):
    """``code`` in a fresh interpreter; (exit code, stdout, stderr). A hang is a failure."""
    environment = dict(os.environ, **(env or {}))
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env=environment, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        pytest.fail(f"the script hung (over {timeout} s)")
    return done.returncode, done.stdout, done.stderr


@needs_pass
def test_numpy_inputs_use_our_team_with_the_documented_thread_count():
    code = """
        import numpy as np, bce_compat
        from bce_compat.backends import cpu_pass
        x = np.zeros(1 << 18, np.float32)
        bce_compat.binary_cross_entropy_with_logits(x, x)
        print("started", cpu_pass.threads_started())
    """
    for setting, expected in (("1", 0), ("3", 2)):  # the calling thread computes a part itself
        code_, out, err = _run_script(code, env={"BCE_COMPAT_NUM_THREADS": setting})
        assert code_ == 0, err
        assert f"started {expected}" in out, (setting, out)


@needs_pass
def test_a_loss_at_interpreter_exit_computes_on_the_calling_thread():
    """Issue 22 item 8: at exit the pool takes no work ("cannot schedule new futures after
    interpreter shutdown"); the calling thread computes instead, with the same bits."""
    code = """
        import atexit, numpy as np, bce_compat
        x = np.linspace(-8, 8, 1 << 18).astype(np.float32); y = np.full_like(x, 0.25)
        expected = float(bce_compat.binary_cross_entropy_with_logits(x, y))
        def at_exit():
            got = float(bce_compat.binary_cross_entropy_with_logits(x, y))
            print("at exit", got == expected)
        atexit.register(at_exit)
    """
    code_, out, err = _run_script(code)
    assert code_ == 0 and "at exit True" in out, (out, err)
    assert "Traceback" not in err, err


@needs_pass
def test_daemon_threads_computing_during_exit_print_nothing():
    code = """
        import threading, numpy as np, bce_compat
        x = np.linspace(-8, 8, 1 << 18).astype(np.float32)
        def work():
            while True:
                bce_compat.binary_cross_entropy_with_logits(x, x)
        for _ in range(2):
            threading.Thread(target=work, daemon=True).start()
        import time; time.sleep(0.5)
    """
    code_, out, err = _run_script(code)
    assert code_ == 0, err
    assert "Traceback" not in err and "cannot schedule" not in err, err


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
    """The parent's team threads do not exist in a fork: the child must not hand them work."""
    x, y = _data((cpu_pass.BLOCK * 5 + 5,), seed=9)
    in_parent = calls.loss(x, y, None, 2.0, "sum", F32, threads=2)  # the pool is running now
    in_child = _in_a_forked_child(lambda: calls.loss(x, y, None, 2.0, "sum", F32, threads=2))
    assert in_child == in_parent


@needs_pass
@needs_fork
def test_a_forked_child_forgets_the_host_team(host_team):
    """A team the parent used hangs a forked child (torch's own ops hang there): the child computes
    without it, with the same bits."""
    x, y = _data((cpu_pass.BLOCK * 5 + 5,), seed=10)
    in_parent = calls.loss(x, y, None, 2.0, "none", F32, threads=2, host_team=True)  # the team is running now

    def compute():
        return cpu_pass._host_team, cpu_pass.use_host_openmp(), calls.loss(
            x, y, None, 2.0, "none", F32, threads=2, host_team=True)

    team_at_fork, team_found, in_child = _in_a_forked_child(compute)
    assert (team_at_fork, team_found) == (False, False)
    np.testing.assert_array_equal(in_child, in_parent)


@needs_fork
def test_numpy_losses_leave_torch_usable_in_a_forked_child():
    """Issue 22 item 3: torch loaded and used, then a large NumPy loss, then a fork: the child's
    first multi-threaded torch op must not hang (NumPy inputs never run on torch's OpenMP team)."""
    pytest.importorskip("torch")
    code = """
        import os, sys, numpy as np, torch, bce_compat
        bce_compat.binary_cross_entropy_with_logits(torch.zeros(4), torch.zeros(4))
        x = np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32)
        bce_compat.binary_cross_entropy_with_logits(x, np.zeros_like(x))
        pid = os.fork()
        if pid == 0:
            torch.set_num_threads(2)
            a = torch.randn(1 << 22)
            print("child", float((a * 2).sum()) == float(a.sum() * 2), flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """
    code_, out, err = _run_script(code, timeout=90)
    assert code_ == 0 and "child True" in out, (out, err)


def test_without_the_pass_every_engine_on_it_declines_and_the_portable_path_computes(monkeypatch):
    """A source install without a C compiler: same numbers, from the portable path."""
    from bce_compat.contract import Declined, Problem

    x, y = _data((3, 4))
    expected = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=np.float32(2.0))
    monkeypatch.setattr(cpu_pass, "AVAILABLE", False)
    from bce_compat.backends import numpy_fast

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
