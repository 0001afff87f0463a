"""The optax dialect: ``optax.losses.sigmoid_binary_cross_entropy`` and ``sigmoid_focal_loss``.

Argument order is optax's: ``(logits, labels)``, input first; element-wise (no reduction).
Runs on every backend, not only JAX. ``labels`` must have ``logits``' shape (optax would
broadcast them).
"""

from __future__ import annotations

from bce_compat import _loss, _options
from bce_compat._types import Array
from bce_compat._validate import ArgNames

__all__ = ["sigmoid_binary_cross_entropy", "sigmoid_focal_loss"]

_NAMES = ArgNames(input="logits", target="labels")


def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    """``optax.losses.sigmoid_binary_cross_entropy``: -labels*log σ(logits) - (1-labels)*log(1-σ(logits)).

    Examples:
        >>> import numpy as np
        >>> from bce_compat.dialects import optax
        >>> loss = optax.sigmoid_binary_cross_entropy(np.array([0.0, 2.0]), np.array([1.0, 0.0]))
        >>> [round(v, 4) for v in loss.tolist()]
        [0.6931, 2.1269]
    """
    return _loss.compute("logits", "sigmoid_binary_cross_entropy", _NAMES, logits, labels, None, None, "none")


def sigmoid_focal_loss(logits: Array, labels: Array, alpha: float | None = None, gamma: float = 2.0) -> Array:
    """``optax.losses.sigmoid_focal_loss``: the focal loss element-wise; ``alpha=None`` means no weighting.

    Same numbers as ``bce_compat.sigmoid_focal_loss`` (torchvision's, alpha=-1 there for none).
    ``alpha`` and ``gamma`` may be numbers or 0-d arrays; under ``jax.jit`` (or ``vmap``,
    ``tf.function``) they may be traced, as optax allows: only values that can be read are checked.

    Examples:
        >>> import numpy as np
        >>> from bce_compat.dialects import optax
        >>> [round(v, 4) for v in optax.sigmoid_focal_loss(np.array([0.0]), np.array([1.0])).tolist()]
        [0.1733]
    """
    fn = "sigmoid_focal_loss"
    options = _options.focal_options(fn, -1.0 if alpha is None else alpha, gamma)
    return _loss.compute("focal", fn, _NAMES, logits, labels, None, None, "none", options)
