"""Words from raw English text: the one tokenizer seqjax's text models use.

Every text experiment (word2vec and its gensim comparison, the review and news
classifiers) tokenizes with ``tokenize``, so vectors trained on one corpus
look up the same words a classifier sees, and gensim is fed exactly the
tokens seqjax is fed.

The rule: lower-case, drop HTML line breaks (IMDB reviews carry ``<br />``),
then keep maximal runs of ``[a-z]+(?:'[a-z]+)?`` (words, with one inner
apostrophe: ``don't``, ``king's``) and ``[0-9]+`` (numbers); everything else
(punctuation, accents' combining marks, symbols) separates tokens.
"""

from __future__ import annotations

import re

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
