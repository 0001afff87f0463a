"""JAX backend: ``jax.Array`` and tracers (jit, grad, vmap); ``jax.numpy`` is an array-API namespace.

Under any JAX transformation the inputs are tracers without values, so the probability BCE's
[0, 1] value check is skipped there (a Python ``bool`` of a tracer would break tracing).
"""

NAME = "jax"
INSTALL = "pip install 'bce_compat[jax]'"


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
