"""bench/run.py cannot rot: its command line, its tables and the README markers, and a tiny real
sweep (two sizes, float32, every installed framework and entry point, no torch.compile).

Nothing here asserts a speed: the bench is the measure, the tests only check that it runs and
reports what it measured.
"""

from __future__ import annotations

import doctest
import json
import sys
from pathlib import Path

import pytest

from bce_compat.conformance import frameworks

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import _cases  # noqa: E402
import _report  # noqa: E402
import run  # noqa: E402
import sweep  # noqa: E402


@pytest.mark.parametrize("module", [_cases, _report, sweep, run], ids=lambda m: m.__name__)
def test_the_bench_modules_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _args(*argv):
    return run.parser().parse_args(list(argv))


def test_sizes_accept_ranges_and_lists():
    assert run.parse_sizes("7-24") == tuple(range(7, 25))
    assert run.parse_sizes("7,10,14") == (7, 10, 14)
    assert run.parse_sizes("12,7-9") == (7, 8, 9, 12)
    assert _args().sizes is None  # the default: 2**7 ... 2**24, or the quick sizes


@pytest.mark.parametrize("text", ["x", "9-7", "5", "7-31", "7-"])
def test_bad_sizes_name_the_option_and_what_was_expected(text, capsys):
    with pytest.raises(SystemExit):
        _args("--sizes", text)
    err = capsys.readouterr().err
    assert "--sizes" in err and "expected" in err


def test_selections_take_subsets_aliases_and_all():
    args = _args("--dtypes", "float64,float16", "--frameworks", "tf,compile", "--directions", "bwd", "--entries", "focal")
    assert args.dtypes == ("float16", "float64")  # the sweep's own order
    assert args.frameworks == ("torch.compile", "tensorflow")
    assert args.directions == ("fwd+bwd",)
    assert args.entries == ("focal",)
    assert _args("--dtypes", "all").dtypes == _cases.DTYPES
    defaults = _args()
    assert (defaults.dtypes, defaults.frameworks, defaults.entries) == (_cases.DTYPES, _cases.FRAMEWORKS, tuple(_cases.ENTRIES))


def test_an_unknown_name_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        _args("--entries", "logits,softmax")
    err = capsys.readouterr().err
    assert "--entries" in err and "ignore_index" in err and "softmax" in err


def test_update_readme_refuses_a_quick_run():
    with pytest.raises(SystemExit, match="--quick"):
        run.main(["--quick", "--update-readme"])


def test_families_leave_out_what_cannot_apply():
    sel = sweep.Selection(frameworks=_cases.FRAMEWORKS, entries=tuple(_cases.ENTRIES), dtypes=("bfloat16",),
                          directions=_cases.DIRECTIONS, exponents=(11, 12))  # fmt: skip
    small, large = sel.families("bfloat16", 11), sel.families("bfloat16", 12)
    assert small[0].framework == _cases.FLOOR
    assert not any(f.framework == "numpy" for f in small)  # no NumPy bfloat16, no NumPy autograd
    assert not any(f.framework == "torch.compile" for f in small)  # from 2**12 only
    assert [f.entry for f in large if f.framework == "torch.compile"] == ["logits", "logits"]
    assert not any(f.framework == "tensorflow" and f.entry == "transposed" for f in large)
    assert len({f.label for f in large}) == len(large)


def _record(framework="torch", ours=45e-6, theirs=40e-6, exponent=10, status="ok", **extra):
    return {"framework": framework, "entry": "logits", "dtype": "float32", "direction": "fwd", "exponent": exponent,
            "n": 2**exponent, "status": status, "reason": extra.pop("reason", ""), "ours_s": ours, "theirs_s": theirs,
            "contender": "F.binary_cross_entropy_with_logits", "compile_s": extra.pop("compile_s", None), "seconds": 1.0,
            **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("framework", "ours", "theirs", "met"),
    [
        ("torch", 40e-6, 40e-6, True),
        ("torch", 49.9e-6, 40e-6, True),  # +9.9 µs on a 40 µs op: allowed
        ("torch", 50.1e-6, 40e-6, False),
        ("torch", 201e-6, 200e-6, False),  # no allowance from 100 µs
        ("torch.compile", 45e-6, 40e-6, False),  # none against torch.compile
        ("paddle", 90e-6, 100e-6, True),
    ],
)
def test_goal_rule(framework, ours, theirs, met):
    assert _report.meets_goal(_record(framework, ours, theirs)) is met


def test_family_table_has_a_row_per_size_with_ratio_delta_goal_and_floor():
    rows = [_record(exponent=7, ours=20e-6, theirs=23e-6), _record(exponent=20, ours=3e-3, theirs=2e-3)]
    floor = {("float32", 2**7): 6e-6, ("float32", 2**20): 0.5e-3}
    table = _report.family_table(_report.family_of(rows[0]), rows, floor)
    assert "#### torch · logits · float32 · fwd" in table and "F.binary_cross_entropy_with_logits" in table
    assert "| 2^7 | 20 | 23 | 0.87 | -3.0 | yes | 6 |" in table
    assert "| 2^20 | 3000 | 2000 | 1.50 |  | **no** | 500 |" in table
    summary = _report.summary_table(_report.by_family(rows))
    assert "| torch · logits · float32 · fwd | 2^7–2^20 | 0.87–1.50 | 1.50 (2^20) | **1**: 2^20 |  | 2 |" in summary


def test_tables_say_where_the_two_losses_differ():
    rows = [_record(exponent=7, ours_value=0.5, theirs_value=0.5), _record(exponent=8, ours_value=0.6, theirs_value=0.5)]
    table = _report.family_table(_report.family_of(rows[0]), rows, {})
    assert "**losses differ** (relative difference above 0.001): 2^8 (0.2)" in table
    assert "| **differ**: 2^8 (0.2) |" in _report.summary_table(_report.by_family(rows))
    rows[1]["ours_value"], rows[1]["theirs_value"] = 0.5, float("nan")  # a NaN contender does not agree
    assert "2^8 (inf)" in _report.family_table(_report.family_of(rows[0]), rows, {})
    rows[1]["ours_value"], rows[1]["theirs_value"] = 0.5000001, 0.5
    assert "losses agree within 0.001 (relative) at every size" in _report.family_table(_report.family_of(rows[0]), rows, {})


def test_a_family_that_did_not_run_says_why():
    rows = [_record(framework="paddle", status="no contender", reason="contender failed: RuntimeError: no kernel")]
    table = _report.family_table(_report.family_of(rows[0]), rows, {})
    assert "not measured: no contender: contender failed: RuntimeError: no kernel" in table


def test_update_readme_replaces_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Bench\nbefore\n{_report.README_START}\nold table\n{_report.README_END}\nafter (another section)\n")
    meta = {"date": "d", "commit": "c", "duration_s": 60.0, "command": "python bench/run.py", "load_start": 0.5,
            "load_end": 0.6, "machine": {"cpu": "cpu", "isa": "AVX2", "cpus": 2, "memory_gib": 8, "software": "s"},
            "sampling": vars(sweep.FULL), "selection": {"dtypes": ("float32",), "directions": ("fwd",),
            "frameworks": ("torch",), "entries": ("logits",)}}  # fmt: skip
    _report.update_readme(str(readme), meta, [_record(ours=44e-6)], str(tmp_path), {})
    text = readme.read_text()
    assert "old table" not in text and "| 2^10 | 44 | 40 | 1.10 | +4.0 | yes |" in text
    assert text.startswith("# Bench\nbefore\n") and text.endswith(f"{_report.README_END}\nafter (another section)\n")
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        _report.update_readme(str(readme), meta, [_record()], str(tmp_path), {})


def test_a_tiny_sweep_runs_every_installed_framework_and_entry(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch", reason="the contenders of torch, NumPy and the floor are torch's ops")
    monkeypatch.setattr(sweep, "QUICK", sweep.Sampling(sample_seconds=0.0, min_samples=2, max_samples=2, row_seconds=0.0))
    installed = [name for name in ("torch", "numpy", "paddle", "tensorflow") if name in frameworks.available()]
    run.main(["--quick", "--sizes", "7,8", "--dtypes", "float32", "--no-compile", "--frameworks", ",".join(installed),
              "--out", str(tmp_path)])  # fmt: skip
    result = json.loads((tmp_path / "sweep.json").read_text())
    records = result["records"]
    expected = {f.label for e in (7, 8) for f in sweep.Selection(tuple(installed), tuple(_cases.ENTRIES), ("float32",),
                                                                  _cases.DIRECTIONS, (7, 8)).families("float32", e)}  # fmt: skip
    assert {_report.family_of(r).label for r in records} == expected
    assert [r for r in records if r["status"] != "ok"] == []  # float32 runs everywhere
    assert all(len(r["ours_samples"]) == len(r["theirs_samples"]) == sweep.QUICK.min_samples for r in records)
    assert all(r["ours_s"] > 0 and r["theirs_s"] > 0 for r in records)
    forward = [r for r in records if r["direction"] == "fwd" and r["framework"] != _cases.FLOOR]
    assert forward and all(sweep.relative_difference(r) < 1e-4 for r in forward)  # each contender computes our loss
    markdown = (tmp_path / "sweep.md").read_text()
    assert "#### numpy · focal · float32 · fwd" in markdown and "#### memory floor · float32" in markdown
    assert result["meta"]["peak_extra_memory"]["float32"]["mean"] >= 0
    out = capsys.readouterr().out
    assert "| torch · transposed · float32 · fwd+bwd | 2^7–2^8 |" in out  # the summary

    again = tmp_path / "again"
    run.main(["--from-json", str(tmp_path / "sweep.json"), "--out", str(again), "--no-plots"])
    def tables(text):
        return [line for line in text.splitlines() if line and not line.startswith("![")]  # figures: --no-plots here

    assert tables((again / "sweep.md").read_text()) == tables(markdown)  # the same report from the JSON
    with pytest.raises(SystemExit, match="--quick run"):
        run.main(["--from-json", str(tmp_path / "sweep.json"), "--out", str(again), "--update-readme"])
