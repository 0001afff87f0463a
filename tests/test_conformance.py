"""The conformance cases under pytest: one test per case × backend (our shim, both dialects, every dtype).

Native-op divergences are not asserted here (they are reported by ``bce-compat conformance``);
cross-backend agreement is one test per case.
"""

from __future__ import annotations

import pytest

from bce_compat.conformance import casedata, runner
from conftest import ALL_NAMES, FRAMEWORKS, _require

CASES = casedata.load_cases()
_MODULES = None


def _run(case, names):
    global _MODULES
    if _MODULES is None:
        from bce_compat.conformance import frameworks

        _MODULES = frameworks.import_installed(tuple(FRAMEWORKS))
    fws = {n: FRAMEWORKS[n] for n in names}
    result = runner.Result(cases=[case], backends=list(fws))
    runner.run_case(case, fws, _MODULES, runner.default_shim_modules(), result, native=False)
    return result


@pytest.mark.parametrize("backend", ALL_NAMES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_on_backend(case, backend):
    _require(backend)
    result = _run(case, [backend])
    ran = [o for o in result.outcomes if o.status != "skipped"]
    if not ran:
        pytest.skip("; ".join(sorted({o.detail for o in result.outcomes})))
    failures = [f"{o.path} {o.dtype}: {o.detail}" for o in result.outcomes if o.status == "fail"]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_backends_agree(case):
    if len(FRAMEWORKS) < 2:
        pytest.skip("needs two installed backends")
    result = _run(case, list(FRAMEWORKS))
    bad = [f"{a.path} {a.dtype}: {a.worst:.3g}x tolerance, {a.where}" for a in result.agreements if not a.ok]
    assert not bad, "\n".join(bad)


def test_every_seed_document_has_cases():
    sources = {c.source for c in CASES}
    for seed in ("000_832febdf31283c57.txt", "001_0f18c74aacf30643.txt", "002_5ec8eb12346d8d1f.txt",
                 "003_90ea006e413702a3.txt", "004_4a43b4907e3ac4c7.txt"):
        assert seed in sources
    assert any(c.kind == "ours" for c in CASES)


def test_documented_examples_are_present():
    by_id = {c.id: c for c in CASES}
    torch_example = by_id["torch-module-pos-weight-example"]
    assert torch_example.inputs["input"] == {"fill": 1.5, "shape": [10, 64]}
    assert torch_example.inputs["pos_weight"] == {"fill": 1.0, "shape": [64]}
    paddle_example = by_id["paddle-F-logits-example"]
    assert paddle_example.expect["value"] == pytest.approx(0.45618808)
    assert paddle_example.expect["doc_shape"] == [1] and paddle_example.expect["shape"] == []


NEW_SOURCES = {  # issue 15: one case file per document
    "keras.losses.binary_crossentropy": "005_keras_binary_crossentropy.toml",
    "keras.losses.BinaryCrossentropy": "006_keras_BinaryCrossentropy.toml",
    "tf.nn.sigmoid_cross_entropy_with_logits": "007_tf_sigmoid_cross_entropy_with_logits.toml",
    "tf.nn.weighted_cross_entropy_with_logits": "008_tf_weighted_cross_entropy_with_logits.toml",
    "optax.losses.sigmoid_binary_cross_entropy": "009_optax_losses.toml",
    "torchvision.ops.sigmoid_focal_loss": "010_torchvision_sigmoid_focal_loss.toml",
}


@pytest.mark.parametrize("name", NEW_SOURCES)
def test_every_new_source_document_has_cases(name):
    cases = [c for c in CASES if c.file == NEW_SOURCES[name]]
    assert len(cases) >= 4 and all(name in c.source and c.quote for c in cases)
    first = cases[0].dialects[0]
    assert first == {"005": "keras", "006": "keras", "007": "tf", "008": "tf", "009": "optax", "010": "torch"}[cases[0].file[:3]]


def test_new_documented_examples_are_present():
    by_id = {c.id: c for c in CASES}
    assert by_id["keras-BinaryCrossentropy-logits-example-2"].expect["value"] == pytest.approx(0.865)
    assert by_id["keras-BinaryCrossentropy-sample-weight"].expect["value"] == pytest.approx(0.243)
    assert by_id["keras-binary_crossentropy-example"].expect["values"] == pytest.approx([0.916, 0.714])
    assert by_id["tf-sigmoid-xent-example"].expect["values"][0] == pytest.approx(1.3132617)
    clip = by_id["keras-binary_crossentropy-probability-clip"]
    assert clip.expect["values"] == [100.0] and "1e-7" in clip.advice  # the contract's clamp, Keras' clip diverges
