"""Initialisers against their mathematical definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import init


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4)])
def test_orthogonal(shape):
  w = np.asarray(init.orthogonal(2.0)(jax.random.PRNGKey(0), shape), np.float64)
  small = min(shape)
  gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
  np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)


def test_orthogonal_blockwise_gates():
  w = np.asarray(init.blockwise(init.orthogonal(), 4)(jax.random.PRNGKey(0), (5, 20)))
  for k in range(4):
    block = w[:, 5 * k:5 * (k + 1)]
    np.testing.assert_allclose(block.T @ block, np.eye(5), atol=1e-5)
  assert not np.allclose(w[:, :5], w[:, 5:10])


def test_identity():
  np.testing.assert_array_equal(init.identity(0.5)(None, (3, 3)), 0.5 * np.eye(3))


def test_uniform_fan_matches_pytorch_bound():
  w = np.asarray(init.uniform_fan(16)(jax.random.PRNGKey(0), (64, 64)))
  assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.24
  assert abs(w.mean()) < 0.01


@pytest.mark.parametrize("radius", [0.5, 0.95, 1.5])
def test_scale_to_spectral_radius(radius):
  w = jax.random.normal(jax.random.PRNGKey(3), (40, 40))
  scaled = init.scale_to_spectral_radius(w, radius)
  got = np.max(np.abs(np.linalg.eigvals(np.asarray(scaled, np.float64))))
  assert abs(got - radius) < 1e-3
  jitted = jax.jit(lambda m: init.scale_to_spectral_radius(m, radius))(w)
  np.testing.assert_allclose(jitted, scaled, rtol=1e-6)


def test_power_iteration_estimate():
  w = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (60, 60))) / np.sqrt(60)
  exact = np.max(np.abs(np.linalg.eigvals(w.astype(np.float64))))
  estimate = float(init.spectral_radius(jnp.asarray(w), method="power", iterations=500))
  assert abs(estimate - exact) / exact < 0.05


@pytest.mark.parametrize("radius", [0.0, -1.0])
def test_bad_spectral_radius(radius):
  with pytest.raises(ValueError, match=f"spectral_radius must be > 0, got {radius}"):
    init.scale_to_spectral_radius(jnp.eye(3), radius)


def test_non_square_spectral_radius():
  with pytest.raises(ValueError, match=r"w must be a square matrix, got shape \(3, 4\)"):
    init.spectral_radius(jnp.ones((3, 4)))


def test_exact_spectral_radius_of_a_large_sparse_reservoir():
  # Large matrices take the ARPACK route; numpy's full eigvals is the reference.
  rng = np.random.default_rng(0)
  w = rng.normal(size=(300, 300)) * (rng.uniform(size=(300, 300)) < 0.1)
  scaled = init.scale_to_spectral_radius(jnp.asarray(w, jnp.float32), 1.25)
  got = np.max(np.abs(np.linalg.eigvals(np.asarray(scaled, np.float64))))
  assert abs(got - 1.25) < 1e-3
