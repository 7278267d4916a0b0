"""Losses against numpy references written from their definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import losses


def test_cross_entropy_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 4, 6)).astype(np.float32)
  targets = rng.integers(0, 6, size=(2, 4))
  mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
  total, count = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets),
                                      jnp.asarray(mask))
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
  np.testing.assert_allclose(total, (nll * mask).sum(), rtol=1e-5)
  assert count == 7


def test_cross_entropy_without_mask_counts_every_item():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(3, 5)).astype(np.float32)   # (B, V): one item per row
  targets = rng.integers(0, 5, size=(3,))
  total, count = losses.cross_entropy(logits, targets)
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  np.testing.assert_allclose(total, -np.log(probs[np.arange(3), targets]).sum(), rtol=1e-5)
  assert count == 3 and total.dtype == jnp.float32


def test_binary_cross_entropy_matches_the_bernoulli_likelihood():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(2, 5, 7)).astype(np.float32) * 3
  targets = (rng.uniform(size=(2, 5, 7)) < 0.3).astype(np.float32)
  mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
  total, count = losses.binary_cross_entropy(logits, targets, mask)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  per_frame = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum(-1)
  np.testing.assert_allclose(total, (per_frame * mask).sum(), rtol=1e-5)
  assert count == 7


def test_binary_cross_entropy_is_stable_for_large_logits():
  logits = jnp.array([[[100.0, -100.0]]])
  total, _ = losses.binary_cross_entropy(logits, jnp.array([[[1.0, 0.0]]]))
  assert np.isfinite(total) and total < 1e-30
  total, _ = losses.binary_cross_entropy(logits, jnp.array([[[0.0, 1.0]]]))
  np.testing.assert_allclose(total, 200.0, rtol=1e-6)


def test_squared_error_with_prefix_mask():
  rng = np.random.default_rng(3)
  predictions = rng.normal(size=(4, 3)).astype(np.float32)
  targets = rng.normal(size=(4, 3)).astype(np.float32)
  weight = np.array([1, 0, 1, 1], np.float32)
  total, count = losses.squared_error(predictions, targets, weight)
  np.testing.assert_allclose(total, (((predictions - targets) ** 2) * weight[:, None]).sum(),
                             rtol=1e-5)
  assert count == 9
  total, count = losses.squared_error(predictions[:, 0], targets[:, 0])
  np.testing.assert_allclose(total / count, np.mean((predictions[:, 0] - targets[:, 0]) ** 2),
                             rtol=1e-5)


def test_losses_jit_and_differentiate():
  logits = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4))
  targets = jnp.array([[0, 1, 2], [3, 0, 1]])
  grad = jax.jit(jax.grad(lambda l: losses.cross_entropy(l, targets)[0]))(logits)
  # d nll / d logits = softmax - onehot, summed over items.
  want = jax.nn.softmax(logits) - jax.nn.one_hot(targets, 4)
  np.testing.assert_allclose(grad, want, atol=1e-6)


def test_shape_errors_name_the_argument():
  with pytest.raises(ValueError, match="targets must have shape"):
    losses.cross_entropy(jnp.zeros((2, 3, 4)), jnp.zeros((2, 4), jnp.int32))
  with pytest.raises(ValueError, match="mask must have the shape"):
    losses.cross_entropy(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3), jnp.int32), jnp.ones((2,)))
  with pytest.raises(ValueError, match="targets must have the logits' shape"):
    losses.binary_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="mask must have the predictions' shape"):
    losses.squared_error(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((3,)))
