"""Tests for seqjax.attention against numpy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import attention


def _softmax(x):
  e = np.exp(x - x.max())
  return e / e.sum()


def _reference(kind, params, query, values, mask):
  """Per-row numpy loop over the real positions only."""
  p = jax.tree_util.tree_map(np.asarray, params)
  contexts, weights = [], []
  for q, h, m in zip(query, values, mask):
    real = h[m]
    if kind == "additive":
      scores = np.array([p["v"] @ np.tanh(q @ p["w_q"] + hj @ p["w_k"] + p["b"]) for hj in real])
    elif kind == "dot":
      scores = real @ q
    else:
      scores = np.array([q @ p["w"] @ hj for hj in real])
    alpha = _softmax(scores)
    full = np.zeros(len(m))
    full[m] = alpha
    contexts.append(alpha @ real)
    weights.append(full)
  return np.array(contexts), np.array(weights)


@pytest.mark.parametrize("kind", attention.KINDS)
def test_matches_numpy_and_ignores_padding(kind):
  rng = np.random.default_rng(0)
  k = 5
  att = attention.by_name(kind, 6)
  params = att.init(jax.random.key(1), k, k)
  values = rng.normal(size=(3, 4, k)).astype(np.float32)
  query = rng.normal(size=(3, k)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
  # Padded positions hold garbage that must change nothing.
  noisy = np.where(mask[..., None], values, 1e3 * rng.normal(size=values.shape)).astype(
      np.float32)
  context, weights = att.apply(params, query, att.memory(params, noisy, mask))
  ref_context, ref_weights = _reference(kind, params, query, values, mask)
  np.testing.assert_allclose(weights, ref_weights, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(context, ref_context, rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(weights)[~mask] == 0.0)  # exactly zero, not just small
  np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-6)


def test_padding_gets_no_gradient():
  att = attention.additive(4)
  params = att.init(jax.random.key(0), 3, 3)
  values = jnp.ones((1, 3, 3)) * jnp.arange(3.0)[:, None]
  mask = jnp.array([[True, True, False]])

  def f(v):
    context, _ = att.apply(params, jnp.ones((1, 3)), att.memory(params, v, mask))
    return jnp.sum(context ** 2)

  grad = jax.grad(f)(values)
  assert np.all(np.asarray(grad)[0, 2] == 0.0)
  assert np.all(np.isfinite(np.asarray(grad)))


def test_batched_leading_axes_and_huge_scores():
  att = attention.dot()
  params = att.init(jax.random.key(0), 2, 2)
  values = jnp.array([[[[100.0, 0.0], [0.0, 100.0]]]])  # (1, 1, 2, 2)
  query = jnp.array([[[100.0, 0.0]]])
  context, weights = att.apply(params, query, att.memory(params, values, None))
  assert weights.shape == (1, 1, 2) and np.all(np.isfinite(np.asarray(context)))
  np.testing.assert_allclose(weights[0, 0], [1.0, 0.0], atol=1e-6)


def test_masked_softmax_matches_softmax_of_kept():
  scores = jnp.array([[1.0, 2.0, 3.0], [5.0, -1.0, 0.0]])
  mask = jnp.array([[True, False, True], [True, True, True]])
  w = attention.masked_softmax(scores, mask)
  np.testing.assert_allclose(w[0], [_softmax(np.array([1.0, 3.0]))[0], 0.0,
                                    _softmax(np.array([1.0, 3.0]))[1]], rtol=1e-6)
  np.testing.assert_allclose(w[1], _softmax(np.array([5.0, -1.0, 0.0])), rtol=1e-6)


def test_bad_arguments():
  with pytest.raises(ValueError, match="query_size == key_size"):
    attention.dot().init(jax.random.key(0), 3, 4)
  with pytest.raises(ValueError, match="attention_size"):
    attention.additive(0)
  with pytest.raises(ValueError, match="attention"):
    attention.by_name("cosine")
  att = attention.general()
  params = att.init(jax.random.key(0), 3, 4)
  with pytest.raises(ValueError, match="values must have shape"):
    att.memory(params, jnp.ones((2, 5, 3)), None)
  with pytest.raises(ValueError, match="mask must have shape"):
    att.memory(params, jnp.ones((2, 5, 4)), jnp.ones((2, 4), bool))
