"""Synthetic graph tasks that need several rounds of message passing.

Shortest-path distance to a marked node: every node of a random connected
graph must say how many hops away one marked node is (capped at
``max_distance``). A message-passing network of R rounds sees only the nodes
within R hops, so a node further than R hops from the mark cannot know its
distance: accuracy against rounds measures how far information travels (Gilmer
et al. 2017; Xu et al. 2019 "What can neural networks reason about?" use the
same shortest-path family).

Graphs are a random spanning tree (node i joins a uniformly chosen earlier
node, giving long paths) plus ``extra_edges x n`` random chords, so distances
spread over several hops. Edges are stored in both directions, in the layout
of ``seqjax.graphs.GraphsTuple`` (messages flow sender -> receiver).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple, Union

import numpy as np

from seqjax import checks

#: Node input channels of ``shortest_path``: [is the marked node, constant 1].
SHORTEST_PATH_FEATURES = 2


class NodeTask(NamedTuple):
  """One graph with a class per node (n nodes, e directed edges).

  Attributes:
    nodes: float32 (n, F) node features.
    senders, receivers: int32 (e,) edge endpoints, each undirected edge twice.
    targets: int32 (n,) the class of every node.
  """
  nodes: np.ndarray
  senders: np.ndarray
  receivers: np.ndarray
  targets: np.ndarray


def random_connected_graph(rng: np.random.Generator, num_nodes: int,
                           extra_edges: float = 0.25) -> np.ndarray:
  """Undirected edges of a random connected graph: a random tree plus chords.

  Node ``i > 0`` joins a uniformly chosen node ``j < i`` (a random recursive
  tree, depth O(log n) on average), then ``round(extra_edges * num_nodes)``
  distinct new pairs are added.

  Args:
    rng: the numpy generator to draw from.
    num_nodes: n >= 1.
    extra_edges: chords per node, >= 0.

  Returns:
    int64 (m, 2) pairs ``u < v``, each undirected edge once.
  """
  num_nodes = checks.positive_int("num_nodes", num_nodes)
  if not extra_edges >= 0:
    raise ValueError(f"extra_edges must be >= 0, got {extra_edges}")
  edges = {(int(rng.integers(i)), i) for i in range(1, num_nodes)}
  possible = num_nodes * (num_nodes - 1) // 2
  wanted = min(len(edges) + int(round(extra_edges * num_nodes)), possible)
  while len(edges) < wanted:
    u, v = sorted(rng.choice(num_nodes, 2, replace=False).tolist())
    edges.add((u, v))
  return np.array(sorted(edges), np.int64).reshape(-1, 2)


def hop_distances(num_nodes: int, edges: np.ndarray, source: int) -> np.ndarray:
  """Breadth-first hop counts from ``source`` over undirected ``edges`` (m, 2).

  Args:
    num_nodes: n.
    edges: (m, 2) node pairs.
    source: the start node.

  Returns:
    int64 (n,) hops; -1 where a node cannot be reached.
  """
  neighbours = [[] for _ in range(num_nodes)]
  for u, v in np.asarray(edges).tolist():
    neighbours[u].append(v)
    neighbours[v].append(u)
  distance = np.full(num_nodes, -1, np.int64)
  distance[source] = 0
  queue = deque([source])
  while queue:
    u = queue.popleft()
    for v in neighbours[u]:
      if distance[v] < 0:
        distance[v] = distance[u] + 1
        queue.append(v)
  return distance


def shortest_path(seed: Union[int, np.random.Generator], num_graphs: int, *,
                  min_nodes: int = 8, max_nodes: int = 16, extra_edges: float = 0.25,
                  max_distance: int = 6) -> list[NodeTask]:
  """Graphs whose nodes must give their hop distance to one marked node.

  Args:
    seed: an int seed or a numpy generator (the same seed, the same graphs).
    num_graphs: how many graphs.
    min_nodes, max_nodes: each graph's node count is uniform in this range.
    extra_edges: random chords per node on top of the random tree.
    max_distance: classes are ``0 .. max_distance``; the last means "this far
      or further".

  Returns:
    ``num_graphs`` ``NodeTask`` s: features (n, 2) ``[marked, 1]``, edges in
    both directions, targets ``min(hops, max_distance)`` in
    ``[0, max_distance]``.
  """
  checks.positive_int("num_graphs", num_graphs)
  checks.positive_int("min_nodes", min_nodes)
  checks.positive_int("max_nodes", max_nodes)
  checks.positive_int("max_distance", max_distance)
  if min_nodes > max_nodes:
    raise ValueError(f"min_nodes must be <= max_nodes = {max_nodes}, got {min_nodes}")
  rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
  tasks = []
  for _ in range(num_graphs):
    n = int(rng.integers(min_nodes, max_nodes + 1))
    edges = random_connected_graph(rng, n, extra_edges)
    marked = int(rng.integers(n))
    nodes = np.zeros((n, SHORTEST_PATH_FEATURES), np.float32)
    nodes[marked, 0] = 1
    nodes[:, 1] = 1
    targets = np.minimum(hop_distances(n, edges, marked), max_distance).astype(np.int32)
    senders = np.concatenate([edges[:, 0], edges[:, 1]]).astype(np.int32)
    receivers = np.concatenate([edges[:, 1], edges[:, 0]]).astype(np.int32)
    tasks.append(NodeTask(nodes, senders, receivers, targets))
  return tasks
