"""bce_compat: one binary-cross-entropy loss with the same numbers on NumPy, PyTorch, Paddle and TF.

>>> import numpy as np, bce_compat
>>> float(bce_compat.binary_cross_entropy_with_logits(np.array([0.0]), np.array([1.0])))
0.6931471805599453

The top-level functions use torch's signatures (and torchvision's ``sigmoid_focal_loss``);
``bce_compat.dialects`` has Paddle's, Keras', ``tf.nn``'s and optax's.
Importing this package imports no array library.
"""

from bce_compat._version import __version__
from bce_compat.dialects.torch import (
    BCELoss,
    BCEWithLogitsLoss,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    sigmoid_focal_loss,
)

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "__version__",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
]
