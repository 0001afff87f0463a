"""Dialects: the call signatures of each framework, all running on every backend.

- ``bce_compat.dialects.torch``: torch's signatures (also the top-level ``bce_compat`` functions).
- ``bce_compat.dialects.paddle``: Paddle's signatures (``logit``, ``label``, ``name``).
"""
