"""Tests for seqjax.classifiers: bag of embeddings and recurrent text classifiers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax import classifiers
from seqjax.cells import gru, lstm
from seqjax.train import optim


def _relu(x):
  return np.maximum(x, 0)


def test_bag_of_embeddings_matches_numpy():
  model = classifiers.bag_of_embeddings(11, 3, embed_size=4, hidden_sizes=(5, 6))
  params = model.init(jax.random.key(0))
  ids = np.array([[1, 2, 3, 0], [4, 4, 10, 7]])
  mask = np.array([[True, True, True, False], [True, True, True, True]])
  _, logits = model.apply(params, ids, mask=mask)
  p = jax.tree_util.tree_map(np.asarray, params)
  expected = []
  for row, m in zip(ids, mask):
    v = p["embed"][row[m]].mean(0)
    v = _relu(v @ p["hidden_0"]["w"] + p["hidden_0"]["b"])
    v = _relu(v @ p["hidden_1"]["w"] + p["hidden_1"]["b"])
    expected.append(v @ p["head"]["w"] + p["head"]["b"])
  np.testing.assert_allclose(logits, np.array(expected), rtol=1e-5, atol=1e-6)


def test_bag_of_embeddings_pads_with_any_id():
  model = classifiers.bag_of_embeddings(9, 2, embed_size=3, hidden_sizes=(4,))
  params = model.init(jax.random.key(1))
  docs = [[1, 2, 3], [5], [8, 8, 7, 6, 1]]
  for pad in (0, 123, -7):
    ids = np.full((3, 5), pad)
    mask = np.zeros((3, 5), bool)
    for i, d in enumerate(docs):
      ids[i, :len(d)] = d
      mask[i, :len(d)] = True
    _, batched = model.apply(params, ids, mask=mask)
    for i, d in enumerate(docs):
      _, alone = model.apply(params, np.array([d]))
      np.testing.assert_allclose(batched[i], alone[0], rtol=1e-6, atol=1e-6)


def test_frozen_pretrained_embedding_never_changes_under_training(optax_promotion):
  table = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
  model = classifiers.bag_of_embeddings(7, 2, embedding=table, freeze_embedding=True)
  params = model.init(jax.random.key(0))
  np.testing.assert_array_equal(params[seqjax.FROZEN]["embed"], table)
  optimizer = optim.make_optimizer({"name": "adam", "learning_rate": 0.1}, 10)
  state = optimizer.init(params)
  ids, labels = np.array([[1, 2], [3, 4]]), np.array([0, 1])

  def loss(params):
    _, logits = model.apply(params, ids)
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(2), labels])

  for _ in range(3):
    grads = jax.grad(loss)(params)
    updates, state = optimizer.update(grads, state, params)
    params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
  np.testing.assert_array_equal(params[seqjax.FROZEN]["embed"], table)
  assert not np.allclose(params["head"]["w"], model.init(jax.random.key(0))["head"]["w"])
  trainable = classifiers.bag_of_embeddings(7, 2, embedding=table)
  np.testing.assert_array_equal(trainable.init(jax.random.key(0))["embed"], table)


def test_bad_arguments_name_themselves():
  with pytest.raises(ValueError, match="embedding must have shape"):
    classifiers.bag_of_embeddings(5, 2, embedding=np.zeros((4, 3)))
  with pytest.raises(ValueError, match="embed_size"):
    classifiers.bag_of_embeddings(5, 2, embed_size=4, embedding=np.zeros((5, 3)))
  with pytest.raises(ValueError, match="freeze_embedding"):
    classifiers.bag_of_embeddings(5, 2, embed_size=4, freeze_embedding=True)
  with pytest.raises(ValueError, match="dropout"):
    classifiers.recurrent_classifier(5, 2, gru(3), embed_size=4, dropout=1.0)
  with pytest.raises(ValueError, match="readout"):
    classifiers.recurrent_classifier(5, 2, gru(3), embed_size=4, readout="first")
  model = classifiers.bag_of_embeddings(5, 2, embed_size=4)
  with pytest.raises(TypeError, match="inputs"):
    model.apply(model.init(jax.random.key(0)), np.zeros((1, 3)))
  with pytest.raises(ValueError, match="ids"):
    model.apply(model.init(jax.random.key(0)), np.array([[1, 5]]))


@pytest.mark.parametrize("cell,readout", [(gru, "last"), (lstm, "max"), (gru, "mean")])
def test_bidirectional_classifier_padded_batch_equals_single_runs(cell, readout):
  model = classifiers.recurrent_classifier(13, 3, cell(4), embed_size=5, num_layers=2,
                                           readout=readout)
  params = model.init(jax.random.key(2))
  docs = [[1, 2, 3, 4, 5, 6], [7], [12, 11, 10]]
  ids = np.full((3, 6), 99)  # out of range: padding may hold anything
  mask = np.zeros((3, 6), bool)
  for i, d in enumerate(docs):
    ids[i, :len(d)] = d
    mask[i, :len(d)] = True
  run = jax.jit(lambda p, x, m: model.apply(p, x, mask=m)[1])
  batched = run(params, ids, mask)

  def loss_batched(p):
    return jnp.sum(jnp.sin(run(p, ids, mask)))

  grads = jax.grad(loss_batched)(params)
  total = jax.tree_util.tree_map(jnp.zeros_like, params)
  alone = jax.jit(lambda p, x: model.apply(p, x)[1])  # compiled once per length
  grad_alone = jax.jit(jax.grad(lambda p, x: jnp.sum(jnp.sin(alone(p, x)))))
  for i, d in enumerate(docs):
    np.testing.assert_allclose(batched[i], alone(params, np.array([d]))[0],
                               rtol=2e-5, atol=2e-6)
    total = jax.tree_util.tree_map(jnp.add, total, grad_alone(params, np.array([d])))
  for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(total)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_last_readout_is_each_directions_final_state():
  cell = gru(4)
  model = classifiers.recurrent_classifier(9, 2, cell, embed_size=3, num_layers=1)
  params = model.init(jax.random.key(3))
  doc = np.array([3, 1, 4, 1, 5])
  _, logits = model.apply(params, doc[None])
  xs = jnp.asarray(params["embed"])[doc]
  layer = params["body"]["layer_0"]
  _, ys_f = seqjax.unroll(cell, layer["forward"], xs)
  _, ys_b = seqjax.unroll(cell, layer["backward"], xs[::-1])
  v = jnp.concatenate([ys_f[-1], ys_b[-1]])
  np.testing.assert_allclose(logits[0], v @ params["head"]["w"] + params["head"]["b"],
                             rtol=1e-5, atol=1e-6)


def test_dropout_needs_key_and_is_off_in_evaluation():
  model = classifiers.recurrent_classifier(9, 2, lstm(4), embed_size=3, dropout=0.5,
                                           recurrent_dropout=0.2)
  params = model.init(jax.random.key(0))
  ids = np.array([[1, 2, 3]])
  with pytest.raises(ValueError, match="key"):
    model.apply(params, ids, training=True)
  a = model.apply(params, ids, key=jax.random.key(1), training=True)[1]
  b = model.apply(params, ids, key=jax.random.key(2), training=True)[1]
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model.apply(params, ids)[1],
                                model.apply(params, ids, key=jax.random.key(1))[1])
