"""Zachary's karate club (1977), from ``networkx``: 34 members, 78 friendships, two factions.

The club split after a dispute between its instructor ("Mr. Hi", member 0) and
its administrator ("Officer", member 33); Zachary recorded which faction each
member joined. ``networkx.karate_club_graph()`` ships the graph (edge weights:
the number of contexts in which two members interacted) and each member's
faction (node attribute ``club``). The classic semi-supervised exercise
(Kipf & Welling 2017's demonstration): label only members 0 and 33 and
predict everyone's faction from the friendships.

Zachary, W. W. (1977). An information flow model for conflict and fission in
small groups. Journal of Anthropological Research 33(4), 452-473.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from experiments.datasets import packaged

#: What ``experiments.datasets`` knows this data set as: one graph with node labels.
KIND = "graph"

#: Where the graph ships (in networkx's code, not as a data file).
SOURCE = packaged.Source("networkx", "generators/social.py",
                         what="Zachary's karate club graph", install="pip install networkx")

#: Faction names, in label order.
CLASSES = ("Mr. Hi", "Officer")

#: The two members whose faction a semi-supervised run is told: the leaders.
LABELLED = (0, 33)


class Graph(NamedTuple):
  """One undirected graph with node labels, edges stored in both directions.

  Attributes:
    senders, receivers: int32 (E,) edge endpoints; every friendship appears
      twice (E = 2 x 78), once each way.
    weights: float32 (E,) Zachary's interaction counts of each edge.
    labels: int32 (N,) each member's faction, an index into ``CLASSES``.
    labelled: the members whose label a semi-supervised run may see.
  """
  senders: np.ndarray
  receivers: np.ndarray
  weights: np.ndarray
  labels: np.ndarray
  labelled: tuple[int, ...]

  @property
  def num_nodes(self) -> int:
    """N: the number of members."""
    return len(self.labels)


def load(*, cache_dir=None) -> Graph:
  """Zachary's karate club as arrays (N = 34 members, E = 156 directed edges).

  Args:
    cache_dir: unused (the graph is small and built in milliseconds); kept for
      the registry's protocol.
  """
  del cache_dir
  packaged.locate(SOURCE)  # a clear install command when networkx is missing
  import networkx
  graph = networkx.karate_club_graph()
  nodes = sorted(graph.nodes)
  if nodes != list(range(len(nodes))):
    raise ValueError(f"networkx's karate club nodes should be 0..N-1, got {nodes[:5]}...")
  edges = np.array([(u, v, d.get("weight", 1)) for u, v, d in graph.edges(data=True)])
  senders = np.concatenate([edges[:, 0], edges[:, 1]]).astype(np.int32)
  receivers = np.concatenate([edges[:, 1], edges[:, 0]]).astype(np.int32)
  weights = np.concatenate([edges[:, 2], edges[:, 2]]).astype(np.float32)
  labels = np.array([CLASSES.index(graph.nodes[n]["club"]) for n in nodes], np.int32)
  return Graph(senders, receivers, weights, labels, LABELLED)
