"""Turn a runner ``Result`` into what people read: the table, the summary, divergences, JUnit, a diff.

>>> summary_line({"passed": 3, "failed": 0, "diverges": 1, "skipped": 2})
'conformance: 3 passed, 0 failed, 1 diverges (native), 2 skipped'
>>> summary_line({"passed": 3, "failed": 1, "diverges": 0, "skipped": 2, "unsupported": 4}, impl="m:f as torch's f")
"conformance of m:f as torch's f: 3 passed, 1 failed, 4 unsupported, 2 skipped"
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from bce_compat.conformance.natives import contenders_for

if TYPE_CHECKING:
    from bce_compat.conformance.casedata import Case
    from bce_compat.conformance.runner import Outcome, Result

SHORT = {"numpy": "numpy", "torch": "torch", "paddle": "paddle", "tensorflow": "tf", "jax": "jax",
         "dask": "dask", "array_api_strict": "strict"}
MARK = {"pass": "ok", "fail": "FAIL", "diverges": "div", "skipped": "skip", "unsupported": "uns"}
RANK = {"fail": 4, "diverges": 3, "unsupported": 2, "pass": 1, "skipped": 0}  # a cell shows its worst status
_MIN_ID_WIDTH = 24  # the id column is never narrower, however narrow the terminal


def _short_name(backend: str) -> str:
    """The column heading: a known short name, else the first six letters (a plugin's name)."""
    return SHORT.get(backend, backend[:6])


def summary_line(counts: dict[str, int], impl: str | None = None) -> str:
    """One line of counts; for an implementation under test, its unsupported cells instead of native divergences."""
    if impl:
        return (f"conformance of {impl}: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts.get('unsupported', 0)} unsupported, {counts['skipped']} skipped")
    return (f"conformance: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['diverges']} diverges (native), {counts['skipped']} skipped")


def cell_statuses(result: Result) -> dict[tuple[str, str, str], str]:
    """(case id, "shim" or "native", backend) -> the worst status of its cells (every dialect and dtype).

    The implementation under test (path ``impl``) takes the shim's columns.
    """
    cells: dict[tuple[str, str, str], str] = {}
    for o in result.outcomes:
        key = (o.case, "native" if o.path == "native" else "shim", o.backend)
        if key not in cells or RANK[o.status] > RANK[cells[key]]:
            cells[key] = o.status
    return cells


def native_columns(result: Result) -> list[str]:
    """The native contenders that ran, in table order (keras runs on tensorflow's bench)."""
    ran_native = {o.backend for o in result.outcomes if o.path == "native"}
    return [c for c in contenders_for(result.backends) if c in ran_native]


def table(result: Result, width: int = 100) -> str:
    """Rows: cases; columns: our shim on each backend (both dialects, all dtypes), then each native op.

    A cell shows the worst of its checks: FAIL > div > ok > skip ("-" where nothing ran). The
    native block is left out when no native op ran (``--no-native``). Case ids are shown whole:
    the id column is as wide as the longest id if the line then fits ``width``; an id too long
    for it gets a line of its own, its cells on the next.
    """
    natives = native_columns(result)
    columns = [("shim", b) for b in result.backends] + [("native", b) for b in natives]
    cells = cell_statuses(result)
    disagree = {a.case for a in result.agreements if not a.ok}
    widths = [max(len(_short_name(b)), 4) + 1 for _, b in columns]  # a leading space in every cell

    def join(texts: list[str], kind: str) -> str:
        return "".join(f"{t:>{w}}" for t, w, (k, _) in zip(texts, widths, columns) if k == kind)

    def cells_text(texts: list[str]) -> str:
        return join(texts, "shim") + (f" | {join(texts, 'native')}" if natives else "")

    heads = [_short_name(b) for _, b in columns]
    shim_head, native_head = join(heads, "shim"), join(heads, "native")
    longest = max([len("case")] + [len(case.id) for case in result.cases])
    id_width = min(longest, max(_MIN_ID_WIDTH, width - len(cells_text(heads)) - len(" !!"))) + 1
    subject = "the implementation" if result.impl else "our shim"
    title = f"{subject + ' on each backend':^{len(shim_head)}}"
    if natives:
        title += f" | {'native op':^{len(native_head)}}"
    lines = [f"{'':<{id_width}}{title}".rstrip(), f"{'case':<{id_width}}{cells_text(heads)}"]
    for case in result.cases:
        row = [MARK.get(cells.get((case.id, kind, b), ""), "-") for kind, b in columns]
        flag = " !!" if case.id in disagree else ""
        if len(case.id) < id_width:
            lines.append(f"{case.id:<{id_width}}{cells_text(row)}{flag}")
        else:  # whole, on its own line: a cut id cannot be searched for or passed to --cases
            lines += [case.id, f"{'':<{id_width}}{cells_text(row)}{flag}"]
    return "\n".join(lines)


def failures_text(result: Result) -> str:
    lines = []
    for o in result.failures:
        lines.append(f"FAIL {o.case} [{o.backend} {o.path} {o.dtype}]: {o.detail}")
    for a in result.agreements:
        if not a.ok:
            lines.append(f"FAIL {a.case} [{a.path} {a.dtype}] backends disagree ({a.worst:.3g}x tolerance): {a.where}")
    return "\n".join(lines)


def skips_text(result: Result, status: str = "skipped") -> str:
    """Skip reasons (or, with ``status="unsupported"``, the implementation's TypeErrors), counted."""
    counts: dict[str, int] = {}
    for o in result.outcomes:
        if o.status == status:
            key = f"{o.backend} {o.path}: {o.detail}"
            counts[key] = counts.get(key, 0) + 1
    return "\n".join(f"  {n:4d} x {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def not_applicable_text(result: Result) -> str:
    """Why the cases left out of an implementation's run were left out, counted by reason."""
    counts: dict[str, int] = {}
    for reason in result.not_applicable.values():
        counts[reason] = counts.get(reason, 0) + 1
    return "\n".join(f"  {n:4d} x {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def refusing_backends(result: Result) -> list[str]:
    """The backends on which an implementation under test raised TypeError on every case it ran (wrong arrays)."""
    out = []
    for backend in result.backends:
        cells = [o for o in result.outcomes if o.backend == backend and o.path == "impl" and o.status != "skipped"]
        if cells and all(o.status == "unsupported" and (o.error or "").startswith("TypeError") for o in cells):
            out.append(backend)
    return out


def agreement_text(result: Result) -> str:
    worst = result.largest_disagreement()
    if worst is None:
        return "cross-backend agreement: nothing to compare"
    return (f"cross-backend agreement: largest disagreement {worst.worst:.3g}x tolerance "
            f"({worst.case}, {worst.path}, {worst.dtype}; {worst.where})")


def divergences_text(result: Result) -> str:
    """Where each framework's own op departs from the document or the exact math."""
    by_case: dict[str, list[Outcome]] = {}
    for o in result.divergences:
        by_case.setdefault(o.case, []).append(o)
    cases = {c.id: c for c in result.cases}
    lines = [f"Native-op divergences ({len(result.divergences)} cells in {len(by_case)} cases):"]
    for case_id, outcomes in by_case.items():
        case = cases[case_id]
        lines.append(f"\n{case_id}  [{case.source}] {case.quote}")
        for o in outcomes:
            lines.append(f"  {o.backend:<10} {o.dtype:<8} {o.op}: {o.detail}")
        if case.advice:
            lines.append(f"  advice: {case.advice}")
    return "\n".join(lines)


def write_json(result: Result, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result.to_dict(), fh, indent=1, default=str)


def write_junit(result: Result, path: str) -> None:
    """One testcase per cell (case × backend × path × dtype); native divergences pass with a note."""
    counts = result.counts()
    tests = len(result.outcomes) + len(result.agreements)
    suite = ET.Element("testsuite", name="bce_compat.conformance", tests=str(tests), failures=str(counts["failed"]),
                       skipped=str(counts["skipped"] + counts["unsupported"]), time=f"{result.seconds:.2f}")
    for o in result.outcomes:
        tc = ET.SubElement(suite, "testcase", classname=o.case, name=f"{o.backend}-{o.path}-{o.dtype}")
        if o.status == "fail":
            ET.SubElement(tc, "failure", message=o.detail[:200]).text = o.detail
        elif o.status in ("skipped", "unsupported"):
            ET.SubElement(tc, "skipped", message=o.detail if o.status == "skipped" else f"unsupported: {o.detail}")
        elif o.status == "diverges":
            ET.SubElement(tc, "system-out").text = f"diverges (native, reported, not fatal): {o.detail}"
    for a in result.agreements:
        tc = ET.SubElement(suite, "testcase", classname=a.case, name=f"agreement-{a.path}-{a.dtype}")
        if not a.ok:
            ET.SubElement(tc, "failure", message=f"backends disagree: {a.where}")
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def diff_rows(result: Result, a: str, b: str) -> list[dict[str, str]]:
    """Cases where framework ``a``'s own op and ``b``'s give different numbers or behaviour."""
    native = {(o.case, o.backend, o.dtype): o for o in result.outcomes if o.path == "native"}
    rows = []
    for case in result.cases:
        for dtype in case.dtypes:
            oa, ob = native.get((case.id, a, dtype)), native.get((case.id, b, dtype))
            if not oa or not ob or "skipped" in (oa.status, ob.status):
                continue
            if not _differ(oa, ob, dtype):
                continue
            rows.append({"case": case.id, "dtype": dtype, "quote": case.quote, "source": case.source,
                         a: _behaviour(oa), b: _behaviour(ob), "advice": diff_advice(case, a, oa, b, ob)})
    return rows


def diff_advice(case: Case, a: str, oa: Outcome, b: str, ob: Outcome) -> str:
    """The advice line of a diff row: what was measured (who raises, who returns what), then the case's advice.

    The part that names frameworks comes from the two outcomes, so it cannot contradict the row;
    a case's ``advice`` text says what to do, not which framework does what.
    """
    advice = case.advice or "use bce_compat to get one answer on both"
    if (oa.error is None) == (ob.error is None):
        if oa.error is None and oa.shape != ob.shape:
            return f"{a} returns shape {oa.shape}, {b} shape {ob.shape}; {advice}"
        if oa.error is None:
            return f"{_who_departs(a, oa, b, ob)}; {advice}"
        return advice
    (raiser, err), (other, ok) = ((a, oa), (b, ob)) if oa.error else ((b, ob), (a, oa))
    return f"{raiser} refuses this ({(err.error or '').split(':')[0]}), {other} returns shape {ok.shape}; {advice}"


def _who_departs(a: str, oa, b: str, ob) -> str:
    """Which of the two results departs from the exact value (or the document), as measured."""
    exact = {a: oa.status == "pass", b: ob.status == "pass"}
    if exact[a] != exact[b]:
        (departs, _), (matches, _) = sorted(exact.items(), key=lambda item: item[1])
        return f"{departs} departs from the exact value, {matches} matches it"
    if exact[a]:
        return f"{a} and {b} both match the exact value within its tolerance, not each other"
    return f"{a} and {b} both depart from the exact value"


_DIFF_RTOL = {"float16": 1e-2, "bfloat16": 1e-2, "float32": 1e-5, "float64": 1e-12}


def _differ(oa: Outcome, ob: Outcome, dtype: str) -> bool:
    """Different behaviour: error vs result, another shape, or numbers apart by more than rounding noise."""
    if (oa.error is None) != (ob.error is None) or oa.shape != ob.shape:
        return True
    if oa.error:
        return False
    if oa.status != ob.status and max(oa.worst, ob.worst) > 10:  # e.g. one gradient is wrong
        return True
    return oa.value is not None and ob.value is not None and not _close(oa.value, ob.value, _DIFF_RTOL[dtype])


def _close(u: Any, v: Any, rtol: float) -> bool:
    if u is None or v is None:
        return u is v
    u, v = (u if isinstance(u, list) else [u]), (v if isinstance(v, list) else [v])
    if len(u) != len(v):
        return False
    for p, q in zip(u, v):
        if isinstance(p, str) or isinstance(q, str):
            if p != q:
                return False
        elif abs(p - q) > rtol * max(1.0, abs(p), abs(q)):
            return False
    return True


def _behaviour(o: Outcome) -> str:
    if o.error:
        return f"error ({o.error.split(':')[0]})"
    status = "matches the exact value" if o.status == "pass" else o.detail
    return f"{_short_value(o.value)} shape {o.shape}: {status}"


def _short_value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_short_value(x) for x in v[:6]) + (", …]" if len(v) > 6 else "]")
    if v is None:
        return "(large array)"
    return v if isinstance(v, str) else f"{v:.6g}"


def diff_text(rows: list[dict[str, str]], a: str, b: str) -> str:
    if not rows:
        return f"{a} and {b}: no case where their own ops differ."
    lines = [f"Where {a}'s and {b}'s own BCE ops differ ({len(rows)} case/dtype pairs):"]
    for r in rows:
        lines.append(f"\n{r['case']} ({r['dtype']})  [{r['source']}]")
        lines.append(f"  {a:<10} {r[a]}")
        lines.append(f"  {b:<10} {r[b]}")
        lines.append(f"  advice: {r['advice']}")
    return "\n".join(lines)
