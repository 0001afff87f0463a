"""Migration aid (``bce-compat migrate``): rewrites BCE loss calls between torch and Paddle, and from
torch, Paddle, Keras, ``tf.nn`` and optax into bce_compat (``--to portable``); a source rewriter."""
