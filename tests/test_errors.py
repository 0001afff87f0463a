"""Every row of docs/contract.md §5: bad input gets a clear error naming the argument, and nothing is lost."""

from __future__ import annotations

import re

import numpy as np
import pytest

import bce_compat
from _calls import probs
from bce_compat._registry import backend_for_type
from bce_compat.dialects import paddle as paddle_dialect


def _pair(fw, shape_x=(2, 3), shape_y=(2, 3), dtype="float32"):
    return fw.asarray(np.zeros(shape_x), dtype), fw.asarray(np.ones(shape_y) * 0.5, dtype)


def test_shape_mismatch_names_both_shapes(framework):
    x, y = _pair(framework, (2, 3), (3, 2))
    with pytest.raises(ValueError, match=r"`target`.*`input` has shape \[2, 3\].*`target` has shape \[3, 2\]"):
        bce_compat.binary_cross_entropy_with_logits(x, y)


def test_paddle_dialect_messages_use_paddle_names(framework):
    x, y = _pair(framework, (2, 3), (3,))
    with pytest.raises(ValueError, match=r"`label`.*`logit` has shape \[2, 3\]"):
        paddle_dialect.binary_cross_entropy_with_logits(x, y)


@pytest.mark.parametrize("arg", ["weight", "pos_weight"])
@pytest.mark.parametrize("bad_shape", [(4,), (5, 2, 3)], ids=["not-broadcastable", "enlarging"])
def test_weight_that_does_not_broadcast_or_enlarges(framework, arg, bad_shape):
    x, y = _pair(framework)
    w = framework.asarray(np.ones(bad_shape), "float32")
    with pytest.raises(ValueError, match=rf"`{arg}`.*\[2, 3\].*{re.escape(str(list(bad_shape)))}"):
        bce_compat.binary_cross_entropy_with_logits(x, y, **{arg: w})


@pytest.mark.parametrize("reduction", ["average", "", None])
def test_invalid_reduction_lists_valid_values(reduction):
    x = np.zeros(2)
    with pytest.raises(ValueError, match=r"`reduction` must be one of 'none', 'mean', 'sum'"):
        bce_compat.binary_cross_entropy_with_logits(x, x, reduction=reduction)
    with pytest.raises(ValueError, match=r"`reduction`"):
        paddle_dialect.BCELoss(reduction=reduction)


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_non_floating_input_is_a_type_error(dtype):
    x = np.zeros(3, dtype=dtype)
    with pytest.raises(TypeError, match=r"`input` must be a real floating array.*" + dtype):
        bce_compat.binary_cross_entropy_with_logits(x, np.zeros(3))
    with pytest.raises(TypeError, match=r"`logit` must be a real floating array"):
        paddle_dialect.binary_cross_entropy_with_logits(x, np.zeros(3))


def test_complex_input_or_target_is_a_type_error():
    with pytest.raises(TypeError, match="`input`.*complex"):
        bce_compat.binary_cross_entropy_with_logits(np.zeros(2, complex), np.zeros(2))
    with pytest.raises(TypeError, match="`target`.*complex"):
        bce_compat.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2, complex))


def test_arrays_of_two_libraries_name_both_types(framework):
    if framework.name == "numpy":
        pytest.skip("needs a second library next to numpy")
    x = framework.asarray(np.zeros(3), "float32")
    if getattr(backend_for_type(type(x)).adapter, "NUMPY_OPERANDS", False):
        pytest.skip(f"{framework.name} takes NumPy operands, as its own operations do (tests/test_numpy_operands.py)")
    with pytest.raises(TypeError, match=r"one library.*`input` is a .*`target` is a numpy.ndarray"):
        bce_compat.binary_cross_entropy_with_logits(x, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match=r"`pos_weight` is a numpy.ndarray"):
        bce_compat.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones(3, np.float32))


@pytest.mark.parametrize("value", [[0.0, 1.0], "logits", object()], ids=["list", "str", "object"])
def test_unknown_object_lists_backends_and_how_to_install(value):
    with pytest.raises(TypeError, match=r"`input` is a .*no installed backend accepts(.|\n)*torch: pip install(.|\n)*paddle"):
        bce_compat.binary_cross_entropy_with_logits(value, np.zeros(2))


@pytest.mark.parametrize("arg, values", [("input", [0.5, 1.5]), ("input", [-0.1, 0.5]), ("target", [0.0, 2.0])])
def test_probabilities_outside_unit_interval(framework, arg, values):
    if framework.name == "dask":
        pytest.skip("dask arrays are lazy: the value check would compute them, so it is skipped")
    good = framework.asarray([0.5, 0.5], "float32")
    bad = framework.asarray(values, "float32")
    q, y = (bad, good) if arg == "input" else (good, bad)
    with pytest.raises(ValueError, match=rf"`{arg}` must be between 0 and 1"):
        probs("torch", q, y)
    label = "label" if arg == "target" else "input"
    with pytest.raises(ValueError, match=rf"`{label}` must be between 0 and 1"):
        probs("paddle", q, y)


def test_logits_target_is_not_range_checked():
    """With logits, torch accepts any target (e.g. label smoothing beyond [0, 1]); so do we."""
    out = bce_compat.binary_cross_entropy_with_logits(np.zeros(2), np.asarray([-1.0, 2.0]), reduction="none")
    np.testing.assert_allclose(out, [np.log(2)] * 2)


_REQUIRED_ARRAYS = {  # dialect callable -> how to call it with input/target given by their dialect's names
    "torch.binary_cross_entropy_with_logits": lambda x, y: bce_compat.binary_cross_entropy_with_logits(x, y),
    "torch.binary_cross_entropy": lambda x, y: bce_compat.binary_cross_entropy(x, y),
    "torch.BCEWithLogitsLoss": lambda x, y: bce_compat.BCEWithLogitsLoss()(x, y),
    "torch.BCELoss": lambda x, y: bce_compat.BCELoss()(x, y),
    "paddle.binary_cross_entropy_with_logits": lambda x, y: paddle_dialect.binary_cross_entropy_with_logits(x, y),
    "paddle.binary_cross_entropy": lambda x, y: paddle_dialect.binary_cross_entropy(x, y),
    "paddle.BCEWithLogitsLoss": lambda x, y: paddle_dialect.BCEWithLogitsLoss()(x, y),
    "paddle.BCELoss": lambda x, y: paddle_dialect.BCELoss()(x, y),
}


@pytest.mark.parametrize("call", list(_REQUIRED_ARRAYS))
@pytest.mark.parametrize("missing", ["input", "target"])
@pytest.mark.parametrize("value", [None, 0.5], ids=["None", "number"])
def test_input_and_target_must_be_arrays(framework, call, missing, value):
    """Regression (issue 12.8): target=None gave AttributeError: 'NoneType' object has no attribute 'shape'."""
    array = framework.asarray([0.5, 0.5], "float32")
    name = {"input": "input", "target": "target"}[missing]
    if call.startswith("paddle."):
        name = {"input": "logit" if "Logits" in call or "logits" in call else "input", "target": "label"}[missing]
    args = (value, array) if missing == "input" else (array, value)
    with pytest.raises(TypeError, match=rf"`{name}` must be an array; got (None|a float \(0.5\))"):
        _REQUIRED_ARRAYS[call](*args)


def test_range_error_counts_and_locates_the_first_offender(framework):
    """Regression (issue 12.8): the message also says how many values are outside, and where the first is."""
    if framework.name == "dask":
        pytest.skip("dask arrays are lazy: the value check would compute them, so it is skipped")
    q = framework.asarray([[0.5, 1.5, 0.2], [-0.25, 0.5, 0.5]], "float32")
    y = framework.asarray(np.full((2, 3), 0.5), "float32")
    with pytest.raises(ValueError, match=r"`input` must be between 0 and 1; 2 of 6 are outside \[0, 1\], "
                       r"the first at index \(0, 1\): 1.5$"):
        probs("torch", q, y)
    with pytest.raises(ValueError, match=r"`label`.*1 of 1 are outside \[0, 1\], the first at index \(\): 3.0$"):
        probs("paddle", framework.asarray(np.array(0.5), "float32"), framework.asarray(np.array(3.0), "float32"))


def test_range_error_on_a_strided_view():
    """The first offender's index is in the view's own coordinates, not the base array's."""
    base = np.full((4, 6), 0.5, np.float32)
    base[2, 4] = 2.0  # in the view base[::2, ::2] at (1, 2)
    base[0, 1] = 9.0  # not in the view
    view = base[::2, ::2]
    with pytest.raises(ValueError, match=r"1 of 6 are outside \[0, 1\], the first at index \(1, 2\): 2.0$"):
        bce_compat.binary_cross_entropy(view, np.zeros_like(view))


def test_no_array_at_all():
    with pytest.raises(TypeError, match="`input`"):
        bce_compat.binary_cross_entropy_with_logits(None, None)


def test_errors_leave_inputs_untouched(framework):
    x, y = _pair(framework, (2, 3), (3, 2))
    before = framework.to_numpy(x).copy(), framework.to_numpy(y).copy()
    with pytest.raises(ValueError):
        bce_compat.binary_cross_entropy_with_logits(x, y)
    np.testing.assert_array_equal(framework.to_numpy(x), before[0])
    np.testing.assert_array_equal(framework.to_numpy(y), before[1])


def test_arrays_on_different_devices_raise_the_backends_own_error():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device next to the CPU")
    with pytest.raises(RuntimeError, match="device"):
        bce_compat.binary_cross_entropy_with_logits(torch.zeros(2, device="cuda"), torch.zeros(2))


# ---- a value of the wrong kind where an array belongs (issue 23, item 6)


def _calls_with_a_slip(x, y):
    """The common positional slips: a reduction given where the third (fourth, ...) argument is expected."""
    return {
        "torch F(x, y, 'mean')": (lambda: bce_compat.binary_cross_entropy_with_logits(x, y, "mean"), "weight"),
        "torch probs F(q, y, 'sum')": (lambda: bce_compat.binary_cross_entropy(x * 0 + 0.5, y, "sum"), "weight"),
        "torch BCEWithLogitsLoss('mean')": (lambda: bce_compat.BCEWithLogitsLoss("mean")(x, y), "weight"),
        "torch pos_weight='sum'": (lambda: bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight="sum"),
                                   "pos_weight"),
        "paddle F(logit, label, 'mean')": (lambda: paddle_dialect.binary_cross_entropy_with_logits(x, y, "mean"),
                                           "weight"),
        "paddle F(logit, label, None, 'mean', 'sum')": (
            lambda: paddle_dialect.binary_cross_entropy_with_logits(x, y, None, "mean", "sum"), "pos_weight"),
    }


@pytest.mark.parametrize("slip", list(_calls_with_a_slip(None, None)))
def test_a_reduction_name_given_as_weight_says_what_weight_must_be(framework, slip):
    """Before: an 8-line list of backends to pip-install, as if the library were missing."""
    x, y = _pair(framework)
    call, arg = _calls_with_a_slip(x, y)[slip]
    with pytest.raises(TypeError) as raised:
        call()
    message = str(raised.value)
    input_type = type(x).__module__.split(".")[0]
    assert re.search(rf"`{arg}` must be an array of the input's library \({input_type}[.\w]*\), a Python number "
                     rf"or None; got a str \('(mean|sum)'\)", message), message
    assert "reduction='" in message  # the likely intent, spelled out
    assert "pip install" not in message and len(message.splitlines()) == 1


@pytest.mark.parametrize("value, shown", [([1.0, 2.0, 3.0], r"a list \(\[1.0, 2.0, 3.0\]\)"),
                                          (object(), r"a object \(<object object at"),
                                          ("y", r"a str \('y'\)")])
def test_a_target_of_no_array_library_names_the_input_library(value, shown):
    x = np.zeros(3)
    with pytest.raises(TypeError, match=r"^binary_cross_entropy_with_logits: `target` must be an array of the "
                       rf"input's library \(numpy.ndarray\); got {shown}"):
        bce_compat.binary_cross_entropy_with_logits(x, value)
    with pytest.raises(TypeError, match=r"`weight` must be an array of the input's library \(numpy.ndarray\), "
                       rf"a Python number or None; got {shown}"):
        bce_compat.binary_cross_entropy_with_logits(x, x, value)


@pytest.mark.parametrize("legacy", ["size_average", "reduce"])
@pytest.mark.parametrize("value", ["sum", np.ones(3)], ids=["str", "array"])
def test_legacy_flag_given_a_reduction_or_an_array_is_a_type_error(legacy, value):
    """``F(x, y, None, 'sum')`` set size_average='sum', read as True: a silent mean instead of the sum asked for;
    ``F(x, y, w, pos_weight)`` set size_average to an array."""
    x = np.zeros(3)
    with pytest.raises(TypeError, match=rf"`{legacy}` must be a bool or None"):
        bce_compat.binary_cross_entropy_with_logits(x, x, **{legacy: value})
    with pytest.raises(TypeError, match=rf"`{legacy}` must be a bool or None"):
        bce_compat.BCELoss(**{legacy: value})
    if isinstance(value, str):
        with pytest.raises(TypeError, match=r"pass reduction='sum' by keyword"):
            bce_compat.binary_cross_entropy_with_logits(x, x, None, **{legacy: value})


def test_legacy_flags_as_bools_and_ints_still_map_as_in_torch():
    x, y = np.zeros(2), np.ones(2)
    with pytest.warns(UserWarning, match="deprecated"):
        assert float(bce_compat.binary_cross_entropy_with_logits(x, y, size_average=False)) == pytest.approx(
            2 * np.log(2))
    with pytest.warns(UserWarning, match="deprecated"):
        assert bce_compat.binary_cross_entropy_with_logits(x, y, reduce=0).shape == (2,)


@pytest.mark.parametrize("value, shown", [(np.zeros(3), "a numpy.ndarray"), (2, "2")])
def test_a_reduction_that_is_not_a_string_is_named(value, shown):
    """Before: numpy's "truth value of an array ... is ambiguous" for ``P.F(logit, label, None, pos_weight)``."""
    x = np.zeros(3)
    with pytest.raises(ValueError, match=rf"`reduction` must be one of 'none', 'mean', 'sum'; got {shown}"):
        paddle_dialect.binary_cross_entropy_with_logits(x, x, None, value)
    with pytest.raises(ValueError, match=rf"`reduction` must be one of 'none', 'mean', 'sum'; got {shown}"):
        bce_compat.binary_cross_entropy_with_logits(x, x, reduction=value)


def test_numpy_scalars_are_numpy_arrays_not_python_numbers():
    """``np.float64`` subclasses ``float`` but is NumPy's 0-d value: accepted as input and target, dtype kept."""
    got = bce_compat.binary_cross_entropy_with_logits(np.float64(0.5), np.float64(1.0))
    assert got.dtype == np.float64 and float(got) == pytest.approx(np.log1p(np.exp(-0.5)), rel=1e-15)
