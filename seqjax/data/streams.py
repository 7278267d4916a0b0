"""Batches for truncated backpropagation through time over a token stream.

As in PyTorch's ``word_language_model`` (``batchify`` + ``get_batch``), the
documents are concatenated into one stream which is cut into B contiguous
rows; row b is then read in consecutive chunks of k steps, so chunk i + 1
starts exactly where chunk i ended and the final carry of row b after chunk i
is the right initial carry for chunk i + 1 (B parallel streams)::

  stream:  d0 d0 d0 d0 d0 d1 d1 d1 d1 d1 d1 d2 d2 d2 d2 d2 ...
  rows:    row 0 = stream[0 : L], row 1 = stream[L : 2L], ...  (L = N // B)
  chunk i: inputs  = rows[:, i*k     : i*k + k]
           targets = rows[:, i*k + 1 : i*k + k + 1]

Added here: document boundaries. ``reset[b, t]`` is True where a document
starts in row b and at t = 0 of chunk 0, so a trainer passes it to
``seqjax.unroll(..., reset=batch["reset"])`` and the carry restarts at every
document and at the start of every epoch, with no special case in the loop.
At a boundary inside a row, the pair (last token of document d -> first
token of document d + 1) has ``mask`` False and is left out of the loss: its
target depends only on the arbitrary order in which documents were
concatenated, and predicting it from document d's context would teach (and,
in evaluation, score) a transition that is not in the data. The first token
of each document is therefore never a target; every other pair of a row is a
genuine next-token pair and is scored exactly once per epoch. What a row
cannot see (the pair that would cross from row b to row b + 1, and the
``N mod B`` tokens cut off the end of the stream) is lost, as in ``batchify``.

``mask`` is a loss mask. Passing it to ``seqjax.unroll(mask=...)`` as well is
harmless: a masked step is the last of its document (the next step resets the
carry anyway) or padding at the end of the epoch.
"""

from __future__ import annotations

import numbers
import operator
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np


class StreamBatches:
  """B parallel streams of documents, read k steps at a time.

  Args:
    documents: token id arrays, each (T_d,) of an integer dtype (e.g. one
      play each), in stream order (a list, or any iterable such as
      ``dict.values()``); empty documents are skipped.
    batch_size: B, the number of rows (parallel streams).
    seq_len: k, the number of steps per chunk (the truncation length).
    drop_remainder: if True (default), only full chunks are served, so every
      batch has the same shape and a jitted step compiles once. If False, a
      last, partial chunk is padded with id 0, ``mask`` False and ``reset``
      False, so that every next-token pair of the rows is scored (for
      evaluation).
    vocab_size: optional V: every id must then lie in ``[0, V)``, checked
      here, where the ids are concrete (inside a jitted model they no longer
      are; see ``seqjax.models``).

  Attributes:
    num_chunks: chunks per epoch.
    batch_size: B.
    seq_len: k.
    row_length: L = N // B, tokens per row (the last N mod B tokens of the
      stream are dropped); each row gives L - 1 next-token pairs.
    num_tokens: N, tokens in all documents.

  Raises:
    ValueError: for a non-positive ``batch_size``/``seq_len``, no documents,
      data too short for one chunk (the message gives the lengths), or an id
      outside ``[0, vocab_size)`` (the message names the document, the
      position and the value).
    TypeError: for documents that are not 1-D integer arrays.
  """

  def __init__(self, documents: Sequence[np.ndarray], batch_size: int,
               seq_len: int, *, drop_remainder: bool = True,
               vocab_size: Optional[int] = None):
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
      if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r} of "
                        f"type {type(value).__name__}")
      if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    if vocab_size is not None and (isinstance(vocab_size, bool) or
                                   not isinstance(vocab_size, numbers.Integral) or
                                   vocab_size <= 0):
      raise ValueError(f"vocab_size must be a positive integer or None, got {vocab_size!r}")
    if isinstance(documents, (np.ndarray, str, bytes)) or not isinstance(
        documents, Iterable):
      raise TypeError(f"documents must be a sequence of 1-D id arrays (e.g. a "
                      f"list with one array per document; wrap a single stream "
                      f"as [stream]), got {type(documents).__name__}")
    arrays = []
    for i, doc in enumerate(documents):
      doc = np.asarray(doc)
      if doc.ndim != 1:
        raise TypeError(f"documents[{i}] must be a 1-D array of token ids, got "
                        f"shape {doc.shape}")
      if doc.size and not np.issubdtype(doc.dtype, np.integer):
        raise TypeError(f"documents[{i}] must hold integer token ids, got dtype "
                        f"{doc.dtype}")
      if doc.size and vocab_size is not None:
        bad = np.flatnonzero((doc < 0) | (doc >= vocab_size))
        if bad.size:
          raise ValueError(f"documents[{i}] must be token ids in [0, {vocab_size}), got "
                           f"{doc[bad[0]]} at position {bad[0]}")
      if doc.size:
        arrays.append(doc.astype(np.int32))
    self.batch_size = int(batch_size)
    self.seq_len = int(seq_len)
    self.drop_remainder = bool(drop_remainder)
    self.num_documents = len(arrays)
    self.num_tokens = int(sum(a.size for a in arrays))
    self.row_length = self.num_tokens // self.batch_size
    pairs = self.row_length - 1  # next-token pairs per row
    needed = self.seq_len if self.drop_remainder else 1
    if pairs < needed:
      min_row = needed + 1
      raise ValueError(
          f"the data is too short for batch_size={self.batch_size}, "
          f"seq_len={self.seq_len}: {self.num_tokens} tokens in "
          f"{self.num_documents} non-empty documents give rows of "
          f"{self.row_length} tokens, but a chunk needs {min_row} tokens per "
          f"row (at least batch_size * {min_row} = {self.batch_size * min_row} "
          f"tokens)")
    if self.drop_remainder:
      self.num_chunks = pairs // self.seq_len
    else:
      self.num_chunks = -(-pairs // self.seq_len)

    stream = np.concatenate(arrays)
    starts = np.zeros(self.num_tokens, dtype=bool)
    starts[np.cumsum([0] + [a.size for a in arrays[:-1]])] = True
    used = self.batch_size * self.row_length
    # Padded by one chunk so that a partial last chunk slices to full width.
    width = self.num_chunks * self.seq_len + 1
    self._rows = np.zeros((self.batch_size, width), np.int32)
    self._starts = np.zeros((self.batch_size, width), bool)
    self._valid = np.zeros((self.batch_size, width), bool)
    n = min(width, self.row_length)
    self._rows[:, :n] = stream[:used].reshape(self.batch_size, self.row_length)[:, :n]
    self._starts[:, :n] = starts[:used].reshape(self.batch_size, self.row_length)[:, :n]
    self._valid[:, :n] = True

  def __len__(self) -> int:
    return self.num_chunks

  def batch(self, index: int) -> dict[str, np.ndarray]:
    """Chunk ``index % num_chunks`` of the epoch: a pure function of ``index``.

    Args:
      index: a non-negative step number (a Python, numpy or JAX integer); it
        wraps around, so step s of a resumed run gets the same data as step s
        of an uninterrupted one.

    Returns:
      ``{"inputs", "targets", "reset", "mask"}``, each (B, k): int32 ids,
      int32 next ids (``inputs`` shifted by one along the row), bool "a
      document starts here or this is t = 0 of chunk 0", bool "this target
      counts in the loss". Fresh arrays, safe to modify.
    """
    try:
      # operator.index also takes numpy and JAX integer scalars (a step counter).
      position = operator.index(index)
    except TypeError:
      position = None
    if position is None or isinstance(index, (bool, np.bool_)):
      raise TypeError(f"index must be a non-negative integer, got {index!r}")
    if position < 0:
      raise ValueError(f"index must be a non-negative integer, got {position}")
    chunk = position % self.num_chunks
    lo, hi = chunk * self.seq_len, (chunk + 1) * self.seq_len
    reset = self._starts[:, lo:hi].copy()
    if chunk == 0:
      reset[:, 0] = True  # a fresh carry for each row at the start of an epoch
    # A target is scored if it exists (not padding) and is not the first token
    # of a document, which the previous document cannot predict.
    mask = self._valid[:, lo + 1:hi + 1] & ~self._starts[:, lo + 1:hi + 1]
    return {
        "inputs": self._rows[:, lo:hi].copy(),
        "targets": self._rows[:, lo + 1:hi + 1].copy(),
        "reset": reset & self._valid[:, lo:hi],
        "mask": mask,
    }

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    """One epoch, chunk 0 to ``num_chunks - 1`` in order."""
    for index in range(self.num_chunks):
      yield self.batch(index)

  def __repr__(self) -> str:
    return (f"StreamBatches(batch_size={self.batch_size}, seq_len={self.seq_len}, "
            f"num_chunks={self.num_chunks}, num_tokens={self.num_tokens}, "
            f"num_documents={self.num_documents})")
