"""The C pass compiles warning-free on the compilers its wheels are built with.

Every source of setup.py's C_EXTENSIONS (.ci/setup_spec.py), with setup.py's macros (the
limited API) and the running Python's headers, under -Wall -Wextra -Werror:

- gcc and clang: compiled to an object with setup.py's UNIX_FLAGS (the manylinux, musllinux and
  macOS routes: GCC's branches, and clang's, which has __GNUC__ but no target_clones);
- the MSVC route: clang in MSVC mode (``--target=x86_64-pc-windows-msvc``: ``_MSC_VER`` and
  ``_WIN64`` defined, ``__GNUC__`` not, so the non-GCC branches: no GCC atomics, no
  target_clones), ``-fsyntax-only``, with mingw-w64's Windows C headers (Debian's
  mingw-w64-x86-64-dev) and CPython's headers under WINDOWS_PYCONFIG below instead of this
  platform's pyconfig.h. A syntax and type check only: MSVC itself is not run.

A compiler or header set that is absent skips its step with the reason (``--require-all``
makes a skip fail). Exit status 1 if any step that ran failed.

    python .ci/compile_check.py [--require-all]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import setup_spec  # noqa: E402

WARNINGS = ["-Wall", "-Wextra", "-Werror"]
MINGW_INCLUDES = ("/usr/x86_64-w64-mingw32/include", "/usr/share/mingw-w64/include")

# The configuration values CPython's headers read on 64-bit Windows, as PC/pyconfig.h sets them
# for MSVC (x64, the core in a DLL), in place of this platform's pyconfig.h.
WINDOWS_PYCONFIG = """\
#ifndef Py_CONFIG_H
#define Py_CONFIG_H
#include <io.h>
#include <float.h>
#include <basetsd.h>
#include <stdio.h>
#define MS_WIN32
#define MS_WINDOWS
#define MS_WIN64
#define NT_THREADS
#define WITH_THREAD
#define LONG_BIT 32
#define WORD_BIT 32
typedef __int64 ssize_t;
#define HAVE_SSIZE_T 1
typedef int pid_t;
#define PY_LONG_LONG __int64
#define PY_LLONG_MAX _I64_MAX
#define PY_LLONG_MIN _I64_MIN
#define PY_ULLONG_MAX _UI64_MAX
#define Py_ENABLE_SHARED 1
#define MS_COREDLL
#define HAVE_DECLSPEC_DLL
#define PLATFORM "win32"
#define SIZEOF_VOID_P 8
#define SIZEOF_TIME_T 8
#define SIZEOF_OFF_T 4
#define SIZEOF_FPOS_T 8
#define SIZEOF_HKEY 8
#define SIZEOF_SIZE_T 8
#define SIZEOF_SHORT 2
#define SIZEOF_INT 4
#define SIZEOF_LONG 4
#define SIZEOF_LONG_LONG 8
#define SIZEOF_DOUBLE 8
#define SIZEOF_FLOAT 4
#define SIZEOF_WCHAR_T 2
#define SIZEOF__BOOL 1
#define HAVE_LARGEFILE_SUPPORT
#define HAVE_UINTPTR_T 1
#define HAVE_INTPTR_T 1
#define HAVE_COPYSIGN 1
#define HAVE_ROUND 1
#define HAVE_DECL_ISINF 1
#define HAVE_DECL_ISNAN 1
#define STDC_HEADERS 1
#define WITH_DOC_STRINGS 1
#define WITH_PYMALLOC 1
#define HAVE_DYNAMIC_LOADING
#endif
"""


class Skip(Exception):
    """A step that cannot run here, with the reason."""


def macros(spec: dict) -> list[str]:
    return [f"-DPy_LIMITED_API={spec['LIMITED_API']}"]


def python_include() -> Path:
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        raise Skip(f"no Python.h under {include} (install the Python headers)")
    return include


def compiler(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise Skip(f"{name} is not on PATH (Debian: apt-get install {name})")
    return path


def run(argv: list[str]) -> bool:
    print("  $ " + " ".join(argv), flush=True)
    done = subprocess.run(argv, capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip()
    if output:
        print("    " + output.replace("\n", "\n    "))
    return done.returncode == 0 and not output  # -Werror aside, a note or warning counts too


def native(name: str, spec: dict, root: Path, work: Path) -> bool:
    cc, include = compiler(name), python_include()
    ok = True
    for source in setup_spec.sources(spec):
        out = work / f"{name}-{Path(source).stem}.o"
        argv = [cc, *WARNINGS, *spec["UNIX_FLAGS"], *macros(spec), f"-I{include}", "-fPIC", "-c", str(root / source)]
        ok &= run([*argv, "-o", str(out)])
    return ok


def windows_headers(work: Path) -> Path:
    """CPython's headers with WINDOWS_PYCONFIG in place of pyconfig.h (Python.h includes it by
    a quoted name, so it must sit in the headers' own folder)."""
    staged = work / "python-windows-include"
    shutil.copytree(python_include(), staged)
    (staged / "pyconfig.h").write_text(WINDOWS_PYCONFIG)
    return staged


def msvc_route(spec: dict, root: Path, work: Path) -> bool:
    clang = compiler("clang")
    mingw = next((Path(p) for p in MINGW_INCLUDES if (Path(p) / "basetsd.h").is_file()), None)
    if mingw is None:
        raise Skip("no Windows C headers (Debian: apt-get install mingw-w64-x86-64-dev)")
    mode = ["--target=x86_64-pc-windows-msvc", "-fms-compatibility", "-fms-extensions"]
    predefined = subprocess.run([clang, *mode, "-dM", "-E", "-x", "c", os.devnull], capture_output=True, text=True)
    defined = {line.split()[1] for line in predefined.stdout.splitlines() if line.startswith("#define ")}
    if "_MSC_VER" not in defined or "__GNUC__" in defined or "_WIN64" not in defined:
        print(f"  clang's MSVC mode is not MSVC-like (_MSC_VER, _WIN64, no __GNUC__): {predefined.stderr}")
        return False
    include = windows_headers(work)
    ok = True
    for source in setup_spec.sources(spec):
        argv = [clang, *mode, "-fsyntax-only", *WARNINGS, *macros(spec), "-isystem", str(mingw), f"-I{include}"]
        ok &= run([*argv, str(root / source)])
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require-all", action="store_true", help="a step that cannot run fails")
    args = parser.parse_args(argv)
    root = setup_spec.ROOT
    spec = setup_spec.read()
    print(f"sources (setup.py C_EXTENSIONS): {', '.join(setup_spec.sources(spec))}")
    steps = {
        "gcc -Wall -Wextra": lambda work: native("gcc", spec, root, work),
        "clang -Wall -Wextra": lambda work: native("clang", spec, root, work),
        "MSVC route (clang, MSVC mode, syntax only)": lambda work: msvc_route(spec, root, work),
    }
    failed, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, step) in enumerate(steps.items()):
            print(f"-- {name}", flush=True)
            work = Path(tmp) / str(index)
            work.mkdir()
            try:
                ok = step(work)
            except Skip as why:
                print(f"skipped: {why}")
                skipped.append(name)
                continue
            print("ok" if ok else "FAILED")
            if not ok:
                failed.append(name)
    if skipped:
        print(f"skipped: {'; '.join(skipped)}")
    if failed or (skipped and args.require_all):
        print(f"compile check failed: {'; '.join(failed + (skipped if args.require_all else []))}")
        return 1
    print("compile check passed" + (" (with skips)" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
