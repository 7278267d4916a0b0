"""Tests for seqjax.decoding: greedy and beam search against loops and exhaustive search."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import attention, cells, decoding, seq2seq

EOS, BOS, PAD = 2, 1, 0


@functools.lru_cache(maxsize=None)
def _model(v_t=7, scale=3.0):
  model = seq2seq.encoder_decoder(8, v_t, cells.gru(5), cells.lstm(6), embed_size=4,
                                  attention=attention.additive(5))
  params = model.init(jax.random.key(0))
  # Sharper distributions than at initialisation, so that decoding choices matter.
  params["head"]["w"] = params["head"]["w"] * scale
  return model, params


# Jitted with the model static: compiled once per model, shape and option, where
# un-jitted calls would compile every operation separately (the model returned by
# _model is cached, so tests share these programs).
_encode = jax.jit(lambda model, *args: model.encode(*args), static_argnums=0)
_step = jax.jit(lambda model, *args: model.step(*args), static_argnums=0)
_apply = jax.jit(lambda model, params, source, target_in, mask:
                 model.apply(params, source, target_in, source_mask=mask), static_argnums=0)
_greedy = jax.jit(decoding.greedy, static_argnums=0, static_argnames=("max_length",))
_sample = jax.jit(decoding.sample, static_argnums=0,
                  static_argnames=("max_length", "temperature"))
_beam_search = jax.jit(decoding.beam_search, static_argnums=0,
                       static_argnames=("beam_size", "max_length", "alpha", "length_ratio"))


def _sources():
  source = np.array([[3, 4, 5, 6, 2], [7, 3, 2, 0, 0], [5, 2, 0, 0, 0]], np.int32)
  return source, source != 0


def _greedy_loop(model, params, source, mask, max_length):
  """One sentence at a time, one step at a time, in Python."""
  out = []
  for i in range(source.shape[0]):
    encoded = _encode(model, params, source[i:i + 1], mask[i:i + 1])
    state, token, tokens = encoded.state, BOS, []
    for t in range(max_length):
      state, logits, _ = _step(model, params, encoded.memory, state, jnp.array([token]))
      token = EOS if t == max_length - 1 else int(np.argmax(logits[0]))
      tokens.append(token)
      if token == EOS:
        break
    out.append(tokens)
  return out


def _log_prob(model, params, source, mask, tokens, max_length):
  """log P(tokens | source) by teacher forcing; a forced final EOS counts 0."""
  target = jnp.array([tokens])
  logits, _ = _apply(model, params, source, seq2seq.shift_right(target, BOS), mask)
  logp = np.asarray(jax.nn.log_softmax(logits[0], -1))
  terms = [logp[t, y] for t, y in enumerate(tokens)]
  if len(tokens) == max_length:
    terms[-1] = 0.0
  return float(np.sum(terms))


def test_greedy_equals_python_loop_and_scores():
  model, params = _model()
  source, mask = _sources()
  out = jax.jit(lambda p, s, m: decoding.greedy(model, p, s, m, max_length=6))(
      params, source, mask)
  expected = _greedy_loop(model, params, source, mask, 6)
  for i, tokens in enumerate(expected):
    n = len(tokens)
    assert int(out.lengths[i]) == n
    np.testing.assert_array_equal(out.tokens[i, :n], tokens)
    assert np.all(np.asarray(out.tokens[i, n:]) == PAD)
    np.testing.assert_allclose(float(out.log_probs[i]),
                               _log_prob(model, params, source[i:i + 1], mask[i:i + 1], tokens, 6),
                               rtol=1e-5, atol=1e-5)


def test_beam_width_one_equals_greedy():
  model, params = _model()
  source, mask = _sources()
  for max_length in (1, 3, 8):
    greedy = _greedy(model, params, source, mask, max_length=max_length)
    beams = _beam_search(model, params, source, mask, beam_size=1, max_length=max_length)
    np.testing.assert_array_equal(beams.tokens[:, 0], greedy.tokens)
    np.testing.assert_array_equal(beams.lengths[:, 0], greedy.lengths)
    np.testing.assert_allclose(beams.log_probs[:, 0], greedy.log_probs, rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_wide_beam_finds_the_exact_best_sequences(alpha):
  """V=4 (3 ids besides EOS), L=3: all 1 + 3 + 9 = 13 hypotheses, scored one by one."""
  model, params = _model(v_t=4, scale=2.0)
  source, mask = _sources()
  max_length = 3
  for i in range(2):
    s, m = source[i:i + 1], mask[i:i + 1]
    hypotheses = []
    for n in range(1, max_length + 1):
      for prefix in itertools.product([0, 1, 3], repeat=n - 1):  # every id but EOS
        tokens = list(prefix) + [EOS]
        logp = _log_prob(model, params, s, m, tokens, max_length)
        hypotheses.append((logp / float(decoding.length_penalty(n, alpha)), tokens, logp))
    hypotheses.sort(key=lambda h: -h[0])
    assert len(hypotheses) == 13
    beams = _beam_search(model, params, s, m, beam_size=13, max_length=max_length, alpha=alpha)
    for rank in range(5):
      score, tokens, logp = hypotheses[rank]
      n = int(beams.lengths[0, rank])
      assert list(np.asarray(beams.tokens[0, rank, :n])) == tokens, rank
      np.testing.assert_allclose(float(beams.scores[0, rank]), score, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(float(beams.log_probs[0, rank]), logp, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(np.asarray(beams.scores[0])) <= 1e-6)  # best first


def test_beam_never_worse_than_greedy_and_batched_equals_alone():
  model, params = _model()
  source, mask = _sources()
  run = jax.jit(lambda p, s, m: decoding.beam_search(model, p, s, m, beam_size=4,
                                                     max_length=7))
  beams = run(params, source, mask)
  greedy = _greedy(model, params, source, mask, max_length=7)
  assert np.all(np.asarray(beams.log_probs[:, 0]) >= np.asarray(greedy.log_probs) - 1e-5)
  for i in range(3):
    n = int(mask[i].sum())
    alone = run(params, source[i:i + 1, :n], mask[i:i + 1, :n])
    np.testing.assert_array_equal(alone.tokens[0], beams.tokens[i])
    np.testing.assert_allclose(alone.scores[0], beams.scores[i], rtol=1e-5)


def test_length_penalty_formula_and_length_ratio():
  np.testing.assert_allclose(decoding.length_penalty(np.arange(1, 6), 0.6),
                             ((5 + np.arange(1, 6)) / 6) ** 0.6, rtol=1e-6)
  assert float(decoding.length_penalty(9, 0.0)) == 1.0
  model, params = _model()
  source, mask = _sources()
  out = _beam_search(model, params, source, mask, beam_size=3, max_length=20,
                     length_ratio=(1.0, 1.0))
  limits = np.ceil(mask.sum(1) * 1.0 + 1.0)
  assert np.all(np.asarray(out.lengths) <= limits[:, None])
  assert np.all(np.asarray(out.lengths) >= 1)


def test_sampling_cold_equals_greedy_and_is_seeded():
  model, params = _model()
  source, mask = _sources()
  greedy = _greedy(model, params, source, mask, max_length=6)
  cold = _sample(model, params, source, mask, key=jax.random.key(0), max_length=6,
                 temperature=1e-4)
  np.testing.assert_array_equal(cold.tokens, greedy.tokens)
  a = _sample(model, params, source, mask, key=jax.random.key(1), max_length=6)
  b = _sample(model, params, source, mask, key=jax.random.key(1), max_length=6)
  np.testing.assert_array_equal(a.tokens, b.tokens)
  # Sampled sequences have the log-probability the model gives them.
  for i in range(3):
    n = int(a.lengths[i])
    np.testing.assert_allclose(
        float(a.log_probs[i]),
        _log_prob(model, params, source[i:i + 1], mask[i:i + 1], list(np.asarray(a.tokens[i, :n])),
                  6), rtol=1e-5, atol=1e-5)


def test_bad_arguments():
  model, params = _model()
  source, mask = _sources()
  with pytest.raises(ValueError, match="beam_size"):
    decoding.beam_search(model, params, source, mask, beam_size=0, max_length=4)
  with pytest.raises(ValueError, match="max_length"):
    decoding.greedy(model, params, source, mask, max_length=0)
  with pytest.raises(ValueError, match="S > 0"):
    decoding.greedy(model, params, source[:, :0], mask[:, :0], max_length=3)
  with pytest.raises(ValueError, match="source must have shape"):
    decoding.greedy(model, params, source[0], mask[0], max_length=3)
  with pytest.raises(ValueError, match="temperature"):
    decoding.sample(model, params, source, mask, key=jax.random.key(0), max_length=3,
                    temperature=0.0)
  with pytest.raises(TypeError, match="model"):
    decoding.greedy(params, params, source, mask, max_length=3)


def test_beam_search_without_attention_or_input_feeding():
  """The decoder state then has an empty (B*K, 0) feed that beams reorder too."""
  model = seq2seq.encoder_decoder(8, 7, cells.gru(5), cells.gru(6), embed_size=4,
                                  reverse_source=True)
  params = model.init(jax.random.key(1))
  source, mask = _sources()
  greedy = _greedy(model, params, source, mask, max_length=5)
  beams = _beam_search(model, params, source, mask, beam_size=1, max_length=5)
  np.testing.assert_array_equal(beams.tokens[:, 0], greedy.tokens)
  wide = _beam_search(model, params, source, mask, beam_size=3, max_length=5)
  assert np.all(np.asarray(wide.log_probs[:, 0]) >= np.asarray(greedy.log_probs) - 1e-5)
