"""Every backend x dialect x {logits, probabilities} x reduction x weights, against the exact loss (docs/contract.md §3-4)."""

from __future__ import annotations

import numpy as np
import pytest

from _calls import DIALECTS, module, probs, with_logits
from _reference import assert_result, exact_logits_loss, exact_probs_loss, reduce_exact, skip_unless_dtype

# Rows: logits from the extremes of docs/contract.md §4 (|x| up to 1e30, x = -20 for cancellation, 0) ...
LOGITS = [-1e30, -100.0, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 20.0, 100.0, 1e30]
# ... columns: targets, each column with its own weight and pos_weight (shape [C] broadcast).
TARGETS = [0.0, 0.3, 1.0]
WEIGHT = [0.5, 1.0, 2.0]
POS_WEIGHT = [3.0, 1.0, 0.25]
# Probabilities: both ends of the clamp and q = 1e-7 with y = 0 (log1p's job).
PROBS = [0.0, 1e-7, 1e-3, 0.25, 0.5, 0.9, 0.9999999, 1.0]
WEIGHTINGS = ("neither", "weight", "pos_weight", "both")
REDUCTIONS = ("none", "mean", "sum")


def _grid(rows, dtype):
    x = np.repeat(np.asarray(rows, dtype=dtype)[:, None], len(TARGETS), axis=1)
    y = np.broadcast_to(np.asarray(TARGETS, dtype=dtype), x.shape).copy()
    return x, y


def _weights(weighting, dtype):
    w = np.asarray(WEIGHT, dtype=dtype) if weighting in ("weight", "both") else None
    p = np.asarray(POS_WEIGHT, dtype=dtype) if weighting in ("pos_weight", "both") else None
    return w, p


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_with_logits_matches_exact(framework, dialect, reduction, weighting, dtype):
    skip_unless_dtype(framework, dtype)
    x_np, y_np = _grid(LOGITS, dtype)
    w_np, p_np = _weights(weighting, dtype)
    x, y = framework.asarray(x_np, dtype), framework.asarray(y_np, dtype)
    w = None if w_np is None else framework.asarray(w_np, dtype)
    p = None if p_np is None else framework.asarray(p_np, dtype)

    result = with_logits(dialect, x, y, w, p, reduction)

    expected = reduce_exact(exact_logits_loss(x_np, y_np, w_np, p_np), reduction)
    assert_result(result, x, framework, dtype, expected.shape, expected, size=x_np.size)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["neither", "weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_probabilities_match_exact(framework, dialect, reduction, weighted, dtype):
    skip_unless_dtype(framework, dtype)
    q_np, y_np = _grid(PROBS, dtype)
    w_np = np.asarray(WEIGHT, dtype=dtype) if weighted else None
    q, y = framework.asarray(q_np, dtype), framework.asarray(y_np, dtype)
    w = None if w_np is None else framework.asarray(w_np, dtype)

    result = probs(dialect, q, y, w, reduction)

    expected = reduce_exact(exact_probs_loss(q_np, y_np, w_np), reduction)
    assert_result(result, q, framework, dtype, expected.shape, expected, size=q_np.size)


@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_module_form_equals_functional(framework, dialect, kind):
    skip_unless_dtype(framework, "float64")
    rows = LOGITS if kind == "logits" else PROBS
    x_np, y_np = _grid(rows, "float64")
    w_np, p_np = _weights("both" if kind == "logits" else "weight", "float64")
    x, y = framework.asarray(x_np, "float64"), framework.asarray(y_np, "float64")
    w = framework.asarray(w_np, "float64")
    p = None if p_np is None else framework.asarray(p_np, "float64")

    loss = module(dialect, kind, weight=w, pos_weight=p, reduction="sum") if kind == "logits" else module(dialect, kind, weight=w, reduction="sum")
    exact = exact_logits_loss(x_np, y_np, w_np, p_np) if kind == "logits" else exact_probs_loss(x_np, y_np, w_np)
    expected = reduce_exact(exact, "sum")
    assert_result(loss(x, y), x, framework, "float64", (), expected, size=x_np.size)


INFINITE_CASES = [  # (x, y, exact) — docs/contract.md §3: a zero coefficient contributes exactly 0
    (np.inf, 1.0, 0.0),
    (np.inf, 0.0, np.inf),
    (-np.inf, 0.0, 0.0),
    (-np.inf, 1.0, np.inf),
    (np.inf, 0.5, np.inf),
    (np.nan, 1.0, np.nan),
    (np.nan, 0.0, np.nan),
    (0.0, np.nan, np.nan),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_infinite_and_nan_logits_give_exact_limits(framework, dialect, dtype):
    skip_unless_dtype(framework, dtype)
    x_np = np.asarray([c[0] for c in INFINITE_CASES], dtype=dtype)
    y_np = np.asarray([c[1] for c in INFINITE_CASES], dtype=dtype)
    expected = np.asarray([c[2] for c in INFINITE_CASES])
    x, y = framework.asarray(x_np, dtype), framework.asarray(y_np, dtype)
    result = with_logits(dialect, x, y, reduction="none")
    assert_result(result, x, framework, dtype, x_np.shape, expected)


def test_pos_weight_example_of_seed_003(framework):
    """003_90ea006e413702a3.txt: ones([10, 64]) targets, logits 1.5, pos_weight ones([64]) -> -log(sigmoid(1.5))."""
    x = framework.asarray(np.full([10, 64], 1.5), "float32")
    y = framework.asarray(np.ones([10, 64]), "float32")
    p = framework.asarray(np.ones([64]), "float32")
    result = module("torch", "logits", pos_weight=p)(x, y)
    assert_result(result, x, framework, "float32", (), np.asarray(-np.log(1 / (1 + np.exp(-1.5)))), size=640)
    assert framework.to_numpy(result).round(4) == 0.2014


def test_example_of_seed_004(framework):
    """004_4a43b4907e3ac4c7.txt: logit [5, 1, 3], label [1, 0, 1] -> 0.45618808 (0-d, not [1])."""
    x = framework.asarray([5.0, 1.0, 3.0], "float32")
    y = framework.asarray([1.0, 0.0, 1.0], "float32")
    result = with_logits("paddle", x, y)
    assert_result(result, x, framework, "float32", (), np.asarray(0.45618808), ulps=8)


def test_pos_weight_broadcasts_per_channel_for_images(framework):
    """Seed 003: pos_weight [C, 1, 1] applies one weight per channel of a [C, H, W] target."""
    skip_unless_dtype(framework, "float64")
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(3, 4, 5))
    y_np = rng.integers(0, 2, size=(3, 4, 5)).astype(float)
    p_np = np.asarray([0.5, 1.0, 4.0]).reshape(3, 1, 1)
    x, y, p = (framework.asarray(a, "float64") for a in (x_np, y_np, p_np))
    result = with_logits("torch", x, y, pos_weight=p, reduction="none")
    assert_result(result, x, framework, "float64", (3, 4, 5), exact_logits_loss(x_np, y_np, None, p_np))


def test_label_minus_100_is_not_ignored(framework):
    """docs/contract.md §3: Paddle's native op ignores labels equal to -100; our Paddle dialect computes them."""
    skip_unless_dtype(framework, "float64")
    x_np = np.asarray([0.5, -2.0]); y_np = np.asarray([-100.0, 1.0])
    x, y = framework.asarray(x_np, "float64"), framework.asarray(y_np, "float64")
    result = with_logits("paddle", x, y, reduction="none")
    assert_result(result, x, framework, "float64", (2,), exact_logits_loss(x_np, y_np))
    assert framework.to_numpy(result)[0] != 0.0
