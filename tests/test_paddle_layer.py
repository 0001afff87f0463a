"""``bce_compat.paddle``: Layer classes with Paddle's signatures and attributes, and a Paddle
training script (dygraph, ``to_static`` step, static-graph program) that gives the numbers of the
same script with ``paddle.nn.BCEWithLogitsLoss`` (issue 11.2, and its "Done when")."""

from __future__ import annotations

import contextlib
import copy
import inspect

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import bce_compat.paddle  # noqa: E402

PAIRS = [(bce_compat.paddle.BCEWithLogitsLoss, paddle.nn.BCEWithLogitsLoss), (bce_compat.paddle.BCELoss, paddle.nn.BCELoss)]
RTOL = {"float32": 2e-5, "float64": 1e-12}  # after several optimizer steps


@pytest.mark.parametrize(("ours", "native"), PAIRS)
def test_signature_attributes_and_state_dict_as_paddles(ours, native):
    assert list(inspect.signature(ours).parameters) == list(inspect.signature(native).parameters)
    for name, param in inspect.signature(native).parameters.items():
        assert inspect.signature(ours).parameters[name].default == param.default
    weight = paddle.to_tensor([0.5, 2.0])
    a, b = ours(weight=weight, reduction="sum", name="bce"), native(weight=weight, reduction="sum", name="bce")
    assert isinstance(a, paddle.nn.Layer)
    for attr in vars(b):
        if not attr.startswith("_"):
            assert getattr(a, attr) is getattr(b, attr) or getattr(a, attr) == getattr(b, attr), attr
    assert a.state_dict().keys() == b.state_dict().keys()
    clone = copy.deepcopy(a)
    np.testing.assert_array_equal(clone.weight.numpy(), weight.numpy())


@pytest.mark.parametrize("cls", [bce_compat.paddle.BCEWithLogitsLoss, bce_compat.paddle.BCELoss])
def test_bad_reduction_is_a_value_error_naming_it(cls):
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="average")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_on_paddles_example_and_edges(dtype):
    loss = bce_compat.paddle.BCEWithLogitsLoss(reduction="none")
    x = paddle.to_tensor([5.0, 1.0, 3.0, -20.0, float("inf")], dtype=dtype)
    y = paddle.to_tensor([1.0, 0.0, 1.0, 0.0, 1.0], dtype=dtype)
    out = loss(x, y).numpy()
    assert out[3] == pytest.approx(2.0611536e-09, rel=1e-6) and out[4] == 0.0  # native: 0 and NaN
    mean = bce_compat.paddle.BCEWithLogitsLoss()(x[:3], y[:3])
    # Paddle's documented example; its doc prints 0.45618808, 2 float32 ulp below the exact value
    assert float(mean) == pytest.approx(0.4561881291936943, rel=1e-7) and mean.shape == []


def _data(dtype):
    rng = np.random.default_rng(3)
    return rng.normal(size=(16, 4)).astype(dtype), (rng.random((16, 3)) < 0.4).astype(dtype)


def _model(dtype):
    paddle.seed(7)
    paddle.set_default_dtype(dtype)
    try:
        return paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.Tanh(), paddle.nn.Linear(8, 3))
    finally:
        paddle.set_default_dtype("float32")


def _train_dygraph(criterion_cls, dtype, compiled, steps=4):
    model = _model(dtype)
    criterion = criterion_cls(pos_weight=paddle.to_tensor([1.0, 2.0, 3.0], dtype=dtype))
    optimizer = paddle.optimizer.Adam(learning_rate=0.05, parameters=model.parameters())

    def step(x, y):
        return criterion(model(x), y)

    if compiled:
        step = paddle.jit.to_static(step, full_graph=False)
    x, y = (paddle.to_tensor(a) for a in _data(dtype))
    losses = []
    for _ in range(steps):
        loss = step(x, y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    return np.asarray(losses), [p.numpy() for p in model.parameters()]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("compiled", [False, True], ids=["dygraph", "to_static"])
def test_training_script_gives_the_native_numbers(dtype, compiled):
    native_losses, native_params = _train_dygraph(paddle.nn.BCEWithLogitsLoss, dtype, compiled=False)
    losses, params = _train_dygraph(bce_compat.paddle.BCEWithLogitsLoss, dtype, compiled=compiled)
    np.testing.assert_allclose(losses, native_losses, rtol=RTOL[dtype])
    assert losses[-1] < losses[0]  # it learns
    for ours, theirs in zip(params, native_params):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL[dtype], atol=RTOL[dtype])


@contextlib.contextmanager
def _static_mode():
    paddle.enable_static()
    try:
        yield
    finally:
        paddle.disable_static()


def _train_static_program(criterion_cls, dtype, steps=4):
    xn, yn = _data(dtype)
    with _static_mode():
        main, startup = paddle.static.Program(), paddle.static.Program()
        main.random_seed = startup.random_seed = 11
        with paddle.static.program_guard(main, startup):
            x = paddle.static.data("x", [None, 4], dtype)
            y = paddle.static.data("y", [None, 3], dtype)
            model = _model(dtype)
            criterion = criterion_cls(pos_weight=paddle.to_tensor([1.0, 2.0, 3.0], dtype=dtype))
            loss = criterion(model(x), y)
            paddle.optimizer.Adam(learning_rate=0.05).minimize(loss)
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        return np.asarray([exe.run(main, feed={"x": xn, "y": yn}, fetch_list=[loss])[0] for _ in range(steps)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_static_program_training_gives_the_native_numbers(dtype):
    native = _train_static_program(paddle.nn.BCEWithLogitsLoss, dtype)
    ours = _train_static_program(bce_compat.paddle.BCEWithLogitsLoss, dtype)
    np.testing.assert_allclose(ours, native, rtol=RTOL[dtype])
    assert ours[-1] < ours[0]


def test_docstring_examples_run():
    import doctest

    failures, tried = doctest.testmod(bce_compat.paddle, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
