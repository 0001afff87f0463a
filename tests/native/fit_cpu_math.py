"""The polynomials of backends/_cpu_math.h: minimax fits in mpmath, and their error bounds.

    python tests/native/fit_cpu_math.py          # fit, round, print the C macros and each bound
    python tests/native/fit_cpu_math.py --check  # only measure the coefficients in the header
    python tests/native/fit_cpu_math.py --fast-log  # bce_log_unit_fast's interpolant and its error

Each polynomial replaces the part of a function that is left after the exact steps (range
reduction, leading terms), so its error is weighted by how much it moves the final result:

- exp: exp(r) = 1 + r + r**2 * P(r) on |r| <= R (R is ln2/2 plus the reduction's slack);
  the error of P moves exp(r) by r**2 * |P - P*| / exp(r) relative.
- log: log1p(f) = 2s + s*z*L(z), s = f/(2+f), z = s**2 in [0, Z] (|s| <= 0.2 for every f
  the functions reduce to, plus slack for the rounding of s); the error of L moves the result
  by |s|**3 * |L - L*| / |2 atanh(s)| relative (or less: the results with a k*ln2 term are larger).

The fit is a Remez exchange on a dense grid for that weighted error. The bound printed for the
rounded coefficients is the maximum of the weighted error over 20,001 Chebyshev-spaced points
(plus the ends) at 60 digits; the error curve of a degree-d polynomial has d+2 smooth extrema,
so a grid this dense finds each to a relative 1e-6 (the functions are analytic on the interval:
exp entire, atanh with its nearest singularity at s = +-1, five times the interval's radius).

The check (`--check`, and tests/test_cpu_math.py) reads the macros back from the header and
asserts each bound, so a changed coefficient cannot go unmeasured.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import struct

import mpmath as mp

mp.mp.dps = 60
HEADER = pathlib.Path(__file__).resolve().parents[2] / "backends" / "_cpu_math.h"

# name: (kind, degree, precision, bound in units of 2**-24 (float) or 2**-53 (double))
POLYNOMIALS = {
    "BCE_EXPF_P": ("exp", 4, "float", 0.06),
    "BCE_LOGF_L": ("log", 3, "float", 0.001),
    "BCE_EXP_P": ("exp", 9, "double", 0.05),
    "BCE_LOG_L": ("log", 7, "double", 0.002),
}
EXP_RADIUS = {"float": mp.mpf("0.3467"), "double": mp.mpf("0.34658")}
LOG_Z = mp.mpf("0.0401")
UNIT = {"float": mp.mpf(2) ** -24, "double": mp.mpf(2) ** -53}


def exp_target(r):
    """P*(r) = (expm1(r) - r) / r**2 and the weight r**2 / exp(r)."""
    if r == 0:
        return mp.mpf(1) / 2, mp.mpf(0)
    return (mp.expm1(r) - r) / r**2, r**2 / mp.exp(r)


def log_target(z):
    """L*(z) = (2 atanh(s) - 2s) / (s z), s = sqrt(z), and the weight s**3 / (2 atanh(s))."""
    if z == 0:
        return mp.mpf(2) / 3, mp.mpf(0)
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) - 2 * s) / (s * z), s**3 / (2 * mp.atanh(s))


def interval(kind: str, precision: str):
    if kind == "exp":
        radius = EXP_RADIUS[precision]
        return exp_target, -radius, radius
    return log_target, LOG_Z * mp.mpf(10) ** -12, LOG_Z


def grid(lo, hi, count: int):
    return [lo + (hi - lo) * (1 - mp.cos(mp.pi * i / (count - 1))) / 2 for i in range(count)]


def weighted_error(coefficients, target, points):
    worst = mp.mpf(0)
    for x in points:
        value, weight = target(x)
        worst = max(worst, abs(weight * (value - mp.polyval(coefficients[::-1], x))))
    return worst


def remez(target, lo, hi, degree: int, fixed=(), points: int = 3000, iterations: int = 40):
    """Discrete Remez exchange for max |w(x) (g(x) - P(x))| on a grid of ``points``.

    ``fixed``: the first coefficients of P, already chosen; the others are fitted.
    """
    xs = grid(lo, hi, points)
    values = [target(x) for x in xs]
    first = len(fixed)
    n = degree + 2 - first
    reference = [round((points - 1) * (1 - mp.cos(mp.pi * i / (n - 1))) / 2) for i in range(n)]
    coefficients: list = []
    for _ in range(iterations):
        matrix, rhs = mp.matrix(n, n), mp.matrix(n, 1)
        for row, i in enumerate(reference):
            for k in range(first, degree + 1):
                matrix[row, k - first] = xs[i] ** k
            matrix[row, n - 1] = (-1) ** row / values[i][1]
            rhs[row] = values[i][0] - mp.polyval(list(fixed)[::-1], xs[i])
        solution = mp.lu_solve(matrix, rhs)
        coefficients = list(fixed) + [solution[k] for k in range(n - 1)]
        errors = [w * (g - mp.polyval(coefficients[::-1], x)) for x, (g, w) in zip(xs, values)]
        runs, start = [], 0
        for j in range(1, points + 1):
            if j == points or (errors[j] != 0 and mp.sign(errors[j]) != mp.sign(errors[start])):
                runs.append(max(range(start, j), key=lambda k: abs(errors[k])))
                start = j
        while len(runs) > n:
            runs.pop(0 if abs(errors[runs[0]]) < abs(errors[runs[-1]]) else -1)
        if len(runs) < n:
            break
        reference = runs
        largest, smallest = max(abs(e) for e in errors), min(abs(errors[k]) for k in runs)
        if largest <= smallest * (1 + mp.mpf(10) ** -8):
            break
    return coefficients


def to_float(value) -> float:
    return struct.unpack("f", struct.pack("f", float(value)))[0]


def c_literal(value: float, precision: str) -> str:
    mantissa, exponent = float.hex(value).split("p")
    text = mantissa.rstrip("0").rstrip(".") + "p" + exponent
    return text + "f" if precision == "float" else text


def fit(name: str):
    kind, degree, precision, _ = POLYNOMIALS[name]
    target, lo, hi = interval(kind, precision)
    rounded: list[float] = []
    for _ in range(degree + 1):  # round one coefficient at a time, refitting the higher ones
        exact = remez(target, lo, hi, degree, fixed=[mp.mpf(c) for c in rounded])
        value = exact[len(rounded)]
        rounded.append(to_float(value) if precision == "float" else float(value))
    return rounded


def bound(name: str, coefficients, points: int = 20001) -> mp.mpf:
    """The weighted error of ``coefficients`` (lowest degree first), in units of 2**-24 or 2**-53.

    Taylor's coefficients are 50 times worse than the minimax fit:

    >>> round(float(bound("BCE_EXPF_P", [0.5, 1 / 6, 1 / 24, 1 / 120, 1 / 720], points=201)), 1)
    2.7
    """
    kind, _, precision, _ = POLYNOMIALS[name]
    target, lo, hi = interval(kind, precision)
    points = grid(lo, hi, points)
    return weighted_error([mp.mpf(c) for c in coefficients], target, points) / UNIT[precision]


def header_coefficients(text: str) -> dict[str, list[float]]:
    """The polynomials' coefficients #defined in ``text``, by name, lowest degree first.

    >>> header_coefficients("#define BCE_EXP_P1 0x1.8p-1\\n#define BCE_EXP_P0 -0x1p0")
    {'BCE_EXP_P': [-1.0, 0.75]}
    """
    found: dict[str, dict[int, float]] = {}
    for name, index, literal in re.findall(r"#define (BCE_\w+?_[PL])(\d+) +(-?0x[0-9a-fA-F.]+p[-+]?\d+)f?\b", text):
        if name in POLYNOMIALS:
            found.setdefault(name, {})[int(index)] = float.fromhex(literal)
    return {name: [by_index[k] for k in sorted(by_index)] for name, by_index in found.items()}


# bce_log_unit_fast: log1p(f)/f on [sqrt(1/2) - 1, sqrt(2) - 1] (widened by 1e-6), in t mapping
# that interval onto [-1, 1]; the Chebyshev interpolant of degree 12 in monomial form.
FAST_LOG_DEGREE = 12


def fast_log_interval():
    lo = mp.sqrt(mp.mpf(1) / 2) - 1 - mp.mpf("1e-6")
    hi = mp.sqrt(2) - 1 + mp.mpf("1e-6")
    return (lo + hi) / 2, (hi - lo) / 2


def _log1p_ratio(f):
    return mp.mpf(1) if f == 0 else mp.log1p(f) / f


def fast_log_coefficients(degree: int = FAST_LOG_DEGREE) -> list[float]:
    """The interpolant's monomial coefficients in t, lowest degree first, rounded to double.

    >>> [round(c, 6) for c in fast_log_coefficients()[:2]]
    [0.970843, -0.163396]
    """
    mid, half = fast_log_interval()
    n = degree + 1
    values = [_log1p_ratio(mid + half * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n)) for k in range(n)]
    chebyshev = [2 * mp.fsum(values[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k in range(n)) / n
                 for j in range(n)]
    chebyshev[0] /= 2
    basis = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]  # T_0, T_1 in monomial form; T_j = 2t T_(j-1) - T_(j-2)
    while len(basis) < n:
        doubled = [mp.mpf(0)] + [2 * a for a in basis[-1]]
        basis.append([a - (basis[-2][i] if i < len(basis[-2]) else 0) for i, a in enumerate(doubled)])
    monomial = [mp.fsum(chebyshev[j] * basis[j][i] for j in range(i, n) if i < len(basis[j])) for i in range(n)]
    return [float(c) for c in monomial]


def fast_log_error(coefficients, points: int = 2001) -> mp.mpf:
    """The relative error of f * Q(t) against log1p(f) over the interval (Chebyshev-spaced points)."""
    mid, half = fast_log_interval()
    worst = mp.mpf(0)
    for k in range(points):
        t = mp.cos(mp.pi * k / (points - 1))
        value = mp.mpf(0)
        for c in reversed(coefficients):
            value = value * t + mp.mpf(c)
        exact = _log1p_ratio(mid + half * t)
        worst = max(worst, abs(value - exact) / exact)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="measure the header's coefficients only")
    parser.add_argument("--only", choices=sorted(POLYNOMIALS), help="one polynomial")
    parser.add_argument("--points", type=int, default=20001, help="grid points for the bound (default 20001)")
    parser.add_argument("--fast-log", action="store_true", help="bce_log_unit_fast's coefficients and error")
    args = parser.parse_args()
    if args.fast_log:
        mid, half = fast_log_interval()
        print(f"mid = {float(mid).hex()}, inv_half = {float(1 / half).hex()}")
        coefficients = fast_log_coefficients()
        for k, value in enumerate(coefficients):
            print(f"c{k} = {value.hex()}")
        print(f"relative error {mp.nstr(fast_log_error(coefficients), 3)}")
        return
    names = [args.only] if args.only else list(POLYNOMIALS)
    if args.check:
        coefficients = {
            name: values for name, values in header_coefficients(HEADER.read_text()).items() if name in names
        }
    else:
        coefficients = {name: fit(name) for name in names}
    for name, values in coefficients.items():
        kind, degree, precision, allowed = POLYNOMIALS[name]
        assert len(values) == degree + 1, f"{name}: {len(values)} coefficients, expected {degree + 1}"
        measured = bound(name, values, args.points)
        unit = "2**-24" if precision == "float" else "2**-53"
        print(f"/* {name}: {kind}, degree {degree}, {precision}: weighted error {mp.nstr(measured, 4)} x {unit} */")
        if not args.check:
            for k, value in enumerate(values):
                print(f"#define {name}{k} {c_literal(value, precision)}")
        assert measured <= allowed, f"{name}: {mp.nstr(measured, 4)} > {allowed}"


if __name__ == "__main__":
    main()
