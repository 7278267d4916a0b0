"""Language model: forward pass, loss and sampling against hand-built references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import layers
from seqjax.cells import gru, lstm
from seqjax.language_model import cross_entropy, generate, language_model
from seqjax.scan import unroll


def _model():
  return language_model(11, layers.stacked(gru(8), 2), embed_size=5)


def test_apply_equals_embedding_unroll_and_softmax_layer():
  model = language_model(11, lstm(8), embed_size=5)
  params = model.init(jax.random.PRNGKey(0))
  tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 7), 0, 11)
  logits, carry = model.apply(params, tokens)
  embedded = np.asarray(params["embed"])[np.asarray(tokens)]
  want_carry, hs = unroll(lstm(8), params["body"], embedded)
  want = hs @ params["out"]["w"] + params["out"]["b"]
  np.testing.assert_allclose(logits, want, atol=1e-5)
  np.testing.assert_allclose(carry.h, want_carry.h, atol=1e-6)
  assert logits.shape == (3, 7, 11)


def test_carry_continues_across_chunks():
  model = _model()
  params = model.init(jax.random.PRNGKey(0))
  tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 12), 0, 11)
  whole, _ = model.apply(params, tokens)
  first, carry = model.apply(params, tokens[:, :5])
  second, _ = model.apply(params, tokens[:, 5:], carry)
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-5)


def test_cross_entropy_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 4, 6)).astype(np.float32)
  targets = rng.integers(0, 6, size=(2, 4))
  mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
  total, count = cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
  np.testing.assert_allclose(total, (nll * mask).sum(), rtol=1e-5)
  assert count == 7


def test_generate_at_low_temperature_is_greedy_decoding():
  model = _model()
  params = model.init(jax.random.PRNGKey(3))
  prime = jnp.array([[1, 2, 3], [4, 5, 6]])
  sampled = generate(model, params, prime, 6, jax.random.PRNGKey(0), temperature=1e-4)
  tokens = np.asarray(prime)
  for _ in range(6):  # greedy decoding by re-reading the whole prefix each time
    logits, _ = model.apply(params, jnp.asarray(tokens))
    tokens = np.concatenate([tokens, np.argmax(logits[:, -1], -1)[:, None]], 1)
  np.testing.assert_array_equal(sampled, tokens[:, 3:])


def test_generate_samples_from_the_distribution():
  model = language_model(3, gru(4), embed_size=2)
  params = model.init(jax.random.PRNGKey(0))
  # Zero the output weights: every step's distribution is softmax(b).
  params["out"]["w"] = jnp.zeros_like(params["out"]["w"])
  params["out"]["b"] = jnp.log(jnp.array([0.7, 0.2, 0.1]))
  sampled = generate(model, params, jnp.zeros((400, 1), jnp.int32), 25, jax.random.PRNGKey(1))
  freq = np.bincount(np.asarray(sampled).ravel(), minlength=3) / sampled.size
  np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.02)


def test_errors():
  model = _model()
  params = model.init(jax.random.PRNGKey(0))
  with pytest.raises(TypeError, match="tokens must be integer ids"):
    model.apply(params, jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match="temperature must be > 0"):
    generate(model, params, jnp.zeros((1, 1), jnp.int32), 3, jax.random.PRNGKey(0), temperature=0.0)
  with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
    language_model(0, gru(3))


def test_generate_accepts_host_params():
  # Parameters fetched with jax.device_get are numpy arrays.
  model = _model()
  params = jax.device_get(model.init(jax.random.PRNGKey(0)))
  sampled = generate(model, params, jnp.array([[1, 2]]), 4, jax.random.PRNGKey(0))
  assert sampled.shape == (1, 4)


def test_tied_output_layer_is_the_embedding():
  model = language_model(11, lstm(5), embed_size=5, tied=True)
  params = model.init(jax.random.PRNGKey(0))
  assert set(params["out"]) == {"b"}
  tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 6), 0, 11)
  logits, _ = model.apply(params, tokens)
  embedded = np.asarray(params["embed"])[np.asarray(tokens)]
  _, hs = unroll(lstm(5), params["body"], embedded)
  np.testing.assert_allclose(logits, hs @ np.asarray(params["embed"]).T + params["out"]["b"],
                             atol=1e-5)
  grads = jax.grad(lambda p: model.apply(p, tokens)[0].sum())(params)
  assert np.abs(grads["embed"]).sum() > 0
  with pytest.raises(ValueError, match="embed_size"):
    language_model(11, lstm(6), embed_size=5, tied=True)


def test_tcn_body_streams_across_chunks():
  from seqjax.tcn import tcn
  model = language_model(11, tcn([6, 6], kernel_size=3), embed_size=4)
  params = model.init(jax.random.PRNGKey(0))
  tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 12), 0, 11)
  whole, _ = model.apply(params, tokens)
  first, carry = model.apply(params, tokens[:, :5], model.initial_carry(params, (2,)))
  second, _ = model.apply(params, tokens[:, 5:], carry)
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-5)
