"""Tests for seqjax.data.text: tokenize (against a hand-written splitter), word_punct_tokenize, detokenize."""

import pytest

from seqjax.data.text import detokenize, tokenize, word_punct_tokenize


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


def test_word_punct_tokenize_splits_spanish_punctuation_and_keeps_accents():
  text = "¿Qué hizo el niño? ¡Mañana, señor! Está aquí (dijo)."
  assert word_punct_tokenize(text) == [
      "¿", "qué", "hizo", "el", "niño", "?", "¡", "mañana", ",", "señor", "!", "está",
      "aquí", "(", "dijo", ")", "."]
  assert word_punct_tokenize("ÁNGEL Ñandú", lower=False) == ["ÁNGEL", "Ñandú"]
  # One inner apostrophe, straight or curly, stays in the word; other marks stand alone.
  assert word_punct_tokenize("The LORD’s day, don't... 1,000 sons’") == [
      "the", "lord’s", "day", ",", "don't", ".", ".", ".", "1", ",", "000", "sons", "’"]
  # A combining accent (e + U+0301) is one letter, as the composed é.
  assert word_punct_tokenize("cafe\u0301") == ["café"]
  assert word_punct_tokenize("  \n") == []


@pytest.mark.parametrize("text", [
    "¿Qué hizo el niño? ¡Mañana, señor! Está aquí (dijo).",
    "Y dijo Dios: Sea la luz: y fué la luz.",
    "And God said, Let there be light: and there was light.",
    "The LORD’s house at Beer-sheba; the sons’ wives [all] went—so it is {sic}.",
    'He said "go away" and \'stay\', fine/ok, 50% done…',
    "«Hola», dijo “él”.",
])
def test_detokenize_inverts_word_punct_tokenize_up_to_whitespace(text):
  tokens = word_punct_tokenize(text)
  assert detokenize(tokens) == " ".join(text.lower().split())
  assert detokenize(word_punct_tokenize(text, lower=False)).lower() == detokenize(tokens)


def test_detokenize_examples_and_bad_input():
  assert detokenize(["¿", "qué", "dijo", "noé", "?"]) == "¿qué dijo noé?"
  assert detokenize(["beer", "-", "sheba", ",", "(", "sic", ")"]) == "beer-sheba, (sic)"
  assert detokenize([]) == ""
  # Documented limits: spaced hyphens close up, a straight quote alternates.
  assert detokenize(word_punct_tokenize("a - b")) == "a-b"
  assert detokenize(word_punct_tokenize("the Joneses' house")) == "the joneses 'house"
  with pytest.raises(TypeError, match="tokens"):
    detokenize("a string")
  with pytest.raises(TypeError, match="tokens"):
    detokenize(["a", 1])
  with pytest.raises(TypeError, match="text"):
    word_punct_tokenize(b"bytes")
