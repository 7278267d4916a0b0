"""Tests for seqjax.data.vocab: CharVocab and WordVocab."""

from __future__ import annotations

import collections
import json

import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.data.vocab import CharVocab, WordVocab


def test_from_text_sorted_chars_then_unk():
  vocab = CharVocab.from_text("hello, world")
  assert vocab.chars == (" ", ",", "d", "e", "h", "l", "o", "r", "w", "\ufffd")
  assert vocab.size == len(vocab) == 10
  assert vocab.unk_id == 9 and vocab.unk == "\ufffd"
  custom = CharVocab.from_text("ba", unk="?")
  assert custom.chars == ("a", "b", "?") and custom.unk_id == 2
  # The unknown symbol occurring in the text is still one id.
  assert CharVocab.from_text("a?b", unk="?").chars == ("a", "b", "?")


def test_encode_decode_round_trip():
  text = "To be, or not to be: that is the question:\nWhether 'tis nobler"
  vocab = CharVocab.from_text(text)
  ids = vocab.encode(text)
  assert ids.dtype == np.int32 and ids.shape == (len(text),)
  expected = np.array([sorted(set(text)).index(c) for c in text], np.int32)
  np.testing.assert_array_equal(ids, expected)
  assert vocab.decode(ids) == text
  assert vocab.decode(list(ids)) == text
  assert vocab.decode(jnp.asarray(ids)) == text
  assert vocab.decode(ids[3]) == text[3]
  assert vocab.encode("").shape == (0,) and vocab.decode([]) == ""


def test_unknown_characters_map_to_unk():
  vocab = CharVocab.from_text("abc")
  ids = vocab.encode("abzc\u00e9\U0001F600a\ufffd")
  np.testing.assert_array_equal(ids, [0, 1, 3, 2, 3, 3, 0, 3])
  assert vocab.decode(ids) == "ab\ufffdc\ufffd\ufffda\ufffd"


def test_encode_matches_dictionary_reference_on_random_unicode():
  rng = np.random.default_rng(0)
  alphabet = [chr(c) for c in rng.choice(np.arange(32, 0x2FFF), 300, replace=False)]
  alphabet += ["\U0001F600", "\U00010348"]  # outside the BMP
  train = "".join(rng.choice(alphabet[:200], 2000))
  probe = "".join(rng.choice(alphabet, 3000))
  vocab = CharVocab.from_text(train)
  lookup = {c: i for i, c in enumerate(vocab.chars)}
  reference = [lookup.get(c, vocab.unk_id) for c in probe]
  np.testing.assert_array_equal(vocab.encode(probe), reference)


def test_json_round_trip():
  vocab = CharVocab.from_text("Now is the winter of our discontent\u2014", unk="~")
  restored = CharVocab.from_json(vocab.to_json())
  assert restored == vocab
  assert restored.chars == vocab.chars and restored.unk_id == vocab.unk_id
  probe = "winter \u2014 summer!"
  np.testing.assert_array_equal(restored.encode(probe), vocab.encode(probe))
  # Ids are kept, not recomputed: a vocabulary whose unknown symbol is not
  # last survives the round trip unchanged.
  odd = CharVocab(("x", "?", "a"), unk_id=1)
  assert CharVocab.from_json(odd.to_json()) == odd
  np.testing.assert_array_equal(odd.encode("ax?b"), [2, 0, 1, 1])


def test_bad_arguments():
  vocab = CharVocab.from_text("abc")
  with pytest.raises(ValueError, match="unk"):
    CharVocab.from_text("abc", unk="??")
  with pytest.raises(ValueError, match="non-empty"):
    CharVocab.from_text("")
  with pytest.raises(TypeError, match="text"):
    vocab.encode(b"abc")
  with pytest.raises(ValueError, match=r"\[0, 4\).*got 4"):
    vocab.decode([0, 4])
  with pytest.raises(ValueError, match="got -1"):
    vocab.decode(np.array([-1]))
  with pytest.raises(ValueError, match="shape"):
    vocab.decode(np.zeros((2, 3), np.int32))
  with pytest.raises(TypeError, match="integers"):
    vocab.decode(np.array([0.0, 1.0]))
  with pytest.raises(ValueError, match="distinct"):
    CharVocab(("a", "a", "?"), unk_id=2)
  with pytest.raises(ValueError, match="unk_id"):
    CharVocab(("a", "?"), unk_id=2)
  with pytest.raises(ValueError, match="to_json"):
    CharVocab.from_json("not json")
  with pytest.raises(ValueError, match="format"):
    CharVocab.from_json('{"chars": ["a"], "unk_id": 0}')


def test_vocab_from_counts_orders_by_count_then_word():
  counts = collections.Counter({"the": 5, "a": 3, "cat": 3, "sat": 1, "<eos>": 4,
                                "gone": 0})
  vocab = WordVocab.from_counts(counts, 5)
  assert vocab.words == ("the", "<eos>", "a", "cat", "<unk>")
  assert vocab.size == len(vocab) == 5
  assert vocab.unk_id == 4 and vocab.unk == "<unk>"
  assert "cat" in vocab and "sat" not in vocab
  assert repr(vocab) == "WordVocab(size=5, unk='<unk>')"
  # All words fit; "gone" (count 0) is not a word of the text.
  assert WordVocab.from_counts(counts, 6).words[-2:] == ("sat", "<unk>")
  with pytest.raises(ValueError, match="only 5 distinct words"):
    WordVocab.from_counts(counts, 7)
  # An unk that occurs in the counts is still one id.
  assert WordVocab.from_counts({"<unk>": 9, "x": 1}, 2).words == ("x", "<unk>")


def test_vocab_encode_decode_round_trip():
  vocab = WordVocab.from_counts(collections.Counter(
      ["the", "cat", "sat", "on", "the", "mat", "<eos>"]), 5)
  tokens = ["the", "cat", "sat", "on", "the", "dog", "<eos>"]
  ids = vocab.encode(tokens)
  assert ids.dtype == np.int32 and ids.shape == (len(tokens),)
  decoded = vocab.decode(ids)
  assert decoded == [w if w in vocab else "<unk>" for w in tokens]
  assert "<unk>" in decoded  # "dog", and the words beyond the 4 kept
  known = [w for w in tokens if w in vocab]
  assert vocab.decode(vocab.encode(known)) == known
  assert vocab.decode(list(vocab.encode(known))) == known
  assert vocab.decode(np.int64(vocab.unk_id)) == ["<unk>"]
  assert vocab.encode([]).shape == (0,) and vocab.decode([]) == []
  with pytest.raises(TypeError, match="tokenize"):
    vocab.encode("the cat")
  with pytest.raises(ValueError, match=r"\[0, 5\)"):
    vocab.decode([5])
  with pytest.raises(ValueError, match="one sequence"):
    vocab.decode(np.zeros((2, 2), np.int32))
  with pytest.raises(TypeError, match="integers"):
    vocab.decode([0.5])


def test_vocab_json_round_trip():
  vocab = WordVocab(("the", "o'neill", "£", "N", "<eos>", "<unk>"), 5)
  restored = WordVocab.from_json(vocab.to_json())
  assert restored == vocab and restored.words == vocab.words
  assert restored.unk_id == 5
  assert json.loads(vocab.to_json())["format"] == "seqjax.WordVocab"
  for bad in ("not json", json.dumps({"words": ["a"]}),
              json.dumps({"format": "seqjax.CharVocab", "version": 1})):
    with pytest.raises(ValueError, match="WordVocab.to_json"):
      WordVocab.from_json(bad)
  with pytest.raises(ValueError, match="version"):
    WordVocab.from_json(json.dumps({"format": "seqjax.WordVocab", "version": 2}))


def test_vocab_rejects_bad_words():
  with pytest.raises(ValueError, match="distinct"):
    WordVocab(("a", "a", "<unk>"), 2)
  with pytest.raises(ValueError, match="unk_id"):
    WordVocab(("a", "<unk>"), 2)
  with pytest.raises(ValueError, match="non-empty"):
    WordVocab(("a", ""), 0)
  with pytest.raises(TypeError, match="tuple"):
    WordVocab("ab", 0)
