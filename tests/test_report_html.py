"""``--html``: one self-contained page (summary, case table, details, accuracy atlas), nothing fetched.

The page is parsed, not string-matched: its sections, the case table's rows, that every plot is an
embedded PNG, and that no attribute or style points anywhere outside the page.
"""

from __future__ import annotations

import base64
import sys
import textwrap
from html.parser import HTMLParser

import numpy as np
import pytest

from bce_compat import cli
from bce_compat.conformance import atlas, casedata, plots

CASES = "paddle-F-logits-example,ours-inf"


class _Page(HTMLParser):
    """The page's tags, ids, attributes, table rows and text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.images: list[str] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self.style = ""
        self._in: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in.append(tag)
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
            if name == "id":
                self.ids.add(value or "")
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag == "tr":
            self.rows.append([])

    def handle_endtag(self, tag):
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag):]

    def handle_data(self, data):
        if "style" in self._in:
            self.style += data
        elif data.strip():
            self.text.append(data.strip())
            if "td" in self._in and self.rows:
                self.rows[-1].append(data.strip())


def _page(path) -> _Page:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    return _Page(text)


def _assert_self_contained(page: _Page) -> None:
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(page.tags)
    for tag, name, value in page.attributes:
        if name in ("src", "href", "srcset", "action", "poster"):
            assert value.startswith(("data:", "#")), (tag, name, value[:80])
        assert "http:" not in value and "https:" not in value and not value.startswith("//"), (tag, name, value[:80])
    assert "url(" not in page.style and "@import" not in page.style


def _assert_pngs(page: _Page, count: int) -> None:
    assert len(page.images) == count
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_conformance_page_has_every_section_the_cases_and_embedded_plots(tmp_path, capsys):
    out = tmp_path / "report.html"
    code = cli.main(["conformance", "--backends", "numpy", "--cases", CASES, "--quiet", "--html", str(out)])
    assert code == 0, capsys.readouterr().out
    page = _page(out)
    assert {"summary", "cases", "details", "atlas"} <= page.ids
    assert any(t.startswith("PASS") for t in page.text)
    ran = [c.id for c in casedata.load_cases(CASES.split(","))]
    case_rows = [row for row in page.rows if row and row[0] in ran]
    assert sorted(row[0] for row in case_rows) == sorted(ran)
    assert all(set(row[2:]) <= {"ok", "skip"} for row in case_rows)  # numpy: no native op, no failure
    _assert_self_contained(page)
    if plots.available():
        _assert_pngs(page, 1)  # bce_compat on numpy: the only contender here
    assert "bce_compat" in " ".join(page.text)


NAIVE = textwrap.dedent('''
    import numpy as np

    def bce(input, target, weight=None, reduction="mean"):
        s = 1 / (1 + np.exp(-input))
        loss = -(target * np.log(s) + (1 - target) * np.log(1 - s))
        loss = loss if weight is None else loss * weight
        return {"none": loss, "sum": np.sum(loss), "mean": np.mean(loss)}[reduction]
''')


def test_implementation_page_names_the_failing_cases_and_plots_the_implementation(tmp_path, monkeypatch, capsys):
    (tmp_path / "naive_html_bce.py").write_text(NAIVE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "impl.html"
    code = cli.main(["conformance", "--impl", "naive_html_bce:bce", "--dialect", "torch", "--backends", "numpy",
                     "--cases", "ours-inf,ours-nan,torch-module-pos-weight-example", "--quiet", "--html", str(out)])
    assert code == 1
    page = _page(out)
    banner = next(t for t in page.text if t.startswith("FAIL"))
    assert "failing cases" in banner
    assert "ours-inf-pos-y1-is-zero" in " ".join(page.text)
    assert any("Unsupported" in t for t in page.text)  # no pos_weight keyword: its TypeError, grouped
    worst = [row for row in page.rows if row and row[0] == "naive_html_bce:bce"]
    assert worst and "NaN/inf" in worst[0]  # the atlas's table: NaN at the saturated extremes
    _assert_self_contained(page)
    if plots.available():
        _assert_pngs(page, 2)  # bce_compat and the implementation


def test_without_matplotlib_the_page_says_how_to_get_the_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert not plots.available()
    out = tmp_path / "report.html"
    assert cli.main(["conformance", "--backends", "numpy", "--cases", CASES, "--quiet", "--html", str(out)]) == 0
    page = _page(out)
    assert page.images == []
    assert plots.INSTALL_HINT in " ".join(page.text)
    assert "atlas" in page.ids and any(row and row[0] == "bce_compat" for row in page.rows)  # the numbers stay
    _assert_self_contained(page)


def test_diff_page_lists_the_differences_and_both_ops(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("paddle")
    out = tmp_path / "diff.html"
    assert cli.main(["diff", "torch", "paddle", "--cases", "ours-label-minus-100-not-ignored", "--html", str(out)]) == 0
    page = _page(out)
    assert {"summary", "differences", "atlas"} <= page.ids
    assert any(row and row[0] == "ours-label-minus-100-not-ignored" for row in page.rows)
    contenders = [row[0] for row in page.rows if row and row[0].endswith("binary_cross_entropy_with_logits")]
    assert contenders == ["torch.nn.functional.binary_cross_entropy_with_logits",
                          "paddle.nn.functional.binary_cross_entropy_with_logits"]
    _assert_self_contained(page)
    if plots.available():
        _assert_pngs(page, 3)


# ---- the atlas's numbers


def test_atlas_bce_compat_is_within_4_ulp_everywhere_and_a_naive_formula_is_not():
    def naive(input, target, **kwargs):
        s = 1 / (1 + np.exp(-input))
        return -(target * np.log(s) + (1 - target) * np.log(1 - s))

    result = atlas.build([atlas.ours(["numpy"]), atlas.Contender("naive", "numpy", ("naive", naive))])
    ours, bad = result.rows
    for dtype in atlas.DTYPES:
        assert max(result.worst(ours, dtype, "value")) <= 4
        assert max(result.worst(ours, dtype, "value", extremes=True)) == 0  # the limits are exact
        assert result.worst(ours, dtype, "gradient") is None  # numpy has no autograd: said in the notes
        assert max(result.worst(bad, dtype, "value")) == np.inf  # NaN at x = 100, y = 1 (0 * log 0)
    assert any("no gradients" in note for note in ours.notes)


def test_atlas_ulp_error_counts_in_the_dtype_of_the_result():
    exact = np.array([1.0, 1e-40, 0.0, np.inf, 2.0, np.nan])
    got = np.array([1.0 + 2 * 2.0**-23, 0.0, 3 * 2.0**-149, np.inf, np.nan, np.nan])
    errors = atlas.ulp_error(got, exact, "float32")
    # ulp of 0 is the smallest subnormal; NaN for a finite value is infinitely wrong, NaN for NaN exact
    assert errors.tolist() == [2.0, 1e-40 / 2.0**-149, 3.0, 0.0, np.inf, 0.0]
    assert atlas.ulp_error(got[:1], exact[:1], "float64")[0] == 2 * 2.0**29


def test_an_implementation_that_passed_nothing_gets_a_fail_banner():
    """Every cell unsupported is exit status 1 ("nothing passed"): the page's banner says FAIL, never PASS."""
    from bce_compat.conformance import page, runner

    (case,) = [c for c in casedata.load_cases(["paddle-F-logits-example"]) if c.id == "paddle-F-logits-example"]
    refused = runner.Outcome(case=case.id, backend="numpy", path="impl", dtype="float32", status="unsupported",
                             detail="TypeError: no", error="TypeError: no")
    result = runner.Result(cases=[case], backends=["numpy"], outcomes=[refused], impl="m:f as torch's f")
    assert result.exit_code == 1 and result.failing_cases() == []
    text = _Page(page.conformance_page(result, None)).text
    assert "FAIL: nothing passed (exit status 1)" in text and not any(t.startswith("PASS") for t in text)
