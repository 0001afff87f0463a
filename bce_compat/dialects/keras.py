"""The Keras dialect: ``keras.losses.binary_crossentropy`` and ``BinaryCrossentropy``, on any backend.

Argument order is Keras': ``(y_true, y_pred)``, target first. The loss is the mean over
``axis`` of the element-wise loss, then Keras' reductions with ``sample_weight``. One
deliberate difference: probabilities are clamped as torch and Paddle do (log at -100), not
clipped to [1e-7, 1 - 1e-7] as Keras does (Keras gives 16.1 where the clamp gives 100).
With ``dtype=None`` the result keeps ``y_pred``'s dtype (Keras would use ``floatx()``).

For ``model.compile(loss=...)`` use ``bce_compat.keras.BinaryCrossentropy``, a
``keras.losses.Loss`` subclass; this module imports no framework.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from bce_compat import _loss, _options
from bce_compat._dispatch import backend_of, is_array
from bce_compat._types import Array, Weight
from bce_compat._validate import ArgNames, check_is_array
from bce_compat.backends._float_dtypes import dtype_name
from bce_compat.dialects import _keras_ragged

__all__ = ["binary_crossentropy", "BinaryCrossentropy"]

KerasReduction = Literal["sum_over_batch_size", "sum", "none", "mean", "mean_with_sample_weight"]
REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")
_NAMES = ArgNames(input="y_pred", target="y_true", weight="sample_weight")


def binary_crossentropy(
    y_true: Array, y_pred: Array, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> Array:
    """``keras.losses.binary_crossentropy``: the element-wise BCE, averaged over ``axis``.

    ``y_true`` is smoothed as y*(1 - label_smoothing) + label_smoothing/2. The result has
    ``y_pred``'s shape without ``axis``; a float ``y_true`` is cast to ``y_pred``'s dtype, as Keras does.

    Example (Keras' documented example; 0.916 and 0.714 there, from its 1e-7 clip):
        >>> import numpy as np
        >>> from bce_compat.dialects import keras as K
        >>> y_true = np.array([[0.0, 1.0], [0.0, 0.0]]); y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
        >>> [round(v, 3) for v in K.binary_crossentropy(y_true, y_pred).tolist()]
        [0.916, 0.714]
    """
    fn = "binary_crossentropy"
    check_is_array(fn, "y_true", y_true)
    check_is_array(fn, "y_pred", y_pred)
    options = _options.options(fn, label_smoothing=label_smoothing)
    kind = "logits" if from_logits else "probs"
    if _keras_ragged.is_ragged(y_true) or _keras_ragged.is_ragged(y_pred):  # tf.keras' ragged batches

        def elementwise(t: Array, p: Array) -> Array:
            return _loss.compute(kind, fn, _NAMES, p, _cast_like(fn, t, p), None, None, "none", options)

        return _keras_ragged.row_means(fn, y_true, y_pred, axis, elementwise)
    options["mean_axis"] = _check_axis(fn, axis, y_pred)
    y_true = _cast_like(fn, y_true, y_pred)
    return _loss.compute(kind, fn, _NAMES, y_pred, y_true, None, None, "none", options)


class BinaryCrossentropy:
    """``keras.losses.BinaryCrossentropy`` on any backend; call it as ``loss(y_true, y_pred, sample_weight=None)``.

    Reductions as Keras: "sum_over_batch_size" and "mean" (sum / number of per-sample losses),
    "sum", "mean_with_sample_weight" (sum / sum of ``sample_weight``), None or "none". A zero
    divisor gives 0 (Keras' ``divide_no_nan``). ``dtype`` (e.g. "float64"), when given, is the
    dtype both inputs and ``sample_weight`` are cast to; float16 and bfloat16 are then computed
    in float32, reduction included, and rounded once.

    Example (Keras' documented example, which prints 0.8654 and 0.243, truncated):
        >>> import numpy as np
        >>> from bce_compat.dialects import keras as K
        >>> y_true = np.array([[0.0, 1.0], [0.0, 0.0]]); y_pred = np.array([[-18.6, 0.51], [2.94, -12.8]])
        >>> bce = K.BinaryCrossentropy(from_logits=True)
        >>> round(float(bce(y_true, y_pred)), 4)
        0.8655
        >>> round(float(bce(y_true, y_pred, sample_weight=np.array([0.8, 0.2]))), 4)
        0.2436
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: KerasReduction | None = "sum_over_batch_size",
        name: str = "binary_crossentropy",
        dtype: str | None = None,
    ) -> None:
        self.from_logits = from_logits
        self.label_smoothing = _options.check_label_smoothing("BinaryCrossentropy", label_smoothing)
        self.axis = axis
        self.reduction = check_reduction("BinaryCrossentropy", reduction)
        self.name = name
        self.dtype = dtype

    def __call__(self, y_true: Array, y_pred: Array, sample_weight: Weight = None) -> Array:
        check_is_array("BinaryCrossentropy", "y_true", y_true)
        check_is_array("BinaryCrossentropy", "y_pred", y_pred)
        if self.dtype is not None:
            y_true, y_pred = (_astype(a, self.dtype) if is_array(a) else a for a in (y_true, y_pred))
        y_true, y_pred = same_rank(y_true, y_pred)
        half = _half_dtype(y_pred)
        if half is None:
            values = binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing, self.axis)
            return reduce_weighted(values, sample_weight, self.reduction)
        # float16/bfloat16: computed in float32 and rounded once (docs/contract.md §3)
        wide = _astype(y_pred, "float32")
        values = binary_crossentropy(y_true, wide, self.from_logits, self.label_smoothing, self.axis)
        return _as_result_dtype(reduce_weighted(values, sample_weight, self.reduction, weight_dtype=half), half)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name, "reduction": self.reduction, "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing, "axis": self.axis, "dtype": self.dtype,
        }

    def __repr__(self) -> str:
        return f"BinaryCrossentropy(from_logits={self.from_logits}, reduction={self.reduction!r})"


def check_reduction(fn: str, reduction: Any) -> Any:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: `reduction` must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduction!r}")
    return reduction


def same_rank(a: Array, b: Array) -> tuple[Array, Array]:
    """Keras' ``squeeze_or_expand_to_same_rank``: ranks differing by one, with a trailing 1, are matched."""
    ra, rb = len(a.shape), len(b.shape)
    if ra == rb + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if rb == 1 else (a[..., 0], b)
    if rb == ra + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if ra == 1 else (a, b[..., 0])
    return a, b


def reduce_weighted(values: Array, sample_weight: Weight, reduction: Any, weight_dtype: Any = None) -> Array:
    """Keras' ``reduce_weighted_values`` (without masks), written against the array API.

    ``weight_dtype``, when given, is the dtype Keras rounds ``sample_weight`` to (the loss'
    ``dtype``) before it is used in ``values``' own (wider) dtype.
    """
    backend = backend_of("BinaryCrossentropy", {"y_pred": values, "sample_weight": sample_weight})
    xp = backend.namespace(values)
    if is_array(sample_weight):
        if weight_dtype is not None:
            sample_weight = xp.astype(sample_weight, weight_dtype)
        sample_weight = xp.astype(sample_weight, values.dtype)
        values, sample_weight = same_rank(values, sample_weight)
    elif sample_weight is not None and weight_dtype is not None:
        # a number, rounded as Keras rounds it; still a number to the reduction (0-d)
        number = xp.full_like(xp.sum(values), float(sample_weight))
        sample_weight = xp.astype(xp.astype(number, weight_dtype), values.dtype)
    if sample_weight is not None:
        values = values * sample_weight
    if reduction in (None, "none") or tuple(values.shape) in ((), (0,)):
        return backend.as_result(values)
    total = xp.sum(values)
    if reduction == "sum":
        return backend.as_result(total)
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        if is_array(sample_weight):
            divisor = xp.sum(sample_weight)
        else:
            divisor = xp.full_like(total, float(sample_weight))
    else:
        divisor = xp.full_like(total, float(math.prod(values.shape)))
    zero = divisor == 0  # Keras' divide_no_nan: 0 when the divisor is 0
    quotient = total / xp.where(zero, xp.ones_like(divisor), divisor)
    return backend.as_result(xp.where(zero, xp.zeros_like(total), quotient))


def _check_axis(fn: str, axis: Any, y_pred: Array) -> int:
    ndim = len(getattr(y_pred, "shape", ()))
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"{fn}: `axis` must be an int in [{-ndim}, {ndim}) for `y_pred` of rank {ndim}; got {axis!r}")
    return axis


def _cast_like(fn: str, y_true: Array, y_pred: Array) -> Array:
    """A floating ``y_true`` of another dtype becomes ``y_pred``'s (bool/int ones are cast by the front end)."""
    if not (is_array(y_true) and is_array(y_pred)) or y_true.dtype == y_pred.dtype:
        return y_true
    xp = backend_of(fn, {"y_pred": y_pred, "y_true": y_true}).namespace(y_pred)
    if not (xp.isdtype(y_true.dtype, "real floating") and xp.isdtype(y_pred.dtype, "real floating")):
        return y_true
    return xp.astype(y_true, y_pred.dtype)


def _astype(a: Array, dtype: str) -> Array:
    """``a`` as the dtype named ``dtype`` (a ragged tensor: its values)."""

    def convert(values: Array) -> Array:
        backend = backend_of("BinaryCrossentropy", {"y_pred": values})
        xp = backend.namespace(values)
        target = getattr(xp, dtype, None)  # some namespaces lack float16 (array_api_compat's Dask)
        try:
            converted = xp.astype(values, target) if target is not None else values.astype(dtype)
            if xp.isdtype(converted.dtype, "real floating"):
                return converted
        except (TypeError, ValueError):  # not a dtype of the library (NumPy has no bfloat16 of its own)
            pass
        raise TypeError(f"BinaryCrossentropy: `dtype` must be a floating dtype that {backend.name} arrays have; "
                        f"got {dtype!r}")

    return _keras_ragged.with_flat_values(a, convert)


def _half_dtype(a: Array) -> Any:
    """``a``'s dtype if it is float16 or bfloat16, else None."""
    dtype = getattr(a, "dtype", None)
    return dtype if dtype_name(dtype) in ("float16", "bfloat16") else None


def _as_result_dtype(result: Array, dtype: Any) -> Array:
    """``result`` rounded once to ``dtype`` (a NumPy 0-d result stays a 0-d array)."""
    backend = backend_of("BinaryCrossentropy", {"y_pred": result})
    return backend.as_result(backend.namespace(result).astype(result, dtype))
