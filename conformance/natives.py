"""Each framework's own BCE op, called the way a user of that framework would call it.

``native_op(framework, modules, case)`` gives ``(label, fn)`` where ``fn(**arrays)`` calls the
framework's op, or raises ``Unsupported`` with the reason (that cell is then "skipped"): also
when the package holding the op is not installed (optax for JAX), with a ``pip install`` hint.
Where the op has no ``weight`` or ``reduction`` argument (tf.nn, keras, optax) the runner
applies them with the framework's own multiply and mean/sum, and the label says so.
A backend without a native contender here (NumPy, Dask, a plugin) simply has none.

>>> sorted(NATIVE_FRAMEWORKS), has_native("numpy")
(['jax', 'paddle', 'tensorflow', 'torch'], False)
"""

from __future__ import annotations

import importlib

_LEGACY = ("size_average", "reduce")


class Unsupported(Exception):
    """The native op has no way to express this case (the reason is the message)."""


def has_native(framework: str) -> bool:
    """Whether ``framework`` has a native contender in the suite."""
    return framework in _BUILDERS


def native_op(framework: str, modules: dict, case):
    """(label, fn) for ``framework``'s own op on ``case``; raises Unsupported with a reason."""
    if framework not in _BUILDERS:
        raise Unsupported(f"{framework} has no native BCE op in the suite")
    return _BUILDERS[framework](modules, case)


def _optional(module: str, install: str):
    """Import ``module`` (a native op's package), or raise Unsupported saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unsupported(f"{module} is not installed ({install})") from exc


def _torch(modules, case):
    torch = modules["torch"]
    return _torch_style_op("torch", torch.nn, torch.nn.functional, case)


def _paddle(modules, case):
    paddle = modules["paddle"]
    if any(k in case.kwargs for k in _LEGACY):
        raise Unsupported("paddle has no size_average/reduce arguments")
    return _torch_style_op("paddle", paddle.nn, paddle.nn.functional, case)


def _torch_style_op(prefix, nn, functional, case):
    """torch and Paddle share the shape of the API: ``nn.BCE*Loss(...)(x, y)`` or ``nn.functional.bce*(x, y, ...)``."""
    kwargs = dict(case.kwargs)
    if case.function in ("BCEWithLogitsLoss", "BCELoss"):
        cls = getattr(nn, case.function)

        def call_module(input, target, weight=None, pos_weight=None):
            extra = {"pos_weight": pos_weight} if case.logits else {}
            return cls(weight=weight, **extra, **kwargs)(input, target)

        return f"{prefix}.nn.{case.function}", call_module
    fn = getattr(functional, case.function)

    def call_function(input, target, weight=None, pos_weight=None):
        extra = {"pos_weight": pos_weight} if case.logits else {}
        return fn(input, target, weight=weight, **extra, **kwargs)

    return f"{prefix}.nn.functional.{case.function}", call_function


def _runner_reduction(case) -> str:
    if any(k in case.kwargs for k in _LEGACY):
        raise Unsupported("no size_average/reduce arguments")
    reduction = case.kwargs.get("reduction", "mean")
    if reduction not in ("none", "mean", "sum"):
        raise Unsupported(f"no reduction argument (the runner applies none/mean/sum, not {reduction!r})")
    return reduction


def _tensorflow(modules, case):
    tf = modules["tensorflow"]
    reduction = _runner_reduction(case)
    reduce = {"none": lambda v: v, "mean": tf.reduce_mean, "sum": tf.reduce_sum}[reduction]
    if case.logits:
        def call(input, target, weight=None, pos_weight=None):
            if pos_weight is None:
                loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=input)
            else:
                loss = tf.nn.weighted_cross_entropy_with_logits(labels=target, logits=input, pos_weight=pos_weight)
            return reduce(loss if weight is None else loss * weight)

        label = "tf.nn.sigmoid_cross_entropy_with_logits / weighted_cross_entropy_with_logits"
    else:
        keras = _optional("keras", "pip install keras")

        def call(input, target, weight=None, pos_weight=None):
            loss = keras.ops.binary_crossentropy(target, input, from_logits=False)
            return reduce(loss if weight is None else loss * weight)

        label = "keras.ops.binary_crossentropy"
    return f"{label} (weight, reduction by runner)", call


def _jax(modules, case):
    jax = modules["jax"]
    if not case.logits:
        raise Unsupported("optax has no probability-input BCE")
    if "pos_weight" in case.inputs:
        raise Unsupported("optax.sigmoid_binary_cross_entropy has no pos_weight")
    reduction = _runner_reduction(case)
    import jax.numpy as jnp

    optax = _optional("optax", "pip install optax, or pip install 'bce_compat[jax]'")
    reduce = {"none": lambda v: v, "mean": jnp.mean, "sum": jnp.sum}[reduction]

    def call(input, target, weight=None, pos_weight=None):
        loss = optax.sigmoid_binary_cross_entropy(input, target)
        return reduce(loss if weight is None else loss * weight)

    del jax
    return "optax.sigmoid_binary_cross_entropy (weight, reduction by runner)", call


_BUILDERS = {"torch": _torch, "paddle": _paddle, "tensorflow": _tensorflow, "jax": _jax}
NATIVE_FRAMEWORKS = tuple(_BUILDERS)
