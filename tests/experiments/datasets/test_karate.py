"""Zachary's karate club: the published counts and the two factions."""

import numpy as np
import pytest

from experiments import datasets
from experiments.datasets import karate, packaged


@pytest.fixture(scope="module")
def club():
  return datasets.load("karate_club")


def test_counts_are_zacharys(club):
  # Zachary (1977): 34 members, 78 friendships; networkx's ``club`` labels
  # put 17 members on each side.
  assert club.num_nodes == 34
  assert len(club.senders) == len(club.receivers) == len(club.weights) == 2 * 78
  assert np.bincount(club.labels).tolist() == [17, 17]
  assert club.labels[0] == karate.CLASSES.index("Mr. Hi")
  assert club.labels[33] == karate.CLASSES.index("Officer")
  assert club.labelled == (0, 33)


def test_edges_are_undirected_simple_and_in_range(club):
  pairs = set(zip(club.senders.tolist(), club.receivers.tolist()))
  assert len(pairs) == 2 * 78
  assert all((v, u) in pairs for u, v in pairs)
  assert all(u != v for u, v in pairs)
  assert club.senders.min() >= 0 and club.senders.max() < 34
  degree = np.bincount(club.receivers, minlength=34)
  # The two leaders are the best-connected members (16 and 17 friends).
  assert sorted(np.argsort(degree)[-2:].tolist()) == [0, 33]
  assert (degree[0], degree[33]) == (16, 17)
  assert (club.weights > 0).all()


def test_missing_networkx_names_the_install_command(monkeypatch):
  monkeypatch.setattr(packaged, "package_dirs", lambda *a, **k: [])
  with pytest.raises(packaged.DataNotFoundError, match="pip install networkx"):
    karate.load()
