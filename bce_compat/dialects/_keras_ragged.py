"""``tf.RaggedTensor`` inputs of the Keras dialect: tf.keras' per-row loss of ragged batches.

tf.keras (Keras 2) takes ``y_true``/``y_pred`` of shape [batch, None] as ragged tensors and
gives one loss per row: the mean over that row's own length. Here the element-wise loss is
computed on the flat values (one call of the front end, on plain tensors) and averaged per row
by TensorFlow. Only a TensorFlow user holds a ragged tensor, so TensorFlow is imported only then.

>>> import tensorflow as tf
>>> from bce_compat.dialects import keras as K
>>> y_true = tf.ragged.constant([[1.0, 0.0, 1.0], [0.0, 1.0]])
>>> logits = tf.ragged.constant([[100.0, -100.0, 100.0], [100.0, 100.0]])
>>> K.binary_crossentropy(y_true, logits, from_logits=True).numpy().tolist()
[0.0, 50.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def is_ragged(a: Any) -> bool:
    """A ``tf.RaggedTensor`` (by its interface: this module imports no framework before one is held)."""
    return hasattr(a, "flat_values") and hasattr(a, "nested_row_splits")


def row_means(fn: str, y_true: Any, y_pred: Any, axis: int, elementwise: Callable[[Any, Any], Any]) -> Any:
    """The mean over each row of ``elementwise(flat y_true, flat y_pred)``: a dense [batch] tensor."""
    import tensorflow as tf

    if not (is_ragged(y_true) and is_ragged(y_pred)):
        raise TypeError(f"{fn}: `y_true` and `y_pred` must both be ragged or both dense; "
                        f"got {type(y_true).__name__} and {type(y_pred).__name__}")
    if y_pred.ragged_rank != 1 or y_pred.flat_values.shape.rank != 1 or axis not in (-1, 1):
        raise ValueError(f"{fn}: ragged inputs must have shape [batch, None], averaged over `axis` -1; "
                         f"got `y_pred` of shape {y_pred.shape} and axis={axis!r}")
    same_rows = tf.debugging.assert_equal(
        y_true.row_splits, tf.cast(y_pred.row_splits, y_true.row_splits.dtype),
        message=f"{fn}: `y_true` must have the same shape as `y_pred` (row lengths differ)")
    with tf.control_dependencies([same_rows]):
        losses = elementwise(y_true.flat_values, y_pred.flat_values)
    return tf.reduce_mean(y_pred.with_flat_values(losses), axis=-1)


def with_flat_values(a: Any, convert: Callable[[Any], Any]) -> Any:
    """``convert`` applied to a ragged tensor's values (ragged), or to ``a`` itself."""
    return a.with_flat_values(convert(a.flat_values)) if is_ragged(a) else convert(a)
