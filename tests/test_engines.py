"""Every engine (fast path) computes the canonical problem or declines it by name (issue 13.1).

An engine must decline every kind and option it does not implement, so no option is silently
ignored; the portable path then computes it, or raises a clear error for an option nobody knows.
Also: the same inputs give the same bits whether or not a gradient is wanted (docs/contract.md §3, issue 12.2).
"""

from __future__ import annotations

import numpy as np
import pytest

from bce_compat import _loss
from bce_compat._plan import plan_for
from bce_compat._validate import ArgNames
from bce_compat.backends.contract import Declined, Problem

OPTIONS = [{"label_smoothing": 0.1}, {"ignore_index": 0.0}, {"mean_axis": -1}, {"no_such_option": 1}]


def _problem(fw, kind="logits", options=None):
    x = fw.asarray([[0.5, -2.0, 3.0], [0.0, 1.0, -1.0]], "float32")
    y = fw.asarray([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]], "float32")
    plan = plan_for("f", ArgNames(), x, y, None, None)
    return Problem(kind, x, y, None, None, "mean", plan.out_dtype, options or {}), plan


def _engines(fw):
    _, plan = _problem(fw)
    assert plan.backend.engines or fw.name not in ("numpy", "torch", "paddle", "tensorflow"), "the fast paths are registered"
    return plan.backend.engines


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: next(iter(o)))
def test_every_engine_declines_options_it_does_not_implement(framework, options):
    problem, _ = _problem(framework, options=options)
    for engine in _engines(framework):
        if set(options) <= set(getattr(engine, "options", ())):
            continue
        answer = engine(problem)
        assert isinstance(answer, Declined), engine.name
        assert next(iter(options)) in answer.reason


@pytest.mark.parametrize("kind", ["probs", "focal"])
def test_logits_engines_decline_other_kinds(framework, kind):
    problem, _ = _problem(framework, kind=kind)
    for engine in _engines(framework):
        answer = engine(problem)
        assert isinstance(answer, Declined) and kind in answer.reason, engine.name


def test_declined_option_is_computed_by_the_portable_path(framework):
    problem, plan = _problem(framework, options={"label_smoothing": 0.1})
    got = framework.to_numpy(_loss.solve(problem, plan))
    expected = framework.to_numpy(_loss.portable(problem, plan.xp, plan.compute_dtype))
    np.testing.assert_array_equal(got, expected)
    plain, _ = _problem(framework)
    assert float(got) != float(framework.to_numpy(_loss.solve(plain, plan)))  # the option took effect


def test_unknown_option_is_a_clear_error(framework):
    problem, plan = _problem(framework, options={"no_such_option": 1})
    with pytest.raises(ValueError, match="no_such_option"):
        _loss.solve(problem, plan)
