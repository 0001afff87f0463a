"""Dialects: the call signatures of each framework, all running on every backend.

- ``bce_compat.dialects.torch``: torch's signatures (also the top-level ``bce_compat`` functions).
- ``bce_compat.dialects.paddle``: Paddle's signatures (``logit``, ``label``, ``name``).
- ``bce_compat.dialects.keras``: Keras' ``(y_true, y_pred)``, mean over ``axis``, Keras' reductions.
- ``bce_compat.dialects.tf``: ``tf.nn``'s ``(labels, logits)``, element-wise.
- ``bce_compat.dialects.optax``: optax's ``(logits, labels)``, element-wise.
"""
