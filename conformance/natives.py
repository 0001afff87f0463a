"""Each framework's own BCE op, called the way a user of that framework would call it.

``native_op(contender, modules, case)`` gives ``(label, fn)`` where ``fn(**arrays)`` calls the
framework's op, or raises ``Unsupported`` with the reason (that cell is then "skipped"): also
when the package holding the op is not installed (optax for JAX, torchvision for torch's focal
loss), with a ``pip install`` hint. A contender is named after its framework and runs on that
framework's test bench; ``keras`` (``keras.losses``) runs on TensorFlow's. The arguments are
mapped by the same per-dialect mappers as our shim (``calls.py``). Where the op has no
``weight`` or ``reduction`` argument (tf.nn, keras.ops, optax) the runner applies them with
the framework's own multiply and mean/sum, and the label says so.
A backend without a native contender here (NumPy, Dask, a plugin) simply has none.

>>> sorted(NATIVE_FRAMEWORKS), has_native("numpy"), bench_of("keras")
(['jax', 'keras', 'paddle', 'tensorflow', 'torch'], False, 'tensorflow')
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bce_compat.conformance import calls
from bce_compat.conformance.calls import Call, Unsupported

if TYPE_CHECKING:
    from bce_compat.conformance.casedata import Case

__all__ = ["Unsupported", "NATIVE_FRAMEWORKS", "has_native", "bench_of", "contenders_for", "native_op"]

_LEGACY = ("size_average", "reduce")


def has_native(framework: str) -> bool:
    """Whether ``framework`` (a contender name) has a native op in the suite."""
    return framework in _BUILDERS


def bench_of(contender: str) -> str:
    """The test bench a contender runs on (its framework's; TensorFlow's for keras)."""
    return _BENCH.get(contender, contender)


def contenders_for(benches: Any) -> list[str]:
    """The native contenders whose bench is among ``benches``, in table order."""
    return [c for c in _BUILDERS if bench_of(c) in benches]


def native_op(framework: str, modules: dict[str, Any], case: Case) -> Call:
    """(label, fn) for contender ``framework``'s own op on ``case``; raises Unsupported with a reason."""
    if framework not in _BUILDERS:
        raise Unsupported(f"{framework} has no native BCE op in the suite")
    return _BUILDERS[framework](modules, case)


def _optional(module: str, install: str) -> Any:
    """Import ``module`` (a native op's package), or raise Unsupported saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unsupported(f"{module} is not installed ({install})") from exc


def _no_options(case: Case, framework: str) -> None:
    for key in calls.OPTION_KWARGS:
        if key in case.kwargs:
            raise Unsupported(f"{framework}'s op has no {key} argument")


def _torch(modules: dict[str, Any], case: Case) -> Call:
    torch = modules["torch"]
    if case.focal:
        ops = _optional("torchvision.ops", "pip install torchvision")
        return calls.focal_call(case, ops, "torchvision.ops")
    _no_options(case, "torch")
    return calls.torch_style_call(case, torch.nn.functional, torch.nn, "torch.nn.functional", "torch.nn")


def _paddle(modules: dict[str, Any], case: Case) -> Call:
    paddle = modules["paddle"]
    if case.focal:
        raise Unsupported("paddle.nn.functional.sigmoid_focal_loss weights soft labels differently "
                          "(-y*alpha*(1-p)^gamma*log p - ...), not torchvision's (1-p_t)^gamma")
    if any(k in case.kwargs for k in _LEGACY):
        raise Unsupported("paddle has no size_average/reduce arguments")
    _no_options(case, "paddle")
    return calls.torch_style_call(case, paddle.nn.functional, paddle.nn, "paddle.nn.functional", "paddle.nn")


def _runner_reduction(case: Case) -> str:
    if any(k in case.kwargs for k in _LEGACY):
        raise Unsupported("no size_average/reduce arguments")
    reduction = case.kwargs.get("reduction", "none" if case.focal else "mean")
    if reduction not in ("none", "mean", "sum"):
        raise Unsupported(f"no reduction argument (the runner applies none/mean/sum, not {reduction!r})")
    return reduction


def _elementwise_reduced(case: Case, call: Callable[..., Any], reduce_fns: dict[str, Callable[[Any], Any]],
                         label: str) -> Call:
    """A torch-style case on an element-wise op: weight and reduction applied by the runner."""
    reduce = reduce_fns[_runner_reduction(case)]

    def reduced(input, target, weight=None, pos_weight=None):
        loss = call(input, target, pos_weight=pos_weight)
        return reduce(loss if weight is None else loss * weight)

    return f"{label} (weight, reduction by runner)", reduced


def _tensorflow(modules: dict[str, Any], case: Case) -> Call:
    tf = modules["tensorflow"]
    if case.focal:
        raise Unsupported("tf.nn has no focal loss")
    _no_options(case, "tf.nn")
    if not case.logits:
        raise Unsupported("tf.nn has no probability-input BCE (Keras' is the keras column)")
    elementwise = case.reduction == "none" and "weight" not in case.inputs
    if elementwise and not any(k in case.kwargs for k in _LEGACY):
        return calls.tf_call(case, tf.nn, "tf.nn")
    unreduced = _unreduced(case)
    label, call = calls.tf_call(unreduced, tf.nn, "tf.nn")
    return _elementwise_reduced(case, call, {"none": lambda v: v, "mean": tf.reduce_mean, "sum": tf.reduce_sum}, label)


def _keras(modules: dict[str, Any], case: Case) -> Call:
    keras = _optional("keras", "pip install keras")
    try:
        return calls.keras_call(case, keras.losses, "keras.losses")
    except Unsupported as exc:  # a torch-style element-wise case: keras.ops, reduced by the runner
        if case.focal or "pos_weight" in case.inputs or "mean_axis" in case.kwargs:
            raise
        _no_options(case, "keras")
        if any(k in case.kwargs for k in _LEGACY):
            raise Unsupported("keras has no size_average/reduce arguments") from exc

        def call(input, target, pos_weight=None):
            return keras.ops.binary_crossentropy(target, input, from_logits=case.logits)

        ops = keras.ops
        return _elementwise_reduced(case, call, {"none": lambda v: v, "mean": ops.mean, "sum": ops.sum},
                                    "keras.ops.binary_crossentropy")


def _jax(modules: dict[str, Any], case: Case) -> Call:
    import jax.numpy as jnp

    optax = _optional("optax", "pip install optax, or pip install 'bce_compat[jax]'")
    if not case.focal:
        _no_options(case, "optax")
    if not case.logits:
        raise Unsupported("optax has no probability-input BCE")
    if "pos_weight" in case.inputs:
        raise Unsupported("optax.sigmoid_binary_cross_entropy has no pos_weight")
    if case.reduction == "none" and "weight" not in case.inputs:
        return calls.optax_call(case, optax, "optax")
    label, call = calls.optax_call(_unreduced(case), optax, "optax")
    return _elementwise_reduced(case, call, {"none": lambda v: v, "mean": jnp.mean, "sum": jnp.sum}, label)


def _unreduced(case: Case) -> Case:
    """``case`` as its element-wise loss: no reduction, no weight (the runner applies them)."""
    import dataclasses

    kwargs = {k: v for k, v in case.kwargs.items() if k != "reduction"}
    inputs = {k: v for k, v in case.inputs.items() if k != "weight"}
    return dataclasses.replace(case, kwargs={**kwargs, "reduction": "none"}, inputs=inputs)


_BUILDERS: dict[str, Callable[[dict[str, Any], Case], Call]] = {
    "torch": _torch, "paddle": _paddle, "tensorflow": _tensorflow, "keras": _keras, "jax": _jax}
_BENCH = {"keras": "tensorflow"}
NATIVE_FRAMEWORKS = tuple(_BUILDERS)
