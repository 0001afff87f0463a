"""``bce_compat.torch``: torch's loss modules, interchangeable with ``torch.nn.BCEWithLogitsLoss``/``BCELoss``.

Each test builds ours and torch's own module the same way and checks that they cannot be told
apart except by the loss they compute: buffers, ``state_dict`` both ways (strict), dtype and device
moves, deepcopy, pickle, ``torch.save``, ``repr``, ``torch.compile``, and a training script whose
checkpoints move between the two.
"""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
import tempfile
import warnings

import pytest

torch = pytest.importorskip("torch")
import bce_compat.torch as bt  # noqa: E402

CLASSES = {"BCEWithLogitsLoss": (bt.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss),
           "BCELoss": (bt.BCELoss, torch.nn.BCELoss)}
DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
TOL = {torch.float32: {"rtol": 1e-6, "atol": 1e-7}, torch.float64: {"rtol": 1e-13, "atol": 1e-15}}


def _kwargs(name: str, weight: bool, pos_weight: bool, dtype=torch.float32) -> dict:
    kwargs = {}
    if weight:
        kwargs["weight"] = torch.linspace(0.5, 2.0, 3, dtype=dtype)
    if pos_weight and name == "BCEWithLogitsLoss":
        kwargs["pos_weight"] = torch.tensor([3.0, 1.0, 0.25], dtype=dtype)
    return kwargs


def _pair(name: str, **kwargs):
    ours, theirs = CLASSES[name]
    return ours(**copy.deepcopy(kwargs)), theirs(**copy.deepcopy(kwargs))


def _inputs(name: str, shape=(5, 3), dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype) * 3
    if name == "BCELoss":
        x = torch.sigmoid(x)
    y = torch.rand(shape, generator=gen, dtype=dtype)
    return x, y


def _assert_same_tensors(a: dict, b: dict):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].device == b[key].device, key
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


WEIGHTS = [(False, False), (True, False), (False, True), (True, True)]
WEIGHT_IDS = ["plain", "weight", "pos_weight", "both"]


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize(("weight", "pos_weight"), WEIGHTS, ids=WEIGHT_IDS)
def test_buffers_and_state_dict_are_torchs(name, weight, pos_weight):
    ours, theirs = _pair(name, **_kwargs(name, weight, pos_weight))
    assert isinstance(ours, torch.nn.Module) and type(ours).__name__ == type(theirs).__name__
    assert list(ours._buffers) == list(theirs._buffers)  # registered even when None, in torch's order
    assert [p for p in ours.parameters()] == [] and ours.reduction == theirs.reduction
    _assert_same_tensors(ours.state_dict(), theirs.state_dict())


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize(("weight", "pos_weight"), WEIGHTS, ids=WEIGHT_IDS)
def test_state_dict_loads_both_ways_strictly(name, weight, pos_weight):
    source_kwargs = _kwargs(name, weight, pos_weight)
    # the receiving modules hold other values of the same shapes, so a load that did nothing shows
    blank = {k: torch.zeros_like(v) for k, v in source_kwargs.items()}
    ours, theirs = _pair(name, **source_kwargs)
    ours_blank, theirs_blank = _pair(name, **blank)
    theirs_blank.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_tensors(theirs_blank.state_dict(), theirs.state_dict())
    ours_blank.load_state_dict(theirs.state_dict(), strict=True)
    _assert_same_tensors(ours_blank.state_dict(), ours.state_dict())


def test_a_missing_or_unexpected_buffer_fails_strict_loading_as_in_torch():
    ours = bt.BCEWithLogitsLoss(pos_weight=torch.ones(3))
    with pytest.raises(RuntimeError, match="Unexpected key.*pos_weight"):
        torch.nn.BCEWithLogitsLoss().load_state_dict(ours.state_dict(), strict=True)
    with pytest.raises(RuntimeError, match="Missing key.*pos_weight"):
        ours.load_state_dict(torch.nn.BCEWithLogitsLoss().state_dict(), strict=True)


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("kwargs", [{}, {"reduction": "sum"}, {"reduction": "none"}, {"size_average": False}])
def test_repr_is_torchs(name, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # legacy size_average
        ours, theirs = _pair(name, **kwargs, **_kwargs(name, True, True))
    assert repr(ours) == repr(theirs)
    holder_ours, holder_theirs = torch.nn.Sequential(ours), torch.nn.Sequential(theirs)
    assert repr(holder_ours) == repr(holder_theirs)


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize(("size_average", "reduce", "expected"),
                         [(False, None, "sum"), (None, False, "none"), (True, True, "mean"), (False, False, "none")])
def test_legacy_arguments_map_and_warn_as_torchs(name, size_average, reduce, expected):
    with pytest.warns(UserWarning):
        ours, theirs = _pair(name, size_average=size_average, reduce=reduce, reduction="mean")
    assert ours.reduction == theirs.reduction == expected


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(("weight", "pos_weight"), WEIGHTS, ids=WEIGHT_IDS)
def test_forward_and_gradients_equal_torchs(name, dtype, reduction, weight, pos_weight):
    ours, theirs = _pair(name, reduction=reduction, **_kwargs(name, weight, pos_weight, dtype))
    x, y = _inputs(name, dtype=dtype)
    xg = x.clone().requires_grad_(True)
    out = ours(xg, y)
    out.sum().backward()
    expected, expected_grad = _native_in_float64(theirs, x, y)
    assert out.dtype == dtype and out.shape == expected.shape
    torch.testing.assert_close(out, expected, **TOL[dtype])
    torch.testing.assert_close(xg.grad, expected_grad, **TOL[dtype])


def _native_in_float64(module, x, y):
    """torch's own loss and gradient computed in float64, rounded to x's dtype: in float32 torch's op
    is a few ulp off itself (its pos_weight form), so it is compared at the precision it can give."""
    x64 = x.detach().double().requires_grad_(True)
    out = copy.deepcopy(module).double()(x64, y.double())
    out.sum().backward()
    return out.detach().to(x.dtype), x64.grad.to(x.dtype)


_VIEWS = {
    "0-d": lambda t: t[1, 2],
    "one-element": lambda t: t[:1, :1],
    "empty": lambda t: t[:0],
    "non-contiguous": lambda t: t.t(),
    "strided": lambda t: t[::2, 1::2],
}


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("kind", list(_VIEWS))
@pytest.mark.parametrize("requires_grad", [False, True], ids=["no-grad", "grad"])
def test_edge_shapes_and_layouts_equal_torchs(name, dtype, reduction, kind, requires_grad):
    ours, theirs = _pair(name, reduction=reduction)
    x, y = _inputs(name, shape=(6, 4), dtype=dtype, seed=3)
    view = _VIEWS[kind]
    leaf, leaf64 = x.clone().requires_grad_(requires_grad), x.double().requires_grad_(requires_grad)
    out = ours(view(leaf), view(y))
    expected = theirs.double()(view(leaf64), view(y).double())
    assert out.shape == expected.shape and out.dtype == dtype
    torch.testing.assert_close(out, expected.detach().to(dtype), equal_nan=True, **TOL[dtype])
    if requires_grad:
        out.sum().backward()
        expected.sum().backward()
        if kind == "empty":  # nothing depends on x: torch leaves no gradient, or zeros
            assert leaf.grad is None or not leaf.grad.any()
        else:
            torch.testing.assert_close(leaf.grad, leaf64.grad.to(dtype), **TOL[dtype])


@pytest.mark.parametrize("name", CLASSES)
def test_dtype_moves_convert_the_buffers_as_torchs(name):
    ours, theirs = _pair(name, **_kwargs(name, True, True))
    for move in (lambda m: m.double(), lambda m: m.to(torch.float16), lambda m: m.float(),
                 lambda m: m.to("cpu", torch.float64)):
        _assert_same_tensors(move(ours).state_dict(), move(theirs).state_dict())
    x, y = _inputs(name, dtype=torch.float64)
    torch.testing.assert_close(ours(x, y), theirs(x, y), **TOL[torch.float64])
    assert ours(x, y).dtype == torch.float64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", CLASSES)
def test_device_moves_keep_the_buffers_on_the_device(name, device):
    ours, theirs = _pair(name, **_kwargs(name, True, True))
    moved = ours.to(device)
    assert moved is ours and all(b.device.type == device for b in ours.buffers())
    if device == "cuda":
        ours.cpu().cuda()
        assert all(b.device.type == "cuda" for b in ours.buffers())
    x, y = (t.to(device) for t in _inputs(name))
    out = ours(x, y)
    assert out.device.type == device
    torch.testing.assert_close(out.cpu(), theirs(*_inputs(name)), **TOL[torch.float32])


@pytest.mark.parametrize("name", CLASSES)
def test_deepcopy_pickle_and_torch_save(name):
    ours, _ = _pair(name, reduction="sum", **_kwargs(name, True, True))
    x, y = _inputs(name)
    expected = ours(x, y)
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    # a whole module is not a weights-only payload: torch's own modules need weights_only=False too
    from_torch_save = torch.load(buffer, weights_only=False)
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours)), from_torch_save):
        assert type(clone) is type(ours) and clone.reduction == "sum"
        _assert_same_tensors(clone.state_dict(), ours.state_dict())
        assert all(c.data_ptr() != o.data_ptr() for c, o in zip(clone.buffers(), ours.buffers()))
        torch.testing.assert_close(clone(x, y), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", CLASSES)
def test_state_dict_saved_weights_only_loads_into_torchs_module(name):
    ours, theirs = _pair(name, **_kwargs(name, True, True))
    blank, _ = _pair(name, **{k: torch.zeros_like(v) for k, v in _kwargs(name, True, True).items()})
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer)  # weights_only=True, torch's default
    theirs.load_state_dict(state, strict=True)
    blank.load_state_dict(state, strict=True)
    _assert_same_tensors(blank.state_dict(), ours.state_dict())


def test_python_numbers_become_buffers_and_bad_arguments_name_themselves():
    loss = bt.BCEWithLogitsLoss(weight=2, pos_weight=0.5)
    assert loss.weight.dtype == torch.get_default_dtype() and loss.weight.shape == () and float(loss.pos_weight) == 0.5
    x, y = _inputs("BCEWithLogitsLoss")
    expected = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(2.0), pos_weight=torch.tensor(0.5))(x, y)
    torch.testing.assert_close(loss(x, y), expected)
    with pytest.raises(TypeError, match="`pos_weight`"):
        bt.BCEWithLogitsLoss(pos_weight=[1.0, 2.0])
    with pytest.raises(TypeError, match="`weight`"):
        bt.BCELoss(weight=True)
    with pytest.raises(ValueError, match="`reduction`.*'avg'"):
        bt.BCELoss(reduction="avg")
    with pytest.raises(ValueError, match="input"):
        bt.BCELoss()(torch.tensor([1.5]), torch.tensor([1.0]))


def test_elementwise_mean_is_torchs_deprecated_mean():
    ours, theirs = _pair("BCEWithLogitsLoss", reduction="elementwise_mean")
    x, y = _inputs("BCEWithLogitsLoss")
    with pytest.warns(UserWarning):
        out = ours(x, y)
    with pytest.warns(UserWarning):
        expected = theirs(x, y)
    torch.testing.assert_close(out, expected)


def test_importing_bce_compat_does_not_import_torch_or_this_module():
    code = "import sys, bce_compat\nprint('torch' in sys.modules, 'bce_compat.torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir(), timeout=120)
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiles_with_fullgraph_values_and_gradients_as_eager(name, dtype):
    """``aot_eager`` traces the whole graph (dynamo + AOTAutograd) without a C++ toolchain."""
    module, theirs = _pair(name, reduction="mean", **_kwargs(name, True, True, dtype))
    x, y = _inputs(name, dtype=dtype)

    def step(x, y):
        return module(x, y)

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from bce_compat while compiling
        xc = x.clone().requires_grad_(True)
        out = compiled(xc, y)
    xe = x.clone().requires_grad_(True)
    expected = theirs(xe, y)
    out.backward()
    expected.backward()
    torch.testing.assert_close(out, expected, **TOL[dtype])
    torch.testing.assert_close(xc.grad, xe.grad, **TOL[dtype])


# --- a training script, once with torch's criterion and once with ours -----------------------------

class _Classifier(torch.nn.Module):
    """A model that owns its criterion, so the criterion's pos_weight is part of its checkpoint."""

    def __init__(self, criterion: torch.nn.Module):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        self.criterion = criterion

    def forward(self, x, y):
        return self.criterion(self.body(x), y)


def _data(dtype, seed=11):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 6, generator=gen, dtype=dtype)
    y = (torch.rand(32, 3, generator=gen) < 0.2).to(dtype)  # rare positives
    return x, y


def _train(criterion_cls, dtype, device, steps, state=None):
    """Build, optionally restore from ``state``, run ``steps`` Adam steps; (losses, checkpoint)."""
    torch.manual_seed(0)
    pos_weight = torch.tensor([4.0, 2.0, 1.0], dtype=dtype)
    model = _Classifier(criterion_cls(pos_weight=pos_weight).to(device)).to(device=device, dtype=dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    if state is not None:
        state = copy.deepcopy(state)  # Adam updates the loaded state tensors in place
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
    x, y = (t.to(device) for t in _data(dtype))
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model(x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    return losses, torch.load(buffer, map_location=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_training_script_gives_torchs_numbers_and_checkpoints_interchange(dtype, device):
    tol = {"rtol": 1e-5, "atol": 0} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 0}
    ours, checkpoint_ours = _train(bt.BCEWithLogitsLoss, dtype, device, steps=5)
    native, checkpoint_native = _train(torch.nn.BCEWithLogitsLoss, dtype, device, steps=5)
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(native), **tol)
    assert ours[-1] < ours[0]  # it trained
    assert "criterion.pos_weight" in checkpoint_ours["model"]
    torch.testing.assert_close(checkpoint_ours["model"]["criterion.pos_weight"],
                               torch.tensor([4.0, 2.0, 1.0], dtype=dtype, device=device), rtol=0, atol=0)

    # resume each run with the other criterion: the checkpoint loads strictly and training continues the same
    resumed_in_torch, _ = _train(torch.nn.BCEWithLogitsLoss, dtype, device, steps=3, state=checkpoint_ours)
    resumed_in_ours, _ = _train(bt.BCEWithLogitsLoss, dtype, device, steps=3, state=checkpoint_native)
    continued, _ = _train(torch.nn.BCEWithLogitsLoss, dtype, device, steps=3, state=checkpoint_native)
    torch.testing.assert_close(torch.tensor(resumed_in_torch), torch.tensor(continued), **tol)
    torch.testing.assert_close(torch.tensor(resumed_in_ours), torch.tensor(continued), **tol)
