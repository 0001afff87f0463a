"""backends/_cpu_math.h: its error bounds, measured by tests/native/check_cpu_math.c.

The C program is compiled with the system C compiler and setup.py's flags, twice where the CPU
allows: for the baseline target (no FMA: the ``default`` clone of the CPU pass) and with
``-march=x86-64-v3`` (FMA contraction: the v3/v4 clones). Each run prints its measurements;
the bounds below are what the header claims (its comments give the reasoning). The CI run is
sized to finish in well under a minute on two cores:

- conversions: every float32 -> float16/bfloat16 input (2**32) in one build, every half value;
- exp/composite/fast pair: every float a in [2**-25, 746], every 16th chunk of 65536 elsewhere;
- log1p and the probabilities' fast pair: every float e in [2**-25, 1], every 16th chunk below;
- float64: 1e6 random inputs per function against 80-bit long double.

The full run (every float32 input of every function, libm as the float32 reference, vector ==
scalar on every input, 1e8 float64 samples; about an hour on two cores) is:

    BCE_CPU_MATH_FULL=1 python -m pytest tests/test_cpu_math.py -k checks -s

or by hand, as tests/native/check_cpu_math.c's header says. bench/README.md has its figures.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = ROOT / "backends" / "_cpu_math.h"
CHECKER = ROOT / "tests" / "native" / "check_cpu_math.c"
FLAGS = ["-O3", "-fno-trapping-math", "-ffp-contract=fast"]  # setup.py's
FULL = os.environ.get("BCE_CPU_MATH_FULL") == "1"

# The header's claims: worst error over the inputs checked (ulps, or units of 2**-24 / 2**-53
# relative, or ulps of the smallest subnormal for *_subnormal_abs), with the full run's figures.
# Every count of wrong results (*_wrong, *_vs_cast, *_not_zero, *_vs_scalar) is 0.
BOUNDS = {
    # float32, every input in the full run (GCC 12: no FMA / FMA)
    "expf_ulp": 0.95,  # 0.903 / 0.880
    "expf_rel": 1.3,  # 1.254 / 1.235
    "expf_subnormal_abs": 0.8,  # 0.750
    "composite_ulp": 1.7,  # 1.620 / 1.543
    "composite_rel": 2.25,  # 2.143 / 2.104; the CPU pass's budget is 3
    "composite_subnormal_abs": 0.8,  # 0.750
    "fast_e_rel": 0.0035,  # 0.0018 / 0.0018: the float32 loss's double pair, 1.2e-10 relative claimed
    # (0.002 x 2**-24)
    "fast_t_rel": 0.0035,  # 0.0022 / 0.0022
    # the probabilities' pair (float32 and half results): -log q and -log(1 - q), 4e-11 claimed
    "fast_log_rel": 0.0007,  # every float32 q in (0, 1)
    "fast_log1m_rel": 0.0007,
    "log1pf_ulp": 0.95,  # 0.902 / 0.784
    "log1pf_rel": 1.35,  # 1.305 / 1.292
    # float64, 1e8 random inputs in the full run
    "exp_ulp": 0.8,  # 0.721 / 0.714
    "exp_subnormal_abs": 0.85,  # 0.797
    "log1p_ulp": 0.8,  # 0.733 / 0.715
    "log_ulp": 0.75,  # 0.661 / 0.658
    "pow_ulp_g0.25": 0.8,  # 0.726 / 0.708
    "pow_ulp_g0.5": 0.8,  # 0.735 / 0.699
    "pow_ulp_g1": 0.8,  # 0 / 0
    "pow_ulp_g1.5": 0.8,  # 0.734 / 0.696
    "pow_ulp_g2": 0.8,  # 0.709 / 0.698
    "pow_ulp_g3": 0.85,  # 0.772 / 0.728
    "pow_ulp_g5": 0.95,  # 0.849 / 0.854
    "pow_ulp_g0to8": 1.05,  # 0.998 / 0.980
    "pow_subnormal_abs": 0.85,  # 0.797
}


def _compiler() -> str | None:
    """The C compiler Python's build would use ($CC first), if one is on PATH."""
    candidates = [os.environ.get("CC"), (sysconfig.get_config_var("CC") or "").split(" ")[0], "cc", "gcc", "clang"]
    for name in candidates:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _has_fma() -> bool:
    """AVX2 and FMA, as NumPy's dispatcher sees them (the CPU that runs the test)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        return False
    return bool(features.get("AVX2") and features.get("FMA3"))


def _compile(cc: str, source: pathlib.Path, output: pathlib.Path, extra: list[str]) -> subprocess.CompletedProcess:
    command = [cc, *FLAGS, *extra, "-pthread", str(source), "-o", str(output), "-lm"]
    return subprocess.run(command, capture_output=True, text=True)


def parse(output: str) -> dict[str, float]:
    """The checker's "name value [input]" lines as {name: value}.

    >>> parse("mode quick\\nexp_ulp 0.5 0x3ff0000000000000\\nf16_to_f32_wrong 0 0x0\\ndone")
    {'exp_ulp': 0.5, 'f16_to_f32_wrong': 0.0}
    """
    values = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and re.fullmatch(r"[-+0-9.einf]+", parts[1]):
            values[parts[0]] = float(parts[1])
    return values


def _builds() -> list[pytest.param]:
    builds = [pytest.param("baseline", [], id="baseline")]
    fma = pytest.mark.skipif(not _has_fma(), reason="this CPU has no AVX2+FMA for the x86-64-v3 build")
    builds.append(pytest.param("x86-64-v3", ["-march=x86-64-v3"], id="x86-64-v3", marks=fma))
    return builds


@pytest.fixture(scope="module")
def cc() -> str:
    if sys.platform == "win32":
        pytest.skip("the checker uses POSIX threads and x87 long double (MSVC has neither)")
    found = _compiler()
    if found is None:
        pytest.skip("no C compiler on PATH (cc, gcc or clang; or $CC)")
    return found


def _runs(name: str) -> list[list[str]]:
    """The checker's invocations for one build: the full run, or the CI-sized one."""
    if FULL:
        return [["--full"]]
    # the conversions have no multiply-add for FMA to change: every input in one build (the
    # faster one), every 16th chunk in the other
    conv_build = "x86-64-v3" if _has_fma() else "baseline"
    conv = ["--only", "conv"] if name == conv_build else ["--stride", "16", "--only", "conv"]
    return [["--stride", "16", "--only", "exp32"], ["--stride", "16", "--only", "log32"], ["--only", "f64"], conv]


def _run_checker(cc: str, tmp_path: pathlib.Path, name: str, extra: list[str]) -> dict[str, float]:
    binary = tmp_path / f"check_{name}"
    built = _compile(cc, CHECKER, binary, extra)
    if built.returncode != 0 and extra:
        pytest.skip(f"{cc} cannot build for {name}: {built.stderr.strip()[:200]}")
    assert built.returncode == 0, built.stderr
    values: dict[str, float] = {}
    for args in _runs(name):
        output = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True).stdout
        print(output)
        values.update(parse(output))
    return values


@pytest.mark.parametrize("name, extra", _builds())
def test_checks(cc, tmp_path, name, extra):
    """Every bound the header claims holds in this build; special values and conversions are exact."""
    values = _run_checker(cc, tmp_path, name, extra)
    if "f64_skipped" not in values:
        assert values.get("f64_samples", 0) >= 1e6
    assert values.get("exp32_inputs_checked", 0) >= (0x7F800001 if FULL else 0x113A8000)
    failures = [
        f"{key} = {values[key]} > {bound}" for key, bound in BOUNDS.items() if key in values and values[key] > bound
    ]
    failures += [
        f"{key} = {value:g}"
        for key, value in values.items()
        if key.endswith(("_wrong", "_vs_cast", "_not_zero", "_vs_scalar")) and value
    ]
    assert not failures, failures
    missing = [
        key
        for key in BOUNDS
        if key not in values and not (key.startswith(("exp_", "log_", "log1p_", "pow_")) and "f64_skipped" in values)
    ]
    assert not missing, f"the checker printed no {missing}"


def test_polynomials_meet_their_fitted_bounds():
    """The coefficients in the header are the ones whose approximation error the proofs use."""
    pytest.importorskip("mpmath")
    sys.path.insert(0, str(ROOT / "tests" / "native"))
    try:
        import fit_cpu_math
    finally:
        sys.path.pop(0)
    found = fit_cpu_math.header_coefficients(HEADER.read_text())
    assert sorted(found) == sorted(fit_cpu_math.POLYNOMIALS)
    for name, coefficients in found.items():
        _, degree, _, allowed = fit_cpu_math.POLYNOMIALS[name]
        assert len(coefficients) == degree + 1
        assert fit_cpu_math.bound(name, coefficients, points=1001) <= allowed, name


def test_the_fast_log_is_the_fitted_interpolant():
    """bce_log_unit_fast's constants are fit_cpu_math.py's interpolant (1.9e-11 relative), so the
    checker's measurement and the comment's reasoning are about the same polynomial."""
    pytest.importorskip("mpmath")
    sys.path.insert(0, str(ROOT / "tests" / "native"))
    try:
        import fit_cpu_math
    finally:
        sys.path.pop(0)
    text = HEADER.read_text()
    body = text[text.index("BCE_INLINE double bce_log_unit_fast"):]
    body = body[:body.index("\n}\n")]
    constants = {name: float.fromhex(value) for name, value in re.findall(r"\b(c\d+|mid|inv_half) = (-?0x[0-9a-f.]+p[-+]?\d+)", body)}
    fitted = fit_cpu_math.fast_log_coefficients()
    assert [constants[f"c{k}"] for k in range(len(fitted))] == fitted
    mid, half = fit_cpu_math.fast_log_interval()
    assert (constants["mid"], constants["inv_half"]) == (float(mid), float(1 / half))
    assert fit_cpu_math.fast_log_error(fitted, points=401) < 2e-11


USES = """
#include <stdint.h>
#include "{header}"
float f1(float a) {{ return bce_log1pf_unit(bce_expf_neg(a)); }}
double f2(double a) {{ return bce_log1p_unit_fast(bce_exp_neg_fast(a)) + bce_log_unit_fast(a); }}
double f3(double a, double m, double g) {{ return bce_log1p_unit(bce_exp_neg(a)) + bce_log_unit(m) + bce_pow_unit(m, g); }}
float f4(uint16_t h, uint16_t b) {{ return bce_f16_to_f32(h) + bce_bf16_to_f32(b); }}
uint32_t f5(float x) {{ return (uint32_t)bce_f32_to_f16(x) + bce_f32_to_bf16(x); }}
"""


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_header_compiles_without_warnings(tmp_path, compiler):
    """C99, -Wall -Wextra -Wpedantic, as errors, with GCC and Clang."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    source = tmp_path / "uses.c"
    source.write_text(USES.format(header=HEADER))
    command = [
        compiler,
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Wpedantic",
        "-Werror",
        *FLAGS,
        "-c",
        str(source),
        "-o",
        str(tmp_path / "uses.o"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


LOOPS = """
#include <stdint.h>
#include "{header}"
void l_expf(const float *restrict a, float *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_expf_neg(a[i]); }}
void l_log1pf(const float *restrict a, float *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_log1pf_unit(a[i]); }}
void l_exp_fast(const double *restrict a, double *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_exp_neg_fast(a[i]); }}
void l_log1p_fast(const double *restrict a, double *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_log1p_unit_fast(a[i]); }}
void l_exp(const double *restrict a, double *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_exp_neg(a[i]); }}
void l_log1p(const double *restrict a, double *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_log1p_unit(a[i]); }}
void l_log(const double *restrict a, double *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_log_unit(a[i]); }}
void l_pow(const double *restrict a, const double *restrict g, double *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_pow_unit(a[i], g[i]); }}
void l_f16(const uint16_t *restrict a, float *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_f16_to_f32(a[i]); }}
void l_to_f16(const float *restrict a, uint16_t *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_f32_to_f16(a[i]); }}
void l_bf16(const uint16_t *restrict a, float *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_bf16_to_f32(a[i]); }}
void l_to_bf16(const float *restrict a, uint16_t *restrict o, int n) {{ for (int i = 0; i < n; i++) o[i] = bce_f32_to_bf16(a[i]); }}
"""


@pytest.mark.parametrize("extra", [[], ["-march=x86-64-v3"]], ids=["baseline", "x86-64-v3"])
def test_every_function_vectorises_with_gcc(tmp_path, extra):
    """A loop over each function is vectorised by GCC with setup.py's flags (no call, no branch)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    source = tmp_path / "loops.c"
    text = LOOPS.format(header=HEADER)
    source.write_text(text)
    command = [
        "gcc",
        "-std=c99",
        *FLAGS,
        *extra,
        "-fopt-info-vec-optimized",
        "-c",
        str(source),
        "-o",
        str(tmp_path / "loops.o"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 and extra:
        pytest.skip(f"gcc cannot target {extra}: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr
    vectorised = {int(line) for line in re.findall(r"loops\.c:(\d+):\d+: optimized: loop vectorized", result.stderr)}
    lines = text.splitlines()
    loops = {number + 1: line.split("(")[0] for number, line in enumerate(lines) if line.startswith("void l_")}
    missing = [name for number, name in loops.items() if number not in vectorised]
    assert not missing, f"not vectorised: {missing}\n{result.stderr}"
