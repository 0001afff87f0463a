"""Per-dialect argument mappers: a case (written in torch's terms) as a call in another signature.

A case names ``input``, ``target``, ``weight``, ``pos_weight`` and torch-style kwargs (plus the
options ``label_smoothing``, ``ignore_index``, Keras' ``mean_axis`` and the focal loss's
``alpha``/``gamma``). Each mapper takes the case and a module with that dialect's API (ours, or
the framework's own: ``bce_compat.dialects.keras`` or ``keras.losses``, ``bce_compat.dialects.tf``
or ``tf.nn``, ...) and returns ``(label, fn)`` where ``fn(input, target, weight=None,
pos_weight=None)`` makes the call in that dialect's argument order, or raises ``Unsupported``
when the dialect cannot express the case (that cell is then "skipped", with the reason).

>>> from bce_compat.conformance import casedata
>>> from bce_compat.dialects import keras
>>> case = casedata.load_cases(["keras-BinaryCrossentropy-logits-example-2"])[0]
>>> label, fn = keras_call(case, keras, "bce_compat.dialects.keras")
>>> import numpy as np
>>> y, x = np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[-18.6, 0.51], [2.94, -12.8]])
>>> label, round(float(fn(x, y)), 4)
('bce_compat.dialects.keras.BinaryCrossentropy', 0.8655)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # casedata imports this module; the CLI's parser imports this without the cases
    from bce_compat.conformance.casedata import Case

__all__ = ["OPTION_KWARGS", "Call", "Unsupported", "MAPPERS", "dialect_call", "torch_style_call", "focal_call",
           "keras_call", "tf_call", "optax_call"]

Call = tuple[str, Callable[..., Any]]  # (label, fn(input, target, weight=None, pos_weight=None))

# kwargs beyond a function's torch arguments: options, and Keras' per-sample mean over an axis
OPTION_KWARGS = ("label_smoothing", "ignore_index", "mean_axis")

_LEGACY = ("size_average", "reduce")
_FOCAL_KWARGS = ("alpha", "gamma", "reduction")
# canonical reduction -> Keras' name for the same number (after the per-sample mean over an axis)
_KERAS_REDUCTION = {"none": "none", "mean": "sum_over_batch_size", "sum": "sum"}


class Unsupported(Exception):
    """The dialect or op has no way to express this case (the reason is the message)."""


def dialect_call(case: Case, module: Any, dialect: str, prefix: str | None = None) -> Call:
    """(label, fn) of ``module``'s function for ``case`` in ``dialect``; Unsupported where the dialect cannot say it.

    ``prefix`` names the module in the label (default: ``bce_compat``'s own dialect module).
    """
    if prefix is None:
        prefix = "bce_compat" if dialect == "torch" else f"bce_compat.dialects.{dialect}"
    if dialect in MAPPERS:
        return MAPPERS[dialect](case, module, prefix)
    if case.focal and dialect == "torch":
        return focal_call(case, module, prefix)
    return torch_style_call(case, module, module, prefix)


def torch_style_call(case: Case, functional: Any, classes: Any, prefix: str, class_prefix: str | None = None) -> Call:
    """torch and Paddle: ``classes.BCE*Loss(...)(x, y)`` or ``functional.bce*(x, y, ...)``, kwargs as written.

    ``weight`` and ``pos_weight`` are passed only when the case gives them, so a function without
    those keywords is refused (TypeError) only by the cases that need them.
    """
    if case.focal:
        raise Unsupported(f"{prefix} has no sigmoid_focal_loss with torchvision's semantics")
    if "mean_axis" in case.kwargs:
        raise Unsupported(f"{prefix} has no per-sample mean over an axis (Keras' reduction)")
    kwargs = dict(case.kwargs)
    if case.function in ("BCEWithLogitsLoss", "BCELoss"):
        cls = getattr(classes, case.function)

        def call_module(input, target, weight=None, pos_weight=None):
            return cls(**_weights(case, weight, pos_weight), **kwargs)(input, target)

        return f"{class_prefix or prefix}.{case.function}", call_module
    fn = getattr(functional, case.function)

    def call_function(input, target, weight=None, pos_weight=None):
        return fn(input, target, **_weights(case, weight, pos_weight), **kwargs)

    return f"{prefix}.{case.function}", call_function


def _weights(case: Case, weight: Any, pos_weight: Any) -> dict[str, Any]:
    """The ``weight``/``pos_weight`` keywords the case gives (``pos_weight`` only with logits)."""
    given = {"weight": weight} if "weight" in case.inputs else {}
    if "pos_weight" in case.inputs and case.logits:
        given["pos_weight"] = pos_weight
    return given


def focal_call(case: Case, module: Any, prefix: str) -> Call:
    """torchvision's ``sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction)`` (ours: ``bce_compat``)."""
    if not case.focal:
        raise Unsupported(f"{prefix}.sigmoid_focal_loss is the focal loss only")
    _no_weights(case, prefix + ".sigmoid_focal_loss")
    kwargs = {k: case.kwargs[k] for k in _FOCAL_KWARGS if k in case.kwargs}
    fn = module.sigmoid_focal_loss

    def call(input, target, weight=None, pos_weight=None):
        return fn(input, target, **kwargs)

    return f"{prefix}.sigmoid_focal_loss", call


def keras_call(case: Case, module: Any, prefix: str) -> Call:
    """Keras: ``binary_crossentropy(y_true, y_pred, from_logits, label_smoothing, axis)`` or the class.

    With ``mean_axis`` the case is Keras' own loss: the function (reduction "none", no weight)
    or ``BinaryCrossentropy(reduction=...)`` with ``sample_weight`` (a weight of size 1 along
    the axis, one per sample). Without it, only a plain mean is the same number in Keras (the
    mean of the per-sample means), so only "mean" cases of rank >= 1 map.
    """
    _plain_bce(case, prefix, allow=("label_smoothing", "mean_axis"))
    if "pos_weight" in case.inputs:
        raise Unsupported(f"{prefix} has no pos_weight")
    shapes = case.shapes()
    rank = len(shapes["input"])
    axis = int(case.kwargs.get("mean_axis", -1))
    if rank == 0:
        raise Unsupported(f"{prefix} needs y_pred of rank >= 1 (it averages over an axis)")
    if "mean_axis" not in case.kwargs:
        if case.reduction != "mean":
            raise Unsupported(f"{prefix}: only the mean over all elements is a Keras reduction "
                              "of the element-wise loss")
        if 0 in shapes["input"]:
            raise Unsupported(f"{prefix}: the mean of nothing is 0 in Keras (divide_no_nan), NaN in torch")
    sample_weight = _sample_weight(case, shapes, axis % rank, prefix)
    options: dict[str, Any] = {"from_logits": case.logits}  # the others only when the case sets them
    if "label_smoothing" in case.kwargs:
        options["label_smoothing"] = float(case.kwargs["label_smoothing"])
    if "mean_axis" in case.kwargs:
        options["axis"] = axis
    if "mean_axis" in case.kwargs and case.reduction == "none" and "weight" not in case.inputs:
        fn = module.binary_crossentropy

        def call_function(input, target, weight=None, pos_weight=None):
            return fn(target, input, **options)

        return f"{prefix}.binary_crossentropy", call_function
    loss = module.BinaryCrossentropy(reduction=_KERAS_REDUCTION[case.reduction], **options)

    def call_class(input, target, weight=None, pos_weight=None):
        if "weight" not in case.inputs:
            return loss(target, input)
        return loss(target, input, sample_weight=sample_weight(weight))

    return f"{prefix}.BinaryCrossentropy", call_class


def tf_call(case: Case, module: Any, prefix: str) -> Call:
    """``tf.nn``: ``sigmoid_cross_entropy_with_logits(labels, logits)``, ``weighted_...(labels, logits, pos_weight)``.
    """
    _plain_bce(case, prefix)
    _elementwise(case, prefix)
    if not case.logits:
        raise Unsupported(f"{prefix} has no probability-input BCE")
    if "pos_weight" in case.inputs:
        fn = module.weighted_cross_entropy_with_logits

        def weighted(input, target, weight=None, pos_weight=None):
            return fn(labels=target, logits=input, pos_weight=pos_weight)

        return f"{prefix}.weighted_cross_entropy_with_logits", weighted
    sigmoid = module.sigmoid_cross_entropy_with_logits

    def plain(input, target, weight=None, pos_weight=None):
        return sigmoid(labels=target, logits=input)

    return f"{prefix}.sigmoid_cross_entropy_with_logits", plain


def optax_call(case: Case, module: Any, prefix: str) -> Call:
    """optax: ``sigmoid_binary_cross_entropy(logits, labels)``, ``sigmoid_focal_loss(logits, labels, alpha, gamma)``."""
    if case.focal:
        _no_weights(case, prefix + ".sigmoid_focal_loss")
        _elementwise(case, prefix)
        alpha, gamma = case.options["focal"]
        fn = module.sigmoid_focal_loss

        def focal(input, target, weight=None, pos_weight=None):
            return fn(input, target, alpha=None if alpha < 0 else alpha, gamma=gamma)  # optax: None = no alpha_t

        return f"{prefix}.sigmoid_focal_loss", focal
    _plain_bce(case, prefix)
    _elementwise(case, prefix)
    if not case.logits:
        raise Unsupported(f"{prefix} has no probability-input BCE")
    if "pos_weight" in case.inputs:
        raise Unsupported(f"{prefix}.sigmoid_binary_cross_entropy has no pos_weight")
    fn = module.sigmoid_binary_cross_entropy

    def call(input, target, weight=None, pos_weight=None):
        return fn(input, target)

    return f"{prefix}.sigmoid_binary_cross_entropy", call


def _plain_bce(case: Case, prefix: str, allow: tuple[str, ...] = ()) -> None:
    """Raise Unsupported for the focal loss, legacy arguments or options the dialect does not have."""
    if case.focal:
        raise Unsupported(f"{prefix} has no focal loss")
    for key in (*_LEGACY, *OPTION_KWARGS):
        if key in case.kwargs and key not in allow:
            raise Unsupported(f"{prefix} has no {key} argument")


def _elementwise(case: Case, prefix: str) -> None:
    if case.reduction != "none" or "weight" in case.inputs:
        raise Unsupported(f"{prefix} is element-wise: no weight or reduction")


def _no_weights(case: Case, name: str) -> None:
    given = [k for k in ("weight", "pos_weight") if k in case.inputs]
    if given:
        raise Unsupported(f"{name} has no {given[0]} argument")


def _sample_weight(case: Case, shapes: dict[str, Any], axis: int, prefix: str) -> Callable[[Any], Any]:
    """A function weight -> Keras ``sample_weight``: the weight without ``axis`` (it must be 1 there)."""
    if "weight" not in case.inputs or shapes["weight"] is None:
        return lambda weight: weight  # None, or a Python number
    shape = shapes["weight"]
    rank = len(shapes["input"])
    if len(shape) != rank or shape[axis] != 1:
        raise Unsupported(f"{prefix}: sample_weight is one weight per sample (weight of size 1 along the axis)")
    index = (slice(None),) * axis + (0,)
    return lambda weight: weight[index]


MAPPERS: dict[str, Callable[[Case, Any, str], Call]] = {"keras": keras_call, "tf": tf_call, "optax": optax_call}
