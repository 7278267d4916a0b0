"""The dataset registry: every entry follows the protocol of experiments/datasets/__init__.py."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from experiments import datasets
from experiments.datasets import packaged

FOLDER = pathlib.Path(datasets.__file__).parent


def test_every_loader_file_is_registered():
  files = {p.stem for p in FOLDER.glob("*.py")} - {"__init__", "packaged"}
  assert set(datasets.DATASETS.values()) == files


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_protocol(name):
  module = datasets.module(name)
  # A corpus combining several packages names each one (english.py).
  sources = module.SOURCES.values() if hasattr(module, "SOURCES") else [module.SOURCE]
  assert all(isinstance(source, packaged.Source) for source in sources)
  assert module.KIND in ("text", "images", "piano_rolls", "series", "documents", "corpus", "parallel",
                         "graph")
  if module.KIND in ("documents", "graph"):
    assert isinstance(module.CLASSES, tuple) and len(module.CLASSES) >= 2
  assert callable(module.load)
  if module.KIND == "text":
    assert module.UNIT in ("character", "byte", "word")
    for attribute in ("VOCAB", "encode", "decode"):
      assert hasattr(module, attribute), attribute


def test_unknown_name_lists_the_registry():
  with pytest.raises(ValueError, match=r"dataset must be one of \[.*'shakespeare'.*\], got 'ptb'"):
    datasets.load("ptb")


@pytest.mark.parametrize("name", datasets.names("text"))
def test_text_corpora_load_documents_and_round_trip_a_prime(name, tmp_path):
  module = datasets.module(name)
  documents, vocab = datasets.load(name)
  assert set(documents) == {"train", "validation", "test"}
  for split, docs in documents.items():
    assert docs and all(d.dtype == np.int32 and d.ndim == 1 for d in docs), split
    assert all(0 <= d.min() and d.max() < vocab.size for d in docs), split
  assert type(vocab).from_json(vocab.to_json()) == vocab
  assert isinstance(vocab, module.VOCAB)
  prime = "the king said"
  ids = module.encode(vocab, prime)
  assert ids.dtype == np.int32 and len(ids) >= 3
  assert module.decode(vocab, ids).strip() == prime
