"""``paddle.nn.Layer`` loss classes with Paddle's signatures: a drop-in for ``paddle.nn.BCEWithLogitsLoss``.

Importing this module imports Paddle. The classes have Paddle's constructor signatures and
attributes (``weight``, ``reduction``, ``pos_weight``, ``name``; plain attributes, as in
Paddle, so a model's ``state_dict`` is the same with either), and compute the Paddle dialect
(``bce_compat.dialects.paddle``): the exact formula, labels equal to -100 not ignored. They
work in dygraph, under ``paddle.jit.to_static`` and in static-graph programs.

>>> import paddle, bce_compat.paddle
>>> loss = bce_compat.paddle.BCEWithLogitsLoss()
>>> logit = paddle.to_tensor([5.0, 1.0, 3.0]); label = paddle.to_tensor([1.0, 0.0, 1.0])
>>> round(float(loss(logit, label)), 6)  # Paddle's documented example (exact: 0.4561881291...)
0.456188
"""

from __future__ import annotations

import paddle

from bce_compat import _reduction
from bce_compat._types import Array, Reduction, Weight
from bce_compat.dialects import paddle as _dialect

__all__ = ["BCEWithLogitsLoss", "BCELoss"]


class BCEWithLogitsLoss(paddle.nn.Layer):
    """``paddle.nn.BCEWithLogitsLoss(weight, reduction, pos_weight, name)``; call it as ``loss(logit, label)``.

    ``weight`` rescales each element's loss and ``pos_weight`` the positive term; both broadcast
    against ``logit`` (Python numbers are accepted too). ``reduction`` is "none", "mean" or "sum".

    >>> import paddle
    >>> loss = BCEWithLogitsLoss(pos_weight=paddle.to_tensor([2.0]), reduction="sum")
    >>> round(float(loss(paddle.zeros([2]), paddle.ones([2]))), 6)
    2.772589
    """

    def __init__(
        self, weight: Weight = None, reduction: Reduction = "mean", pos_weight: Weight = None, name: str | None = None
    ) -> None:
        reduction = _reduction.resolve("BCEWithLogitsLoss", reduction)
        super().__init__()
        self.weight = weight
        self.reduction = reduction
        self.pos_weight = pos_weight
        self.name = name

    def forward(self, logit: Array, label: Array) -> Array:
        return _dialect.binary_cross_entropy_with_logits(
            logit, label, self.weight, self.reduction, self.pos_weight, self.name
        )


class BCELoss(paddle.nn.Layer):
    """``paddle.nn.BCELoss(weight, reduction, name)``; call it as ``loss(input, label)`` on probabilities.

    log(input) and log(1 - input) are clamped at -100, as Paddle and torch do.

    >>> import paddle
    >>> round(float(BCELoss()(paddle.to_tensor([0.5, 0.6]), paddle.to_tensor([1.0, 0.0]))), 4)
    0.8047
    """

    def __init__(self, weight: Weight = None, reduction: Reduction = "mean", name: str | None = None) -> None:
        reduction = _reduction.resolve("BCELoss", reduction)
        super().__init__()
        self.weight = weight
        self.reduction = reduction
        self.name = name

    def forward(self, input: Array, label: Array) -> Array:
        return _dialect.binary_cross_entropy(input, label, self.weight, self.reduction, self.name)
