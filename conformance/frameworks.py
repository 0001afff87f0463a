"""Each array library as a test bench sees it: make arrays from NumPy, read them back, differentiate.

Importing several frameworks must follow torch -> paddle -> tensorflow (TF before Paddle
segfaults); ``import_installed`` does that and is the one place that imports them.

>>> fw = get("numpy"); fw.to_numpy(fw.asarray([1.0, 2.0], "float32")).tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

# The safe import order; numpy first because the others may import it anyway.
IMPORT_ORDER = ("numpy", "torch", "paddle", "tensorflow", "jax", "dask", "array_api_strict")
ENV_SELECT = "BCE_COMPAT_BACKENDS"  # e.g. "numpy,torch" narrows every run to those


@dataclass(frozen=True)
class Framework:
    """How to put NumPy data into one library, read it back, and take gradients there."""

    name: str
    asarray: Callable  # (numpy array or list, dtype name) -> the library's array
    to_numpy: Callable  # the library's array -> numpy array (float64 for half precision)
    value_and_grad: Callable | None  # (fn, args, wrt indices) -> (value, [grads as numpy])
    dtypes: tuple = ("float16", "bfloat16", "float32", "float64")


def import_installed(names=IMPORT_ORDER) -> dict[str, object]:
    """Import the installed frameworks among ``names`` in the safe order; name -> module."""
    modules = {}
    for name in IMPORT_ORDER:
        if name not in names:
            continue
        try:
            modules[name] = importlib.import_module(name)
        except Exception:  # not installed, or broken: the framework is simply absent
            continue
    return modules


def selected_names() -> tuple[str, ...]:
    """The frameworks a run should use: ``$BCE_COMPAT_BACKENDS`` if set, else all known."""
    raw = os.environ.get(ENV_SELECT, "").strip()
    return tuple(n.strip() for n in raw.split(",") if n.strip()) if raw else IMPORT_ORDER


def available(names=None) -> dict[str, Framework]:
    """The installed frameworks (in import order), as ``Framework`` objects."""
    modules = import_installed(selected_names() if names is None else names)
    return {name: _BUILDERS[name](mod) for name, mod in modules.items()}


def get(name: str) -> Framework:
    frameworks = available((name,))
    if name not in frameworks:
        raise ModuleNotFoundError(f"framework {name!r} is not installed")
    return frameworks[name]


def _np_dtype(dtype: str):
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def _numpy(np_):
    def asarray(values, dtype):
        return np.asarray(values, dtype=_np_dtype(dtype))

    def to_numpy(a):
        a = np.asarray(a)
        return a.astype(np.float64) if a.dtype.itemsize < 4 else a

    return Framework("numpy", asarray, to_numpy, None, ("float16", "float32", "float64"))


def _torch(torch):
    def asarray(values, dtype):
        return torch.as_tensor(np.asarray(values, dtype=np.float64)).to(getattr(torch, dtype))

    def to_numpy(t):
        t = t.detach().cpu()
        return (t.double() if t.dtype in (torch.float16, torch.bfloat16) else t).numpy()

    def value_and_grad(fn, args, wrt):
        args = [a.clone().requires_grad_(True) if i in wrt else a for i, a in enumerate(args)]
        value = fn(*args)
        grads = torch.autograd.grad(value.sum(), [args[i] for i in wrt], allow_unused=True)
        return value, [None if g is None else to_numpy(g) for g in grads]

    return Framework("torch", asarray, to_numpy, value_and_grad)


def _paddle(paddle):
    def asarray(values, dtype):
        return paddle.to_tensor(np.asarray(values, dtype=np.float64)).astype(dtype)

    def to_numpy(t):
        if t.dtype in (paddle.float16, paddle.bfloat16):
            t = t.astype("float64")
        return np.asarray(t.numpy())

    def value_and_grad(fn, args, wrt):
        args = [a.detach() if hasattr(a, "detach") else a for a in args]
        for i in wrt:
            args[i].stop_gradient = False
        value = fn(*args)
        grads = paddle.grad(value.sum(), [args[i] for i in wrt], allow_unused=True)
        return value, [None if g is None else to_numpy(g) for g in grads]

    return Framework("paddle", asarray, to_numpy, value_and_grad)


def _tensorflow(tf):
    def asarray(values, dtype):
        return tf.cast(tf.constant(np.asarray(values, dtype=np.float64)), getattr(tf, dtype))

    def to_numpy(t):
        if t.dtype in (tf.float16, tf.bfloat16):
            t = tf.cast(t, tf.float64)
        return np.asarray(t.numpy())

    def value_and_grad(fn, args, wrt):
        with tf.GradientTape() as tape:
            for i in wrt:
                tape.watch(args[i])
            value = fn(*args)
            total = tf.reduce_sum(value)
        grads = tape.gradient(total, [args[i] for i in wrt])
        return value, [None if g is None else to_numpy(g) for g in grads]

    return Framework("tensorflow", asarray, to_numpy, value_and_grad)


def _jax(jax):
    import jax.numpy as jnp

    def asarray(values, dtype):
        return jnp.asarray(np.asarray(values, dtype=np.float64), dtype=getattr(jnp, dtype))

    def to_numpy(a):
        return np.asarray(a.astype(jnp.float64) if a.dtype in (jnp.float16, jnp.bfloat16) else a)

    def value_and_grad(fn, args, wrt):
        value = fn(*args)
        grads = jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(wrt))(*args)
        return value, [to_numpy(g) for g in grads]

    # float64 exists only with jax_enable_x64; otherwise JAX silently makes float32 arrays.
    dtypes = ("float16", "bfloat16", "float32") + (("float64",) if jax.config.jax_enable_x64 else ())
    return Framework("jax", asarray, to_numpy, value_and_grad, dtypes)


def _dask(dask):
    import dask.array as da

    def asarray(values, dtype):
        return da.from_array(np.asarray(values, dtype=_np_dtype(dtype)), chunks=-1)

    def to_numpy(a):
        a = np.asarray(a.compute() if hasattr(a, "compute") else a)
        return a.astype(np.float64) if a.dtype.itemsize < 4 else a

    return Framework("dask", asarray, to_numpy, None, ("float16", "float32", "float64"))


def _array_api_strict(xps):
    def asarray(values, dtype):
        return xps.asarray(np.asarray(values, dtype=np.float64), dtype=getattr(xps, dtype))

    def to_numpy(a):
        return np.from_dlpack(a)

    return Framework("array_api_strict", asarray, to_numpy, None, ("float32", "float64"))


_BUILDERS = {
    "numpy": _numpy,
    "torch": _torch,
    "paddle": _paddle,
    "tensorflow": _tensorflow,
    "jax": _jax,
    "dask": _dask,
    "array_api_strict": _array_api_strict,
}


def asarray_keep_dtype(name: str, values: np.ndarray):
    """``values`` (any NumPy dtype, e.g. int64 or bool labels) as framework ``name``'s array, dtype kept.

    >>> asarray_keep_dtype("numpy", np.array([1, 0])).dtype.name
    'int64'
    """
    modules = import_installed((name,))
    mod = modules[name]
    if name == "numpy":
        return np.asarray(values)
    if name == "torch":
        return mod.as_tensor(values)
    if name == "paddle":
        return mod.to_tensor(values)
    if name == "tensorflow":
        return mod.constant(values)
    if name == "jax":
        import jax.numpy as jnp

        return jnp.asarray(values)
    if name == "dask":
        import dask.array as da

        return da.from_array(values, chunks=-1)
    if name == "array_api_strict":
        return mod.asarray(values)
    raise ValueError(f"unknown framework {name!r}")
