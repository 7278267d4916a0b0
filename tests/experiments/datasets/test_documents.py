"""The labelled document corpora: IMDB, Rotten Tomatoes and BBC news topics."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import datasets

EXPECTED = {  # (train, validation, test) sizes, documented in each module
    "imdb": (18_904, 1_000, 5_000),
    "rotten_tomatoes": (6_824, 853, 853),
    "bbc_news": (1_700, 212, 212),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_splits_are_disjoint_distinct_and_labelled(name):
  module = datasets.module(name)
  splits = datasets.load(name)
  assert tuple(len(splits[s][0]) for s in ("train", "validation", "test")) == EXPECTED[name]
  seen = set()
  for split, (texts, labels) in splits.items():
    assert labels.dtype == np.int32 and labels.shape == (len(texts),)
    assert set(labels.tolist()) == set(range(len(module.CLASSES))), split
    assert not seen & set(texts), f"{split} shares texts with another split"
    assert len(set(texts)) == len(texts), f"{split} holds a text twice"
    seen |= set(texts)
  # Balanced classes stay roughly balanced in every split.
  train_labels = splits["train"][1]
  shares = np.bincount(train_labels) / len(train_labels)
  assert shares.min() > 0.5 / len(module.CLASSES)


def test_split_is_a_pure_function_of_the_texts():
  first, second = datasets.load("rotten_tomatoes"), datasets.load("rotten_tomatoes")
  for split in first:
    assert first[split][0] == second[split][0]
    np.testing.assert_array_equal(first[split][1], second[split][1])


def test_bbc_topics_follow_the_folders(tmp_path):
  for topic, text in [("sport", "Goal!\n\nA late winner."), ("tech", "Chips\n\nFaster chips.")]:
    (tmp_path / topic).mkdir()
    for i in range(5):
      (tmp_path / topic / f"{i:03d}.txt").write_text(f"{text} {i}")
  (tmp_path / "tech" / "005.txt").write_text("Chips\n\nFaster chips. 0")  # a copy
  splits = datasets.module("bbc_news").load(directory=tmp_path)
  texts = [t for s in splits.values() for t in s[0]]
  labels = np.concatenate([s[1] for s in splits.values()])
  assert len(texts) == 10
  for text, label in zip(texts, labels):
    assert ("Goal" in text) == (label == 0)
