"""The torch dialect: ``torch.nn.functional`` and ``torch.nn`` signatures, on any backend."""

from __future__ import annotations

from bce_compat import _loss, _options, _reduction
from bce_compat._types import Array, Reduction, Weight
from bce_compat._validate import ArgNames

__all__ = [
    "binary_cross_entropy_with_logits", "binary_cross_entropy", "BCEWithLogitsLoss", "BCELoss", "sigmoid_focal_loss",
]

_NAMES = ArgNames()


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Weight = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    pos_weight: Weight = None,
    *,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
) -> Array:
    r"""Binary cross entropy between ``target`` and the logits ``input``, as torch computes it.

    Element-wise, with p = ``pos_weight`` and w = ``weight`` (both broadcast against ``input``;
    a ``pos_weight`` of shape [C] applies along the last axis, [C, 1, 1] for images)::

        l = w * [p * y * softplus(-x) + (1 - y) * softplus(x)]
          = -w * [p * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))]

    computed without overflow or cancellation; a term whose coefficient is exactly 0
    contributes 0 (x = +inf, y = 1 gives 0).

    Args:
        input: logits, a real floating array of any library bce_compat supports.
        target: same shape as ``input``, values usually in [0, 1]; bool/int arrays are cast.
        weight: rescaling weight, an array (broadcast to ``input``) or a number.
        size_average: deprecated; when given it overrides ``reduction`` (with a warning), as in torch.
        reduce: deprecated; when given it overrides ``reduction`` (with a warning), as in torch.
        reduction: "none" (keep the shape), "mean" (sum / number of elements) or "sum".
        pos_weight: weight of positive examples, an array (broadcast to ``input``) or a number.
        label_smoothing: keyword-only, ε in [0, 1]: targets become y*(1 - ε) + ε/2 (as Keras).
        ignore_index: keyword-only; elements whose target equals it give exactly 0 (gradient
            0) and are left out of the mean's denominator (all ignored: the mean is NaN).

    Returns:
        An array of the inputs' library, device and promoted dtype; 0-d for "mean" and "sum".
        Gradients flow through the library's own autograd.

    Example (seed 003_90ea006e413702a3.txt):
        >>> import numpy as np, bce_compat
        >>> x, y = np.full([10, 64], 1.5, np.float32), np.ones([10, 64], np.float32)
        >>> round(float(bce_compat.binary_cross_entropy_with_logits(x, y, pos_weight=np.ones(64, np.float32))), 4)
        0.2014
    """
    fn = "binary_cross_entropy_with_logits"
    reduction = _reduction.resolve(fn, reduction, size_average, reduce)
    options = _options.options(fn, label_smoothing=label_smoothing, ignore_index=ignore_index)
    return _loss.compute("logits", fn, _NAMES, input, target, weight, pos_weight, reduction, options)


def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Weight = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: Reduction = "mean",
    *,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
) -> Array:
    r"""Binary cross entropy between ``target`` and the probabilities ``input``, as torch computes it.

    Element-wise, with w = ``weight`` broadcast against ``input``::

        l = -w * [y * max(log q, -100) + (1 - y) * max(log(1 - q), -100)]

    (torch and Paddle both clamp the log at -100; log(1 - q) is computed with log1p).

    Args:
        input: probabilities in [0, 1], a real floating array.
        target: same shape as ``input``, values in [0, 1]; bool/int arrays are cast.
        weight: rescaling weight, an array (broadcast to ``input``) or a number.
        size_average: deprecated; when given it overrides ``reduction`` (with a warning), as in torch.
        reduce: deprecated; when given it overrides ``reduction`` (with a warning), as in torch.
        reduction: "none", "mean" or "sum".
        label_smoothing: keyword-only, as in ``binary_cross_entropy_with_logits``.
        ignore_index: keyword-only, as in ``binary_cross_entropy_with_logits``.

    Raises ValueError on eager backends if ``input`` or ``target`` has values outside [0, 1]
    (targets equal to ``ignore_index`` excepted).

    Examples:
        >>> import numpy as np, bce_compat
        >>> q, y = np.array([0.9, 0.2]), np.array([1.0, 0.0])
        >>> [round(v, 4) for v in bce_compat.binary_cross_entropy(q, y, reduction="none").tolist()]
        [0.1054, 0.2231]
    """
    fn = "binary_cross_entropy"
    reduction = _reduction.resolve(fn, reduction, size_average, reduce)
    options = _options.options(fn, label_smoothing=label_smoothing, ignore_index=ignore_index)
    return _loss.compute("probs", fn, _NAMES, input, target, weight, None, reduction, options)


class BCEWithLogitsLoss:
    """``torch.nn.BCEWithLogitsLoss`` on any backend: ``loss = BCEWithLogitsLoss(pos_weight=p); loss(x, y)``.

    >>> import numpy as np, bce_compat
    >>> float(bce_compat.BCEWithLogitsLoss(reduction="sum")(np.zeros(2), np.ones(2)))
    1.3862943611198906
    """

    def __init__(
        self,
        weight: Weight = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        pos_weight: Weight = None,
        *,
        label_smoothing: float = 0.0,
        ignore_index: float | None = None,
    ) -> None:
        self.weight = weight
        self.pos_weight = pos_weight
        self.reduction = _reduction.resolve("BCEWithLogitsLoss", reduction, size_average, reduce)
        self.options = _options.options("BCEWithLogitsLoss", label_smoothing=label_smoothing, ignore_index=ignore_index)

    def forward(self, input: Array, target: Array) -> Array:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight, **self.options
        )

    __call__ = forward

    def __repr__(self) -> str:
        return f"BCEWithLogitsLoss(reduction={self.reduction!r})"


class BCELoss:
    """``torch.nn.BCELoss`` on any backend: ``loss = BCELoss(); loss(probabilities, y)``.

    >>> import numpy as np, bce_compat
    >>> round(float(bce_compat.BCELoss()(np.array([0.5]), np.array([1.0]))), 4)
    0.6931
    """

    def __init__(
        self,
        weight: Weight = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: Reduction = "mean",
        *,
        label_smoothing: float = 0.0,
        ignore_index: float | None = None,
    ) -> None:
        self.weight = weight
        self.reduction = _reduction.resolve("BCELoss", reduction, size_average, reduce)
        self.options = _options.options("BCELoss", label_smoothing=label_smoothing, ignore_index=ignore_index)

    def forward(self, input: Array, target: Array) -> Array:
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction, **self.options)

    __call__ = forward

    def __repr__(self) -> str:
        return f"BCELoss(reduction={self.reduction!r})"


def sigmoid_focal_loss(
    input: Array, target: Array, alpha: float = 0.25, gamma: float = 2.0, reduction: Reduction = "none"
) -> Array:
    r"""``torchvision.ops.sigmoid_focal_loss`` (Lin et al., RetinaNet) on any backend, from logits.

    Element-wise, with p = sigmoid(x), p_t = p*y + (1-p)*(1-y) and
    alpha_t = alpha*y + (1-alpha)*(1-y)::

        l = alpha_t * bce_with_logits(x, y) * (1 - p_t) ** gamma

    ``alpha`` in [0, 1], or negative for no weighting (torchvision's convention); ``gamma`` >= 0.
    The cross entropy is the exact softplus form and 1 - p_t = (1-y)*sigmoid(x) + y*sigmoid(-x)
    is computed without cancellation, so the loss is accurate and its gradient finite at
    |x| up to 1e30 and at ±inf (where torchvision gives NaN gradients for gamma < 1).
    ``reduction``: "none" (default, as torchvision), "mean" or "sum".

    Examples:
        >>> import numpy as np, bce_compat
        >>> [round(v, 4) for v in bce_compat.sigmoid_focal_loss(np.array([0.0, 2.0]), np.array([1.0, 0.0])).tolist()]
        [0.0433, 1.2376]
    """
    fn = "sigmoid_focal_loss"
    reduction = _reduction.resolve(fn, reduction)
    options = _options.focal_options(fn, alpha, gamma)
    return _loss.compute("focal", fn, _NAMES, input, target, None, None, reduction, options)
