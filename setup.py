"""The compiled part of the build: the CPU pass (backends/_cpu_pass.c), one extension on
CPython's stable ABI.

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be
compiled (no C compiler), the install still succeeds and the engines that use it decline, so
the portable path computes (bce_compat.backends.cpu_pass.AVAILABLE tells which).

C_EXTENSIONS is the one declaration of the compiled modules. The release checks
(.ci/compile_check.py, .ci/check_dists.py, tests/test_packaging.py) read it, LIMITED_API and
UNIX_FLAGS with ast.literal_eval (.ci/setup_spec.py), without running this file: keep them literals.
"""

import sys
import sysconfig

from setuptools import Extension, setup

# name: the importable module; sources: the C files compiled into it; depends: the headers they
# include (shipped in the sdist; a change to one rebuilds the module).
C_EXTENSIONS = [
    {
        "name": "bce_compat.backends._cpu_pass",
        "sources": ["backends/_cpu_pass.c"],
        "depends": ["backends/_cpu_math.h", "backends/_cpu_team.h", "backends/_cpu_f16c.h"],
    },
]

# CPython 3.11's stable ABI (the buffer protocol is in it from 3.11): the wheel is tagged
# cp311-abi3 and one wheel per platform serves CPython 3.11 and every later version.
LIMITED_API = "0x030B0000"
ABI3_TAG = "cp311"

# -fno-trapping-math lets GCC turn the pass's selects into vector blends (it does not vectorise
# the loop otherwise; the pass relies on no floating-point exception flags). -ffp-contract=fast
# fuses the polynomials' multiply-adds where the CPU has FMA (GCC's default outside ISO C modes).
# -pthread (compiling and linking): the pass's own thread team (backends/_cpu_team.h); on glibc
# before 2.28 it also links pthread_atfork, which lives in libpthread_nonshared.a there.
UNIX_FLAGS = ["-O3", "-fno-trapping-math", "-ffp-contract=fast", "-pthread"]


def stable_abi() -> bool:
    """Whether this interpreter can build against the stable ABI: the free-threaded builds
    (3.13t, 3.14t) have none, so a source install there builds a version-specific module."""
    return not sysconfig.get_config_var("Py_GIL_DISABLED")


def extension(spec: dict) -> Extension:
    abi3 = stable_abi()
    return Extension(
        spec["name"],
        sources=spec["sources"],
        depends=spec["depends"],
        define_macros=[("Py_LIMITED_API", LIMITED_API)] if abi3 else [],
        py_limited_api=abi3,
        extra_compile_args=[] if sys.platform == "win32" else UNIX_FLAGS,
        extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
        optional=True,
    )


if __name__ == "__main__":  # setuptools runs this file as __main__; the release checks only parse it
    setup(
        ext_modules=[extension(spec) for spec in C_EXTENSIONS],
        options={"bdist_wheel": {"py_limited_api": ABI3_TAG}} if stable_abi() else {},
    )
