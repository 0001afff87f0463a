"""The ``bce-compat`` command as a user meets it (issue 12, items 5, 6 and 7).

``python -m bce_compat``; an unknown backend is an error naming the known ones; ``migrate`` on a
terminal prints its usage instead of waiting; case ids are shown whole; ``--no-native`` shows no
native block; the output carries no framework log lines or warnings; ``diff``'s advice agrees
with what was measured.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import pytest

from bce_compat import cli
from bce_compat.conformance import casedata, report, runner

_QUIET_VARS = ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel")


def _run_module(*args, timeout=600, **kwargs):
    """``python -m bce_compat ARGS`` outside the source tree, with no log-level variables of our own."""
    env = {k: v for k, v in os.environ.items() if k not in _QUIET_VARS}
    return subprocess.run([sys.executable, "-m", "bce_compat", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=tempfile.gettempdir(), env=env, **kwargs)


# ---- python -m bce_compat


def test_python_dash_m_runs_the_command():
    done = _run_module("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bce-compat ")


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: bce-compat" in capsys.readouterr().out


# ---- conformance --backends


def test_unknown_backend_is_an_error_naming_the_known_ones(capsys):
    assert cli.main(["conformance", "--backends", "numpyy", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'numpyy'" in err and "numpy" in err.replace("'numpyy'", "")
    for known in ("torch", "paddle", "tensorflow", "jax", "dask"):  # known whether installed or not
        assert known in err


def test_known_backends_pass_the_check(capsys):
    code = cli.main(["conformance", "--backends", "numpy", "--cases", "paddle-F-logits-example", "--no-native",
                     "--quiet"])
    assert code == 0, capsys.readouterr()


# ---- migrate without a path


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_migrate_without_path_on_a_terminal_prints_usage(capsys):
    from bce_compat import _cli_migrate

    args = cli.build_parser().parse_args(["migrate"])
    assert _cli_migrate.run(args, stdin=_Terminal("")) == 2
    err = capsys.readouterr().err
    assert "usage: bce-compat migrate" in err and "'-'" in err


def test_migrate_without_path_reads_piped_stdin(capsys):
    pytest.importorskip("libcst")
    from bce_compat import _cli_migrate

    args = cli.build_parser().parse_args(["migrate", "--to", "portable", "--write"])
    assert _cli_migrate.run(args, stdin=io.StringIO("import torch\nl = torch.nn.BCELoss()\n")) == 0
    assert "bce_compat" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_migrate_on_a_real_terminal_does_not_wait():
    """Before the fix this waited for typing on the terminal until the timeout."""
    import pty

    leader, follower = pty.openpty()
    try:
        done = _run_module("migrate", stdin=follower, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert "usage: bce-compat migrate" in done.stderr


def test_migrate_dash_still_reads_stdin():
    pytest.importorskip("libcst")
    done = _run_module("migrate", "--to", "portable", "--write", "-", input="import torch\nl = torch.nn.BCELoss()\n")
    assert done.returncode == 0, done.stderr
    assert "bce_compat" in done.stdout


# ---- backends


def test_backends_listing_speaks_plainly(capsys):
    assert cli.main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out
    for jargon in ("NotImplemented", "Declined", "engine"):
        assert jargon not in out
    for line in filter(str.strip, out.splitlines()):
        assert len(line.split(None, 2)) == 3, line  # name, version (or '-'), what runs (or how to install)


def test_backends_listing_says_whether_the_compiled_pass_runs(capsys, monkeypatch):
    from bce_compat.backends import cpu_pass

    assert cli.main(["backends"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("compiled CPU pass: ") and ("not built" in last) == (not cpu_pass.AVAILABLE)
    monkeypatch.setattr(cpu_pass, "AVAILABLE", False)
    assert cli.main(["backends"]) == 0
    assert "compiled CPU pass: not built" in capsys.readouterr().out


# ---- the table


def _result(case_ids, backends, native_backends=()):
    """A runner Result with one passing cell per case, path and backend (no framework needed)."""
    cases = [SimpleNamespace(id=i) for i in case_ids]
    outcomes = [runner.Outcome(case=i, backend=b, path="torch-dialect", dtype="float32", status="pass")
                for i in case_ids for b in backends]
    outcomes += [runner.Outcome(case=i, backend=b, path="native", dtype="float32", status="diverges")
                 for i in case_ids for b in native_backends]
    return runner.Result(cases=cases, backends=list(backends), outcomes=outcomes)


LONG_ID = "torch-F-logits-reduce-false-ignores-size-average"


@pytest.mark.parametrize("width", [60, 100, 10_000])
def test_case_ids_are_shown_whole(width):
    ids = ["short", LONG_ID, "ours-pos-weight-not-broadcastable"]
    backends = ["numpy", "torch", "paddle", "tensorflow", "jax", "dask", "array_api_strict"]
    text = report.table(_result(ids, backends, ["torch", "paddle", "tensorflow", "jax"]), width=width)
    assert "…" not in text
    lines = text.splitlines()
    for case_id in ids:
        assert any(line.split() and line.split()[0] == case_id for line in lines), case_id
    if width >= 100:  # fits the width unless the width is too small for the cells themselves
        assert max(map(len, lines)) <= width
    if width == 10_000:  # room enough: one line per case, cells beside the id
        assert len(lines) == 2 + len(ids) and "ok" in lines[3]


def test_long_id_on_its_own_line_then_its_cells():
    text = report.table(_result([LONG_ID, "short"], ["numpy", "torch"]), width=40)
    lines = text.splitlines()
    at = lines.index(LONG_ID)
    assert lines[at + 1].split() == ["ok", "ok"]  # the cells follow, under the cell columns
    assert lines[at + 2].split() == ["short", "ok", "ok"]


def test_no_native_block_without_native_ops():
    text = report.table(_result(["a-case"], ["numpy", "torch"]))
    assert "native" not in text and "|" not in text
    with_native = report.table(_result(["a-case"], ["numpy", "torch"], ["torch"]))
    assert "native op" in with_native and "|" in with_native


def test_no_native_cli_run_shows_no_native_block(capsys):
    code = cli.main(["conformance", "--backends", "numpy", "--cases", "paddle-F-logits-example", "--no-native",
                     "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "native op" not in out and " | " not in out.split("legend")[0]


# ---- diff advice agrees with the measured row


def _native(case, backend, error=None, shape=None, value=None):
    return runner.Outcome(case=case, backend=backend, path="native", dtype="float32",
                          status="pass" if error else "diverges", error=error, shape=shape, value=value)


def test_diff_advice_names_the_framework_that_raises():
    case = casedata.load_cases(["ours-weight-enlarging-is-error"])[0]
    measured = runner.Result(cases=[case], backends=["torch", "paddle"], outcomes=[
        _native(case.id, "torch", error="RuntimeError: The size of tensor a (3) must match"),
        _native(case.id, "paddle", shape=[2, 3], value=[0.5] * 6),
    ])
    rows = [r for r in report.diff_rows(measured, "torch", "paddle") if r["dtype"] == "float32"]
    assert len(rows) == 1
    advice = rows[0]["advice"]
    assert advice.startswith("torch refuses this (RuntimeError), paddle returns shape [2, 3]")
    assert "torch and others silently broadcast" not in advice
    # the other way round: the roles follow the measurement, not the case text
    swapped = runner.Result(cases=[case], backends=["torch", "paddle"], outcomes=[
        _native(case.id, "torch", shape=[2, 3], value=[0.5] * 6),
        _native(case.id, "paddle", error="ValueError: shapes"),
    ])
    advice = [r for r in report.diff_rows(swapped, "torch", "paddle") if r["dtype"] == "float32"][0]["advice"]
    assert advice.startswith("paddle refuses this (ValueError), torch returns shape [2, 3]")


def test_case_advice_texts_name_no_framework_behaviour_that_can_contradict_a_row():
    """Claims about which framework raises or broadcasts come from the measurement, not the TOML."""
    for case in casedata.load_cases():
        text = case.advice.lower()
        assert "silently broadcast" not in text or "bce_compat" in text.split("silently broadcast")[0], case.id


def test_diff_torch_paddle_measured(capsys):
    pytest.importorskip("torch")
    pytest.importorskip("paddle")
    assert cli.main(["diff", "torch", "paddle", "--cases", "ours-weight-enlarging-is-error"]) == 0
    out = capsys.readouterr().out
    torch_row = next(line for line in out.splitlines() if line.strip().startswith("torch "))
    advice = next(line for line in out.splitlines() if "advice:" in line)
    if "error" in torch_row:
        assert "torch refuses this" in advice
    assert "torch and others silently broadcast" not in out


# ---- noise


def _framework_noise(text: str) -> list[str]:
    """Lines that come from a framework's logger or Python's warnings, not from bce-compat."""
    import re

    noise = re.compile(r"^([IWEF]\d{4} |WARNING:|\[\s*(INFO|WARNING)\]|.*\[\s*(INFO|WARNING)\]\s)|Warning\b|absl::|"
                       r"cpu_feature_guard|oneDNN|warnings\.warn")
    return [line for line in text.splitlines() if noise.search(line)]


def test_noise_filter_recognises_framework_lines():
    sample = ("I0000 00:00:17.1 7781 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
              "W0000 00:00:17.3 7781 local_rendezvous.cc:412] Local rendezvous is aborting\n"
              "[2026-11-29 10:33:52,832] [    INFO] xla_bridge.py:849 - Unable to initialize backend 'tpu'\n"
              "/x/extension_utils.py:712: UserWarning: No ccache found.\n"
              "/x/reference.py:1: RuntimeWarning: invalid value encountered\n"
              "[10/72] ours-inf-pos-y1-is-zero\n"
              "conformance: 80 passed, 0 failed, 18 diverges (native), 10 skipped in 12.0s\n")
    assert len(_framework_noise(sample)) == 5


def test_conformance_output_has_no_framework_log_lines_or_warnings():
    """Every installed framework imported and run on cases that make TF and NumPy complain when unguarded."""
    done = _run_module("conformance", "--cases", "ours-nan-propagates,ours-weight-enlarging-is-error,ours-inf-pos-y1-is-zero")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "conformance:" in done.stdout
    assert _framework_noise(done.stdout + "\n" + done.stderr) == []
    progress = [line for line in done.stderr.splitlines() if line.strip()]
    assert all(line.startswith("[") for line in progress), progress  # stderr: the progress lines only


# ---- what a mistyped option or a pipe must still get right


def test_an_empty_backend_list_is_an_error_not_a_run_on_nothing(capsys):
    """``--backends ,`` (a stray comma, an empty variable) names no backend: exit 2, not a green run of nothing."""
    assert cli.main(["conformance", "--backends", ",", "--cases", "paddle-F-logits-example", "--quiet"]) == 2
    assert "unknown backend ','" in capsys.readouterr().err


def test_piped_table_keeps_each_case_on_one_line_whatever_the_terminal_width(capsys, monkeypatch):
    """Piped output (``| grep``) is not cut to the terminal: a long id and its cells stay on one line."""
    monkeypatch.setenv("COLUMNS", "40")
    code = cli.main(["conformance", "--backends", "numpy", "--cases", LONG_ID, "--no-native", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    (row,) = [line for line in out.splitlines() if line.startswith(LONG_ID)]
    assert row.split()[1:] == ["ok"]


def test_progress_off_a_terminal_ends_with_a_done_line():
    """Off a terminal the progress is a line every 10 cases and always a last ``[n/n] done``."""
    from bce_compat._cli_conformance import progress_printer

    stream = io.StringIO()
    progress = progress_printer(stream)
    for i in range(13):
        progress(i, 13, f"case-{i}")
    progress(13, 13, "")
    assert stream.getvalue().splitlines() == ["[0/13] case-0", "[10/13] case-10", "[13/13] done"]


def test_diff_of_a_framework_with_itself_is_an_error(capsys):
    assert cli.main(["diff", "torch", "torch"]) == 2
    assert "two different frameworks" in capsys.readouterr().err


def test_log_level_variables_the_user_set_are_kept(monkeypatch):
    """``TF_CPP_MIN_LOG_LEVEL=0 bce-compat conformance`` shows TF's logs again: the CLI keeps the user's value."""
    from bce_compat._cli_quiet import silence_framework_logs

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.setenv("GLOG_minloglevel", "1")
    silence_framework_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" and os.environ["GLOG_minloglevel"] == "1"


def test_junit_alone_is_written(tmp_path, capsys):
    """``--junit FILE`` without ``--json`` still writes the JUnit report."""
    junit_path = tmp_path / "r.xml"
    code = cli.main(["conformance", "--backends", "numpy", "--cases", "paddle-F-logits-example", "--no-native",
                     "--junit", str(junit_path), "--quiet"])
    assert code == 0, capsys.readouterr().out
    assert junit_path.exists() and "<testsuite" in junit_path.read_text()


def test_a_cell_shows_the_worst_of_its_checks():
    """A case passing in float64 but failing in float32 is a FAIL cell, not ok (FAIL > div > uns > ok > skip)."""
    result = _result(["a-case"], ["numpy"])
    result.outcomes += [
        runner.Outcome(case="a-case", backend="numpy", path="paddle-dialect", dtype="float64", status="fail"),
        runner.Outcome(case="a-case", backend="numpy", path="torch-dialect", dtype="float16", status="skipped"),
    ]
    assert report.table(result).splitlines()[2].split() == ["a-case", "FAIL"]


def test_a_known_backend_that_is_not_installed_is_named_as_skipped(capsys):
    """``--backends numpy,cupy`` without CuPy runs on NumPy and says that CuPy was skipped."""
    from importlib.util import find_spec

    if find_spec("cupy") is not None:
        pytest.skip("cupy is installed")
    code = cli.main(["conformance", "--backends", "numpy,cupy", "--cases", "paddle-F-logits-example", "--no-native",
                     "--quiet"])
    assert code == 0
    assert "not installed (skipped): cupy" in capsys.readouterr().err
