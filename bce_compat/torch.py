"""``torch.nn`` loss modules computed by bce_compat: drop-in for ``torch.nn.BCEWithLogitsLoss``/``BCELoss``.

They are ``torch.nn.Module`` subclasses built exactly like torch's own (the same base classes,
constructor signature and buffers), so ``.to(device)``, ``.double()``, ``state_dict()``,
deepcopy, pickle and ``torch.save`` behave as torch's, and a checkpoint of one loads into the
other with ``strict=True``. Only ``forward`` differs: it calls bce_compat's exact loss.

Importing this module imports torch; ``import bce_compat`` does not.

>>> import torch, bce_compat.torch
>>> criterion = bce_compat.torch.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0]))
>>> criterion
BCEWithLogitsLoss()
>>> round(float(criterion(torch.zeros(2), torch.ones(2))), 6)  # 2 * log(2)
1.386294
>>> torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(1)).load_state_dict(criterion.state_dict())
<All keys matched successfully>
"""

from __future__ import annotations

import numbers
from typing import cast

import torch
from torch.nn.modules.loss import _Loss, _WeightedLoss

from bce_compat._types import Reduction
from bce_compat.dialects.torch import binary_cross_entropy, binary_cross_entropy_with_logits

__all__ = ["BCELoss", "BCEWithLogitsLoss"]

_REDUCTIONS = ("none", "mean", "sum", "elementwise_mean")  # the last is torch's deprecated spelling of "mean"


class BCEWithLogitsLoss(_Loss):
    r"""``torch.nn.BCEWithLogitsLoss``, computed by :func:`bce_compat.binary_cross_entropy_with_logits`.

    Same signature, buffers (``weight``, ``pos_weight``, registered even when None, as torch does)
    and ``repr`` as torch's module; the loss is exact where torch's own op is not (x = +inf,
    y = 1 gives 0; x = -20, y = 0 gives 2.06e-9 in float32, not 0). ``weight`` and ``pos_weight``
    may also be Python numbers: they become 0-d buffers of torch's default dtype.

    >>> import torch, bce_compat.torch
    >>> loss = bce_compat.torch.BCEWithLogitsLoss(pos_weight=torch.full([64], 1.0))
    >>> round(float(loss(torch.full([10, 64], 1.5), torch.ones(10, 64))), 4)  # torch's doc example
    0.2014
    """

    __constants__ = ["reduction"]

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None) -> None:
        super().__init__(size_average, reduce, reduction)
        _check_reduction(type(self).__name__, self.reduction)
        self.register_buffer("weight", _as_buffer(type(self).__name__, "weight", weight))
        self.register_buffer("pos_weight", _as_buffer(type(self).__name__, "pos_weight", pos_weight))
        self.weight: torch.Tensor | None
        self.pos_weight: torch.Tensor | None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=cast(Reduction, self.reduction)
        )


class BCELoss(_WeightedLoss):
    r"""``torch.nn.BCELoss``, computed by :func:`bce_compat.binary_cross_entropy`.

    Same signature, ``weight`` buffer and ``repr`` as torch's module; probabilities outside
    [0, 1] are a ValueError naming the argument (checked eagerly, skipped under ``torch.compile``).

    >>> import torch, bce_compat.torch
    >>> round(float(bce_compat.torch.BCELoss(reduction="sum")(torch.tensor([0.9, 0.2]), torch.tensor([1.0, 0.0]))), 4)
    0.3285
    """

    __constants__ = ["reduction"]

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean") -> None:
        super().__init__(_as_buffer(type(self).__name__, "weight", weight), size_average, reduce, reduction)
        _check_reduction(type(self).__name__, self.reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy(input, target, self.weight, reduction=cast(Reduction, self.reduction))


def _check_reduction(cls: str, reduction) -> None:
    """torch only finds a bad ``reduction`` at the first call; say so at construction."""
    if not (isinstance(reduction, str) and reduction in _REDUCTIONS):
        raise ValueError(f"{cls}: `reduction` must be one of 'none', 'mean', 'sum'; got {reduction!r}")


def _as_buffer(cls: str, name: str, value):
    """A tensor or None as given; a Python real number as a 0-d tensor of the default dtype."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return torch.tensor(float(value))
    raise TypeError(f"{cls}: `{name}` must be a torch.Tensor, a Python number or None; got {type(value).__name__}")
