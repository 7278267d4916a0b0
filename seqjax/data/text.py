"""Words from raw English text: the one tokenizer seqjax's text models use.

Every text experiment (word2vec and its gensim comparison, the review and news
classifiers) tokenizes with ``tokenize``, so vectors trained on one corpus
look up the same words a classifier sees, and gensim is fed exactly the
tokens seqjax is fed.

The rule: lower-case, drop HTML line breaks (IMDB reviews carry ``<br />``),
then keep maximal runs of ``[a-z]+(?:'[a-z]+)?`` (words, with one inner
apostrophe: ``don't``, ``king's``) and ``[0-9]+`` (numbers); everything else
(punctuation, accents' combining marks, symbols) separates tokens.

Translation experiments need text that can be put back together, in any
language, so they use ``word_punct_tokenize`` and its inverse ``detokenize``
instead: Unicode words (Spanish accents and ``ñ`` included) and every
punctuation mark as its own token (``¿``, ``¡``, commas), so that
``detokenize(word_punct_tokenize(s))`` gives back ``s.lower()`` up to
whitespace for ordinary sentences.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

TOKEN_PATTERN = r"[a-z]+(?:'[a-z]+)?|[0-9]+"
_TOKEN = re.compile(TOKEN_PATTERN)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
  """Splits ``text`` into lower-case word and number tokens.

  Args:
    text: a document, sentence or line.

  Returns:
    The tokens in order, e.g. ``tokenize("It's 2 GOOD.<br />Really")`` is
    ``["it's", "2", "good", "really"]``; an empty list for text without any.

  Raises:
    TypeError: if ``text`` is not a str.
  """
  if not isinstance(text, str):
    raise TypeError(f"text must be a str, got {type(text).__name__}")
  return _TOKEN.findall(_BREAK.sub(" ", text).lower())


WORD_PUNCT_PATTERN = r"\w+(?:['\u2019]\w+)?|[^\w\s]"
_WORD_PUNCT = re.compile(WORD_PUNCT_PATTERN)
# How detokenize spaces a punctuation token: closing marks attach to the token
# before them, opening marks to the one after, joiners to both; anything else
# (words, other symbols) stands between spaces. Straight quotes open and close
# in turn.
_CLOSING = frozenset(".,;:!?)]}%\u2026\u00bb\u201d\u2019")  # … » ” ’
_OPENING = frozenset("([{\u00bf\u00a1\u00ab\u201c\u2018")  # ¿ ¡ « “ ‘
_JOINING = frozenset("-/\u2010\u2011\u2013\u2014")  # ‐ ‑ – —
_STRAIGHT_QUOTES = frozenset("\"'")


def word_punct_tokenize(text: str, *, lower: bool = True) -> list[str]:
  """Splits ``text`` into words and single punctuation marks, in any script.

  A word is a maximal run of letters, digits and underscores (Python's
  Unicode ``\\w``: ``ñ``, ``á``, ``ü`` are letters) with at most one inner
  apostrophe, straight or curly (``don't``, ``LORD’s``); every other
  character that is not whitespace is a token of its own, so ``¿`` and ``¡``
  stand apart from the word they open and ``...`` is three tokens. The text
  is put in Unicode NFC first, so that a letter written with a combining
  accent (``e`` + U+0301) is one letter. ``detokenize`` undoes it up to
  whitespace.

  Args:
    text: a sentence, verse or document.
    lower: whether to lower-case the text first.

  Returns:
    The tokens in order, e.g. ``word_punct_tokenize("¿Qué dijo Noé?")`` is
    ``["¿", "qué", "dijo", "noé", "?"]`` and ``word_punct_tokenize("The
    LORD’s day, (sic)!", lower=False)`` is ``["The", "LORD’s", "day", ",",
    "(", "sic", ")", "!"]``; an empty list for blank text.

  Raises:
    TypeError: if ``text`` is not a str.
  """
  if not isinstance(text, str):
    raise TypeError(f"text must be a str, got {type(text).__name__}")
  text = unicodedata.normalize("NFC", text)
  return _WORD_PUNCT.findall(text.lower() if lower else text)


def detokenize(tokens: Sequence[str]) -> str:
  """Joins tokens into text with the spacing of ordinary prose: inverts ``word_punct_tokenize``.

  Tokens are separated by one space, except that closing punctuation
  (``. , ; : ! ? ) ] } % … » ” ’``) attaches to the token before it, opening
  punctuation (``¿ ¡ ( [ { « “ ‘``) to the token after it, and joiners
  (hyphens, dashes, ``/``) to both. A straight quote (``"`` or ``'``) opens
  and closes in turn. So ``detokenize(word_punct_tokenize(s))`` equals
  ``s.lower()`` up to whitespace unless ``s`` spaces its punctuation
  unusually (``"a - b"``, ``"wait ..."``) or uses a straight apostrophe
  outside a word (``"the Joneses' house"``).

  Args:
    tokens: (T,) token strings, e.g. a model's output.

  Returns:
    The text, e.g. ``detokenize(["¿", "qué", "dijo", "noé", "?"])`` is
    ``"¿qué dijo noé?"`` and ``detokenize(["beer", "-", "sheba", ",",
    "(", "sic", ")"])`` is ``"beer-sheba, (sic)"``; ``""`` for no tokens.

  Raises:
    TypeError: if ``tokens`` is a str or holds anything but str.
  """
  if isinstance(tokens, str):
    raise TypeError(f"tokens must be a sequence of str tokens, got the str {tokens!r} "
                    f"(tokenize it first)")
  out: list[str] = []
  glue_next = True  # no space before the next token (at the start, after an opener)
  quote_open = {'"': False, "'": False}
  for token in tokens:
    if not isinstance(token, str):
      raise TypeError(f"tokens must hold str tokens, got {token!r}")
    if token in _STRAIGHT_QUOTES:
      opening = not quote_open[token]
      quote_open[token] = opening
      closing = not opening
    else:
      opening, closing = token in _OPENING, token in _CLOSING
    joining = token in _JOINING
    if out and not (glue_next or closing or joining):
      out.append(" ")
    out.append(token)
    glue_next = opening or joining
  return "".join(out)
