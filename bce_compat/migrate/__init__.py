"""Migration aid between torch and Paddle (source rewriter; see ``bce-compat migrate``)."""
