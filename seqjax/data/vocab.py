"""Vocabularies: characters or words <-> int32 ids, with an unknown entry.

Built from the training text only, so validation and test characters never
seen in training map to one unknown id instead of silently growing the
vocabulary (which would change the model's output size between splits).
Saved as JSON next to a checkpoint so that sampling decodes with exactly the
ids the model was trained on::

  vocab = CharVocab.from_text(splits["train"])
  ids = vocab.encode(splits["validation"])          # (T,) int32
  (workdir / "vocab.json").write_text(vocab.to_json())
  vocab = CharVocab.from_json((workdir / "vocab.json").read_text())
  text = vocab.decode(ids)

``WordVocab`` does the same for words (a tokenized text), keeping the most
frequent training words.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import Any, Mapping, Sequence

import numpy as np

_VERSION = 1  # of the JSON format of CharVocab and WordVocab


def check_unk_id(unk_id: Any, entries: tuple, name: str) -> int:
  """``unk_id`` as an int index into ``entries`` (named ``name`` in errors)."""
  if (isinstance(unk_id, bool) or not isinstance(unk_id, (int, np.integer))
      or not 0 <= unk_id < len(entries)):
    raise ValueError(f"unk_id must be an index into {name} (0..{len(entries) - 1}), "
                     f"got {unk_id!r}")
  return int(unk_id)


def check_ids(ids: Any, size: int) -> np.ndarray:
  """Ids to decode as a flat integer array (T,), each in ``[0, size)``.

  Args:
    ids: integer ids (T,) (a list, numpy or JAX array) or one id.
    size: the vocabulary's size.
  """
  ids = np.asarray(ids)
  if ids.ndim > 1:
    raise ValueError(f"ids must be one sequence (T,), got shape {ids.shape}; "
                     f"decode each row separately")
  if ids.size == 0:
    return np.zeros((0,), np.int64)
  if not np.issubdtype(ids.dtype, np.integer):
    raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
  ids = ids.reshape(-1)
  bad = (ids < 0) | (ids >= size)
  if bad.any():
    raise ValueError(f"ids must be in [0, {size}) for this vocabulary of "
                     f"size {size}, got {ids[bad][0]}")
  return ids


def vocab_to_json(kind: str, field: str, entries: tuple, unk_id: int) -> str:
  """The JSON of a vocabulary class ``kind`` (e.g. ``"CharVocab"``) whose
  entries are stored under ``field``.

  Args:
    kind: the vocabulary class's name, stored as the format ``"seqjax.<kind>"``.
    field: the JSON key the entries are stored under (e.g. ``"chars"``).
    entries: the entry of each id, stored as a list.
    unk_id: the id of the unknown entry, stored under ``"unk_id"``.
  """
  return json.dumps({"format": f"seqjax.{kind}", "version": _VERSION,
                     field: list(entries), "unk_id": unk_id}, ensure_ascii=True)


def vocab_from_json(s: str, kind: str, field: str) -> tuple[tuple, Any]:
  """``(entries, unk_id)`` from the JSON ``vocab_to_json`` wrote for ``kind``.

  Args:
    s: the JSON string.
    kind: the vocabulary class's name (e.g. ``"CharVocab"``) it must be for.
    field: the JSON key the entries were stored under (e.g. ``"chars"``).

  Raises:
    ValueError: if ``s`` is not such a JSON string, or ``field`` does not hold
      a list.
  """
  form = f"seqjax.{kind}"
  try:
    data = json.loads(s)
  except (TypeError, ValueError) as e:
    raise ValueError(f"s must be the JSON written by {kind}.to_json, "
                     f"got {str(s)[:60]!r}: {e}") from None
  if not isinstance(data, dict) or data.get("format") != form:
    raise ValueError(f"s must be the JSON written by {kind}.to_json "
                     f"(format {form!r}), got {str(s)[:60]!r}")
  if data.get("version") != _VERSION:
    raise ValueError(f"unsupported {kind} JSON version {data.get('version')!r}, "
                     f"expected {_VERSION}")
  entries = data.get(field)
  if not isinstance(entries, list):
    raise ValueError(f"{kind} JSON must hold a list {field!r}, got {entries!r}")
  return tuple(entries), data.get("unk_id")


def _code_points(text: str) -> np.ndarray:
  """Unicode code points of ``text`` as uint32 (T,), without a Python loop."""
  return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


@dataclasses.dataclass(frozen=True)
class CharVocab:
  """A fixed mapping between characters and ids ``0 .. size - 1``.

  Attributes:
    chars: the character of each id; ``chars[unk_id]`` is the unknown symbol.
    unk_id: the id every character outside the vocabulary encodes to.
  """

  chars: tuple[str, ...]
  unk_id: int
  # Code point -> id table (unk everywhere else, and in the last slot for
  # every code point above the largest known one): encode is one gather over
  # millions of characters instead of a Python loop.
  _table: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

  def __post_init__(self):
    chars = self.chars
    if isinstance(chars, str) or not isinstance(chars, (tuple, list)):
      raise TypeError(f"chars must be a tuple of single characters, got "
                      f"{type(chars).__name__}")
    chars = tuple(chars)
    for c in chars:
      if not isinstance(c, str) or len(c) != 1:
        raise ValueError(f"chars must hold single characters, got {c!r}")
    if len(set(chars)) != len(chars):
      raise ValueError(f"chars must be distinct, got duplicates in {chars!r}")
    object.__setattr__(self, "unk_id", check_unk_id(self.unk_id, chars, "chars"))
    object.__setattr__(self, "chars", chars)
    known = [i for i in range(len(chars)) if i != self.unk_id]
    top = max((ord(chars[i]) for i in known), default=-1)
    table = np.full(top + 2, self.unk_id, dtype=np.int32)
    for i in known:
      table[ord(chars[i])] = i
    object.__setattr__(self, "_table", table)

  @classmethod
  def from_text(cls, text: str, *, unk: str = "\ufffd") -> "CharVocab":
    """The vocabulary of ``text``: its distinct characters, sorted, then ``unk``.

    Args:
      text: the training text.
      unk: the symbol standing for unknown characters (one character). If
        it also occurs in ``text`` it is still a single id.

    Returns:
      A vocabulary with ``size == len(set(text) | {unk})`` and ``unk_id ==
      size - 1``, so known characters keep their sorted order as ids.
    """
    if not isinstance(text, str):
      raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not isinstance(unk, str) or len(unk) != 1:
      raise ValueError(f"unk must be a single character, got {unk!r}")
    if not text:
      raise ValueError("text must be non-empty to build a vocabulary, got ''")
    chars = tuple(sorted(set(text) - {unk})) + (unk,)
    return cls(chars, len(chars) - 1)

  @property
  def size(self) -> int:
    """Number of ids, the unknown symbol included (the model's output size)."""
    return len(self.chars)

  def __len__(self) -> int:
    return len(self.chars)

  @property
  def unk(self) -> str:
    """The unknown symbol, ``chars[unk_id]``."""
    return self.chars[self.unk_id]

  def encode(self, text: str) -> np.ndarray:
    """Characters -> ids.

    Args:
      text: any string.

    Returns:
      int32 array (T,) with ``T == len(text)``; characters outside the
      vocabulary (the unknown symbol itself included) map to ``unk_id``.
    """
    if not isinstance(text, str):
      raise TypeError(f"text must be a str, got {type(text).__name__}")
    points = _code_points(text)
    return self._table[np.minimum(points, len(self._table) - 1)]

  def decode(self, ids: Any) -> str:
    """Ids -> characters.

    Args:
      ids: integer ids (T,) (a list, numpy or JAX array) or one id.

    Returns:
      The string of ``len(ids)`` characters; ``unk_id`` decodes to ``unk``.
    """
    ids = check_ids(ids, self.size)
    return "".join(np.asarray(self.chars, dtype=object)[ids])

  def to_json(self) -> str:
    """This vocabulary as a JSON string (keeps every id, for ``from_json``)."""
    return vocab_to_json("CharVocab", "chars", self.chars, self.unk_id)

  @classmethod
  def from_json(cls, s: str) -> "CharVocab":
    """The vocabulary saved by ``to_json``.

    Raises:
      ValueError: if ``s`` is not a vocabulary written by ``to_json``.
    """
    return cls(*vocab_from_json(s, "CharVocab", "chars"))


@dataclasses.dataclass(frozen=True, repr=False)
class WordVocab:
  """A fixed mapping between words and ids ``0 .. size - 1``.

  Attributes:
    words: the word of each id; ``words[unk_id]`` is the unknown token.
    unk_id: the id every word outside the vocabulary encodes to.
  """

  words: tuple[str, ...]
  unk_id: int
  _index: dict = dataclasses.field(init=False, compare=False)

  def __post_init__(self):
    words = self.words
    if isinstance(words, str) or not isinstance(words, (tuple, list)):
      raise TypeError(f"words must be a tuple of str, got {type(words).__name__}")
    words = tuple(words)
    for w in words:
      if not isinstance(w, str) or not w:
        raise ValueError(f"words must hold non-empty strings, got {w!r}")
    if len(set(words)) != len(words):
      duplicates = sorted(w for w, n in collections.Counter(words).items() if n > 1)
      raise ValueError(f"words must be distinct, got duplicates {duplicates[:5]}")
    object.__setattr__(self, "unk_id", check_unk_id(self.unk_id, words, "words"))
    object.__setattr__(self, "words", words)
    object.__setattr__(self, "_index", {w: i for i, w in enumerate(words)})

  @classmethod
  def from_counts(cls, counts: Mapping[str, int], size: int, *,
                  unk: str = "<unk>") -> "WordVocab":
    """The ``size - 1`` most frequent words of ``counts``, then ``unk``.

    Args:
      counts: word -> number of occurrences in the training text (e.g. a
        ``collections.Counter``); words with a count of 0 are ignored.
      size: the number of ids, ``unk`` included.
      unk: the unknown token. If it is also in ``counts`` it is still a
        single id.

    Returns:
      A vocabulary with ids in order of decreasing count (ties
      alphabetically) and ``unk_id == size - 1``.

    Raises:
      ValueError: if ``counts`` has fewer than ``size - 1`` words besides
        ``unk`` (the message gives how many it has).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
      raise ValueError(f"size must be a positive int, got {size!r}")
    if not isinstance(unk, str) or not unk:
      raise ValueError(f"unk must be a non-empty str, got {unk!r}")
    known = [(w, n) for w, n in counts.items() if n > 0 and w != unk]
    if len(known) < size - 1:
      raise ValueError(f"cannot build a vocabulary of size {size}: the counts "
                       f"hold only {len(known)} distinct words besides {unk!r} "
                       f"(size must be at most {len(known) + 1})")
    known.sort(key=lambda item: (-item[1], item[0]))
    return cls(tuple(w for w, _ in known[:size - 1]) + (unk,), size - 1)

  @property
  def size(self) -> int:
    """Number of ids, the unknown token included (the model's output size)."""
    return len(self.words)

  def __len__(self) -> int:
    return len(self.words)

  def __contains__(self, word: object) -> bool:
    return word in self._index

  def __repr__(self) -> str:
    return f"WordVocab(size={self.size}, unk={self.unk!r})"

  @property
  def unk(self) -> str:
    """The unknown token, ``words[unk_id]``."""
    return self.words[self.unk_id]

  def encode(self, tokens: Sequence[str]) -> np.ndarray:
    """Words -> ids.

    Args:
      tokens: a sequence of words (e.g. from a tokenizer), not a string.

    Returns:
      int32 array (T,) with ``T == len(tokens)``; words outside the
      vocabulary map to ``unk_id``.
    """
    if isinstance(tokens, (str, bytes)):
      raise TypeError("tokens must be a sequence of words, got a string; "
                      "split it into words first, e.g. with a tokenizer")
    index, unk_id = self._index, self.unk_id
    return np.fromiter((index.get(w, unk_id) for w in tokens), dtype=np.int32,
                       count=len(tokens))

  def decode(self, ids: Any) -> list[str]:
    """Ids -> words.

    Args:
      ids: integer ids (T,) (a list, numpy or JAX array) or one id.

    Returns:
      The ``T`` words; ``unk_id`` decodes to ``unk``.
    """
    ids = check_ids(ids, self.size)
    words = self.words
    return [words[i] for i in ids.tolist()]

  def to_json(self) -> str:
    """This vocabulary as a JSON string (keeps every id, for ``from_json``)."""
    return vocab_to_json("WordVocab", "words", self.words, self.unk_id)

  @classmethod
  def from_json(cls, s: str) -> "WordVocab":
    """The vocabulary saved by ``to_json``.

    Raises:
      ValueError: if ``s`` is not a vocabulary written by ``to_json``.
    """
    return cls(*vocab_from_json(s, "WordVocab", "words"))
