"""``bce-compat diff`` with keras as a side: Keras' own op (on the TensorFlow bench) against another framework's."""

from __future__ import annotations

import json

import pytest

from bce_compat import cli
from bce_compat.conformance import casedata, natives, report, runner


def test_keras_is_a_side_run_on_the_tensorflow_bench():
    args = cli.build_parser().parse_args(["diff", "keras", "torch"])
    assert (args.a, args.b) == ("keras", "torch")
    assert natives.bench_of("keras") == "tensorflow" and natives.bench_of("torch") == "torch"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["diff", "kerass", "torch"])


def test_diff_keras_torch_lists_the_probability_clip(capsys, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    out_json = tmp_path / "diff.json"
    code = cli.main(["diff", "keras", "torch", "--cases", "ours-probs-q-at-0-and-1", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Where keras's and torch's own BCE ops differ" in out
    rows = json.loads(out_json.read_text())
    assert {r["case"] for r in rows} == {"ours-probs-q-at-0-and-1"}
    assert all(r["keras"].startswith("[") and "16.1181" in r["keras"] for r in rows)  # Keras' 1e-7 clip
    assert all("100" in r["torch"] for r in rows)  # torch's -100 log clamp


def test_diff_keras_tensorflow_runs_one_bench():
    pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    cases = casedata.load_cases(["keras-BinaryCrossentropy-logits-example-1"])
    result = runner.run(cases, ["tensorflow"], native=True, shim=False)
    assert {o.backend for o in result.outcomes} == {"tensorflow", "keras"}
    rows = report.diff_rows(result, "keras", "tensorflow")
    # Keras' class computes in floatx (float32) even for float64 inputs; tf.nn keeps float64
    assert [r["dtype"] for r in rows] == ["float64"]


# ---- the advice names the two frameworks compared (issue 23, item 3)


def _grad_outcome(backend, status, detail="", value=0.693147):
    return runner.Outcome(case="tf-sigmoid-xent-grad-at-zero", backend=backend, path="native", dtype="float32",
                          status=status, detail=detail, shape=[3], value=[value] * 3,
                          worst=0.0 if status == "pass" else 1e6)


@pytest.mark.parametrize("departs, matches", [("paddle", "torch"), ("torch", "paddle")])
def test_diff_advice_names_the_framework_that_departs_and_the_one_that_matches(departs, matches):
    """Before: ``tf.nn's gradient at x = 0 is 1 for z = 0 ...`` on a torch-vs-paddle row."""
    case = casedata.load_cases(["tf-sigmoid-xent-grad-at-zero"])[0]
    measured = runner.Result(cases=[case], backends=["torch", "paddle"], outcomes=[
        _grad_outcome(departs, "diverges", "grad input: at [0] got -0.5, exact 0.5 (x=0, y=0)"),
        _grad_outcome(matches, "pass"),
    ])
    rows = [r for r in report.diff_rows(measured, "torch", "paddle") if r["dtype"] == "float32"]
    assert len(rows) == 1
    advice = rows[0]["advice"]
    assert advice.startswith(f"{departs} departs from the exact value, {matches} matches it; ")
    assert "tf.nn" not in advice and "tensorflow" not in advice


def test_diff_advice_when_both_depart_names_both():
    case = casedata.load_cases(["tf-sigmoid-xent-grad-at-zero"])[0]
    measured = runner.Result(cases=[case], backends=["torch", "paddle"], outcomes=[
        _grad_outcome("torch", "diverges", "value: at [0] got 0.7, exact 0.693147", value=0.7),
        _grad_outcome("paddle", "diverges", "grad input: at [0] got -0.5, exact 0.5"),
    ])
    advice = report.diff_rows(measured, "torch", "paddle")[0]["advice"]
    assert advice.startswith("torch and paddle both depart from the exact value; ")


def test_grad_at_zero_advice_states_the_exact_gradient_and_names_no_framework():
    """tf.nn.sigmoid_cross_entropy_with_logits is exact at x = 0 (TF's own testGradientAtZero): the case's
    advice must not say otherwise, nor name a framework the row may not compare."""
    case = casedata.load_cases(["tf-sigmoid-xent-grad-at-zero"])[0]
    assert "0.5 - z" in case.advice
    for name in ("tf.nn", "torch", "paddle", "keras", "optax"):
        assert name not in case.advice


def test_tf_nn_gradient_at_zero_facts_as_measured():
    """The facts the README and the tf dialect state: tf.nn.sigmoid_cross_entropy_with_logits is exact at
    x = 0; tf.nn.weighted_cross_entropy_with_logits gives 1 for z = 0 (exact 0.5), 0 for z = 1 (exact -0.5)."""
    tf = pytest.importorskip("tensorflow")
    from bce_compat.dialects import tf as T

    x = tf.Variable(tf.zeros([3], tf.float64))
    z = tf.constant([0.0, 1.0, 0.5], tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        sigmoid = tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x)
        weighted = tf.nn.weighted_cross_entropy_with_logits(labels=z, logits=x, pos_weight=1.0)
        ours = T.weighted_cross_entropy_with_logits(z, x, 1.0)
    assert tape.gradient(sigmoid, x).numpy().tolist() == [0.5, -0.5, 0.0]
    assert tape.gradient(weighted, x).numpy().tolist() == [1.0, 0.0, 0.5]
    assert tape.gradient(ours, x).numpy().tolist() == [0.5, -0.5, 0.0]


def test_diff_torch_paddle_grad_at_zero_names_torch_and_paddle(capsys):
    pytest.importorskip("torch")
    pytest.importorskip("paddle")
    assert cli.main(["diff", "torch", "paddle", "--cases", "tf-sigmoid-xent-grad-at-zero"]) == 0
    out = capsys.readouterr().out
    advice = [line for line in out.splitlines() if "advice:" in line]
    assert advice, out
    for line in advice:
        assert "paddle departs from the exact value, torch matches it" in line
        assert "tf.nn" not in line


def test_conformance_measures_which_tf_nn_op_is_inexact_at_zero():
    """The grad-at-zero cases of both tf.nn pages: the sigmoid op matches the exact gradient, the weighted op
    departs (1 for z = 0 where exact is 0.5); our shim matches on TensorFlow."""
    pytest.importorskip("tensorflow")
    cases = casedata.load_cases(["tf-sigmoid-xent-grad-at-zero", "tf-weighted-xent-grad-at-zero"])
    result = runner.run(cases, ["tensorflow"], native=True)
    native = {(o.case, o.dtype): o for o in result.outcomes if o.path == "native" and o.backend == "tensorflow"}
    for dtype in ("float32", "float64"):
        assert native[("tf-sigmoid-xent-grad-at-zero", dtype)].status == "pass"
        weighted = native[("tf-weighted-xent-grad-at-zero", dtype)]
        assert weighted.status == "diverges" and "got 1, exact 0.5" in weighted.detail, weighted.detail
    shim = [o for o in result.outcomes if o.path != "native" and o.status != "skipped"]
    assert shim and all(o.status == "pass" for o in shim), [o for o in shim if o.status != "pass"]


def test_readme_and_tf_dialect_put_the_gradient_at_zero_on_the_weighted_op():
    import pathlib

    from bce_compat.dialects import tf as tf_dialect

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    bullet = next(line for line in readme.split("\n- ") if line.startswith("**Gradient at x = 0**"))
    assert "`tf.nn.weighted_cross_entropy_with_logits` gives" in bullet
    assert "`tf.nn.sigmoid_cross_entropy_with_logits` gives" not in bullet
    doc = tf_dialect.__doc__ or ""
    assert "(1 instead of 0.5 for labels = 0)" in doc
    assert "sigmoid_cross_entropy_with_logits``'s gradient at x = 0 is exact" in doc
