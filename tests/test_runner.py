"""The runner itself: a deliberately wrong implementation must fail the run, a right one must pass."""

from __future__ import annotations

import json
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import bce_compat
from bce_compat import cli
from bce_compat.conformance import casedata, reference, report, runner
from bce_compat.dialects import paddle as paddle_dialect

POS_WEIGHT_CASES = ["torch-module-pos-weight-3-triples-positives", "paddle-F-logits-pos-weight-per-class"]


def _drops_pos_weight(module):
    """A copy of a dialect module whose with-logits loss silently ignores pos_weight."""

    def bce_with_logits(input, target, weight=None, *args, pos_weight=None, **kwargs):
        return module.binary_cross_entropy_with_logits(input, target, weight, *args, **kwargs)

    class Loss(module.BCEWithLogitsLoss):
        def __init__(self, *args, pos_weight=None, **kwargs):
            super().__init__(*args, **kwargs)

    return types.SimpleNamespace(
        binary_cross_entropy_with_logits=bce_with_logits,
        binary_cross_entropy=module.binary_cross_entropy,
        BCEWithLogitsLoss=Loss,
        BCELoss=module.BCELoss,
    )


BROKEN = {"torch": _drops_pos_weight(bce_compat), "paddle": _drops_pos_weight(paddle_dialect)}


def test_wrong_backend_is_reported_as_failure():
    cases = casedata.load_cases(POS_WEIGHT_CASES)
    result = runner.run(cases, ["numpy"], native=False, shim_module_override=BROKEN)
    assert result.counts()["failed"] > 0
    assert result.exit_code == 1
    assert {o.case for o in result.failures} == set(POS_WEIGHT_CASES)
    assert all(o.path in ("torch-dialect", "paddle-dialect") for o in result.failures)


def test_right_backend_passes_same_cases():
    result = runner.run(casedata.load_cases(POS_WEIGHT_CASES), ["numpy"], native=False)
    assert result.counts()["failed"] == 0 and result.exit_code == 0


def test_cli_exits_nonzero_for_wrong_backend(capsys):
    from bce_compat import _cli_conformance

    args = cli.build_parser().parse_args(["conformance", "--backends", "numpy", "--cases", ",".join(POS_WEIGHT_CASES),
                                          "--no-native", "--quiet"])
    assert _cli_conformance.run(args, shim_module_override=BROKEN) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and " 0 failed" not in out


def test_cli_main_passes_and_writes_reports(tmp_path, capsys):
    json_path, junit_path = tmp_path / "r.json", tmp_path / "r.xml"
    code = cli.main(["conformance", "--backends", "numpy", "--cases", "paddle-F-logits-example,ours-inf",
                     "--json", str(json_path), "--junit", str(junit_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "conformance: " in out and " 0 failed" in out
    data = json.loads(json_path.read_text())
    assert data["summary"]["failed"] == 0 and data["summary"]["passed"] > 0
    assert {"outcomes", "agreement", "divergences", "cases"} <= set(data)
    suite = ET.parse(junit_path).getroot()
    assert suite.tag == "testsuite" and int(suite.get("tests")) > 0 and suite.get("failures") == "0"


def test_table_fits_100_columns():
    result = runner.run(casedata.load_cases(["paddle-F-logits-example"]), ["numpy"], native=False)
    result.backends = ["numpy", "torch", "paddle", "tensorflow", "jax", "dask", "array_api_strict"]
    assert max(len(line) for line in report.table(result).splitlines()) <= 100


def test_reference_matches_documented_values():
    torch_doc = reference.exact_logits(np.full([10, 64], 1.5), np.ones([10, 64]), None, np.ones(64), "mean")
    assert float(torch_doc.value) == pytest.approx(-np.log(1 / (1 + np.exp(-1.5))), rel=1e-15)
    paddle_doc = reference.exact_logits(np.array([5.0, 1.0, 3.0]), np.array([1.0, 0.0, 1.0]), None, None, "mean")
    assert float(paddle_doc.value) == pytest.approx(0.45618808, abs=1e-7)


def test_reference_zero_coefficient_and_clamp():
    r = reference.exact_logits(np.array([np.inf, np.inf]), np.array([1.0, 0.0]), None, None, "none")
    assert r.value.tolist() == [0.0, np.inf]
    q = reference.exact(False, np.array([0.0, 1.0]), np.array([1.0, 0.0]), None, None, "none")
    assert q.value.tolist() == [100.0, 100.0]


def test_compare_rejects_one_ulp_too_many():
    eps = 2.0**-23
    ok, _ = runner.compare(np.float64(1 + 3 * eps), np.float64(1.0), np.float64(1.0), "float32", 1)
    bad, _ = runner.compare(np.float64(1 + 5 * eps), np.float64(1.0), np.float64(1.0), "float32", 1)
    assert ok <= 1 < bad


def test_diff_lists_known_torch_paddle_difference():
    pytest.importorskip("torch")
    pytest.importorskip("paddle")
    cases = casedata.load_cases(["ours-label-minus-100-not-ignored", "torch-module-pos-weight-example"])
    result = runner.run(cases, ["torch", "paddle"], native=True, shim=False)
    rows = report.diff_rows(result, "torch", "paddle")
    assert {r["case"] for r in rows} == {"ours-label-minus-100-not-ignored"}
    assert all(r["advice"] for r in rows)
