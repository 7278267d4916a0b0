"""Tests for seqjax.embeddings: lookup, masked pooling, hashed n-grams, pretrained tables."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import embeddings

TABLE = np.arange(1, 1 + 6 * 3, dtype=np.float32).reshape(6, 3)


def test_lookup_zeroes_padding_and_masked_steps():
  ids = np.array([[1, 0, 4], [5, 2, 0]])
  out = np.asarray(embeddings.lookup(TABLE, ids, padding_id=0))
  np.testing.assert_array_equal(out[0], [TABLE[1], np.zeros(3), TABLE[4]])
  np.testing.assert_array_equal(out[1], [TABLE[5], TABLE[2], np.zeros(3)])
  mask = np.array([[True, True, False], [True, False, False]])
  # Masked positions may hold any id, even one outside the table.
  ids_garbage = np.where(mask, ids, 99)
  out = np.asarray(embeddings.lookup(TABLE, ids_garbage, mask=mask))
  np.testing.assert_array_equal(out[0], [TABLE[1], TABLE[0], np.zeros(3)])
  np.testing.assert_array_equal(out[1, 1:], np.zeros((2, 3)))


def test_padding_row_gets_no_gradient():
  ids = np.array([[3, 0, 0], [1, 3, 0]])

  def loss(table):
    return jnp.sum(embeddings.lookup(table, ids, padding_id=0) ** 2)

  grad = np.asarray(jax.grad(loss)(jnp.asarray(TABLE)))
  np.testing.assert_array_equal(grad[0], 0.0)
  np.testing.assert_allclose(grad[3], 2 * 2 * TABLE[3])
  np.testing.assert_allclose(grad[1], 2 * TABLE[1])


def test_out_of_range_ids_raise_when_concrete_and_are_nan_when_traced():
  with pytest.raises(ValueError, match="ids"):
    embeddings.lookup(TABLE, np.array([[1, 6]]))
  with pytest.raises(ValueError, match="ids"):
    embeddings.lookup(TABLE, np.array([[-1, 2]]))
  out = jax.jit(embeddings.lookup)(TABLE, jnp.array([[1, 6]]))
  assert np.isfinite(out[0, 0]).all() and np.isnan(out[0, 1]).all()
  with pytest.raises(TypeError, match="ids"):
    embeddings.lookup(TABLE, np.array([[1.0]]))


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_masked_pooling_equals_pooling_of_unpadded_rows(mode):
  rng = np.random.default_rng(0)
  lengths = [3, 1, 5, 0]
  vectors = rng.normal(size=(4, 5, 2)).astype(np.float32)
  mask = np.arange(5)[None] < np.array(lengths)[:, None]
  # Padding holds anything, including inf and NaN.
  padded = np.where(mask[..., None], vectors, np.nan)
  padded[0, 4] = np.inf
  out = np.asarray(embeddings.pool(padded, mask, mode=mode))
  reduce = {"mean": np.mean, "sum": np.sum, "max": np.max}[mode]
  for row, length in enumerate(lengths):
    expected = reduce(vectors[row, :length], axis=0) if length else np.zeros(2)
    np.testing.assert_allclose(out[row], expected, rtol=1e-6)


def test_empty_document_pools_to_zeros_with_zero_gradient():
  vectors = jnp.ones((1, 3, 2))
  mask = jnp.zeros((1, 3), bool)
  for mode in embeddings.POOLINGS:
    np.testing.assert_array_equal(embeddings.pool(vectors, mask, mode=mode), 0.0)
    grad = jax.grad(lambda v: jnp.sum(embeddings.pool(v, mask, mode=mode)))(vectors)
    assert np.isfinite(grad).all() and not np.any(grad)


def test_pool_rejects_bad_arguments():
  with pytest.raises(ValueError, match="mode"):
    embeddings.pool(jnp.ones((2, 3, 4)), mode="median")
  with pytest.raises(ValueError, match="mask"):
    embeddings.pool(jnp.ones((2, 3, 4)), jnp.ones((2, 4), bool))


def _fasttext_hash(grams, num_buckets, offset):
  """fastText's Dictionary::addWordNgrams, with Python's unbounded ints mod 2^64."""
  h = grams[0]
  for w in grams[1:]:
    h = (h * 116049371 + w) % 2 ** 64
  return offset + h % num_buckets


@pytest.mark.parametrize("n", [2, 3])
def test_hashed_ngrams_follow_fasttexts_formula(n):
  rng = np.random.default_rng(1)
  vocab, buckets = 50_000, 1_000_003
  ids = rng.integers(0, vocab, size=(3, 7))
  lengths = [7, 4, 1]
  mask = np.arange(7)[None] < np.array(lengths)[:, None]
  out, out_mask = embeddings.hashed_ngrams(ids, mask, n=n, num_buckets=buckets, offset=vocab)
  assert out.shape == (3, 7 + 7 - n + 1) and out.dtype == np.int32
  np.testing.assert_array_equal(out[:, :7], ids)
  for row, length in enumerate(lengths):
    for i in range(7 - n + 1):
      real = i + n <= length
      assert out_mask[row, 7 + i] == real
      if real:
        gram = [int(w) for w in ids[row, i:i + n]]
        assert out[row, 7 + i] == _fasttext_hash(gram, buckets, vocab)
  assert (out[out_mask] >= 0).all() and (out[out_mask] < vocab + buckets).all()
  # A pure function of the ids: the same bigram hashes alike wherever it is.
  again, _ = embeddings.hashed_ngrams(ids[::-1], mask[::-1], n=n, num_buckets=buckets,
                                      offset=vocab)
  np.testing.assert_array_equal(again, out[::-1])


def test_hashed_ngrams_reject_bad_input():
  with pytest.raises(ValueError, match="n must be >= 2"):
    embeddings.hashed_ngrams(np.zeros((1, 3), int), n=1, num_buckets=5, offset=4)
  with pytest.raises(ValueError, match="ids must lie"):
    embeddings.hashed_ngrams(np.array([[1, 9]]), num_buckets=5, offset=4)
  with pytest.raises(ValueError, match="num_buckets"):
    embeddings.hashed_ngrams(np.array([[1, 2]]), num_buckets=0, offset=4)


def test_pretrained_table_rows_and_oov_policies():
  words = ["the", "cat", "sat"]
  vectors = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
  vocab = ["<pad>", "cat", "dog", "the"]
  table, found = embeddings.pretrained_table(vocab, words, vectors, oov="zeros")
  np.testing.assert_array_equal(found, [False, True, False, True])
  np.testing.assert_array_equal(table, [[0, 0], [3, 4], [0, 0], [1, 2]])
  table, _ = embeddings.pretrained_table(vocab, words, vectors, key=jax.random.key(0))
  np.testing.assert_array_equal(table[[1, 3]], vectors[[1, 0]])
  assert np.all(table[[0, 2]] != 0)
  with pytest.raises(ValueError, match="vectors must have shape"):
    embeddings.pretrained_table(vocab, words, vectors[:2], oov="zeros")
  with pytest.raises(ValueError, match="key"):
    embeddings.pretrained_table(vocab, words, vectors)
