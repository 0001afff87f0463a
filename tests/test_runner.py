"""The runner itself: a deliberately wrong implementation must fail the run, a right one must pass."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import bce_compat
from bce_compat import cli
from bce_compat.conformance import calls, casedata, natives, reference, report, runner
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


# --- case files are checked against a schema ----------------------------------------------------

_CASE = '''source = "SPEC.md"
function = "binary_cross_entropy_with_logits"
[[case]]
id = "demo"
quote = "q"
inputs = {input = [0.0], target = [1.0]}
'''


def test_case_schema_accepts_a_valid_case():
    (case,) = casedata.parse_file("demo.toml", _CASE + "expect = {value = 0.6931471805599453, value_rtol = 1e-7}\n")
    assert case.id == "demo" and case.expect["value_rtol"] == 1e-7


@pytest.mark.parametrize("extra, message", [
    ("expect = {vaule = 1.0}\n", "demo.toml: case 'demo': unknown key 'vaule' in expect"),
    ("expect = {grad = 1}\n", "demo.toml: case 'demo': expect key 'grad' must be bool"),
    ("expect = {value = true}\n", "demo.toml: case 'demo': expect key 'value' must be int or float"),
    ("kwarg = {reduction = 'sum'}\n", "demo.toml: case 'demo': unknown key 'kwarg' in the case"),
    ("dtypes = 'float32'\n", "demo.toml: case 'demo': the case key 'dtypes' must be list"),
])
def test_case_schema_rejects_unknown_or_mistyped_keys(extra, message):
    with pytest.raises(ValueError, match=message):
        casedata.parse_file("demo.toml", _CASE + extra)


def test_case_schema_checks_inputs_and_required_keys():
    with pytest.raises(ValueError, match=r"demo.toml: case 'demo': unknown key 'fil' in input 'weight'"):
        casedata.parse_file("demo.toml", _CASE.replace("target = [1.0]}", "target = [1.0], weight = {fil = 1.0, shape = [1]}}"))
    with pytest.raises(ValueError, match=r"demo.toml: case 'demo': missing 'quote'"):
        casedata.parse_file("demo.toml", _CASE.replace('quote = "q"\n', ""))
    with pytest.raises(ValueError, match=r"demo.toml: file: unknown key 'sorce'"):
        casedata.parse_file("demo.toml", "sorce = 'x'\n")


# --- native contenders: a missing package or framework is a skip, never a crash ------------------


def test_missing_optax_is_a_skip_with_an_install_hint(monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.setitem(sys.modules, "optax", None)  # "import optax" now raises ImportError
    result = runner.run(casedata.load_cases(["paddle-F-logits-example"]), ["jax"], native=True, shim=False)
    native = [o for o in result.outcomes if o.path == "native"]
    assert native and all(o.status == "skipped" for o in native)
    assert all("optax is not installed" in o.detail and "pip install" in o.detail for o in native)
    assert result.exit_code == 0


def test_a_backend_without_native_op_has_no_native_cells():
    assert not natives.has_native("numpy") and not natives.has_native("some_plugin")
    with pytest.raises(natives.Unsupported, match="some_plugin has no native BCE op"):
        natives.native_op("some_plugin", {}, casedata.load_cases(["paddle-F-logits-example"])[0])
    result = runner.run(casedata.load_cases(["paddle-F-logits-example"]), ["numpy"], native=True)
    assert result.outcomes and all(o.path != "native" for o in result.outcomes)


def test_report_accepts_a_backend_it_has_no_short_name_for():
    result = runner.run(casedata.load_cases(["paddle-F-logits-example"]), ["numpy"], native=False)
    result.backends = ["numpy", "some_plugin_backend"]
    table = report.table(result)
    assert "some_p" in table.splitlines()[1]


# --- the keras, tf and optax dialects and the focal loss -----------------------------------------


class _Recorder:
    """A dialect module that records each call's arguments (to check the argument order)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return np.zeros(())

        return record


def test_mappers_put_arguments_in_each_dialects_order():
    x, y = np.array([0.5]), np.array([1.0])
    case = casedata.load_cases(["tf-sigmoid-xent-example"])[0]
    tf_mod, optax_mod = _Recorder(), _Recorder()
    calls.tf_call(case, tf_mod, "tf.nn")[1](x, y)
    calls.optax_call(case, optax_mod, "optax")[1](x, y)
    assert tf_mod.calls == [("sigmoid_cross_entropy_with_logits", (), {"labels": y, "logits": x})]
    assert optax_mod.calls[0][:2] == ("sigmoid_binary_cross_entropy", (x, y))
    focal = casedata.load_cases(["torchvision-focal-alpha-ignore"])[0]
    calls.optax_call(focal, optax_mod, "optax")[1](x, y)
    assert optax_mod.calls[1] == ("sigmoid_focal_loss", (x, y), {"alpha": None, "gamma": 2.0})  # alpha -1 is None


@pytest.mark.parametrize("case_id, dialect, reason", [
    ("keras-BinaryCrossentropy-sum", "torch", "no per-sample mean over an axis"),
    ("tf-weighted-xent-formula", "keras", "has no pos_weight"),
    ("keras-BinaryCrossentropy-logits-example-1", "tf", "element-wise: no weight or reduction"),
    ("torchvision-focal-defaults", "paddle", "no sigmoid_focal_loss"),
    ("keras-BinaryCrossentropy-sample-weight", "optax", "element-wise"),
])
def test_a_dialect_that_cannot_express_a_case_is_a_skip_with_the_reason(case_id, dialect, reason):
    result = runner.run(casedata.load_cases([case_id]), ["numpy"], native=False)
    cells = [o for o in result.outcomes if o.path == f"{dialect}-dialect" and o.case == case_id]
    assert cells and all(o.status == "skipped" and reason in o.detail for o in cells)
    assert result.exit_code == 0


def _keras_ignoring_sample_weight():
    from bce_compat.dialects import keras

    class Loss(keras.BinaryCrossentropy):
        def __call__(self, y_true, y_pred, sample_weight=None):
            return super().__call__(y_true, y_pred)

    return types.SimpleNamespace(binary_crossentropy=keras.binary_crossentropy, BinaryCrossentropy=Loss)


def _focal_without_alpha():
    def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="none"):
        return bce_compat.sigmoid_focal_loss(input, target, alpha=-1.0, gamma=gamma, reduction=reduction)

    return types.SimpleNamespace(sigmoid_focal_loss=sigmoid_focal_loss)


def test_wrong_keras_or_focal_implementation_fails():
    keras_cases = ["keras-BinaryCrossentropy-sample-weight", "keras-BinaryCrossentropy-sample-weight-none"]
    result = runner.run(casedata.load_cases(keras_cases), ["numpy"], native=False,
                        shim_module_override={"keras": _keras_ignoring_sample_weight()})
    assert {(o.case, o.path) for o in result.failures} == {(c, "keras-dialect") for c in keras_cases}
    focal = runner.run(casedata.load_cases(["torchvision-focal-defaults"]), ["numpy"], native=False,
                       shim_module_override={"torch": _focal_without_alpha()})
    assert {o.path for o in focal.failures} == {"torch-dialect"} and focal.exit_code == 1


def test_documented_values_are_checked_elementwise():
    (case,) = casedata.load_cases(["keras-binary_crossentropy-example"])
    wrong = dataclasses.replace(case, expect={**case.expect, "values": [0.916, 0.800]})
    result = runner.run([wrong], ["numpy"], native=False)
    assert result.failures and all(o.detail.startswith("documented [0.916 0.8") for o in result.failures)


def test_missing_torchvision_is_a_skip_with_an_install_hint(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "torchvision", None)
    result = runner.run(casedata.load_cases(["torchvision-focal-defaults"]), ["torch"], native=True, shim=False)
    native = [o for o in result.outcomes if o.path == "native" and o.backend == "torch"]
    assert native and all(o.status == "skipped" and "pip install torchvision" in o.detail for o in native)


def test_keras_native_is_its_own_column_and_diverges_at_the_clip():
    pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    result = runner.run(casedata.load_cases(["keras-binary_crossentropy-probability-clip"]), ["tensorflow"])
    keras_cells = [o for o in result.outcomes if o.backend == "keras"]
    assert keras_cells and all(o.status == "diverges" and "documented [100.]" in o.detail for o in keras_cells)
    assert all(16.0 < o.value[0] < 16.2 for o in keras_cells)  # -log(1e-7), not 100
    assert result.exit_code == 0  # a native divergence is reported, never fatal
    assert "keras" in report.table(result).splitlines()[1]


def test_reference_options():
    focal = reference.exact(True, np.array([0.0]), np.array([1.0]), None, None, "none", options={"focal": (0.25, 2.0)})
    assert float(focal.value[0]) == pytest.approx(0.25 * np.log(2) * 0.25, rel=1e-15)
    smooth = reference.exact(True, np.array([0.0, 50.0]), np.array([1.0, 1.0]), None, None, "none",
                             options={"label_smoothing": 1.0})
    assert smooth.value[0] == pytest.approx(np.log(2), rel=1e-15) and smooth.value[1] == pytest.approx(25.0, rel=1e-15)
    axis = reference.exact(False, np.array([[0.5, 0.25], [0.5, 0.5]]), np.array([[1.0, 0.0], [1.0, 1.0]]), None, None,
                           "sum", options={"mean_axis": -1})
    assert float(axis.value) == pytest.approx(np.log(2) + (np.log(2) - np.log(0.75)) / 2, rel=1e-15)
    assert axis.grads["input"][0][0, 1] == pytest.approx(1 / 0.75 / 2, rel=1e-15)
    empty = reference.exact(True, np.array([0.0]), np.array([-100.0]), None, None, "mean", options={"ignore_index": -100})
    assert np.isnan(empty.value) and empty.grads["input"][0].tolist() == [0.0]


def test_case_schema_checks_dialects():
    with pytest.raises(ValueError, match="demo.toml: case 'demo': unknown dialect 'jax'"):
        casedata.parse_file("demo.toml", _CASE + 'dialects = ["torch", "jax"]\n')
    (case,) = casedata.parse_file("demo.toml", 'dialects = ["tf", "keras"]\n' + _CASE)
    assert case.dialects == ("tf", "keras")


# --- the summary's largest disagreement, and the tolerances the runner rejects just past (issue 23) ---


def test_largest_disagreement_names_what_was_compared_when_backends_agree_exactly():
    """Issue 23 item 4: identical results on every backend printed an empty detail ``(...; )``."""
    pytest.importorskip("torch")
    result = runner.run(casedata.load_cases(["ours-inf-pos-y1-is-zero"]), ["numpy", "torch"], native=False)
    worst = result.largest_disagreement()
    assert worst is not None and worst.worst == 0.0
    assert worst.where.startswith("value: numpy vs torch"), worst.where
    text = report.agreement_text(result)
    assert not text.endswith("; )") and "numpy vs torch" in text, text


def _cell(value):
    """A passing shim cell holding ``value`` (no gradients), as ``_agreement`` receives it."""
    outcome = runner.Outcome(case="c", backend="b", path="torch-dialect", dtype="float32", status="pass")
    return outcome, (np.asarray(value, np.float64), {})


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_agreement_rejects_a_cross_backend_difference_just_past_its_tolerance(dtype):
    """Two backends may each be off by one tolerance, in opposite directions: 2x apart, not more."""
    (case,) = [c for c in casedata.load_cases(["paddle-F-logits-example"]) if c.id == "paddle-F-logits-example"]
    exact = runner.exact_for(case, dtype)
    tol = float(runner.tolerance(dtype, exact.value, exact.scale, exact.n_summed))
    base = float(exact.value)

    def agreement(gap):
        cells = [("numpy", *_cell(base)), ("torch", *_cell(base + gap * tol))]
        return runner._agreement(case, "torch-dialect", dtype, cells)

    inside, past = agreement(1.9), agreement(2.1)
    assert inside.ok and 0.9 < inside.worst <= 1
    assert not past.ok and 1 < past.worst < 1.1
    assert "numpy vs torch" in past.where


@pytest.mark.parametrize("dtype, eps", [("float16", 2.0**-10), ("bfloat16", 2.0**-7)])
def test_half_precision_value_one_ulp_off_passes_two_ulp_off_fails(dtype, eps):
    """docs/contract.md §4: float16/bfloat16 within 1 ulp of the output dtype (here at 1.0, ulp = eps)."""
    one, scale = np.float64(1.0), np.float64(1.0)
    one_ulp, _ = runner.compare(one + eps, one, scale, dtype, 1)
    two_ulp, _ = runner.compare(one + 2 * eps, one, scale, dtype, 1)
    assert one_ulp <= 1 < two_ulp
    tol = float(runner.tolerance(dtype, one, scale, 1))
    just_past, _ = runner.compare(one + 1.05 * tol, one, scale, dtype, 1)
    assert 1 < just_past < 1.1


# --- checks a real bug could switch off: dtype, deprecation warning, infinities, NaN, agreement counts ---


def _only(case_id):
    (case,) = [c for c in casedata.load_cases([case_id]) if c.id == case_id]
    return case


def _torch_dialect_with(fn_wrapper):
    """bce_compat's torch dialect with its two functions wrapped by ``fn_wrapper``."""
    return types.SimpleNamespace(
        binary_cross_entropy_with_logits=fn_wrapper(bce_compat.binary_cross_entropy_with_logits),
        binary_cross_entropy=fn_wrapper(bce_compat.binary_cross_entropy),
        BCEWithLogitsLoss=bce_compat.BCEWithLogitsLoss,
        BCELoss=bce_compat.BCELoss,
    )


def test_a_deprecated_argument_without_its_warning_fails():
    """torch warns for size_average/reduce; a shim that stays silent fails the case that expects the warning."""
    import warnings

    def silent(fn):
        def call(*args, **kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args, **kwargs)

        return call

    case = _only("torch-F-logits-size-average-true-means")
    assert case.expect.get("warns")
    assert runner.run([case], ["numpy"], native=False).exit_code == 0
    result = runner.run([case], ["numpy"], native=False, shim_module_override={"torch": _torch_dialect_with(silent)})
    assert result.failures and all("no warning for a deprecated argument" in o.detail for o in result.failures)


def test_an_infinity_of_the_wrong_sign_is_an_infinite_error():
    """A loss of -inf where the exact value is +inf is as wrong as it gets, not a match of two infinities."""
    inf = np.array([np.inf])
    wrong, _ = runner.compare(-inf, inf, inf, "float32", 1)
    right, _ = runner.compare(inf, inf, inf, "float32", 1)
    assert wrong == np.inf and right == 0.0


def test_agreement_fails_where_one_backend_gives_nan_and_another_a_number():
    """NaN on one backend beside a finite loss on another is a disagreement (NaN compares with nothing)."""
    case = _only("paddle-F-logits-example")
    exact = runner.exact_for(case, "float32")
    cells = [("numpy", *_cell(float(exact.value))), ("torch", *_cell(np.nan))]
    agreement = runner._agreement(case, "torch-dialect", "float32", cells)
    assert not agreement.ok and agreement.worst == np.inf
    nan_cells = [("numpy", *_cell(np.nan)), ("torch", *_cell(np.nan))]
    both_nan = runner._agreement(case, "torch-dialect", "float32", nan_cells)
    assert both_nan.ok


def test_a_disagreement_alone_fails_the_run_names_the_case_and_is_a_junit_failure(tmp_path):
    """Every cell passing but the backends disagreeing: counted as failed, exit 1, the case named, JUnit <failure>."""
    case = _only("paddle-F-logits-example")
    outcome = runner.Outcome(case=case.id, backend="numpy", path="torch-dialect", dtype="float32", status="pass")
    agreement = runner.Agreement(case.id, "torch-dialect", "float32", ["numpy", "torch"], 3.0, "value: differs", False)
    result = runner.Result(cases=[case], backends=["numpy", "torch"], outcomes=[outcome], agreements=[agreement])
    assert result.counts()["failed"] == 1 and result.exit_code == 1
    assert result.failing_cases() == [case.id]
    assert f"FAIL {case.id} [torch-dialect float32] backends disagree (3x tolerance): value: differs" in (
        report.failures_text(result))
    report.write_junit(result, str(tmp_path / "r.xml"))
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.get("failures") == "1"
    failing = [tc.get("name") for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert failing == ["agreement-torch-dialect-float32"]


def test_junit_reports_a_failing_cell_as_a_failure(tmp_path):
    """A FAIL cell must be a <failure> in the JUnit file, or CI shows a failing run as green."""
    result = runner.run(casedata.load_cases(POS_WEIGHT_CASES), ["numpy"], native=False, shim_module_override=BROKEN)
    report.write_junit(result, str(tmp_path / "r.xml"))
    suite = ET.parse(tmp_path / "r.xml").getroot()
    failures = [tc for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert len(failures) == len(result.failures) > 0
    assert int(suite.get("failures")) == result.counts()["failed"]
    assert {tc.get("classname") for tc in failures} == set(POS_WEIGHT_CASES)


def test_case_filters_select_by_kind():
    """``--cases documented`` (the help's own example) selects the cases from the documents, by their kind."""
    everything = casedata.load_cases()
    documented, ours = casedata.load_cases(["documented"]), casedata.load_cases(["ours"])
    assert documented and {c.kind for c in documented} == {"documented"}
    assert {c.kind for c in ours} == {"ours"} and len(documented) + len(ours) == len(everything)


def test_a_loss_that_cuts_its_inputs_gradient_fails():
    """A right value from a loss that detaches its input has no gradient for it: a FAIL that says so."""
    pytest.importorskip("torch")

    def detached(fn):
        return lambda input, target, *args, **kwargs: fn(input.detach(), target, *args, **kwargs)

    case = _only("torch-F-logits-reduction-none")
    assert case.expect.get("grad")
    result = runner.run([case], ["torch"], native=False, shim_module_override={"torch": _torch_dialect_with(detached)})
    failed = [o for o in result.failures if o.path == "torch-dialect"]
    assert failed and all("no gradient for input" in o.detail for o in failed), [o.detail for o in result.outcomes]
