"""bce_compat: one binary-cross-entropy loss with the same numbers on NumPy, PyTorch, Paddle and TF.

>>> import numpy as np, bce_compat
>>> float(bce_compat.binary_cross_entropy_with_logits(np.array([0.0]), np.array([1.0])))
0.6931471805599453

The top-level functions use torch's signatures (and torchvision's ``sigmoid_focal_loss``);
``bce_compat.dialects`` has Paddle's, Keras', ``tf.nn``'s and optax's.
Importing this package imports no array library.
"""

from importlib.util import find_spec as _find_spec

if _find_spec("bce_compat.backends") is None:  # the repository's bce_compat/, not an installed package
    raise ImportError(
        f"bce_compat was imported from its source tree ({__path__[0]}), where backends/ and conformance/ "
        "are not inside it: install it (pip install . or pip install -e .) and run Python from another "
        "directory (or with python -P)"
    )

from bce_compat._version import __version__  # noqa: E402
from bce_compat.dialects.torch import (  # noqa: E402
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
