"""The package surface: lazy import, public API, backend registry and plugins, the `backends` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import bce_compat
from bce_compat import _registry

FRAMEWORK_MODULES = ("numpy", "torch", "paddle", "tensorflow", "jax", "dask", "array_api_compat")


def test_import_imports_no_array_library():
    """docs/contract.md §1, proved in a fresh interpreter (array-api-compat tests/test_no_dependencies.py does the same)."""
    code = (
        "import sys, bce_compat, bce_compat.dialects.paddle, bce_compat.cli\n"
        f"print(sorted(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))"
    )
    out = _run([sys.executable, "-c", code])
    assert out.stdout.strip() == "[]"


def test_import_leaves_out_slow_standard_modules():
    """``import bce_compat`` stays light (issue 6: under 50 ms): dataclasses and inspect cost 10-15 ms
    together, so nothing on the import path may pull them in (only modules new after startup count)."""
    code = (
        "import sys; before = set(sys.modules)\n"
        "import bce_compat\n"
        "print(sorted(m for m in ('dataclasses', 'inspect') if m in set(sys.modules) - before))"
    )
    assert _run([sys.executable, "-c", code]).stdout.strip() == "[]"


def _run(argv):
    """Run outside the source tree, so the installed package is what gets imported."""
    return subprocess.run(argv, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())


def _console_script():
    return shutil.which("bce-compat", path=str(Path(sys.executable).parent)) or "bce-compat"


def test_detection_does_not_import_libraries_that_are_not_loaded():
    code = (
        "import sys, numpy as np, bce_compat\n"
        "bce_compat.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2))\n"
        "print(sorted(m for m in ('torch', 'paddle', 'tensorflow', 'jax', 'dask') if m in sys.modules))"
    )
    out = _run([sys.executable, "-c", code])
    assert out.stdout.strip() == "[]"


def test_all_is_complete_and_exported():
    public = {n for n in dir(bce_compat) if not n.startswith("_") and not isinstance(getattr(bce_compat, n), ModuleType)}
    assert set(bce_compat.__all__) == public | {"__version__"}
    for name in bce_compat.__all__:
        assert getattr(bce_compat, name) is not None
    from bce_compat.dialects import paddle, torch

    for dialect in (paddle, torch):
        extra = {"sigmoid_focal_loss"} if dialect is torch else set()  # torchvision's, top level too
        assert set(dialect.__all__) == {"binary_cross_entropy_with_logits", "binary_cross_entropy", "BCEWithLogitsLoss", "BCELoss"} | extra


def test_public_functions_have_runnable_docstring_examples():
    import doctest

    from bce_compat.dialects import paddle as paddle_dialect
    from bce_compat.dialects import torch as torch_dialect

    for module in (bce_compat, torch_dialect, paddle_dialect):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failures == 0, module.__name__


def test_torch_dialect_is_the_top_level():
    from bce_compat.dialects import torch as torch_dialect

    assert bce_compat.binary_cross_entropy_with_logits is torch_dialect.binary_cross_entropy_with_logits


class _FakeArray:
    """An array type of a pretend third-party library, registered by an entry point."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    shape = property(lambda self: self.values.shape)
    dtype = property(lambda self: self.values.dtype)


def _fake_plugin_module():
    import types

    import array_api_compat.numpy as xp

    module = types.ModuleType("fake_bce_plugin")
    module.NAME, module.INSTALL = "fakearrays", "pip install fakearrays"
    module.array_types = lambda: (_FakeArray,)
    module.namespace = lambda x: _FakeNamespace(xp)
    module.version = lambda: "1.0"
    module.values_are_concrete = lambda x: True
    module.engines = lambda: ()
    return module


class _FakeNamespace:
    """NumPy's namespace, but unwrapping _FakeArray on the way in (enough for this test)."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        fn = getattr(self._xp, name)
        if not callable(fn):
            return fn
        return lambda *a, **k: fn(*(x.values if isinstance(x, _FakeArray) else x for x in a), **k)


@pytest.fixture
def fake_plugin(monkeypatch):
    """Pretend an installed distribution declares `fakearrays = fake_bce_plugin` in our entry-point group."""
    monkeypatch.setitem(sys.modules, "fake_bce_plugin", _fake_plugin_module())
    monkeypatch.setitem(sys.modules, "fakearrays", _fake_plugin_module())  # "the library is imported"
    monkeypatch.setattr(_registry, "plugin_adapters", lambda: {"fakearrays": "fake_bce_plugin"})
    _registry.clear_caches()
    yield
    _registry.clear_caches()


def test_entry_point_plugin_is_used_for_its_arrays(fake_plugin):
    backend = _registry.backend_for_type(_FakeArray)
    assert backend is not None and backend.name == "fakearrays"
    loss = bce_compat.binary_cross_entropy_with_logits(_FakeArray([0.0, 0.0]), _FakeArray([1.0, 0.0]))
    np.testing.assert_allclose(loss, np.log(2))


def test_broken_plugin_warns_instead_of_breaking(monkeypatch):
    monkeypatch.setitem(sys.modules, "brokenarrays", object())
    monkeypatch.setattr(_registry, "plugin_adapters", lambda: {"brokenarrays": "no_such_module_for_bce_compat"})
    _registry.clear_caches()
    try:
        with pytest.warns(RuntimeWarning, match="brokenarrays.*failed to load"):
            assert _registry.backend_for_type(_FakeArray) is None
        np.testing.assert_allclose(bce_compat.binary_cross_entropy_with_logits(np.zeros(1), np.ones(1)), np.log(2))
    finally:
        _registry.clear_caches()


def test_cli_version_and_backends():
    out = _run([_console_script(), "--version"])
    assert out.stdout.strip() == f"bce-compat {bce_compat.__version__}"
    out = _run([_console_script(), "backends"])
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert np.__version__ in lines["numpy"]
    for name in ("torch", "paddle", "tensorflow"):
        try:
            __import__(name)
        except ImportError:
            assert "not installed" in lines[name]
        else:
            assert sys.modules[name].__version__ in lines[name]


def test_installed_distribution_ships_types_license_and_urls():
    """py.typed marks the package typed (PEP 561); the licence file and project URLs are in the metadata."""
    from importlib import metadata, resources

    assert resources.files("bce_compat").joinpath("py.typed").is_file()
    meta = metadata.metadata("bce_compat")
    assert "Apache" in (meta.get("License") or meta.get("License-Expression") or "")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Source", "Issues", "Changelog"} <= set(urls), urls
    files = {f.name for f in metadata.files("bce_compat") or []}
    assert "LICENSE" in files, "the licence text is not in the installed distribution"


def test_importing_the_source_tree_says_how_to_install(tmp_path):
    """Python started in a clone's root imports its bce_compat/ ahead of the installed package;
    backends/ is not inside it there, and the error says what to do instead of naming a module."""
    shutil.copytree(Path(__file__).resolve().parents[1] / "bce_compat", tmp_path / "bce_compat")
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]\n"
        "import bce_compat\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert "imported from its source tree" in done.stderr and "pip install" in done.stderr, done.stderr[-2000:]
