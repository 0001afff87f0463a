"""Paddle's modes (issue 11.3): dygraph, ``paddle.jit.to_static`` (SOT and AST) and static-graph
programs give the values and gradients of dygraph, for the dialect functions and the Layer classes,
float32 and float64; and on inputs where Paddle's own op is exact, its numbers.

dygraph runs the NumPy kernel (the fast path) and the graphs run Paddle ops (the portable path),
so they agree to a few ulp, not bit for bit; within dygraph the bits never depend on whether a
gradient is wanted (issue 12.2, also in tests/test_determinism.py).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from _reference import assert_close, exact_logits_grad, exact_logits_loss, reduce_exact

paddle = pytest.importorskip("paddle")

import bce_compat  # noqa: E402
import bce_compat.paddle  # noqa: E402
from bce_compat import _graph_marks, _loss  # noqa: E402
from bce_compat.dialects import paddle as P  # noqa: E402

REDUCTIONS = ("none", "mean", "sum")
DTYPES = ("float32", "float64")
# Inputs where Paddle's own op is exact to a few ulp: it computes log(1 + exp(-|x|)), whose
# relative error grows with |x|; and Paddle's gradient at x = 0 is wrong (README)
X = np.asarray([[1.0, 0.5, -1.0], [-0.75, 0.25, 1.5]])
Y = np.asarray([[1.0, 0.0, 1.0], [0.0, 0.5, 1.0]])
Q = np.asarray([[0.9, 0.2, 0.5], [0.01, 0.7, 0.999]])
W = np.asarray([0.5, 1.0, 2.0])
PW = np.asarray([1.0, 2.0, 3.0])
RTOL = {"float32": 8 * 2.0**-23, "float64": 8 * 2.0**-52}  # a few ulp: NumPy kernel vs Paddle ops


def make_layers(w, pw):
    """The Layer classes, as a model builds them: once, outside the traced step."""
    return {r: (bce_compat.paddle.BCEWithLogitsLoss(w, r, pw), bce_compat.paddle.BCELoss(w, r)) for r in REDUCTIONS}


def losses(x, y, q, w, pw, layers):
    """Every entry point under test on the same inputs."""
    out = []
    for reduction in REDUCTIONS:
        with_logits_layer, probs_layer = layers[reduction]
        out.append(P.binary_cross_entropy_with_logits(x, y, w, reduction, pw))
        out.append(P.binary_cross_entropy(q, y, w, reduction))
        out.append(with_logits_layer(x, y))
        out.append(probs_layer(q, y))
    out.append(bce_compat.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw))  # torch dialect
    return out


def _inputs(dtype):
    return [paddle.to_tensor(a, dtype=dtype, stop_gradient=False) for a in (X, Y, Q, W, PW)]


def _dygraph(dtype):
    args = _inputs(dtype)
    out = losses(*args, make_layers(args[3], args[4]))
    grads = paddle.grad(sum(o.sum() for o in out), [args[0], args[2], args[4]])
    return [o.numpy() for o in out], [g.numpy() for g in grads]


@contextlib.contextmanager
def _sot_must_compile():
    """SOT runs small graphs eagerly and falls back on a graph break; here both are refused."""
    from paddle.jit.sot.utils import min_graph_size_guard, strict_mode_guard

    with strict_mode_guard(True), min_graph_size_guard(0):
        yield


def _to_static(dtype, full_graph):
    args = _inputs(dtype)
    layers = make_layers(args[3], args[4])

    def step(x, y, q, w, pw):
        return losses(x, y, q, w, pw, layers)

    fn = paddle.jit.to_static(step, full_graph=full_graph)
    with contextlib.nullcontext() if full_graph else _sot_must_compile():
        out = fn(*args)
    grads = paddle.grad(sum(o.sum() for o in out), [args[0], args[2], args[4]])
    return [o.numpy() for o in out], [g.numpy() for g in grads]


@contextlib.contextmanager
def static_mode():
    paddle.enable_static()
    try:
        yield paddle.static.Program(), paddle.static.Program()
    finally:
        paddle.disable_static()


def _static_program(dtype):
    with static_mode() as (main, startup):
        with paddle.static.program_guard(main, startup):
            # the batch size is left open (None), as in a real program
            x, y, q = (paddle.static.data(n, [None, 3], dtype) for n in ("x", "y", "q"))
            w, pw = (paddle.static.data(n, [3], dtype) for n in ("w", "pw"))
            for v in (x, y, q, w, pw):
                v.stop_gradient = False
            out = losses(x, y, q, w, pw, make_layers(w, pw))
            total = paddle.add_n([paddle.sum(o) for o in out])
            grads = paddle.static.gradients([total], [x, q, pw])
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        feed = {n: a.astype(dtype) for n, a in zip(("x", "y", "q", "w", "pw"), (X, Y, Q, W, PW))}
        fetched = exe.run(main, feed=feed, fetch_list=[*out, *grads])
    return fetched[: len(out)], fetched[len(out) :]


MODES = {
    "to_static-sot": lambda dtype: _to_static(dtype, full_graph=False),
    "to_static-ast": lambda dtype: _to_static(dtype, full_graph=True),
    "static-program": _static_program,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", list(MODES))
def test_mode_gives_dygraph_values_and_gradients(mode, dtype):
    values, grads = MODES[mode](dtype)
    expected_values, expected_grads = _dygraph(dtype)
    assert len(values) == len(expected_values)
    for got, want in zip(values + grads, expected_values + expected_grads):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dygraph_matches_paddles_own_op_and_the_exact_loss(dtype):
    """Where Paddle's op is exact, its numbers; everywhere, within docs/contract.md §4 of the exact value."""
    F = paddle.nn.functional
    x, y, q, w, pw = _inputs(dtype)
    for reduction in REDUCTIONS:
        ours = P.binary_cross_entropy_with_logits(x, y, w, reduction, pw)
        native = F.binary_cross_entropy_with_logits(x, y, w, reduction, pw)
        np.testing.assert_allclose(ours.numpy(), native.numpy(), rtol=RTOL[dtype])
        exact = reduce_exact(exact_logits_loss(X, Y, W, PW), reduction)
        assert_close(ours.numpy(), exact, dtype, size=X.size if reduction != "none" else 1)
        ours_q = bce_compat.paddle.BCELoss(w, reduction)(q, y)
        np.testing.assert_allclose(ours_q.numpy(), F.binary_cross_entropy(q, y, w, reduction).numpy(), rtol=RTOL[dtype])
    (grad,) = paddle.grad(P.binary_cross_entropy_with_logits(x, y, w, "sum", pw), [x])
    (native_grad,) = paddle.grad(F.binary_cross_entropy_with_logits(x, y, w, "sum", pw), [x])
    np.testing.assert_allclose(grad.numpy(), native_grad.numpy(), rtol=RTOL[dtype])
    exact_grad, bound = exact_logits_grad(X, Y, W, PW)
    assert_close(grad.numpy(), exact_grad, dtype, bound=bound)


def test_static_program_edge_values_are_exact():
    """The portable path inside a program keeps the accuracy promise at the edges (±inf, -20, 1e30)."""
    xn = np.asarray([-np.inf, -1e30, -20.0, 0.0, 20.0, 1e30, np.inf], np.float32)
    yn = np.asarray([0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 1.0], np.float32)
    with static_mode() as (main, startup):
        with paddle.static.program_guard(main, startup):
            x, y = paddle.static.data("x", [-1], "float32"), paddle.static.data("y", [-1], "float32")
            out = [P.binary_cross_entropy_with_logits(x, y, reduction=r) for r in REDUCTIONS]
        (none, mean, total) = paddle.static.Executor(paddle.CPUPlace()).run(main, feed={"x": xn, "y": yn}, fetch_list=out)
    exact = exact_logits_loss(xn, yn)
    assert_close(none, exact, "float32")
    assert_close(mean, reduce_exact(exact, "mean"), "float32", size=xn.size)
    assert_close(total, reduce_exact(exact, "sum"), "float32", size=xn.size)
    assert mean.shape == () and total.shape == ()


def test_static_program_empty_batch_mean_is_nan():
    with static_mode() as (main, startup):
        with paddle.static.program_guard(main, startup):
            x, y = paddle.static.data("x", [None, 2], "float64"), paddle.static.data("y", [None, 2], "float64")
            out = [P.binary_cross_entropy_with_logits(x, y, reduction=r) for r in ("mean", "sum")]
        empty = np.zeros((0, 2))
        mean, total = paddle.static.Executor(paddle.CPUPlace()).run(main, feed={"x": empty, "y": empty}, fetch_list=out)
    assert np.isnan(mean) and total == 0


def test_static_program_skips_value_checks_but_keeps_shape_checks():
    with static_mode() as (main, startup):
        with paddle.static.program_guard(main, startup):
            q, y = paddle.static.data("q", [None, 3], "float32"), paddle.static.data("y", [None, 3], "float32")
            P.binary_cross_entropy(q, y)  # no values yet: the [0, 1] check cannot run, and is skipped
            with pytest.raises(ValueError, match="`label` must have the same shape as `logit`"):
                P.binary_cross_entropy_with_logits(q, paddle.static.data("z", [None, 4], "float32"))


def test_loss_is_marked_as_paddle_marks_its_own_apis():
    """The mark bce_compat sets without importing Paddle is the one Paddle reads, for both modes."""
    from paddle.jit.dy2static.utils import TransformOptions

    assert TransformOptions.TRANSFORM_OPTIONS_ATTR_NAME == _graph_marks.PADDLE_MARK
    for mode in (TransformOptions.ToStaticMode.SOT, TransformOptions.ToStaticMode.AST):
        assert not TransformOptions.check_fn_need_transform(_loss.compute, mode)
    assert not TransformOptions.check_fn_need_capture_control_flow(_loss.compute)
    reference = paddle.jit.marker.unified(lambda: None)
    assert hasattr(reference, _graph_marks.PADDLE_MARK)


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_static_layer_inside_a_model(dtype):
    """A Layer holding our loss as a sublayer, converted whole."""

    class Model(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(3, 3)
            self.criterion = bce_compat.paddle.BCEWithLogitsLoss(pos_weight=paddle.to_tensor(PW, dtype=dtype))

        def forward(self, x, y):
            return self.criterion(self.linear(x), y)

    paddle.seed(0)
    paddle.set_default_dtype(dtype)
    try:
        model = Model()
    finally:
        paddle.set_default_dtype("float32")
    x, y = paddle.to_tensor(X, dtype=dtype), paddle.to_tensor(Y, dtype=dtype)
    eager = model(x, y)
    (eager_grad,) = paddle.grad(eager, [model.linear.weight])
    static_model = paddle.jit.to_static(model, full_graph=False)
    with _sot_must_compile():
        compiled = static_model(x, y)
    (compiled_grad,) = paddle.grad(compiled, [model.linear.weight])
    np.testing.assert_allclose(compiled.numpy(), eager.numpy(), rtol=RTOL[dtype])
    np.testing.assert_allclose(compiled_grad.numpy(), eager_grad.numpy(), rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)


def _layout(name: str, dtype: str):
    """(logit, label) tensors of a layout, made by Paddle itself (0-d, one element, empty, views)."""
    rng = np.random.default_rng(5)
    base = {"zero_d": (), "one_element": (1,), "empty": (0, 3), "transposed": (3, 4), "strided": (4, 6)}[name]
    x, y = (paddle.to_tensor(a, dtype=dtype) for a in (rng.normal(scale=3, size=base), rng.random(base)))
    if name == "transposed":
        x, y = x.T, y.T
    elif name == "strided":
        x, y = x[:, ::2], y[:1, ::2].expand([4, 3])  # a step-2 slice, and a broadcast (stride-0) label
    return x, y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["zero_d", "one_element", "empty", "transposed", "strided"])
def test_layouts_in_to_static_and_dygraph(layout, dtype):
    x, y = _layout(layout, dtype)

    def step(x, y):
        return [P.binary_cross_entropy_with_logits(x, y, reduction=r, pos_weight=2.0) for r in REDUCTIONS]

    x.stop_gradient = False
    eager = step(x, y)
    eager_grad = paddle.grad(sum(o.sum() for o in eager), [x])[0].numpy()
    # SOT itself runs a graph with an empty input eagerly (its ConditionalFallbackError)
    with contextlib.nullcontext() if layout == "empty" else _sot_must_compile():
        compiled = paddle.jit.to_static(step, full_graph=False)(x, y)
    compiled_grad = paddle.grad(sum(o.sum() for o in compiled), [x])[0].numpy()
    xn, yn = x.numpy().astype("float64"), y.numpy().astype("float64")
    exact = exact_logits_loss(xn, yn, None, 2.0)
    for reduction, a, b in zip(REDUCTIONS, eager, compiled):
        assert a.shape == b.shape == (list(x.shape) if reduction == "none" else [])
        assert_close(a.numpy(), reduce_exact(exact, reduction), dtype, size=max(x.size, 1))
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=RTOL[dtype])
    exact_grad, bound = exact_logits_grad(xn, yn, None, 2.0)
    assert_close(eager_grad, exact_grad * (2 + 1 / max(x.size, 1)), dtype, bound=bound * 3)
    np.testing.assert_allclose(compiled_grad, eager_grad, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)


# ---- no Paddle log line caused by our ops (issue 23, item 2)

_PIR_OUT_LINE = "not support input out tensor"
_PIR_SCRIPT = """
import json, sys
import numpy as np, paddle, bce_compat.paddle
from bce_compat.dialects import paddle as P


def criterion(x, y):
    return bce_compat.paddle.BCEWithLogitsLoss(pos_weight=paddle.to_tensor([2.0, 1.0, 0.5]))(x, y)


def to_static(full_graph):
    step = paddle.jit.to_static(criterion, full_graph=full_graph)
    x, y = paddle.to_tensor([[0.5, -1.0, 2.0]], stop_gradient=False), paddle.to_tensor([[1.0, 0.0, 1.0]])
    loss = step(x, y); loss.backward()
    return x.grad.numpy().tolist()


def static_program():  # the README's static-graph program, and the other kinds of loss
    paddle.enable_static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        logit = paddle.static.data("logit", [None, 3], "float32")
        label = paddle.static.data("label", [None, 3], "float32")
        out = bce_compat.paddle.BCEWithLogitsLoss(reduction="sum")(logit, label)
        focal = bce_compat.sigmoid_focal_loss(logit, label, reduction="sum")
        probs = P.binary_cross_entropy(paddle.nn.functional.sigmoid(logit), label, reduction="sum", ignore_index=-100)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    feed = {"logit": np.zeros((2, 3), np.float32), "label": np.ones((2, 3), np.float32)}
    values = [float(v) for v in exe.run(main, feed=feed, fetch_list=[out, focal, probs])]
    paddle.disable_static()
    return values


parts = {"sot": lambda: to_static(False), "ast": lambda: to_static(True), "static": static_program}
print(json.dumps({part: parts[part]() for part in sys.argv[1:]}))
"""
_PIR_CONTROL = """
import paddle
paddle.enable_static()
with paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
    v = paddle.static.data("v", [None, 3], "float32")
    v + v
"""


@pytest.mark.parametrize("parts", [("sot", "static"), ("ast",), ("static",)], ids="-then-".join)
def test_graph_modes_log_nothing_paddles_own_op_does_not(tmp_path, parts):
    """Paddle 3.3's Python ops (``a + b``, ``a < b``, ``where``, ...) pass ``out=None`` to their C ops in
    PIR programs, and the first one in a process logs ``W... eager_utils.cc:3584] Paddle static
    graph(PIR) not support input out tensor for now!!!!!``; ``paddle.nn.BCEWithLogitsLoss`` calls C ops
    directly and logs nothing, so a drop-in must log nothing either (issue 23, item 2). Each mode
    comes first in a fresh process; the control, ``v + v`` in one, shows the line would be seen."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}
    script = tmp_path / "graph_modes.py"  # a file: to_static(full_graph=True) reads the step's source
    script.write_text(_PIR_SCRIPT)
    done = subprocess.run([sys.executable, str(script), *parts], capture_output=True, text=True, env=env,
                          timeout=600, cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr[-3000:]
    assert _PIR_OUT_LINE not in done.stderr, done.stderr
    control = subprocess.run([sys.executable, "-c", _PIR_CONTROL], capture_output=True, text=True, env=env,
                             timeout=600, cwd=tempfile.gettempdir())
    assert _PIR_OUT_LINE in control.stderr, "Paddle no longer logs it: backends/paddle.py's workaround can go"

    values = json.loads(done.stdout.splitlines()[-1])
    if "static" in values:
        sum_loss, focal, probs = values["static"]
        np.testing.assert_allclose(sum_loss, 6 * np.log(2), rtol=1e-6)  # the README's 4.158883
        np.testing.assert_allclose(focal, 6 * 0.25 * np.log(2) * 0.5**2, rtol=1e-6)  # alpha 0.25, gamma 2
        np.testing.assert_allclose(probs, 6 * np.log(2), rtol=1e-6)
    exact, _ = exact_logits_grad([[0.5, -1.0, 2.0]], [[1.0, 0.0, 1.0]], pos_weight=[2.0, 1.0, 0.5])
    for mode in set(values) & {"sot", "ast"}:
        np.testing.assert_allclose(values[mode], exact / 3, rtol=1e-6)
