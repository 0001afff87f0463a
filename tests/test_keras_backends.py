"""``bce_compat.keras.BinaryCrossentropy`` in ``model.compile`` on every Keras backend installed.

Keras picks its backend once, at import, from ``$KERAS_BACKEND``; so each backend runs in its own
interpreter. The training losses must equal those of Keras' own ``BinaryCrossentropy`` (issue 15).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np
import keras
from bce_compat.keras import BinaryCrossentropy

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (rng.random((64, 1)) < 0.5).astype("float32")

def fit(loss):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    return model.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False).history["loss"]

assert keras.backend.backend() == "{backend}", keras.backend.backend()
ours = fit(BinaryCrossentropy(from_logits=True))
native = fit(keras.losses.BinaryCrossentropy(from_logits=True))
np.testing.assert_allclose(ours, native, rtol=1e-5)
print("ok", ours)
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_model_fit_with_our_loss_matches_keras_own(backend, tmp_path):
    for module in ("keras", backend):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # from an empty folder: the installed package, not the source tree (whose backends/ is not a subpackage)
    run = subprocess.run([sys.executable, "-c", SCRIPT.format(backend=backend)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("ok")
