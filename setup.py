"""The compiled part of the build: the CPU pass (backends/_cpu_pass.c).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be
compiled (no C compiler), the install still succeeds and the engines that use it decline, so
the portable path computes (bce_compat.backends.cpu_pass.AVAILABLE tells which).
"""

import sys

from setuptools import Extension, setup

# -fno-trapping-math lets GCC turn the pass's selects into vector blends (it does not vectorise
# the loop otherwise; the pass relies on no floating-point exception flags). -ffp-contract=fast
# fuses the polynomials' multiply-adds where the CPU has FMA (GCC's default outside ISO C modes).
UNIX_FLAGS = ["-O3", "-fno-trapping-math", "-ffp-contract=fast"]

setup(
    ext_modules=[
        Extension(
            "bce_compat.backends._cpu_pass",
            sources=["backends/_cpu_pass.c"],
            depends=["backends/_cpu_math.h"],
            extra_compile_args=[] if sys.platform == "win32" else UNIX_FLAGS,
            optional=True,
        )
    ]
)
