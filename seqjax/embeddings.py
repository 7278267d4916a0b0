"""Word embeddings: lookup with padding, masked pooling, hashed n-grams, pretrained tables.

A sentence becomes vectors by a table lookup, and a bag-of-words classifier
reads their mean (Joulin et al. 2016, "Bag of Tricks for Efficient Text
Classification", https://arxiv.org/abs/1607.01759)::

  u_t = E[x_t]                           (*B, T) ids -> (*B, T, E)
  v   = sum_t m_t u_t / sum_t m_t        masked mean, (*B, E)
  y   = softmax(W v + b)

Shapes: B batch (any leading axes), T time (tokens), V vocabulary, E embedding.

Padding. ``lookup`` returns zero vectors where ``mask`` is False or the id is
``padding_id``, whatever the table's row holds, so padded positions neither
contribute to a pooled vector nor receive a gradient; ``pool`` divides by the
number of valid tokens, so a padded batch pools exactly as its unpadded rows.
A document with no valid token (empty, or all padding) pools to the zero
vector (documented behaviour, tested): its classifier output is the bias.

Out-of-range ids follow ``seqjax.models``: concrete ids outside ``[0, V)`` raise
``ValueError``; traced ones give NaN vectors (never a silently wrapped row).
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.models import check_token_ids
from seqjax.types import Array, PRNGKey

POOLINGS = ("mean", "sum", "max")


def token_mask(ids: Array, mask: Optional[Array] = None,
               padding_id: Optional[int] = None) -> Array:
  """Which tokens count: ``mask`` and (``ids != padding_id``).

  Args:
    ids: (*B, T) int token ids.
    mask: optional (*B, T) booleans (or 0/1).
    padding_id: optional id that never counts.

  Returns:
    (*B, T) booleans (all True without ``mask`` and ``padding_id``).
  """
  ids = jnp.asarray(ids)
  valid = jnp.ones(ids.shape, jnp.bool_)
  if mask is not None:
    mask = jnp.asarray(mask)
    if mask.shape != ids.shape:
      raise ValueError(f"mask must have the shape of ids {ids.shape}, got {mask.shape}")
    valid = mask.astype(jnp.bool_)
  if padding_id is not None:
    valid = valid & (ids != padding_id)
  return valid


def lookup(table: Array, ids: Array, *, mask: Optional[Array] = None,
           padding_id: Optional[int] = None) -> Array:
  """Embedding rows of ``ids``; zeros on padding.

  Equation: ``u_t = m_t E[x_t]`` with ``m_t`` from ``token_mask``.

  Args:
    table: (V, E) embedding matrix.
    ids: (*B, T) (or any shape) int ids in ``[0, V)``; ids on masked or
      padding positions may hold anything.
    mask: optional booleans of ``ids``' shape; False marks padding.
    padding_id: optional id whose vector is zero and gets no gradient.

  Returns:
    (*ids.shape, E) vectors in the table's dtype.

  Raises:
    TypeError: if ``ids`` are not integers.
    ValueError: for a concrete valid id outside ``[0, V)``.
  """
  table = jnp.asarray(table)
  if table.ndim != 2:
    raise ValueError(f"table must have shape (V, E), got {table.shape}")
  if not jnp.issubdtype(jnp.result_type(ids), jnp.integer):
    raise TypeError(f"ids must be integer token ids, got dtype {jnp.result_type(ids)}")
  num_tokens = table.shape[0]
  valid = token_mask(ids, mask, padding_id)
  check_token_ids(ids, num_tokens, "ids", valid)
  ids = jnp.asarray(ids)
  in_range = (ids >= 0) & (ids < num_tokens)
  vectors = jnp.take(table, jnp.where(in_range & valid, ids, 0), axis=0)
  vectors = jnp.where((valid & ~in_range)[..., None], jnp.nan, vectors)
  return jnp.where(valid[..., None], vectors, jnp.zeros((), table.dtype))


def pool(vectors: Array, mask: Optional[Array] = None, *, mode: str = "mean") -> Array:
  """Pools ``(*B, T, E)`` vectors over time, counting only valid steps.

  Equations (``m_t`` the mask, 1 without one)::

    mean: v = sum_t m_t u_t / max(1, sum_t m_t)
    sum:  v = sum_t m_t u_t
    max:  v_e = max_{t: m_t} u_{t,e}

  A row with no valid step pools to zeros in every mode.

  Args:
    vectors: (*B, T, E).
    mask: optional (*B, T) booleans (or 0/1).
    mode: ``"mean"``, ``"sum"`` or ``"max"``.

  Returns:
    (*B, E).
  """
  checks.one_of("mode", mode, POOLINGS)
  vectors = jnp.asarray(vectors)
  if vectors.ndim < 2:
    raise ValueError(f"vectors must have shape (*B, T, E), got {vectors.shape}")
  if mask is None:
    valid = jnp.ones(vectors.shape[:-1], jnp.bool_)
  else:
    valid = jnp.asarray(mask)
    if valid.shape != vectors.shape[:-1]:
      raise ValueError(f"mask must have shape {vectors.shape[:-1]} (vectors' without the "
                       f"feature axis), got {valid.shape}")
    valid = valid.astype(jnp.bool_)
  zero = jnp.zeros((), vectors.dtype)
  if mode == "max":
    lowest = jnp.array(-jnp.inf, vectors.dtype)
    pooled = jnp.max(jnp.where(valid[..., None], vectors, lowest), axis=-2)
    return jnp.where(jnp.any(valid, axis=-1)[..., None], pooled, zero)
  total = jnp.sum(jnp.where(valid[..., None], vectors, zero), axis=-2)
  if mode == "sum":
    return total
  count = jnp.sum(valid, axis=-1).astype(vectors.dtype)
  return total / jnp.maximum(count, 1)[..., None]


# fastText's n-gram hash multiplier (Dictionary::addWordNgrams).
_FASTTEXT_PRIME = 116049371


def hashed_ngrams(ids: np.ndarray, mask: Optional[np.ndarray] = None, *, n: int = 2,
                  num_buckets: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
  """Appends hashed n-gram ids to unigram ids (fastText's bigram trick).

  Every run of ``n`` consecutive valid tokens ``(w_1, ..., w_n)`` becomes one
  extra id, hashed into ``num_buckets`` buckets placed after the vocabulary,
  as fastText's ``Dictionary::addWordNgrams`` does (64-bit arithmetic)::

    h = w_1;  h = h * 116049371 + w_j  (j = 2..n, mod 2^64)
    id = offset + h mod num_buckets

  so a classifier embeds ``V + num_buckets`` ids and pools unigrams and
  n-grams together. Collisions are accepted, as in fastText; the map is a
  pure function of the ids (stable across runs and machines).

  Args:
    ids: (*B, T) int token ids in ``[0, offset)``.
    mask: optional (*B, T) booleans, True on real tokens, which must come
      first in each row (right padding); None: every token is real.
    n: the n-gram order, >= 2.
    num_buckets: the number of hash buckets, > 0.
    offset: the first n-gram id, usually the vocabulary size V.

  Returns:
    ``(ids, mask)`` of shape (*B, T + T - n + 1): the unigrams, then the
    n-grams of each row; the new mask is True on real unigrams and on
    n-grams made only of real tokens.
  """
  n = checks.positive_int("n", n)
  if n < 2:
    raise ValueError(f"n must be >= 2 (unigrams are the ids themselves), got {n}")
  num_buckets = checks.positive_int("num_buckets", num_buckets)
  offset = checks.positive_int("offset", offset)
  ids = np.asarray(ids)
  if not np.issubdtype(ids.dtype, np.integer) or ids.ndim < 1:
    raise ValueError(f"ids must be integer token ids of shape (*B, T), got {ids.dtype} "
                     f"{ids.shape}")
  valid = np.ones(ids.shape, bool) if mask is None else np.asarray(mask, bool)
  if valid.shape != ids.shape:
    raise ValueError(f"mask must have the shape of ids {ids.shape}, got {valid.shape}")
  if np.any(valid & ((ids < 0) | (ids >= offset))):
    bad = ids[valid & ((ids < 0) | (ids >= offset))][0]
    raise ValueError(f"ids must lie in [0, offset={offset}) on real tokens, got {bad}")
  length = ids.shape[-1]
  if length < n:
    return ids.astype(np.int32), valid
  words = np.where(valid, ids, 0).astype(np.uint64)
  with np.errstate(over="ignore"):
    h = words[..., :length - n + 1].copy()
    for j in range(1, n):
      h = h * np.uint64(_FASTTEXT_PRIME) + words[..., j:length - n + 1 + j]
  grams = (offset + (h % np.uint64(num_buckets)).astype(np.int64)).astype(np.int32)
  gram_valid = np.ones(grams.shape, bool)
  for j in range(n):
    gram_valid &= valid[..., j:length - n + 1 + j]
  grams = np.where(gram_valid, grams, 0).astype(np.int32)
  return (np.concatenate([ids.astype(np.int32), grams], axis=-1),
          np.concatenate([valid, gram_valid], axis=-1))


def pretrained_table(vocab: Sequence[str], words: Sequence[str], vectors: np.ndarray, *,
                     key: Optional[PRNGKey] = None, oov: str = "random",
                     scale: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
  """An embedding table for ``vocab`` from pretrained ``(words, vectors)``.

  Row ``i`` is the pretrained vector of ``vocab[i]`` when it has one. The OOV
  policy for the other rows: ``"random"`` draws them N(0, scale^2) with
  ``key`` (``scale`` defaults to the pretrained vectors' own standard
  deviation, so new rows match the scale of the old ones); ``"zeros"`` sets
  them to zero. Lookup is exact (case and spelling as given).

  Args:
    vocab: the V words of the model's vocabulary, in id order.
    words: the pretrained words (N,), distinct.
    vectors: (N, E) pretrained vectors.
    key: PRNG key, required for ``oov="random"``.
    oov: ``"random"`` or ``"zeros"``.
    scale: std of random OOV rows.

  Returns:
    ``(table (V, E) float32, found (V,) bool)``.

  Raises:
    ValueError: if ``vectors`` is not (len(words), E), or ``oov`` is unknown.
  """
  checks.one_of("oov", oov, ("random", "zeros"))
  vectors = np.asarray(vectors, np.float32)
  if vectors.ndim != 2 or vectors.shape[0] != len(words):
    raise ValueError(f"vectors must have shape (len(words)={len(words)}, E), got "
                     f"{vectors.shape}")
  if oov == "random" and key is None:
    raise ValueError("oov='random' draws the rows of unknown words: give key")
  index = {w: i for i, w in enumerate(words)}
  rows = np.array([index.get(w, -1) for w in vocab], np.int64)
  found = rows >= 0
  table = np.zeros((len(vocab), vectors.shape[1]), np.float32)
  table[found] = vectors[rows[found]]
  if oov == "random" and not found.all():
    std = float(vectors.std()) if scale is None else float(scale)
    draws = np.asarray(jax.random.normal(key, (int((~found).sum()), vectors.shape[1])))
    table[~found] = std * draws
  return table, found
