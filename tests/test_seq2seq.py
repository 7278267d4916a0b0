"""Tests for seqjax.seq2seq: the training scan against a loop of steps, padding, sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from seqjax import attention, cells, layers, losses, seq2seq

V_S, V_T = 9, 10


def _model(kind="additive", **kwargs):
  encoder = layers.stacked([layers.bidirectional(cells.gru(4)), cells.lstm(6)])
  options = dict(embed_size=5, attention=attention.by_name(kind, 7))
  options.update(kwargs)
  return seq2seq.encoder_decoder(V_S, V_T, encoder, [cells.lstm(6), cells.gru(6)], **options)


def _batch():
  source = np.array([[3, 4, 5, 2, 0, 0], [6, 7, 8, 3, 4, 2]], np.int32)
  target = np.array([[5, 6, 7, 2], [8, 2, 0, 0]], np.int32)
  return source, source != 0, target, target != 0


def _loop(model, params, source, mask, target_in):
  """The decoder as a Python loop of ``model.step`` (each call jitted: one program per
  function, not one per operation)."""
  encoded = jax.jit(lambda p: model.encode(p, source, mask))(params)  # ids stay concrete
  step = jax.jit(model.step)
  state, logits, weights = encoded.state, [], []
  for t in range(target_in.shape[1]):
    state, out, w = step(params, encoded.memory, state, target_in[:, t])
    logits.append(out)
    weights.append(w)
  return jnp.stack(logits, 1), (None if weights[0] is None else jnp.stack(weights, 1))


@pytest.mark.parametrize("kind", ["additive", "dot", "general", None])
def test_training_scan_equals_loop_of_steps(kind):
  model = _model(kind, residual_from=1)
  params = model.init(jax.random.key(0))
  source, mask, target, _ = _batch()
  target_in = seq2seq.shift_right(target, model.bos_id)
  logits, weights = jax.jit(lambda p: model.apply(p, source, target_in, source_mask=mask))(
      params)
  ref_logits, ref_weights = _loop(model, params, source, mask, target_in)
  np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)
  assert logits.shape == (2, 4, V_T)
  if kind is None:
    assert weights is None
  else:
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(weights)[0, :, 4:] == 0.0)


def test_padded_batch_equals_each_pair_alone():
  model = _model(bridge="final")
  params = model.init(jax.random.key(1))
  source, mask, target, target_mask = _batch()
  garbage_source = np.where(mask, source, 8)
  garbage_target = np.where(target_mask, target, 7)

  @jax.jit
  def batched(p):
    return (seq2seq.sequence_loss(model, p, garbage_source, garbage_target,
                                  source_mask=mask, target_mask=target_mask),
            model.apply(p, garbage_source, seq2seq.shift_right(garbage_target, model.bos_id),
                        source_mask=mask, target_mask=target_mask))

  (total, count), (logits, weights) = batched(params)
  expected_total = 0.0
  for i in range(2):
    s, u = int(mask[i].sum()), int(target_mask[i].sum())
    alone_source, alone_target = source[i:i + 1, :s], target[i:i + 1, :u]

    @jax.jit
    def alone(p):
      return (seq2seq.sequence_loss(model, p, alone_source, alone_target),  # noqa: B023
              model.apply(p, alone_source, seq2seq.shift_right(alone_target, 1)))  # noqa: B023

    (alone_total, alone_count), (alone_logits, alone_weights) = alone(params)
    assert float(alone_count) == u
    expected_total += float(alone_total)
    np.testing.assert_allclose(logits[i, :u], alone_logits[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights[i, :u, :s], alone_weights[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(float(total), expected_total, rtol=1e-5)
  assert float(count) == target_mask.sum()


def test_padding_values_change_no_gradient():
  model = _model(bridge="mean", tie_embeddings=True, attention_vector_size=5)
  params = model.init(jax.random.key(2))
  source, mask, target, target_mask = _batch()

  def loss(p, padded_source, padded_target):
    total, count = seq2seq.sequence_loss(model, p, padded_source, padded_target,
                                         source_mask=mask, target_mask=target_mask)
    return total / count

  grad = jax.jit(jax.grad(loss))  # one program for both paddings

  def grads(pad_source, pad_target):
    padded_target = np.where(target_mask, target, pad_target)
    # The check sequence_loss makes on concrete targets (skipped on jit's traced
    # ones) accepts any padding.
    seq2seq.check_targets(padded_target, target_mask, model.eos_id)
    return grad(params, np.where(mask, source, pad_source), padded_target)

  a, b = grads(0, 0), grads(8, 9)
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7),
                         a, b)


def test_gradient_matches_finite_differences():
  model = _model("general", bridge="final")
  params = model.init(jax.random.key(3))
  source, mask, target, target_mask = _batch()

  def loss(p):
    total, count = seq2seq.sequence_loss(model, p, source, target, source_mask=mask,
                                         target_mask=target_mask)
    return total / count

  with jax.enable_x64(True):
    p64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), params)
    grad = jax.jit(jax.grad(loss))(p64)
    loss = jax.jit(loss)  # compiled once, for both perturbed points
    rng = np.random.default_rng(0)
    direction = jax.tree_util.tree_map(lambda x: jnp.asarray(rng.normal(size=x.shape)), p64)
    eps = 1e-5
    plus = jax.tree_util.tree_map(lambda x, d: x + eps * d, p64, direction)
    minus = jax.tree_util.tree_map(lambda x, d: x - eps * d, p64, direction)
    numeric = (loss(plus) - loss(minus)) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree_util.tree_leaves(grad),
                                                  jax.tree_util.tree_leaves(direction)))
    np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-6)


def test_scheduled_sampling_limits():
  model = _model(dropout=0.3)
  params = model.init(jax.random.key(4))
  source, mask, target, target_mask = _batch()
  target_in = seq2seq.shift_right(target, model.bos_id)
  key = jax.random.key(5)
  # Jitted (one program per option set, not one per operation), the token ids
  # closed over: concrete, so that apply still checks them.
  apply = jax.jit(lambda p, **options: model.apply(p, source, target_in, source_mask=mask,
                                                   **options),
                  static_argnames=("training", "sampling"))
  forced, _ = apply(params, target_mask=target_mask, key=key, training=True)
  gold, _ = apply(params, target_mask=target_mask, key=key, training=True,
                  teacher_prob=jnp.ones(2))
  np.testing.assert_allclose(gold, forced, rtol=1e-6, atol=1e-6)  # dropout masks too
  # Probability 0: free running, each input the argmax of the previous logits.
  free, _ = apply(params, key=key, teacher_prob=jnp.zeros(2))
  fed = np.concatenate([np.full((2, 1), model.bos_id), np.argmax(free, -1)[:, :-1]], 1)
  loop_logits, _ = _loop(model, params, source, mask, jnp.asarray(fed, jnp.int32))
  np.testing.assert_allclose(free, loop_logits, rtol=1e-5, atol=1e-5)
  # In between, the coin mixes gold and own tokens: logits differ from both.
  half, _ = apply(params, key=key, teacher_prob=0.5 * jnp.ones(2), sampling="sample")
  assert half.shape == forced.shape and np.all(np.isfinite(np.asarray(half)))


def test_teacher_forcing_schedule_formulas():
  i = np.arange(0, 5000, 250)
  s = seq2seq.teacher_forcing_schedule
  np.testing.assert_allclose(s(i, "linear", k=1.0, c=1e-4, minimum=0.2),
                             np.maximum(0.2, 1 - 1e-4 * i), rtol=1e-6)
  np.testing.assert_allclose(s(i, "exponential", k=0.999), 0.999 ** i, rtol=1e-4)
  np.testing.assert_allclose(s(i, "inverse_sigmoid", k=500.0), 500 / (500 + np.exp(i / 500)),
                             rtol=1e-5)
  assert float(s(10, "constant", k=0.75)) == 0.75
  with pytest.raises(ValueError, match="k must be"):
    s(1, "exponential", k=1.5)
  with pytest.raises(ValueError, match="decay"):
    s(1, "cosine", k=1.0)


def test_label_smoothing_matches_optax():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
  targets = rng.integers(0, 5, size=(2, 3))
  mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
  total, count = losses.cross_entropy(logits, targets, mask, label_smoothing=0.1)
  labels = optax.smooth_labels(jax.nn.one_hot(targets, 5), 0.1)
  ref = optax.softmax_cross_entropy(logits, labels)
  np.testing.assert_allclose(float(total), float(np.sum(np.asarray(ref)[mask])), rtol=1e-5)
  assert float(count) == 5
  with pytest.raises(ValueError, match="label_smoothing"):
    losses.cross_entropy(logits, targets, label_smoothing=1.0)


def test_reverse_valid_and_reversed_source():
  ids = jnp.array([[1, 2, 3, 0], [4, 5, 0, 0]])
  mask = ids != 0
  np.testing.assert_array_equal(seq2seq.reverse_valid(ids, mask), [[3, 2, 1, 0], [5, 4, 0, 0]])
  # A model reading reversed sources equals one fed reversed sources, except
  # that its attention weights come back in source order.
  plain = _model(reverse_source=False)
  rev = _model(reverse_source=True)
  params = plain.init(jax.random.key(6))
  source, mask, target, _ = _batch()
  target_in = seq2seq.shift_right(target, 1)
  a, wa = rev.apply(params, source, target_in, source_mask=mask)
  b, wb = plain.apply(params, seq2seq.reverse_valid(source, mask), target_in, source_mask=mask)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  expected = np.stack([np.asarray(seq2seq.reverse_valid(wb[:, t], mask)) for t in range(4)], 1)
  np.testing.assert_allclose(wa, expected, rtol=1e-5, atol=1e-6)


def test_residual_layer_adds_input():
  layer = layers.residual(cells.gru(3))
  params = layer.init(jax.random.key(0), 3)
  xs = jnp.ones((2, 4, 3))
  mask = jnp.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
  _, ys = layer.apply(params, xs, mask=mask)
  _, inner = layers.recurrent(cells.gru(3)).apply(params, xs, mask=mask)
  np.testing.assert_allclose(ys[1], xs[1] + inner[1], rtol=1e-6)
  np.testing.assert_allclose(ys[0, 3], xs[0, 3])
  with pytest.raises(ValueError, match="input_size must equal"):
    layer.init(jax.random.key(0), 4)


def test_bad_arguments():
  encoder = cells.gru(4)
  with pytest.raises(ValueError, match="bridge"):
    seq2seq.encoder_decoder(5, 6, encoder, cells.gru(4), embed_size=3, bridge="last")
  with pytest.raises(ValueError, match="tie_embeddings"):
    seq2seq.encoder_decoder(5, 6, encoder, cells.gru(4), embed_size=3, tie_embeddings=True)
  with pytest.raises(ValueError, match="eos_id"):
    seq2seq.encoder_decoder(5, 6, encoder, cells.gru(4), embed_size=3, eos_id=6)
  with pytest.raises(ValueError, match="residual_from"):
    seq2seq.encoder_decoder(5, 6, encoder, [cells.gru(4), cells.gru(5)], embed_size=3,
                            residual_from=1)
  with pytest.raises(TypeError, match="decoder"):
    seq2seq.encoder_decoder(5, 6, encoder, [], embed_size=3)
  model = seq2seq.encoder_decoder(5, 6, encoder, cells.gru(4), embed_size=3)
  params = model.init(jax.random.key(0))
  with pytest.raises(ValueError, match="S > 0"):
    model.encode(params, jnp.zeros((2, 0), jnp.int32))
  with pytest.raises(ValueError, match="source_mask"):
    model.encode(params, jnp.zeros((2, 3), jnp.int32), jnp.ones((2, 2), bool))
  with pytest.raises(ValueError, match="key is required"):
    model.apply(params, jnp.zeros((2, 3), jnp.int32), jnp.zeros((2, 2), jnp.int32),
                teacher_prob=jnp.zeros(2))
  with pytest.raises(ValueError, match="ids"):
    model.encode(params, jnp.array([[1, 9]]))  # unknown source id


def test_targets_without_eos_are_refused():
  model = _model()
  params = model.init(jax.random.key(0))
  source, mask, target, target_mask = _batch()
  no_eos = target.copy()
  no_eos[1, 1] = 5  # the second row's last real token
  with pytest.raises(ValueError, match=r"target rows must end with eos_id=2.*row \(1,\)"):
    seq2seq.sequence_loss(model, params, source, no_eos, source_mask=mask,
                          target_mask=target_mask)
  seq2seq.check_targets(target, target_mask, 2)  # well-formed: no error
  seq2seq.check_targets(np.zeros((1, 3), np.int32), np.zeros((1, 3), bool), 2)  # empty row
