"""The loss called through either dialect with the same meaning, so tests can run both."""

from __future__ import annotations

import bce_compat
from bce_compat.dialects import paddle as paddle_dialect

DIALECTS = ("torch", "paddle")


def with_logits(dialect, x, y, weight=None, pos_weight=None, reduction="mean"):
    if dialect == "torch":
        return bce_compat.binary_cross_entropy_with_logits(x, y, weight=weight, reduction=reduction, pos_weight=pos_weight)
    return paddle_dialect.binary_cross_entropy_with_logits(logit=x, label=y, weight=weight, reduction=reduction, pos_weight=pos_weight)


def probs(dialect, q, y, weight=None, reduction="mean"):
    if dialect == "torch":
        return bce_compat.binary_cross_entropy(q, y, weight=weight, reduction=reduction)
    return paddle_dialect.binary_cross_entropy(input=q, label=y, weight=weight, reduction=reduction)


def module(dialect, kind, weight=None, pos_weight=None, reduction="mean"):
    """The module form (BCEWithLogitsLoss / BCELoss) of either dialect."""
    ns = bce_compat if dialect == "torch" else paddle_dialect
    if kind == "logits":
        return ns.BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)
    return ns.BCELoss(weight=weight, reduction=reduction)
