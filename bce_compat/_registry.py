"""The one list of backends: built-in adapters, then ``bce_compat.backends`` entry points.

Everything that needs the list reads it here: dispatch (which backend owns an array), the CLI
(``bce-compat backends``, ``diff``), the conformance suite and the tests' fixtures.

Order: the built-ins, in ``BUILTIN_ADAPTERS`` order, then plugins by entry-point name. A plugin
cannot shadow a built-in: one that takes a built-in's name is ignored with a warning, and
detection tries the built-ins first, so a plugin never takes a built-in library's arrays.
``array_api`` (any array with ``__array_namespace__``) is the last resort.

Detection never imports an array library: an array can only come from a library that is
already in ``sys.modules``. Answers are cached per array class in plain dicts (not
``functools`` caches, which ``torch.compile`` warns about on every compile).

The import-order rule lives here and nowhere else: importing TensorFlow before Paddle
segfaults, so anything that imports several frameworks calls :func:`import_installed`, which
imports them in ``BUILTIN_ADAPTERS`` order (torch, then paddle, then tensorflow).

>>> names()[:4]
('numpy', 'torch', 'paddle', 'tensorflow')
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any, NamedTuple

# name (= the array library's module name) -> adapter; this order is the listing, detection
# and import order (torch before paddle before tensorflow, see the module docstring).
BUILTIN_ADAPTERS = {
    "numpy": "bce_compat.backends.numpy",
    "torch": "bce_compat.backends.torch",
    "paddle": "bce_compat.backends.paddle",
    "tensorflow": "bce_compat.backends.tensorflow",
    "jax": "bce_compat.backends.jax",
    "cupy": "bce_compat.backends.cupy",
    "dask": "bce_compat.backends.dask",
    "array_api": "bce_compat.backends.array_api",
}
GENERIC = "array_api"  # no library of its own: any array with __array_namespace__
ENTRY_POINT_GROUP = "bce_compat.backends"

_CACHE: dict[str, Any] = {}  # "plugins", "paths" -> computed once; see clear_caches()
_BACKENDS: dict[str, Backend | None] = {}
_BY_TYPE: dict[type, str | None] = {}  # array class -> backend name


class Backend(NamedTuple):
    """One array library as the front end sees it: its adapter and the fast paths it offers."""

    name: str
    adapter: Any  # a module (or object) with the names of backends.contract.AdapterModule
    engines: tuple = ()  # fast paths, tried in order before the portable path
    finish: Any = None  # the adapter's optional ``as_result``, looked up once (a missing module attribute costs ~1 µs)

    def namespace(self, x):
        return self.adapter.namespace(x)

    def values_are_concrete(self, x) -> bool:
        return self.adapter.values_are_concrete(x)

    def as_result(self, value):
        """The adapter's final touch, e.g. NumPy's reductions give scalars and docs/contract.md §2 wants 0-d arrays."""
        return value if self.finish is None else self.finish(value)


def plugin_adapters() -> dict[str, str]:
    """Entry points of group ``bce_compat.backends``: library module name -> ``module[:attr]``."""
    if "plugins" not in _CACHE:
        from importlib.metadata import entry_points

        found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
        _CACHE["plugins"] = dict(sorted(found.items()))
    return _CACHE["plugins"]


def adapter_paths() -> dict[str, str]:
    """Every known backend -> its adapter: the built-ins, then the plugins that do not shadow one."""
    if "paths" not in _CACHE:
        paths = dict(BUILTIN_ADAPTERS)
        for name, path in plugin_adapters().items():
            if name in paths:
                warnings.warn(
                    f"bce_compat: backend plugin {name!r} ({path}) is ignored: {name!r} is a built-in backend",
                    RuntimeWarning, stacklevel=2)
                continue
            paths[name] = path
        _CACHE["paths"] = paths
    return _CACHE["paths"]


def names() -> tuple[str, ...]:
    """The names of every known backend, installed or not, in registry order."""
    return tuple(adapter_paths())


def clear_caches() -> None:
    """Forget plugins, loaded backends and detections (after installing a plugin, or in tests)."""
    _CACHE.clear()
    _BACKENDS.clear()
    _BY_TYPE.clear()


def adapter(name: str):
    """The adapter of backend ``name`` (imports the adapter, not the library); KeyError if unknown."""
    module, _, attr = adapter_paths()[name].partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def library(name: str) -> str | None:
    """The module that must be imported for backend ``name``'s arrays to exist (None: no library)."""
    return None if name == GENERIC else name


def is_installed(name: str) -> bool:
    """Whether backend ``name``'s library can be imported (found on the path, not imported)."""
    lib = library(name)
    return lib is None or importlib.util.find_spec(lib) is not None


def import_installed(names_: tuple[str, ...] | None = None) -> dict[str, ModuleType]:
    """Import the installed libraries among ``names_`` (default: all) in the safe order; name -> module.

    A library that is missing or fails to import is left out. The log lines the libraries write
    straight to stderr while they are imported (TensorFlow's absl and oneDNN lines) are dropped
    when the log-level variables ask for it (``_stderr_lines``); other output passes through.
    """
    from bce_compat._stderr_lines import log_lines_filtered  # only what imports frameworks needs it

    wanted = set(names() if names_ is None else names_)
    modules = {}
    with log_lines_filtered():
        for name in names():
            lib = library(name)
            if name not in wanted or lib is None:
                continue
            try:
                modules[name] = importlib.import_module(lib)
            except Exception:  # not installed, or broken: the library is simply absent
                continue
            if name == "torch" and "tensorflow" in wanted:
                _import_triton()
    return modules


def _import_triton() -> None:
    """Triton, which torch loads lazily (``torch.compile``, the optimizers), aborts the process when it
    comes after TensorFlow ("LLVM ERROR: ... registered more than once"); loaded first, both work."""
    try:
        if importlib.util.find_spec("triton") is not None:
            importlib.import_module("triton")
    except Exception:  # a broken triton only matters to torch.compile, which reports it itself
        pass


def load_backend(name: str) -> Backend | None:
    """The backend ``name`` with its fast paths; None (and a warning) if it is unknown or its plugin is broken."""
    if name not in _BACKENDS:
        _BACKENDS[name] = _load(name)
    return _BACKENDS[name]


def _load(name: str) -> Backend | None:
    from bce_compat.contract import AdapterModule, missing_members

    if name not in adapter_paths():
        return None
    try:
        found = adapter(name)
        missing = missing_members(found, AdapterModule)
        if missing:
            raise TypeError(f"the adapter lacks {', '.join(missing)}")
        engines = tuple(found.engines())
    except Exception as exc:  # a broken third-party plugin must not break the loss
        if name in BUILTIN_ADAPTERS:
            raise
        warnings.warn(f"bce_compat: backend plugin {name!r} ({adapter_paths()[name]}) failed to load: {exc!r}",
                      RuntimeWarning, stacklevel=3)
        return None
    return Backend(name, found, engines, getattr(found, "as_result", None))


def backend_for_type(cls: type) -> Backend | None:
    """The backend whose array types include ``cls``; None if no loaded library owns it."""
    name = _backend_name(cls)
    return None if name is None else _BACKENDS[name]


def _backend_name(cls: type) -> str | None:
    """The name of the backend of ``cls`` (None: no backend), detected once per class."""
    try:
        return _BY_TYPE[cls]
    except KeyError:
        found = _find(cls)
        name = _BY_TYPE[cls] = None if found is None else found.name
        return name


# torch.compile: call this eagerly and use the name it returns as a constant, instead of
# tracing registry code (a class-keyed dict, entry points, imports) into the graph. The
# attribute is what torch.compiler.assume_constant_result sets; here it needs no torch import.
_backend_name._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _find(cls: type) -> Backend | None:
    for name in adapter_paths():
        if name == GENERIC or name.split(".")[0] not in sys.modules:
            continue  # its arrays cannot exist yet
        backend = load_backend(name)
        if backend is not None and issubclass(cls, backend.adapter.array_types()):
            return backend
    if hasattr(cls, "__array_namespace__"):
        return load_backend(GENERIC)
    return None


def describe_backends() -> str:
    """One line per known backend with how to install it, for error messages."""
    lines = []
    for name in adapter_paths():
        try:
            install = adapter(name).INSTALL
        except Exception:
            install = "(adapter failed to import)"
        lines.append(f"  {name}: {install}")
    return "\n".join(lines)
