"""Models (sequence and language models, sampling) against hand-built references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import heads, layers
from seqjax.cells import gru, lstm
from seqjax.models import check_token_ids, generate, language_model, model, sequence_model
from seqjax.scan import unroll


def _model():
  return language_model(11, layers.stacked(gru(8), 2), embed_size=5)


def test_apply_equals_embedding_unroll_and_softmax_layer():
  model = language_model(11, lstm(8), embed_size=5)
  params = model.init(jax.random.PRNGKey(0))
  tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 7), 0, 11)
  carry, logits = model.apply(params, tokens)
  embedded = np.asarray(params["embed"])[np.asarray(tokens)]
  want_carry, hs = unroll(lstm(8), params["body"], embedded)
  want = hs @ params["head"]["w"] + params["head"]["b"]
  np.testing.assert_allclose(logits, want, atol=1e-5)
  np.testing.assert_allclose(carry.h, want_carry.h, atol=1e-6)
  assert logits.shape == (3, 7, 11)


def test_carry_continues_across_chunks():
  model = _model()
  params = model.init(jax.random.PRNGKey(0))
  tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 12), 0, 11)
  _, whole = model.apply(params, tokens)
  carry, first = model.apply(params, tokens[:, :5])
  _, second = model.apply(params, tokens[:, 5:], carry)
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-5)


def test_generate_at_low_temperature_is_greedy_decoding():
  model = _model()
  params = model.init(jax.random.PRNGKey(3))
  prime = jnp.array([[1, 2, 3], [4, 5, 6]])
  sampled = generate(model, params, prime, 6, jax.random.PRNGKey(0), temperature=1e-4)
  tokens = np.asarray(prime)
  for _ in range(6):  # greedy decoding by re-reading the whole prefix each time
    _, logits = model.apply(params, jnp.asarray(tokens))
    tokens = np.concatenate([tokens, np.argmax(logits[:, -1], -1)[:, None]], 1)
  np.testing.assert_array_equal(sampled, tokens[:, 3:])


def test_generate_samples_from_the_distribution():
  model = language_model(3, gru(4), embed_size=2)
  params = model.init(jax.random.PRNGKey(0))
  # Zero the output weights: every step's distribution is softmax(b).
  params["head"]["w"] = jnp.zeros_like(params["head"]["w"])
  params["head"]["b"] = jnp.log(jnp.array([0.7, 0.2, 0.1]))
  sampled = generate(model, params, jnp.zeros((400, 1), jnp.int32), 25, jax.random.PRNGKey(1))
  freq = np.bincount(np.asarray(sampled).ravel(), minlength=3) / sampled.size
  np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.02)


def test_errors():
  model = _model()
  params = model.init(jax.random.PRNGKey(0))
  with pytest.raises(TypeError, match="inputs must be integer token ids"):
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
  assert set(params["head"]) == {"b"}
  tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 6), 0, 11)
  _, logits = model.apply(params, tokens)
  embedded = np.asarray(params["embed"])[np.asarray(tokens)]
  _, hs = unroll(lstm(5), params["body"], embedded)
  np.testing.assert_allclose(logits, hs @ np.asarray(params["embed"]).T + params["head"]["b"],
                             atol=1e-5)
  grads = jax.grad(lambda p: model.apply(p, tokens)[1].sum())(params)
  assert np.abs(grads["embed"]).sum() > 0
  with pytest.raises(ValueError, match="embed_size"):
    language_model(11, lstm(6), embed_size=5, tied=True)


def test_tcn_body_streams_across_chunks():
  from seqjax.tcn import tcn
  model = language_model(11, tcn([6, 6], kernel_size=3), embed_size=4)
  params = model.init(jax.random.PRNGKey(0))
  tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 12), 0, 11)
  _, whole = model.apply(params, tokens)
  carry, first = model.apply(params, tokens[:, :5], model.initial_carry(params, (2,)))
  _, second = model.apply(params, tokens[:, 5:], carry)
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-5)


# Sequence models: the same record with a linear head on features or one-hot ids.


def test_sequence_model_last_readout_equals_the_unpadded_sequences():
  model_ = sequence_model(gru(6), 2, input_size=3, readout="last")
  params = model_.init(jax.random.PRNGKey(0))
  assert set(params) == {"body", "head"} and params["head"]["w"].shape == (6, 2)
  xs = jax.random.normal(jax.random.PRNGKey(1), (2, 7, 3))
  lengths = [4, 7]
  mask = np.arange(7)[None, :] < np.array(lengths)[:, None]
  _, out = model_.apply(params, xs, mask=mask)
  for row, length in enumerate(lengths):
    _, hs = unroll(gru(6), params["body"], xs[row, :length])
    want = hs[-1] @ params["head"]["w"] + params["head"]["b"]
    np.testing.assert_allclose(out[row], want, atol=1e-5)
  _, unmasked = model_.apply(params, xs)
  np.testing.assert_allclose(unmasked[1], out[1], atol=1e-6)


def test_sequence_model_one_hot_tokens_equal_float_one_hot_inputs():
  tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 5), 0, 4)
  on_ids = sequence_model(lstm(5), 4, num_tokens=4)
  on_floats = sequence_model(lstm(5), 4, input_size=4)
  params = on_ids.init(jax.random.PRNGKey(0))
  _, want = on_floats.apply(params, jax.nn.one_hot(tokens, 4))
  _, got = on_ids.apply(params, tokens)
  assert got.shape == (3, 5, 4)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_model_errors():
  with pytest.raises(ValueError, match="exactly one of input_size"):
    sequence_model(gru(3), 2)
  with pytest.raises(ValueError, match="exactly one of input_size"):
    sequence_model(gru(3), 2, input_size=2, num_tokens=3)
  with pytest.raises(ValueError, match="readout must be one of"):
    sequence_model(gru(3), 2, input_size=2, readout="first")
  with pytest.raises(TypeError, match="body must be a seqjax Cell or Layer"):
    sequence_model(lambda x: x, 2, input_size=2)
  with pytest.raises(ValueError, match="embed_size needs num_tokens"):
    model(gru(3), heads.linear(2), input_size=2, embed_size=4)
  with pytest.raises(ValueError, match="head's output size"):
    model(gru(4), heads.linear(5, tied=True), num_tokens=6, embed_size=4, tied=True)
  features = sequence_model(gru(3), 2, input_size=2)
  with pytest.raises(TypeError, match="inputs must be a floating-point array"):
    features.apply(features.init(jax.random.PRNGKey(0)), jnp.zeros((1, 3, 2), jnp.int32))
  with pytest.raises(ValueError, match="generate needs a model whose inputs are tokens"):
    generate(features, features.init(jax.random.PRNGKey(0)), jnp.zeros((1, 1), jnp.int32), 2,
             jax.random.PRNGKey(0))


# Token ids outside [0, V): raised where concrete, NaN where traced (issue 14, 4.1).


@pytest.mark.parametrize("bad", [11, 12, -1])
def test_concrete_out_of_range_ids_raise_one_line(bad):
  lm = _model()
  params = lm.init(jax.random.PRNGKey(0))
  tokens = np.array([[1, 2, 3], [4, bad, 6]])
  for ids in (tokens, jnp.asarray(tokens)):
    with pytest.raises(ValueError) as info:
      lm.apply(params, ids)
    message = str(info.value)
    assert message == f"tokens must be token ids in [0, 11), got {bad} at index (1, 1)"
    assert "\n" not in message
  with pytest.raises(ValueError, match=rf"prime must be token ids in \[0, 11\), got {bad}"):
    generate(lm, params, tokens, 3, jax.random.PRNGKey(0))
  one_hot = sequence_model(gru(4), 2, num_tokens=11)
  with pytest.raises(ValueError, match=rf"tokens must be token ids in \[0, 11\), got {bad}"):
    one_hot.apply(one_hot.init(jax.random.PRNGKey(0)), tokens)


@pytest.mark.parametrize("bad", [11, -1])
def test_traced_out_of_range_ids_give_nan_from_that_step_on(bad):
  lm = _model()
  params = lm.init(jax.random.PRNGKey(0))
  tokens = jnp.array([[1, 2, 3, 4], [5, 6, bad, 7]])
  _, logits = jax.jit(lm.apply)(params, tokens)
  _, good = lm.apply(params, jnp.array([[1, 2, 3, 4], [5, 6, 0, 7]]))
  # Row 0 and the steps before the bad id are untouched; from it on, NaN
  # (-1 does not silently read the last embedding row).
  np.testing.assert_allclose(logits[0], good[0], atol=1e-6)
  np.testing.assert_allclose(logits[1, :2], good[1, :2], atol=1e-6)
  assert np.all(np.isnan(logits[1, 2:]))
  one_hot = sequence_model(gru(4), 2, num_tokens=11)
  _, outputs = jax.jit(one_hot.apply)(one_hot.init(jax.random.PRNGKey(0)), tokens)
  assert np.all(np.isnan(outputs[1, 2:])) and np.all(np.isfinite(outputs[0]))


def test_padded_steps_may_hold_any_id():
  lm = _model()
  params = lm.init(jax.random.PRNGKey(0))
  mask = np.array([[True, True, True], [True, True, False]])
  padded = np.array([[1, 2, 3], [4, 5, -1]])
  zeros = np.array([[1, 2, 3], [4, 5, 0]])
  _, want = lm.apply(params, zeros, mask=mask)
  for apply in (lm.apply, jax.jit(lm.apply)):
    _, got = apply(params, padded, mask=mask)
    np.testing.assert_allclose(got[mask], want[mask], atol=1e-6)
  grads = jax.grad(lambda p: jnp.sum(lm.apply(p, padded, mask=mask)[1][mask]))(params)
  want_grads = jax.grad(lambda p: jnp.sum(lm.apply(p, zeros, mask=mask)[1][mask]))(params)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
                         grads, want_grads)


def test_check_token_ids():
  check_token_ids(np.array([0, 10]), 11)
  check_token_ids(np.array([0, 11]), 11, mask=np.array([True, False]))
  with pytest.raises(ValueError, match=r"documents must be token ids in \[0, 5\), got 7"):
    check_token_ids([1, 7], 5, "documents")
  with pytest.raises(TypeError, match="integer token ids"):
    check_token_ids(np.array([0.5]), 5)
  jax.jit(lambda ids: check_token_ids(ids, 5) or ids)(jnp.array([9]))  # traced: no check
