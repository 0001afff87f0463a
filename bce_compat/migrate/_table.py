"""The call table: every loss API the rewriter knows, with its parameters in positional order.

>>> API_BY_NAME["torch.nn.functional.binary_cross_entropy_with_logits"].params[:2]
('input', 'target')
>>> target_api(API_BY_NAME["torch.nn.BCELoss"], "paddle").qualified
'paddle.nn.BCELoss'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Api:
    """One callable: its framework, which loss it is, and its parameters in positional order."""

    framework: str  # "torch" | "paddle"; "keras" | "tf" | "optax" (these only --to portable)
    loss: str  # "with_logits" | "probs"; "either" for Keras (its from_logits flag decides)
    kind: str  # "function" | "module"
    qualified: str  # the public dotted name we emit
    params: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.loss, self.kind)


# Torch's and Paddle's documented signatures (seeds 000-003 for torch, 004 for Paddle).
_APIS = (
    Api("torch", "with_logits", "function", "torch.nn.functional.binary_cross_entropy_with_logits",
        ("input", "target", "weight", "size_average", "reduce", "reduction", "pos_weight")),
    Api("torch", "probs", "function", "torch.nn.functional.binary_cross_entropy",
        ("input", "target", "weight", "size_average", "reduce", "reduction")),
    Api("torch", "with_logits", "module", "torch.nn.BCEWithLogitsLoss",
        ("weight", "size_average", "reduce", "reduction", "pos_weight")),
    Api("torch", "probs", "module", "torch.nn.BCELoss",
        ("weight", "size_average", "reduce", "reduction")),
    Api("paddle", "with_logits", "function", "paddle.nn.functional.binary_cross_entropy_with_logits",
        ("logit", "label", "weight", "reduction", "pos_weight", "name")),
    Api("paddle", "probs", "function", "paddle.nn.functional.binary_cross_entropy",
        ("input", "label", "weight", "reduction", "name")),
    Api("paddle", "with_logits", "module", "paddle.nn.BCEWithLogitsLoss",
        ("weight", "reduction", "pos_weight", "name")),
    Api("paddle", "probs", "module", "paddle.nn.BCELoss",
        ("weight", "reduction", "name")),
    # Keras 3 (keras.io API pages), tf.nn (TF 2 API pages) and optax: migrated to bce_compat only.
    Api("keras", "either", "function", "keras.losses.binary_crossentropy",
        ("y_true", "y_pred", "from_logits", "label_smoothing", "axis")),
    Api("keras", "either", "module", "keras.losses.BinaryCrossentropy",
        ("from_logits", "label_smoothing", "axis", "reduction", "name", "dtype")),
    Api("tf", "with_logits", "function", "tensorflow.nn.sigmoid_cross_entropy_with_logits",
        ("labels", "logits", "name")),
    Api("tf", "with_logits", "function", "tensorflow.nn.weighted_cross_entropy_with_logits",
        ("labels", "logits", "pos_weight", "name")),
    Api("optax", "with_logits", "function", "optax.sigmoid_binary_cross_entropy", ("logits", "labels")),
)

# Other public spellings that resolve to the same callables.
_ALIASES = {
    "torch.nn.modules.loss.BCEWithLogitsLoss": "torch.nn.BCEWithLogitsLoss",
    "torch.nn.modules.loss.BCELoss": "torch.nn.BCELoss",
    "torch.nn.modules.BCEWithLogitsLoss": "torch.nn.BCEWithLogitsLoss",
    "torch.nn.modules.BCELoss": "torch.nn.BCELoss",
    "paddle.nn.functional.loss.binary_cross_entropy_with_logits":
        "paddle.nn.functional.binary_cross_entropy_with_logits",
    "paddle.nn.functional.loss.binary_cross_entropy": "paddle.nn.functional.binary_cross_entropy",
    "paddle.nn.layer.loss.BCEWithLogitsLoss": "paddle.nn.BCEWithLogitsLoss",
    "paddle.nn.layer.loss.BCELoss": "paddle.nn.BCELoss",
    "paddle.nn.layer.BCEWithLogitsLoss": "paddle.nn.BCEWithLogitsLoss",
    "paddle.nn.layer.BCELoss": "paddle.nn.BCELoss",
    "keras.metrics.binary_crossentropy": "keras.losses.binary_crossentropy",
    "tensorflow.keras.losses.binary_crossentropy": "keras.losses.binary_crossentropy",
    "tensorflow.keras.metrics.binary_crossentropy": "keras.losses.binary_crossentropy",
    "tensorflow.keras.losses.BinaryCrossentropy": "keras.losses.BinaryCrossentropy",
    "tensorflow.compat.v2.nn.sigmoid_cross_entropy_with_logits": "tensorflow.nn.sigmoid_cross_entropy_with_logits",
    "tensorflow.compat.v2.nn.weighted_cross_entropy_with_logits": "tensorflow.nn.weighted_cross_entropy_with_logits",
    "optax.losses.sigmoid_binary_cross_entropy": "optax.sigmoid_binary_cross_entropy",
}

API_BY_NAME: dict[str, Api] = {api.qualified: api for api in _APIS}
API_BY_NAME.update({alias: API_BY_NAME[name] for alias, name in _ALIASES.items()})

# Canonical meaning of each framework's parameter names (torch's names are the canonical ones).
_TO_CANONICAL = {
    "torch": {},
    "paddle": {"logit": "input", "label": "target"},
}

# Where ``--to portable`` sends each (framework, kind): the import to add, and the callee's dotted prefix;
# the callee keeps the source's own name, and its signature, so every argument stays as written.
# Module constructions become bce_compat's framework module classes (a torch.nn.Module, a paddle.nn.Layer,
# a keras.losses.Loss), so ``.to(device)``, checkpoints and ``model.compile`` keep working.
PORTABLE_TARGETS: dict[tuple[str, str], tuple[tuple[str, str | None, str | None], str]] = {
    ("torch", "function"): (("bce_compat", None, None), "bce_compat"),
    ("torch", "module"): (("bce_compat.torch", None, None), "bce_compat.torch"),
    ("paddle", "function"): (("bce_compat.dialects", "paddle", "bce_paddle"), "bce_paddle"),
    ("paddle", "module"): (("bce_compat.paddle", None, None), "bce_compat.paddle"),
    ("keras", "function"): (("bce_compat.dialects", "keras", "bce_keras"), "bce_keras"),
    ("keras", "module"): (("bce_compat.keras", None, None), "bce_compat.keras"),
    ("tf", "function"): (("bce_compat.dialects", "tf", "bce_tf"), "bce_tf"),
    ("optax", "function"): (("bce_compat.dialects", "optax", "bce_optax"), "bce_optax"),
}
CONVERTIBLE_BETWEEN = ("torch", "paddle")  # frameworks --to torch / --to paddle convert between


def target_api(source: Api, framework: str) -> Api:
    """The same loss and kind in ``framework`` ("torch" or "paddle"), for a torch or Paddle ``source``."""
    return next(api for api in _APIS if api.framework == framework and api.key == source.key)


def portable_callee(source: Api) -> str:
    """The dotted callee ``--to portable`` emits, e.g. ``bce_compat.paddle.BCELoss`` for Paddle's module.

    >>> portable_callee(API_BY_NAME["paddle.nn.functional.binary_cross_entropy"])
    'bce_paddle.binary_cross_entropy'
    >>> portable_callee(API_BY_NAME["tensorflow.keras.losses.BinaryCrossentropy"])
    'bce_compat.keras.BinaryCrossentropy'
    """
    return f"{PORTABLE_TARGETS[source.framework, source.kind][1]}.{source.qualified.rsplit('.', 1)[1]}"


def portable_import(source: Api) -> tuple[str, str | None, str | None]:
    """``(module, name, alias)`` of the import the portable callee needs: ``import module`` when name is None."""
    return PORTABLE_TARGETS[source.framework, source.kind][0]


def canonical(framework: str, param: str) -> str:
    """A parameter's framework-neutral name: Paddle's ``logit``/``label`` are torch's ``input``/``target``."""
    return _TO_CANONICAL[framework].get(param, param)


def params_by_canonical(api: Api) -> dict[str, str]:
    """``{canonical name: api's own name}``; e.g. Paddle's with-logits function maps "input" to "logit"."""
    return {canonical(api.framework, p): p for p in api.params}
