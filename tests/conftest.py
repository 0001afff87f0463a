"""One list of backends drives the tests; a missing framework is a clean skip with its reason.

The list is the registry's (``bce_compat._registry``, through ``conformance.frameworks``): every
built-in backend and plugin with a test bench. Frameworks are imported here, once, by the
registry in its safe order. ``$BCE_COMPAT_BACKENDS=numpy,torch`` narrows the run;
``$BCE_COMPAT_REQUIRE_BACKENDS`` (set by CI) turns a missing framework into a failure.
"""

from __future__ import annotations

import os

import pytest

import _hypothesis_profiles  # noqa: F401  (deterministic Hypothesis: no example database, derandomized)
from bce_compat.conformance import frameworks

FRAMEWORKS = frameworks.available()  # imports the installed ones in the safe order
ALL_NAMES = tuple(frameworks.bench_names())  # installed or not: a missing one is a visible skip
DIFFERENTIABLE = frameworks.autograd_names()


def pytest_configure(config):
    required = [n for n in os.environ.get("BCE_COMPAT_REQUIRE_BACKENDS", "").split(",") if n]
    missing = [n for n in required if n not in FRAMEWORKS]
    if missing:
        raise pytest.UsageError(f"required backends are not installed: {', '.join(missing)}")


def _framework_param(name):
    return pytest.param(name, id=name)


@pytest.fixture(params=[_framework_param(n) for n in ALL_NAMES])
def framework(request) -> frameworks.Framework:
    """Every backend, or a skip saying which package is missing."""
    return _require(request.param)


@pytest.fixture(params=[_framework_param(n) for n in DIFFERENTIABLE])
def autograd_framework(request) -> frameworks.Framework:
    """The backends with autograd."""
    return _require(request.param)


def _require(name: str) -> frameworks.Framework:
    if name not in FRAMEWORKS:
        selected = frameworks.selected_names()
        reason = f"{name} is not selected by $BCE_COMPAT_BACKENDS" if name not in selected else f"{name} is not installed"
        pytest.skip(reason)
    return FRAMEWORKS[name]


PLUGIN_SOURCE = os.path.join(os.path.dirname(__file__), "plugin")


@pytest.fixture(scope="session")
def toy_plugin_site(tmp_path_factory) -> str:
    """The test plugin distribution (``tests/plugin``: toyarray and its adapter), installed into a
    temporary folder: pip builds it from a copy (nothing is written to the source tree) and
    nothing is installed into the environment itself. Skips, with pip's message, if it cannot be built.
    """
    import shutil
    import subprocess
    import sys

    source = tmp_path_factory.mktemp("plugin-src") / "plugin"
    shutil.copytree(PLUGIN_SOURCE, source)
    site = tmp_path_factory.mktemp("plugin-site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(source)]
    try:
        import setuptools  # noqa: F401  (then no build environment, hence no download, is needed)

        command.insert(4, "--no-build-isolation")
    except ImportError:
        pass
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode:
        pytest.skip(f"the test plugin could not be built: {done.stderr.strip()[-500:]}")
    return str(site)


@pytest.fixture
def toy_plugin(toy_plugin_site, monkeypatch):
    """The test plugin importable and its entry point visible, as if installed; undone afterwards."""
    import sys

    from bce_compat import _registry

    monkeypatch.syspath_prepend(toy_plugin_site)
    _registry.clear_caches()
    yield toy_plugin_site
    for name in [m for m in sys.modules if m.split(".")[0] in ("toyarray", "toyarray_bce")]:
        del sys.modules[name]
    monkeypatch.undo()
    _registry.clear_caches()


@pytest.fixture
def host_team():
    """The OpenMP team of the runtime torch loaded (the torch engine registers it); forgotten after."""
    torch = pytest.importorskip("torch")
    if not torch.backends.openmp.is_available():
        pytest.skip("this torch does not run on OpenMP")
    from bce_compat.backends import cpu_pass

    was_set = cpu_pass._host_team
    assert cpu_pass.use_host_openmp(), "torch runs on OpenMP, but GOMP_parallel was not found in the process"
    yield
    cpu_pass.use_host_openmp(was_set)
