"""Word vectors: the word2vec file format, nearest neighbours, analogy and similarity scores.

Everything here takes a ``WordVectors`` (words most frequent first, float32
vectors) and reproduces gensim 4.4's ``KeyedVectors`` semantics without
importing gensim, so a score here is a score there:

* ``save_word2vec_format`` / ``load_word2vec_format``: the word2vec.c format
  (a ``"V E"`` header line, then ``word v_1 ... v_E`` per word, or the binary
  variant), which gensim's ``KeyedVectors.load_word2vec_format`` reads and
  writes.
* ``most_similar``: 3CosAdd (``KeyedVectors.most_similar``: unit-normalise
  the query vectors, average with weights +1 / -1, rank by cosine, leave out
  the query words) or 3CosMul (``most_similar_cosmul``, Levy & Goldberg 2014).
  ``analogy(v, "king", "man", "woman")`` is ``king - man + woman``.
* ``evaluate_analogies``: ``KeyedVectors.evaluate_word_analogies`` on the same
  questions: the first ``restrict_vocab`` words only, case folded, a question
  skipped if any of its 4 words is outside them, the prediction the most
  similar restricted word other than the 3 question words; questions are
  scored in batches of matrix products on the device.
* ``evaluate_similarity``: ``KeyedVectors.evaluate_word_pairs``: Spearman's
  rank correlation of cosine similarities with human judgements, pairs with
  an unknown word skipped and counted.

The test files ship with gensim (``gensim.test.utils.datapath(
"questions-words.txt")``, ``"wordsim353.tsv"``, ``"simlex999.txt"``); these
functions take a path, and experiments pass gensim's.

References:
  Mikolov, Chen, Corrado, Dean 2013, https://arxiv.org/abs/1301.3781 (the
  analogy questions); Levy & Goldberg 2014, "Linguistic Regularities in
  Sparse and Explicit Word Representations" (3CosMul); Finkelstein et al.
  2002 (WordSim-353); Hill, Reichart, Korhonen 2015 (SimLex-999).
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Any, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

Array = jax.Array
PathLike = Union[str, os.PathLike]
METHODS = ("3cosadd", "3cosmul")

# Added to 3CosMul's denominator, as gensim does, so that a word opposite to
# every negative query word does not divide by zero.
_COSMUL_EPSILON = 1e-6


class WordVectors(NamedTuple):
  """Words and their vectors.

  Attributes:
    words: the V words, most frequent first (the order restrict_vocab cuts).
    vectors: float32 (V, E); row i is the vector of ``words[i]``.
  """

  words: tuple[str, ...]
  vectors: np.ndarray

  @classmethod
  def create(cls, words: Sequence[str], vectors: Any) -> "WordVectors":
    """Checked construction: distinct non-empty words, one float32 row each."""
    words = tuple(words)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
      raise ValueError(f"vectors must be ({len(words)}, E), one row per word, got "
                       f"{vectors.shape}")
    if any(not isinstance(w, str) or not w for w in words):
      raise ValueError("words must be non-empty strings")
    if len(set(words)) != len(words):
      raise ValueError("words must be distinct")
    return cls(words, vectors)

  def index(self) -> dict[str, int]:
    """Word -> row."""
    return {w: i for i, w in enumerate(self.words)}

  def save_word2vec_format(self, path: PathLike, binary: bool = False) -> None:
    """``save_word2vec_format(self, path, binary=binary)``."""
    save_word2vec_format(self, path, binary=binary)

  @classmethod
  def load_word2vec_format(cls, path: PathLike, binary: bool = False) -> "WordVectors":
    """``load_word2vec_format(path, binary=binary)``."""
    return load_word2vec_format(path, binary=binary)


# ----------------------------------------------------------------------------
# The word2vec file format.
# ----------------------------------------------------------------------------


def save_word2vec_format(vectors: WordVectors, path: PathLike, *, binary: bool = False) -> None:
  """Writes ``vectors`` in word2vec.c's format, in row order.

  Text: a header ``"V E"``, then per word ``word v_1 ... v_E`` with 9
  significant digits (enough for a float32 to read back exactly). Binary: the
  same header, then per word ``word``, a space and E little-endian float32
  (what gensim writes).

  Args:
    vectors: the words and their (V, E) vectors.
    path: the file to write.
    binary: the binary format instead of text.

  Raises:
    ValueError: if a word is empty or holds whitespace (the format splits on
      spaces).
  """
  words, table = vectors.words, np.asarray(vectors.vectors, dtype=np.float32)
  if table.ndim != 2 or table.shape[0] != len(words):
    raise ValueError(f"vectors must be ({len(words)}, E), got {table.shape}")
  for word in words:
    if not word or any(c.isspace() for c in word):
      raise ValueError(f"words must be non-empty and hold no whitespace to be saved in the "
                       f"word2vec format, got {word!r}")
  count, size = table.shape
  with open(path, "wb") as f:
    f.write(f"{count} {size}\n".encode("utf-8"))
    if binary:
      rows = table.astype("<f4")
      for word, row in zip(words, rows):
        f.write(word.encode("utf-8") + b" " + row.tobytes())
    else:
      row_format = " ".join(["%.9g"] * size)
      f.write("".join(f"{word} {row_format % tuple(row)}\n"
                      for word, row in zip(words, table.tolist())).encode("utf-8"))


def load_word2vec_format(path: PathLike, *, binary: bool = False) -> WordVectors:
  """Reads vectors in word2vec.c's format (as gensim or word2vec.c write it).

  Args:
    path: the file.
    binary: whether it is the binary variant (as gensim, the format does not
      say).

  Returns:
    ``WordVectors`` in the file's order.

  Raises:
    ValueError: if the header is not ``"V E"``, a line does not hold a word
      and E numbers, there are fewer than V words, or a word repeats (the
      message gives the line).
  """
  data = pathlib.Path(path).read_bytes()
  newline = data.find(b"\n")
  header = data[:newline if newline >= 0 else len(data)].split()
  if len(header) != 2 or not all(h.isdigit() for h in header):
    raise ValueError(f"{path}: the first line must be 'V E' (two counts), got "
                     f"{data[:60]!r}")
  count, size = int(header[0]), int(header[1])
  words: list[str] = []
  if binary:
    table = np.zeros((count, size), np.float32)
    position = newline + 1
    width = 4 * size
    for i in range(count):
      while data[position:position + 1] == b"\n":  # word2vec.c ends each vector with one
        position += 1
      space = data.find(b" ", position)
      if space < 0 or space + 1 + width > len(data):
        raise ValueError(f"{path}: expected {count} words, the file ends after {i}")
      words.append(data[position:space].decode("utf-8"))
      table[i] = np.frombuffer(data, "<f4", size, space + 1)
      position = space + 1 + width
  else:
    lines = data[newline + 1:].decode("utf-8").splitlines()
    lines = [line for line in lines if line.strip()]
    if len(lines) < count:
      raise ValueError(f"{path}: expected {count} words, the file holds {len(lines)}")
    values: list[str] = []
    for number, line in enumerate(lines[:count], start=2):
      parts = line.rstrip().split(" ")
      if len(parts) != size + 1:
        raise ValueError(f"{path}, line {number}: expected a word and {size} numbers, got "
                         f"{len(parts) - 1} numbers")
      words.append(parts[0])
      values.extend(parts[1:])
    table = np.asarray(values, dtype=np.float32).reshape(count, size)
  if len(set(words)) != len(words):
    raise ValueError(f"{path}: words must be distinct")
  return WordVectors(tuple(words), table)


# ----------------------------------------------------------------------------
# Nearest neighbours.
# ----------------------------------------------------------------------------


def _unit(table: np.ndarray) -> np.ndarray:
  """Rows scaled to unit length (a zero row stays zero instead of becoming NaN)."""
  norms = np.linalg.norm(table, axis=-1, keepdims=True)
  return table / np.where(norms > 0, norms, 1).astype(table.dtype)


def _check_method(method: str) -> str:
  if method not in METHODS:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
  return method


def _rows(vectors: WordVectors, words: Sequence[str], name: str) -> list[int]:
  index = vectors.index()
  if isinstance(words, str):
    words = [words]
  missing = [w for w in words if w not in index]
  if missing:
    raise KeyError(f"{name}: words not in the vocabulary: {missing}")
  return [index[w] for w in words]


def most_similar(vectors: WordVectors, positive: Sequence[str] = (),
                 negative: Sequence[str] = (), *, topn: int = 10,
                 restrict_vocab: Optional[int] = None,
                 method: str = "3cosadd") -> list[tuple[str, float]]:
  """The words closest to ``sum(positive) - sum(negative)``, as gensim ranks them.

  3CosAdd (``KeyedVectors.most_similar``): the query is the mean of the unit
  query vectors with weights +1 / -1, unit-normalised, and words are ranked
  by cosine with it. 3CosMul (``most_similar_cosmul``): words are ranked by
  ``prod_p (1 + cos(w, p)) / 2 / (prod_n (1 + cos(w, n)) / 2 + 1e-6)``.

  Args:
    vectors: the word vectors.
    positive: words that count positively (a single word may be a str).
    negative: words that count negatively.
    topn: how many to return.
    restrict_vocab: rank only the first this many words (gensim offers it
      for 3CosAdd only).
    method: ``"3cosadd"`` or ``"3cosmul"``.

  Returns:
    ``[(word, score)]``, best first, without the query words.

  Raises:
    KeyError: for a query word outside the vocabulary.
    ValueError: with no positive word for 3CosMul, or no word at all.
  """
  method = _check_method(method)
  positive_rows = _rows(vectors, positive, "positive")
  negative_rows = _rows(vectors, negative, "negative")
  if not positive_rows and (method == "3cosmul" or not negative_rows):
    raise ValueError("positive must hold at least one word")
  limit = len(vectors.words) if restrict_vocab is None else int(restrict_vocab)
  unit = _unit(np.asarray(vectors.vectors, np.float32))
  candidates = unit[:limit]
  if method == "3cosadd":
    query = (unit[positive_rows].sum(0) - unit[negative_rows].sum(0)) / (
        len(positive_rows) + len(negative_rows))
    query = _unit(query[None])[0]
    scores = candidates @ query
  else:
    shifted = (1 + candidates @ unit[positive_rows + negative_rows].T) / 2
    scores = (np.prod(shifted[:, :len(positive_rows)], axis=1) /
              (np.prod(shifted[:, len(positive_rows):], axis=1) + _COSMUL_EPSILON))
  scores = scores.astype(np.float32)
  scores[[r for r in positive_rows + negative_rows if r < limit]] = -np.inf
  best = np.argsort(-scores, kind="stable")[:topn]
  return [(vectors.words[i], float(scores[i])) for i in best if np.isfinite(scores[i])]


def analogy(vectors: WordVectors, word: str, minus: str, plus: str, *, topn: int = 1,
            method: str = "3cosadd") -> list[tuple[str, float]]:
  """``word - minus + plus``: ``analogy(v, "king", "man", "woman")`` ~ queen.

  The question "``minus`` is to ``word`` as ``plus`` is to ?", answered by
  ``most_similar(positive=[word, plus], negative=[minus])``.

  Args:
    vectors: the word vectors.
    word, minus, plus: the query's three words.
    topn: how many answers.
    method: ``"3cosadd"`` or ``"3cosmul"``.

  Returns:
    ``[(word, score)]``, best first.
  """
  return most_similar(vectors, [word, plus], [minus], topn=topn, method=method)


# ----------------------------------------------------------------------------
# Analogies.
# ----------------------------------------------------------------------------


class SectionScore(NamedTuple):
  """One section of an analogy file (e.g. ``capital-common-countries``)."""

  name: str
  correct: int
  incorrect: int

  @property
  def total(self) -> int:
    return self.correct + self.incorrect

  @property
  def accuracy(self) -> float:
    """correct / scored; 0.0 when nothing was scored (as gensim's score)."""
    return self.correct / self.total if self.total else 0.0


class AnalogyScore(NamedTuple):
  """The result of ``evaluate_analogies``."""

  accuracy: float  # correct / scored over every section (gensim's returned score)
  correct: int
  scored: int  # questions whose 4 words are all among the first restrict_vocab words
  skipped: int  # questions with a word outside them (gensim logs them as OOV)
  sections: tuple[SectionScore, ...]  # in file order
  semantic_accuracy: float  # over the sections whose name does not start with "gram"
  syntactic_accuracy: float  # over the "gram*" sections
  semantic_scored: int
  syntactic_scored: int


def _read_analogies(path: PathLike, case_insensitive: bool
                    ) -> tuple[list[str], list[tuple[int, str, str, str, str]]]:
  """Section names and ``(section, a, b, c, expected)`` per valid question line."""
  names: list[str] = []
  questions = []
  with open(path, "rb") as f:
    for number, raw in enumerate(f):
      line = raw.decode("utf-8")
      if line.startswith(": "):
        names.append(line.lstrip(": ").strip())
        continue
      if not names:
        raise ValueError(f"Missing section header before line #{number} in {path}")
      words = line.split()
      if len(words) != 4:
        continue  # gensim skips an invalid line the same way
      if case_insensitive:
        words = [w.upper() for w in words]
      questions.append((len(names) - 1, *words))
  return names, questions


@functools.partial(jax.jit, static_argnames=("method",))
def _predict(unit: Array, queries: Array, excluded: Array, groups: Array, *,
             method: str) -> Array:
  """Row of the best candidate for each question (Q,).

  Args:
    unit: (R, E) unit vectors of the candidates.
    queries: (Q, 3) rows of a, b, c.
    excluded: (Q, 3) group ids of a, b, c: candidates in these groups are
      left out (a word and its case variants).
    groups: (R,) group id of each candidate.
  """
  a, b, c = (unit[queries[:, i]] for i in range(3))
  if method == "3cosadd":
    query = (b + c - a) / 3
    query = query / jnp.maximum(jnp.linalg.norm(query, axis=-1, keepdims=True), 1e-30)
    scores = query @ unit.T
  else:
    shift = lambda x: (1 + x @ unit.T) / 2  # noqa: E731
    scores = shift(b) * shift(c) / (shift(a) + _COSMUL_EPSILON)
  hidden = functools.reduce(jnp.logical_or, [groups[None, :] == excluded[:, i:i + 1]
                                             for i in range(3)])
  return jnp.argmax(jnp.where(hidden, -jnp.inf, scores), axis=-1)


def _restricted(vectors: WordVectors, restrict_vocab: int, case_insensitive: bool
                ) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
  """gensim's ``ok_vocab`` (key -> row, the first row of each case-folded key),
  the group (that first row) of every restricted row, and the restricted rows' unit vectors."""
  rows = vectors.words[:restrict_vocab]
  keys = [w.upper() for w in rows] if case_insensitive else list(rows)
  ok_vocab: dict[str, int] = {}
  for i, key in enumerate(keys):
    ok_vocab.setdefault(key, i)  # gensim: dict over reversed keys, so the first row wins
  groups = np.asarray([ok_vocab[key] for key in keys], np.int32)
  unit = _unit(np.asarray(vectors.vectors[:restrict_vocab], np.float32))
  return ok_vocab, groups, unit


def evaluate_analogies(vectors: WordVectors, path: PathLike, *, restrict_vocab: int = 30_000,
                       case_insensitive: bool = True, method: str = "3cosadd",
                       batch_size: int = 512) -> AnalogyScore:
  """Scores ``a : b :: c : d`` questions as gensim's ``evaluate_word_analogies``.

  Reading: lines ``": name"`` open a section; other lines are 4 words
  (others are skipped). With ``case_insensitive``, words are upper-cased and
  a vocabulary word stands for every case variant, its first (most frequent)
  row giving the vector. A question is scored only if all 4 words are among
  the first ``restrict_vocab`` words; the prediction is the candidate among
  those words that best matches ``b - a + c`` (3CosAdd, gensim's method, or
  3CosMul), the question words (and their case variants) left out; it is
  correct if it is ``d`` (case folded).

  Args:
    vectors: the word vectors, most frequent first.
    path: the questions (e.g. gensim's ``questions-words.txt``).
    restrict_vocab: how many of the first words to use (gensim's 30,000).
    case_insensitive: fold case as gensim does by default.
    method: ``"3cosadd"`` (gensim's) or ``"3cosmul"``.
    batch_size: questions per matrix product (padded, so one compilation).

  Returns:
    An ``AnalogyScore``: overall, per section and semantic (sections not
    named ``gram*``; in ``questions-words.txt`` the first five) vs syntactic
    (``gram*``) accuracy, with counts. Accuracies are 0.0 where nothing was
    scored (gensim's score then).

  Raises:
    ValueError: for a question line before the first section.
  """
  method = _check_method(method)
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
  if isinstance(restrict_vocab, bool) or not isinstance(restrict_vocab, int) or restrict_vocab < 1:
    raise ValueError(f"restrict_vocab must be an int >= 1, got {restrict_vocab!r}")
  names, questions = _read_analogies(path, case_insensitive)
  ok_vocab, groups, unit = _restricted(vectors, restrict_vocab, case_insensitive)
  scored = [q for q in questions if all(w in ok_vocab for w in q[1:])]
  correct = np.zeros(len(names), np.int64)
  incorrect = np.zeros(len(names), np.int64)
  if scored:
    rows = np.asarray([[ok_vocab[w] for w in q[1:]] for q in scored], np.int32)  # (Q, 4)
    section = np.asarray([q[0] for q in scored])
    predicted = np.zeros(len(scored), np.int64)
    unit_device, groups_device = jnp.asarray(unit), jnp.asarray(groups)
    for start in range(0, len(scored), batch_size):
      chunk = rows[start:start + batch_size]
      padded = np.zeros((batch_size, 4), np.int32)
      padded[:len(chunk)] = chunk
      # Rows of ok_vocab are group ids already (the first row of their key).
      predicted[start:start + len(chunk)] = np.asarray(_predict(
          unit_device, jnp.asarray(padded[:, :3]), jnp.asarray(padded[:, :3]), groups_device,
          method=method))[:len(chunk)]
    right = groups[predicted] == rows[:, 3]
    np.add.at(correct, section, right)
    np.add.at(incorrect, section, ~right)
  sections = tuple(SectionScore(name, int(c), int(i))
                   for name, c, i in zip(names, correct, incorrect))

  def accuracy(parts):
    total = sum(s.total for s in parts)
    return (sum(s.correct for s in parts) / total if total else 0.0), total

  overall, total = accuracy(sections)
  semantic, semantic_total = accuracy([s for s in sections if not s.name.startswith("gram")])
  syntactic, syntactic_total = accuracy([s for s in sections if s.name.startswith("gram")])
  return AnalogyScore(overall, int(correct.sum()), total, len(questions) - total, sections,
                      semantic, syntactic, semantic_total, syntactic_total)


# ----------------------------------------------------------------------------
# Similarity.
# ----------------------------------------------------------------------------


class SimilarityScore(NamedTuple):
  """The result of ``evaluate_similarity``."""

  spearman: float  # rank correlation of cosines with the human scores (gensim's spearman[0])
  pearson: float  # linear correlation (gensim's pearson[0])
  pairs: int  # pairs scored
  skipped: int  # pairs with a word outside the vocabulary
  oov_ratio: float  # skipped / (pairs + skipped) * 100, as gensim


def evaluate_similarity(vectors: WordVectors, path: PathLike, *, delimiter: str = "\t",
                        restrict_vocab: int = 300_000,
                        case_insensitive: bool = True) -> SimilarityScore:
  """Correlation with human similarity judgements, as gensim's ``evaluate_word_pairs``.

  Reading: lines starting with ``#`` are comments; a line is ``word1``,
  ``word2`` and a score separated by ``delimiter`` (other lines are skipped);
  a pair is skipped if a word is not among the first ``restrict_vocab`` words
  (case folded, the first row of a key giving its vector). The model's score
  is the cosine of the two vectors.

  Args:
    vectors: the word vectors.
    path: e.g. gensim's ``wordsim353.tsv`` or ``simlex999.txt``.
    delimiter: the field separator (gensim's tab).
    restrict_vocab: how many of the first words to use (gensim's 300,000).
    case_insensitive: fold case (gensim's default).

  Returns:
    A ``SimilarityScore``.

  Raises:
    ValueError: if no pair can be scored.
  """
  rows = vectors.words[:restrict_vocab]
  ok_vocab: dict[str, int] = {}
  for i, word in enumerate(rows):
    ok_vocab.setdefault(word.upper() if case_insensitive else word, i)
  gold: list[float] = []
  pairs: list[tuple[int, int]] = []
  skipped = 0
  with open(path, encoding="utf-8") as f:
    for line in f:
      if not line or line.startswith("#"):
        continue
      parts = line.split(delimiter)
      if len(parts) != 3:
        continue
      if case_insensitive:
        parts = [p.upper() for p in parts]
      try:
        score = float(parts[2])
      except ValueError:
        continue
      a, b = parts[0], parts[1]
      if a not in ok_vocab or b not in ok_vocab:
        skipped += 1
        continue
      gold.append(score)
      pairs.append((ok_vocab[a], ok_vocab[b]))
  if not pairs:
    raise ValueError(f"no pair of {path} has both words in the vocabulary")
  index = np.asarray(pairs)
  unit = _unit(np.asarray(vectors.vectors, np.float32))
  model = np.sum(unit[index[:, 0]] * unit[index[:, 1]], axis=-1)
  spearman = scipy.stats.spearmanr(gold, model)[0]
  pearson = scipy.stats.pearsonr(gold, model)[0]
  return SimilarityScore(float(spearman), float(pearson), len(pairs), skipped,
                         skipped / (len(pairs) + skipped) * 100)
