"""PaddlePaddle's own tests of its BCE losses, ported onto ``bce_compat``'s Paddle dialect.

Upstream: PaddlePaddle/Paddle, ``test/legacy_test/`` (older trees: ``python/paddle/fluid/tests/unittests/``):

- ``test_bce_with_logits_loss.py`` (read at commit 013cf4fda1cd9345ce3c90107143a18119e4b8de; the
  newer stored version 41768314bb92e726ee9dd1107e8c879b2296d5cb is the same less the
  ``TestBinaryCrossEntropyWithLogits*`` classes and ``@test_with_pir_api``, with CI's place list): ``TestBCEWithLogitsLoss``
  (``test_BCEWithLogitsLoss``, ``_weight``, ``_pos_weight``, ``_error``) and
  ``TestBinaryCrossEntropyWithLogits``, ``...1``, ``...2``, ``...3`` (dygraph against ``paddle.jit.to_static``).
- ``test_bce_loss.py`` (read at commit 0ab6998c22c7f4ea942b2437353f34c257e868d6): ``TestBCELoss``
  (``test_BCELoss``, ``_weight``, ``_error``) and the OpTest ``TestBceLossOp`` (``test_check_output``,
  ``test_check_grad``), whose op ``bce_loss`` is ``binary_cross_entropy(..., reduction="none")``.
- ``test_sigmoid_cross_entropy_with_logits_op.py`` (read at commit 0ab6998c22c7f4ea942b2437353f34c257e868d6):
  the OpTests ``TestSigmoidCrossEntropyWithLogitsOp1``, ``Op2``, ``Op3``, ``Op5``, ``Op6`` (the op is
  ``binary_cross_entropy_with_logits(..., reduction="none")``; Op2's ``ignore_index=-1`` is bce_compat's
  keyword-only ``ignore_index``) and ``TestSigmoidCrossEntropyWithLogitsOpError``.
- ``test_sigmoid_focal_loss.py`` (read at commit 02a5e4e062d7cdb7e87c62d284b61a9504bf8ee1):
  ``TestSigmoidFocalLoss`` (``test_SigmoidFocalLoss``, ``_error``).

Each test keeps its inputs, numpy reference, reductions, weights, ``pos_weight`` and tolerances; only
the calls change: ``paddle.nn.functional.binary_cross_entropy_with_logits`` / ``binary_cross_entropy``
become ``bce_compat.dialects.paddle``'s functions of the same names, ``paddle.nn.BCEWithLogitsLoss`` /
``BCELoss`` become ``bce_compat.paddle``'s Layers. The Paddle dialect has no ``sigmoid_focal_loss``
(docs/contract.md §2), so the focal tests call ``bce_compat.sigmoid_focal_loss`` (torchvision's
signature and semantics, §3) and divide its result by Paddle's ``normalizer`` (a one-element tensor;
Paddle divides before the linear reduction, the same numbers).

Harness: pytest functions and parametrize instead of ``unittest`` classes and loops; NumPy is seeded
(123, as OpTest's ``setUpClass`` does; upstream's API tests draw unseeded); ``CUDAPlace`` parameters
are skips without a CUDA build of Paddle; static programs run under PIR, Paddle 3.x's IR (Paddle
3.3.1 has no ``test_with_pir_api`` any more, and its own ops refuse legacy-IR Variables:
``paddle.exp``, ``paddle.nn.BCEWithLogitsLoss(reduction="sum")`` and ``sigmoid_focal_loss`` raise
"must be Value, but got Variable" under ``OldIrGuard``), and every test leaves Paddle in dygraph mode.
OpTest's checks become API calls: ``check_output`` compares the output's shape exactly and its values
with OpTest's tolerances (float64: atol 0, rtol 1e-5) in dygraph and in a static program;
``check_grad`` compares the gradient of the output's mean (dygraph and static) with OpTest's
central differences (``get_numeric_gradient``, here run through bce_compat in dygraph) by OpTest's
``_assert_is_close``, with its thresholds (float64 ops: delta 1e-5, max relative error 1e-7;
``sigmoid_cross_entropy_with_logits`` is on OpTest's fp64 white list: delta and error 0.005).

Not ported: ``TestBceLossOpFP16`` and ``TestBceLossOpStaticFP16`` run on a CUDAPlace only (OpTest has
no CPU place for float16), skips here; ``TestBceLossOpCase1`` / ``Case2`` define no test (they subclass
OpTest, not TestBceLossOp, and override a misspelt ``init_test_cast``); ``TestSigmoidCrossEntropyWithNorm``,
``...Norm2`` (the op's ``normalize`` attribute) and ``...Op4`` (the op's ``pos_weight`` input is the
API's internal ``(pos_weight - 1) * label + 1``) have no counterpart in the API.

Beyond upstream, ``test_result_shape_and_dtype_as_paddle`` checks what upstream's ``assert_allclose``
cannot see (it broadcasts): each entry point's result has Paddle's own shape and dtype, in every mode.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import bce_compat
from bce_compat.dialects import paddle as P

paddle = pytest.importorskip("paddle", reason="Paddle is not installed (pip install 'bce_compat[paddle]')")

import bce_compat.paddle  # noqa: E402  (imports Paddle)

# Paddle's own static backward (paddle.static.gradients -> full_like) reads a PIR Value's `place`
pytestmark = pytest.mark.filterwarnings("ignore:Tensor do not have 'place' interface:UserWarning")

PLACES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "gpu", id="gpu", marks=pytest.mark.skipif(not paddle.is_compiled_with_cuda(), reason="Paddle has no CUDA")
    ),
]
REDUCTIONS = ["sum", "mean", "none"]


def _place(name):
    return paddle.CPUPlace() if name == "cpu" else paddle.CUDAPlace(0)


@pytest.fixture(autouse=True)
def _harness():
    """OpTest's seed, and dygraph mode restored whatever a test left behind."""
    state = np.random.get_state()
    np.random.seed(123)
    try:
        yield
    finally:
        np.random.set_state(state)
        paddle.disable_static()


@contextlib.contextmanager
def _static_mode():
    paddle.enable_static()
    try:
        yield
    finally:
        paddle.disable_static()


# === test_bce_with_logits_loss.py ====================================================================


def call_bce_layer(logit, label, weight=None, reduction="mean", pos_weight=None):
    bce_logit_loss = bce_compat.paddle.BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)
    res = bce_logit_loss(logit, label)
    return res


def call_bce_functional(logit, label, weight=None, reduction="mean", pos_weight=None):
    res = P.binary_cross_entropy_with_logits(logit, label, weight=weight, reduction=reduction, pos_weight=pos_weight)
    return res


def _bce_logits_static(place, logit_np, label_np, weight_np=None, reduction="mean", pos_weight_np=None,
                       functional=False):
    """upstream's ``test_static``."""
    with _static_mode(), paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
        logit = paddle.static.data(name="logit", shape=logit_np.shape, dtype="float64")
        label = paddle.static.data(name="label", shape=label_np.shape, dtype="float64")
        feed_dict = {"logit": logit_np, "label": label_np}

        pos_weight = None
        weight = None
        if pos_weight_np is not None:
            pos_weight = paddle.static.data(name="pos_weight", shape=pos_weight_np.shape, dtype="float64")
            feed_dict["pos_weight"] = pos_weight_np
        if weight_np is not None:
            weight = paddle.static.data(name="weight", shape=weight_np.shape, dtype="float64")
            feed_dict["weight"] = weight_np
        if functional:
            res = call_bce_functional(logit, label, weight, reduction, pos_weight)
        else:
            res = call_bce_layer(logit, label, weight, reduction, pos_weight)
        exe = paddle.static.Executor(place)
        (static_result,) = exe.run(feed=feed_dict, fetch_list=[res])
    return static_result


def _bce_logits_dygraph(place, logit_np, label_np, weight_np=None, reduction="mean", pos_weight_np=None,
                        functional=False):
    """upstream's ``test_dygraph``."""
    with paddle.base.dygraph.base.guard():
        logit = paddle.to_tensor(logit_np)
        label = paddle.to_tensor(label_np)
        weight = None
        pos_weight = None
        if weight_np is not None:
            weight = paddle.to_tensor(weight_np)
        if pos_weight_np is not None:
            pos_weight = paddle.to_tensor(pos_weight_np)
        if functional:
            dy_res = call_bce_functional(logit, label, weight, reduction, pos_weight)
        else:
            dy_res = call_bce_layer(logit, label, weight, reduction, pos_weight)
        dy_result = dy_res.numpy()
        return dy_result


def calc_bce_with_logits_loss(logit_np, label_np, reduction="mean", weight_np=None, pos_weight=None):
    item1 = np.maximum(logit_np, 0)
    item2 = logit_np * label_np
    item3 = np.log(1 + np.exp(-np.abs(logit_np)))

    if pos_weight is not None:
        pos_weight = (pos_weight - 1) * label_np + 1
        expected = item1 - item2 + item3 * pos_weight
    else:
        expected = item1 - item2 + item3

    if weight_np is not None:
        expected = weight_np * expected

    if reduction == "mean":
        expected = np.mean(expected)
    elif reduction == "sum":
        expected = np.sum(expected)
    else:
        expected = expected

    return expected


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("place", PLACES)
def test_BCEWithLogitsLoss(place, reduction):
    logit_np = np.random.uniform(0.1, 0.8, size=(20, 30)).astype(np.float64)
    label_np = np.random.randint(0, 2, size=(20, 30)).astype(np.float64)
    place = _place(place)
    dy_result = _bce_logits_dygraph(place, logit_np, label_np, reduction=reduction)
    dy_functional = _bce_logits_dygraph(place, logit_np, label_np, reduction=reduction, functional=True)
    expected = calc_bce_with_logits_loss(logit_np, label_np, reduction)

    np.testing.assert_allclose(dy_result, expected, rtol=1e-05)
    np.testing.assert_allclose(dy_functional, expected, rtol=1e-05)

    static_result = _bce_logits_static(place, logit_np, label_np, reduction=reduction)
    static_functional = _bce_logits_static(place, logit_np, label_np, reduction=reduction, functional=True)
    np.testing.assert_allclose(static_result, expected, rtol=1e-05)
    np.testing.assert_allclose(static_result, dy_result, rtol=1e-05)
    np.testing.assert_allclose(static_functional, expected, rtol=1e-05)
    np.testing.assert_allclose(static_functional, dy_functional, rtol=1e-05)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("place", PLACES)
def test_BCEWithLogitsLoss_weight(place, reduction):
    logit_np = np.random.uniform(0.1, 0.8, size=(2, 3, 4, 10)).astype(np.float64)
    label_np = np.random.randint(0, 2, size=(2, 3, 4, 10)).astype(np.float64)
    weight_np = np.random.random(size=(2, 3, 4, 10)).astype(np.float64)
    place = _place(place)
    dy_result = _bce_logits_dygraph(place, logit_np, label_np, weight_np=weight_np, reduction=reduction)
    expected = calc_bce_with_logits_loss(logit_np, label_np, reduction, weight_np=weight_np)
    dy_functional = _bce_logits_dygraph(
        place, logit_np, label_np, weight_np=weight_np, reduction=reduction, functional=True
    )
    np.testing.assert_allclose(dy_result, expected, rtol=1e-05)
    np.testing.assert_allclose(dy_functional, expected, rtol=1e-05)

    static_result = _bce_logits_static(place, logit_np, label_np, weight_np=weight_np, reduction=reduction)
    static_functional = _bce_logits_static(
        place, logit_np, label_np, weight_np=weight_np, reduction=reduction, functional=True
    )
    np.testing.assert_allclose(static_result, expected, rtol=1e-05)
    np.testing.assert_allclose(static_result, dy_result, rtol=1e-05)
    np.testing.assert_allclose(static_functional, expected, rtol=1e-05)
    np.testing.assert_allclose(static_functional, dy_functional, rtol=1e-05)


@pytest.mark.parametrize("place", PLACES)
def test_BCEWithLogitsLoss_pos_weight(place):
    logit_np = np.random.uniform(0.1, 0.8, size=(2, 3, 4, 10)).astype(np.float64)
    label_np = np.random.randint(0, 2, size=(2, 3, 4, 10)).astype(np.float64)
    pos_weight_np = np.random.random(size=(3, 4, 10)).astype(np.float64)
    weight_np = np.random.random(size=(2, 3, 4, 10)).astype(np.float64)
    place = _place(place)
    reduction = "mean"

    dy_result = _bce_logits_dygraph(place, logit_np, label_np, weight_np, reduction, pos_weight_np)
    expected = calc_bce_with_logits_loss(logit_np, label_np, reduction, weight_np, pos_weight_np)
    dy_functional = _bce_logits_dygraph(
        place, logit_np, label_np, weight_np, reduction, pos_weight_np, functional=True
    )
    np.testing.assert_allclose(dy_result, expected, rtol=1e-05)
    np.testing.assert_allclose(dy_functional, expected, rtol=1e-05)

    static_result = _bce_logits_static(place, logit_np, label_np, weight_np, reduction, pos_weight_np)
    static_functional = _bce_logits_static(
        place, logit_np, label_np, weight_np, reduction, pos_weight_np, functional=True
    )
    np.testing.assert_allclose(static_result, expected, rtol=1e-05)
    np.testing.assert_allclose(static_result, dy_result, rtol=1e-05)
    np.testing.assert_allclose(static_functional, expected, rtol=1e-05)
    np.testing.assert_allclose(static_functional, dy_functional, rtol=1e-05)


def test_BCEWithLogitsLoss_error():
    with pytest.raises(ValueError):
        bce_compat.paddle.BCEWithLogitsLoss(reduction="unsupport reduction")
    logit = paddle.to_tensor([[0.1, 0.3]], dtype="float32")
    label = paddle.to_tensor([[0.0, 1.0]], dtype="float32")
    with pytest.raises(ValueError):
        P.binary_cross_entropy_with_logits(logit=logit, label=label, reduction="unsupport reduction")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    ("with_weight", "with_pos_weight"),
    [
        pytest.param(False, False, id="TestBinaryCrossEntropyWithLogits"),
        pytest.param(True, False, id="TestBinaryCrossEntropyWithLogits1"),
        pytest.param(False, True, id="TestBinaryCrossEntropyWithLogits2"),
        pytest.param(True, True, id="TestBinaryCrossEntropyWithLogits3"),
    ],
)
def test_binary_cross_entropy_with_logits(with_weight, with_pos_weight, reduction):
    """``TestBinaryCrossEntropyWithLogits`` (and 1, 2, 3: their ``setUp`` adds weight and/or pos_weight)."""
    x = np.random.randn(10, 5).astype("float32")
    y = np.random.randint(0, 2, (10, 5)).astype("float32")
    logits = paddle.to_tensor(x)
    labels = paddle.to_tensor(y)
    weight = None
    pos_weight = None
    if with_weight:
        weight = paddle.to_tensor(np.random.randn(10, 5).astype("float32"))
    if with_pos_weight:
        pos_weight = paddle.to_tensor(np.random.randn(5).astype("float32"))

    dynamic_result = P.binary_cross_entropy_with_logits(
        logits, labels, weight=weight, reduction=reduction, pos_weight=pos_weight
    )
    static_result = paddle.jit.to_static(P.binary_cross_entropy_with_logits)(
        logits, labels, weight=weight, reduction=reduction, pos_weight=pos_weight
    )
    assert np.allclose(dynamic_result.numpy(), static_result.numpy())


# === test_bce_loss.py ================================================================================


def _bce_static_layer(place, input_np, label_np, reduction="mean", weight_np=None):
    """upstream's ``test_static_layer``."""
    prog = paddle.static.Program()
    startup_prog = paddle.static.Program()
    with _static_mode(), paddle.static.program_guard(prog, startup_prog):
        input = paddle.static.data(name="input", shape=input_np.shape, dtype="float64")
        label = paddle.static.data(name="label", shape=label_np.shape, dtype="float64")
        if weight_np is not None:
            weight = paddle.static.data(name="weight", shape=weight_np.shape, dtype="float64")
            bce_loss = bce_compat.paddle.BCELoss(weight=weight, reduction=reduction)
        else:
            bce_loss = bce_compat.paddle.BCELoss(reduction=reduction)
        res = bce_loss(input, label)
        exe = paddle.static.Executor(place)
        (static_result,) = exe.run(
            prog,
            feed=(
                {"input": input_np, "label": label_np}
                if weight_np is None
                else {"input": input_np, "label": label_np, "weight": weight_np}
            ),
            fetch_list=[res],
        )
    return static_result


def _bce_static_functional(place, input_np, label_np, reduction="mean", weight_np=None):
    """upstream's ``test_static_functional``."""
    prog = paddle.static.Program()
    startup_prog = paddle.static.Program()
    with _static_mode(), paddle.static.program_guard(prog, startup_prog):
        input = paddle.static.data(name="input", shape=input_np.shape, dtype="float64")
        label = paddle.static.data(name="label", shape=label_np.shape, dtype="float64")
        if weight_np is not None:
            weight = paddle.static.data(name="weight", shape=weight_np.shape, dtype="float64")
            res = P.binary_cross_entropy(input, label, weight=weight, reduction=reduction)
        else:
            res = P.binary_cross_entropy(input, label, reduction=reduction)
        exe = paddle.static.Executor(place)
        (static_result,) = exe.run(
            prog,
            feed=(
                {"input": input_np, "label": label_np}
                if weight_np is None
                else {"input": input_np, "label": label_np, "weight": weight_np}
            ),
            fetch_list=[res],
        )
    return static_result


def _bce_dygraph_layer(place, input_np, label_np, reduction="mean", weight_np=None):
    """upstream's ``test_dygraph_layer``."""
    if weight_np is not None:
        weight = paddle.to_tensor(weight_np)
        bce_loss = bce_compat.paddle.BCELoss(weight=weight, reduction=reduction)
    else:
        bce_loss = bce_compat.paddle.BCELoss(reduction=reduction)
    dy_res = bce_loss(paddle.to_tensor(input_np), paddle.to_tensor(label_np))
    dy_result = dy_res.numpy()
    return dy_result


def _bce_dygraph_functional(place, input_np, label_np, reduction="mean", weight_np=None):
    """upstream's ``test_dygraph_functional``."""
    input = paddle.to_tensor(input_np)
    label = paddle.to_tensor(label_np)

    if weight_np is not None:
        weight = paddle.to_tensor(weight_np)
        dy_res = P.binary_cross_entropy(input, label, weight=weight, reduction=reduction)
    else:
        dy_res = P.binary_cross_entropy(input, label, reduction=reduction)
    dy_result = dy_res.numpy()
    return dy_result


def calc_bceloss(input_np, label_np, reduction="mean", weight_np=None):
    if weight_np is None:
        expected = -1 * (label_np * np.log(input_np) + (1.0 - label_np) * np.log(1.0 - input_np))
    else:
        expected = -1 * weight_np * (label_np * np.log(input_np) + (1.0 - label_np) * np.log(1.0 - input_np))

    if reduction == "mean":
        expected = np.mean(expected)
    elif reduction == "sum":
        expected = np.sum(expected)
    else:
        expected = expected

    return expected


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("place", PLACES)
def test_BCELoss(place, reduction):
    input_np = np.random.uniform(0.1, 0.8, size=(20, 30)).astype(np.float64)
    label_np = np.random.randint(0, 2, size=(20, 30)).astype(np.float64)
    place = _place(place)
    static_result = _bce_static_layer(place, input_np, label_np, reduction)
    dy_result = _bce_dygraph_layer(place, input_np, label_np, reduction)
    expected = calc_bceloss(input_np, label_np, reduction)
    np.testing.assert_allclose(static_result, expected, rtol=1e-05)
    np.testing.assert_allclose(static_result, dy_result, rtol=1e-05)
    np.testing.assert_allclose(dy_result, expected, rtol=1e-05)
    static_functional = _bce_static_functional(place, input_np, label_np, reduction)
    dy_functional = _bce_dygraph_functional(place, input_np, label_np, reduction)
    np.testing.assert_allclose(static_functional, expected, rtol=1e-05)
    np.testing.assert_allclose(static_functional, dy_functional, rtol=1e-05)
    np.testing.assert_allclose(dy_functional, expected, rtol=1e-05)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("place", PLACES)
def test_BCELoss_weight(place, reduction):
    input_np = np.random.uniform(0.1, 0.8, size=(2, 3, 4, 10)).astype(np.float64)
    label_np = np.random.randint(0, 2, size=(2, 3, 4, 10)).astype(np.float64)
    weight_np = np.random.random(size=(3, 4, 10)).astype(np.float64)
    place = _place(place)
    static_result = _bce_static_layer(place, input_np, label_np, reduction, weight_np=weight_np)
    dy_result = _bce_dygraph_layer(place, input_np, label_np, reduction, weight_np=weight_np)
    expected = calc_bceloss(input_np, label_np, reduction, weight_np=weight_np)
    np.testing.assert_allclose(static_result, expected, rtol=1e-05)
    np.testing.assert_allclose(static_result, dy_result, rtol=1e-05)
    np.testing.assert_allclose(dy_result, expected, rtol=1e-05)
    static_functional = _bce_static_functional(place, input_np, label_np, reduction, weight_np=weight_np)
    dy_functional = _bce_dygraph_functional(place, input_np, label_np, reduction, weight_np=weight_np)
    np.testing.assert_allclose(static_functional, expected, rtol=1e-05)
    np.testing.assert_allclose(static_functional, dy_functional, rtol=1e-05)
    np.testing.assert_allclose(dy_functional, expected, rtol=1e-05)


def test_BCELoss_error():
    with pytest.raises(ValueError):
        bce_compat.paddle.BCELoss(reduction="unsupport reduction")
    input = paddle.to_tensor([[0.1, 0.3]], dtype="float32")
    label = paddle.to_tensor([[0.0, 1.0]], dtype="float32")
    with pytest.raises(ValueError):
        P.binary_cross_entropy(input=input, label=label, reduction="unsupport reduction")


# --- OpTest's checks, as API calls ---------------------------------------------------------------------


def _check_output(api, inputs, expected, mode, atol=0.0, rtol=1e-5):
    """OpTest.check_output for a float64 op: the output's shape exactly, its values to rtol 1e-5, atol 0."""
    if mode == "dygraph":
        actual = api(*(paddle.to_tensor(a) for a in inputs)).numpy()
    else:
        with _static_mode(), paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
            names = [f"in{i}" for i in range(len(inputs))]
            args = [paddle.static.data(name=n, shape=a.shape, dtype=str(a.dtype)) for n, a in zip(names, inputs)]
            out = api(*args)
            (actual,) = paddle.static.Executor(paddle.CPUPlace()).run(feed=dict(zip(names, inputs)), fetch_list=[out])
    assert actual.shape == expected.shape, f"expect shape is {expected.shape}, but actual shape is {actual.shape}"
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol)


def _analytic_gradient(api, inputs, mode):
    """OpTest's ``_get_gradient``: the gradient of mean(output) with respect to the first input."""
    if mode == "dygraph":
        args = [paddle.to_tensor(a) for a in inputs]
        args[0].stop_gradient = False
        (grad,) = paddle.grad(paddle.mean(api(*args)), [args[0]])
        return grad.numpy()
    with _static_mode(), paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
        names = [f"in{i}" for i in range(len(inputs))]
        args = [paddle.static.data(name=n, shape=a.shape, dtype=str(a.dtype)) for n, a in zip(names, inputs)]
        args[0].stop_gradient = False
        (grad,) = paddle.static.gradients(paddle.mean(api(*args)), [args[0]])
        (grad,) = paddle.static.Executor(paddle.CPUPlace()).run(feed=dict(zip(names, inputs)), fetch_list=[grad])
    return grad


def _numeric_gradient(api, inputs, delta):
    """OpTest's ``get_numeric_gradient``: central differences of the output's mean, one element at a time."""
    x = inputs[0].copy()
    flat = x.reshape(-1)
    rest = [paddle.to_tensor(a) for a in inputs[1:]]
    dtype = x.dtype.type

    def get_output():
        return dtype(api(paddle.to_tensor(x), *rest).numpy().astype(dtype).mean())

    gradient_flat = np.zeros(x.size, dtype=dtype)
    for i in range(x.size):
        origin = flat[i]
        flat[i] = origin + delta
        y_pos = get_output()
        flat[i] = origin - delta
        y_neg = get_output()
        flat[i] = origin
        gradient_flat[i] = (y_pos - y_neg) / delta / 2
    return gradient_flat.reshape(x.shape)


def _assert_is_close(a, b, max_relative_error, fp64_thresholds):
    """OpTest's ``_assert_is_close`` (a: numeric, b: analytic), its dynamic threshold included."""
    assert tuple(a.shape) == tuple(b.shape)
    abs_a = np.abs(a)
    if fp64_thresholds:
        abs_a[abs_a < 1e-10] = 1e-3
        abs_a[np.logical_and(abs_a > 1e-10, abs_a <= 1e-8)] *= 1e4
        abs_a[np.logical_and(abs_a > 1e-8, abs_a <= 1e-6)] *= 1e2
    else:
        abs_a[abs_a < 1e-3] = 1
    diff_mat = np.abs(a - b) / abs_a
    max_diff = np.max(diff_mat)
    assert max_diff <= max_relative_error, f"max gradient diff {max_diff:e} over limit {max_relative_error:e}"


def _check_grad(api, inputs, mode, numeric_grad_delta, max_relative_error, fp64_thresholds):
    numeric = _numeric_gradient(api, inputs, numeric_grad_delta)
    analytic = _analytic_gradient(api, inputs, mode)
    _assert_is_close(numeric, analytic, max_relative_error, fp64_thresholds)


MODES = ["dygraph", "static"]


def bce_loss(input, label):
    return -1 * (label * np.log(input) + (1.0 - label) * np.log(1.0 - input))


def bce_wrapper(x, label):
    """upstream's ``paddle._C_ops.bce_loss(x, label)``: the element-wise loss."""
    return P.binary_cross_entropy(x, label, reduction="none")


def _bce_loss_op_case(shape=(10, 10), dtype="float64"):
    """``TestBceLossOp.setUp``."""
    input_np = np.random.uniform(0.1, 0.8, shape).astype(dtype)
    label_np = np.random.randint(0, 2, shape).astype(dtype)
    output_np = bce_loss(input_np, label_np)
    return [input_np, label_np], output_np


@pytest.mark.parametrize("mode", MODES)
def test_bce_loss_op_check_output(mode):
    """``TestBceLossOp.test_check_output``."""
    inputs, output_np = _bce_loss_op_case()
    _check_output(bce_wrapper, inputs, output_np, mode)


@pytest.mark.parametrize("mode", MODES)
def test_bce_loss_op_check_grad(mode):
    """``TestBceLossOp.test_check_grad``: float64, not on the white list, so delta 1e-5 and error 1e-7."""
    inputs, _ = _bce_loss_op_case()
    _check_grad(bce_wrapper, inputs, mode, numeric_grad_delta=1e-5, max_relative_error=1e-7, fp64_thresholds=True)


@pytest.mark.skipif(not paddle.is_compiled_with_cuda(), reason="OpTest runs float16 on a CUDAPlace only")
@pytest.mark.parametrize("mode", MODES)
def test_bce_loss_op_fp16(mode):
    """``TestBceLossOpFP16`` (check_output; float16: atol 1e-3, rtol 1e-3)."""
    inputs, output_np = _bce_loss_op_case(dtype=np.float16)
    _check_output(bce_wrapper, inputs, output_np, mode, atol=1e-3, rtol=1e-3)


# === test_sigmoid_cross_entropy_with_logits_op.py =====================================================


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _logit(p):
    return np.log(p / (1 - p))


def loss_wrapper(logit, label, ignore_index=None):
    """upstream's ``paddle._C_ops.sigmoid_cross_entropy_with_logits``: the element-wise loss."""
    if ignore_index is None:
        return P.binary_cross_entropy_with_logits(logit, label, reduction="none")
    return P.binary_cross_entropy_with_logits(logit, label, reduction="none", ignore_index=ignore_index)


def _sigmoid_xent_case(name):
    """The ``setUp`` of ``TestSigmoidCrossEntropyWithLogitsOp<name>``: inputs, expected output, api."""
    batch = {"1": [64], "2": [64], "3": [64], "5": [10, 10], "6": [10, 10]}[name]
    num_classes = 20
    x = _logit(np.random.uniform(0, 1, (*batch, num_classes)).astype("float64"))
    if name in ("1", "6"):  # binary label
        label = np.random.randint(0, 2, (*batch, num_classes)).astype("float64")
    elif name == "2":  # binary label and ignore_index -1
        label = np.random.randint(-1, 2, (*batch, num_classes)).astype("float64")
    else:  # probabilistic label
        label = np.random.uniform(0, 1, (*batch, num_classes)).astype("float64")
    sigmoid_X = _expit(x)
    term1 = label * np.log(sigmoid_X)
    term2 = (1 - label) * np.log(1 - sigmoid_X)
    out = -term1 - term2
    if name == "2":
        ignore_index = -1
        out[np.where(label == ignore_index)] = 0

        def api(logit, lab):
            return loss_wrapper(logit, lab, ignore_index=ignore_index)
    else:
        api = loss_wrapper
    return [x, label], out, api


SIGMOID_XENT_CASES = [pytest.param(n, id=f"TestSigmoidCrossEntropyWithLogitsOp{n}") for n in ("1", "2", "3", "5", "6")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", SIGMOID_XENT_CASES)
def test_sigmoid_cross_entropy_with_logits_op_check_output(case, mode):
    inputs, out, api = _sigmoid_xent_case(case)
    _check_output(api, inputs, out, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", SIGMOID_XENT_CASES)
def test_sigmoid_cross_entropy_with_logits_op_check_grad(case, mode):
    """The op is on OpTest's fp64 white list: delta 0.005, max relative error 0.005, threshold 1e-3."""
    inputs, _, api = _sigmoid_xent_case(case)
    _check_grad(api, inputs, mode, numeric_grad_delta=0.005, max_relative_error=0.005, fp64_thresholds=False)


def test_sigmoid_cross_entropy_with_logits_op_errors():
    """``TestSigmoidCrossEntropyWithLogitsOpError.test_errors``."""
    with _static_mode(), paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):

        def test_Variable():
            # the input of sigmoid_cross_entropy_with_logits must be Variable.
            x1 = paddle.base.create_lod_tensor(np.array([-1, 3, 5, 5]), [[1, 1, 1, 1]], paddle.base.CPUPlace())
            lab1 = paddle.base.create_lod_tensor(np.array([-1, 3, 5, 5]), [[1, 1, 1, 1]], paddle.base.CPUPlace())
            P.binary_cross_entropy_with_logits(x1, lab1)

        with pytest.raises(TypeError):
            test_Variable()

        def test_dtype():
            # the input dtype of sigmoid_cross_entropy_with_logits must be float16 or float32 or float64
            # float16 only can be set on GPU place
            x2 = paddle.static.data(name="x2", shape=[-1, 3, 4, 5, 6], dtype="int32")
            lab2 = paddle.static.data(name="lab2", shape=[-1, 3, 4, 5, 6], dtype="int32")
            P.binary_cross_entropy_with_logits(x2, lab2)

        with pytest.raises(TypeError):
            test_dtype()


# === test_sigmoid_focal_loss.py =======================================================================


def call_sfl_functional(logit, label, normalizer, alpha=0.25, gamma=2.0, reduction="sum"):
    res = bce_compat.sigmoid_focal_loss(logit, label, alpha=alpha, gamma=gamma, reduction=reduction)
    if normalizer is not None:  # Paddle's `normalizer` divides the loss; the reduction is linear
        res = res / normalizer
    return res


def _sfl_static(place, logit_np, label_np, normalizer_np, alpha=0.25, gamma=2.0, reduction="sum"):
    """upstream's ``test_static``."""
    prog = paddle.static.Program()
    startup_prog = paddle.static.Program()
    with _static_mode(), paddle.static.program_guard(prog, startup_prog):
        logit = paddle.static.data(name="logit", shape=logit_np.shape, dtype="float64")
        label = paddle.static.data(name="label", shape=label_np.shape, dtype="float64")
        feed_dict = {"logit": logit_np, "label": label_np}

        normalizer = None
        if normalizer_np is not None:
            normalizer = paddle.static.data(name="normalizer", shape=normalizer_np.shape, dtype="float64")
            feed_dict["normalizer"] = normalizer_np

        res = call_sfl_functional(logit, label, normalizer, alpha, gamma, reduction)
        exe = paddle.static.Executor(place)
        static_result = exe.run(prog, feed=feed_dict, fetch_list=[res])
    return static_result


def _sfl_dygraph(place, logit_np, label_np, normalizer_np, alpha=0.25, gamma=2.0, reduction="sum"):
    """upstream's ``test_dygraph``."""
    logit = paddle.to_tensor(logit_np)
    label = paddle.to_tensor(label_np)
    normalizer = None
    if normalizer_np is not None:
        normalizer = paddle.to_tensor(normalizer_np)
    dy_res = call_sfl_functional(logit, label, normalizer, alpha, gamma, reduction)
    dy_result = dy_res.numpy()
    return dy_result


def calc_sigmoid_focal_loss(logit_np, label_np, normalizer_np, alpha=0.25, gamma=2.0, reduction="sum"):
    loss = np.maximum(logit_np, 0) - logit_np * label_np + np.log(1 + np.exp(-np.abs(logit_np)))

    pred = 1 / (1 + np.exp(-logit_np))
    p_t = pred * label_np + (1 - pred) * (1 - label_np)

    if alpha is not None:
        alpha_t = alpha * label_np + (1 - alpha) * (1 - label_np)
        loss = alpha_t * loss

    if gamma is not None:
        loss = loss * ((1 - p_t) ** gamma)

    if normalizer_np is not None:
        loss = loss / normalizer_np

    if reduction == "mean":
        loss = np.mean(loss)
    elif reduction == "sum":
        loss = np.sum(loss)

    return loss


@pytest.mark.parametrize("with_normalizer", [True, False], ids=["normalizer", "no_normalizer"])
@pytest.mark.parametrize("gamma", [3, 0.0])
@pytest.mark.parametrize("alpha", [0.25, 0.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("place", PLACES)
def test_SigmoidFocalLoss(place, reduction, alpha, gamma, with_normalizer):
    logit_np = np.random.uniform(0.1, 0.8, size=(2, 3, 4, 10)).astype(np.float64)
    label_np = np.random.randint(0, 2, size=(2, 3, 4, 10)).astype(np.float64)
    normalizer_np = np.asarray([np.sum(label_np > 0)], dtype=label_np.dtype) if with_normalizer else None
    place = _place(place)
    (static_result,) = _sfl_static(place, logit_np, label_np, normalizer_np, alpha, gamma, reduction)
    dy_result = _sfl_dygraph(place, logit_np, label_np, normalizer_np, alpha, gamma, reduction)
    expected = calc_sigmoid_focal_loss(logit_np, label_np, normalizer_np, alpha, gamma, reduction)
    np.testing.assert_allclose(static_result, expected, rtol=1e-05)
    np.testing.assert_allclose(static_result, dy_result, rtol=1e-05)
    np.testing.assert_allclose(dy_result, expected, rtol=1e-05)


def test_SigmoidFocalLoss_error():
    logit = paddle.to_tensor([[0.97], [0.91], [0.03]], dtype="float32")
    label = paddle.to_tensor([[1.0], [1.0], [0.0]], dtype="float32")
    with pytest.raises(ValueError):
        call_sfl_functional(logit=logit, label=label, normalizer=None, reduction="unsupported reduction")


# === beyond upstream: the result's shape and dtype are Paddle's =========================================


def _entry_points(weight, pos_weight, reduction):
    """(bce_compat's callable, Paddle's own) for each entry point; logits in, probabilities via sigmoid."""
    F = paddle.nn.functional
    our_bce_loss, paddle_bce_loss = bce_compat.paddle.BCELoss(weight, reduction), paddle.nn.BCELoss(weight, reduction)
    return {
        "F.binary_cross_entropy_with_logits": (
            lambda x, y: P.binary_cross_entropy_with_logits(x, y, weight, reduction, pos_weight),
            lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight, reduction, pos_weight),
        ),
        "nn.BCEWithLogitsLoss": (
            bce_compat.paddle.BCEWithLogitsLoss(weight, reduction, pos_weight),
            paddle.nn.BCEWithLogitsLoss(weight, reduction, pos_weight),
        ),
        "F.binary_cross_entropy": (
            lambda x, y: P.binary_cross_entropy(F.sigmoid(x), y, weight, reduction),
            lambda x, y: F.binary_cross_entropy(F.sigmoid(x), y, weight, reduction),
        ),
        "nn.BCELoss": (
            lambda x, y: our_bce_loss(F.sigmoid(x), y),
            lambda x, y: paddle_bce_loss(F.sigmoid(x), y),
        ),
    }


ENTRY_POINTS = ["F.binary_cross_entropy_with_logits", "nn.BCEWithLogitsLoss", "F.binary_cross_entropy", "nn.BCELoss"]


@pytest.mark.parametrize("mode", ["dygraph", "to_static", "static"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_result_shape_and_dtype_as_paddle(entry_point, reduction, dtype, mode):
    x_np = np.random.uniform(0.1, 0.8, size=(2, 3, 4)).astype(dtype)
    y_np = np.random.randint(0, 2, size=(2, 3, 4)).astype(dtype)
    w_np = np.random.random(size=(3, 4)).astype(dtype)
    pw_np = np.random.random(size=(4,)).astype(dtype)
    if mode == "static":
        with _static_mode(), paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
            w, pw = paddle.to_tensor(w_np), paddle.to_tensor(pw_np)
            ours, theirs = _entry_points(w, pw if "logits" in entry_point else None, reduction)[entry_point]
            x = paddle.static.data(name="x", shape=x_np.shape, dtype=dtype)
            y = paddle.static.data(name="y", shape=y_np.shape, dtype=dtype)
            got, want = paddle.static.Executor(paddle.CPUPlace()).run(
                feed={"x": x_np, "y": y_np}, fetch_list=[ours(x, y), theirs(x, y)]
            )
            got_dtype, want_dtype = got.dtype, want.dtype
    else:
        w, pw = paddle.to_tensor(w_np), paddle.to_tensor(pw_np)
        ours, theirs = _entry_points(w, pw if "logits" in entry_point else None, reduction)[entry_point]
        if mode == "to_static":
            ours, theirs = paddle.jit.to_static(ours), paddle.jit.to_static(theirs)
        x, y = paddle.to_tensor(x_np), paddle.to_tensor(y_np)
        got_t, want_t = ours(x, y), theirs(x, y)
        got, want = got_t.numpy(), want_t.numpy()
        got_dtype, want_dtype = got_t.dtype, want_t.dtype
    assert got.shape == want.shape
    assert got_dtype == want_dtype
    np.testing.assert_allclose(got, want, rtol=1e-5)
