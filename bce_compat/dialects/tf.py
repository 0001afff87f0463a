"""The ``tf.nn`` dialect: ``sigmoid_cross_entropy_with_logits`` and ``weighted_cross_entropy_with_logits``.

Argument order is TensorFlow's: ``(labels, logits)``, target first; both are element-wise (no
reduction). Runs on every backend; on TF tensors it differs from ``tf.nn`` only where TF's own
ops are inexact: both give NaN at x = ±inf (exact: 0 or inf); ``weighted_cross_entropy_with_logits``
loses digits to cancellation for labels = 0, x ≪ 0 (0 from x = -15 in float32), and its gradient
at x = 0 is 0.5 * (1 + (pos_weight - 1) * labels) too large (1 instead of 0.5 for labels = 0).
``sigmoid_cross_entropy_with_logits``'s gradient at x = 0 is exact, 0.5 - labels, in TF as here.
"""

from __future__ import annotations

from bce_compat import _loss
from bce_compat._types import Array, Weight
from bce_compat._validate import ArgNames

__all__ = ["sigmoid_cross_entropy_with_logits", "weighted_cross_entropy_with_logits"]

_NAMES = ArgNames(input="logits", target="labels")


def sigmoid_cross_entropy_with_logits(labels: Array = None, logits: Array = None, name: str | None = None) -> Array:
    """``tf.nn.sigmoid_cross_entropy_with_logits``: z*-log(sigmoid(x)) + (1-z)*-log(1-sigmoid(x)), element-wise.

    ``name`` is accepted for signature compatibility and ignored.

    Example (the TF API page's example):
        >>> import numpy as np
        >>> from bce_compat.dialects import tf
        >>> logits = np.array([1., -1., 0., 1., -1., 0., 0.]); labels = np.array([0., 0., 0., 1., 1., 1., 0.5])
        >>> [round(v, 3) for v in tf.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits).tolist()]
        [1.313, 0.313, 0.693, 0.313, 1.313, 0.693, 0.693]
    """
    fn = "sigmoid_cross_entropy_with_logits"
    _check_given(fn, labels, logits)
    return _loss.compute("logits", fn, _NAMES, logits, labels, None, None, "none")


def weighted_cross_entropy_with_logits(
    labels: Array, logits: Array, pos_weight: Weight, name: str | None = None
) -> Array:
    """``tf.nn.weighted_cross_entropy_with_logits``: labels*-log(sigmoid(x))*pos_weight + (1-labels)*-log(1-sigmoid(x)).

    ``pos_weight`` is a number or an array broadcast against ``logits`` without enlarging it.

    Example (the TF API page's example):
        >>> import numpy as np
        >>> from bce_compat.dialects import tf
        >>> labels = np.array([1., 0.5, 0.]); logits = np.array([1.5, -0.1, -10.])
        >>> [round(v, 6) for v in tf.weighted_cross_entropy_with_logits(labels, logits, pos_weight=1.5).tolist()]
        [0.30212, 0.880496, 4.5e-05]
    """
    fn = "weighted_cross_entropy_with_logits"
    _check_given(fn, labels, logits)
    return _loss.compute("logits", fn, _NAMES, logits, labels, None, pos_weight, "none")


def _check_given(fn: str, labels: Array, logits: Array) -> None:
    if labels is None or logits is None:
        raise ValueError(f"{fn}: both `labels` and `logits` must be given; got labels={labels!r}, logits={logits!r}")
