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
