"""Tests for the reservoir error measure (NRMSE) against numpy and reservoirpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.reservoir.metrics import nrmse


def _numpy_nrmse(predictions, targets):
  """Per output rms(p - t) / std(t) over every leading position, then the mean."""
  p = np.asarray(predictions, np.float64).reshape(-1, np.shape(predictions)[-1])
  t = np.asarray(targets, np.float64).reshape(-1, np.shape(targets)[-1])
  per_output = np.sqrt(np.mean((p - t) ** 2, axis=0)) / np.std(t, axis=0)
  return per_output.mean(), per_output


def _multi_output(seed=10):
  # Outputs on very different scales: a measure over all elements at once
  # (or one that averages before the square root) would let the large one
  # dominate.
  rng = np.random.default_rng(seed)
  t = rng.normal(size=(4, 30, 3)) * np.array([0.01, 1.0, 30.0]) + np.array([0.0, 1.0, -5.0])
  p = t + rng.normal(size=t.shape) * np.array([0.005, 0.1, 3.0])
  return p, t


def test_multi_output_equals_numpy():
  p, t = _multi_output()
  want, want_per_output = _numpy_nrmse(p, t)
  got = nrmse(jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32))
  assert got.shape == () and got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5)
  got_per_output = nrmse(jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32),
                         per_output=True)
  assert got_per_output.shape == (3,)
  np.testing.assert_allclose(got_per_output, want_per_output, rtol=1e-5)
  # The two other definitions seqjax once had give other numbers here.
  pooled = np.sqrt(np.mean((p - t) ** 2)) / np.std(t)
  root_of_mean = np.sqrt(np.mean(want_per_output ** 2))
  assert abs(pooled - want) > 0.1 * want and abs(root_of_mean - want) > 0.01 * want
  with jax.enable_x64(True):
    got64 = nrmse(jnp.asarray(p), jnp.asarray(t))
    assert got64.dtype == jnp.float64
    np.testing.assert_allclose(got64, want, rtol=1e-12)


def test_single_output_is_rmse_over_std():
  rng = np.random.default_rng(11)
  p, t = rng.normal(size=(50, 1)), 3 * rng.normal(size=(50, 1)) + 1
  want = np.sqrt(np.mean((p - t) ** 2)) / np.std(t)
  np.testing.assert_allclose(nrmse(jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32)),
                             want, rtol=1e-5)
  t = jnp.asarray(t, jnp.float32)
  assert float(nrmse(t, t)) == 0.0
  np.testing.assert_allclose(nrmse(jnp.full_like(t, jnp.mean(t)), t), 1.0, rtol=1e-5)


def test_equals_reservoirpy_dimensionwise_with_std_norm():
  observables = pytest.importorskip("reservoirpy.observables")
  p, t = _multi_output(12)
  p, t = p.reshape(-1, 3), t.reshape(-1, 3)
  want = observables.nrmse(t, p, norm_value=t.std(axis=0), dimensionwise=True).mean()
  np.testing.assert_allclose(nrmse(jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32)),
                             want, rtol=1e-5)


def test_mixed_dtypes_and_jit():
  p, t = _multi_output(13)
  want, _ = _numpy_nrmse(p, t)
  # float32 predictions against float64 (numpy) targets, under strict promotion.
  np.testing.assert_allclose(nrmse(jnp.asarray(p, jnp.float32), t), want, rtol=1e-5)
  np.testing.assert_allclose(jax.jit(nrmse)(jnp.asarray(p, jnp.float32),
                                            jnp.asarray(t, jnp.float32)), want, rtol=1e-5)


def test_rejects_bad_arguments():
  with pytest.raises(ValueError, match="predictions and targets must have the same shape"):
    nrmse(jnp.zeros((3, 2)), jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match=r"at least one axis before the outputs, got \(3,\)"):
    nrmse(jnp.zeros(3), jnp.zeros(3))
  with pytest.raises(TypeError, match="targets must be a floating-point array"):
    nrmse(jnp.zeros((3, 2)), jnp.zeros((3, 2), jnp.int32))
  with pytest.raises(TypeError, match="per_output must be True or False"):
    nrmse(jnp.zeros((3, 2)), jnp.zeros((3, 2)), per_output="yes")
