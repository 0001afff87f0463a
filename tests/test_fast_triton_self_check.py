"""The Triton kernels' self-check on the real kernels, and on deliberately broken ones.

Run by Triton's interpreter on CPU tensors where there is no GPU (``TRITON_INTERPRET=1``, set
before the module is imported), in a subprocess without TensorFlow where this run has imported
it (test_fast_triton.py); with CUDA, on the GPU. A broken kernel is the real one with one of its ``@triton.jit`` helpers
replaced (the interpreter looks them up at each call): the check must warn once, and from then
on ``bce_with_logits`` returns None, so the engine declines and the portable path computes.
"""

from __future__ import annotations

import os
import sys
import warnings

import pytest

if "tensorflow" in sys.modules:
    pytest.skip(
        "importing triton after tensorflow aborts the process; test_fast_triton.py runs this file in a subprocess",
        allow_module_level=True,
    )
torch = pytest.importorskip("torch")
triton = pytest.importorskip("triton")
xp = pytest.importorskip("array_api_compat.torch")
if "bce_compat.backends.torch_triton" not in sys.modules and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # with CUDA, the compiled kernels run (unless it is set already)
tt = pytest.importorskip("bce_compat.backends.torch_triton")
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
if not (torch.cuda.is_available() or INTERPRETED):
    pytest.skip("torch_triton was imported without TRITON_INTERPRET=1 and there is no GPU", allow_module_level=True)

import triton.language as tl  # noqa: E402

from bce_compat._portable import portable  # noqa: E402
from bce_compat.backends import torch_triton_check as check  # noqa: E402
from bce_compat.contract import Problem  # noqa: E402

DEVICE = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the interpreter's NumPy on inf/NaN lanes


def portable_path(x, y, weight, pos_weight, reduction, out_dtype):
    """The portable path with the kernel's signature: what the engine hands the check."""
    compute = torch.float32 if out_dtype in (torch.float16, torch.bfloat16) else out_dtype
    return portable(Problem("logits", x, y, weight, pos_weight, reduction, out_dtype), xp, compute)


def engine(x, y, weight, pos_weight, reduction, out_dtype):
    """What the torch engine does on CUDA: the checked kernel, or (None: it declines) the portable path."""
    result = tt.bce_with_logits(x, y, weight, pos_weight, reduction, out_dtype, reference=portable_path)
    return portable_path(x, y, weight, pos_weight, reduction, out_dtype) if result is None else result


@pytest.fixture(autouse=True)
def fresh_verdicts():
    check.reset()
    yield
    check.reset()


def operands(dtype):
    gen = torch.Generator().manual_seed(5)
    x = (torch.randn(6, 4, generator=gen) * 4).to(DEVICE, dtype).requires_grad_(True)
    y = torch.rand(6, 4, generator=gen).to(DEVICE, dtype)
    return x, y, None, (torch.rand(4, generator=gen) * 3).to(DEVICE, dtype)


def kernel_warnings(caught):
    return [w for w in caught if issubclass(w.category, check.KernelCheckWarning)]


@pytest.mark.parametrize(
    "dtype",
    [
        torch.float32,
        torch.float16,
        pytest.param(
            torch.bfloat16,
            marks=pytest.mark.xfail(
                INTERPRETED,
                reason="Triton 3.9's interpreter converts bfloat16 subnormals wrongly both ways (9.2e-41 loads as 0; "
                "float32 1.9e-44 stores as 8.8e-39); the GPU's conversions are exact",
                strict=True,
            ),
        ),
    ],
    ids=str,
)
def test_the_real_kernel_passes_the_check_and_computes(dtype):
    x, y, w, p = operands(dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = engine(x, y, w, p, "mean", dtype)
    assert kernel_warnings(caught) == [], str(kernel_warnings(caught)[0].message)
    assert check.verdicts() == {(str(DEVICE), dtype): True}
    assert type(result.grad_fn).__name__ == "_TritonLossBackward"  # the kernel computed it, not the portable path


def test_without_a_reference_the_kernel_runs_unchecked():
    x, y, w, p = operands(torch.float32)
    result = tt.bce_with_logits(x, y, w, p, "sum", torch.float32)
    assert type(result.grad_fn).__name__ == "_TritonLossBackward" and check.verdicts() == {}


@triton.jit
def _log1p_sign_flipped(e):
    return -tl.log(1.0 + e)


@triton.jit
def _exp_8_ulp_high(x):
    return tl.exp(x) * 1.00000095367431640625  # 1 + 2**-20: 8 float32 ulp


@triton.jit
def _times_swallowing_nan(c, term):
    return tl.where(c == 0, 0.0, c * term)  # a zero coefficient hides a NaN term: NaN in, 0 out


@triton.jit
def _scale_kernel_sign_flipped(gx_ptr, g_ptr, n, INT64: tl.constexpr, BLOCK: tl.constexpr):
    g = tl.load(g_ptr).to(tl.float32)
    if g != 1.0:
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v = tl.load(gx_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(gx_ptr + offs, (-v * g).to(gx_ptr.dtype.element_ty), mask=mask)


# the kernel's helper -> (its broken version, what the warning must name)
BROKEN = {
    "_log1p": (_log1p_sign_flipped, "the loss, reduction='none' at x=-100.0"),
    "_exp": (_exp_8_ulp_high, "the loss, reduction='none'"),
    "_times": (_times_swallowing_nan, "x=nan"),
    "_scale_kernel": (_scale_kernel_sign_flipped, "d loss/d x, reduction='sum' over the finite edges"),
}


@pytest.mark.skipif(not INTERPRETED, reason="a compiled kernel is cached: only the interpreter sees a replaced helper")
@pytest.mark.parametrize("helper", sorted(BROKEN))
def test_a_broken_kernel_warns_once_and_the_portable_path_computes(helper, monkeypatch):
    broken, named = BROKEN[helper]
    monkeypatch.setattr(tt, helper, broken)
    x, y, w, p = operands(torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = engine(x, y, w, p, "mean", torch.float32)
        second = engine(x, y, w, p, "none", torch.float32)
        assert tt.bce_with_logits(x, y, w, p, "sum", torch.float32, reference=portable_path) is None
    warned = kernel_warnings(caught)
    assert len(warned) == 1, [str(w.message) for w in warned]
    message = str(warned[0].message)
    for part in ("cpu" if DEVICE.type == "cpu" else "cuda", "torch.float32", named, "kernel ", "portable path"):
        assert part in message, (part, message)
    assert check.verdicts() == {(str(DEVICE), torch.float32): False}
    for result, reduction in ((first, "mean"), (second, "none")):
        expected = portable_path(x, y, w, p, reduction, torch.float32)
        assert type(result.grad_fn).__name__ != "_TritonLossBackward"
        torch.testing.assert_close(result, expected, rtol=0, atol=0)
        (got,) = torch.autograd.grad(result.sum(), x)
        (want,) = torch.autograd.grad(expected.sum(), x)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    monkeypatch.undo()  # the verdict stays until the process ends (or reset())
    assert tt.bce_with_logits(x, y, w, p, "mean", torch.float32, reference=portable_path) is None
