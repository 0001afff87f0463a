"""Every private TensorFlow API the TensorFlow engine uses, in one place, with its reason.

- ``recorded(tensors)``: whether an active ``GradientTape`` records any of ``tensors``
  (``tensorflow.python.eager.record.should_record_backprop``; TF has no public query). The engine
  needs it to know whether the loss must carry a gradient (a ``tf.custom_gradient``) and whether
  a backward is itself being differentiated (a second derivative, which takes TF ops). Without
  it (another TF), every tensor counts as recorded: always correct, slower.

Checked against the TensorFlow versions it was verified with (``VERIFIED``); outside them, or
with ``$BCE_COMPAT_PUBLIC_ONLY`` set, the fallback is used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

VERIFIED = ((2, 16), (2, 21))  # TensorFlow versions, inclusive, on which this private name was checked


def _tf_version() -> tuple[int, int]:
    try:
        major, minor = (int(part) for part in tf.__version__.split(".")[:2])
    except ValueError:
        return (0, 0)
    return major, minor


try:
    if os.environ.get("BCE_COMPAT_PUBLIC_ONLY") or not VERIFIED[0] <= _tf_version() <= VERIFIED[1]:
        raise ImportError("an unverified TensorFlow version, or public APIs only")
    from tensorflow.python.eager import record as _record

    _should_record = _record.should_record_backprop
except (ImportError, AttributeError):
    _should_record = None


def recorded(tensors: Sequence[Any]) -> bool:
    """Whether a tape records any of ``tensors`` (True where TF cannot say)."""
    if not tensors:
        return False
    return True if _should_record is None else bool(_should_record(list(tensors)))
