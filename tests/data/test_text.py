"""Tests for seqjax.data.text.tokenize, against a hand-written splitter."""

import pytest

from seqjax.data.text import tokenize


def _reference(text):
  """Character by character: letters runs with one inner apostrophe, digit runs."""
  text = text.replace("<br />", " ").replace("<br/>", " ").replace("<br>", " ").lower()
  tokens, i = [], 0
  while i < len(text):
    c = text[i]
    if "a" <= c <= "z":
      j = i
      while j < len(text) and "a" <= text[j] <= "z":
        j += 1
      if j + 1 < len(text) and text[j] == "'" and "a" <= text[j + 1] <= "z":
        j += 1
        while j < len(text) and "a" <= text[j] <= "z":
          j += 1
      tokens.append(text[i:j])
      i = j
    elif c.isdigit() and c.isascii():
      j = i
      while j < len(text) and text[j].isdigit() and text[j].isascii():
        j += 1
      tokens.append(text[i:j])
      i = j
    else:
      i += 1
  return tokens


@pytest.mark.parametrize("text", [
    "It's 2 GOOD.<br />Really, isn't it? Don't -- 1,000 fans'",
    "King's men (1999) won't rock'n'roll; o'neill 3g mp3",
    "",
    "  ...!!! ",
    "Café naïve résumé",
])
def test_tokenize_matches_a_character_loop(text):
  assert tokenize(text) == _reference(text)


def test_examples_and_bad_input():
  assert tokenize("It's 2 GOOD.<br />Really") == ["it's", "2", "good", "really"]
  with pytest.raises(TypeError, match="text"):
    tokenize(b"bytes")
