"""Release engineering (issue 25): one abi3 wheel per platform, and cibuildwheel's configuration.

setup.py declares the compiled modules once (C_EXTENSIONS, read here by .ci/setup_spec.py as the
release checks read it). The cibuildwheel tests need cibuildwheel (not in the ``test`` extra:
.ci/run's wheels job installs it and runs this file with ``--noconftest``) and skip without it.
"""

from __future__ import annotations

import importlib.util
import runpy
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The wheels we publish: one cp311-abi3 build per platform.
EXPECTED_IDENTIFIERS = {
    "linux": {"cp311-manylinux_x86_64", "cp311-manylinux_aarch64", "cp311-musllinux_x86_64"},
    "macos": {"cp311-macosx_x86_64", "cp311-macosx_arm64"},
    "windows": {"cp311-win_amd64"},
}


def _setup_spec():
    spec = importlib.util.spec_from_file_location("setup_spec", ROOT / ".ci" / "setup_spec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cibuildwheel_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["cibuildwheel"]


def test_setup_declares_every_c_file_once_and_it_exists():
    setup_spec = _setup_spec()
    spec = setup_spec.read()
    assert spec["C_EXTENSIONS"], "setup.py declares no extension"
    files = setup_spec.sources(spec) + setup_spec.headers(spec)
    assert len(files) == len(set(files))
    for path in files:
        assert (ROOT / path).is_file(), f"setup.py C_EXTENSIONS names {path}, which does not exist"
    for ext in spec["C_EXTENSIONS"]:
        assert ext["name"].startswith("bce_compat.backends."), ext["name"]
        assert all(source.endswith(".c") for source in ext["sources"])
        assert all(header.endswith(".h") for header in ext["depends"])
    assert (spec["LIMITED_API"], spec["ABI3_TAG"]) == ("0x030B0000", "cp311")  # 3.11: the buffer protocol


def test_setup_spec_refuses_a_setup_without_the_literals(tmp_path):
    broken = tmp_path / "setup.py"
    broken.write_text("C_EXTENSIONS = make_them()\nLIMITED_API = '0x030B0000'\n")
    with pytest.raises(ValueError):  # a call is not a literal
        _setup_spec().read(broken)
    broken.write_text("LIMITED_API = '0x030B0000'\n")
    with pytest.raises(ValueError, match="C_EXTENSIONS"):
        _setup_spec().read(broken)


@pytest.fixture
def setup_module():
    pytest.importorskip("setuptools")
    return runpy.run_path(str(ROOT / "setup.py"), run_name="setup_under_test")  # defines, does not call setup()


def test_extensions_build_on_the_stable_abi(setup_module, monkeypatch):
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: None if name == "Py_GIL_DISABLED" else "")
    for spec in setup_module["C_EXTENSIONS"]:
        ext = setup_module["extension"](spec)
        assert ext.py_limited_api is True
        assert ("Py_LIMITED_API", "0x030B0000") in ext.define_macros
        assert ext.optional is True  # no compiler: the install still succeeds, the portable path computes
        assert ext.depends == spec["depends"]


def test_free_threaded_python_builds_without_the_limited_api(setup_module, monkeypatch):
    """3.13t/3.14t have no stable ABI: the limited API would not compile there."""
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else "")
    assert setup_module["stable_abi"]() is False
    ext = setup_module["extension"](setup_module["C_EXTENSIONS"][0])
    assert ext.py_limited_api is False
    assert not any(name == "Py_LIMITED_API" for name, _ in ext.define_macros)


@pytest.mark.parametrize("module", _setup_spec().module_names(_setup_spec().read()))
def test_installed_compiled_modules_are_abi3_builds(module):
    """As installed (CI's test job: pip install of the tree), each compiled module is the abi3 build."""
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("a free-threaded Python builds a version-specific module")
    try:
        found = importlib.util.find_spec(module)
    except ImportError:  # no bce_compat.backends: bce_compat is not installed here
        found = None
    if found is None:
        pytest.skip(f"{module} is not installed here (bce_compat absent, or built without a C compiler)")
    assert Path(found.origin).name.endswith((".abi3.so", ".pyd")), found.origin


def test_cibuildwheel_configuration_builds_one_abi3_wheel_per_platform_and_tests_it():
    config = _cibuildwheel_config()
    assert config["build"] == "cp311-*"  # abi3: the cp311 wheel serves 3.11 and later
    command = config["test-command"]
    assert "{project}/.ci/smoke.py" in command
    assert (ROOT / ".ci" / "smoke.py").is_file()
    assert config["linux"]["archs"] == ["x86_64", "aarch64"]
    assert config["macos"]["archs"] == ["arm64", "x86_64"]
    assert config["windows"]["archs"] == ["AMD64"]


@pytest.mark.parametrize("platform", sorted(EXPECTED_IDENTIFIERS))
def test_cibuildwheel_lists_the_intended_identifiers(platform):
    executable = shutil.which("cibuildwheel", path=str(Path(sys.executable).parent)) or shutil.which("cibuildwheel")
    if executable is None:
        pytest.skip("cibuildwheel is not installed (.ci/run's wheels job installs it)")
    done = subprocess.run(
        [executable, "--print-build-identifiers", "--platform", platform, str(ROOT)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == EXPECTED_IDENTIFIERS[platform]
