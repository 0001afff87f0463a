"""Run the conformance cases on every installed backend, through our shim and each framework's own op.

In-process and injectable, so tests can feed it a deliberately wrong implementation:

>>> from bce_compat.conformance import casedata
>>> result = run(casedata.load_cases(["paddle-F-logits-example"]), ["numpy"], native=False)
>>> result.counts()["failed"], result.exit_code
(0, 0)

Paths: ``<dialect>-dialect`` for each dialect a case names (our shim: ``bce_compat`` for torch's
signatures, ``bce_compat.dialects.paddle``, ``.keras``, ``.tf``, ``.optax``; ``calls.py`` maps the
case onto each signature, and a dialect that cannot express it is a skip) on every backend
(every test bench of the registry, plugins included), and ``native``: each framework's own op
where ``natives`` has one (Keras' on the TensorFlow bench, reported as ``keras``). A shim failure
or a cross-backend disagreement fails the run; a native op that departs from the document or
the exact math "diverges" (reported only).

With ``impl`` (``implementation.load("mylib:bce", "torch")``) the run is of someone else's
function instead, path ``impl``: only the cases that apply to it, checked as our shim is
(values, dtypes, shapes, and the gradient with respect to the input where the backend has
autograd), except that refusing bad input with any error passes, and a TypeError where a
result was expected is "unsupported" (an option the implementation lacks), not a failure.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bce_compat.conformance import calls, casedata, frameworks, natives, reference
from bce_compat.conformance.casedata import Case
from bce_compat.conformance.implementation import Implementation
from bce_compat.contract import Bench

Progress = Callable[[int, int, str], None]
Cell = tuple[str, "Outcome", "tuple[np.ndarray, dict[str, np.ndarray]] | None"]  # backend, outcome, (value, grads)

HALF = ("float16", "bfloat16")
_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
# Smallest normal numbers: a result below them may be flushed to zero (TF and XLA set
# flush-to-zero on CPU), so differences of that size are allowed.
_TINY = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}
# whose document a seed is: the native op of that framework is held to its claims (e.g. shape [1])
_DOC_OWNER = {"000": "torch", "001": "torch", "002": "torch", "003": "torch", "004": "paddle"}


@dataclass
class Outcome:
    """One cell: a case on one backend, one path, one dtype."""

    case: str
    backend: str
    path: str  # "<dialect>-dialect" (torch, paddle, keras, tf, optax), "native" or "impl"
    dtype: str
    status: str  # pass / fail / diverges / skipped / unsupported
    detail: str = ""
    op: str = ""
    shape: list[int] | None = None
    value: list[float | str] | float | str | None = None
    error: str | None = None
    worst: float = 0.0  # largest error in units of the tolerance (<= 1 passes)


@dataclass
class Agreement:
    """Cross-backend agreement of the shim for one case, dialect and dtype."""

    case: str
    path: str
    dtype: str
    backends: list[str]
    worst: float  # largest pairwise difference / (sum of the two tolerances)
    where: str
    ok: bool


_COUNT_KEYS = {"pass": "passed", "fail": "failed", "diverges": "diverges", "skipped": "skipped",
               "unsupported": "unsupported"}


@dataclass
class Result:
    cases: list[Case]
    backends: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    seconds: float = 0.0
    impl: str | None = None  # the implementation under test (``Implementation.describe()``), if any
    not_applicable: dict[str, str] = field(default_factory=dict)  # case id -> why it does not run on ``impl``

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(_COUNT_KEYS.values(), 0)
        for o in self.outcomes:
            counts[_COUNT_KEYS[o.status]] += 1
        counts["failed"] += sum(not a.ok for a in self.agreements)
        return counts

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "fail"]

    @property
    def divergences(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "diverges"]

    @property
    def unsupported(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "unsupported"]

    def failing_cases(self) -> list[str]:
        """The ids of the cases that fail (a cell, or the backends' agreement), in case order."""
        failing = {o.case for o in self.failures} | {a.case for a in self.agreements if not a.ok}
        return [c.id for c in self.cases if c.id in failing]

    @property
    def exit_code(self) -> int:
        """1 if anything fails; for an implementation under test, also if nothing passed at all."""
        counts = self.counts()
        return 1 if counts["failed"] or (self.impl and not counts["passed"]) else 0

    def largest_disagreement(self) -> Agreement | None:
        return max(self.agreements, key=lambda a: a.worst, default=None)

    def to_dict(self) -> dict[str, Any]:
        worst = self.largest_disagreement()
        return {
            "summary": {**self.counts(), "seconds": round(self.seconds, 2), "backends": self.backends,
                        "implementation": self.impl, "failing_cases": self.failing_cases()},
            "not_applicable": self.not_applicable,
            "largest_disagreement": asdict(worst) if worst else None,
            "cases": [
                {"id": c.id, "file": c.file, "source": c.source, "kind": c.kind, "quote": c.quote, "advice": c.advice}
                for c in self.cases
            ],
            "outcomes": [asdict(o) for o in self.outcomes],
            "agreement": [asdict(a) for a in self.agreements],
            "divergences": [asdict(o) for o in self.divergences],
        }


def default_shim_modules() -> dict[str, Any]:
    import bce_compat
    from bce_compat.dialects import keras, optax, tf
    from bce_compat.dialects import paddle as paddle_dialect

    return {"torch": bce_compat, "paddle": paddle_dialect, "keras": keras, "tf": tf, "optax": optax}


def run(cases: Iterable[Case] | None = None, backends: Iterable[str] | None = None, native: bool = True,
        shim: bool = True, shim_module_override: dict[str, Any] | None = None, progress: Progress | None = None,
        impl: Implementation | None = None, dtypes: Iterable[str] | None = None) -> Result:
    """Run ``cases`` (default: all) on ``backends`` (default: every installed one).

    ``shim_module_override`` maps a dialect ("torch", "paddle") to a module-like object with the
    dialect's four callables, replacing ours (used to check that a wrong implementation fails).
    ``impl`` runs an implementation under test instead of our shim and the native ops, on the
    cases that apply to it (``result.not_applicable`` says why each other case was left out).
    ``dtypes`` narrows every case to those of its dtypes; ``progress(i, n, case_id)`` is called before each case.
    """
    start = time.perf_counter()
    cases = casedata.load_cases() if cases is None else list(cases)
    not_applicable: dict[str, str] = {}
    if impl is not None:
        cases, not_applicable = impl.applicable(cases)
        native = shim = False
    fws = frameworks.available(backends)
    modules = {name: fw.module for name, fw in fws.items()}
    shim_modules = {**default_shim_modules(), **(shim_module_override or {})}
    result = Result(cases=cases, backends=list(fws), impl=impl.describe() if impl else None,
                    not_applicable=not_applicable)
    with synchronous_dask(fws):
        for i, case in enumerate(cases):
            if progress:
                progress(i, len(cases), case.id)
            run_case(case, fws, modules, shim_modules, result, native=native, shim=shim, impl=impl, dtypes=dtypes)
    if progress:
        progress(len(cases), len(cases), "")
    result.seconds = time.perf_counter() - start
    return result


@contextlib.contextmanager
def synchronous_dask(fws: dict[str, Bench]) -> Iterator[None]:
    """Dask's synchronous scheduler while the block runs, if Dask is among the benches."""
    with contextlib.ExitStack() as stack:
        if "dask" in fws:  # the threaded scheduler only adds overhead on these tiny arrays
            stack.enter_context(fws["dask"].module.config.set(scheduler="synchronous"))
        yield


def run_case(case: Case, fws: dict[str, Bench], modules: dict[str, Any], shim_modules: dict[str, Any],
             result: Result, native: bool = True, shim: bool = True, impl: Implementation | None = None,
             dtypes: Iterable[str] | None = None) -> None:
    """Append the outcomes (and agreements) of one case on the given frameworks to ``result``.

    ``dtypes`` narrows the run to those of the case's dtypes (the pytest plugin runs one at a time).
    """
    wanted = None if dtypes is None else set(dtypes)
    for dtype in case.dtypes if wanted is None else [d for d in case.dtypes if d in wanted]:
        if shim:
            for dialect in case.dialects:
                _run_dialect(case, dialect, shim_modules[dialect], fws, dtype, result)
        if native:
            _run_natives(case, fws, modules, dtype, result)
        if impl is not None:
            _run_impl(case, impl, fws, dtype, result)


def _run_dialect(case: Case, dialect: str, module: Any, fws: dict[str, Bench], dtype: str, result: Result) -> None:
    """Our shim in one dialect on every backend, and the backends' agreement."""
    path = f"{dialect}-dialect"
    try:
        call = calls.dialect_call(case, module, dialect)
    except calls.Unsupported as exc:
        result.outcomes.extend(Outcome(case.id, name, path, dtype, "skipped", str(exc)) for name in fws)
        return
    cells = [(name, *_evaluate(case, fw, dtype, path, call, "shim")) for name, fw in fws.items()]
    result.outcomes.extend(o for _, o, _ in cells)
    agreement = _agreement(case, path, dtype, cells)
    if agreement:
        result.agreements.append(agreement)


def _run_impl(case: Case, impl: Implementation, fws: dict[str, Bench], dtype: str, result: Result) -> None:
    """The implementation under test on every backend (each checked against the exact value, so they agree)."""
    try:
        call = impl.call(case)
    except calls.Unsupported as exc:
        result.outcomes.extend(Outcome(case.id, name, "impl", dtype, "skipped", str(exc)) for name in fws)
        return
    result.outcomes.extend(_evaluate(case, fw, dtype, "impl", call, "impl")[0] for fw in fws.values())


def _run_natives(case: Case, fws: dict[str, Bench], modules: dict[str, Any], dtype: str, result: Result) -> None:
    """Each native contender whose framework's bench is here (Keras' runs on TensorFlow's)."""
    for contender in natives.contenders_for(fws):
        bench = natives.bench_of(contender)
        try:
            label, fn = natives.native_op(contender, modules, case)
        except natives.Unsupported as exc:
            result.outcomes.append(Outcome(case.id, contender, "native", dtype, "skipped", str(exc)))
            continue
        outcome, _ = _evaluate(case, fws[bench], dtype, "native", (label, fn), "native")
        outcome.backend = contender
        result.outcomes.append(outcome)


@functools.lru_cache(maxsize=512)
def _exact_cached(case_id: str, dtype: str, formula: str, _case_key: _Key) -> reference.Exact:
    case = _case_key.case
    inputs = case.numpy_inputs(dtype)

    def plain(name: str) -> Any:
        if name not in inputs:
            return None
        values, dt = inputs[name]
        return dt if isinstance(values, str) else np.asarray(values, np.float64)  # python number or array

    weight, pos_weight = plain("weight"), plain("pos_weight")
    return reference.exact(case.logits, plain("input"), plain("target"), weight, pos_weight, case.reduction, formula,
                           case.options)


class _Key:
    """Hashable by id, so the lru_cache above can hold a case."""

    def __init__(self, case: Case):
        self.case = case

    def __hash__(self) -> int:
        return hash((self.case.id, self.case.file))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and (self.case.id, self.case.file) == (other.case.id, other.case.file)


def exact_for(case: Case, dtype: str, formula: str = "torch") -> reference.Exact:
    return _exact_cached(case.id, dtype, formula, _Key(case))


def _skip_reason(case: Case, fw: Bench, dtype: str, kind: str) -> str | None:
    reason = fw.dtype_skip_reason(dtype)
    if reason:
        return reason
    if kind != "native" and case.eager_only and fw.lazy:
        return "lazy backend: value checks are not made (docs/contract.md §5)"
    if kind == "native" and fw.value_and_grad is None:
        return "no native op"
    return None


def _build_args(case: Case, fw: Bench, dtype: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, (values, dt) in case.numpy_inputs(dtype).items():
        if isinstance(values, str):  # ("python", number)
            args[name] = dt
        elif dt in _EPS:
            args[name] = fw.asarray(values, dt)
        else:  # int or bool labels keep their dtype
            args[name] = fw.keep_dtype(values)
    return args


def _dtype_name(value: Any) -> str:
    d = getattr(value, "dtype", None)
    name = getattr(d, "name", None)
    return (name if isinstance(name, str) else str(d).split(".")[-1]).lower()


def _evaluate(case: Case, fw: Bench, dtype: str, path: str, call: calls.Call,
              kind: str) -> tuple[Outcome, tuple[np.ndarray, dict[str, np.ndarray]] | None]:
    """One cell: (Outcome, (value, grads) as numpy or None); ``kind`` is "shim", "native" or "impl"."""
    label, fn = call
    base: dict[str, Any] = dict(case=case.id, backend=fw.name, path=path, dtype=dtype, op=label)
    reason = _skip_reason(case, fw, dtype, kind)
    if reason:
        return Outcome(status="skipped", detail=reason, **base), None
    args = _build_args(case, fw, dtype)
    names = list(args)
    wrt = _grad_positions(case, fw, dtype, names, kind)
    try:
        value, grads, warned = _call(fw, fn, names, [args[n] for n in names], wrt)
    except Exception as exc:  # the behaviour under test may be an error
        return _raised(case, dtype, kind, exc, base), None
    miss = "diverges" if kind == "native" else "fail"
    try:
        got = np.asarray(fw.to_numpy(value), dtype=np.float64)
    except Exception as exc:  # e.g. a NumPy array back for a torch tensor
        kind_of = f"{type(value).__module__}.{type(value).__qualname__}"
        return Outcome(status=miss, detail=f"returned a {kind_of}, not a {fw.name} array ({_short(exc)})",
                       **base), None
    shape = list(got.shape)
    if case.error:
        return Outcome(status=miss, detail=f"expected {case.error}, returned shape {shape}", shape=shape,
                       value=_jsonable(got), **base), None
    problems = _check_result(case, fw, dtype, kind, value, got, warned)
    worst, exact_problems = _check_exact(case, dtype, got)
    grads_np, grad_worst, grad_problems = _check_grads(case, dtype, [names[i] for i in wrt], grads)
    problems += exact_problems + grad_problems
    outcome = Outcome(status=miss if problems else "pass", detail="; ".join(problems), shape=shape,
                      value=_jsonable(got), worst=max(worst, grad_worst), **base)
    return outcome, (got, grads_np)


def _grad_positions(case: Case, fw: Bench, dtype: str, names: list[str], kind: str) -> list[int]:
    """The positions of the arguments whose gradients the case checks on this cell."""
    if not (case.expect.get("grad") and fw.value_and_grad and not case.error):
        return []
    floating = case.numpy_inputs(dtype)
    wrt = [i for i, n in enumerate(names) if floating[n][1] in _EPS]
    if "grad_wrt" in case.expect:
        wrt = [i for i in wrt if names[i] in case.expect["grad_wrt"]]
    # torch refuses grads w.r.t. weight/pos_weight: compare a native op's (or an implementation's)
    # gradient w.r.t. its input only; the exact focal reference differentiates w.r.t. the logits only
    if kind != "shim" or case.focal:
        wrt = [i for i in wrt if names[i] == "input"]
    return wrt


def _call(fw: Bench, fn: Callable[..., Any], names: list[str], arrays: list[Any],
          wrt: list[int]) -> tuple[Any, list[Any], bool]:
    """(value, gradients, whether any warning was raised) of ``fn`` called with ``names`` = ``arrays``."""

    def positional(*a: Any) -> Any:
        return fn(**dict(zip(names, a)))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if wrt and fw.value_and_grad is not None:
            value, grads = fw.value_and_grad(positional, arrays, wrt)
        else:
            value, grads = positional(*arrays), []
    return value, grads, bool(caught)


def _raised(case: Case, dtype: str, kind: str, exc: Exception, base: dict[str, Any]) -> Outcome:
    """The outcome of a call that raised: a pass if the case expects that error.

    Our shim must raise the documented class; a native op or an implementation under test
    passes by refusing the input at all (which class is its own business; the detail says).
    An implementation's TypeError where a result was expected is an option it lacks
    ("unsupported"), as is any error in half precision (no float16/bfloat16 kernel).
    """
    err = f"{type(exc).__name__}: {_short(exc)}"
    if case.error:
        expected = case.error in {c.__name__ for c in type(exc).__mro__}
        detail = "" if expected else f"raised {err} (expected {case.error})"
        return Outcome(status="pass" if expected or kind != "shim" else "fail", detail=detail, error=err, **base)
    if kind == "native" and dtype in HALF:
        return Outcome(status="skipped", detail=f"no {dtype} kernel: {err}", error=err, **base)
    if kind == "impl" and (isinstance(exc, TypeError) or dtype in HALF):
        return Outcome(status="unsupported", detail=err, error=err, **base)
    return Outcome(status="diverges" if kind == "native" else "fail", detail=f"raised {err}", error=err, **base)


def _check_result(case: Case, fw: Bench, dtype: str, kind: str, value: Any, got: np.ndarray,
                  warned: bool) -> list[str]:
    """Shape (ours and the document's), dtype, warning, finiteness and documented value."""
    problems = []
    shape = list(got.shape)
    want_shape = list(case.expect.get("shape", exact_for(case, dtype).value.shape))
    owner = _DOC_OWNER.get(case.source[:3])
    if kind == "native" and "doc_shape" in case.expect and owner == fw.name and shape != case.expect["doc_shape"]:
        problems.append(f"documented shape {case.expect['doc_shape']}, returned {shape}")
    if shape != want_shape:
        problems.append(f"shape {shape}, expected {want_shape}")
    result_dtype = _dtype_name(value)
    if kind != "native" and result_dtype != dtype:
        problems.append(f"dtype {result_dtype}, expected {dtype}")
    if case.expect.get("warns") and not warned:
        problems.append("no warning for a deprecated argument")
    if case.expect.get("finite") and not np.all(np.isfinite(got)):
        problems.append("non-finite result")
    for key in ("value", "values"):
        if key in case.expect:
            problems += _check_documented(case, np.asarray(case.expect[key], np.float64), got)
    return problems


def _check_documented(case: Case, doc: np.ndarray, got: np.ndarray) -> list[str]:
    """The documented number(s), within the case's absolute/relative tolerance."""
    tol = case.expect.get("value_atol", 0.0) + case.expect.get("value_rtol", 0.0) * np.abs(doc)
    if doc.shape not in ((), got.shape) or not np.all(np.abs(got - doc) <= tol):
        shown = f"{float(doc):.9g}" if doc.ndim == 0 else np.array2string(doc, precision=8)
        return [f"documented {shown} (±{np.max(tol):g}), got {_fmt(got)}"]
    return []


def _check_exact(case: Case, dtype: str, got: np.ndarray) -> tuple[float, list[str]]:
    """(worst error in tolerances, problems) against the exact value of each formula the case names."""
    if list(got.shape) != list(exact_for(case, dtype).value.shape):
        return 0.0, []  # reported by the shape check
    worst, problems = 0.0, []
    for formula in ["torch", *[f for f in case.expect.get("formulas", []) if f != "torch"]]:
        ref = exact_for(case, dtype, formula)
        ratio, where = compare(got, ref.value, ref.scale, dtype, ref.n_summed if case.reduction != "none" else 1)
        worst = max(worst, ratio)
        if ratio > 1:
            label = "exact" if formula == "torch" else f"exact ({formula} formula)"
            problems.append(f"{label}: {where}{_at(case, dtype, where)}")
    return worst, problems


def _check_grads(case: Case, dtype: str, names: list[str],
                 grads: list[Any]) -> tuple[dict[str, np.ndarray], float, list[str]]:
    """(gradients as float64 NumPy by name, worst error in tolerances, problems) against the exact gradients."""
    exp = exact_for(case, dtype)
    grads_np, worst, problems = {}, 0.0, []
    for name, g in zip(names, grads):
        want, scale = exp.grads[name]
        if g is None:
            problems.append(f"no gradient for {name}")
            continue
        g = grads_np[name] = np.asarray(g, np.float64)
        if g.shape != want.shape:
            problems.append(f"grad {name}: shape {list(g.shape)}, expected {list(want.shape)}")
            continue
        ratio, where = compare(g, want, scale, dtype, exp.n_summed)
        worst = max(worst, ratio)
        if ratio > 1:
            problems.append(f"grad {name}: {where}{_at(case, dtype, where)}")
    return grads_np, worst, problems


def tolerance(dtype: str, ref: Any, scale: Any, n_summed: int) -> Any:
    """Allowed |error|: a few ulp of the terms' magnitude (docs/contract.md §4); halves: 1 ulp of the output."""
    log_n = math.ceil(math.log2(max(n_summed, 1)))
    ref, scale = np.abs(np.asarray(ref)), np.asarray(scale)
    if dtype in HALF:
        return _EPS[dtype] * ref + (8 + 2 * log_n) * _EPS["float32"] * scale + _TINY[dtype]
    return (4 + 2 * log_n) * _EPS[dtype] * np.maximum(scale, ref) + _TINY[dtype]


def compare(got: Any, want: Any, scale: Any, dtype: str, n_summed: int) -> tuple[float, str]:
    """(largest |got - want| / tolerance, a description of where); non-finite values must match exactly."""
    got, want = np.broadcast_arrays(np.asarray(got, np.float64), np.asarray(want, np.float64))
    if got.size == 0:
        return 0.0, ""
    tol = np.broadcast_to(tolerance(dtype, want, scale, n_summed), got.shape)
    same_nonfinite = (np.isnan(got) & np.isnan(want)) | (np.isinf(want) & (got == want))
    finite = np.isfinite(want) & np.isfinite(got)
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.where(finite, np.abs(got - want) / np.where(tol > 0, tol, 1.0), np.inf)
    ratio = np.where(same_nonfinite, 0.0, ratio)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape)) if ratio.ndim else ()
    worst = float(ratio[idx])
    digits = 17 if dtype == "float64" else 9
    where = f"got {got[idx]:.{digits}g}, exact {want[idx]:.{digits}g}"
    where = f"at {list(idx)} {where}" if ratio.ndim else where
    return worst, where


def _at(case: Case, dtype: str, where: str) -> str:
    """The inputs at the worst element, for elementwise results (readable divergence reports)."""
    if case.reduction != "none" or not where.startswith("at ["):
        return ""
    idx = tuple(int(v) for v in where[4:where.index("]")].split(",") if v.strip())
    parts = []
    for name, short in (("input", "x"), ("target", "y")):
        values, _ = case.numpy_inputs(dtype)[name]
        try:
            parts.append(f"{short}={np.asarray(values)[idx]:g}")
        except (IndexError, TypeError, ValueError):
            return ""
    return f" ({', '.join(parts)})"


def _agreement(case: Case, path: str, dtype: str, cells: list[Cell]) -> Agreement | None:
    """Pairwise agreement of the shim's value and gradients between backends, in units of tolerance."""
    ok_cells = [(n, r) for n, o, r in cells if r is not None and o.status in ("pass", "fail")]
    if len(ok_cells) < 2:
        return None
    exp = exact_for(case, dtype)
    worst, where = 0.0, ""
    n = exp.n_summed
    for i, (name_a, (val_a, grads_a)) in enumerate(ok_cells):
        for name_b, (val_b, grads_b) in ok_cells[i + 1:]:
            pairs = [("value", val_a, val_b, exp.value, exp.scale)]
            pairs += [(f"grad {g}", grads_a[g], grads_b[g], *exp.grads[g]) for g in grads_a if g in grads_b]
            for what, a, b, want, scale in pairs:
                if a.shape != b.shape:
                    ratio, desc = math.inf, f"shapes {list(a.shape)} vs {list(b.shape)}"
                else:
                    tol = 2 * tolerance(dtype, want, scale, n)
                    both = (np.isnan(a) & np.isnan(b)) | (a == b)
                    with np.errstate(invalid="ignore"):
                        r = np.where(both, 0.0, np.abs(a - b) / np.broadcast_to(tol, a.shape))
                    r = np.where(np.isnan(r), np.inf, r)
                    ratio = float(np.max(r)) if r.size else 0.0
                    with np.errstate(invalid="ignore"):
                        diff = np.where(both, 0.0, np.abs(a - b))
                    desc = f"max |diff| {float(np.max(np.nan_to_num(diff, nan=np.inf))) if diff.size else 0.0:.3g}"
                if ratio > worst or not where:  # identical everywhere: still say what was compared
                    worst, where = ratio, f"{what}: {name_a} vs {name_b}, {desc}"
    return Agreement(case.id, path, dtype, [n for n, _ in ok_cells], worst, where, worst <= 1)


def _jsonable(a: np.ndarray) -> list[float | str] | float | str | None:
    if a.ndim == 0:
        return _num(float(a))
    if a.size > 16:
        return None
    return [_num(float(v)) for v in a.ravel()]


def _num(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)


def _fmt(a: np.ndarray) -> str:
    return f"{float(a):.9g}" if a.ndim == 0 else np.array2string(a, precision=6, threshold=8)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:160] + ("…" if len(text) > 160 else "")
