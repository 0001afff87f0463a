"""One self-contained HTML page for ``bce-compat conformance --html`` and ``bce-compat diff --html``.

Inline CSS, plots as inline PNG (``data:`` URIs); nothing is fetched from a network, so the page
can be mailed, archived as a CI artifact or opened offline. Sections: ``summary``, the case table
(``cases``, or ``differences`` for a diff), ``details`` (what failed, diverged or is unsupported,
and why), and the accuracy ``atlas``. Without matplotlib the atlas keeps its table of worst
errors and says how to get the plots.

>>> text = document("t", [section("summary", "Summary", "<p>ok</p>")])
>>> text.startswith("<!DOCTYPE html>") and 'id="summary"' in text and "http" not in text
True
"""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Iterable
from typing import Any

from bce_compat._version import __version__
from bce_compat.conformance import plots, report
from bce_compat.conformance.atlas import DTYPES, EXTREMES, QUANTITIES, TARGETS, Atlas

_STYLE = """
:root { --ok: #d9f2dd; --fail: #f8c9c4; --div: #fbe5b6; --skip: #eeeeee; --uns: #dcd6f7; --ink: #1d2330; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0; background: #fafbfc; }
main { max-width: 1380px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #dfe3ea; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.lead { color: #4a5468; margin: 0 0 16px; }
nav a { margin-right: 14px; color: #2456a6; text-decoration: none; }
.banner { padding: 12px 16px; border-radius: 8px; font-size: 16px; font-weight: 600; margin: 12px 0; }
.banner.pass { background: var(--ok); } .banner.fail { background: var(--fail); }
.banner .sub { display: block; font-weight: 400; font-size: 13px; margin-top: 4px; word-break: break-word; }
.pills span { display: inline-block; padding: 3px 10px; margin: 0 6px 6px 0; border-radius: 12px; font-weight: 600; }
table { border-collapse: collapse; background: white; }
th, td { border: 1px solid #dfe3ea; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #eef1f6; font-weight: 600; position: sticky; top: 0; }
table.meta td:first-child { color: #4a5468; white-space: nowrap; }
table.cases td.id { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; white-space: nowrap; }
table.cases td.quote { color: #5b6577; font-size: 12px; max-width: 520px; }
table.cases td.behaviour { font-size: 12.5px; min-width: 180px; max-width: 320px; word-break: break-word; }
details > summary { cursor: pointer; font-weight: 600; margin: 14px 0 6px; }
table.cases td.quote div { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
                           overflow: hidden; }
td.st { text-align: center; font-weight: 600; font-size: 12px; min-width: 46px; }
.ok { background: var(--ok); } .fail { background: var(--fail); } .div { background: var(--div); }
.skip { background: var(--skip); color: #777; } .uns { background: var(--uns); } .none { color: #aaa; }
ul.details { padding-left: 18px; } ul.details li { margin-bottom: 4px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
figure { margin: 16px 0 26px; background: white; border: 1px solid #dfe3ea; border-radius: 6px; padding: 8px; }
figure img { width: 100%; height: auto; display: block; }
figcaption { color: #4a5468; font-size: 12.5px; margin-top: 4px; }
.note { background: #fff7e0; border: 1px solid #f0d78c; padding: 10px 14px; border-radius: 6px; }
table.worst td.num { text-align: right; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border-radius: 4px; }
"""

_STATUS_CLASS = {"pass": "ok", "fail": "fail", "diverges": "div", "skipped": "skip", "unsupported": "uns"}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def document(title: str, sections: Iterable[str], lead: str = "") -> str:
    """The page: head with the inline style, a title, a navigation line, then ``sections``."""
    sections = list(sections)
    links = "".join(f'<a href="#{_e(sid)}">{_e(name)}</a>' for sid, name in _SECTION_NAMES if f'id="{sid}"' in
                    "".join(sections))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{_e(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{_e(title)}</h1>\n"
            f'<p class="lead">{lead}</p>\n<nav>{links}</nav>\n' + "\n".join(sections) + "\n</main>\n</body>\n</html>\n")


_SECTION_NAMES = [("summary", "Summary"), ("cases", "Cases"), ("differences", "Differences"),
                  ("details", "Details"), ("atlas", "Accuracy atlas")]


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{_e(sid)}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


# ---- bce-compat conformance


def conformance_page(result: Any, atlas: Atlas | None, command: str | None = None) -> str:
    """The page for one conformance run (``runner.Result``), with its accuracy atlas."""
    subject = result.impl or "bce_compat and each framework's own op"
    sections = [section("summary", "Summary", _summary(result, command)),
                section("cases", "Cases", _case_table(result)),
                section("details", "Details", _details(result))]
    if atlas is not None:
        sections.append(section("atlas", "Accuracy atlas", atlas_body(atlas)))
    lead = f"Conformance of {_e(subject)} with the documents' examples and the exact math."
    return document("bce_compat conformance report", sections, lead)


def _meta(rows: list[tuple[str, str]]) -> str:
    return '<table class="meta">' + "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _summary(result: Any, command: str | None) -> str:
    counts = result.counts()
    failing = result.failing_cases()
    if result.exit_code == 0:
        banner = '<div class="banner pass">PASS: every case that ran passes (exit status 0)</div>'
    else:
        why = f"{len(failing)} failing cases" if failing else "nothing passed"
        names = f'<span class="sub mono">{_e(", ".join(failing))}</span>' if failing else ""
        banner = f'<div class="banner fail">FAIL: {why} (exit status 1){names}</div>'
    pills = [("passed", "ok"), ("failed", "fail"), ("diverges", "div"), ("unsupported", "uns"), ("skipped", "skip")]
    shown = [(k, c) for k, c in pills if counts.get(k) or k in ("passed", "failed")]
    pill_html = '<div class="pills">' + "".join(
        f'<span class="{c}">{counts.get(k, 0)} {_e(k if k != "diverges" else "diverge (native, not fatal)")}</span>'
        for k, c in shown) + "</div>"
    rows = []
    if result.impl:
        rows.append(("implementation", f"<code>{_e(result.impl)}</code>"))
    rows += [("backends", _e(", ".join(result.backends) or "none installed")),
             ("cases run", str(len(result.cases)))]
    if result.not_applicable:
        rows.append(("cases that do not apply", f"{len(result.not_applicable)} (reasons under Details)"))
    worst = result.largest_disagreement()
    if worst is not None:
        rows.append(("largest cross-backend disagreement",
                     _e(f"{worst.worst:.3g}x tolerance ({worst.case}, {worst.path}, {worst.dtype}; {worst.where})")))
    rows += [("time", f"{result.seconds:.1f} s"), ("bce_compat", _e(__version__)), ("generated", _e(_now()))]
    if command:
        rows.append(("command", f"<code>{_e(command)}</code>"))
    return banner + pill_html + _meta(rows)


def _case_table(result: Any) -> str:
    cells = report.cell_statuses(result)
    natives = report.native_columns(result)
    columns = [("shim", b) for b in result.backends] + [("native", b) for b in natives]
    disagree = {a.case for a in result.agreements if not a.ok}
    subject = "the implementation" if result.impl else "our shim"
    head = ("<tr><th rowspan=2>case</th><th rowspan=2>what it checks</th>"
            f'<th colspan="{len(result.backends)}">{_e(subject)} on each backend</th>'
            + (f'<th colspan="{len(natives)}">each framework\'s own op</th>' if natives else "")
            + "</tr><tr>" + "".join(f"<th>{_e(report.SHORT.get(b, b))}</th>" for _, b in columns) + "</tr>")
    body = []
    for case in result.cases:
        row = [f'<td class="id">{_e(case.id)}{" !!" if case.id in disagree else ""}</td>',
               f'<td class="quote" title="{_e(case.quote)}"><div>{_e(case.quote)}</div></td>']
        for kind, backend in columns:
            status = cells.get((case.id, kind, backend))
            if status is None:
                row.append('<td class="st none">-</td>')
            else:
                row.append(f'<td class="st {_STATUS_CLASS[status]}">{_e(report.MARK[status])}</td>')
        body.append("<tr>" + "".join(row) + "</tr>")
    present = set(cells.values())
    meanings = [("pass", "matches the document and the exact math"), ("fail", "wrong"),
                ("diverges", "a framework's own op departs (reported, not fatal)"),
                ("unsupported", "unsupported (TypeError: an option it lacks)"), ("skipped", "not applicable")]
    marks = " ".join(f'<span class="{_STATUS_CLASS[s]}">{_e(report.MARK[s])}</span>{_e(m)}'
                     for s, m in meanings if s in present or s in ("pass", "fail"))
    legend = (f'<p class="legend">{marks}{" !! backends disagree." if disagree else ""} '
              "Each cell is the worst of its dialects and dtypes.</p>")
    return legend + f'<table class="cases"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _details(result: Any) -> str:
    parts = []
    for title, outcomes, is_open in (("Failures", result.failures, True),
                                     ("Native-op divergences", result.divergences, False)):
        if outcomes:
            items = "".join(f"<li><code>{_e(o.case)}</code> [{_e(o.backend)} {_e(o.path)} {_e(o.dtype)}] "
                            f"<span class=\"mono\">{_e(o.op)}</span>: {_e(o.detail)}</li>" for o in outcomes)
            parts.append(f"<details{' open' if is_open else ''}><summary>{_e(title)} ({len(outcomes)} cells)</summary>"
                         f'<ul class="details">{items}</ul></details>')
    if result.unsupported:
        by_reason: dict[str, dict[str, set[str]]] = {}
        for o in result.unsupported:
            by_reason.setdefault(o.detail, {}).setdefault(o.case, set()).add(f"{o.backend} {o.dtype}")
        items = "".join(f"<li>{_e(reason)}: " + ", ".join(f"<code>{_e(case)}</code> ({_e(', '.join(sorted(cells)))})"
                                                          for case, cells in cases.items()) + "</li>"
                        for reason, cases in by_reason.items())
        parts.append(f"<details open><summary>Unsupported ({len(result.unsupported)} cells, by the implementation's "
                     f'error)</summary><ul class="details">{items}</ul></details>')
    bad = [a for a in result.agreements if not a.ok]
    if bad:
        items = "".join(f"<li><code>{_e(a.case)}</code> [{_e(a.path)} {_e(a.dtype)}] {a.worst:.3g}x tolerance: "
                        f"{_e(a.where)}</li>" for a in bad)
        parts.append(f"<details open><summary>Backends disagree ({len(bad)})</summary>"
                     f'<ul class="details">{items}</ul></details>')
    skipped = report.skips_text(result)
    if skipped:
        parts.append(f'<details><summary>Skipped (counted by reason)</summary><pre class="mono">{_e(skipped)}</pre>'
                     "</details>")
    if result.not_applicable:
        parts.append(f"<details open><summary>Cases that do not apply ({len(result.not_applicable)})</summary>"
                     f'<pre class="mono">{_e(report.not_applicable_text(result))}</pre></details>')
    return "\n".join(parts) or "<p>Nothing failed, diverged, or was skipped.</p>"


# ---- bce-compat diff


def diff_page(rows: list[dict[str, str]], a: str, b: str, atlas: Atlas | None, command: str | None = None) -> str:
    """The page for ``bce-compat diff a b``: where the two frameworks' own ops differ, and their atlas."""
    summary = (f'<div class="banner {"pass" if not rows else "fail"}">{len(rows)} case/dtype pairs where '
               f"{_e(a)}'s and {_e(b)}'s own BCE ops differ</div>"
               + _meta([("bce_compat", _e(__version__)), ("generated", _e(_now()))]
                       + ([("command", f"<code>{_e(command)}</code>")] if command else [])))
    head = (f"<tr><th>case</th><th>what it checks</th><th>dtype</th><th>{_e(a)}</th><th>{_e(b)}</th>"
            "<th>advice</th></tr>")
    body = "".join(f'<tr><td class="id">{_e(r["case"])}</td><td class="quote" title="{_e(r["quote"])}">'
                   f'<div>{_e(r["quote"])}</div></td><td>{_e(r["dtype"])}</td><td class="behaviour">{_e(r[a])}</td>'
                   f'<td class="behaviour">{_e(r[b])}</td><td>{_e(r["advice"])}</td></tr>' for r in rows)
    table = f'<table class="cases"><thead>{head}</thead><tbody>{body}</tbody></table>' if rows else \
        "<p>No case where their own ops differ.</p>"
    sections = [section("summary", "Summary", summary), section("differences", "Differences", table)]
    if atlas is not None:
        sections.append(section("atlas", "Accuracy atlas", atlas_body(atlas)))
    return document(f"bce_compat diff: {a} vs {b}", sections,
                    f"Where {_e(a)}'s and {_e(b)}'s own binary-cross-entropy ops give different numbers or behaviour.")


# ---- the accuracy atlas


def atlas_body(atlas: Atlas) -> str:
    """The atlas section: what is plotted, the table of worst errors, and one picture per contender."""
    intro = ("<p>For each contender, the error in ulp of its result against the exact value (mpmath, 50 digits) "
             "at the same, already rounded, inputs: x from &minus;100 to 100 (every 0.25 in [&minus;20, 20]) and "
             f"the extremes {_e(', '.join(EXTREMES))}; y = {', '.join(f'{y:g}' for y in TARGETS)}; values and the "
             "gradient with respect to x, in float32 and float64. The dashed line is 4 ulp, the contract's bound "
             "for values; a gradient's bound is 4 ulp of the larger of its two terms, so near its zeros (x = 0 for "
             "y = 0.5; |x| large) the plain ulp error of even a correct gradient grows. Errors above 1e15 ulp are "
             "drawn at 1e15; NaN or inf where the exact value is finite is drawn on the red band.</p>")
    parts = [intro, _worst_table(atlas)]
    if plots.available():
        for row in atlas.rows:
            if not row.errors:
                continue
            png = base64.b64encode(plots.contender_png(atlas, row)).decode("ascii")
            notes = f"<figcaption>{_e('; '.join(row.notes))}</figcaption>" if row.notes else ""
            parts.append(f'<figure><img alt="error in ulp of {_e(row.label)}" src="data:image/png;base64,{png}">'
                         f"{notes}</figure>")
    else:
        parts.append(f'<p class="note">The plots need matplotlib: <code>{_e(plots.INSTALL_HINT)}</code> (or '
                     "<code>pip install matplotlib</code>), then run the command again. The table above has the "
                     "worst errors.</p>")
    return "\n".join(parts)


def _worst_table(atlas: Atlas) -> str:
    head = ("<tr><th rowspan=2>contender</th><th rowspan=2>bench</th>"
            + "".join(f"<th colspan=2>{_e(q)}, {_e(d)}</th>" for d in DTYPES for q in QUANTITIES)
            + "</tr><tr>" + "<th>x in [&minus;100, 100]</th><th>extremes</th>" * (len(DTYPES) * len(QUANTITIES))
            + "</tr>")
    body = []
    for row in atlas.rows:
        cells = [f"<td>{_e(row.label)}</td><td>{_e(row.bench)}</td>"]
        for dtype in DTYPES:
            for quantity in QUANTITIES:
                for extremes in (False, True):
                    worst = atlas.worst(row, dtype, quantity, extremes)
                    cells.append(_worst_cell(None if worst is None else max(worst)))
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = [f"<li>{_e(row.label)}: {_e(note)}</li>" for row in atlas.rows for note in row.notes]
    caption = ("<p>The largest error in ulp over y = 0, 0.5 and 1; green within 4 ulp, amber within 1000, red "
               "beyond.</p>")
    return (caption + f'<table class="worst"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'
            + (f'<ul class="details">{"".join(notes)}</ul>' if notes else ""))


def _worst_cell(value: float | None) -> str:
    if value is None:
        return '<td class="num none">n/a</td>'
    css = "ok" if value <= 4 else "div" if value <= 1000 else "fail"
    return f'<td class="num {css}">{_e(_ulp(value))}</td>'


def _ulp(value: float) -> str:
    """An error in ulp for the table: ``0``, ``0.5``, ``37``, ``1.7e7``, ``NaN/inf``.

    >>> [_ulp(v) for v in (0.0, 0.4999, 37.2, 16764434.0, float("inf"))]
    ['0', '0.5', '37', '1.7e7', 'NaN/inf']
    """
    if value == float("inf"):
        return "NaN/inf"
    if value == 0:
        return "0"
    if value < 1000:
        return f"{value:.2g}" if value < 10 else f"{value:.0f}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
