"""Smoke test of an installed bce_compat, as a user gets it: run by cibuildwheel on every wheel
(pyproject.toml's test-command) and by .ci/run's wheels job (wheel and sdist installs).

1. The compiled CPU pass: ``FAST_PATH.AVAILABLE`` is True (a wheel), or False with ``--portable``
   (a source install without a C compiler).
2. A handful of losses (float32 and float64, the reductions, broadcast weight and pos_weight, the
   limits at ±inf, an input split over threads) within the accuracy promise of an exact mpmath
   evaluation (float64 terms summed exactly for the 2**15-element float32 sum; docs/contract.md
   §4: 4 ulp unreduced; reductions 4 ulp plus log2(n) for the sum).
   ``--save FILE`` writes them, ``--compare FILE`` checks them against those of another install.
3. ``bce-compat conformance --backends numpy --quiet``: the console script and the case files.

Run it from outside the source tree (cibuildwheel and .ci/run do), so the installed package is
what is imported:

    python .ci/smoke.py [--portable] [--save numbers.json | --compare numbers.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# The module whose AVAILABLE says whether the compiled CPU pass was built and imports.
FAST_PATH = "bce_compat.backends.cpu_pass"

UNREDUCED_ULPS = 4


def exact_loss(x: float, y: float, weight: float = 1.0, pos_weight: float = 1.0):
    """w * [p*y*softplus(-x) + (1-y)*softplus(x)] at 60 digits; a zero coefficient gives exactly 0."""
    import mpmath

    with mpmath.workdps(60):
        def term(coefficient, z):
            if coefficient == 0:
                return mpmath.mpf(0)
            return coefficient * (mpmath.log1p(mpmath.exp(z)) if z < 0 else z + mpmath.log1p(mpmath.exp(-z)))

        x_, y_ = mpmath.mpf(x), mpmath.mpf(y)
        return mpmath.mpf(weight) * (term(mpmath.mpf(pos_weight) * y_, -x_) + term(1 - y_, x_))


def cases():
    """(name, the computed loss, the exact values, reduction) for each case."""
    import mpmath
    import numpy as np

    import bce_compat

    def run(name, x, y, reduction, weight=None, pos_weight=None):
        got = np.asarray(bce_compat.binary_cross_entropy_with_logits(
            x, y, weight=weight, pos_weight=pos_weight, reduction=reduction))
        w = np.broadcast_to(1.0 if weight is None else weight, x.shape)
        p = np.broadcast_to(1.0 if pos_weight is None else pos_weight, x.shape)
        if x.size > 10_000:  # float64 terms summed exactly: ample for a float32 result, 40x faster than mpmath
            x64, y64 = x.astype(np.float64), y.astype(np.float64)
            terms = w * (p * y64 * np.logaddexp(0, -x64) + (1 - y64) * np.logaddexp(0, x64))
            exact = [mpmath.mpf(math.fsum(terms.ravel().tolist()))]
            exact = exact if reduction == "sum" else [exact[0] / x.size]
            return name, got, exact, reduction, x.size
        exact = [exact_loss(*map(float, v)) for v in zip(x.ravel(), y.ravel(), w.ravel(), p.ravel())]
        if reduction == "sum":
            exact = [mpmath.fsum(exact)]
        elif reduction == "mean":
            exact = [mpmath.fsum(exact) / len(exact)]
        return name, got, exact, reduction, x.size

    f32 = np.float32
    x = np.array([-20, -1.5, 0, 0.5, 3, 30], f32)
    y = np.array([0, 1, 0.25, 1, 0, 1], f32)
    yield run("float32 none (x = -20, y = 0: 2.06e-9)", x, y, "none")
    yield run("float32 sum, weight and pos_weight", x, y, "sum", np.linspace(0.5, 2, 6).astype(f32), np.full(6, 2, f32))
    rng = np.random.default_rng(25)
    yield run("float32 [4, 3] none, per-row weight [4, 1], pos_weight [3]",
              rng.normal(0, 4, (4, 3)).astype(f32), rng.uniform(0, 1, (4, 3)).astype(f32), "none",
              np.array([[1], [2], [0.5], [3]], f32), np.array([1, 2, 3], f32))
    inf = math.inf
    yield run("float64 none, the limits at +-inf", np.array([inf, -inf, inf, -inf]), np.array([1.0, 0, 0, 1]), "none")
    yield run("float64 mean, 1001 elements", np.linspace(-40, 40, 1001), (np.arange(1001) % 3) / 2, "mean")
    n = (1 << 15) + 3  # past cpu_pass.PARALLEL_MIN: split over threads, block sums
    x, y = np.linspace(-30, 30, n, dtype=f32), ((np.arange(n) % 5) / 4).astype(f32)
    yield run("float32 sum, 2**15 + 3 elements", x, y, "sum")


def ulps(got, want) -> float:
    """How many ulps of got's dtype apart two values are (0 when equal, inf infinities included; inf for NaN)."""
    import numpy as np

    got, want = got.dtype.type(got), got.dtype.type(want)
    if got == want:
        return 0.0
    if not (np.isfinite(got) and np.isfinite(want)):
        return math.inf
    return float(abs(got - want) / np.spacing(max(abs(got), abs(want))))


def check_numbers(compare_with: dict | None) -> tuple[list[str], dict]:
    failures, saved = [], {}
    for name, got, exact, reduction, size in cases():
        allowed = UNREDUCED_ULPS + (math.ceil(math.log2(size)) if reduction == "sum" else 0)
        flat = got.ravel()
        worst = max(ulps(g, float(e)) for g, e in zip(flat, exact))
        saved[name] = [float(v).hex() for v in flat]
        shown = f"{flat[:3].tolist()}{' ...' if flat.size > 3 else ''}"
        line = f"  {name}: {got.dtype} {reduction}, {shown}; {worst:.2f} ulp from exact"
        if worst > allowed:
            failures.append(f"{name}: {worst} ulp from exact, more than {allowed}")
        if compare_with is not None:
            other = [float.fromhex(v) for v in compare_with.get(name, [])]
            apart = max(ulps(g, o) for g, o in zip(flat, other)) if len(other) == flat.size else math.inf
            line += f"; {apart:.0f} ulp from the other install"
            if apart > allowed:
                failures.append(f"{name}: {apart} ulp from the other install's value, more than {allowed}")
        print(line)
    return failures, saved


def check_fast_path(expect_available: bool) -> list[str]:
    module = importlib.import_module(FAST_PATH)
    available = bool(module.AVAILABLE)
    print(f"  {FAST_PATH}.AVAILABLE = {available} (expected {expect_available})")
    if available != expect_available:
        return [f"{FAST_PATH}.AVAILABLE is {available}, expected {expect_available}"]
    return []


def console_script() -> str | None:
    """bce-compat from this interpreter's own scripts folder (as installed with it), else from PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    return shutil.which("bce-compat", path=str(scripts)) or shutil.which("bce-compat")


def check_conformance() -> list[str]:
    script = console_script()
    if script is None:
        return ["the bce-compat console script is not installed"]
    argv = [script, "conformance", "--backends", "numpy", "--quiet"]
    print("  $ " + " ".join(["bce-compat", *argv[1:]]), flush=True)
    env = {**os.environ, "PYTHONUTF8": "1"}  # the same bytes on Windows' consoles as elsewhere
    done = subprocess.run(argv, capture_output=True, encoding="utf-8", errors="replace", env=env)
    summary = [line for line in done.stdout.splitlines() if line.startswith("conformance:")]
    print("  " + (summary[-1] if summary else "(no summary line)"))
    if done.returncode != 0 or not summary:
        print(done.stdout[-3000:] + done.stderr[-3000:])
        return [f"bce-compat conformance --backends numpy exited {done.returncode}"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portable", action="store_true", help="expect the compiled pass NOT to be built")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--save", metavar="FILE", help="write the losses (hex floats) as JSON")
    group.add_argument("--compare", metavar="FILE", help="also check the losses against those of --save")
    args = parser.parse_args(argv)

    import bce_compat

    print(f"bce_compat {bce_compat.__version__} from {Path(bce_compat.__file__).parent}")
    print(f"Python {platform.python_version()}, {platform.system()} {platform.machine()}")
    failures = []
    print("fast path:")
    failures += check_fast_path(expect_available=not args.portable)
    print("losses:")
    compare_with = json.loads(Path(args.compare).read_text()) if args.compare else None
    number_failures, saved = check_numbers(compare_with)
    failures += number_failures
    if args.save:
        Path(args.save).write_text(json.dumps(saved, indent=1))
    print("conformance:")
    failures += check_conformance()
    if failures:
        print("smoke test FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
