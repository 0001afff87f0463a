"""torchvision's ``TestFocalLoss``, ported onto ``bce_compat.sigmoid_focal_loss``.

Upstream: pytorch/vision, ``test/test_ops.py``, class ``TestFocalLoss`` (read at commit
00673be3960268a837860cd6a05373d9861221d3). Each test keeps its parameters, inputs (the same
seeded generator) and tolerances; only the calls change: ``ops.sigmoid_focal_loss`` becomes
``bce_compat.sigmoid_focal_loss`` and ``F.binary_cross_entropy_with_logits`` becomes
``bce_compat.binary_cross_entropy_with_logits`` (the torch dialect's functions of the same
names). Harness: CUDA parameters are skips here (no GPU); torchvision skips float16 on the CPU
("not fully supported on cpu"), which bce_compat supports (computed in float32, rounded once),
so it runs. ``test_jit`` scripts torchvision's function with TorchScript; bce_compat's entry
point dispatches in Python and is compiled with ``torch.compile`` instead (docs/contract.md §3,
"Modes"), so that is what the port compiles.
"""

from __future__ import annotations

import pytest

import bce_compat

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'bce_compat[torch]')")

# upstream's input helper asks make_tensor for low == high ("zeros", "ones"), which torch 2.13 warns about
pytestmark = pytest.mark.filterwarnings("ignore:Passing `low==high`:FutureWarning")

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]
DTYPES = [torch.float32, torch.half]

def _generate_diverse_input_target_pair(shape=(5, 2), **kwargs):
    """upstream's helper, unchanged: logits of probabilities in 9 (input, target) range pairs."""

    def logit(p):
        return torch.log(p / (1 - p))

    def generate_tensor_with_range_type(shape, range_type, **kwargs):
        if range_type != "random_binary":
            low, high = {
                "small": (0.0, 0.2),
                "big": (0.8, 1.0),
                "zeros": (0.0, 0.0),
                "ones": (1.0, 1.0),
                "random": (0.0, 1.0),
            }[range_type]
            return torch.testing.make_tensor(shape, low=low, high=high, **kwargs)
        return torch.randint(0, 2, shape, **kwargs)

    inputs, targets = [], []
    for input_range_type, target_range_type in [
        ("small", "zeros"), ("small", "ones"), ("small", "random_binary"),
        ("big", "zeros"), ("big", "ones"), ("big", "random_binary"),
        ("random", "zeros"), ("random", "ones"), ("random", "random_binary"),
    ]:
        inputs.append(logit(generate_tensor_with_range_type(shape, input_range_type, **kwargs)))
        targets.append(generate_tensor_with_range_type(shape, target_range_type, **kwargs))
    return torch.cat(inputs), torch.cat(targets)


@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.58, 1.0])
@pytest.mark.parametrize("gamma", [0, 2])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_correct_ratio(alpha, gamma, device, dtype, seed):
    reduction = "none"
    torch.random.manual_seed(seed)
    inputs, targets = _generate_diverse_input_target_pair(dtype=dtype, device=device)
    focal_loss = bce_compat.sigmoid_focal_loss(inputs, targets, gamma=gamma, alpha=alpha, reduction=reduction)
    ce_loss = bce_compat.binary_cross_entropy_with_logits(inputs, targets, reduction=reduction)

    assert torch.all(focal_loss <= ce_loss), "focal loss must be less or equal to cross entropy loss with same input"

    loss_ratio = (focal_loss / ce_loss).squeeze()
    prob = torch.sigmoid(inputs)
    p_t = prob * targets + (1 - prob) * (1 - targets)
    correct_ratio = (1.0 - p_t) ** gamma
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        correct_ratio = correct_ratio * alpha_t

    tol = 1e-3 if dtype is torch.half else 1e-5
    torch.testing.assert_close(correct_ratio, loss_ratio, atol=tol, rtol=tol)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", [2, 3])
def test_equal_ce_loss(reduction, device, dtype, seed):
    # focal loss should be equal ce_loss if alpha=-1 and gamma=0
    alpha = -1
    gamma = 0
    torch.random.manual_seed(seed)
    inputs, targets = _generate_diverse_input_target_pair(dtype=dtype, device=device)
    inputs_fl = inputs.clone().requires_grad_()
    targets_fl = targets.clone()
    inputs_ce = inputs.clone().requires_grad_()
    targets_ce = targets.clone()
    focal_loss = bce_compat.sigmoid_focal_loss(inputs_fl, targets_fl, gamma=gamma, alpha=alpha, reduction=reduction)
    ce_loss = bce_compat.binary_cross_entropy_with_logits(inputs_ce, targets_ce, reduction=reduction)

    torch.testing.assert_close(focal_loss, ce_loss)

    focal_loss.backward()
    ce_loss.backward()
    torch.testing.assert_close(inputs_fl.grad, inputs_ce.grad)


@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.58, 1.0])
@pytest.mark.parametrize("gamma", [0, 2])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", [4, 5])
def test_jit(alpha, gamma, reduction, device, dtype, seed):
    torch._dynamo.reset()
    script_fn = torch.compile(bce_compat.sigmoid_focal_loss, fullgraph=True, backend="eager")
    torch.random.manual_seed(seed)
    inputs, targets = _generate_diverse_input_target_pair(dtype=dtype, device=device)
    focal_loss = bce_compat.sigmoid_focal_loss(inputs, targets, gamma=gamma, alpha=alpha, reduction=reduction)
    scripted_focal_loss = script_fn(inputs, targets, gamma=gamma, alpha=alpha, reduction=reduction)

    tol = 1e-3 if dtype is torch.half else 1e-5
    torch.testing.assert_close(focal_loss, scripted_focal_loss, rtol=tol, atol=tol)


# Raise ValueError for anonymous reduction mode
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "torchvision's message starts 'Invalid Value for arg'; bce_compat's names the argument, the valid "
    "values and the value given (docs/contract.md §5). The ValueError itself: test_reduction_mode_error_type"))
def test_reduction_mode(device, dtype, reduction="xyz"):
    torch.random.manual_seed(0)
    inputs, targets = _generate_diverse_input_target_pair(device=device, dtype=dtype)
    with pytest.raises(ValueError, match="Invalid"):
        bce_compat.sigmoid_focal_loss(inputs, targets, 0.25, 2, reduction)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_reduction_mode_error_type(device, dtype, reduction="xyz"):
    """test_reduction_mode with bce_compat's wording: the same ValueError, for the same call."""
    torch.random.manual_seed(0)
    inputs, targets = _generate_diverse_input_target_pair(device=device, dtype=dtype)
    with pytest.raises(ValueError, match="`reduction` must be one of 'none', 'mean', 'sum'; got 'xyz'"):
        bce_compat.sigmoid_focal_loss(inputs, targets, 0.25, 2, reduction)
