"""``bce-compat migrate --to portable`` on Keras, ``tf.nn`` and optax calls (issue 15.4).

Each call becomes the bce_compat dialect function of the same name and signature (so the
argument order, which differs in every library, stays right by construction), and Keras' loss
class becomes ``bce_compat.keras.BinaryCrossentropy`` (a ``keras.losses.Loss``, so
``model.compile`` keeps working). The rewritten code is run against the original where the
source op is exact: same values and gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

from bce_compat.conformance import frameworks

pytest.importorskip("libcst")
from bce_compat.migrate._source import migrate_source  # noqa: E402

FRAMEWORKS = frameworks.available()  # the safe import order (TF after Paddle)


def rewrite(code: str) -> str:
    outcome = migrate_source(code, "portable")
    assert outcome.error is None and outcome.findings == [], outcome.findings
    return outcome.code


@pytest.mark.parametrize(
    ("imports", "call", "expected"),
    [
        ("import keras", "keras.losses.binary_crossentropy(t, p, True, 0.1)",
         "bce_keras.binary_crossentropy(t, p, True, 0.1)"),
        ("import tensorflow as tf", "tf.keras.losses.binary_crossentropy(y_true=t, y_pred=p, axis=0)",
         "bce_keras.binary_crossentropy(y_true=t, y_pred=p, axis=0)"),
        ("from keras import metrics", "metrics.binary_crossentropy(t, p)", "bce_keras.binary_crossentropy(t, p)"),
        ("import keras", "keras.losses.BinaryCrossentropy(from_logits=True, reduction='sum')",
         "bce_compat.keras.BinaryCrossentropy(from_logits=True, reduction='sum')"),
        ("from tensorflow.keras.losses import BinaryCrossentropy", "BinaryCrossentropy(True, 0.2)",
         "bce_compat.keras.BinaryCrossentropy(True, 0.2)"),
        ("import tensorflow as tf", "tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=x)",
         "bce_tf.sigmoid_cross_entropy_with_logits(labels=t, logits=x)"),
        ("import tensorflow as tf", "tf.nn.weighted_cross_entropy_with_logits(t, x, 2.0, name='w')",
         "bce_tf.weighted_cross_entropy_with_logits(t, x, 2.0, name='w')"),
        ("import tensorflow as tf", "tf.compat.v2.nn.sigmoid_cross_entropy_with_logits(t, x)",
         "bce_tf.sigmoid_cross_entropy_with_logits(t, x)"),
        ("import optax", "optax.sigmoid_binary_cross_entropy(x, t)", "bce_optax.sigmoid_binary_cross_entropy(x, t)"),
        ("from optax import losses", "losses.sigmoid_binary_cross_entropy(labels=t, logits=x)",
         "bce_optax.sigmoid_binary_cross_entropy(labels=t, logits=x)"),
    ],
)
def test_calls_keep_their_arguments_exactly(imports, call, expected):
    new = rewrite(f"{imports}\n\nl = {call}\n")
    assert f"l = {expected}\n" in new
    assert migrate_source(new, "portable").code == new  # idempotent


def test_imports_are_added_once_and_framework_imports_kept_while_used():
    code = (
        "import tensorflow as tf\nimport optax\n\n"
        "a = tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=x)\n"
        "b = tf.nn.weighted_cross_entropy_with_logits(t, x, 2.0)\n"
        "c = optax.sigmoid_binary_cross_entropy(x, t)\n"
        "d = tf.reduce_sum(a)\n"
    )
    assert rewrite(code) == (
        "import tensorflow as tf\nfrom bce_compat.dialects import optax as bce_optax, tf as bce_tf\n\n"
        "a = bce_tf.sigmoid_cross_entropy_with_logits(labels=t, logits=x)\n"
        "b = bce_tf.weighted_cross_entropy_with_logits(t, x, 2.0)\n"
        "c = bce_optax.sigmoid_binary_cross_entropy(x, t)\n"
        "d = tf.reduce_sum(a)\n"
    )


@pytest.mark.parametrize("to", ["torch", "paddle"])
def test_torch_and_paddle_targets_leave_other_frameworks_alone_silently(to):
    code = "import tensorflow as tf\nl = tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=x)\nf = tf.nn.sigmoid_cross_entropy_with_logits\n"
    outcome = migrate_source(code, to)
    assert outcome.code == code and outcome.findings == [] and outcome.converted == 0


@pytest.mark.parametrize(("code", "why"), [
    ("import tensorflow as tf\nloss_fn = tf.nn.sigmoid_cross_entropy_with_logits\n", "without being called"),
    ("import keras\nclass Mine(keras.losses.BinaryCrossentropy):\n    pass\n", "without being called"),
])
def test_a_loss_used_without_being_called_is_left_and_reported(code, why):
    """(``*args``/``**kwargs`` are fine here: the dialect has the source's exact signature.)"""
    outcome = migrate_source(code, "portable")
    assert outcome.code == code and len(outcome.left) == 1 and why in outcome.left[0].message


# --- the rewrite runs and gives the source's numbers ----------------------------------------------

def _run_both(code: str, **inputs):
    """``run(**inputs)`` from the original and from the rewrite."""
    results = []
    for text in (code, rewrite(code)):
        namespace: dict = {}
        exec(compile(text, "<snippet>", "exec"), namespace)
        results.append(namespace["run"](**inputs))
    return results


def _data(dtype, probs=False, shape=(4, 3)):
    rng = np.random.default_rng(7)
    x = rng.uniform(0.05, 0.95, shape) if probs else rng.normal(0, 3, shape)
    return x.astype(dtype), rng.uniform(0, 1, shape).astype(dtype)


TF_SNIPPET = '''
import tensorflow as tf

def run(x, y):
    x, y = tf.Variable(x), tf.constant(y)  # bce_compat takes no NumPy operand beside TF tensors
    with tf.GradientTape() as tape:
        a = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=x)
        b = tf.nn.weighted_cross_entropy_with_logits(y, x, tf.constant([2.0, 0.5, 1.0], x.dtype))
        loss = tf.reduce_sum(a) + tf.reduce_sum(b)
    return a.numpy(), b.numpy(), tape.gradient(loss, x).numpy()
'''


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tf_nn_rewrite_gives_tfs_values_and_gradients(dtype):
    if "tensorflow" not in FRAMEWORKS:
        pytest.skip("tensorflow is not installed")
    x, y = _data(dtype)
    expected, got = _run_both(TF_SNIPPET, x=x, y=y)
    rtol = 2e-6 if dtype == "float32" else 1e-13
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * 1e-1)


KERAS_SNIPPET = '''
import numpy as np
import keras

def run(x, y, q):
    logits = keras.losses.binary_crossentropy(y, x, from_logits=True, label_smoothing=0.1)
    probs = keras.losses.binary_crossentropy(y, q)
    module = keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum", dtype="float64")
    weighted = module(y, x, sample_weight=np.array([1.0, 0.5, 2.0, 0.0]))
    return np.asarray(logits), np.asarray(probs), float(weighted)
'''


def test_keras_rewrite_gives_keras_values():
    """float64 throughout: Keras computes log(1 - q) without log1p, exact enough only there."""
    if "tensorflow" not in FRAMEWORKS:
        pytest.skip("tensorflow (Keras' backend here) is not installed")
    pytest.importorskip("keras")
    x, y = _data("float64")
    q, _ = _data("float64", probs=True)
    expected, got = _run_both(KERAS_SNIPPET, x=x, y=y, q=q)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-12)


def test_keras_compile_with_the_rewritten_loss_fits_as_before():
    if "tensorflow" not in FRAMEWORKS:
        pytest.skip("tensorflow (Keras' backend here) is not installed")
    keras = pytest.importorskip("keras")
    code = '''
import keras

def run(x, y):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False).history["loss"]
'''
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 6)).astype("float32"), (rng.random((16, 3)) < 0.3).astype("float32")
    assert keras.backend.backend() in ("tensorflow", "jax", "torch")
    expected, got = _run_both(code, x=x, y=y)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[-1] < got[0]


OPTAX_SNIPPET = '''
import jax
import jax.numpy as jnp
import optax

def run(x, y):
    loss = lambda x: optax.sigmoid_binary_cross_entropy(x, y).sum() + optax.losses.sigmoid_binary_cross_entropy(
        labels=y, logits=2 * x).mean()
    return optax.sigmoid_binary_cross_entropy(jnp.asarray(x), jnp.asarray(y)), jax.grad(loss)(jnp.asarray(x))
'''


def test_optax_rewrite_gives_optaxs_values_and_gradients():
    if "jax" not in FRAMEWORKS:
        pytest.skip("jax is not installed")
    pytest.importorskip("optax")
    x, y = _data("float32")
    expected, got = _run_both(OPTAX_SNIPPET, x=x, y=y)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=2e-6, atol=1e-7)
