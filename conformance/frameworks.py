"""The test benches: each registered backend's ``bench()`` (NumPy data in, arrays out, read back, gradients).

The list is the registry's (``bce_compat._registry``): every built-in adapter and every
plugin that offers a ``bench()``, so a plugin runs through the conformance suite and the tests
with no edit here. ``$BCE_COMPAT_BACKENDS=numpy,torch`` narrows every run to those benches.
Libraries are imported by the registry's ``import_installed``, in the one safe order.

>>> fw = get("numpy"); fw.to_numpy(fw.asarray([1.0, 2.0], "float32")).tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from bce_compat import _registry
from bce_compat.contract import Bench

Framework = Bench  # the name the tests and the runner know it by
ENV_SELECT = "BCE_COMPAT_BACKENDS"  # e.g. "numpy,torch" narrows every run to those


def bench_names() -> dict[str, str]:
    """Bench name -> backend name, for every registered backend with a test bench (installed or not).

    A bench is usually named after its backend; the generic array-API adapter's is
    ``array_api_strict``, the library it is tested with.
    """
    out = {}
    for backend in _registry.names():
        try:
            adapter = _registry.adapter(backend)
        except Exception:  # a broken plugin: the registry warns when it is used
            continue
        if callable(getattr(adapter, "bench", None)):
            out[getattr(adapter, "BENCH_NAME", backend)] = backend
    return out


def autograd_names() -> tuple[str, ...]:
    """The benches whose library differentiates (adapter ``AUTOGRAD = True``)."""
    return tuple(name for name, backend in bench_names().items()
                 if getattr(_registry.adapter(backend), "AUTOGRAD", False))


def selected_names() -> tuple[str, ...]:
    """The benches a run should use: ``$BCE_COMPAT_BACKENDS`` if set, else all registered."""
    raw = os.environ.get(ENV_SELECT, "").strip()
    return tuple(n.strip() for n in raw.split(",") if n.strip()) if raw else tuple(bench_names())


def available(names: Iterable[str] | None = None) -> dict[str, Bench]:
    """The installed benches among ``names`` (default: the selected ones), in registry order."""
    wanted = selected_names() if names is None else tuple(names)
    backends = bench_names()
    _registry.import_installed(tuple(backends[n] for n in wanted if n in backends))  # the safe order first
    benches = {}
    for name, backend in backends.items():
        if name not in wanted or not _registry.is_installed(backend):
            continue
        try:
            benches[name] = _registry.adapter(backend).bench()
        except ImportError:  # its library (or the bench's, e.g. array-api-strict) is missing
            continue
    return benches


def import_installed(names: Iterable[str] | None = None) -> dict[str, object]:
    """Bench name -> its imported library, for the installed benches among ``names``."""
    return {name: bench.module for name, bench in available(names).items()}


def get(name: str) -> Bench:
    benches = available((name,))
    if name not in benches:
        raise ModuleNotFoundError(f"framework {name!r} is not installed")
    return benches[name]


def asarray_keep_dtype(name: str, values: Any) -> Any:
    """``values`` (any NumPy dtype, e.g. int64 or bool labels) as bench ``name``'s array, dtype kept.

    >>> import numpy as np
    >>> asarray_keep_dtype("numpy", np.array([1, 0])).dtype.name
    'int64'
    """
    return get(name).keep_dtype(values)
