"""The Paddle dialect: ``paddle.nn.functional`` and ``paddle.nn`` signatures, on any backend.

Same numbers as the torch dialect (seed 004_4a43b4907e3ac4c7.txt's stable formula equals
torch's), with one deliberate difference from Paddle's own op: labels equal to -100 are
not ignored, they enter the formula like any other value, unless ``ignore_index=-100`` is
given. Paddle's op gives 0 for those elements but still divides its mean by every element;
``binary_cross_entropy_with_logits(logit, label, reduction="none", ignore_index=-100).mean()``
reproduces that, while ``ignore_index`` with "mean" leaves them out of the denominator.
"""

from __future__ import annotations

from bce_compat import _loss, _options, _reduction
from bce_compat._types import Array, Reduction, Weight
from bce_compat._validate import ArgNames

__all__ = ["binary_cross_entropy_with_logits", "binary_cross_entropy", "BCEWithLogitsLoss", "BCELoss"]

_WITH_LOGITS_NAMES = ArgNames(input="logit", target="label")
_PROBS_NAMES = ArgNames(input="input", target="label")


def binary_cross_entropy_with_logits(
    logit: Array,
    label: Array,
    weight: Weight = None,
    reduction: Reduction = "mean",
    pos_weight: Weight = None,
    name: str | None = None,
    *,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
) -> Array:
    r"""``paddle.nn.functional.binary_cross_entropy_with_logits`` on any backend.

    Out = max(logit, 0) - logit * label + log(1 + exp(-|logit|)), times ``weight``, with
    ``pos_weight`` weighting the positive term; computed exactly as the torch dialect does.
    ``name`` is accepted for signature compatibility and ignored. "mean"/"sum" give 0-d arrays,
    as Paddle 3.x does (its documentation says shape [1]). Keyword-only ``label_smoothing`` and
    ``ignore_index`` as in the torch dialect (see the module docstring for Paddle's -100).

    Example (seed 004_4a43b4907e3ac4c7.txt):
        >>> import numpy as np
        >>> from bce_compat.dialects import paddle as P
        >>> logit = np.array([5.0, 1.0, 3.0], np.float32); label = np.array([1.0, 0.0, 1.0], np.float32)
        >>> round(float(P.binary_cross_entropy_with_logits(logit, label)), 6)
        0.456188
    """
    fn = "binary_cross_entropy_with_logits"
    reduction = _reduction.resolve(fn, reduction)
    options = _options.options(fn, label_smoothing=label_smoothing, ignore_index=ignore_index)
    return _loss.compute("logits", fn, _WITH_LOGITS_NAMES, logit, label, weight, pos_weight, reduction, options)


def binary_cross_entropy(
    input: Array,
    label: Array,
    weight: Weight = None,
    reduction: Reduction = "mean",
    name: str | None = None,
    *,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
) -> Array:
    """``paddle.nn.functional.binary_cross_entropy`` on any backend (probabilities in, log clamped at -100).

    >>> import numpy as np
    >>> from bce_compat.dialects import paddle as P
    >>> round(float(P.binary_cross_entropy(np.array([0.5, 0.6]), np.array([1.0, 0.0]))), 4)
    0.8047
    """
    fn = "binary_cross_entropy"
    reduction = _reduction.resolve(fn, reduction)
    options = _options.options(fn, label_smoothing=label_smoothing, ignore_index=ignore_index)
    return _loss.compute("probs", fn, _PROBS_NAMES, input, label, weight, None, reduction, options)


class BCEWithLogitsLoss:
    """``paddle.nn.BCEWithLogitsLoss(weight, reduction, pos_weight, name)``; call it as ``loss(logit, label)``.

    >>> import numpy as np
    >>> from bce_compat.dialects import paddle as P
    >>> float(P.BCEWithLogitsLoss(reduction="sum")(np.zeros(2), np.ones(2)))
    1.3862943611198906
    """

    def __init__(
        self,
        weight: Weight = None,
        reduction: Reduction = "mean",
        pos_weight: Weight = None,
        name: str | None = None,
        *,
        label_smoothing: float = 0.0,
        ignore_index: float | None = None,
    ) -> None:
        self.weight = weight
        self.pos_weight = pos_weight
        self.reduction = _reduction.resolve("BCEWithLogitsLoss", reduction)
        self.options = _options.options("BCEWithLogitsLoss", label_smoothing=label_smoothing, ignore_index=ignore_index)

    def forward(self, logit: Array, label: Array) -> Array:
        return binary_cross_entropy_with_logits(
            logit, label, self.weight, self.reduction, self.pos_weight, **self.options
        )

    __call__ = forward


class BCELoss:
    """``paddle.nn.BCELoss(weight, reduction, name)``; call it as ``loss(input, label)``.

    >>> import numpy as np
    >>> from bce_compat.dialects import paddle as P
    >>> round(float(P.BCELoss()(np.array([0.5]), np.array([1.0]))), 4)
    0.6931
    """

    def __init__(
        self,
        weight: Weight = None,
        reduction: Reduction = "mean",
        name: str | None = None,
        *,
        label_smoothing: float = 0.0,
        ignore_index: float | None = None,
    ) -> None:
        self.weight = weight
        self.reduction = _reduction.resolve("BCELoss", reduction)
        self.options = _options.options("BCELoss", label_smoothing=label_smoothing, ignore_index=ignore_index)

    def forward(self, input: Array, label: Array) -> Array:
        return binary_cross_entropy(input, label, self.weight, self.reduction, **self.options)

    __call__ = forward
