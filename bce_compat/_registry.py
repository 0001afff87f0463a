"""Which backend owns an array: built-in adapters plus ``bce_compat.backends`` entry points.

Detection never imports an array library: an array can only come from a library that is
already in ``sys.modules``. The answer is cached per array class.
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from dataclasses import dataclass
from types import ModuleType

# name (= the array library's module name) -> adapter module; the order is the listing order.
BUILTIN_ADAPTERS = {
    "numpy": "bce_compat.backends.numpy",
    "torch": "bce_compat.backends.torch",
    "paddle": "bce_compat.backends.paddle",
    "tensorflow": "bce_compat.backends.tensorflow",
    "jax": "bce_compat.backends.jax",
    "cupy": "bce_compat.backends.cupy",
    "dask": "bce_compat.backends.dask",
}
ENTRY_POINT_GROUP = "bce_compat.backends"
_GENERIC_ADAPTER = "bce_compat.backends.array_api"


@dataclass
class Backend:
    """One array library as the frontend sees it: its adapter and the fast paths it offers."""

    name: str
    adapter: ModuleType
    engines: tuple = ()  # fast paths, tried in order before the portable path

    def namespace(self, x):
        return self.adapter.namespace(x)

    def values_are_concrete(self, x) -> bool:
        return self.adapter.values_are_concrete(x)

    def as_result(self, value):
        """The adapter's final touch, e.g. NumPy's reductions give scalars and SPEC §2 wants 0-d arrays."""
        as_result = getattr(self.adapter, "as_result", None)
        return value if as_result is None else as_result(value)


@functools.cache
def plugin_adapters() -> dict[str, str]:
    """Entry points of group ``bce_compat.backends``: library module name -> adapter module."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_paths() -> dict[str, str]:
    """Every known backend, built-ins first; a plugin cannot shadow a built-in."""
    return {**plugin_adapters(), **BUILTIN_ADAPTERS}


@functools.cache
def load_backend(name: str) -> Backend | None:
    """The backend ``name`` with its fast paths registered; None (and a warning) if its plugin is broken."""
    path = adapter_paths().get(name, _GENERIC_ADAPTER if name == "array_api" else None)
    if path is None:
        return None
    try:
        adapter = importlib.import_module(path)
        engines = tuple(adapter.engines())
    except Exception as exc:  # a broken third-party plugin must not break the loss
        if name in BUILTIN_ADAPTERS:
            raise
        warnings.warn(f"bce_compat: backend plugin {name!r} ({path}) failed to load: {exc!r}", RuntimeWarning, stacklevel=2)
        return None
    return Backend(name, adapter, engines)


@functools.cache
def backend_for_type(cls: type) -> Backend | None:
    """The backend whose array types include ``cls``; None if no loaded library owns it."""
    for name in adapter_paths():
        if name.split(".")[0] not in sys.modules:
            continue  # its arrays cannot exist yet
        backend = load_backend(name)
        if backend is not None and issubclass(cls, backend.adapter.array_types()):
            return backend
    if hasattr(cls, "__array_namespace__"):
        return load_backend("array_api")
    return None


def describe_backends() -> str:
    """One line per known backend with how to install it, for error messages."""
    lines = []
    for name, path in adapter_paths().items():
        try:
            install = importlib.import_module(path).INSTALL
        except Exception:
            install = "(adapter failed to import)"
        lines.append(f"  {name}: {install}")
    return "\n".join(lines)
