"""JAX backend: ``jax.Array`` and tracers (jit, grad, vmap); ``jax.numpy`` is an array-API namespace.

Under any JAX transformation the inputs are tracers without values, so the probability BCE's
[0, 1] value check is skipped there (a Python ``bool`` of a tracer would break tracing).
"""

NAME = "jax"
INSTALL = "pip install 'bce_compat[jax]'"
NUMPY_OPERANDS = True  # the library's own operations accept NumPy arrays beside its own
AUTOGRAD = True


def array_types():
    import jax

    return (jax.Array, jax.core.Tracer)


def namespace(x):
    import jax.numpy as jnp

    return jnp


def version():
    import jax

    return jax.__version__


def values_are_concrete(x):
    import jax

    return not isinstance(x, jax.core.Tracer)


def engines():
    return ()


def float64_available(x):
    """JAX makes float64 arrays only with ``jax_enable_x64`` (silently float32 otherwise)."""
    import jax

    return bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]  # a config flag jax defines at runtime


def bench():
    """The test bench: ``jax.numpy`` arrays, gradients by ``jax.grad``."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bce_compat.contract import Bench

    def asarray(values, dtype):
        return jnp.asarray(np.asarray(values, dtype=np.float64), dtype=getattr(jnp, dtype))

    def to_numpy(a):
        return np.asarray(a.astype(jnp.float64) if a.dtype in (jnp.float16, jnp.bfloat16) else a)

    def value_and_grad(fn, args, wrt):
        value = fn(*args)
        grads = jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(wrt))(*args)
        return value, [to_numpy(g) for g in grads]

    # float64 exists only with jax_enable_x64; otherwise JAX silently makes float32 arrays.
    x64 = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]
    return Bench("jax", jax, asarray, to_numpy, jnp.asarray, value_and_grad,
                 dtypes=("float16", "bfloat16", "float32") + (("float64",) if x64 else ()),
                 skip_dtypes={"float64": "jax float64 needs JAX_ENABLE_X64=1"})
