"""The per-signature plan (bce_compat/_plan.py): remembered validation never lets a bad call through."""

from __future__ import annotations

import numpy as np
import pytest

import bce_compat
from bce_compat import _plan


def test_second_call_with_same_signature_reuses_the_plan_and_gives_the_same_value():
    x, y = np.array([0.5, -2.0, 3.0], np.float32), np.array([1, 0, 1], np.int64)
    first = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=2.0)
    key = _plan._signature(x, y, None, 2.0)
    assert key in _plan._plans and _plan._plans[key].cast_to_float == (True, False, False)
    again = bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=3.0)  # a number's value is not in the key
    expected = bce_compat.binary_cross_entropy_with_logits(x, y.astype(np.float32), pos_weight=3.0)
    assert again.dtype == first.dtype == np.float32
    assert again == expected and again != first


def test_value_checks_still_run_on_every_call():
    q, y = np.array([0.2, 0.9]), np.array([0.0, 1.0])
    bce_compat.binary_cross_entropy(q, y)
    with pytest.raises(ValueError, match="between 0 and 1"):
        bce_compat.binary_cross_entropy(np.array([0.2, 1.5]), y)  # same signature, bad values


def test_a_new_shape_is_validated_again():
    x = np.zeros(3)
    bce_compat.binary_cross_entropy_with_logits(x, np.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        bce_compat.binary_cross_entropy_with_logits(x, np.zeros(4))
    with pytest.raises(ValueError, match="pos_weight"):
        bce_compat.binary_cross_entropy_with_logits(x, np.zeros(3), pos_weight=np.ones(2))


def test_a_new_weight_shape_is_validated_again():
    """The memo's key holds the weights' shapes too: after a call with a good ``weight`` or ``pos_weight``,
    one of the same dtype that does not broadcast, or would enlarge the input, is still refused by name."""
    x, y = np.zeros((2, 3)), np.zeros((2, 3))
    for arg in ("weight", "pos_weight"):
        bce_compat.binary_cross_entropy_with_logits(x, y, **{arg: np.ones(3)})
        for bad in (np.ones(2), np.ones((4, 2, 3))):
            with pytest.raises(ValueError, match=f"`{arg}` must broadcast"):
                bce_compat.binary_cross_entropy_with_logits(x, y, **{arg: bad})


def test_non_arrays_get_the_full_checks_and_are_not_remembered():
    before = len(_plan._plans)
    with pytest.raises(TypeError, match="no installed backend"):
        bce_compat.binary_cross_entropy_with_logits([0.0, 1.0], np.zeros(2))
    assert _plan._signature([0.0, 1.0], np.zeros(2), None, None) is None
    assert len(_plan._plans) == before


def test_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(_plan, "_plans", {})
    for n in range(1, _plan._MAX_PLANS + 10):
        bce_compat.binary_cross_entropy_with_logits(np.zeros(n), np.zeros(n))
    assert 0 < len(_plan._plans) <= _plan._MAX_PLANS


def test_engines_get_one_memo_per_signature(monkeypatch):
    """``Problem.memo`` is the plan's: the same dict for calls with the same types, dtypes and
    shapes, another for another shape; engines keep there what those alone decide."""
    from bce_compat import _loss

    memos = []
    solve = _loss.solve
    monkeypatch.setattr(_loss, "solve", lambda problem, *rest: memos.append(problem.memo) or solve(problem, *rest))
    x = np.array([0.5, -2.0], np.float32)
    bce_compat.binary_cross_entropy_with_logits(x, np.zeros(2, np.float32))
    bce_compat.binary_cross_entropy_with_logits(-x, np.ones(2, np.float32), reduction="sum")
    bce_compat.binary_cross_entropy_with_logits(np.zeros(3, np.float32), np.zeros(3, np.float32))
    assert isinstance(memos[0], dict) and memos[1] is memos[0] and memos[2] is not memos[0]


def test_a_key_that_cannot_be_hashed_is_planned_every_time(monkeypatch):
    monkeypatch.setattr(_plan, "_plans", {})
    monkeypatch.setattr(_plan, "_signature", lambda *args: ([],))  # as a dtype without a hash would make it
    for _ in range(2):
        assert float(bce_compat.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2))) == pytest.approx(np.log(2))
    assert _plan._plans == {}
