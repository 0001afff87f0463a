"""Hypothesis: random shapes, broadcasts and values on every backend, against the exact loss."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _calls import probs, with_logits
from _reference import assert_result, exact_logits_loss, exact_probs_loss, flushable_logits_terms, reduce_exact

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LOGIT = st.floats(-1.0000000150474662e30, 1.0000000150474662e30, width=32)  # |x| up to 1e30 (docs/contract.md §4) | st.floats(-40, 40, width=32)
UNIT = st.floats(0, 1, width=32, allow_subnormal=False)  # FTZ kernels (TF, XLA) may flush those
WEIGHT = st.floats(0, 10, width=32, allow_subnormal=False)
# y is the smallest normal float32 and p = 0.5, so p*y is subnormal; softplus(-x) = 100 makes the term normal.
SUBNORMAL_PRODUCT = (
    np.array([-100.0], np.float32), np.array([1.1754944e-38], np.float32), None, np.array([0.5], np.float32)
)


@st.composite
def logit_problem(draw):
    """x, y of one shape, and weight / pos_weight of shapes that broadcast to it without enlarging."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    x = draw(hnp.arrays(np.float32, shape, elements=LOGIT))
    y = draw(hnp.arrays(np.float32, shape, elements=UNIT))
    w = draw(st.none() | hnp.arrays(np.float32, draw(_broadcastable_to(shape)), elements=WEIGHT))
    p = draw(st.none() | hnp.arrays(np.float32, draw(_broadcastable_to(shape)), elements=WEIGHT))
    return x, y, w, p


def _broadcastable_to(shape):
    """A shape that broadcasts to ``shape``: a suffix of it, with some sides set to 1."""
    return st.integers(0, len(shape)).flatmap(
        lambda n: st.tuples(*(st.sampled_from([d, 1]) for d in shape[len(shape) - n:]))
    )


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_random_logit_problems_match_exact(framework, reduction):
    @SETTINGS
    @given(problem=logit_problem(), dialect=st.sampled_from(["torch", "paddle"]))
    @example(problem=SUBNORMAL_PRODUCT, dialect="torch")  # once flaky on TF/XLA: p*y = 2**-127 is flushed to 0
    def check(problem, dialect):
        x_np, y_np, w_np, p_np = problem
        x, y = framework.asarray(x_np, "float32"), framework.asarray(y_np, "float32")
        w = None if w_np is None else framework.asarray(w_np, "float32")
        p = None if p_np is None else framework.asarray(p_np, "float32")
        result = with_logits(dialect, x, y, w, p, reduction)
        expected = reduce_exact(exact_logits_loss(x_np, y_np, w_np, p_np), reduction)
        flushable = reduce_exact(flushable_logits_terms(x_np, y_np, w_np, p_np, "float32"), reduction)
        assert_result(
            result, x, framework, "float32", expected.shape, expected, ulps=4 if reduction == "none" else 6,
            size=x_np.size, flushable=flushable,
        )

    check()


def test_random_probability_problems_match_exact(framework):
    @SETTINGS
    @given(data=st.data())
    def check(data):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
        q_np = data.draw(hnp.arrays(np.float32, shape, elements=UNIT))
        y_np = data.draw(hnp.arrays(np.float32, shape, elements=UNIT))
        q, y = framework.asarray(q_np, "float32"), framework.asarray(y_np, "float32")
        result = probs("torch", q, y, reduction="none")
        assert_result(result, q, framework, "float32", shape, exact_probs_loss(q_np, y_np))

    check()


def test_exact_references_leave_mpmath_global_precision_alone():
    """Regression (issue 12.9): both references set mpmath's global precision at import; now a local context."""
    import importlib
    import warnings

    import mpmath

    import _reference
    from bce_compat.conformance import reference

    before = mpmath.mp.dps
    mpmath.mp.dps = 15  # mpmath's own default, whatever ran before
    try:
        importlib.reload(_reference)
        importlib.reload(reference)
        assert mpmath.mp.dps == 15
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the conformance reference warned "invalid value encountered" on NaN
            got = reference.exact(True, np.array([np.nan, 0.0]), np.array([1.0, 1.0]), None, None, "none")
        assert np.isnan(got.value[0]) and got.value[1] == np.log(2)
        assert _reference.exact_logits_loss(np.array([0.0]), np.array([1.0]))[0] == np.log(2)
        assert mpmath.mp.dps == 15
    finally:
        mpmath.mp.dps = before
