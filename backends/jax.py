"""JAX backend: ``jax.Array`` and tracers (jit, grad, vmap), through array-api-compat."""

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


def fast_paths():
    return {}
