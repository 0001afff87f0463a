"""Conformance for anyone's implementation (issue 24): ``--impl MODULE:CALLABLE`` and the pytest plugin.

Both directions, from a directory outside the repository holding a third-party module (written by
the test, as ``tests/plugin`` is built): bce_compat's own function passes every case that applies;
the naive ``-(y log sigma(x) + (1 - y) log(1 - sigma(x)))`` and torch's own op fail exactly the cases
predicted from the cases' own data: for the naive formula by evaluating it at each case's inputs
against the exact reference, for torch's op by the native divergences the suite measures, and for
both, the saturated and cancelling edge elements the README's divergence list names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from bce_compat.conformance import casedata, implementation, runner

NAIVE = textwrap.dedent('''
    """A naive BCE with logits, as people write it: the textbook formula in NumPy, no pos_weight."""
    import numpy as np


    def bce(input, target, weight=None, reduction="mean"):
        s = 1 / (1 + np.exp(-input))
        loss = -(target * np.log(s) + (1 - target) * np.log(1 - s))
        if weight is not None:
            loss = loss * weight
        if reduction == "none":
            return loss
        if reduction == "sum":
            return np.sum(loss)
        if reduction == "mean":
            return np.mean(loss)
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
''')
OURS = "bce_compat:binary_cross_entropy_with_logits"
_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}


@pytest.fixture(scope="module")
def third_party(tmp_path_factory) -> Path:
    """A user's directory outside the repository: the naive module, and no test file."""
    folder = tmp_path_factory.mktemp("implementer")
    assert Path(__file__).resolve().parents[1] not in folder.resolve().parents
    (folder / "naive_bce.py").write_text(NAIVE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def naive(third_party):
    sys.path.insert(0, str(third_party))
    try:
        yield implementation.load("naive_bce:bce", "torch")
    finally:
        sys.path.remove(str(third_party))
        sys.modules.pop("naive_bce", None)


def _statuses(result) -> dict[tuple[str, str], str]:
    """(case, dtype) -> status, for a run on one backend (skipped cells left out)."""
    return {(o.case, o.dtype): o.status for o in result.outcomes if o.status != "skipped"}


# ---- predictions from the cases' data


def _numpy_args(case, dtype: str) -> dict:
    """The case's arguments as NumPy arrays of ``dtype`` (labels keep their own dtype; numbers stay numbers)."""
    args = {}
    for name, (values, dt) in case.numpy_inputs(dtype).items():
        args[name] = dt if isinstance(values, str) else np.asarray(values).astype(dt)
    return args


def _naive_prediction(fn, case, dtype: str) -> str:
    """pass / fail / unsupported for the naive formula: called directly, judged by the exact reference."""
    args = _numpy_args(case, dtype)
    x, y = args.pop("input"), args.pop("target")
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy's "mean of empty slice"
            got = fn(x, y, **args, **case.kwargs)
    except TypeError:  # a keyword it does not have (pos_weight, size_average, label_smoothing)
        return "pass" if case.error else "unsupported"
    except Exception:
        return "pass" if case.error else "fail"
    if case.error or case.expect.get("warns") or np.asarray(got).dtype.name != dtype:
        return "fail"
    exact = runner.exact_for(case, dtype)
    ratio, _ = runner.compare(got, exact.value, exact.scale, dtype, exact.n_summed if case.reduction != "none" else 1)
    return "fail" if ratio > 1 else "pass"


def _elements(case, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    inputs = case.numpy_inputs(dtype)
    x, y = np.asarray(inputs["input"][0], np.float64), np.asarray(inputs["target"][0], np.float64)
    if x.shape != y.shape:  # a case about mismatched shapes: no element pairs
        return np.empty(0), np.empty(0)
    return x, y


def _saturated(case, dtype: str, torch_op: bool = False) -> bool:
    """An infinite logit where the loss has a term 0 * inf (x = +inf, y = 1; x = -inf, y = 0): NaN in naive
    forms; torch's op is NaN at every x = -inf (README, "Where the native frameworks differ")."""
    x, y = _elements(case, dtype)
    bad = ((x == np.inf) & (y == 1)) | ((x == -np.inf) & ((y == 0) | torch_op))
    return bool(bad.any())


def _tail(case, dtype: str, threshold: float, y_values=(0.0, 1.0)) -> bool:
    """A logit beyond ``threshold`` on the side where the loss is its tail e^-|x| and that tail is not 0 in
    ``dtype``: naive forms round it to 0 (cancellation; for y = 0 in torch's op too)."""
    x, y = _elements(case, dtype)
    with np.errstate(over="ignore", under="ignore"):
        representable = np.exp(-np.abs(x)).astype(dtype) > 0
    tail = ((y == 0) & (x <= -threshold) & (0.0 in y_values)) | ((y == 1) & (x >= threshold) & (1.0 in y_values))
    return bool((tail & representable).any())


# ---- in-process runs


@pytest.mark.parametrize("spec, dialect, function", [
    (OURS, "torch", None),
    ("bce_compat:binary_cross_entropy", "torch", "binary_cross_entropy"),
    ("bce_compat:sigmoid_focal_loss", "torch", "sigmoid_focal_loss"),
    ("bce_compat.dialects.paddle:binary_cross_entropy_with_logits", "paddle", None),
    ("bce_compat.dialects.keras:binary_crossentropy", "keras", None),
    ("bce_compat.dialects.keras:BinaryCrossentropy", "keras", "BinaryCrossentropy"),
    ("bce_compat.dialects.tf:sigmoid_cross_entropy_with_logits", "tf", None),
    ("bce_compat.dialects.tf:weighted_cross_entropy_with_logits", "tf", "weighted_cross_entropy_with_logits"),
    ("bce_compat.dialects.optax:sigmoid_binary_cross_entropy", "optax", None),
])
def test_bce_compat_itself_passes_every_case_that_applies(spec, dialect, function):
    impl = implementation.load(spec, dialect, function)
    result = runner.run(None, ["numpy"], impl=impl)
    counts = result.counts()
    assert result.cases, result.not_applicable
    assert counts["failed"] == 0 and counts["unsupported"] == 0, [o.detail for o in result.outcomes if o.status != "pass"]
    assert counts["passed"] > 0 and result.exit_code == 0


def test_bce_compat_passes_with_gradients_on_an_autograd_backend():
    pytest.importorskip("torch")
    result = runner.run(None, ["torch"], impl=implementation.load(OURS, "torch"))
    assert result.exit_code == 0, [f"{o.case} {o.dtype}: {o.detail}" for o in result.failures]
    assert result.counts()["unsupported"] == 0


def test_naive_formula_fails_exactly_the_cases_its_numbers_predict(naive):
    result = runner.run(None, ["numpy"], impl=naive)
    got = _statuses(result)
    predicted = {(o.case, o.dtype): _naive_prediction(naive.fn, case, o.dtype)
                 for case in result.cases for o in result.outcomes if o.case == case.id and o.status != "skipped"}
    assert got == predicted, {k: (got[k], predicted[k]) for k in got if got[k] != predicted[k]}
    failing = {case for (case, _), status in got.items() if status == "fail"}
    assert failing == set(result.failing_cases()) and result.exit_code == 1
    # the edges: saturated logits and the cancelling tails (|x| >= 40 saturates float32 and float64 alike)
    edges = {c.id for c in result.cases for d in c.dtypes if got.get((c.id, d)) != "unsupported"
             and (_saturated(c, d) or _tail(c, d, 40.0))}
    assert edges and edges <= failing, edges - failing
    assert "ours-inf-pos-y1-is-zero" in edges and "ours-cancellation-y0-negative-x" in edges


def test_torch_op_in_float32_fails_exactly_its_measured_divergences():
    """The divergence table (the suite's native torch column) predicts the --impl run of the same op."""
    pytest.importorskip("torch")
    impl = implementation.load("torch.nn.functional:binary_cross_entropy_with_logits", "torch")
    result = runner.run(None, ["torch"], impl=impl, dtypes=["float32"])
    native = runner.run(result.cases, ["torch"], native=True, shim=False, dtypes=["float32"])
    measured = {o.case: o for o in native.outcomes if o.backend == "torch" and o.path == "native"}
    refused = {c for c, o in measured.items() if o.status == "diverges" and (o.error or "").startswith("TypeError")}
    predicted = {c for c, o in measured.items() if o.status == "diverges"} - refused
    failing = {o.case for o in result.failures}
    assert failing == predicted, (failing - predicted, predicted - failing)
    assert refused <= {o.case for o in result.unsupported}
    # torch's op computes (1 - y) x - log sigmoid(x): it keeps the y = 1 tail and cancels the y = 0 one
    edges = {c.id for c in result.cases if c.id not in refused and "float32" in c.dtypes
             and (_saturated(c, "float32", torch_op=True) or _tail(c, "float32", 20.0, y_values=(0.0,)))}
    assert edges <= failing, edges - failing
    assert {"ours-inf-pos-y1-is-zero", "ours-inf-neg-y1-is-inf", "ours-cancellation-y0-negative-x"} <= edges


def test_an_option_the_implementation_lacks_is_unsupported_with_its_type_error(naive):
    cases = casedata.load_cases(["torch-module-pos-weight-example", "torch-F-logits-size-average-false-sums",
                                 "paddle-F-logits-example"])
    result = runner.run(cases, ["numpy"], impl=naive)
    by_case = {o.case: o for o in result.outcomes if o.dtype == "float32"}
    assert by_case["torch-module-pos-weight-example"].status == "unsupported"
    assert "unexpected keyword argument 'pos_weight'" in by_case["torch-module-pos-weight-example"].detail
    assert by_case["torch-F-logits-size-average-false-sums"].status == "unsupported"
    assert by_case["paddle-F-logits-example"].status == "pass"
    assert result.exit_code == 0  # unsupported is not a failure; something passed


def test_an_implementation_that_refuses_every_array_does_not_pass():
    impl = implementation.Implementation("x:refuse", "torch", "binary_cross_entropy_with_logits", _refuse)
    result = runner.run(casedata.load_cases(["paddle-F-logits-example"]), ["numpy"], impl=impl)
    assert result.counts()["passed"] == 0 and result.counts()["unsupported"] > 0
    assert result.exit_code == 1  # nothing passed is not "everything passes"


def _refuse(input, target, **kwargs):
    raise TypeError(f"expected a mylib array, got {type(input).__name__}")


def test_cases_of_another_function_or_dialect_do_not_apply():
    impl = implementation.load(OURS, "paddle")
    assert impl.applies(casedata.load_cases(["ours-elementwise-mean-alias"])[0]).startswith("not a paddle-dialect case")
    probs = [c for c in casedata.load_cases(["ours-probs-q-at-0-and-1"]) if c.id == "ours-probs-q-at-0-and-1"][0]
    assert "calls paddle's binary_cross_entropy, not binary_cross_entropy_with_logits" in impl.applies(probs)


@pytest.mark.parametrize("spec, dialect, function, message", [
    ("naive_bce", "torch", None, "--impl must be MODULE:CALLABLE"),
    ("no_such_module_xyz:bce", "torch", None, "cannot import 'no_such_module_xyz'"),
    ("bce_compat:no_such_fn", "torch", None, "bce_compat has no attribute 'no_such_fn'"),
    ("bce_compat:__version__", "torch", None, "is a str, not a callable"),
    (OURS, "jax", None, "--dialect must be one of torch, paddle, keras, tf, optax"),
    (OURS, "tf", "binary_cross_entropy", "--function for the tf dialect must be one of"),
])
def test_load_errors_say_what_is_wrong(spec, dialect, function, message):
    with pytest.raises(implementation.ImplementationError, match=re.escape(message)):
        implementation.load(spec, dialect, function)


# ---- the commands, as a user runs them from their own directory


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **_QUIET}
    env.pop("PYTHONPATH", None)
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def _bce_compat_command() -> list[str]:
    script = Path(sys.executable).with_name("bce-compat")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bce_compat"]


def test_cli_passes_bce_compat_and_fails_the_naive_module_naming_its_cases(third_party, naive):
    good = _run([*_bce_compat_command(), "conformance", "--impl", OURS, "--dialect", "torch", "--backends", "numpy",
                 "--quiet"], third_party)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    assert " 0 failed, 0 unsupported" in good.stdout and "failing cases" not in good.stdout
    bad = _run([*_bce_compat_command(), "conformance", "--impl", "naive_bce:bce", "--dialect", "torch",
                "--backends", "numpy", "--quiet"], third_party)
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
    named = re.search(r"^failing cases \(\d+\): (.*)$", bad.stdout, re.M)
    assert named, bad.stdout[-2000:]
    result = runner.run(None, ["numpy"], impl=naive, native=False)
    predicted = {c.id for c in result.cases for d in c.dtypes
                 if d != "bfloat16" and _naive_prediction(naive.fn, c, d) == "fail"}
    assert set(named.group(1).split(", ")) == predicted


def test_cli_fails_when_no_chosen_case_applies_and_says_why(third_party):
    """Nothing run is not a pass: a torch-dialect case chosen for a Paddle-dialect implementation."""
    run = _run([*_bce_compat_command(), "conformance", "--impl", OURS, "--dialect", "paddle",
                "--cases", "ours-elementwise-mean-alias", "--backends", "numpy", "--quiet"], third_party)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "no case applies to" in run.stderr and "not a paddle-dialect case" in run.stderr


def test_pytest_plugin_collects_one_test_per_case_and_dtype_in_a_folder_without_tests(third_party, naive):
    common = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--bce-dialect", "torch",
              "--bce-backends", "numpy"]
    good = _run([*common, "--bce-impl", OURS], third_party)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    applicable, _ = implementation.load(OURS, "torch").applicable(casedata.load_cases())
    numpy_dtypes = [d for c in applicable for d in c.dtypes if d != "bfloat16"]  # the NumPy bench has no bfloat16
    assert re.search(rf"\b{len(numpy_dtypes)} passed\b", good.stdout), good.stdout[-500:]
    bad = _run([*common, "--bce-impl", "naive_bce:bce", "-rfs"], third_party)
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
    failed = set(re.findall(r"^FAILED bce_compat::(\S+)\[(\w+)\]", bad.stdout, re.M))
    cases = {c.id: c for c in naive.applicable(casedata.load_cases())[0]}
    predicted = {(c.id, d) for c in cases.values() for d in c.dtypes
                 if d != "bfloat16" and _naive_prediction(naive.fn, c, d) == "fail"}
    assert failed == predicted, (failed - predicted, predicted - failed)
    assert "unsupported: TypeError: bce() got an unexpected keyword argument 'pos_weight'" in bad.stdout
    picked = _run([*common, "--bce-impl", OURS, "-k", "ours-inf and float64"], third_party)
    wanted = [c.id for c in applicable if c.id.startswith("ours-inf") and "float64" in c.dtypes]
    collected = sum(len(c.dtypes) for c in applicable)  # bfloat16's are collected too (and skipped on NumPy)
    assert re.search(rf"\b{len(wanted)} passed, {collected - len(wanted)} deselected\b", picked.stdout), \
        picked.stdout[-500:]


def test_pytest_plugin_is_inactive_without_its_option(tmp_path):
    """It adds no test, imports nothing beyond itself, and -p no:bce_compat changes nothing."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent('''
        import sys

        def test_users_own():
            heavy = [m for m in sys.modules if m.startswith("bce_compat.conformance.") or m == "numpy"]
            assert set(heavy) <= {"bce_compat.conformance.pytest_plugin"}, heavy
    '''), encoding="utf-8")
    runs = [_run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra], tmp_path)
            for extra in ([], ["-p", "no:bce_compat"])]
    for done in runs:
        assert done.returncode == 0, done.stdout[-2000:]
        assert "collected 1 item" in done.stdout and "1 passed" in done.stdout
        assert "bce_compat conformance" not in done.stdout
    plugins = [line for run in runs for line in run.stdout.splitlines() if line.startswith("plugins:")]
    assert "bce_compat" in plugins[0] and "bce_compat" not in plugins[1]  # loaded, and then really left out


def test_pytest_plugin_options_need_each_other(tmp_path):
    done = _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--bce-impl", OURS], tmp_path)
    assert done.returncode == 4 and "--bce-impl needs --bce-dialect" in done.stderr


def test_our_own_test_run_has_the_plugin_loaded_but_not_active(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("bce_compat")  # installed with the package
    assert pytestconfig.getoption("bce_impl") is None
    assert not pytestconfig.pluginmanager.has_plugin("bce_compat-conformance")


NUMPY_ONLY = textwrap.dedent('''
    """Two BCEs right on NumPy arrays: one doubles the loss on other libraries' arrays, one refuses them."""
    import bce_compat


    def doubled(input, target, **kwargs):
        loss = bce_compat.binary_cross_entropy_with_logits(input, target, **kwargs)
        return loss if type(input).__module__.startswith("numpy") else loss * 2


    def refusing(input, target, **kwargs):
        if not type(input).__module__.startswith("numpy"):
            raise TypeError("NumPy arrays only")
        return bce_compat.binary_cross_entropy_with_logits(input, target, **kwargs)
''')


def test_pytest_plugin_judges_each_case_on_every_backend(third_party):
    """Passing on NumPy hides no failure on the next backend (the test fails, naming it); a case that passes
    on NumPy and is unsupported on the next one (TypeError) still passes: it is not a skip."""
    pytest.importorskip("array_api_strict")
    (third_party / "numpy_only_bce.py").write_text(NUMPY_ONLY, encoding="utf-8")
    common = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--bce-dialect", "torch",
              "--bce-backends", "numpy,array_api_strict", "--bce-cases", "paddle-F-logits-example"]
    doubled = _run([*common, "--bce-impl", "numpy_only_bce:doubled"], third_party)
    assert doubled.returncode == 1, doubled.stdout[-3000:] + doubled.stderr[-3000:]
    assert "\narray_api_strict: exact: " in doubled.stdout and "\nnumpy: " not in doubled.stdout, doubled.stdout[-3000:]
    refusing = _run([*common, "--bce-impl", "numpy_only_bce:refusing"], third_party)
    assert refusing.returncode == 0, refusing.stdout[-3000:] + refusing.stderr[-3000:]
    assert re.search(r"\b2 passed\b", refusing.stdout) and "skipped" not in refusing.stdout, refusing.stdout[-3000:]


def test_a_backend_is_named_as_refusing_only_when_it_refused_every_case():
    """The note "refused every torch array" is for a backend where nothing ran, not one TypeError among passes."""
    from bce_compat.conformance import report

    def cell(backend, status, error=None):
        return runner.Outcome(case="c", backend=backend, path="impl", dtype="float32", status=status, error=error)

    result = runner.Result(cases=[], backends=["numpy", "torch"], outcomes=[
        cell("numpy", "pass"), cell("numpy", "unsupported", "TypeError: no pos_weight"),
        cell("torch", "unsupported", "TypeError: not a tensor"), cell("torch", "skipped")])
    assert report.refusing_backends(result) == ["torch"]
