"""The one registry of backends: its order, plugins (listed, run through conformance, never shadowing a
built-in), the one safe import order, and no cache that torch.compile warns about or breaks on."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import bce_compat
from bce_compat import _cli_backends, _dispatch, _registry, cli
from bce_compat.conformance import casedata, frameworks, report, runner


def test_builtins_come_first_in_registry_order():
    assert _registry.names()[:4] == ("numpy", "torch", "paddle", "tensorflow")
    assert _registry.names()[: len(_registry.BUILTIN_ADAPTERS)] == tuple(_registry.BUILTIN_ADAPTERS)


def test_a_plugin_cannot_shadow_a_builtin(monkeypatch):
    monkeypatch.setattr(_registry, "plugin_adapters", lambda: {"numpy": "evil_adapter", "zlib_arrays": "z_adapter"})
    _registry.clear_caches()
    try:
        with pytest.warns(RuntimeWarning, match="'numpy'.*ignored.*built-in"):
            paths = _registry.adapter_paths()
        assert paths["numpy"] == "bce_compat.backends.numpy"
        assert list(paths)[-1] == "zlib_arrays"  # plugins after the built-ins
        assert _registry.backend_for_type(np.ndarray).adapter.__name__ == "bce_compat.backends.numpy"
    finally:
        monkeypatch.undo()
        _registry.clear_caches()


def test_import_order_is_torch_paddle_tensorflow(monkeypatch):
    imported = []
    real = importlib.import_module

    def recording(name, *args):
        imported.append(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", recording)
    _registry.import_installed(("tensorflow", "paddle", "torch", "numpy"))
    order = list(dict.fromkeys(n for n in imported if n in ("numpy", "torch", "paddle", "tensorflow")))
    assert order == ["numpy", "torch", "paddle", "tensorflow"]


def test_no_functools_cache_on_the_dispatch_path():
    for module in (_registry, _dispatch):
        cached = [name for name, obj in vars(module).items() if hasattr(obj, "cache_info")]
        assert cached == [], f"{module.__name__}: {cached}"


def test_detection_is_cached_per_class_and_cleared():
    assert _registry.backend_for_type(np.ndarray).name == "numpy"
    assert np.ndarray in _registry._BY_TYPE
    _registry.clear_caches()
    assert np.ndarray not in _registry._BY_TYPE
    assert _registry.backend_for_type(np.ndarray).name == "numpy"
    assert _registry.backend_for_type(dict) is None


def test_selection_by_environment(monkeypatch):
    monkeypatch.setenv(frameworks.ENV_SELECT, "numpy, torch")
    assert frameworks.selected_names() == ("numpy", "torch")
    monkeypatch.delenv(frameworks.ENV_SELECT)
    assert frameworks.selected_names() == tuple(frameworks.bench_names())
    assert frameworks.bench_names()["array_api_strict"] == "array_api"  # the generic adapter's bench


def test_backends_command_does_not_import_the_test_bench(monkeypatch, capsys):
    for name in [m for m in sys.modules if m.startswith("bce_compat.conformance")]:
        monkeypatch.delitem(sys.modules, name)
    assert cli.main(["backends"]) == 0
    assert "numpy" in capsys.readouterr().out
    loaded = {m for m in sys.modules if m.startswith("bce_compat.conformance")}
    assert not loaded & {"bce_compat.conformance.frameworks", "bce_compat.conformance.runner",
                         "bce_compat.conformance.casedata"}, loaded


# --- a third-party plugin, installed from tests/plugin, with no edit to this repository ------


def test_plugin_is_listed_by_backends_command(toy_plugin, capsys):
    rows = {row["name"]: row for row in _cli_backends.installed_backends()}
    assert rows["toyarray"]["installed"] and rows["toyarray"]["version"] == "0.1.0"
    assert list(rows)[-1] == "toyarray"
    assert _cli_backends.run(None) == 0
    assert any(line.split()[:2] == ["toyarray", "0.1.0"] for line in capsys.readouterr().out.splitlines())
    assert "toyarray: pip install ./tests/plugin" in _registry.describe_backends()


def test_plugin_arrays_run_the_loss(toy_plugin):
    import toyarray

    x, y = toyarray.asarray([0.0, 2.0, -1.0], "float32"), toyarray.asarray([1.0, 0.0, 1.0], "float32")
    loss = bce_compat.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert isinstance(loss, toyarray.ToyArray) and loss.dtype == np.float32
    want = bce_compat.binary_cross_entropy_with_logits(toyarray.to_numpy(x), toyarray.to_numpy(y), reduction="none")
    np.testing.assert_allclose(toyarray.to_numpy(loss), want, rtol=1e-6)


def test_plugin_bench_joins_the_test_benches(toy_plugin):
    assert frameworks.bench_names()["toyarray"] == "toyarray"
    assert "toyarray" in frameworks.available(["numpy", "toyarray"])
    assert "toyarray" not in frameworks.autograd_names()


def test_plugin_runs_through_conformance_in_process(toy_plugin):
    cases = casedata.load_cases(["paddle-F-logits-example", "ours-inf", "torch-module-pos-weight-example"])
    result = runner.run(cases, ["numpy", "toyarray"], native=True)
    assert result.backends == ["numpy", "toyarray"]
    assert result.exit_code == 0, report.failures_text(result)
    ran = [o for o in result.outcomes if o.backend == "toyarray" and o.status == "pass"]
    assert ran and {o.path for o in ran} == {"torch-dialect", "paddle-dialect"}
    assert all(a.backends == ["numpy", "toyarray"] for a in result.agreements)
    assert "toyar" in report.table(result)  # a plugin's column, no KeyError


def test_plugin_runs_through_the_conformance_command(toy_plugin_site):
    """The real command in a fresh process, every case, the plugin found only through its entry point."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([toy_plugin_site, os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from bce_compat.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "conformance", "--backends", "toyarray", "--quiet"],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " 0 failed" in done.stdout and "toyar" in done.stdout
    assert "not installed" not in done.stderr


# --- torch.compile: no graph break and no warning from bce_compat -------------------------------


_COMPILE_CHECK = """
import warnings
import torch
import bce_compat

x, y = torch.linspace(-3, 3, 12).reshape(4, 3), torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
pw = torch.full((3,), 2.0)

def loss(a, b):
    return bce_compat.binary_cross_entropy_with_logits(a, b, pos_weight=pw)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = torch.compile(loss, fullgraph=True, backend="eager")(x, y)  # the first call: detection under tracing
    explained = torch._dynamo.explain(loss)(x, y)
ours = [f"{w.filename}: {w.message}" for w in caught
        if "bce_compat" in w.filename or "bce_compat" in str(w.message) or "lru_cache" in str(w.message)]
assert ours == [], ours
assert explained.graph_break_count == 0, explained.break_reasons
torch.testing.assert_close(got, torch.nn.functional.binary_cross_entropy_with_logits(x, y, pos_weight=pw))
print("ok")
"""


def test_torch_compile_fullgraph_without_warnings():
    """In a fresh process with torch alone: torch.compile aborts the process (LLVM 'registered more
    than once') once TensorFlow is imported, whatever is compiled, and the test session imports TF."""
    pytest.importorskip("torch")
    done = subprocess.run([sys.executable, "-c", _COMPILE_CHECK], capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout[-2000:] + done.stderr[-3000:]


def test_a_broken_builtin_adapter_raises_instead_of_leaving_a_silent_gap(monkeypatch):
    """A broken plugin is skipped with a warning; a built-in adapter that breaks is our bug, so it raises."""
    adapter = importlib.import_module("bce_compat.backends.dask")  # the adapter only: dask is not imported
    _registry.clear_caches()
    try:
        monkeypatch.delattr(adapter, "engines")
        with pytest.raises(TypeError, match="the adapter lacks engines"):
            _registry.load_backend("dask")
    finally:
        monkeypatch.undo()
        _registry.clear_caches()
    assert _registry.load_backend("dask").name == "dask"
