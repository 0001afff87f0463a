"""optax's ``SigmoidFocalLossTest`` (and ``SigmoidCrossEntropyTest``), ported onto ``bce_compat.dialects.optax``.

Upstream: google-deepmind/optax, ``optax/losses/_classification_test.py`` (read at commit
2edbcbe2390da13983b92cbef94ac0460ecde1c5; the same tests ship with optax 0.2.8). Each test keeps
its inputs and tolerances; ``_classification.sigmoid_focal_loss`` and
``_classification.sigmoid_binary_cross_entropy`` become the optax dialect's functions of the
same names. As upstream, the focal loss is called through ``jax.jit`` with ``alpha``/``gamma``
as traced arguments. Harness: pytest instead of ``absltest``/``parameterized``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bce_compat.dialects import optax as _classification

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install 'bce_compat[jax]')")
jnp = jax.numpy


# --- SigmoidCrossEntropyTest -------------------------------------------------------------------------


@pytest.mark.parametrize("preds,labels,expected", [
    (np.array([-1e09, -1e-09]), np.array([1.0, 0.0]), 5e08),
    (np.array([-1e09, -1e-09]), np.array([0.0, 1.0]), 0.3465736),
    (np.array([1e09, 1e-09]), np.array([1.0, 0.0]), 0.3465736),
    (np.array([1e09, 1e-09]), np.array([0.0, 1.0]), 5e08),
    (np.array([-1e09, 1e-09]), np.array([1.0, 0.0]), 5e08),
    (np.array([-1e09, 1e-09]), np.array([0.0, 1.0]), 0.3465736),
    (np.array([1e09, -1e-09]), np.array([1.0, 0.0]), 0.3465736),
    (np.array([1e09, -1e-09]), np.array([0.0, 1.0]), 5e08),
    (np.array([0.0, 0.0]), np.array([1.0, 0.0]), 0.6931472),
    (np.array([0.0, 0.0]), np.array([0.0, 1.0]), 0.6931472),
])
def test_sigmoid_cross_entropy(preds, labels, expected):
    tested = jnp.mean(_classification.sigmoid_binary_cross_entropy(preds, labels))
    np.testing.assert_allclose(tested, expected, rtol=1e-6, atol=1e-6)


# --- SigmoidFocalLossTest ----------------------------------------------------------------------------


class TestSigmoidFocalLoss:
    def setup_method(self):
        self.ys = np.array([[2.0, 0.1, -2.0], [0.3, -0.1, 1.2]], dtype=np.float32)
        self.ts = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
        # upstream: relaxed tolerance for its log-space computation (5e-3 on accelerators)
        self._rtol = 5e-3 if jax.default_backend() != "cpu" else 2e-5

        def logit(x):
            return jnp.log(x / (1.0 - x))

        self.large_ys = logit(jnp.array([0.9, 0.98, 0.3, 0.99]))
        self.small_ys = logit(jnp.array([0.1, 0.02, 0.09, 0.15]))
        self.ones_ts = jnp.array([1.0, 1.0, 1.0, 1.0])

    def test_focal_equals_ce(self):
        """If gamma == 0 and alpha == 0 we expect a CE loss."""
        np.testing.assert_allclose(
            jax.jit(_classification.sigmoid_focal_loss)(self.ys, self.ts, gamma=0.0),
            _classification.sigmoid_binary_cross_entropy(self.ys, self.ts),
            rtol=self._rtol,
        )

    def test_focal_gamma_zero_matches_binary_cross_entropy(self):
        """sigmoid_focal_loss == sigmoid_binary_cross_entropy for gamma=0."""
        test_logits = jnp.array([[-1.0, 0.0, 1.0], [2.0, -2.0, 0.5]])
        test_labels = jnp.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
        focal_loss = jax.jit(_classification.sigmoid_focal_loss)(test_logits, test_labels, gamma=0.0)
        binary_ce_loss = _classification.sigmoid_binary_cross_entropy(test_logits, test_labels)
        np.testing.assert_allclose(focal_loss, binary_ce_loss, rtol=self._rtol,
                                   err_msg="Focal loss with gamma=0 should match binary cross-entropy")

    def test_scale(self):
        """This test should catch problems with p_t."""
        gamma = 2
        focal_loss = jax.jit(_classification.sigmoid_focal_loss)(self.ys, self.ts, gamma=gamma)
        p = jax.nn.sigmoid(self.ys)
        ce_loss = _classification.sigmoid_binary_cross_entropy(self.ys, self.ts)
        p_t = p * self.ts + (1 - p) * (1 - self.ts)
        scale = (1 - p_t) ** gamma
        focal_scale = focal_loss / ce_loss
        np.testing.assert_allclose(focal_scale, scale, rtol=self._rtol)

    def test_large_logit_fl_less_than_ce(self):
        """If gamma == 2 and alpha == 0.5, the impact of large logits is reduced."""
        focal_loss = jax.jit(_classification.sigmoid_focal_loss)(self.large_ys, self.ones_ts, gamma=2, alpha=0.5)
        ce_loss = _classification.sigmoid_binary_cross_entropy(self.large_ys, self.ones_ts)
        loss_ratio = ce_loss / focal_loss
        expected_ratio = 2.0 / ((1.0 - jax.nn.sigmoid(self.large_ys)) ** 2)
        np.testing.assert_allclose(loss_ratio, expected_ratio, rtol=self._rtol)

    def test_small_logit_fl_less_than_ce(self):
        """If gamma == 2, small logits retain their weight."""
        focal_loss = jax.jit(_classification.sigmoid_focal_loss)(self.small_ys, self.ones_ts, gamma=2)
        ce_loss = _classification.sigmoid_binary_cross_entropy(self.small_ys, self.ones_ts)
        loss_ratio = ce_loss / focal_loss
        expected_ratio = 1.0 / ((1.0 - jax.nn.sigmoid(self.small_ys)) ** 2)
        np.testing.assert_allclose(loss_ratio, expected_ratio, rtol=self._rtol)

    def test_alpha_one(self):
        """Test if re-weighting with alpha=1 is ok."""
        np.testing.assert_allclose(
            jax.jit(_classification.sigmoid_focal_loss)(self.ys, self.ts, gamma=0.0, alpha=1),
            _classification.sigmoid_binary_cross_entropy(self.ys, self.ts) * self.ts,
            rtol=self._rtol,
        )

    def test_ignore_positive(self):
        """If alpha == 0 positive examples do not matter."""
        focal_loss = jax.jit(_classification.sigmoid_focal_loss)(self.ys, self.ts, alpha=0)
        ce_loss = _classification.sigmoid_binary_cross_entropy(self.ys, self.ts)
        assert all(ce_loss[self.ts == 1] > 0)
        assert all(focal_loss[self.ts == 1] == 0)

    def test_ignore_negative(self):
        """If alpha == 1 negative examples do not matter."""
        focal_loss = jax.jit(_classification.sigmoid_focal_loss)(self.ys, self.ts, alpha=1)
        ce_loss = _classification.sigmoid_binary_cross_entropy(self.ys, self.ts)
        assert all(ce_loss[self.ts == 0] > 0)
        assert all(focal_loss[self.ts == 0] == 0)

    def test_extreme_logits_finite_gradients(self):
        """Test that extreme logits with gamma < 1 produce finite gradients."""
        extreme_logits = jnp.array([100.0, -100.0, 75.0, -75.0, 50.0, -50.0])
        labels = jnp.array([0.9, 0.1, 0.8, 0.2, 1.0, 0.0])
        gamma = 0.5

        def loss_fn(logits):
            return jnp.sum(jax.jit(_classification.sigmoid_focal_loss)(logits, labels, gamma=gamma))

        loss_value = loss_fn(extreme_logits)
        gradients = jax.grad(loss_fn)(extreme_logits)
        assert jnp.isfinite(loss_value), f"Loss should be finite for {gamma=}, got {loss_value}"
        assert jnp.all(jnp.isfinite(gradients)), f"Gradients should be finite for {gamma=}, got {gradients}"
        hessian = jax.hessian(loss_fn)(extreme_logits)
        assert jnp.all(jnp.isfinite(hessian)), f"Hessians should be finite for {gamma=}"
