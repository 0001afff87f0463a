"""The accuracy atlas: each contender's error in ulp against the exact value, over x and its extremes.

A contender is a plain BCE on logits, element-wise: bce_compat, a framework's own op, or an
implementation under test, each evaluated on one test bench. The grid: x from -100 to 100 (every
0.25 in [-20, 20], every 1 beyond) and the extremes (+-1e10, +-1e30, +-the largest finite
number, +-inf), for y in {0, 0.5, 1}, in float32 and float64; the values and, where the bench
has autograd, the gradient with respect to x, both against the exact (mpmath) values at the
rounded inputs. The error of a result r is |r - exact| / ulp(exact) in the dtype (an exact 0
has the smallest subnormal as its ulp); a non-finite result where the exact value is finite (or
another non-finite one) is an infinite error.

>>> import numpy as np
>>> ulp_error(np.array([1.0 + 2.0**-22, np.nan, 0.0]), np.array([1.0, 0.5, 0.0]), "float32").tolist()
[2.0, inf, 0.0]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bce_compat.conformance import calls, frameworks, natives, reference
from bce_compat.conformance.casedata import Case
from bce_compat.conformance.implementation import Implementation

TARGETS = (0.0, 0.5, 1.0)
DTYPES = ("float32", "float64")
QUANTITIES = ("value", "gradient")
EXTREMES = ("-inf", "-max", "-1e30", "-1e10", "1e10", "1e30", "max", "inf")
# the bench bce_compat's own row is drawn on: the first installed with autograd, else the first at all
_OURS_BENCH_ORDER = ("torch", "jax", "tensorflow", "paddle")


@dataclass
class Contender:
    """A loss to plot: ``call`` (from ``calls.py``) on bench ``bench``, or ``note`` saying why it cannot be."""

    label: str
    bench: str
    call: calls.Call | None = None
    note: str = ""


@dataclass
class Row:
    """One contender's errors: (dtype, quantity) -> ulp errors, shape (len(TARGETS), len(grid)), or None."""

    label: str
    bench: str
    errors: dict[tuple[str, str], np.ndarray | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Atlas:
    """The grid (main range, then the extremes) and one row per contender."""

    x: dict[str, np.ndarray]  # dtype -> the x values as that dtype holds them (float64)
    n_main: int  # the first n_main x are the range -100..100; the rest are EXTREMES
    rows: list[Row]

    def worst(self, row: Row, dtype: str, quantity: str, extremes: bool = False) -> list[float] | None:
        """The largest error per target y over the main range (or over the extremes)."""
        errors = row.errors.get((dtype, quantity))
        if errors is None:
            return None
        part = errors[:, self.n_main:] if extremes else errors[:, :self.n_main]
        return [float(np.max(e)) if e.size else 0.0 for e in part]


def x_grid(dtype: str) -> tuple[np.ndarray, int]:
    """(x values rounded to ``dtype``, held as float64; how many belong to the main range).

    >>> x, n = x_grid("float32"); n, len(x) - n, float(x[0]), float(x[n - 1]), float(x[-2])
    (321, 8, -100.0, 100.0, 3.4028234663852886e+38)
    """
    main = np.unique(np.concatenate([np.arange(-100.0, 101.0, 1.0), np.arange(-20.0, 20.25, 0.25)]))
    big = float(np.finfo(dtype).max)
    extremes = np.array([-np.inf, -big, -1e30, -1e10, 1e10, 1e30, big, np.inf])
    return np.concatenate([main, extremes]).astype(dtype).astype(np.float64), len(main)


def ulp_error(got: np.ndarray, exact: np.ndarray, dtype: str) -> np.ndarray:
    """|got - exact| in units of the last place of ``exact`` in ``dtype`` (see the module docstring)."""
    got, exact = np.asarray(got, np.float64), np.asarray(exact, np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ulp = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
        err = np.abs(got - exact) / ulp
    same = (got == exact) | (np.isnan(got) & np.isnan(exact))
    return np.where(same, 0.0, np.where(np.isfinite(err), err, np.inf))


def elementwise_case(dialect: str = "torch", rows: int = 1) -> Case:
    """A with-logits case of shape [rows, 1], no reduction: what a dialect's mapper turns into an element-wise call.

    Keras' losses average over the last axis, here of size 1, so theirs is element-wise too.
    """
    kwargs: dict[str, Any] = {"reduction": "none"}
    if dialect == "keras":
        kwargs["mean_axis"] = -1
    spec = {"fill": 0.0, "shape": [rows, 1]}
    return Case(id="accuracy-atlas", file="", source="", kind="ours", quote="", dialects=(dialect,),
                function="binary_cross_entropy_with_logits", dtypes=DTYPES, inputs={"input": spec, "target": spec},
                kwargs=kwargs, expect={})


def ours(benches: Iterable[str]) -> Contender:
    """bce_compat (torch's signature) on the first bench with autograd among ``benches``."""
    import bce_compat

    names = list(benches)
    bench = next((b for b in _OURS_BENCH_ORDER if b in names), names[0] if names else "numpy")
    return Contender("bce_compat", bench, calls.dialect_call(elementwise_case(), bce_compat, "torch"))


def native(contender: str, modules: dict[str, Any]) -> Contender:
    """A framework's own op (``natives``), on its framework's bench."""
    bench = natives.bench_of(contender)
    try:
        label, fn = natives.native_op(contender, modules, elementwise_case())
    except natives.Unsupported as exc:
        return Contender(contender, bench, note=str(exc))
    return Contender(label, bench, (label, fn))


def implementation(impl: Implementation, benches: Iterable[str]) -> Contender:
    """The implementation under test, on the first of ``benches`` whose arrays it takes."""
    names = list(benches)
    if not impl.with_logits:
        return Contender(impl.spec, names[0] if names else "numpy",
                         note=f"the atlas plots with-logits losses; {impl.describe()} is not one")
    call = impl.call(elementwise_case(impl.dialect))
    fws = frameworks.available(names)
    for name, fw in fws.items():
        try:
            _evaluate(fw, call[1], np.zeros((1, 1)), np.zeros((1, 1)), "float32")
        except Exception:  # not this library's arrays: try the next bench
            continue
        return Contender(impl.spec, name, call)
    return Contender(impl.spec, names[0] if names else "numpy",
                     note=f"it raised an error on every bench tried ({', '.join(fws) or 'none installed'})")


def contenders_for_run(result: Any, impl: Implementation | None = None) -> list[Contender]:
    """Ours, each native op of the run's benches, and the implementation under test (if any)."""
    benches = list(result.backends)
    modules = {name: fw.module for name, fw in frameworks.available(benches).items()}
    out = [ours(benches)] + [native(c, modules) for c in natives.contenders_for(benches)]
    if impl is not None:
        out.append(implementation(impl, benches))
    return out


def contenders_for_diff(a: str, b: str) -> list[Contender]:
    """Ours and the two frameworks' own ops of ``bce-compat diff a b``."""
    benches = list(dict.fromkeys(natives.bench_of(side) for side in (a, b)))
    modules = {name: fw.module for name, fw in frameworks.available(benches).items()}
    return [ours(benches), native(a, modules), native(b, modules)]


def build(contenders: Iterable[Contender]) -> Atlas:
    """Evaluate every contender on the grid against the exact values (about a second per dtype)."""
    contenders = list(contenders)
    fws = frameworks.available(sorted({c.bench for c in contenders}))
    grids = {dtype: x_grid(dtype) for dtype in DTYPES}
    exact = {dtype: _exact(grids[dtype][0]) for dtype in DTYPES}
    rows = []
    for contender in contenders:
        row = Row(contender.label, contender.bench)
        if contender.note or contender.call is None:
            row.notes.append(contender.note or "nothing to call")
        elif contender.bench not in fws:
            row.notes.append(f"its bench, {contender.bench}, is not installed")
        else:
            _fill(row, fws[contender.bench], contender.call[1], grids, exact)
        rows.append(row)
    n_main = grids[DTYPES[0]][1]
    return Atlas({dtype: grids[dtype][0] for dtype in DTYPES}, n_main, rows)


def _exact(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact (value, d/dx), each of shape (len(TARGETS), len(x))."""
    xs, ys = _operands(x)
    ref = reference.exact(True, xs, ys, None, None, "none")
    shape = (len(TARGETS), len(x))
    return ref.value.reshape(shape), ref.grads["input"][0].reshape(shape)


def _operands(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y as columns of shape (len(TARGETS) * len(x), 1): every x for y = 0, then 0.5, then 1."""
    xs = np.tile(x, len(TARGETS))[:, None]
    ys = np.repeat(np.asarray(TARGETS), len(x))[:, None]
    return xs, ys


def _fill(row: Row, fw: Any, fn: Callable[..., Any], grids: dict[str, tuple[np.ndarray, int]],
          exact: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for dtype in DTYPES:
        x = grids[dtype][0]
        shape = (len(TARGETS), len(x))
        if fw.dtype_skip_reason(dtype):
            row.notes.append(f"{dtype}: {fw.dtype_skip_reason(dtype)}")
            continue
        try:
            value, grad = _evaluate(fw, fn, *_operands(x), dtype)
        except Exception as exc:
            row.notes.append(f"{dtype}: raised {type(exc).__name__}: {' '.join(str(exc).split())[:160]}")
            continue
        row.errors[(dtype, "value")] = ulp_error(value.reshape(shape), exact[dtype][0], dtype)
        if grad is None:
            row.notes.append(f"{dtype}: no gradients ({fw.name} has no autograd)")
        else:
            row.errors[(dtype, "gradient")] = ulp_error(grad.reshape(shape), exact[dtype][1], dtype)


def _evaluate(fw: Any, fn: Callable[..., Any], xs: np.ndarray, ys: np.ndarray,
              dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, d/dx or None) of ``fn(input=x, target=y)`` on bench ``fw``, as float64 NumPy."""

    def call(x: Any, y: Any) -> Any:
        return fn(input=x, target=y)

    args = [fw.asarray(xs, dtype), fw.asarray(ys, dtype)]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if fw.value_and_grad is None:
            return np.asarray(fw.to_numpy(call(*args)), np.float64).ravel(), None
        value, (grad,) = fw.value_and_grad(call, args, [0])
    value = np.asarray(fw.to_numpy(value), np.float64).ravel()
    return value, None if grad is None else np.asarray(grad, np.float64).ravel()
