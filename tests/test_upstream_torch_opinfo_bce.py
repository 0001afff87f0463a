"""PyTorch's OpInfo tests of its two BCE functions, ported onto the torch dialect of ``bce_compat``.

Upstream data: pytorch/pytorch, ``torch/testing/_internal/common_methods_invocations.py`` as shipped in the installed
torch 2.13.0 (built from cf30153c4c131c8164ee7798e5022d810682e2cb): the ``op_db`` entries
``OpInfo("nn.functional.binary_cross_entropy")`` and ``OpInfo("nn.functional.binary_cross_entropy_with_logits")``
and their sample functions ``sample_inputs_binary_cross_entropy`` (11 samples) and
``sample_inputs_binary_cross_entropy_with_logits`` (26 samples), which this file imports and calls (through
``OpInfo.sample_inputs``), for every dtype the entries list on the CPU: float64, float32, float16 and bfloat16. The
entries have no ``reference_inputs_func`` (so the reference inputs are the samples) and no ``error_inputs_func`` (so
upstream's ``test_errors`` does not run for them); no ``skips``/``decorators`` entry names a test ported here (theirs
are for TestJit, TestConsistency on MPS, TestCudaFuserOpInfo, TestNNCOpInfo, TestCompositeCompliance on CUDA and
TestMeta). ``test_opinfo_entries`` pins all that, so a torch that changes the entries fails there first.

Upstream harness: ``test/test_ops.py`` (``TestCommon``: ``_ref_test_helper`` as ``test_python_ref_torch_fallback``
runs it, in its current form with ``skip_bfloat``; ``test_noncontiguous_samples``; ``test_out``), ``test/test_ops_gradients.py`` (``TestBwdGradients``:
``test_fn_grad``, ``test_fn_gradgrad``; read at 008ec6b1840c94ff6d0f685bc10fbf585167c673) and
``test/test_ops_fwd_gradients.py`` (``TestFwdGradients``: ``test_fn_fwgrad_bwgrad``, ``test_forward_mode_AD``; read
at 04e900e463ef8254494112f42140f947bfba5068), with ``TestGradients._check_helper`` of the installed
``common_utils.py``. bce_compat takes the place of the Python reference in ``_ref_test_helper``: its result must
equal torch's (``assertEqual``'s tolerances), or, where it does not, be no farther than torch's own result from
torch's op computed in float64. The same rule is applied to the gradients w.r.t. input and target
(``test_grad_torch_fallback``; torch 2.13 refuses ``requires_grad`` on ``weight`` and ``pos_weight``).

Beyond upstream, docs/contract.md §4 is checked on every sample against the exact values at the sample's rounded
inputs (mpmath, 60 digits): the loss within 4 ulp (float32, float64) or 1 ulp (float16, bfloat16, computed in float32
and rounded once), plus ceil(log2 n) ulp of the summed magnitudes for a mean or sum of n terms (``test_value_exact``);
every gradient, w.r.t. ``weight`` and ``pos_weight`` too (§3), within 4 ulp of the larger of its two terms, the
grad_output factor and the mean's 1/n included (``test_grad_exact``); and ``gradcheck`` with ``weight`` and
``pos_weight`` differentiated (``test_fn_grad_weights``). torch's own float16/bfloat16 results for the logits loss
are far from those values (bfloat16: 0.0156 for 0.0257 at x = -3.89, y = 0.0014), which is why the fallback rule
above is upstream's, not a tolerance of ours.

Harness: one pytest test per sample (its id: op, dtype, sample index, shape, keyword arguments) instead of a loop;
``op(...)`` is torch's function, ``OURS[name]`` the bce_compat one; ``self.assertEqual`` is
``torch.testing.assert_close`` with ``equal_nan=True`` (assertEqual's default tolerances for the dtype are
assert_close's); ``gradcheck``/``gradgradcheck`` are the two-line wrappers of ``common_utils`` around
``torch.autograd``'s. The sample iterator reseeds before every sample with ``common_utils.SEED`` (upstream's TestCase
seeds with a hash of the test's name instead; either way, samples of one shape share their input and target), so
the tensors are generated once, at collection, with every RNG it touches (torch, random, NumPy) saved and restored,
and each test works on detached copies. Importing ``common_methods_invocations`` changes process-wide state
(``torch.backends`` flags frozen, its own Hypothesis profile, warning filters, an environment variable, the JIT's call
wrappers), so this file runs in a process of its own: ``test_upstream_torch_opinfo.py`` starts it with
``BCE_COMPAT_OPINFO_PROCESS=1``, and in any other run it skips. It also needs ``expecttest``, which is not among the
test dependencies: where it is missing, a stand-in module (``TestCase`` only) serves the import.

No test is an xfail: on these samples bce_compat agrees with torch by upstream's rule and meets the contract.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import random
import sys
import types
import unittest
import warnings
from functools import cache

import mpmath
import numpy as np
import pytest

import bce_compat

if os.environ.get("BCE_COMPAT_OPINFO_PROCESS") != "1":
    pytest.skip(
        "importing torch's OpInfo database changes process-wide state: test_upstream_torch_opinfo.py runs this file "
        "in a process of its own",
        allow_module_level=True,
    )
torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'bce_compat[torch]')")

from torch._prims_common import compare_tensor_meta  # noqa: E402

from _torch_upstream import SEED, gradcheck, gradgradcheck  # noqa: E402

DIGITS = 60  # mpmath's working precision for the exact values


def _import_upstream():
    """``torch.testing._internal.common_methods_invocations``; with a stand-in ``expecttest`` (``TestCase`` only)
    where that package is missing (it is not among the test dependencies)."""
    if importlib.util.find_spec("expecttest") is None:
        stand_in = types.ModuleType("expecttest")
        stand_in.TestCase = unittest.TestCase  # common_utils.TestCase's base; assertExpected is not used here
        sys.modules["expecttest"] = stand_in
    with warnings.catch_warnings():
        import torch.testing._internal.common_methods_invocations as upstream
    return upstream


upstream = _import_upstream()
common_utils = sys.modules["torch.testing._internal.common_utils"]

NAMES = ("nn.functional.binary_cross_entropy", "nn.functional.binary_cross_entropy_with_logits")
OPINFOS = {op.name: op for op in upstream.op_db if op.name in NAMES}
OURS = {
    "nn.functional.binary_cross_entropy": bce_compat.binary_cross_entropy,
    "nn.functional.binary_cross_entropy_with_logits": bce_compat.binary_cross_entropy_with_logits,
}
FLOATING = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
LOW_PRECISION = (torch.float16, torch.bfloat16)

assert_close = torch.testing.assert_close


def assert_equal(actual, expected, **kwargs):
    """``TestCase.assertEqual`` on two tensors: assert_close's tolerances for the dtype, NaN equal to NaN."""
    assert_close(actual, expected, equal_nan=True, **kwargs)


@contextlib.contextmanager
def _upstream_rng():
    """``set_rng_seed`` (called before every sample) seeds torch, random and NumPy: all three are put back."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _generate():
    samples = {}
    with _upstream_rng():
        for name, op in OPINFOS.items():
            for dtype in FLOATING:
                if op.supports_dtype(dtype, "cpu"):
                    samples[name, dtype] = list(op.sample_inputs("cpu", dtype, requires_grad=True))
    return samples


SAMPLES = _generate()


def _shape_id(shape):
    return "x".join(map(str, shape)) or "scalar"


def _sample_id(name, dtype, index):
    sample = SAMPLES[name, dtype][index]
    parts = [name.rsplit(".", 1)[-1], str(dtype).removeprefix("torch."), f"{index:02d}", _shape_id(sample.input.shape)]
    for key, value in sample.kwargs.items():
        parts.append(f"{key}{_shape_id(value.shape)}" if isinstance(value, torch.Tensor) else str(value))
    return "-".join(parts)


def _cases(dtypes=FLOATING):
    return [
        pytest.param(name, dtype, index, id=_sample_id(name, dtype, index))
        for name in NAMES
        for dtype in dtypes
        if (name, dtype) in SAMPLES
        for index in range(len(SAMPLES[name, dtype]))
    ]


CASES = _cases()
DOUBLE_CASES = _cases((torch.float64,))
FLOAT_CASES = _cases((torch.float32,))


def _sample(name, dtype, index, requires_grad=True, weights_require_grad=False):
    """A copy of the stored sample: fresh leaves, ``requires_grad`` as generated (or none), weights optionally too."""

    def copy(t):
        wanted = requires_grad and (t.requires_grad or weights_require_grad)
        return t.detach().clone().requires_grad_(wanted)

    return SAMPLES[name, dtype][index].transform(copy)


def _tensors(sample):
    """``(name, tensor)`` of every tensor of the sample, input and target first."""
    named = [("input", sample.input), ("target", sample.args[0])]
    named += [(key, value) for key, value in sample.kwargs.items() if isinstance(value, torch.Tensor)]
    return named


@pytest.fixture(autouse=True)
def _upstream_seed():
    """upstream's ``TestCase.setUp``: ``set_rng_seed(SEED)``; forked, so no other test sees the state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        yield


# --- the OpInfo entries themselves ----------------------------------------------------------------------------------

PORTED_CLASSES = {"TestCommon", "TestGradients", "TestBwdGradients", "TestFwdGradients"}


@pytest.mark.parametrize("name", NAMES)
def test_opinfo_entries(name):
    """What this port takes from the entries: they exist, list these dtypes and flags, have no error or reference
    inputs and no skip, xfail or tolerance for the tests ported here. A torch that changes one fails here."""
    op = OPINFOS[name]
    assert op.op is getattr(torch.nn.functional, name.rsplit(".", 1)[-1])
    assert op.supported_dtypes("cpu") == set(FLOATING)
    assert op.supported_backward_dtypes("cpu") == set(FLOATING)
    assert op.error_inputs_func is None and op.reference_inputs_func is None
    assert not op.supports_out and not op.aliases and op.method_variant is None and op.inplace_variant is None
    assert op.supports_autograd and op.supports_gradgrad and op.supports_forward_ad and op.supports_fwgrad_bwgrad
    assert {d.cls_name for d in (*op.decorators, *op.skips)}.isdisjoint(PORTED_CLASSES)
    expected = 11 if name.endswith("binary_cross_entropy") else 26
    assert all(len(SAMPLES[name, dtype]) == expected for dtype in FLOATING)


# --- TestCommon -----------------------------------------------------------------------------------------------------


def _precise(sample, dtype):
    """``_ref_test_helper``'s ``sample.transform(_make_precise)``: the sample's tensors of ``dtype`` in float64."""

    def _make_precise(x):
        if isinstance(x, torch.dtype):
            return torch.double
        if isinstance(x, torch.Tensor) and x.dtype is dtype:
            return x.to(torch.double).requires_grad_(x.requires_grad)
        return x

    return sample.transform(_make_precise)


def _distance(a, b):
    """``_ref_test_helper``'s ``_distance``: the summed absolute difference, NaN equal to NaN."""
    same = torch.logical_or(a == b, torch.logical_and(torch.isnan(a), torch.isnan(b)))
    return torch.where(same, 0, torch.abs(a - b)).sum()


def _torch_fallback(ours, theirs, precise, dtype, what):
    """``_ref_test_helper``'s rule: equal, or (below float64) no farther than torch from torch's float64 result."""
    try:
        assert_equal(ours, theirs)
    except AssertionError:
        if dtype is torch.double:
            raise
        ref_distance = _distance(ours, precise)
        torch_distance = _distance(theirs, precise)
        assert ref_distance <= torch_distance, (
            f"{what}: Reference result was farther ({ref_distance}) from the precise "
            f"computation than the torch result was ({torch_distance})!"
        )


@pytest.mark.parametrize(("name", "dtype", "index"), CASES)
def test_python_ref_torch_fallback(name, dtype, index):
    """``TestCommon._ref_test_helper`` (as ``test_python_ref_torch_fallback`` runs it), bce_compat as the reference:
    the same metadata (shape, dtype, device; a view or not), the same values or closer to the float64 result."""
    op = OPINFOS[name]
    sample = _sample(name, dtype, index, requires_grad=False)
    ref_result = OURS[name](sample.input, *sample.args, **sample.kwargs)
    torch_result = op(sample.input, *sample.args, **sample.kwargs)

    compare_tensor_meta(ref_result, torch_result)
    assert ref_result._is_view() == torch_result._is_view()

    precise_sample = _precise(sample, dtype)
    precise_result = op(precise_sample.input, *precise_sample.args, **precise_sample.kwargs)
    _torch_fallback(ref_result, torch_result, precise_result, dtype, "value")


def _differentiated(sample, fn, grad_output=None):
    """``fn`` on the sample, differentiated w.r.t. input and target: (grad_output, {name: gradient})."""
    out = fn(sample.input, *sample.args, **sample.kwargs)
    if grad_output is None:
        grad_output = torch.randn_like(out)
    grads = torch.autograd.grad(out, (sample.input, sample.args[0]), grad_output)
    return grad_output, dict(zip(("input", "target"), grads))


@pytest.mark.parametrize(("name", "dtype", "index"), CASES)
def test_grad_torch_fallback(name, dtype, index):
    """Beyond upstream: ``_ref_test_helper``'s rule for the gradients w.r.t. input and target (what torch's op
    differentiates), at one random grad_output: the same as torch's, or no farther than torch's from its float64."""
    op = OPINFOS[name]
    grad_output, ours = _differentiated(_sample(name, dtype, index), OURS[name])
    _, theirs = _differentiated(_sample(name, dtype, index), op, grad_output)
    _, precise = _differentiated(_precise(_sample(name, dtype, index), dtype), op, grad_output.double())
    for key in ours:
        compare_tensor_meta(ours[key], theirs[key])
        _torch_fallback(ours[key], theirs[key], precise[key], dtype, f"gradient w.r.t. {key}")


@pytest.mark.filterwarnings("ignore::UserWarning")  # upstream's suppress_warnings
@pytest.mark.parametrize(("name", "dtype", "index"), FLOAT_CASES)
def test_noncontiguous_samples(name, dtype, index):
    """``TestCommon.test_noncontiguous_samples`` (float32): the same values and gradients from non-contiguous copies."""
    op = OPINFOS[name]
    ours = OURS[name]
    test_grad = dtype in op.supported_backward_dtypes("cpu")
    sample_input = _sample(name, dtype, index, requires_grad=test_grad)
    t_inp, t_args, t_kwargs = sample_input.input, sample_input.args, sample_input.kwargs
    noncontig_sample = sample_input.noncontiguous()
    n_inp, n_args, n_kwargs = noncontig_sample.input, noncontig_sample.args, noncontig_sample.kwargs

    # validates forward
    expected = ours(t_inp, *t_args, **t_kwargs)
    actual = ours(n_inp, *n_args, **n_kwargs)
    assert_equal(actual, expected)

    # Validate backward
    if not test_grad:
        return
    expected = sample_input.output_process_fn_grad(expected)
    actual = sample_input.output_process_fn_grad(actual)
    grad_for_expected = torch.randn_like(expected)
    grad_for_actual = common_utils.noncontiguous_like(grad_for_expected)

    t_input_tensors = [t for t in (t_inp, *t_args) if isinstance(t, torch.Tensor) and t.requires_grad]
    n_input_tensors = [n for n in (n_inp, *n_args) if isinstance(n, torch.Tensor) and n.requires_grad]
    assert len(t_input_tensors) == len(n_input_tensors)

    t_grads = torch.autograd.grad(expected, t_input_tensors, grad_for_expected, allow_unused=True)
    n_grads = torch.autograd.grad(actual, n_input_tensors, grad_for_actual, allow_unused=True)
    for i, (t, n) in enumerate(zip(t_grads, n_grads)):
        assert_equal(t, n, msg=f"Got different gradients for contiguous / non-contiguous inputs wrt input {i}.")


@pytest.mark.parametrize("name", NAMES)
def test_out(name):
    """``TestCommon.test_out`` (``OpDTypes.any_one``: float32, the first sample): the entries say
    ``supports_out=False``, so ``out=`` must raise. bce_compat raises TypeError (an unexpected keyword), as torch does."""
    op = OPINFOS[name]
    assert not op.supports_out
    sample = _sample(name, torch.float32, 0, requires_grad=False)
    expected = OURS[name](sample.input, *sample.args, **sample.kwargs)
    with pytest.raises(TypeError, match="out"):
        assert OURS[name](sample.input, *sample.args, **sample.kwargs, out=expected) is not NotImplemented


# --- TestBwdGradients / TestFwdGradients (float64) ------------------------------------------------------------------


def _gradcheck_fn(name, sample):
    """``TestGradients._check_helper``'s ``fn`` and ``gradcheck_args``: the tensors that require grad as varargs,
    put back into the sample's input, args and kwargs for the call (through the OpInfo's ``gradcheck_wrapper``)."""
    op = OPINFOS[name]
    all_args = (sample.input, *sample.args, *sample.kwargs.values())
    gradcheck_args = tuple(x for x in all_args if isinstance(x, torch.Tensor) and x.requires_grad)
    for t in gradcheck_args:
        assert t.grad is None, "A sampled input has a gradient before running autograd."

    def recompose(inputs, inp, input_idx):
        if isinstance(inp, torch.Tensor) and inp.requires_grad:
            return inputs[input_idx], input_idx + 1
        return inp, input_idx

    def fn(*inputs):
        input_idx = 0
        first, input_idx = recompose(inputs, sample.input, input_idx)
        positional_args = [first]
        for x in sample.args:
            inp, input_idx = recompose(inputs, x, input_idx)
            positional_args.append(inp)
        kwargs = {}
        for k, v in sample.kwargs.items():
            kwargs[k], input_idx = recompose(inputs, v, input_idx)
        output = op.gradcheck_wrapper(OURS[name], *positional_args, **kwargs)
        return sample.output_process_fn_grad(output)

    return fn, gradcheck_args


def _check(name, index, check, *, check_forward_ad=False, check_backward_ad=True, check_batched_grad=None,
           check_batched_forward_grad=False, weights_require_grad=False):
    """``TestGradients._check_helper`` for one float64 sample."""
    op = OPINFOS[name]
    sample = _sample(name, torch.float64, index, weights_require_grad=weights_require_grad)
    fn, gradcheck_args = _gradcheck_fn(name, sample)
    if check == "gradcheck":
        if check_batched_grad is None:
            check_batched_grad = op.check_batched_grad
        assert gradcheck(fn, gradcheck_args, check_batched_grad=check_batched_grad, check_grad_dtypes=True,
                         nondet_tol=op.gradcheck_nondet_tol, fast_mode=op.gradcheck_fast_mode,
                         check_forward_ad=check_forward_ad, check_backward_ad=check_backward_ad,
                         check_undefined_grad=True, check_batched_forward_grad=check_batched_forward_grad)
    else:  # gradgrad check
        assert not check_forward_ad, "Cannot run forward AD check for gradgradcheck"
        for gen_non_contig_grad_outputs in (False, True):
            kwargs = {
                "gen_non_contig_grad_outputs": gen_non_contig_grad_outputs,
                "check_batched_grad": op.check_batched_gradgrad,
                "check_grad_dtypes": True,
                "nondet_tol": op.gradcheck_nondet_tol,
                "fast_mode": op.gradcheck_fast_mode,
            }
            if check == "fwgrad_bwgrad":
                kwargs.update(check_fwd_over_rev=True, check_rev_over_rev=False, check_batched_grad=False,
                              check_undefined_grad=False)
            assert gradgradcheck(fn, gradcheck_args, **kwargs)


@pytest.mark.parametrize(("name", "dtype", "index"), DOUBLE_CASES)
def test_fn_grad(name, dtype, index):
    """``TestBwdGradients.test_fn_grad``: gradcheck w.r.t. the tensors that require grad (input and target)."""
    assert dtype in OPINFOS[name].supported_backward_dtypes("cpu")
    _check(name, index, "gradcheck")


@pytest.mark.parametrize(("name", "dtype", "index"), DOUBLE_CASES)
def test_fn_gradgrad(name, dtype, index):
    """``TestBwdGradients.test_fn_gradgrad`` (the entries say ``supports_gradgrad``)."""
    assert OPINFOS[name].supports_gradgrad
    _check(name, index, "bwgrad_bwgrad")


# forward AD loads torch's own jvp decompositions, which call the deprecated torch.jit.script (torch 2.13)
FORWARD_AD = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@FORWARD_AD
@pytest.mark.parametrize(("name", "dtype", "index"), DOUBLE_CASES)
def test_fn_fwgrad_bwgrad(name, dtype, index):
    """``TestFwdGradients.test_fn_fwgrad_bwgrad`` (the entries say ``supports_fwgrad_bwgrad``)."""
    assert OPINFOS[name].supports_fwgrad_bwgrad
    _check(name, index, "fwgrad_bwgrad")


@FORWARD_AD
@pytest.mark.parametrize(("name", "dtype", "index"), DOUBLE_CASES)
def test_forward_mode_AD(name, dtype, index):
    """``TestFwdGradients.test_forward_mode_AD`` (``_forward_grad_helper``; the entries say ``supports_forward_ad``)."""
    op = OPINFOS[name]
    assert op.supports_forward_ad
    _check(name, index, "gradcheck", check_forward_ad=True, check_backward_ad=False, check_batched_grad=False,
           check_batched_forward_grad=op.check_batched_forward_grad)


@pytest.mark.parametrize(("name", "dtype", "index"), [case for case in DOUBLE_CASES if "weight" in case.id])
def test_fn_grad_weights(name, dtype, index):
    """Beyond upstream: test_fn_grad with ``weight`` and ``pos_weight`` differentiated too (docs/contract.md §3;
    torch's own op refuses them)."""
    _check(name, index, "gradcheck", weights_require_grad=True)


# --- docs/contract.md §4: the exact values at the samples' rounded inputs ---------------------------------------------

EPS = {torch.float64: 2.0**-52, torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}
TINY = {torch.float64: 2.0**-1074, torch.float32: 2.0**-149, torch.float16: 2.0**-24, torch.bfloat16: 2.0**-133}


def _softplus(v):
    return v + mpmath.log1p(mpmath.exp(-v)) if v > 0 else mpmath.log1p(mpmath.exp(v))


def _logits_terms(x, y, w, p):
    """§3: l = w*[p*y*softplus(-x) + (1-y)*softplus(x)] and its partials, each with the magnitude its error is
    measured against (for a difference of two terms, the larger term; for a sum, the sum of magnitudes)."""
    a, b, s = _softplus(-x), _softplus(x), 1 / (1 + mpmath.exp(-x))
    positive, negative = p * y * a, (1 - y) * b
    unweighted = positive + negative
    first = s * (1 + (p - 1) * y)
    return {
        "loss": (w * unweighted, abs(w) * (abs(positive) + abs(negative))),
        "input": (w * (first - p * y), abs(w) * max(abs(first), abs(p * y))),
        "target": (w * (p * a - b), abs(w) * max(abs(p * a), abs(b))),
        "weight": (unweighted, abs(positive) + abs(negative)),
        "pos_weight": (w * y * a, abs(w * y * a)),
    }


def _probs_terms(q, y, w):
    """§3: l = -w*[y*max(log q, -100) + (1-y)*max(log(1-q), -100)] and its partials (q is inside the clamp here)."""
    log_q, log_1mq = max(mpmath.log(q), -100), max(mpmath.log1p(-q), -100)
    positive, negative = -y * log_q, -(1 - y) * log_1mq
    return {
        "loss": (w * (positive + negative), abs(w) * (abs(positive) + abs(negative))),
        "input": (w * ((1 - y) / (1 - q) - y / q), abs(w) * max(abs((1 - y) / (1 - q)), abs(y / q))),
        "target": (w * (log_1mq - log_q), abs(w) * max(abs(log_q), abs(log_1mq))),
        "weight": (positive + negative, abs(positive) + abs(negative)),
    }


@cache
def exact_terms(name, dtype, index):
    """Per element of the input's shape, in row-major order: ``{argument: (exact value, magnitude)}``."""
    sample = SAMPLES[name, dtype][index]
    shape = sample.input.shape

    def flat(t):
        if t is None:
            return [1.0] * sample.input.numel()
        return torch.broadcast_to(t.detach().double(), shape).flatten().tolist()

    with mpmath.workdps(DIGITS):
        columns = [flat(sample.input), flat(sample.args[0]), flat(sample.kwargs.get("weight"))]
        if name.endswith("with_logits"):
            columns.append(flat(sample.kwargs.get("pos_weight")))
            return shape, [_logits_terms(*map(mpmath.mpf, row)) for row in zip(*columns)]
        return shape, [_probs_terms(*map(mpmath.mpf, row)) for row in zip(*columns)]


def _allowed(dtype, exact, magnitude, count):
    """The bound of docs/contract.md §4: 4 ulp of the magnitude (float32, float64), or 1 ulp of the result after a
    float32 computation (float16, bfloat16); plus ceil(log2 count) ulp for a sum of ``count`` terms."""
    extra = math.ceil(math.log2(count)) if count > 1 else 0
    if dtype in LOW_PRECISION:
        return EPS[dtype] * abs(exact) + (4 + extra) * EPS[torch.float32] * magnitude + TINY[dtype]
    return (4 + extra) * EPS[dtype] * magnitude + 4 * TINY[dtype]


def _assert_exact(actual, expected, what, dtype):
    """``actual`` (a tensor) against ``expected``: a list of (exact, magnitude, count), row-major, one per element."""
    got = actual.detach().double().flatten().tolist()
    assert len(got) == len(expected), f"{what}: {len(got)} elements, expected {len(expected)}"
    worst = None
    with mpmath.workdps(DIGITS):
        for i, (value, (exact, magnitude, count)) in enumerate(zip(got, expected)):
            error = float(abs(mpmath.mpf(value) - exact)) if math.isfinite(value) else math.inf
            allowed = _allowed(dtype, float(exact), float(magnitude), count)
            if error > allowed and (worst is None or error / allowed > worst[0]):
                worst = (error / allowed, i, value, float(exact), error, allowed)
    assert worst is None, (
        f"{what}: element {worst[1]} is {worst[2]!r}, exact {worst[3]!r}: error {worst[4]:.3g} > allowed {worst[5]:.3g} "
        f"({worst[0]:.2f} times the bound)"
    )


@pytest.mark.parametrize(("name", "dtype", "index"), CASES)
def test_value_exact(name, dtype, index):
    """docs/contract.md §4: the loss (unreduced, mean or sum) against its exact value at the sample's inputs, in the
    shape and dtype of torch's result."""
    sample = _sample(name, dtype, index, requires_grad=False)
    result = OURS[name](sample.input, *sample.args, **sample.kwargs)
    compare_tensor_meta(result, OPINFOS[name](sample.input, *sample.args, **sample.kwargs))

    _, rows = exact_terms(name, dtype, index)
    reduction = sample.kwargs.get("reduction", "mean")
    with mpmath.workdps(DIGITS):
        if reduction == "none":
            expected = [(*row["loss"], 1) for row in rows]
        else:
            scale = mpmath.mpf(1) / len(rows) if reduction == "mean" else 1
            total = mpmath.fsum(row["loss"][0] for row in rows) * scale
            magnitude = mpmath.fsum(row["loss"][1] for row in rows) * scale
            expected = [(total, magnitude, len(rows))]
    _assert_exact(result, expected, "loss", dtype)


def _reduce_to(shape, argument_shape):
    """The index of ``argument_shape`` (broadcast against ``shape`` from the right) that each element feeds."""
    offset = len(shape) - len(argument_shape)
    for index in np.ndindex(*shape):
        yield tuple(0 if size == 1 else index[offset + d] for d, size in enumerate(argument_shape))


@pytest.mark.parametrize(("name", "dtype", "index"), CASES)
def test_grad_exact(name, dtype, index):
    """docs/contract.md §3 and §4: the gradients w.r.t. input, target, weight and pos_weight (all four are
    differentiated) at a random grad_output, against their exact values: grad_output times the partial (divided by n
    for a mean), summed over the elements a broadcast weight feeds."""
    sample = _sample(name, dtype, index, weights_require_grad=True)
    out = OURS[name](sample.input, *sample.args, **sample.kwargs)
    grad_output = torch.randn_like(out)
    named = _tensors(sample)
    grads = torch.autograd.grad(out, [t for _, t in named], grad_output)

    shape, rows = exact_terms(name, dtype, index)
    reduction = sample.kwargs.get("reduction", "mean")
    with mpmath.workdps(DIGITS):
        g = grad_output.double().flatten().tolist()
        factors = [mpmath.mpf(v) for v in g] if reduction == "none" else [mpmath.mpf(g[0])] * len(rows)
        if reduction == "mean":
            factors = [f / len(rows) for f in factors]
        for (argument, tensor), grad in zip(named, grads):
            assert grad is not None, f"no gradient w.r.t. {argument}"
            compare_tensor_meta(grad, tensor)
            sums = {}
            for row, factor, target_index in zip(rows, factors, _reduce_to(shape, tuple(tensor.shape))):
                exact, magnitude = row[argument]
                total, bound, count = sums.get(target_index, (0, 0, 0))
                sums[target_index] = (total + factor * exact, bound + abs(factor) * magnitude, count + 1)
            expected = [sums[i] for i in np.ndindex(*tensor.shape)]
            _assert_exact(grad, expected, f"gradient w.r.t. {argument}", dtype)
