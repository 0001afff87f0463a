"""What `python -m build` made is what we mean to ship: one sdist and one abi3 wheel.

The wheel: tagged ``<ABI3_TAG>-abi3`` (file name and WHEEL metadata), a compiled module for
every extension of setup.py's C_EXTENSIONS, no C source or header, ``py.typed``, every conformance
case file and every module of the packages pyproject.toml lists. The sdist: every C source and
header of C_EXTENSIONS, setup.py, pyproject.toml, the README, the licence and the case files.
(``twine check`` and abi3audit run beside this, in .ci/run.)

    python .ci/check_dists.py DIST_DIR
"""

from __future__ import annotations

import email.parser
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

from packaging.utils import parse_sdist_filename, parse_wheel_filename

sys.path.insert(0, str(Path(__file__).resolve().parent))
import setup_spec  # noqa: E402

ROOT = setup_spec.ROOT


def package_files(suffix: str) -> list[str]:
    """The files with ``suffix`` of every package in pyproject.toml, as paths inside the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = config.get("package-dir", {})
    found = []
    for package in config["packages"]:
        folder = ROOT / folders.get(package, package.replace(".", "/"))
        found += [f"{package.replace('.', '/')}/{path.name}" for path in sorted(folder.glob(f"*{suffix}"))]
    return found


def case_files() -> list[str]:
    return [f"bce_compat/conformance/cases/{path.name}" for path in sorted((ROOT / "conformance/cases").glob("*.toml"))]


def check_wheel(path: Path, spec: dict) -> list[str]:
    problems = []
    _, _, _, tags = parse_wheel_filename(path.name)
    if {(tag.interpreter, tag.abi) for tag in tags} != {(spec["ABI3_TAG"], "abi3")}:
        problems.append(f"{path.name}: tags {sorted(map(str, tags))}, expected {spec['ABI3_TAG']}-abi3-<platform>")
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        wheel_file = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        metadata = email.parser.Parser().parsestr(wheel.read(wheel_file).decode())
    wheel_tags = metadata.get_all("Tag", [])
    print(f"  {path.name}: WHEEL Tag {', '.join(wheel_tags)}; Root-Is-Purelib {metadata['Root-Is-Purelib']}")
    if not wheel_tags or not all(tag.startswith(f"{spec['ABI3_TAG']}-abi3-") for tag in wheel_tags):
        problems.append(f"WHEEL metadata tags {wheel_tags} are not {spec['ABI3_TAG']}-abi3")
    if metadata["Root-Is-Purelib"] != "false":
        problems.append("WHEEL says Root-Is-Purelib: a wheel with a compiled module is platform-specific")
    sources = sorted(n for n in names if n.endswith((".c", ".h")))
    if sources:
        problems.append(f"C sources in the wheel: {sources}")
    for module in setup_spec.module_names(spec):
        stem = module.replace(".", "/")
        built = [n for n in names if n in (f"{stem}.abi3.so", f"{stem}.pyd")]
        print(f"  compiled {module}: {built[0] if built else 'MISSING'}")
        if not built:
            problems.append(f"no {stem}.abi3.so (or .pyd) for the extension {module}")
    wanted = ["bce_compat/py.typed", *case_files(), *package_files(".py")]
    missing = [name for name in wanted if name not in names]
    cases = len(case_files())
    print(f"  {len(wanted) - len(missing)} of {len(wanted)} expected files: py.typed, {cases} case files, the modules")
    if missing:
        problems.append(f"missing from the wheel: {missing}")
    return problems


def check_sdist(path: Path, spec: dict) -> list[str]:
    parse_sdist_filename(path.name)  # a valid sdist name
    with tarfile.open(path) as sdist:
        members = [PurePosixPath(member) for member in sdist.getnames()]
    top = "/".join(sorted({member.parts[0] for member in members}))
    names = {str(PurePosixPath(*member.parts[1:])) for member in members if len(member.parts) > 1}
    c_files = setup_spec.sources(spec) + setup_spec.headers(spec)
    print(f"  {path.name} ({top}/): C sources and headers {', '.join(c_files)}")
    wanted = [*c_files, "setup.py", "pyproject.toml", "README.md", "LICENSE", "bce_compat/py.typed"]
    wanted += [f"conformance/cases/{Path(case).name}" for case in case_files()]
    missing = [f for f in wanted if f not in names]
    return [f"missing from the sdist: {missing}"] if missing else []


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    dist = Path(argv[0])
    spec = setup_spec.read()
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {[p.name for p in wheels + sdists]}")
        return 1
    problems = check_wheel(wheels[0], spec) + check_sdist(sdists[0], spec)
    for problem in problems:
        print(f"  FAIL: {problem}")
    print("distributions: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
