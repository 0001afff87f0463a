"""``bce_compat.keras.BinaryCrossentropy``: a ``keras.losses.Loss`` for ``model.compile(loss=...)``.

Importing this module imports Keras (and so its backend: TensorFlow, JAX or torch). The loss
per sample is ``bce_compat.dialects.keras.binary_crossentropy`` (exact, log clamped at -100
instead of Keras' 1e-7 clip); Keras' own ``Loss.__call__`` converts the inputs to its backend's
tensors in the loss's ``dtype`` and applies ``sample_weight``, masks and the reduction, so
everything but the per-sample values is Keras' own behaviour.

>>> import numpy as np
>>> from bce_compat.keras import BinaryCrossentropy
>>> loss = BinaryCrossentropy(from_logits=True)
>>> round(float(loss(np.array([[0.0, 1.0]]), np.array([[-18.6, 0.51]]))), 4)
0.2352
"""

from __future__ import annotations

from typing import Any

import keras

from bce_compat import _options
from bce_compat._types import Array
from bce_compat.dialects import keras as _dialect

__all__ = ["BinaryCrossentropy"]


@keras.saving.register_keras_serializable(package="bce_compat")
class BinaryCrossentropy(keras.losses.Loss):
    """``keras.losses.BinaryCrossentropy``'s signature and reductions, with bce_compat's exact loss.

    Args:
        from_logits: ``y_pred`` holds logits (True) or probabilities (False).
        label_smoothing: ε in [0, 1]; targets become y*(1 - ε) + ε/2.
        axis: the axis the per-element losses are averaged over (the features axis).
        reduction: "sum_over_batch_size" (default), "sum", "mean", "mean_with_sample_weight",
            "none" or None, as Keras.
        name, dtype: as ``keras.losses.Loss`` (dtype None means ``keras.backend.floatx()``).
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: _dialect.KerasReduction | None = "sum_over_batch_size",
        name: str = "binary_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.label_smoothing = _options.check_label_smoothing("BinaryCrossentropy", label_smoothing)
        self.axis = axis

    def call(self, y_true: Array, y_pred: Array) -> Array:
        y_true, y_pred = _dialect.same_rank(y_true, y_pred)
        return _dialect.binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing, self.axis)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis)
        return config
