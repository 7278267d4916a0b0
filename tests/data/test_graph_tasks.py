"""Synthetic graph tasks: distances against networkx's shortest paths."""

import networkx as nx
import numpy as np
import pytest

from seqjax.data import graph_tasks


def test_distances_equal_networkx_shortest_paths():
  tasks = graph_tasks.shortest_path(0, 20, min_nodes=5, max_nodes=30, max_distance=4)
  for task in tasks:
    n = len(task.nodes)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(zip(task.senders.tolist(), task.receivers.tolist()))
    assert nx.is_connected(graph)
    (marked,) = np.flatnonzero(task.nodes[:, 0])
    hops = nx.single_source_shortest_path_length(graph, int(marked))
    np.testing.assert_array_equal(task.targets, [min(hops[v], 4) for v in range(n)])
    assert (task.nodes[:, 1] == 1).all() and task.targets.dtype == np.int32


def test_edges_come_in_both_directions_without_loops():
  (task,) = graph_tasks.shortest_path(3, 1, min_nodes=12, max_nodes=12)
  pairs = list(zip(task.senders.tolist(), task.receivers.tolist()))
  assert len(set(pairs)) == len(pairs) and all(u != v for u, v in pairs)
  assert set(pairs) == {(v, u) for u, v in pairs}
  # A tree on 12 nodes (11 edges) plus round(0.25 * 12) = 3 chords, both ways.
  assert len(pairs) == 2 * (11 + 3)


def test_seeded_and_sized_as_asked():
  a = graph_tasks.shortest_path(7, 5, min_nodes=4, max_nodes=9)
  b = graph_tasks.shortest_path(np.random.default_rng(7), 5, min_nodes=4, max_nodes=9)
  for x, y in zip(a, b):
    for u, v in zip(x, y):
      np.testing.assert_array_equal(u, v)
  assert all(4 <= len(t.nodes) <= 9 for t in a)
  # Distances spread: a long path graph reaches the cap.
  many = graph_tasks.shortest_path(1, 50, min_nodes=20, max_nodes=20, extra_edges=0.0,
                                   max_distance=3)
  counts = np.bincount(np.concatenate([t.targets for t in many]), minlength=4)
  assert (counts > 0).all()


def test_hop_distances_marks_unreachable_nodes():
  np.testing.assert_array_equal(graph_tasks.hop_distances(4, np.array([[0, 1], [1, 2]]), 2),
                                [2, 1, 0, -1])


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_graphs=0), "num_graphs must be a positive integer"),
    (dict(num_graphs=1, min_nodes=5, max_nodes=4), "min_nodes must be <= max_nodes = 4, got 5"),
    (dict(num_graphs=1, max_distance=0), "max_distance must be a positive integer"),
    (dict(num_graphs=1, extra_edges=-1.0), "extra_edges must be >= 0, got -1.0"),
])
def test_bad_arguments_are_named(kwargs, match):
  with pytest.raises(ValueError, match=match):
    graph_tasks.shortest_path(0, **kwargs)
