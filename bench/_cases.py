"""What the sweep measures: for each family, our call and its contender on the same data.

A family is (framework, entry point, dtype, direction). The data are logits ``[N/64, 64]``
(standard normal × 3), targets in {0, 1}, ``pos_weight [64]``, reduction "mean"; each entry
point changes one thing (see ``ENTRIES``). Only public bce_compat API is called, so the sweep
measures whatever path runs, before and after a kernel rewrite.

>>> Family("torch", "label_smoothing", "bfloat16", "fwd+bwd").label
'torch · label_smoothing · bfloat16 · fwd+bwd'
>>> not_applicable(Family("numpy", "logits", "float32", "fwd+bwd"))
'NumPy has no autograd'
>>> data = make_data(2**7, "float32")
>>> data.x.shape, data.p.shape, data.x_t.T.shape, data.x_t.T.flags.c_contiguous
((2, 64), (64,), (2, 64), False)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DTYPES = ("float16", "bfloat16", "float32", "float64")
ENTRIES = {
    "logits": "binary_cross_entropy_with_logits(x, y, pos_weight=p)",
    "probs": "binary_cross_entropy(sigmoid(x), y): probabilities, no pos_weight",
    "label_smoothing": "binary_cross_entropy_with_logits(x, y, pos_weight=p, label_smoothing=0.1)",
    "ignore_index": "binary_cross_entropy_with_logits(x, y, pos_weight=p, ignore_index=-100), 10 % of y = -100",
    "focal": 'sigmoid_focal_loss(x, y, alpha=0.25, gamma=2, reduction="mean"), no pos_weight',
    "transposed": "binary_cross_entropy_with_logits(x, y, pos_weight=p), x and y transposed views (not contiguous)",
}
# The order the sweep runs them in (and imports them in: torch, then paddle, then tensorflow).
FRAMEWORKS = ("torch", "numpy", "torch.compile", "paddle", "tensorflow")
DIRECTIONS = ("fwd", "fwd+bwd")
COMPILE_FROM = 12  # the torch.compile contender runs from 2**12 elements (issue 26, item 2)
SMOOTHING = 0.1
IGNORE_INDEX = -100.0
IGNORED_FRACTION = 0.1
FLOOR = "floor"  # the memory-floor line: reading x and y once, against torch's op


@dataclass(frozen=True)
class Family:
    framework: str
    entry: str
    dtype: str
    direction: str

    @property
    def label(self) -> str:
        return f"{self.framework} · {self.entry} · {self.dtype} · {self.direction}"


@dataclass
class Case:
    """Two zero-argument callables on the same tensors, and what the contender is."""

    ours: Callable[[], object]
    theirs: Callable[[], object]
    contender: str
    compile_seconds: float | None = None  # torch.compile: the first call (compile and run)


class Unsupported(Exception):
    """The family cannot run here (a framework without a kernel for the dtype, a failed compile)."""


def not_applicable(family: Family) -> str | None:
    """Why a family is not part of the sweep at all, or None."""
    if family.framework == "numpy" and family.direction != "fwd":
        return "NumPy has no autograd"
    if family.framework == "numpy" and family.dtype == "bfloat16":
        return "NumPy has no bfloat16"
    if family.framework == "torch.compile" and family.entry != "logits":
        return "the torch.compile contender compiles F.binary_cross_entropy_with_logits only"
    if family.framework == "tensorflow" and family.entry == "transposed":
        return "TensorFlow tensors have no strided views (tf.transpose copies)"
    return None


@dataclass(frozen=True)
class Data:
    """NumPy inputs of one size, float32 (float64 for float64); each framework casts them.

    ``q`` = sigmoid(x) (the probabilities), ``y_ignore`` = y with some elements set to
    ``IGNORE_INDEX``, ``x_t``/``y_t`` = C-contiguous copies of the transposes, so that
    ``x_t.T`` is x's values in a non-contiguous layout.
    """

    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    q: np.ndarray
    y_ignore: np.ndarray
    x_t: np.ndarray
    y_t: np.ndarray


def make_data(n: int, dtype: str, seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    base = np.float64 if dtype == "float64" else np.float32
    x = (rng.standard_normal((max(n // 64, 1), min(n, 64))) * 3).astype(base)
    y = (rng.random(x.shape) > 0.5).astype(base)
    p = (rng.random(x.shape[-1]) + 0.5).astype(base)
    q = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(base)
    y_ignore = np.where(rng.random(x.shape) < IGNORED_FRACTION, IGNORE_INDEX, y).astype(base)
    return Data(x, y, p, q, y_ignore, np.ascontiguousarray(x.T), np.ascontiguousarray(y.T))


# entry -> (differentiated input, target); transposed reads x_t and y_t as transposed views
_INPUTS = {
    "logits": ("x", "y"),
    "probs": ("q", "y"),
    "label_smoothing": ("x", "y"),
    "ignore_index": ("x", "y_ignore"),
    "focal": ("x", "y"),
    "transposed": ("x_t", "y_t"),
}


def _ours(bce) -> dict[str, Callable]:
    """Our entry points, torch's signature (it takes every backend's arrays)."""
    logits = bce.binary_cross_entropy_with_logits
    return {
        "logits": lambda a, t, p: logits(a, t, pos_weight=p),
        "probs": lambda a, t, p: bce.binary_cross_entropy(a, t),
        "label_smoothing": lambda a, t, p: logits(a, t, pos_weight=p, label_smoothing=SMOOTHING),
        "ignore_index": lambda a, t, p: logits(a, t, pos_weight=p, ignore_index=IGNORE_INDEX),
        "focal": lambda a, t, p: bce.sigmoid_focal_loss(a, t, reduction="mean"),
        "transposed": lambda a, t, p: logits(a, t, pos_weight=p),
    }


def _torch_theirs(torch) -> dict[str, tuple[Callable, str]]:
    f = torch.nn.functional

    def ignore_index(a, t, p):
        return f.binary_cross_entropy_with_logits(a, t, pos_weight=p, reduction="none")[t != IGNORE_INDEX].mean()

    def focal(a, t, p):  # torchvision.ops.sigmoid_focal_loss, alpha=0.25, gamma=2, reduction="mean"
        prob = torch.sigmoid(a)
        ce_loss = f.binary_cross_entropy_with_logits(a, t, reduction="none")
        p_t = prob * t + (1 - prob) * (1 - t)
        loss = ce_loss * ((1 - p_t) ** 2)
        alpha_t = 0.25 * t + (1 - 0.25) * (1 - t)
        return (alpha_t * loss).mean()

    def logits(a, t, p):
        return f.binary_cross_entropy_with_logits(a, t, pos_weight=p)

    return {
        "logits": (logits, "F.binary_cross_entropy_with_logits"),
        "probs": (lambda a, t, p: f.binary_cross_entropy(a, t), "F.binary_cross_entropy"),
        "label_smoothing": (lambda a, t, p: logits(a, t * (1 - SMOOTHING) + SMOOTHING / 2, p),
                            "F.binary_cross_entropy_with_logits(x, y*0.9+0.05)"),
        "ignore_index": (ignore_index, "F.binary_cross_entropy_with_logits(reduction='none')[y != -100].mean()"),
        "focal": (focal, "torchvision's sigmoid_focal_loss formula in torch ops"),
        "transposed": (logits, "F.binary_cross_entropy_with_logits on the same views"),
    }  # fmt: skip


def _paddle_theirs(paddle) -> dict[str, tuple[Callable, str]]:
    f = paddle.nn.functional

    def logits(a, t, p):
        return f.binary_cross_entropy_with_logits(a, t, pos_weight=p)

    def ignore_index(a, t, p):
        loss = f.binary_cross_entropy_with_logits(a, t, pos_weight=p, reduction="none")
        return paddle.masked_select(loss, t != IGNORE_INDEX).mean()

    return {
        "logits": (logits, "paddle.nn.functional.binary_cross_entropy_with_logits"),
        "probs": (lambda a, t, p: f.binary_cross_entropy(a, t), "paddle.nn.functional.binary_cross_entropy"),
        "label_smoothing": (lambda a, t, p: logits(a, t * (1 - SMOOTHING) + SMOOTHING / 2, p),
                            "F.binary_cross_entropy_with_logits(x, y*0.9+0.05) (Paddle)"),
        "ignore_index": (ignore_index, "masked_select(F.binary_cross_entropy_with_logits(reduction='none'), y != -100).mean()"),
        "focal": (lambda a, t, p: f.sigmoid_focal_loss(a, t, reduction="mean"), "paddle.nn.functional.sigmoid_focal_loss"),
        "transposed": (logits, "paddle.nn.functional.binary_cross_entropy_with_logits on the same views"),
    }  # fmt: skip


def _tf_theirs(tf) -> dict[str, tuple[Callable, str]]:
    def logits(a, t, p):
        return tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(t, a, p))

    def probs(a, t, p):  # torch's semantics: each log clamped at -100
        return -tf.reduce_mean(t * tf.maximum(tf.math.log(a), -100.0) + (1 - t) * tf.maximum(tf.math.log1p(-a), -100.0))

    def ignore_index(a, t, p):
        loss = tf.nn.weighted_cross_entropy_with_logits(t, a, p)
        return tf.reduce_mean(tf.boolean_mask(loss, tf.not_equal(t, IGNORE_INDEX)))

    def focal(a, t, p):  # torchvision's formula in TF ops
        prob = tf.sigmoid(a)
        ce_loss = tf.nn.sigmoid_cross_entropy_with_logits(t, a)
        p_t = prob * t + (1 - prob) * (1 - t)
        loss = ce_loss * ((1 - p_t) ** 2)
        alpha_t = 0.25 * t + (1 - 0.25) * (1 - t)
        return tf.reduce_mean(alpha_t * loss)

    return {
        "logits": (logits, "reduce_mean(tf.nn.weighted_cross_entropy_with_logits)"),
        "probs": (probs, "reduce_mean of y log q + (1-y) log1p(-q), logs clamped at -100, TF ops"),
        "label_smoothing": (lambda a, t, p: logits(a, t * (1 - SMOOTHING) + SMOOTHING / 2, p),
                            "reduce_mean(weighted_cross_entropy_with_logits(y*0.9+0.05, x, p))"),
        "ignore_index": (ignore_index, "reduce_mean(boolean_mask(weighted_cross_entropy_with_logits, y != -100))"),
        "focal": (focal, "torchvision's sigmoid_focal_loss formula in TF ops"),
    }  # fmt: skip


class _Torch:
    """torch tensors of the data: the inputs as given, and differentiable copies (leaves)."""

    def __init__(self, data: Data, dtype: str):
        import torch

        self.torch = torch
        self.data, self.dtype = data, getattr(torch, dtype)

    def tensor(self, name: str):
        tensor = self.torch.from_numpy(getattr(self.data, name)).to(self.dtype)
        return tensor.t() if name.endswith("_t") else tensor

    def leaf(self, name: str):
        tensor = self.torch.from_numpy(getattr(self.data, name)).to(self.dtype).clone()
        return (tensor.t() if name.endswith("_t") else tensor).requires_grad_(True)

    def forward(self, loss, a, t, p):
        return lambda: loss(a, t, p)

    def forward_backward(self, loss, a, t, p):
        def run():
            loss(a, t, p).backward()
            a.grad = None

        return run


class _Paddle:
    def __init__(self, data: Data, dtype: str):
        import paddle

        self.paddle = paddle
        self.data, self.dtype = data, dtype

    def tensor(self, name: str):
        tensor = self.paddle.to_tensor(getattr(self.data, name)).astype(self.dtype)
        return tensor.t() if name.endswith("_t") else tensor

    def leaf(self, name: str):
        tensor = self.tensor(name)
        tensor.stop_gradient = False  # a tensor no gradient flows into: a leaf
        return tensor

    def forward(self, loss, a, t, p):
        return lambda: loss(a, t, p)

    def forward_backward(self, loss, a, t, p):
        def run():
            loss(a, t, p).backward()
            a.clear_gradient(False)  # released, as torch's grad = None

        return run


class _TensorFlow:
    def __init__(self, data: Data, dtype: str):
        import tensorflow as tf

        self.tf = tf
        self.data, self.dtype = data, getattr(tf, dtype)

    def tensor(self, name: str):
        return self.tf.cast(self.tf.constant(getattr(self.data, name)), self.dtype)

    def leaf(self, name: str):
        return self.tf.Variable(self.tensor(name))

    def forward(self, loss, a, t, p):
        return lambda: loss(a, t, p).numpy()

    def forward_backward(self, loss, a, t, p):
        tf = self.tf

        def run():
            with tf.GradientTape() as tape:
                value = loss(a, t, p)
            return tape.gradient(value, a).numpy()

        return run


class _NumPy:
    def __init__(self, data: Data, dtype: str):
        self.data, self.dtype = data, dtype

    def tensor(self, name: str):
        array = getattr(self.data, name).astype(self.dtype, copy=False)
        return array.T if name.endswith("_t") else array


def _pair(kit, ours, theirs, family: Family):
    """The two callables of one direction, each on its own differentiable copy of the input."""
    a_name, t_name = _INPUTS[family.entry]
    t, p = kit.tensor(t_name), kit.tensor("p")
    if family.direction == "fwd":
        a = kit.tensor(a_name)
        return kit.forward(ours, a, t, p), kit.forward(theirs, a, t, p)
    return (kit.forward_backward(ours, kit.leaf(a_name), t, p),
            kit.forward_backward(theirs, kit.leaf(a_name), t, p))  # fmt: skip


def build(family: Family, data: Data) -> Case:
    """The family's two callables on ``data``; Unsupported where it cannot run."""
    import bce_compat

    if family.framework == FLOOR:
        return _floor(data, family.dtype)
    ours = _ours(bce_compat)[family.entry]
    if family.framework == "torch":
        import torch

        theirs, name = _torch_theirs(torch)[family.entry]
        return Case(*_pair(_Torch(data, family.dtype), ours, theirs, family), name)
    if family.framework == "numpy":
        import torch

        theirs, name = _torch_theirs(torch)[family.entry]
        arrays = _NumPy(data, family.dtype)
        a_name, t_name = _INPUTS[family.entry]
        a, t, p = arrays.tensor(a_name), arrays.tensor(t_name), arrays.tensor("p")
        ta, tt, tp = (torch.from_numpy(v) for v in (a, t, p))  # the same memory, as torch tensors
        return Case(lambda: ours(a, t, p), lambda: theirs(ta, tt, tp), f"{name}, on the same memory")
    if family.framework == "torch.compile":
        return _compiled(family, data, ours)
    if family.framework == "paddle":
        import paddle

        from bce_compat.dialects import paddle as dialect

        theirs, name = _paddle_theirs(paddle)[family.entry]
        if family.entry in ("logits", "label_smoothing", "ignore_index", "transposed", "probs"):
            ours = _paddle_dialect(dialect)[family.entry]  # what a Paddle user calls
        return Case(*_pair(_Paddle(data, family.dtype), ours, theirs, family), name)
    if family.framework == "tensorflow":
        import tensorflow as tf

        theirs, name = _tf_theirs(tf)[family.entry]
        return Case(*_pair(_TensorFlow(data, family.dtype), ours, theirs, family), name)
    raise ValueError(f"framework must be one of {FRAMEWORKS}, got {family.framework!r}")


def _paddle_dialect(dialect) -> dict[str, Callable]:
    logits = dialect.binary_cross_entropy_with_logits
    return {
        "logits": lambda a, t, p: logits(a, t, pos_weight=p),
        "probs": lambda a, t, p: dialect.binary_cross_entropy(a, t),
        "label_smoothing": lambda a, t, p: logits(a, t, pos_weight=p, label_smoothing=SMOOTHING),
        "ignore_index": lambda a, t, p: logits(a, t, pos_weight=p, ignore_index=IGNORE_INDEX),
        "transposed": lambda a, t, p: logits(a, t, pos_weight=p),
    }


def _compiled(family: Family, data: Data, ours) -> Case:
    """Ours on torch tensors against ``torch.compile(F.binary_cross_entropy_with_logits)``.

    One compile per dtype, size and direction (``dynamic=False``: a kernel specialised to the
    shape, as Inductor is fastest); ``torch.compiler.reset()`` first so that the compiled
    function never reaches dynamo's recompile limit. Inductor's on-disk cache makes reruns fast.
    """
    import torch

    f = torch.nn.functional
    torch.compiler.reset()
    compiled = torch.compile(lambda a, t, p: f.binary_cross_entropy_with_logits(a, t, pos_weight=p), dynamic=False)
    ours_call, theirs_call = _pair(_Torch(data, family.dtype), ours, compiled, family)
    start = time.perf_counter()
    try:
        theirs_call()
    except Exception as exc:  # Inductor without a kernel for this dtype, or no C++ compiler
        raise Unsupported(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from exc
    return Case(ours_call, theirs_call, "torch.compile(F.binary_cross_entropy_with_logits, dynamic=False)",
                compile_seconds=time.perf_counter() - start)  # fmt: skip


def _floor(data: Data, dtype: str) -> Case:
    """The memory floor: ``x.sum()`` and ``y.sum()`` (one read of each input, vectorised, on
    torch's default threads), against torch's op on the same tensors."""
    import torch

    kit = _Torch(data, dtype)
    x, y, p = kit.tensor("x"), kit.tensor("y"), kit.tensor("p")
    f = torch.nn.functional

    def read():
        x.sum()
        y.sum()

    return Case(read, lambda: f.binary_cross_entropy_with_logits(x, y, pos_weight=p), "F.binary_cross_entropy_with_logits")
