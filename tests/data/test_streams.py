"""Tests for seqjax.data.streams.StreamBatches (truncated-BPTT batching)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax.data.streams import StreamBatches


def _documents(lengths, seed=0, vocab=50):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, vocab, n).astype(np.int64) for n in lengths]


def _reference(documents, batch_size, seq_len, drop_remainder=True):
  """Rows, starts and expected per-row pairs, computed directly from offsets."""
  stream = np.concatenate([d for d in documents if len(d)])
  starts = set(np.cumsum([0] + [len(d) for d in documents if len(d)])[:-1].tolist())
  length = len(stream) // batch_size
  pairs = length - 1
  chunks = pairs // seq_len if drop_remainder else -(-pairs // seq_len)
  return stream, starts, length, chunks


CASES = [
    # (document lengths, batch_size, seq_len)
    ([40, 7, 1, 0, 33, 19], 3, 5),
    ([100], 4, 7),
    ([12, 12, 12, 12], 4, 3),   # every row starts exactly at a document start
    ([5, 3, 2, 9, 1, 30, 8], 2, 4),
    ([64], 1, 63),              # one chunk per epoch
]


@pytest.mark.parametrize("lengths,batch_size,seq_len", CASES)
def test_epoch_reconstructs_the_stream(lengths, batch_size, seq_len):
  documents = _documents(lengths)
  batches = StreamBatches(documents, batch_size, seq_len)
  stream, starts, length, chunks = _reference(documents, batch_size, seq_len)
  assert batches.num_chunks == len(batches) == chunks
  assert batches.row_length == length and batches.num_tokens == len(stream)
  epoch = list(batches)
  assert len(epoch) == chunks
  for batch in epoch:
    assert set(batch) == {"inputs", "targets", "reset", "mask"}
    for key, dtype in (("inputs", np.int32), ("targets", np.int32),
                       ("reset", np.bool_), ("mask", np.bool_)):
      assert batch[key].shape == (batch_size, seq_len) and batch[key].dtype == dtype
  inputs = np.concatenate([b["inputs"] for b in epoch], axis=1)
  targets = np.concatenate([b["targets"] for b in epoch], axis=1)
  reset = np.concatenate([b["reset"] for b in epoch], axis=1)
  mask = np.concatenate([b["mask"] for b in epoch], axis=1)
  for row in range(batch_size):
    for t in range(chunks * seq_len):
      position = row * length + t  # in the concatenated stream
      assert inputs[row, t] == stream[position]
      assert targets[row, t] == stream[position + 1]
      assert reset[row, t] == (position in starts or t == 0), (row, t)
      assert mask[row, t] == (position + 1 not in starts), (row, t)


@pytest.mark.parametrize("lengths,batch_size,seq_len", CASES)
def test_chunks_continue_each_other(lengths, batch_size, seq_len):
  batches = StreamBatches(_documents(lengths), batch_size, seq_len)
  for i in range(batches.num_chunks - 1):
    here, after = batches.batch(i), batches.batch(i + 1)
    np.testing.assert_array_equal(after["inputs"][:, 0], here["targets"][:, -1])
    np.testing.assert_array_equal(here["targets"][:, :-1], here["inputs"][:, 1:])


def test_index_is_deterministic_and_wraps():
  batches = StreamBatches(_documents([40, 7, 33, 19]), 3, 5)
  n = batches.num_chunks
  for i in range(n):
    first = batches.batch(i)
    for again in (batches.batch(i), batches.batch(i + n), batches.batch(i + 3 * n),
                  batches.batch(np.int64(i + n)), batches.batch(jnp.int32(i + n))):
      for key in first:
        np.testing.assert_array_equal(again[key], first[key])
  # Returned arrays are copies: changing one does not change the data.
  b = batches.batch(1)
  expected = {key: value.copy() for key, value in b.items()}
  for key in b:
    b[key][:] = ~b[key] if b[key].dtype == bool else -1
  for key, value in batches.batch(1).items():
    np.testing.assert_array_equal(value, expected[key])
  # The chunk-0 reset recurs at every epoch start, and only there.
  assert batches.batch(n)["reset"][:, 0].all()
  assert not batches.batch(n + 1)["reset"][:, 0].any()


def test_padded_last_chunk_scores_every_pair():
  documents = _documents([23, 9, 30])
  batch_size, seq_len = 3, 5
  padded = StreamBatches(documents, batch_size, seq_len, drop_remainder=False)
  stream, starts, length, chunks = _reference(documents, batch_size, seq_len,
                                              drop_remainder=False)
  assert padded.num_chunks == chunks == 4  # rows of 20 tokens: 19 pairs
  full = StreamBatches(documents, batch_size, seq_len)
  assert full.num_chunks == 3
  for i in range(full.num_chunks):
    for key in ("inputs", "targets", "reset", "mask"):
      np.testing.assert_array_equal(padded.batch(i)[key], full.batch(i)[key])
  mask = np.concatenate([b["mask"] for b in padded], axis=1)
  targets = np.concatenate([b["targets"] for b in padded], axis=1)
  reset = np.concatenate([b["reset"] for b in padded], axis=1)
  for row in range(batch_size):
    real = [t for t in range(length - 1) if row * length + t + 1 not in starts]
    np.testing.assert_array_equal(np.flatnonzero(mask[row]), real)
    np.testing.assert_array_equal(targets[row, real], stream[row * length + 1 +
                                                             np.array(real)])
    assert not reset[row, length - 1:].any()
  assert mask[:, length - 1:].sum() == 0


def test_bad_arguments():
  documents = _documents([30, 20])
  for name, kwargs in (("batch_size", dict(batch_size=0, seq_len=2)),
                       ("batch_size", dict(batch_size=-3, seq_len=2)),
                       ("seq_len", dict(batch_size=2, seq_len=0))):
    with pytest.raises(ValueError, match=name):
      StreamBatches(documents, **kwargs)
  for name, kwargs in (("batch_size", dict(batch_size=2.0, seq_len=2)),
                       ("batch_size", dict(batch_size=True, seq_len=2)),
                       ("seq_len", dict(batch_size=2, seq_len="4"))):
    with pytest.raises(TypeError, match=name):
      StreamBatches(documents, **kwargs)
  # 50 tokens in 5 rows of 10: 9 pairs per row, so seq_len 9 fits and 10 does not.
  assert StreamBatches(documents, 5, 9).num_chunks == 1
  with pytest.raises(ValueError, match=r"batch_size=5, seq_len=10: 50 tokens.*rows of 10"):
    StreamBatches(documents, 5, 10)
  with pytest.raises(ValueError, match="too short"):
    StreamBatches(documents, 50, 1, drop_remainder=False)
  with pytest.raises(ValueError, match="too short"):
    StreamBatches([np.array([], np.int32)], 1, 1)
  with pytest.raises(TypeError, match=r"\[stream\]"):
    StreamBatches(np.arange(100), 2, 3)
  with pytest.raises(TypeError, match="1-D"):
    StreamBatches([np.zeros((10, 2), np.int32)], 2, 3)
  with pytest.raises(TypeError, match="integer"):
    StreamBatches([np.zeros(10, np.float32)], 2, 3)
  batches = StreamBatches(documents, 2, 3)
  with pytest.raises(ValueError, match="index"):
    batches.batch(-1)
  for bad in (1.0, True, "1"):
    with pytest.raises(TypeError, match="index"):
      batches.batch(bad)


def test_accepts_any_iterable_of_documents():
  documents = {"a": np.arange(10), "b": np.arange(10, 25)}
  from_values = StreamBatches(documents.values(), 2, 3)
  from_list = StreamBatches(list(documents.values()), 2, 3)
  for key in ("inputs", "reset", "mask"):
    np.testing.assert_array_equal(from_values.batch(0)[key], from_list.batch(0)[key])


def test_tbptt_over_chunks_equals_one_full_unroll():
  """Chunk-by-chunk unroll, carrying the final carry on, == one unroll per row."""
  vocab = 7
  documents = _documents([23, 4, 31, 17, 9], seed=1, vocab=vocab)
  batches = StreamBatches(documents, 3, 6)
  cell = seqjax.cells.gru(8)
  params = cell.init(jax.random.PRNGKey(0), vocab)
  embed = lambda ids: jax.nn.one_hot(ids, vocab, dtype=jnp.float32)
  run = jax.jit(lambda carry, ids, reset: seqjax.unroll(
      cell, params, embed(ids), carry, reset=reset))

  carry = cell.initial_carry(params, (batches.batch_size,))
  initial = carry
  chunk_outputs = []
  for batch in batches:
    carry, ys = run(carry, batch["inputs"], batch["reset"])
    chunk_outputs.append(ys)
  chunked = jnp.concatenate(chunk_outputs, axis=1)

  inputs = np.concatenate([b["inputs"] for b in batches], axis=1)
  reset = np.concatenate([b["reset"] for b in batches], axis=1)
  final, full = seqjax.unroll(cell, params, embed(inputs), reset=reset)
  np.testing.assert_allclose(chunked, full, atol=1e-5, rtol=0)
  np.testing.assert_allclose(carry, final, atol=1e-5, rtol=0)

  # Independently of unroll and of the reset flags: a Python loop of step over
  # each row, restarting from a fresh carry at the row's start and wherever a
  # document starts (offsets from the document lengths).
  _, starts, length, _ = _reference(documents, batches.batch_size, batches.seq_len)
  step = jax.jit(cell.step)
  for row in range(batches.batch_size):
    carry_row = None
    for t in range(inputs.shape[1]):
      if t == 0 or row * length + t in starts:
        carry_row = cell.initial_carry(params, ())
      carry_row, y = step(params, carry_row, embed(inputs[row, t]))
      np.testing.assert_allclose(full[row, t], y, atol=1e-5, rtol=0)

  # A second epoch, started from the last carry of the first, repeats the
  # first exactly: the chunk-0 reset discards the (non-initial) carry.
  assert not np.allclose(carry, initial)
  again = []
  for batch in batches:
    carry, ys = run(carry, batch["inputs"], batch["reset"])
    again.append(ys)
  np.testing.assert_allclose(jnp.concatenate(again, axis=1), chunked, atol=1e-6, rtol=0)


def test_vocab_size_checks_every_id_where_they_are_concrete():
  docs = [np.array([0, 1, 2, 3]), np.array([4, 5, 6, 7, 8])]
  StreamBatches(docs, 2, 2, vocab_size=9)
  with pytest.raises(ValueError, match=r"documents\[1\] must be token ids in \[0, 8\), got 8 "
                                       r"at position 4"):
    StreamBatches(docs, 2, 2, vocab_size=8)
  with pytest.raises(ValueError, match=r"documents\[0\] must be token ids in \[0, 9\), got -1"):
    StreamBatches([np.array([1, -1, 2, 3, 4, 5])], 2, 2, vocab_size=9)
  with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
    StreamBatches(docs, 2, 2, vocab_size=0)
