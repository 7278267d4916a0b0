r"""Word2vec: skip-gram and CBoW with negative sampling, as pure functions, matched to gensim.

Shape legend: V vocabulary, E vector size, N tokens, S sentences, B examples
per update, K negatives, C = 2 * window context slots, L updates per jitted call.

The model (Mikolov et al. 2013, https://arxiv.org/abs/1310.4546) keeps two
tables, ``input_vectors`` W_in (V, E) (the word vectors one keeps) and
``output_vectors`` W_out (V, E) (gensim's ``syn1neg``). An example is an input
vector ``v`` and a target word ``o``; K noise words ``k`` are drawn from the
unigram distribution raised to 3/4. Its negative-sampling loss is::

  loss = -log sigma(u_o . v) - sum_k log sigma(-u_k . v),     u = W_out rows

* skip-gram: ``v = W_in[centre]``, ``o`` = one context word within the
  window. word2vec.c and gensim put the roles the other way round (the
  context word's W_in row predicts the centre); the multiset of (input,
  target) pairs is the same in distribution, since the window is symmetric.
* CBoW: ``v`` = the mean of the context words' W_in rows (gensim's
  ``cbow_mean=1``), ``o`` = the centre word.

Noise words equal to the target are skipped, as in gensim.

The corpus pipeline (numpy, vectorised, seeded; ``batch_stream``), per epoch:

1. Sub-sampling: each token of word ``w`` is kept with probability
   ``keep_probabilities(counts, sample)[w]`` (word2vec.c's formula, below),
   drawn afresh every epoch; dropped tokens close the gap, as in gensim.
2. Dynamic window: for each kept token ``i``, ``b_i ~ U{0, ..., window - 1}``
   and its window is ``window - b_i`` words each side (gensim's
   ``reduced_windows``), never crossing a sentence (``context_windows``).
3. Examples, in corpus order: skip-gram pairs ``(centre, context)`` centre
   by centre, contexts left to right (``skipgram_pairs``); CBoW examples are
   each centre with its padded context row and mask (``cbow_examples``).
4. K noise words per example, by Walker's alias method (exact, O(1) a draw).

Training (``train``): ``L`` updates of ``B`` examples run in one jitted
``lax.scan`` (``train_steps``) while a host thread prepares the next block.
An update is SGD with the hand-derived gradient that word2vec.c applies,
written as sparse scatter-adds into the rows it touches, never a dense
(V, E) gradient. The B examples of an update are computed from the same
tables and their changes summed (gensim applies them one at a time); they
are B *lanes*: a block of L x B consecutive examples is cut into B runs of L
and update ``l`` takes the ``l``-th example of each run, so that the pairs
of one centre (which share its row) fall in successive updates, like B
Hogwild threads walking the corpus side by side. (Cutting the block into
L consecutive batches instead left the 1,000 most frequent words' vectors
7% shorter than gensim's on a 0.46M-token corpus; in lanes they agree to
1%.) The
learning rate decays linearly from ``alpha`` to ``min_alpha`` over the
planned words (epochs x corpus tokens; ``decay="words"``, word2vec.c) or
sentences (``decay="sentences"``, gensim's schedule when it is given the
sentence count, as ``Word2Vec(sentences)`` is), set per update from its
first example, as gensim sets it per job. Where this departs from gensim 4.4:

* the sigmoid is exact; word2vec.c reads it from a table and skips a score
  outside (-6, 6) (no update for that target);
* CBoW adds the gradient with respect to the mean ``v`` to *each* context
  row (word2vec.c and gensim with ``cbow_mean=1``), which is ``count`` times
  the gradient of the loss with respect to that row: ``cbow_step`` follows
  gensim, ``cbow_loss`` is the loss whose gradient that is not;
* no sentence is cut at 10,000 words (gensim's ``MAX_SENTENCE_LEN``).

Examples::

  vocabulary = word2vec.build_vocabulary(token_lists, min_count=5)
  sentences = word2vec.encode_sentences(token_lists, vocabulary)
  params = word2vec.train(sentences, vocabulary.counts, word2vec.Word2VecConfig())
  vectors = params.input_vectors   # (V, E), row i is vocabulary.words[i]

References:
  Mikolov, Sutskever, Chen, Corrado, Dean 2013, "Distributed Representations
  of Words and Phrases and their Compositionality", https://arxiv.org/abs/1310.4546
  Mikolov, Chen, Corrado, Dean 2013, "Efficient Estimation of Word
  Representations in Vector Space", https://arxiv.org/abs/1301.3781
  Rehurek & Sojka 2010, gensim (``gensim/models/word2vec_inner.pyx``).
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.types import Array, PRNGKey

MODELS = ("skipgram", "cbow")
DECAYS = ("words", "sentences")

# Raw tokens per pipeline chunk: big enough that numpy's per-call overhead
# vanishes, small enough that a chunk's (tokens, C) context matrix stays in
# cache-sized megabytes.
_CHUNK_TOKENS = 1 << 16


# ----------------------------------------------------------------------------
# Vocabulary.
# ----------------------------------------------------------------------------


class Vocabulary(NamedTuple):
  """The words word2vec learns vectors for, most frequent first.

  Attributes:
    words: the V words; row ``i`` of every table is ``words[i]``.
    counts: int64 (V,): each word's number of occurrences in the corpus.
  """

  words: tuple[str, ...]
  counts: np.ndarray

  @property
  def size(self) -> int:
    return len(self.words)


def _check_int(value: Any, name: str, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
  return int(value)


def vocabulary_from_counts(words: Sequence[str], counts: Any, *,
                           min_count: int = 5) -> Vocabulary:
  """The words occurring at least ``min_count`` times, in gensim 4.4's order.

  gensim keeps the words of its raw vocabulary (in order of first occurrence)
  with ``count >= min_count`` and sorts them by ``np.lexsort((-index,
  -count))``: by decreasing count, ties *latest first occurrence first*. The
  same order here makes row ``i`` the same word in both libraries, so that an
  evaluation restricted to the first 30,000 words scores the same questions.

  Args:
    words: the W distinct words, in order of first occurrence in the corpus.
    counts: (W,) integer occurrences of each word.
    min_count: the fewest occurrences a kept word has (gensim's default 5).

  Returns:
    The ``Vocabulary``.

  Raises:
    ValueError: if ``words`` and ``counts`` differ in length, ``words`` repeats
      a word, or no word occurs ``min_count`` times (the message gives the
      largest count).
  """
  min_count = _check_int(min_count, "min_count", 1)
  words = tuple(words)
  counts = np.asarray(counts)
  if counts.shape != (len(words),) or (counts.size and not np.issubdtype(counts.dtype,
                                                                        np.integer)):
    raise ValueError(f"counts must be {len(words)} integers (one per word), got shape "
                     f"{counts.shape} and dtype {counts.dtype}")
  if len(set(words)) != len(words):
    raise ValueError("words must be distinct")
  counts = counts.astype(np.int64)
  kept = np.flatnonzero(counts >= min_count)
  if kept.size == 0:
    largest = int(counts.max()) if counts.size else 0
    raise ValueError(f"min_count={min_count} leaves no word: the corpus is too small (its "
                     f"most frequent word occurs {largest} times); lower min_count or "
                     f"give more text")
  order = kept[np.lexsort((-np.arange(kept.size), -counts[kept]))]
  return Vocabulary(tuple(words[i] for i in order.tolist()), counts[order])


def build_vocabulary(sentences: Iterable[Sequence[str]], *, min_count: int = 5) -> Vocabulary:
  """The vocabulary of a tokenized corpus (see ``vocabulary_from_counts``).

  Args:
    sentences: token lists (e.g. from ``seqjax.data.text.tokenize``).
    min_count: the fewest occurrences a kept word has.

  Raises:
    ValueError: if the corpus has no token, or no word occurs ``min_count``
      times.
  """
  counter = collections.Counter(itertools.chain.from_iterable(sentences))
  if not counter:
    raise ValueError("sentences must hold at least one token, got an empty corpus")
  return vocabulary_from_counts(list(counter), np.fromiter(counter.values(), np.int64,
                                                           len(counter)),
                                min_count=min_count)


class Sentences(NamedTuple):
  """A corpus as word ids.

  Attributes:
    ids: int32 (N,): vocabulary ids, sentence after sentence.
    offsets: int64 (S + 1,): sentence ``s`` is ``ids[offsets[s]:offsets[s + 1]]``.
  """

  ids: np.ndarray
  offsets: np.ndarray

  @property
  def num_sentences(self) -> int:
    return len(self.offsets) - 1


def as_sentences(sentences: Union[Sentences, Sequence[Any]]) -> Sentences:
  """``Sentences``, or a sequence of id arrays (one per sentence) as ``Sentences``.

  Args:
    sentences: ``Sentences`` (checked) or a sequence of int id arrays.

  Raises:
    ValueError: if the offsets do not delimit the ids (not starting at 0,
      decreasing, or not ending at N).
  """
  if isinstance(sentences, Sentences):
    ids = np.asarray(sentences.ids)
    offsets = np.asarray(sentences.offsets, dtype=np.int64)
  else:
    arrays = [np.asarray(s).reshape(-1) for s in sentences]
    lengths = [len(a) for a in arrays]
    ids = np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
  if ids.size and not np.issubdtype(ids.dtype, np.integer):
    raise ValueError(f"sentences must hold integer word ids, got dtype {ids.dtype}")
  if (offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(ids)
      or np.any(np.diff(offsets) < 0)):
    raise ValueError(f"sentences.offsets must rise from 0 to len(ids)={len(ids)}, got "
                     f"{offsets[:5]}...")
  return Sentences(ids.astype(np.int32, copy=False), offsets)


def encode_sentences(sentences: Iterable[Sequence[str]], vocabulary: Vocabulary) -> Sentences:
  """Token lists -> ``Sentences``; words outside the vocabulary are dropped.

  Dropping a word closes the gap (its neighbours become adjacent), as gensim
  does, rather than cutting the window there.

  Args:
    sentences: token lists (one list of str per sentence).
    vocabulary: the words to keep, with their ids.
  """
  index = {w: i for i, w in enumerate(vocabulary.words)}
  ids: list[int] = []
  lengths: list[int] = []
  for sentence in sentences:
    if isinstance(sentence, str):
      raise TypeError("each sentence must be a list of tokens, got a str; tokenize it first")
    before = len(ids)
    ids.extend(i for i in map(index.get, sentence) if i is not None)
    lengths.append(len(ids) - before)
  return Sentences(np.asarray(ids, np.int32),
                   np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64))


def encode_ids(ids: Any, offsets: Any, words: Sequence[str],
               vocabulary: Vocabulary) -> Sentences:
  """A corpus already in ids of ``words`` -> ``Sentences`` of ``vocabulary`` ids.

  One gather instead of a dictionary lookup per token (e.g. for
  ``experiments.datasets.english``'s corpus). Words outside the vocabulary are
  dropped, as in ``encode_sentences``.

  Args:
    ids: (N,) integer indices into ``words``.
    offsets: (S + 1,) sentence boundaries into ``ids``.
    words: the corpus's distinct words.
    vocabulary: the vocabulary to encode to.
  """
  corpus = as_sentences(Sentences(np.asarray(ids), np.asarray(offsets)))
  index = {w: i for i, w in enumerate(vocabulary.words)}
  table = np.fromiter((index.get(w, -1) for w in words), np.int64, len(words))
  mapped = table[corpus.ids]
  keep = mapped >= 0
  kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
  return Sentences(mapped[keep].astype(np.int32), kept_before[corpus.offsets])


# ----------------------------------------------------------------------------
# Sub-sampling and noise.
# ----------------------------------------------------------------------------


def keep_probabilities(counts: Any, sample: float) -> np.ndarray:
  """The probability of keeping each token of a word: word2vec.c's sub-sampling.

  As gensim 4.4's ``Word2Vec.prepare_vocab``: with the threshold count
  ``t = sample * total`` (``total`` = the vocabulary's tokens; for
  ``sample >= 1``, ``t = int(sample * (3 + sqrt 5) / 2)``; for ``sample == 0``,
  ``t = total``, which keeps everything)::

    p(w) = min(1, (sqrt(c_w / t) + 1) * t / c_w)

  A word occurring ``t`` times or fewer is always kept (p >= 1); a very
  frequent one is kept with probability about ``sqrt(t / c_w)``. gensim
  stores ``p`` as ``uint32(p * (2**32 - 1))`` against a 32-bit random draw;
  the difference is below 2**-32.

  Args:
    counts: (V,) positive integer counts.
    sample: the threshold (word2vec's default 1e-3); >= 0.

  Returns:
    float64 (V,) probabilities in (0, 1].
  """
  counts = np.asarray(counts, dtype=np.float64)
  if not (isinstance(sample, (int, float, np.floating)) and not isinstance(sample, bool)
          and sample >= 0 and math.isfinite(sample)):
    raise ValueError(f"sample must be a finite number >= 0, got {sample!r}")
  if counts.ndim != 1 or counts.size == 0 or np.any(counts <= 0):
    raise ValueError(f"counts must be (V,) positive counts, got shape {counts.shape}")
  total = counts.sum()
  if not sample:
    threshold = total
  elif sample < 1.0:
    threshold = sample * total
  else:
    threshold = float(int(sample * (3 + np.sqrt(5)) / 2))
  return np.minimum((np.sqrt(counts / threshold) + 1) * (threshold / counts), 1.0)


def noise_distribution(counts: Any, exponent: float = 0.75) -> np.ndarray:
  """The distribution noise words are drawn from: ``c_w ** exponent``, normalised.

  gensim's ``ns_exponent`` (0.75 as in word2vec.c) flattens the unigram
  distribution so that rare words are drawn more often than their share.

  Args:
    counts: (V,) positive word counts.
    exponent: the power the counts are raised to.

  Returns:
    float64 (V,) probabilities summing to 1.
  """
  counts = np.asarray(counts, dtype=np.float64)
  if counts.ndim != 1 or counts.size == 0 or np.any(counts <= 0):
    raise ValueError(f"counts must be (V,) positive counts, got shape {counts.shape}")
  weights = counts ** float(exponent)
  return weights / weights.sum()


class AliasTable(NamedTuple):
  """Walker's alias table: draw ``i ~ U{0..V-1}``, keep it with ``probability[i]``,
  else take ``alias[i]``.

  Attributes:
    probability: float32 (V,) in [0, 1] (compared with float32 coins).
    alias: int32 (V,).
  """

  probability: np.ndarray
  alias: np.ndarray


def alias_table(probabilities: Any) -> AliasTable:
  """Vose's construction of the alias table of a distribution over V outcomes.

  Args:
    probabilities: (V,) non-negative weights (normalised here).

  Returns:
    An ``AliasTable`` whose draws (``draw_alias``) follow ``probabilities``
    exactly (up to float rounding).
  """
  p = np.asarray(probabilities, dtype=np.float64)
  if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not p.sum() > 0:
    raise ValueError(f"probabilities must be (V,) non-negative with a positive sum, got "
                     f"shape {p.shape}")
  size = p.size
  scaled = p * (size / p.sum())
  probability = np.ones(size)
  alias = np.arange(size, dtype=np.int32)
  small = [i for i in range(size) if scaled[i] < 1.0]
  large = [i for i in range(size) if scaled[i] >= 1.0]
  # One pass over the V outcomes (not the tokens): each step settles one.
  while small and large:
    s, l = small.pop(), large.pop()
    probability[s], alias[s] = scaled[s], l
    scaled[l] -= 1.0 - scaled[s]
    (small if scaled[l] < 1.0 else large).append(l)
  return AliasTable(probability.astype(np.float32), alias)


def draw_alias(table: AliasTable, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
  """int32 draws of ``shape`` from the distribution of ``table`` (``rng``: numpy generator)."""
  slots = rng.integers(0, len(table.alias), size=shape, dtype=np.int32)
  coins = rng.random(size=shape, dtype=np.float32)
  return np.where(coins < table.probability[slots], slots, table.alias[slots])


# ----------------------------------------------------------------------------
# Windows and examples.
# ----------------------------------------------------------------------------


def subsample(sentences: Sentences, keep: Any, rng: np.random.Generator
              ) -> tuple[Sentences, np.ndarray]:
  """Drops each token with probability ``1 - keep[word]``.

  Args:
    sentences: the corpus.
    keep: (V,) keep probabilities (``keep_probabilities``).
    rng: the random generator (one float32 draw per token).

  Returns:
    ``(kept, positions)``: the kept tokens as ``Sentences`` (a sentence may
    become empty) and int64 (N_kept,) their positions in ``sentences.ids``.
  """
  draws = rng.random(len(sentences.ids), dtype=np.float32)
  mask = draws < np.asarray(keep, np.float32)[sentences.ids]
  kept_before = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
  return (Sentences(sentences.ids[mask], kept_before[sentences.offsets]),
          np.flatnonzero(mask))


def reduced_windows(rng: np.random.Generator, num_tokens: int, window: int) -> np.ndarray:
  """int32 (N,) draws ``b ~ U{0, ..., window - 1}``: token i's window is ``window - b``.

  Args:
    rng: numpy generator.
    num_tokens: N.
    window: the largest window.
  """
  return rng.integers(0, window, size=num_tokens, dtype=np.int32)


def context_offsets(window: int) -> np.ndarray:
  """int64 (C,) the offset of each context slot: ``-window .. -1, 1 .. window``."""
  return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])


def context_windows(sentences: Sentences, window: int, reduced: Any
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Every token's context words, one slot per offset.

  Slot ``j`` of token ``i`` holds the word at ``i + context_offsets(window)[j]``
  when that offset is within ``window - reduced[i]`` and inside ``i``'s
  sentence (gensim's loop from ``i - window + b`` to ``i + window - b``,
  clipped to the sentence).

  Args:
    sentences: the (sub-sampled) corpus, N tokens.
    window: the largest window, >= 1.
    reduced: (N,) integers in ``[0, window)``.

  Returns:
    ``(contexts, mask)``: int32 (N, C) word ids (0 where the slot is empty)
    and bool (N, C) which slots hold a context word.
  """
  window = _check_int(window, "window", 1)
  ids, offsets = sentences.ids, sentences.offsets
  n = len(ids)
  reduced = np.asarray(reduced)
  if reduced.shape != (n,):
    raise ValueError(f"reduced must have shape ({n},) (one draw per token), got "
                     f"{reduced.shape}")
  lengths = np.diff(offsets)
  start = np.repeat(offsets[:-1], lengths)
  end = np.repeat(offsets[1:], lengths)
  span = (window - reduced).astype(np.int64)
  position = np.arange(n, dtype=np.int64)
  slots = context_offsets(window)
  contexts = np.zeros((n, len(slots)), np.int32)
  mask = np.zeros((n, len(slots)), bool)
  for j, d in enumerate(slots.tolist()):  # C vectorised passes, not a loop per token
    source = position + d
    valid = (source >= start) & (source < end) & (abs(d) <= span)
    mask[:, j] = valid
    contexts[:, j] = np.where(valid, ids[np.clip(source, 0, max(n - 1, 0))], 0) if n else 0
  return contexts, mask


def skipgram_pairs(sentences: Sentences, window: int, reduced: Any
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Skip-gram ``(centre, context)`` pairs in corpus order.

  Centre by centre; a centre's contexts left to right (gensim's order).

  Args:
    sentences: the (sub-sampled) corpus, N tokens.
    window: the largest window.
    reduced: (N,) the dynamic-window draws (``reduced_windows``).

  Returns:
    ``(centres, contexts)``, int32 (P,) each.
  """
  centres, contexts, _ = _skipgram_examples(sentences, window, reduced)
  return centres, contexts


def _skipgram_examples(sentences, window, reduced):
  contexts, mask = context_windows(sentences, window, reduced)
  rows, slots = np.nonzero(mask)
  return sentences.ids[rows], contexts[rows, slots], rows


def cbow_examples(sentences: Sentences, window: int, reduced: Any
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """CBoW examples: each centre that has a context word, with its window.

  Args:
    sentences: the (sub-sampled) corpus, N tokens.
    window: the largest window.
    reduced: (N,) the dynamic-window draws.

  Returns:
    ``(contexts, context_mask, centres)``: int32 (M, C), bool (M, C), int32
    (M,), in corpus order (a token alone in its sentence has no example).
  """
  contexts, mask, centres, _ = _cbow_examples(sentences, window, reduced)
  return contexts, mask, centres


def _cbow_examples(sentences, window, reduced):
  contexts, mask = context_windows(sentences, window, reduced)
  rows = np.flatnonzero(mask.any(axis=1))
  return contexts[rows], mask[rows], sentences.ids[rows], rows


# ----------------------------------------------------------------------------
# The model.
# ----------------------------------------------------------------------------


class Word2VecParams(NamedTuple):
  """The two tables of word2vec."""

  input_vectors: Array  # shape=(V, E), float32: W_in, the word vectors (gensim's wv.vectors)
  output_vectors: Array  # shape=(V, E), float32: W_out (gensim's syn1neg)


class SkipGramBatch(NamedTuple):
  """B skip-gram examples (any leading axes before B are stacked updates)."""

  centres: Array  # shape=(B,), int32: the input words
  contexts: Array  # shape=(B,), int32: the target words
  negatives: Array  # shape=(B, K), int32: noise words
  mask: Array  # shape=(B,), float32: 1 for an example, 0 for padding


class CBOWBatch(NamedTuple):
  """B CBoW examples (any leading axes before B are stacked updates)."""

  contexts: Array  # shape=(B, C), int32: the window's words (any id where empty)
  context_mask: Array  # shape=(B, C), float32: 1 where a slot holds a word
  centres: Array  # shape=(B,), int32: the target words
  negatives: Array  # shape=(B, K), int32: noise words
  mask: Array  # shape=(B,), float32: 1 for an example, 0 for padding


def init(key: PRNGKey, vocab_size: int, vector_size: int) -> Word2VecParams:
  """Initial tables, as gensim 4.4: W_in ~ U(-1/E, 1/E), W_out = 0.

  gensim 4's ``prep_vectors`` draws ``(2 u - 1) / E``; word2vec.c drew
  ``(u - 0.5) / E``, half as wide. The output table starts at zero so that
  every score starts at 0 and the first gradients only move W_out.

  Args:
    key: a JAX PRNG key.
    vocab_size: V >= 1.
    vector_size: E >= 1.
  """
  vocab_size = _check_int(vocab_size, "vocab_size", 1)
  vector_size = _check_int(vector_size, "vector_size", 1)
  scale = 1.0 / vector_size
  return Word2VecParams(
      jax.random.uniform(key, (vocab_size, vector_size), jnp.float32, -scale, scale),
      jnp.zeros((vocab_size, vector_size), jnp.float32))


def negative_sampling_loss(inputs: Array, targets: Array, noise: Array,
                           noise_mask: Array) -> Array:
  """Per-example ``-log sigma(u_o . v) - sum_k m_k log sigma(-u_k . v)``.

  Args:
    inputs: (B, E) the input vectors ``v``.
    targets: (B, E) the target words' output vectors ``u_o``.
    noise: (B, K, E) the noise words' output vectors ``u_k``.
    noise_mask: (B, K) float32, 0 for a noise word that is skipped.

  Returns:
    float32 (B,) losses in nats (``-log sigma(x) = softplus(-x)``).
  """
  positive = jnp.einsum("be,be->b", inputs, targets)
  negative = jnp.einsum("be,bke->bk", inputs, noise)
  return jax.nn.softplus(-positive) + jnp.sum(noise_mask * jax.nn.softplus(negative), axis=-1)


def _noise_mask(negatives: Array, targets: Array) -> Array:
  # gensim skips a noise word equal to the target (no update, no loss).
  return (negatives != targets[:, None]).astype(jnp.float32)


def _cbow_inputs(input_vectors: Array, batch: CBOWBatch) -> tuple[Array, Array]:
  """The mean context vector (B, E) and each example's context count (B,)."""
  count = jnp.sum(batch.context_mask, axis=-1)
  total = jnp.einsum("bc,bce->be", batch.context_mask, input_vectors[batch.contexts])
  return total / jnp.maximum(count, 1.0)[:, None], count


def skipgram_loss(params: Word2VecParams, batch: SkipGramBatch) -> tuple[Array, Array]:
  """Summed skip-gram loss and the number of examples (as ``seqjax.losses``).

  Its gradient, times the learning rate, is exactly the change ``skipgram_step``
  makes (all examples computed from the same tables).

  Args:
    params: the two tables.
    batch: a ``SkipGramBatch`` of B examples.

  Returns:
    ``(total, count)``, float32 scalars.
  """
  loss = negative_sampling_loss(params.input_vectors[batch.centres],
                                params.output_vectors[batch.contexts],
                                params.output_vectors[batch.negatives],
                                _noise_mask(batch.negatives, batch.contexts))
  return jnp.sum(batch.mask * loss), jnp.sum(batch.mask)


def cbow_loss(params: Word2VecParams, batch: CBOWBatch) -> tuple[Array, Array]:
  """Summed CBoW loss (input = mean of the context vectors) and the example count.

  ``cbow_step``'s change to W_out is ``-learning_rate`` times this loss's
  gradient; its change to a context row is ``count`` times that (see the
  module docstring).

  Args:
    params: the two tables.
    batch: a ``CBOWBatch`` of B examples.

  Returns:
    ``(total, count)``, float32 scalars; examples without context count as 0.
  """
  hidden, count = _cbow_inputs(params.input_vectors, batch)
  weight = batch.mask * (count > 0).astype(jnp.float32)
  loss = negative_sampling_loss(hidden, params.output_vectors[batch.centres],
                                params.output_vectors[batch.negatives],
                                _noise_mask(batch.negatives, batch.centres))
  return jnp.sum(weight * loss), jnp.sum(weight)


def _scaled_errors(inputs: Array, targets: Array, noise_mask: Array, output_vectors: Array,
                   weight: Array, learning_rate: Array
                   ) -> tuple[Array, Array, Array]:
  """``g = lr * (label - sigma(score))`` for the target and noise words.

  Returns:
    ``(g (B, K+1), outputs (B, K+1, E), scores (B, K+1))``.
  """
  outputs = output_vectors[targets]
  scores = jnp.einsum("be,bke->bk", inputs, outputs)
  labels = (jnp.arange(targets.shape[-1]) == 0).astype(jnp.float32)
  valid = jnp.concatenate([jnp.ones_like(noise_mask[:, :1]), noise_mask], axis=-1)
  errors = (labels - jax.nn.sigmoid(scores)) * valid * weight[:, None]
  return learning_rate * errors, outputs, scores


def _loss_from_scores(scores: Array, noise_mask: Array, weight: Array) -> Array:
  loss = jax.nn.softplus(-scores[:, 0]) + jnp.sum(noise_mask * jax.nn.softplus(scores[:, 1:]),
                                                  axis=-1)
  return jnp.sum(weight * loss)


def skipgram_step(params: Word2VecParams, batch: SkipGramBatch, learning_rate: Any
                  ) -> tuple[Word2VecParams, Array]:
  """One SGD update on B skip-gram examples, as word2vec.c computes it.

  With ``g_o = lr (1 - sigma(u_o . v))`` and ``g_k = -lr sigma(u_k . v)``::

    W_in[centre]  += g_o u_o + sum_k g_k u_k
    W_out[o]      += g_o v,        W_out[k] += g_k v

  each a scatter-add of B (resp. B (K + 1)) rows; repeated rows add up.

  Args:
    params: the tables.
    batch: a ``SkipGramBatch`` of B examples.
    learning_rate: float32 scalar.

  Returns:
    ``(params, total_loss)``: the updated tables and the summed loss of the
    batch before the update (float32 scalar).
  """
  noise_mask = _noise_mask(batch.negatives, batch.contexts)
  inputs = params.input_vectors[batch.centres]
  targets = jnp.concatenate([batch.contexts[:, None], batch.negatives], axis=-1)
  g, outputs, scores = _scaled_errors(inputs, targets, noise_mask, params.output_vectors,
                                      batch.mask, learning_rate)
  input_vectors = params.input_vectors.at[batch.centres].add(
      jnp.einsum("bk,bke->be", g, outputs), mode="promise_in_bounds")
  output_vectors = params.output_vectors.at[targets.reshape(-1)].add(
      (g[:, :, None] * inputs[:, None, :]).reshape(-1, inputs.shape[-1]),
      mode="promise_in_bounds")
  return (Word2VecParams(input_vectors, output_vectors),
          _loss_from_scores(scores, noise_mask, batch.mask))


def cbow_step(params: Word2VecParams, batch: CBOWBatch, learning_rate: Any
              ) -> tuple[Word2VecParams, Array]:
  """One SGD update on B CBoW examples, as word2vec.c (``cbow_mean=1``) computes it.

  With ``h`` the mean of the context rows and ``g`` as in ``skipgram_step``::

    W_out[o] += g_o h,     W_out[k] += g_k h,
    W_in[c]  += g_o u_o + sum_k g_k u_k     for every context word c

  (the full gradient with respect to ``h`` to each context row, not its
  1/count share). Examples without a context word change nothing.

  Args:
    params: the tables.
    batch: a ``CBOWBatch`` of B examples.
    learning_rate: float32 scalar.

  Returns:
    ``(params, total_loss)`` as ``skipgram_step``.
  """
  hidden, count = _cbow_inputs(params.input_vectors, batch)
  weight = batch.mask * (count > 0).astype(jnp.float32)
  noise_mask = _noise_mask(batch.negatives, batch.centres)
  targets = jnp.concatenate([batch.centres[:, None], batch.negatives], axis=-1)
  g, outputs, scores = _scaled_errors(hidden, targets, noise_mask, params.output_vectors,
                                      weight, learning_rate)
  hidden_change = jnp.einsum("bk,bke->be", g, outputs)
  size = hidden.shape[-1]
  input_vectors = params.input_vectors.at[batch.contexts.reshape(-1)].add(
      (batch.context_mask[:, :, None] * hidden_change[:, None, :]).reshape(-1, size),
      mode="promise_in_bounds")
  output_vectors = params.output_vectors.at[targets.reshape(-1)].add(
      (g[:, :, None] * hidden[:, None, :]).reshape(-1, size), mode="promise_in_bounds")
  return Word2VecParams(input_vectors, output_vectors), _loss_from_scores(scores, noise_mask,
                                                                         weight)


@functools.partial(jax.jit, static_argnames=("compute_loss",), donate_argnums=(0,))
def train_steps(params: Word2VecParams, batches: Union[SkipGramBatch, CBOWBatch],
                learning_rates: Array, *, compute_loss: bool = True
                ) -> tuple[Word2VecParams, Array]:
  """L successive updates in one compiled call (a ``lax.scan`` over the first axis).

  Small updates run faster than one big one on a CPU: measured on 2 cores,
  64 updates of 128 pairs ran at 0.8-0.95M pairs/s, one update of 8,192 at
  0.2-0.3M (the gathered rows no longer stay in cache); scanning L of them
  amortises the dispatch. ``params`` is donated and each step scatters into
  each table exactly once, so XLA updates the tables in place (a second
  scatter into the same table in the loop body, or B = 1, made it copy the
  table every update: 30x and more slower).

  Args:
    params: the tables (donated).
    batches: a ``SkipGramBatch`` or ``CBOWBatch`` whose fields have a leading
      (L,) axis: L batches of B examples.
    learning_rates: float32 (L,), one per update.
    compute_loss: also sum the losses (otherwise the returned loss is 0).

  Returns:
    ``(params, total_loss)``: the tables after the L updates and the summed
    loss (each update's before it), float32.
  """
  step = skipgram_step if isinstance(batches, SkipGramBatch) else cbow_step

  def body(carry, inputs):
    params, total = carry
    batch, learning_rate = inputs
    params, loss = step(params, batch, learning_rate)
    return (params, total + loss if compute_loss else total), None

  (params, total), _ = jax.lax.scan(body, (params, jnp.zeros((), jnp.float32)),
                                    (batches, learning_rates))
  return params, total


# ----------------------------------------------------------------------------
# Training.
# ----------------------------------------------------------------------------


class Word2VecConfig(NamedTuple):
  """Word2vec's settings.

  The defaults are word2vec.c's, which are gensim 4.4's too except two:
  gensim starts CBoW at ``alpha`` 0.025 (word2vec.c 0.05), and
  ``Word2Vec(sentences)`` decays it by sentences (``decay="sentences"``).
  """

  model: str = "skipgram"  # "skipgram" (gensim sg=1) or "cbow" (sg=0, cbow_mean=1)
  vector_size: int = 100  # E
  window: int = 5  # the largest window each side; each token draws its own, 1..window
  negative: int = 5  # K noise words per example
  sample: float = 1e-3  # sub-sampling threshold (keep_probabilities); 0 keeps every token
  alpha: Optional[float] = None  # first learning rate; None: 0.025 skip-gram, 0.05 CBoW
  min_alpha: float = 1e-4  # last learning rate, reached at the end of the last epoch
  epochs: int = 5
  ns_exponent: float = 0.75  # noise distribution: count ** ns_exponent
  # What the learning rate decays over: "words" (word2vec.c: the share of the
  # planned tokens done) or "sentences" (the share of the planned sentences
  # done: what gensim's Word2Vec does when it knows the sentence count, as
  # Word2Vec(sentences) and train(total_examples=...) do).
  decay: str = "words"
  # Examples per SGD update (B lanes side by side), >= 2 in practice (see
  # train_steps). On the English corpus (2 CPU cores) 64-256 run fastest per
  # example; B = 2, 32 and 128 gave the same vector norms (to 0.5%, 1 epoch of
  # the reviews) and B = 32 to 1024 the same analogy and similarity scores
  # within seed noise.
  batch_size: int = 128
  steps_per_call: int = 64  # L updates scanned in one jitted call
  seed: int = 0  # the pipeline's numpy generator and the initial tables' JAX key


def check_config(config: Word2VecConfig) -> Word2VecConfig:
  """``config`` with ``alpha`` filled in, or ValueError naming the bad setting."""
  if config.model not in MODELS:
    raise ValueError(f"model must be one of {MODELS}, got {config.model!r}")
  if config.decay not in DECAYS:
    raise ValueError(f"decay must be one of {DECAYS}, got {config.decay!r}")
  _check_int(config.vector_size, "vector_size", 1)
  _check_int(config.window, "window", 1)
  # gensim with negative=0 and hs=0 silently trains nothing.
  _check_int(config.negative, "negative", 1)
  _check_int(config.epochs, "epochs", 1)
  _check_int(config.batch_size, "batch_size", 1)
  _check_int(config.steps_per_call, "steps_per_call", 1)
  _check_int(config.seed, "seed", 0)
  keep_probabilities(np.ones(1), config.sample)  # validates sample
  alpha = config.alpha
  if alpha is None:
    alpha = 0.025 if config.model == "skipgram" else 0.05
  for name, value in (("alpha", alpha), ("min_alpha", config.min_alpha),
                      ("ns_exponent", config.ns_exponent)):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
      raise ValueError(f"{name} must be a finite number, got {value!r}")
  if not alpha > 0 or not 0 <= config.min_alpha <= alpha:
    raise ValueError(f"alpha must be > 0 and min_alpha in [0, alpha], got alpha={alpha!r}, "
                     f"min_alpha={config.min_alpha!r}")
  return config._replace(alpha=float(alpha))


class Block(NamedTuple):
  """What one ``train_steps`` call consumes (host arrays)."""

  batches: Union[SkipGramBatch, CBOWBatch]  # fields with leading (L, B) axes
  learning_rates: np.ndarray  # float32 (L,)
  examples: int  # real (unpadded) examples in the block
  words: int  # corpus tokens (before sub-sampling) consumed once this block is done


def _chunks(offsets: np.ndarray, chunk_tokens: int) -> list[tuple[int, int]]:
  """Sentence ranges ``[s0, s1)`` of about ``chunk_tokens`` tokens each."""
  marks = np.searchsorted(offsets, np.arange(0, offsets[-1], chunk_tokens), side="right") - 1
  bounds = sorted(set(marks.tolist()) | {len(offsets) - 1})
  return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def batch_stream(sentences: Union[Sentences, Sequence[Any]], counts: Any,
                 config: Word2VecConfig) -> Iterator[Block]:
  """The training examples of every epoch, in blocks for ``train_steps``.

  Deterministic given ``config.seed``. The last block is padded with masked
  examples so that every block has the same shape (one compilation).

  Args:
    sentences: the corpus as ``Sentences`` (or id arrays), ids < V.
    counts: (V,) the vocabulary's counts (``Vocabulary.counts``).
    config: the settings (``check_config``).

  Yields:
    ``Block``s of ``steps_per_call`` x ``batch_size`` examples.
  """
  config = check_config(config)
  sentences = as_sentences(sentences)
  counts = np.asarray(counts)
  num_tokens = len(sentences.ids)
  if num_tokens == 0:
    raise ValueError("sentences must hold at least one in-vocabulary token, got none")
  if int(sentences.ids.min()) < 0 or int(sentences.ids.max()) >= len(counts):
    raise ValueError(f"sentences must hold ids in [0, {len(counts)}) (one count per word), "
                     f"got ids in [{int(sentences.ids.min())}, {int(sentences.ids.max())}]")
  keep = keep_probabilities(counts, config.sample).astype(np.float32)
  noise = alias_table(noise_distribution(counts, config.ns_exponent))
  rng = np.random.default_rng(config.seed)
  skipgram = config.model == "skipgram"
  per_update, updates = config.batch_size, config.steps_per_call
  per_block = per_update * updates
  planned = float(config.epochs) * num_tokens
  num_sentences = sentences.num_sentences
  decay = config.alpha - config.min_alpha
  pending: list[np.ndarray] = []  # example fields + their corpus positions, not yet emitted

  def arrange(x: np.ndarray) -> np.ndarray:
    """(L*B, ...) in stream order -> (L, B, ...): B lanes of L consecutive examples."""
    return np.ascontiguousarray(x.reshape((per_update, updates) + x.shape[1:]).swapaxes(0, 1))

  def progress(positions: np.ndarray) -> np.ndarray:
    """The share of the planned training done at these global token positions."""
    if config.decay == "words":
      return positions / planned
    epoch, within = np.divmod(positions, num_tokens)
    sentence = np.searchsorted(sentences.offsets, within, side="right") - 1
    return (epoch * num_sentences + sentence) / (config.epochs * num_sentences)

  def block(fields: list[np.ndarray], real: int) -> Block:
    positions = fields[-1]
    starts = arrange(positions).min(axis=1)
    rates = np.maximum(config.alpha - decay * progress(starts), config.min_alpha)
    negatives = draw_alias(noise, rng, (per_block, config.negative))
    mask = np.zeros(per_block, np.float32)
    mask[:real] = 1.0
    if skipgram:
      centres, contexts = fields[0], fields[1]
      batches = SkipGramBatch(arrange(centres), arrange(contexts), arrange(negatives),
                              arrange(mask))
    else:
      contexts, context_mask, centres = fields[0], fields[1], fields[2]
      batches = CBOWBatch(arrange(contexts), arrange(context_mask.astype(np.float32)),
                          arrange(centres), arrange(negatives), arrange(mask))
    return Block(batches, rates.astype(np.float32), real, int(min(positions[real - 1] + 1,
                                                                  planned)))

  chunks = _chunks(sentences.offsets, _CHUNK_TOKENS)
  for epoch in range(config.epochs):
    for first, last in chunks:
      begin = int(sentences.offsets[first])
      part = Sentences(sentences.ids[begin:sentences.offsets[last]],
                       sentences.offsets[first:last + 1] - begin)
      kept, positions = subsample(part, keep, rng)
      reduced = reduced_windows(rng, len(kept.ids), config.window)
      if skipgram:
        centres, contexts, rows = _skipgram_examples(kept, config.window, reduced)
        fields = [centres, contexts]
      else:
        contexts, context_mask, centres, rows = _cbow_examples(kept, config.window, reduced)
        fields = [contexts, context_mask, centres]
      fields.append(positions[rows] + (begin + epoch * num_tokens))
      pending = fields if not pending else [np.concatenate([a, b])
                                            for a, b in zip(pending, fields)]
      done = 0
      while len(pending[-1]) - done >= per_block:
        yield block([f[done:done + per_block] for f in pending], per_block)
        done += per_block
      pending = [f[done:] for f in pending]
  real = len(pending[-1]) if pending else 0
  if real:
    padded = [np.concatenate([f, np.zeros((per_block - real,) + f.shape[1:], f.dtype)])
              for f in pending]
    padded[-1][real:] = pending[-1][-1]
    yield block(padded, real)


class Progress(NamedTuple):
  """What ``train``'s callback is told, every ``report_every`` calls and at the end."""

  words: int  # corpus tokens (before sub-sampling) done, over all epochs so far
  total_words: int  # epochs x corpus tokens
  epoch: float  # words / corpus tokens
  learning_rate: float  # of the last update
  loss: float  # mean loss per example since the last report (nan before any)
  examples: int  # examples (pairs or CBoW windows) trained on so far
  seconds: float  # since train started
  words_per_second: float  # words / seconds


def _producer(stream: Iterator[Block], out: "queue.Queue", stop: threading.Event) -> None:
  """Puts the stream's blocks, then None (or the error raised), until ``stop`` is set."""

  def put(item) -> bool:
    while not stop.is_set():
      try:
        out.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  try:
    for item in stream:
      if not put(item):
        return
    put(None)
  except BaseException as error:  # handed to the consumer, which re-raises it
    put(error)


def train(sentences: Union[Sentences, Sequence[Any]], counts: Any,
          config: Word2VecConfig = Word2VecConfig(), *,
          callback: Optional[Callable[[Progress], None]] = None,
          report_every: int = 200, params: Optional[Word2VecParams] = None) -> Word2VecParams:
  """Trains word2vec (see the module docstring) and returns its two tables.

  The numpy pipeline (``batch_stream``) runs in a host thread, a few blocks
  ahead of the jitted updates (``train_steps``), so the two overlap on
  different cores; at most two calls are in flight.

  Args:
    sentences: the corpus as ``Sentences`` (e.g. from ``encode_sentences``)
      or a sequence of int arrays (one per sentence); ids index ``counts``.
    counts: (V,) the vocabulary's counts (``Vocabulary.counts``): they set
      the sub-sampling and the noise distribution.
    config: the settings.
    callback: called with a ``Progress`` every ``report_every`` calls and
      once at the end (the losses are only computed when it is given).
    report_every: calls between reports.
    params: initial tables (default ``init(jax.random.key(config.seed), V, E)``).

  Returns:
    The trained ``Word2VecParams`` (JAX arrays); ``input_vectors`` are the
    word vectors.

  Raises:
    ValueError: for a bad setting (naming it) or an empty corpus.
  """
  config = check_config(config)
  report_every = _check_int(report_every, "report_every", 1)
  counts = np.asarray(counts)
  sentences = as_sentences(sentences)
  if len(sentences.ids) == 0:
    raise ValueError("sentences must hold at least one in-vocabulary token, got an empty "
                     "corpus")
  if params is None:
    params = init(jax.random.key(config.seed), len(counts), config.vector_size)
  elif (params.input_vectors.shape != (len(counts), config.vector_size)
        or params.output_vectors.shape != params.input_vectors.shape):
    raise ValueError(f"params must hold two ({len(counts)}, {config.vector_size}) tables, got "
                     f"{params.input_vectors.shape} and {params.output_vectors.shape}")
  params = Word2VecParams(*(jnp.array(t, jnp.float32) for t in params))  # owned: donated
  total_words = config.epochs * len(sentences.ids)
  compute_loss = callback is not None

  blocks: "queue.Queue" = queue.Queue(maxsize=4)
  stop = threading.Event()
  thread = threading.Thread(target=_producer, daemon=True, name="word2vec-pipeline",
                            args=(batch_stream(sentences, counts, config), blocks, stop))
  start = time.perf_counter()
  thread.start()
  in_flight: collections.deque = collections.deque()
  losses: list[Array] = []
  examples = reported_examples = words = calls = 0
  rate, last_loss = config.alpha, float("nan")

  def report():
    nonlocal losses, reported_examples, last_loss
    new = examples - reported_examples
    if new:  # else (a final report right after a periodic one) the last mean stands
      last_loss = float(sum(float(x) for x in losses)) / new
    seconds = time.perf_counter() - start
    callback(Progress(words, total_words, words / len(sentences.ids), rate, last_loss,
                      examples, seconds, words / seconds if seconds > 0 else 0.0))
    losses, reported_examples = [], examples

  try:
    while True:
      item = blocks.get()
      if item is None:
        break
      if isinstance(item, BaseException):
        raise item
      params, loss = train_steps(params, jax.device_put(item.batches),
                                 jnp.asarray(item.learning_rates), compute_loss=compute_loss)
      in_flight.append(loss)
      if compute_loss:
        losses.append(loss)
      # Backpressure: the host never runs more than two calls ahead.
      if len(in_flight) > 2:
        in_flight.popleft().block_until_ready()
      examples += item.examples
      words = item.words
      rate = float(item.learning_rates[-1])
      calls += 1
      if callback is not None and calls % report_every == 0:
        report()
  finally:
    stop.set()
    thread.join()
  params = jax.block_until_ready(params)
  if callback is not None:
    words = total_words
    report()
  return params
