"""Tests for seqjax.data.vocab.CharVocab."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.data.vocab import CharVocab


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
