"""Every engine computes the canonical problem or declines it by name.

An engine must decline every kind and option it does not implement, so no option is silently
ignored; the portable path then computes it, or raises a clear error for an option nobody knows.
What an engine does implement (the CPU pass: every kind, ``label_smoothing``, ``ignore_index``,
focal ``alpha``/``gamma``) gives the portable path's numbers within docs/contract.md §4.
"""

from __future__ import annotations

import numpy as np
import pytest

from _reference import assert_close
from bce_compat import _loss
from bce_compat._plan import plan_for
from bce_compat._validate import ArgNames
from bce_compat.backends import cpu_pass
from bce_compat.contract import Declined, Problem

DECLINED_OPTIONS = [{"mean_axis": -1}, {"no_such_option": 1}]  # no engine implements these
PASS_OPTIONS = [{"label_smoothing": 0.1}, {"ignore_index": 0.0}, {"label_smoothing": 0.2, "ignore_index": 1.0}]
PASS_ENGINES = ("numpy-cpu-pass", "torch-cpu-pass+triton-cuda", "paddle-cpu-pass", "tensorflow-cpu-pass")


def _problem(fw, kind="logits", options=None):
    x = fw.asarray([[0.5, -2.0, 3.0], [0.0, 1.0, -1.0]], "float32")
    if kind == "probs":
        x = fw.asarray([[0.5, 0.2, 0.9], [0.01, 1.0, 0.3]], "float32")
    y = fw.asarray([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]], "float32")
    plan = plan_for("f", ArgNames(), x, y, None, None)
    problem = Problem(kind, x, y, None, None, "mean", plan.out_dtype, options or {}, plan.memo, plan.portable)
    return problem, plan


def _engines(fw):
    _, plan = _problem(fw)
    assert plan.backend.engines or fw.name not in ("numpy", "torch", "paddle", "tensorflow"), "the fast paths are registered"
    return plan.backend.engines


@pytest.mark.parametrize("options", DECLINED_OPTIONS, ids=lambda o: next(iter(o)))
def test_every_engine_declines_options_it_does_not_implement(framework, options):
    problem, _ = _problem(framework, options=options)
    for engine in _engines(framework):
        answer = engine(problem)
        assert isinstance(answer, Declined), engine.name
        assert next(iter(options)) in answer.reason


@pytest.mark.parametrize("kind", ["logits", "probs", "focal"])
@pytest.mark.parametrize("options", [{}, *PASS_OPTIONS], ids=lambda o: "+".join(o) or "plain")
def test_the_cpu_pass_engines_give_the_portable_numbers(framework, kind, options):
    if not cpu_pass.AVAILABLE:
        pytest.skip("the compiled pass was not built")
    problem, plan = _problem(framework, kind=kind, options=options)
    expected = framework.to_numpy(plan.portable(problem))
    ran = False
    for engine in _engines(framework):
        if engine.name not in PASS_ENGINES:
            continue
        answer = engine(problem)
        assert not isinstance(answer, Declined), (engine.name, answer)
        assert_close(framework.to_numpy(answer), expected, "float32", ulps=4, size=6)
        ran = True
    if framework.name in ("numpy", "torch", "paddle", "tensorflow"):
        assert ran


def test_a_declined_option_is_computed_by_the_portable_path(framework):
    problem, plan = _problem(framework, options={"mean_axis": -1})
    got = framework.to_numpy(_loss.solve(problem, plan))
    expected = framework.to_numpy(plan.portable(problem))
    np.testing.assert_array_equal(got, expected)


def test_unknown_option_is_a_clear_error(framework):
    problem, plan = _problem(framework, options={"no_such_option": 1})
    with pytest.raises(ValueError, match="no_such_option"):
        _loss.solve(problem, plan)
