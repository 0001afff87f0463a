"""PyTorch's own BCE tests, ported onto ``bce_compat.torch`` and the torch dialect.

Upstream: pytorch/pytorch, ``test/test_nn.py`` (read at commit 74f2fa66feec00335f72813782f4802e80bff4cb),
every test whose name contains ``bce``, all in class ``TestNN``: test_bce_loss_always_nonnegative,
test_bce_with_logits_raises_if_target_and_input_are_different_size,
test_bce_with_logits_gives_same_result_as_sigmoid_and_bce_loss, test_bce_loss_input_range,
test_bce_loss_size_mismatch, test_bce_with_logits_gives_same_result_as_sigmoid_and_bce_loss_large_tensors_with_grad,
test_bce_with_logits_has_correct_forward_grad, test_bce_with_logits_has_correct_grad_at_zero,
test_bce_with_logits_broadcasts_weights, test_bce_with_logits_ones_in_pos_weights_are_the_same_as_none,
test_bce_with_logits_broadcasts_pos_weights, test_bce_with_logits_with_pos_weight_has_correct_grad_at_zero,
test_bce_with_logits_stability and test_bce_loss_broadcasts_weights. Also the BCE parts of two
``TestNNDeviceType`` tests that loop over several losses: test_nn_scalars_reductions (its ``nn.BCELoss``
case) and test_invalid_reduction_strings (its ``binary_cross_entropy(_with_logits)`` cases).

And the BCE entries of ``torch/testing/_internal/common_nn.py`` (as shipped in torch 2.13.0; the same text
as the stored pytorch/pytorch version 0140b62d8bab203e4699faeba802b5204fa51d26), which test_nn.py turns into
tests: the ``get_new_module_tests()`` entries BCELoss_no_reduce, BCELoss_no_reduce_scalar,
BCELoss_weights_no_reduce, BCELoss_weights_no_reduce_scalar, BCEWithLogitsLoss_legacy_enum,
BCEWithLogitsLoss_no_reduce, BCEWithLogitsLoss_no_reduce_scalar (run as ``NewModuleTest``: reference function,
non-contiguous input, gradcheck, gradgradcheck, float/double casts; and the ``_cuda`` variant), and the
``criterion_tests`` entries {BCELoss,BCEWithLogitsLoss}_no_batch_dim_{none,mean,sum} (run as ``CriterionTest``:
``single_batch_reference_criterion_fn``, gradcheck, gradgradcheck; and the ``_cuda_{float,double,half}``
variants).

Each test keeps its inputs, reference and tolerance; only the calls change: ``nn.BCELoss`` /
``nn.BCEWithLogitsLoss`` become ``bce_compat.torch.BCELoss`` / ``BCEWithLogitsLoss``, and
``F.binary_cross_entropy(_with_logits)`` becomes ``bce_compat.binary_cross_entropy(_with_logits)`` (the torch
dialect, same signatures). ``nn.Sigmoid``/``torch.sigmoid`` stay torch's: they make the probabilities, they are
not what is tested. Harness: pytest functions instead of ``TestNN``/``NNTestCase`` methods; every test starts
from upstream's seed (``common_utils.SEED``, 1234) on a forked RNG; ``self.assertEqual`` is
``torch.testing.assert_close`` with upstream's tolerances (assertEqual's defaults for the dtype are
assert_close's; ``exact_dtype=False`` is ``check_dtype=False``); ``gradcheck``/``gradgradcheck`` are
``torch.autograd``'s behind the two-line wrappers of ``common_utils`` (``check_batched_grad`` and ``fast_mode``
on unless given); ``default_dtype=torch.double`` is a ``torch.set_default_dtype`` block; CUDA device
parameters and ``_cuda`` variants are skips without a CUDA device. The ``_cuda`` variants compare float64 on
the CPU with float32 (or float16) on the GPU; they also run with that second side on the CPU
(``float32-on-cpu``), so the comparison itself runs without a GPU. ``wrap_functional`` is a small
``nn.Module`` around the bce_compat call. The new-module entries draw their targets as
``get_new_module_tests()`` does (seeded, in the list's order), so they are upstream's tensors. Upstream's
no-batch-dim constructors read the loop variable ``reduction`` late (every variant ends up built with 'sum');
the port builds each with the reduction its name says, which covers upstream's case and the two it meant, and
so backpropagates a gradient of the output's shape where upstream's ``_backward_criterion`` passes
``torch.ones(())``.

Where bce_compat differs on purpose (docs/contract.md), the upstream test is a strict xfail and a sibling test
checks what bce_compat does instead: the error types and messages of §5, and a float32 double backward that is
more accurate at its rounded inputs than the float64-against-float32 comparison's tolerance allows for (§4).
"""

from __future__ import annotations

import contextlib
from copy import deepcopy
from itertools import product

import pytest

import bce_compat

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'bce_compat[torch]')")

from torch import nn  # noqa: E402

import bce_compat.torch  # noqa: E402  (imports torch: after the skip above)
from _torch_upstream import SEED, gradcheck, gradgradcheck  # noqa: E402

BCELoss = bce_compat.torch.BCELoss
BCEWithLogitsLoss = bce_compat.torch.BCEWithLogitsLoss


DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

assert_close = torch.testing.assert_close


@pytest.fixture(autouse=True)
def _upstream_seed():
    """upstream's ``TestCase.setUp``: ``set_rng_seed(SEED)``; forked, so no other test sees the state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        yield


@contextlib.contextmanager
def default_dtype(dtype):
    """``common_utils.set_default_dtype``."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


# --- TestNN -------------------------------------------------------------------------------------------


def test_bce_loss_always_nonnegative():
    target = torch.ones(5)
    input = torch.ones(5)
    assert_close((BCELoss()(input, target) < 0).sum(), torch.tensor(0))

    target = torch.zeros(5)
    input = torch.zeros(5)
    assert_close((BCELoss()(input, target) < 0).sum(), torch.tensor(0))


def test_bce_with_logits_raises_if_target_and_input_are_different_size():
    target = torch.rand(5)
    input = torch.rand(5, 1)
    with pytest.raises(ValueError):
        BCEWithLogitsLoss()(input, target)

    target = torch.rand(5, 1)
    input = torch.rand(5)
    with pytest.raises(ValueError):
        BCEWithLogitsLoss()(input, target)


def test_bce_with_logits_gives_same_result_as_sigmoid_and_bce_loss():
    sigmoid = nn.Sigmoid()

    target = torch.rand(64, 4)
    output = torch.rand(64, 4) - 0.5

    assert_close(BCEWithLogitsLoss()(output, target), BCELoss()(sigmoid(output), target))

    weight = torch.rand(4)
    assert_close(BCEWithLogitsLoss(weight)(output, target), BCELoss(weight)(sigmoid(output), target))

    target = torch.zeros(4, 1, dtype=torch.float)
    output = torch.empty(4, 1, dtype=torch.float).fill_(-100)

    assert_close(BCEWithLogitsLoss()(output, target), BCELoss()(sigmoid(output), target))

    assert_close(BCEWithLogitsLoss(reduction="none")(output, target), BCELoss(reduction="none")(sigmoid(output), target))

    weight = torch.rand(1, dtype=torch.float)
    assert_close(BCEWithLogitsLoss(weight)(output, target), BCELoss(weight)(sigmoid(output), target))


@pytest.mark.xfail(strict=True, raises=ValueError, reason=(
    "torch raises RuntimeError for probabilities outside [0, 1]; bce_compat raises ValueError naming the argument, "
    "how many values are outside and the first one (docs/contract.md §5). Ours: test_bce_loss_input_range_error_type"))
def test_bce_loss_input_range():
    bceloss = BCELoss()

    target = torch.rand(25, 25)
    output_valid = torch.rand(25, 25)
    output_too_negative = output_valid - 1.0
    output_too_positive = output_valid + 1.0

    bceloss(output_valid, target)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        bceloss(output_too_negative, target)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        bceloss(output_too_positive, target)


def test_bce_loss_input_range_error_type():
    """test_bce_loss_input_range with bce_compat's error: the same calls, a ValueError (docs/contract.md §5)."""
    bceloss = BCELoss()

    target = torch.rand(25, 25)
    output_valid = torch.rand(25, 25)
    output_too_negative = output_valid - 1.0
    output_too_positive = output_valid + 1.0

    assert torch.isfinite(bceloss(output_valid, target))
    first = r"the first at index \(0, 0\): "
    with pytest.raises(ValueError, match=r"`input` must be between 0 and 1; 625 of 625 are outside \[0, 1\], " + first):
        bceloss(output_too_negative, target)
    with pytest.raises(ValueError, match=r"`input` must be between 0 and 1; 625 of 625 are outside \[0, 1\], " + first):
        bceloss(output_too_positive, target)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the ValueError is torch's; its message starts 'Using a target size (', bce_compat's names the argument and "
    "both shapes (docs/contract.md §5). Ours: test_bce_loss_size_mismatch_message"))
def test_bce_loss_size_mismatch():
    bceloss = BCELoss()
    a = torch.rand(25)
    b = torch.rand(25, 1)
    with pytest.raises(ValueError, match=r"Using a target size \("):
        bceloss(a, b)


def test_bce_loss_size_mismatch_message():
    """test_bce_loss_size_mismatch with bce_compat's wording: the same ValueError, both shapes."""
    bceloss = BCELoss()
    a = torch.rand(25)
    b = torch.rand(25, 1)
    with pytest.raises(ValueError, match=r"`input` has shape \[25\], `target` has shape \[25, 1\]"):
        bceloss(a, b)


def test_bce_with_logits_gives_same_result_as_sigmoid_and_bce_loss_large_tensors_with_grad():
    x_size = 1024
    y_size = 256
    target = torch.rand(x_size, y_size)

    for reduction in ["none", "mean", "sum"]:
        output_sig = torch.rand(x_size, y_size) - 0.5
        output_logits = output_sig.detach().clone()

        output_sig.requires_grad = True
        output_logits.requires_grad = True
        weight = torch.rand(y_size)

        loss_sig = BCELoss(weight, reduction=reduction)(torch.sigmoid(output_sig), target)
        loss_logits = BCEWithLogitsLoss(weight, reduction=reduction)(output_logits, target)

        assert_close(loss_logits, loss_sig)

        if reduction == "none":
            grad = torch.rand(x_size, y_size)
            loss_sig.backward(grad)
            loss_logits.backward(grad)
        else:
            loss_sig.backward()
            loss_logits.backward()

        assert_close(output_sig.grad, output_logits.grad)


# forward AD loads torch's own jvp decompositions, which call the deprecated torch.jit.script (torch 2.13)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_bce_with_logits_has_correct_forward_grad():
    output = torch.randn(3, 5, requires_grad=True, dtype=torch.double)
    target = torch.randn(3, 5, dtype=torch.double)
    for reduction in ("sum", "mean", "none"):
        gradcheck(lambda self, target, reduction=reduction: BCEWithLogitsLoss(reduction=reduction)(self, target),
                  (output, target), check_forward_ad=True)


def test_bce_with_logits_has_correct_grad_at_zero():
    output = torch.zeros(3, 1, requires_grad=True)
    target = torch.zeros(3, 1)
    BCEWithLogitsLoss(reduction="sum")(output, target).backward()
    expected_grad = torch.empty(3, 1).fill_(0.5)
    assert_close(output.grad, expected_grad)


def test_bce_with_logits_broadcasts_weights():
    target = torch.rand(16, 4)
    output = torch.rand(16, 4) - 0.5

    weight = torch.rand(4)
    out1 = BCEWithLogitsLoss(weight)(output, target)

    weight = weight.expand(16, 4).contiguous()
    out2 = BCEWithLogitsLoss(weight)(output, target)

    assert_close(out1, out2)

    weight = torch.rand(16, 1)
    out1 = BCEWithLogitsLoss(weight)(output, target)

    weight = weight.expand(16, 4).contiguous()
    out2 = BCEWithLogitsLoss(weight)(output, target)

    assert_close(out1, out2)


def test_bce_with_logits_ones_in_pos_weights_are_the_same_as_none():
    target = torch.rand(64, 4)
    output = torch.rand(64, 4) - 0.5
    pos_weight = torch.ones(64, 4)

    assert_close(BCEWithLogitsLoss()(output, target), BCEWithLogitsLoss(pos_weight=pos_weight)(output, target))


def test_bce_with_logits_broadcasts_pos_weights():
    target = torch.rand(64, 4)
    output = torch.rand(64, 4) - 0.5
    pos_weight = torch.rand(4)
    out1 = BCEWithLogitsLoss(pos_weight=pos_weight)(output, target)

    pos_weight1 = pos_weight.expand(1, 4)
    out2 = BCEWithLogitsLoss(pos_weight=pos_weight1)(output, target)

    pos_weight2 = pos_weight.expand(64, 4)
    out3 = BCEWithLogitsLoss(pos_weight=pos_weight2)(output, target)

    assert_close(out1, out2)
    assert_close(out1, out3)


def test_bce_with_logits_with_pos_weight_has_correct_grad_at_zero():
    output = torch.zeros(3, 1, requires_grad=True)
    target = torch.zeros(3, 1)
    pos_weight = torch.ones(3, 1)
    BCEWithLogitsLoss(pos_weight=pos_weight, reduction="sum")(output, target).backward()
    expected_grad = torch.empty(3, 1).fill_(0.5)
    grad = output.grad
    assert_close(grad, expected_grad)


def test_bce_with_logits_stability():
    output = torch.tensor([0.0, -120.0])
    target = torch.tensor([0.0, 1.0])
    pos_weight = torch.tensor([1.0, 1.0])

    out1 = BCEWithLogitsLoss()(output, target)
    assert torch.isfinite(out1).all().item()

    out2 = BCEWithLogitsLoss(pos_weight=pos_weight)(output, target)
    assert torch.isfinite(out2).all().item()


def test_bce_loss_broadcasts_weights():
    sigmoid = nn.Sigmoid()
    target = torch.rand(16, 4)
    output = torch.rand(16, 4) - 0.5

    weight = torch.rand(4)
    out1 = BCELoss(weight)(sigmoid(output), target)

    weight = weight.expand(16, 4).contiguous()
    out2 = BCELoss(weight)(sigmoid(output), target)

    assert_close(out1, out2)

    weight = torch.rand(16, 1)
    out1 = BCELoss(weight)(sigmoid(output), target)

    weight = weight.expand(16, 4).contiguous()
    out2 = BCELoss(weight)(sigmoid(output), target)

    assert_close(out1, out2)


# --- TestNNDeviceType: the BCE cases of two tests that loop over the losses -----------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_nn_scalars_reductions(device):
    """upstream loops over BCELoss, L1Loss, MSELoss, SmoothL1Loss and SoftMarginLoss; this is its BCELoss."""

    def verify_reduction_scalars(input, reduction, output):
        if reduction != "none" or input.dim() == 0:
            assert output.shape == ()
        else:
            assert output.shape != ()
        output.sum().backward()
        assert input.shape == input.grad.shape

    for input_shape in [(5, 6), ()]:
        for reduction in ["none", "mean", "sum"]:
            for module in [BCELoss]:
                input = torch.randn(input_shape, device=device, requires_grad=True)
                target = torch.empty(input_shape, device=device).random_(2)
                sigmoid = nn.Sigmoid()

                input = torch.randn(input_shape, device=device, requires_grad=True)
                m = module(reduction=reduction)
                output = m(sigmoid(input), target)
                verify_reduction_scalars(input, reduction, output)


def _expect_reduction_error(reduction, fn):
    """upstream's ``v(fn)``: 'invalid' must be a ValueError, 'none' must work."""
    if reduction == "invalid":
        with pytest.raises(ValueError):
            fn()
    else:
        fn()


@pytest.mark.parametrize("device", DEVICES)
def test_invalid_reduction_strings(device):
    """upstream checks every loss of torch.nn.functional; these are its two BCE calls."""
    input = torch.randn(3, 5, requires_grad=True, device=device)

    for reduction in ["none", "invalid"]:
        _expect_reduction_error(reduction, lambda reduction=reduction: bce_compat.binary_cross_entropy(
            torch.sigmoid(input), input.gt(0).to(torch.get_default_dtype()), reduction=reduction))
        _expect_reduction_error(reduction, lambda reduction=reduction: bce_compat.binary_cross_entropy_with_logits(
            input, input, reduction=reduction))


# --- common_nn.py: the BCE entries of get_new_module_tests(), run as NewModuleTest ----------------------


class FunctionalModule(nn.Module):
    """``common_nn.wrap_functional``: a module whose forward is the function."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


# The entries as in common_nn, their F.* calls replaced; ``cpp_var_map`` (for the C++ API parity tests, not ported)
# is kept as it names each entry's tensors, which test_new_module_test_double_backward_float32 reads.
def bceloss_no_reduce_test():
    t = torch.randn(15, 10).gt(0).to(torch.double)
    return dict(
        fullname="BCELoss_no_reduce",
        constructor=lambda: FunctionalModule(
            lambda i: bce_compat.binary_cross_entropy(i, t.type_as(i), reduction="none")),
        input_fn=lambda: torch.rand(15, 10).clamp_(2.8e-2, 1 - 2.8e-2),
        cpp_var_map={"i": "_get_input()", "t": t},
        reference_fn=lambda i, *_: -(t * i.log() + (1 - t) * (1 - i).log()),
        precision=7e-4,
        default_dtype=torch.double)


def bceloss_no_reduce_scalar_test():
    t = torch.randn(()).gt(0).to(torch.double)
    return dict(
        fullname="BCELoss_no_reduce_scalar",
        constructor=lambda: FunctionalModule(
            lambda i: bce_compat.binary_cross_entropy(i, t.type_as(i), reduction="none")),
        input_fn=lambda: torch.rand(()).clamp_(2.8e-2, 1 - 2.8e-2),
        cpp_var_map={"i": "_get_input()", "t": t},
        reference_fn=lambda i, *_: -(t * i.log() + (1 - t) * (1 - i).log()),
        default_dtype=torch.double)


def bceloss_weights_no_reduce_test():
    t = torch.randn(15, 10, dtype=torch.double).gt(0).to(torch.double)
    weights = torch.rand(10, dtype=torch.double)
    return dict(
        fullname="BCELoss_weights_no_reduce",
        constructor=lambda: FunctionalModule(
            lambda i: bce_compat.binary_cross_entropy(i, t.type_as(i), weight=weights.type_as(i), reduction="none")),
        input_fn=lambda: torch.rand(15, 10).clamp_(2.8e-2, 1 - 2.8e-2),
        cpp_var_map={"i": "_get_input()", "t": t, "weights": weights},
        reference_fn=lambda i, p, m: -(t * i.log() + (1 - t) * (1 - i).log()) * weights,
        precision=3e-4,
        default_dtype=torch.double)


def bceloss_weights_no_reduce_scalar_test():
    t = torch.randn(()).gt(0).to(torch.double)
    weights = torch.rand((), dtype=torch.double)
    return dict(
        fullname="BCELoss_weights_no_reduce_scalar",
        constructor=lambda: FunctionalModule(
            lambda i: bce_compat.binary_cross_entropy(i, t.type_as(i), weight=weights.type_as(i), reduction="none")),
        input_fn=lambda: torch.rand(()).clamp_(2.8e-2, 1 - 2.8e-2),
        cpp_var_map={"i": "_get_input()", "t": t, "weights": weights},
        reference_fn=lambda i, *_: -(t * i.log() + (1 - t) * (1 - i).log()) * weights,
        default_dtype=torch.double)


def bce_with_logistic_legacy_enum_test():
    t = torch.randn(15, 10).gt(0).to(torch.double)
    sigmoid = nn.Sigmoid()
    return dict(
        fullname="BCEWithLogitsLoss_legacy_enum",
        constructor=lambda: FunctionalModule(
            lambda i: bce_compat.binary_cross_entropy_with_logits(i, t.type_as(i), reduce=False)),
        input_fn=lambda: torch.rand(15, 10).clamp_(2.8e-2, 1 - 2.8e-2),
        cpp_var_map={"i": "_get_input()", "t": t},
        reference_fn=lambda i, *_: -(t * sigmoid(i).log() + (1 - t) * (1 - sigmoid(i)).log()),
        check_gradgrad=False,
        default_dtype=torch.double)


def bce_with_logistic_no_reduce_test():
    t = torch.randn(15, 10).gt(0).to(torch.double)
    sigmoid = nn.Sigmoid()
    return dict(
        fullname="BCEWithLogitsLoss_no_reduce",
        constructor=lambda: FunctionalModule(
            lambda i: bce_compat.binary_cross_entropy_with_logits(i, t.type_as(i), reduction="none")),
        input_fn=lambda: torch.rand(15, 10).clamp_(2.8e-2, 1 - 2.8e-2),
        cpp_var_map={"i": "_get_input()", "t": t},
        reference_fn=lambda i, *_: -(t * sigmoid(i).log() + (1 - t) * (1 - sigmoid(i)).log()),
        check_gradgrad=False,
        default_dtype=torch.double)


def bce_with_logistic_no_reduce_scalar_test():
    t = torch.randn(()).gt(0).to(torch.double)
    sigmoid = nn.Sigmoid()
    return dict(
        fullname="BCEWithLogitsLoss_no_reduce_scalar",
        constructor=lambda: FunctionalModule(
            lambda i: bce_compat.binary_cross_entropy_with_logits(i, t.type_as(i), reduction="none")),
        input_fn=lambda: torch.rand(()).clamp_(2.8e-2, 1 - 2.8e-2),
        cpp_var_map={"i": "_get_input()", "t": t},
        reference_fn=lambda i, *_: -(t * sigmoid(i).log() + (1 - t) * (1 - sigmoid(i)).log()),
        check_gradgrad=False,
        default_dtype=torch.double)


def new_module_tests():
    """The BCE entries of ``common_nn.get_new_module_tests()``, with upstream's targets: that function calls
    ``set_rng_seed()`` and builds its list in order, PoissonNLLLoss_no_reduce (``torch.randn(10, 10)``) first and
    the seven BCE entries next, so drawing the same in the same order gives the same tensors."""
    with torch.random.fork_rng(devices=[]), default_dtype(torch.float):
        torch.manual_seed(SEED)
        torch.randn(10, 10)  # poissonnllloss_no_reduce_test()
        tests = [
            bceloss_no_reduce_test(),
            bceloss_weights_no_reduce_test(),
            bce_with_logistic_legacy_enum_test(),
            bce_with_logistic_no_reduce_test(),
            bceloss_no_reduce_scalar_test(),
            bceloss_weights_no_reduce_scalar_test(),
            bce_with_logistic_no_reduce_scalar_test(),
        ]
    return {test["fullname"]: test for test in tests}


NEW_MODULE_TESTS = new_module_tests()
# torch warns about ``reduce=`` as bce_compat does (docs/contract.md §3); the test is about the values
LEGACY = pytest.mark.filterwarnings("ignore:size_average and reduce are deprecated:UserWarning")
MODULE_TESTS = [pytest.param(name, marks=LEGACY if "legacy" in name else ()) for name in NEW_MODULE_TESTS]


def _zero_grad_input(input):
    """``NNTestCase._zero_grad_input``."""
    if input.requires_grad and input.grad is not None:
        input.grad.zero_()
        input.grad.detach_()


def _backward(input, output, grad_output):
    """``TestNN._backward``."""
    output.backward(grad_output, retain_graph=True)
    return input.grad.data if input.grad is not None else None


def noncontiguize(tensor):
    """``ModuleTest.noncontiguize``: the same values, made non-contiguous in the first dimension of size > 1."""
    ndim = tensor.dim()
    dim = ndim
    for d in range(ndim):
        if tensor.size(d) > 1:
            dim = d + 1
            break
    noncontig = torch.stack([torch.empty_like(tensor), tensor], dim).select(dim, 1).detach()
    assert noncontig.numel() == 1 or noncontig.numel() == 0 or not noncontig.is_contiguous()
    noncontig.requires_grad = tensor.requires_grad
    return noncontig


def check_noncontig(module, input):
    """``ModuleTest.test_noncontig`` (the modules have no parameters)."""
    if input.dim() == 0:  # no scalars, can't make non-contig
        return
    _zero_grad_input(input)
    output = module(input)
    grad_output = output.new(output.shape).normal_()
    output = output.clone()
    d_input = deepcopy(_backward(input, output, grad_output))

    nc_input = noncontiguize(input)
    nc_grad_output = noncontiguize(grad_output)
    for contig_i, contig_g in product((True, False), repeat=2):
        i = input if contig_i else nc_input
        go = deepcopy(grad_output if contig_g else nc_grad_output)
        _zero_grad_input(i)
        out = module(i)
        grad = _backward(i, out, go)

        assert_close(out, output)
        assert_close(grad, d_input, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", MODULE_TESTS)
def test_new_module_test(name):
    """``ModuleTest.__call__`` and ``NewModuleTest._do_test`` on the CPU (upstream's ``test_<name>``)."""
    params = NEW_MODULE_TESTS[name]
    with default_dtype(params["default_dtype"]):
        module = params["constructor"]()
        input = params["input_fn"]().requires_grad_()  # InputVariableMixin: floating inputs require grad

        out = module(input)
        expected_out = params["reference_fn"](deepcopy(input), [], deepcopy(module))
        assert_close(out, expected_out, check_dtype=False)

        check_noncontig(module, input)

        num_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            assert gradcheck(lambda *inputs: module(*inputs), (input,), check_batched_grad=True, fast_mode=None,
                             check_forward_ad=False)
            if params.get("check_gradgrad", True):
                assert gradgradcheck(lambda *inputs: module(*inputs), (input,), check_batched_grad=True,
                                     fast_mode=None, check_fwd_over_rev=False)
            repr(module)
            # check that float()/double() casters work correctly
            module.float()
            module(input.float())
            module.double()
            module(input.double())
        finally:
            torch.set_num_threads(num_threads)


# upstream's _cuda tests compare the CPU in float64 against CUDA in float32. Without a GPU the port also runs that
# comparison with the float32 side on the CPU ("cpu" below): the same inputs, the same tolerances.
STAND_IN = pytest.param("cpu", id="float32-on-cpu")
CUDA = pytest.param("cuda", id="cuda", marks=needs_cuda)

DOUBLE_BACKWARD_ROUNDING = pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the double-backward comparison's atol (7e-4; 3e-4) is below the change that rounding the input 0.972 (the clamp "
    "bound) to float32 makes in the double-backward value there (about 2808; -1499, as l' + g*l'' with "
    "l'' = 1/(1-q)**2): the exact value at the float32 inputs is already 6.7e-4; 3.2e-4 away from the float64 result. "
    "bce_compat's float32 result is within 0.7; 0.2 ulp of that exact value (docs/contract.md §4: accurate at the "
    "given, already rounded, inputs); torch's own op passes because its own rounding error points back toward the "
    "float64 value. Ours: test_new_module_test_double_backward_float32"))


def _module_cuda_params():
    for name in NEW_MODULE_TESTS:
        for device in (STAND_IN, CUDA):
            marks = list(device.marks)
            if "legacy" in name:
                marks.append(LEGACY)
            if device.values[0] == "cpu" and name in ("BCELoss_no_reduce", "BCELoss_weights_no_reduce"):
                marks.append(DOUBLE_BACKWARD_ROUNDING)
            yield pytest.param(name, device.values[0], id=f"{name}-{device.id}", marks=marks)


@pytest.mark.parametrize(("name", "device"), list(_module_cuda_params()))
def test_new_module_test_cuda(name, device):
    """``ModuleTest.test_cuda`` (upstream's ``test_<name>_cuda``): float64 on the CPU against float32 on ``device``."""
    params = NEW_MODULE_TESTS[name]
    precision = params.get("precision", 2e-4)
    with default_dtype(params["default_dtype"]):
        cpu_input = params["input_fn"]().requires_grad_()
        gpu_input = cpu_input.detach().to(device, torch.float).requires_grad_()
        cpu_module = params["constructor"]()
        gpu_module = params["constructor"]().float().to(device)

        cpu_output = cpu_module(cpu_input)
        gpu_output = gpu_module(gpu_input)
        assert_close(cpu_output, gpu_output.cpu(), atol=precision, rtol=0, check_dtype=False)

        # Run backwards on CPU and GPU and compare results
        for _ in range(5):
            cpu_grad_output = cpu_output.clone().normal_()
            gpu_grad_output = cpu_grad_output.type_as(gpu_output)
            _zero_grad_input(cpu_input)
            _zero_grad_input(gpu_input)
            cpu_grad_input = _backward(cpu_input, cpu_output, cpu_grad_output)
            gpu_grad_input = _backward(gpu_input, gpu_output, gpu_grad_output)
            assert_close(cpu_grad_input, gpu_grad_input.cpu(), atol=precision, rtol=0, check_dtype=False)

        # Run double-backwards on CPU and GPU and compare results
        if params.get("check_gradgrad", True):
            cpu_output = cpu_module(cpu_input)
            gpu_output = gpu_module(gpu_input)
            cpu_grad_output = torch.randn_like(cpu_output, requires_grad=True)
            gpu_grad_output = cpu_grad_output.type_as(gpu_output).detach().requires_grad_()
            (cpu_d_i,) = torch.autograd.grad(cpu_output, (cpu_input,), cpu_grad_output, create_graph=True)
            (gpu_d_i,) = torch.autograd.grad(gpu_output, (gpu_input,), gpu_grad_output, create_graph=True)
            assert_close(cpu_d_i, gpu_d_i.cpu(), atol=precision, rtol=0, check_dtype=False)
            cpu_gg = torch.autograd.grad(cpu_output.sum() + cpu_d_i.sum(), (cpu_input, cpu_grad_output),
                                         retain_graph=True)
            gpu_gg = torch.autograd.grad(gpu_output.sum() + gpu_d_i.sum(), (gpu_input, gpu_grad_output),
                                         retain_graph=True)
            for cpu_d_p, gpu_d_p in zip(cpu_gg, gpu_gg):
                assert_close(cpu_d_p, gpu_d_p.cpu(), atol=precision, rtol=0, check_dtype=False)

        check_noncontig(gpu_module, gpu_input)


@pytest.mark.parametrize("name", ["BCELoss_no_reduce", "BCELoss_weights_no_reduce"])
def test_new_module_test_double_backward_float32(name):
    """What the two xfails above check instead: the same float32 double backward, against the exact formula at the
    float32 inputs (computed in float64), within 4 ulp of its larger term (w*l' and g*w*l'')."""
    params = NEW_MODULE_TESTS[name]
    module = params["constructor"]().float()
    tensors = params["cpp_var_map"]
    y = tensors["t"]
    w = tensors["weights"].float().double() if "weights" in tensors else torch.ones((), dtype=torch.double)
    with default_dtype(params["default_dtype"]):
        q = params["input_fn"]().float().requires_grad_()
    g = torch.randn(q.shape).requires_grad_()

    out = module(q)
    (d,) = torch.autograd.grad(out, (q,), g, create_graph=True)
    gg_q, gg_g = torch.autograd.grad(out.sum() + d.sum(), (q, g))

    q64, g64 = q.detach().double(), g.detach().double()
    first = w * (-y / q64 + (1 - y) / (1 - q64))  # w*l'
    second = g64 * w * (y / q64**2 + (1 - y) / (1 - q64) ** 2)  # g*w*l''
    ulp = torch.finfo(torch.float32).eps
    assert ((gg_q.double() - (first + second)).abs() <= 4 * ulp * torch.maximum(first.abs(), second.abs())).all()
    assert ((gg_g.double() - first).abs() <= 4 * ulp * first.abs()).all()


# --- common_nn.py: criterion_tests' classification_criterion_no_batch entries, run as CriterionTest ---------

NO_BATCH = {
    "BCELoss": (
        lambda: torch.sigmoid(torch.randn(9, dtype=torch.double)),
        lambda: torch.randn(9, dtype=torch.double).gt(0).to(torch.double),
    ),
    "BCEWithLogitsLoss": (lambda: torch.randn(9, dtype=torch.double), lambda: torch.randn(9, dtype=torch.double)),
}
REDUCTIONS = ["none", "mean", "sum"]


def single_batch_reference_criterion_fn(*args):
    """``common_nn.single_batch_reference_criterion_fn``: the criterion on a batch of one, squeezed."""
    criterion = args[-1]
    single_batch_input_args = [a.unsqueeze(0) for a in args[:-1]]
    output = criterion(*single_batch_input_args)
    if criterion.reduction == "none":
        return output.squeeze(0)
    return output  # reduction is 'sum' or 'mean' which results in a scalar


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(NO_BATCH))
def test_criterion_no_batch_dim(name, reduction):
    """``CriterionTest.__call__`` for ``{name}_no_batch_dim_{reduction}``."""
    input_fn, target_fn = NO_BATCH[name]
    module = getattr(bce_compat.torch, name)(reduction=reduction)
    input = input_fn().requires_grad_()

    # Check that these methods don't raise errors
    module.__repr__()
    str(module)

    target = target_fn()
    out = module(input, target)
    expected_out = single_batch_reference_criterion_fn(deepcopy(input), deepcopy(target), module)
    assert_close(out, expected_out)

    params = tuple(module.parameters())
    inputs = (input,) + params + (target,)

    def apply_fn(input, target, *params):
        return module(input, target)

    gradcheck(apply_fn, inputs, check_batched_grad=True)
    gradgradcheck(apply_fn, inputs, check_batched_grad=True)


@pytest.mark.parametrize("device", [STAND_IN, CUDA])
@pytest.mark.parametrize("dtype", [torch.float, torch.double, torch.half], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(NO_BATCH))
def test_criterion_no_batch_dim_cuda(name, reduction, dtype, device):
    """``CriterionTest.test_cuda`` (upstream's ``test_{name}_no_batch_dim_{reduction}_cuda_{float,double,half}``)."""
    input_fn, target_fn = NO_BATCH[name]
    cpu_input = input_fn().to(dtype).requires_grad_()
    cpu_target = target_fn().to(dtype)
    cpu_module = getattr(bce_compat.torch, name)(reduction=reduction)
    gpu_module = getattr(bce_compat.torch, name)(reduction=reduction).to(device)
    gpu_input = cpu_input.detach().to(device).requires_grad_()
    gpu_target = cpu_target.to(device)
    if dtype in {torch.half, torch.bfloat16}:  # upstream computes the CPU side in the original dtype
        cpu_input = cpu_input.detach().double().requires_grad_()
        cpu_target = cpu_target.double()
    atol = 1e-1 if dtype in {torch.half, torch.bfloat16} else 4e-4

    cpu_output = cpu_module(cpu_input, cpu_target)
    gpu_output = gpu_module(gpu_input, gpu_target)
    assert_close(cpu_output, gpu_output.cpu(), atol=atol, rtol=0, check_dtype=False)

    # upstream's _backward_criterion passes torch.ones(()), which only fits the scalar ('sum') its constructors build
    cpu_module(cpu_input, cpu_target).backward(torch.ones_like(cpu_output))
    gpu_module(gpu_input, gpu_target).backward(torch.ones_like(gpu_output))
    assert_close(cpu_input.grad, gpu_input.grad.cpu(), atol=atol, rtol=0, check_dtype=False)
