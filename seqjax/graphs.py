"""Graph neural networks: batches of graphs in jraph's layout, padding, message passing.

A batch of G graphs is one big graph with G components, in jraph's
``GraphsTuple`` layout (the JAX convention; Battaglia et al. 2018): the nodes
of all graphs stacked ``(N, Dn)``, their edges stacked ``(E, De)``, for each
edge the row of its ``senders`` and ``receivers`` node among the stacked
nodes, and ``n_node`` / ``n_edge`` ``(G,)``, how many consecutive nodes and
edges belong to each graph. Messages flow from sender to receiver::

  g = batch([g1, g2, g3])                      # host side (numpy): offsets senders/receivers
  g = pad_to_bucket(g, buckets)                # fixed shapes: one compile per bucket
  model = encode_process_decode(3, latent_size=128, num_steps=10)
  params = model.init(key, node_size=Dn, edge_size=De)
  apply = jax.jit(model.apply, static_argnames="padded")
  out = apply(params, g, padded=True)          # (N, 3); padding rows are 0

Padding follows jraph's ``pad_with_graphs``: ``pad(graph, n_node=, n_edge=,
n_graph=)`` appends one padding graph holding every padding node (at least
one) and padding edge, then empty graphs up to ``n_graph``; padding edges
join the first padding node to itself. Because padding edges touch only
padding nodes and aggregations run per receiver and per graph, the outputs on
real nodes and graphs never depend on padding. ``padded=True`` (on every
model here) additionally zeroes padding rows on the way in and out and drops
padding edges from every aggregation, so padding may hold anything (NaN or
inf included) without reaching values or gradients. The masks
(``node_mask``/``edge_mask``/``graph_mask``) read the padding off
``n_node``/``n_edge`` as jraph does: the last graph with nodes and every graph
after it are padding. Use them, and ``padded=True``, only on graphs from
``pad``: on an unpadded batch they would mark its last non-empty graph as
padding.

Host-side helpers (``check``, ``batch``, ``unbatch``, ``pad``, ``unpad``,
``pad_to_bucket``) take concrete arrays (numpy, or JAX arrays outside
``jit``) and return numpy arrays. ``check`` validates a graph (shapes always;
counts and indices where they are concrete), and every function here calls
it first, so a bad graph fails with a one-line error naming the field before
any work. Under ``jit`` the indices are traced and only shapes are checked.

Shape legend used in every docstring:

  G   graphs in the batch (``n_node.shape[0]``), padding graphs included
  N   nodes of the whole batch, padding included
  E   edges of the whole batch, padding included
  Dn, De, Dg   node, edge and global feature sizes
  H   hidden (latent) size
  O   output size

References:
  jraph (layout, ``pad_with_graphs``): https://github.com/google-deepmind/jraph
  Gilmer et al. 2017, "Neural message passing for quantum chemistry",
  https://arxiv.org/abs/1704.01212
  Li et al. 2016, "Gated graph sequence neural networks",
  https://arxiv.org/abs/1511.05493
  Battaglia et al. 2018, "Relational inductive biases, deep learning, and
  graph networks", https://arxiv.org/abs/1806.01261
  Sanchez-Gonzalez et al. 2020, "Learning to simulate complex physics with
  graph networks", https://arxiv.org/abs/2002.09405
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.cells.gru import gru
from seqjax.types import Array, Params, PRNGKey

#: The aggregations of messages over a node's incoming edges (or of nodes over
#: a graph) that ``segment_aggregate`` and the models here accept.
AGGREGATIONS = ("sum", "mean", "max")

_LAYER_NORM_EPSILON = 1e-5  # Haiku's and Sonnet's LayerNorm default


class GraphsTuple(NamedTuple):
  """A batch of G graphs as one graph with G components (jraph's layout).

  The fields, their names and their order are jraph's (``jraph.GraphsTuple``),
  so ``jraph.GraphsTuple(*g)`` and ``GraphsTuple(*jraph_graph)`` convert either
  way; build one by keyword. Nodes of graph ``g`` are the ``n_node[g]``
  consecutive rows after those of graphs ``0..g-1``; likewise edges. Node and
  edge features here are arrays (jraph also allows pytrees).
  """

  nodes: Optional[Array]  # shape=(N, Dn) node features, or None
  edges: Optional[Array]  # shape=(E, De) edge features, or None
  receivers: Array  # shape=(E,), int32: the node each edge's message goes to
  senders: Array  # shape=(E,), int32: the node each edge's message comes from
  globals: Optional[Array]  # shape=(G, Dg) graph features, or None
  n_node: Array  # shape=(G,), int32: nodes per graph
  n_edge: Array  # shape=(G,), int32: edges per graph


class Bucket(NamedTuple):
  """Padded sizes of a batch: ``pad(graph, **bucket._asdict())``."""

  n_node: int  # N after padding (at least the batch's nodes + 1)
  n_edge: int  # E after padding (at least the batch's edges)
  n_graph: int  # G after padding (at least the batch's graphs + 1)


class MLP(NamedTuple):
  """A multi-layer perceptron as pure functions (see ``mlp``).

  Attributes:
    init: ``(key, input_size) -> params``.
    apply: ``(params, x (..., D)) -> (..., output_size)``.
    output_size: the last layer's size.
    name: a readable description.
  """

  init: Callable[[PRNGKey, int], Params]
  apply: Callable[[Params, Array], Array]
  output_size: int
  name: str


class GraphModel(NamedTuple):
  """A graph network as pure functions (``mpnn_layer``, ``gated_graph_nn``, ...).

  Attributes:
    init: ``(key, node_size, edge_size=0) -> params`` for node features
      ``(N, node_size)`` and edge features ``(E, edge_size)``.
    apply: ``(params, graph, *, padded=False) -> (N, output_size)`` node
      outputs (``encode_process_decode`` with ``edge_output_size`` also returns
      edge outputs).
    output_size: the size of the node outputs.
    name: a readable description.
  """

  init: Callable[..., Params]
  apply: Callable[..., Any]
  output_size: int
  name: str


class GraphReadout(NamedTuple):
  """A learnt graph-level readout as pure functions (see ``gated_readout``).

  Attributes:
    init: ``(key, hidden_size, node_size=0) -> params``.
    apply: ``(params, graph, h (N, H), *, padded=False) -> (G, output_size)``.
    output_size: O.
    name: a readable description.
  """

  init: Callable[..., Params]
  apply: Callable[..., Array]
  output_size: int
  name: str


# ----------------------------------------------------------------------------
# Validation and the host-side helpers
# ----------------------------------------------------------------------------


def _is_traced(x: Any) -> bool:
  return isinstance(x, jax.core.Tracer)


def _integer_vector(name: str, value: Any) -> tuple[int, ...]:
  if value is None:
    raise TypeError(f"{name} must be a 1-D integer array, got None")
  dtype = jnp.result_type(value)
  if not jnp.issubdtype(dtype, jnp.integer):
    raise TypeError(f"{name} must be a 1-D integer array, got dtype {np.dtype(dtype).name}")
  shape = checks.shape_of(value)
  if len(shape) != 1:
    raise ValueError(f"{name} must be a 1-D integer array, got shape {shape}")
  return shape


def check(graph: GraphsTuple) -> GraphsTuple:
  """Validates a ``GraphsTuple``; returns it unchanged or raises a one-line error.

  Always checked (static shapes, also under ``jit``): ``senders``,
  ``receivers``, ``n_node`` and ``n_edge`` are 1-D integer arrays;
  ``n_node`` counts at least one graph and ``n_edge`` as many; ``receivers``,
  ``senders`` and the rows of ``edges`` agree (E); ``globals`` has G rows.
  Checked where the arrays are concrete (outside ``jit``): counts are >= 0;
  ``n_node`` sums to the rows of ``nodes`` and ``n_edge`` to E; every edge's
  ``senders`` and ``receivers`` entries lie in its own graph's node range
  ``[offset_g, offset_g + n_node[g])``.

  Args:
    graph: the ``GraphsTuple`` to validate.

  Returns:
    ``graph``.

  Raises:
    TypeError: ``graph`` is not a ``GraphsTuple``, or an index field is not
      an integer array.
    ValueError: one line naming the field, the value and what was expected.
  """
  if not isinstance(graph, GraphsTuple):
    raise TypeError(f"graph must be a seqjax.graphs.GraphsTuple, got {type(graph).__name__}")
  (num_graphs,) = _integer_vector("n_node", graph.n_node)
  if num_graphs == 0:
    raise ValueError("n_node must count at least one graph, got shape (0,)")
  if _integer_vector("n_edge", graph.n_edge) != (num_graphs,):
    raise ValueError(f"n_edge must have one entry per graph, shape ({num_graphs},) like "
                     f"n_node, got shape {checks.shape_of(graph.n_edge)}")
  (num_edges,) = _integer_vector("senders", graph.senders)
  if _integer_vector("receivers", graph.receivers) != (num_edges,):
    raise ValueError(f"receivers must have the shape of senders ({num_edges},), got shape "
                     f"{checks.shape_of(graph.receivers)}")
  if graph.nodes is not None and len(checks.shape_of(graph.nodes)) < 1:
    raise ValueError("nodes must have shape (N, Dn), got a scalar")
  if graph.edges is not None and checks.shape_of(graph.edges)[:1] != (num_edges,):
    raise ValueError(f"edges must have one row per edge of senders ({num_edges}), got shape "
                     f"{checks.shape_of(graph.edges)}")
  if graph.globals is not None and checks.shape_of(graph.globals)[:1] != (num_graphs,):
    raise ValueError(f"globals must have one row per graph of n_node ({num_graphs}), got "
                     f"shape {checks.shape_of(graph.globals)}")
  fields = (graph.n_node, graph.n_edge, graph.senders, graph.receivers)
  if any(_is_traced(x) for x in fields):
    return graph
  n_node, n_edge, senders, receivers = (np.asarray(x) for x in fields)
  for name, counts in (("n_node", n_node), ("n_edge", n_edge)):
    if (counts < 0).any():
      g = int(np.argmax(counts < 0))
      raise ValueError(f"{name} must be >= 0, got {counts[g]} for graph {g}")
  if graph.nodes is not None and n_node.sum() != checks.shape_of(graph.nodes)[0]:
    raise ValueError(f"n_node must sum to the number of rows of nodes "
                     f"({checks.shape_of(graph.nodes)[0]}), got sum {n_node.sum()}")
  if n_edge.sum() != num_edges:
    raise ValueError(f"n_edge must sum to the number of edges in senders ({num_edges}), "
                     f"got sum {n_edge.sum()}")
  edge_graph = np.repeat(np.arange(num_graphs), n_edge)
  low = (np.cumsum(n_node) - n_node)[edge_graph]
  high = low + n_node[edge_graph]
  for name, index in (("senders", senders), ("receivers", receivers)):
    bad = (index < low) | (index >= high)
    if bad.any():
      i = int(np.argmax(bad))
      raise ValueError(f"{name}[{i}] = {index[i]} points outside graph {edge_graph[i]}'s "
                       f"nodes [{low[i]}, {high[i]}) (every edge must join two nodes of "
                       f"its own graph)")
  return graph


def _concrete(name: str, graph: GraphsTuple) -> None:
  for field, value in zip(GraphsTuple._fields, graph):
    if _is_traced(value):
      raise TypeError(f"{name} must hold concrete arrays (this runs on the host, outside "
                      f"jit), got a traced {field}")


def _num_nodes(graph: GraphsTuple) -> int:
  """N: the rows of ``nodes``, else the sum of a concrete ``n_node``."""
  if graph.nodes is not None:
    return checks.shape_of(graph.nodes)[0]
  if _is_traced(graph.n_node):
    raise ValueError("nodes is None and n_node is traced, so the node count N is unknown "
                     "under jit: give the graph nodes (an (N, 0) array will do)")
  return int(np.sum(np.asarray(graph.n_node)))


def batch(graphs: Sequence[GraphsTuple]) -> GraphsTuple:
  """Joins graphs (or batches) into one batch; host side, numpy.

  Node and edge features, globals, ``n_node`` and ``n_edge`` are
  concatenated; ``senders`` and ``receivers`` of each input are offset by the
  number of nodes before it. Each input is ``check``-ed first.

  Args:
    graphs: a non-empty sequence of concrete ``GraphsTuple``s, each of one or
      more graphs, with the same fields present (``nodes``, ``edges``,
      ``globals`` all given or all None) and the same feature sizes.

  Returns:
    A ``GraphsTuple`` of numpy arrays, ``senders``, ``receivers``, ``n_node``
    and ``n_edge`` int32.
  """
  graphs = list(graphs)
  if not graphs:
    raise ValueError("graphs must hold at least one GraphsTuple, got an empty sequence")
  for i, graph in enumerate(graphs):
    try:
      check(graph)
      _concrete("graph", graph)
    except (TypeError, ValueError) as error:
      raise type(error)(f"graphs[{i}]: {error}") from None
  for field in ("nodes", "edges", "globals"):
    first = getattr(graphs[0], field)
    for i, graph in enumerate(graphs[1:], 1):
      value = getattr(graph, field)
      if (value is None) != (first is None):
        raise ValueError(f"graphs[{i}].{field} is {'None' if value is None else 'given'} but "
                         f"graphs[0].{field} is {'None' if first is None else 'given'} (every "
                         f"graph needs the same fields)")
      if value is not None and checks.shape_of(value)[1:] != checks.shape_of(first)[1:]:
        raise ValueError(f"graphs[{i}].{field} has shape {checks.shape_of(value)}, whose "
                         f"features differ from graphs[0]'s {checks.shape_of(first)}")
  offsets = np.cumsum([0] + [_num_nodes(g) for g in graphs])[:-1]

  def join(field):
    if getattr(graphs[0], field) is None:
      return None
    return np.concatenate([np.asarray(getattr(g, field)) for g in graphs])

  def indices(field):
    return np.concatenate([np.asarray(getattr(g, field), np.int64) + offset
                           for g, offset in zip(graphs, offsets)]).astype(np.int32)

  return GraphsTuple(
      nodes=join("nodes"), edges=join("edges"),
      receivers=indices("receivers"), senders=indices("senders"), globals=join("globals"),
      n_node=join("n_node").astype(np.int32), n_edge=join("n_edge").astype(np.int32))


def unbatch(graph: GraphsTuple) -> list[GraphsTuple]:
  """Splits a batch into its G single graphs (the inverse of ``batch``); host side.

  Args:
    graph: a concrete ``GraphsTuple`` of G graphs (padding graphs, if any,
      come out as graphs of their own; ``unpad`` first to drop them).

  Returns:
    A list of G ``GraphsTuple``s of numpy arrays, each with ``senders`` and
    ``receivers`` counted from its own first node.
  """
  check(graph)
  _concrete("graph", graph)
  n_node = np.asarray(graph.n_node).astype(np.int64)
  n_edge = np.asarray(graph.n_edge).astype(np.int64)
  node_start = np.cumsum(n_node) - n_node
  edge_start = np.cumsum(n_edge) - n_edge
  out = []
  for g in range(n_node.shape[0]):
    nodes = slice(node_start[g], node_start[g] + n_node[g])
    edges = slice(edge_start[g], edge_start[g] + n_edge[g])

    def rows(x, where):
      return None if x is None else np.asarray(x)[where]

    out.append(GraphsTuple(
        nodes=rows(graph.nodes, nodes), edges=rows(graph.edges, edges),
        receivers=(np.asarray(graph.receivers)[edges] - node_start[g]).astype(np.int32),
        senders=(np.asarray(graph.senders)[edges] - node_start[g]).astype(np.int32),
        globals=rows(graph.globals, slice(g, g + 1)),
        n_node=n_node[g:g + 1].astype(np.int32), n_edge=n_edge[g:g + 1].astype(np.int32)))
  return out


def pad(graph: GraphsTuple, *, n_node: int, n_edge: int, n_graph: int) -> GraphsTuple:
  """Pads a batch to fixed sizes with padding graphs (jraph's ``pad_with_graphs``).

  The padded batch holds the G real graphs, then one padding graph with all
  ``n_node - sum(graph.n_node)`` (>= 1) padding nodes and all
  ``n_edge - sum(graph.n_edge)`` padding edges, then empty graphs up to
  ``n_graph``. Every padding edge joins the first padding node to itself, so
  padding never sends to a real node. Padding features are zeros.
  ``node_mask``/``edge_mask``/``graph_mask`` recover which rows are real.

  Args:
    graph: a concrete ``GraphsTuple`` (``check``-ed first).
    n_node: N after padding, >= the batch's nodes + 1 (one padding node).
    n_edge: E after padding, >= the batch's edges.
    n_graph: G after padding, >= the batch's graphs + 1 (one padding graph).

  Returns:
    A ``GraphsTuple`` of numpy arrays with N = ``n_node``, E = ``n_edge`` and
    G = ``n_graph``.
  """
  check(graph)
  _concrete("graph", graph)
  want = Bucket(checks.positive_int("n_node", n_node), checks.non_negative_int("n_edge", n_edge),
                checks.positive_int("n_graph", n_graph))
  have = _size(graph)
  _fits_or_raise(have, want)
  pad_nodes, pad_edges = want.n_node - have.n_node, want.n_edge - have.n_edge
  pad_graphs = want.n_graph - have.n_graph

  def rows(x, count):
    if x is None:
      return None
    x = np.asarray(x)
    return np.concatenate([x, np.zeros((count,) + x.shape[1:], x.dtype)])

  def counts(x, padding):
    return np.concatenate([np.asarray(x), [padding], np.zeros(pad_graphs - 1)]).astype(np.int32)

  def indices(x):
    return np.concatenate([np.asarray(x), np.full(pad_edges, have.n_node)]).astype(np.int32)

  return GraphsTuple(
      nodes=rows(graph.nodes, pad_nodes), edges=rows(graph.edges, pad_edges),
      receivers=indices(graph.receivers), senders=indices(graph.senders),
      globals=rows(graph.globals, pad_graphs),
      n_node=counts(graph.n_node, pad_nodes), n_edge=counts(graph.n_edge, pad_edges))


def _size(graph: GraphsTuple) -> Bucket:
  """The unpadded sizes (nodes, edges, graphs) of a concrete batch."""
  return Bucket(int(np.sum(np.asarray(graph.n_node))), int(np.sum(np.asarray(graph.n_edge))),
                int(checks.shape_of(graph.n_node)[0]))


def _fits(have: Bucket, bucket: Bucket) -> bool:
  return (bucket.n_node >= have.n_node + 1 and bucket.n_edge >= have.n_edge
          and bucket.n_graph >= have.n_graph + 1)


def _fits_or_raise(have: Bucket, want: Bucket) -> None:
  if want.n_node < have.n_node + 1:
    raise ValueError(f"n_node must be >= {have.n_node + 1} (the batch's {have.n_node} nodes "
                     f"and one padding node), got {want.n_node}")
  if want.n_edge < have.n_edge:
    raise ValueError(f"n_edge must be >= {have.n_edge} (the batch's edges), got {want.n_edge}")
  if want.n_graph < have.n_graph + 1:
    raise ValueError(f"n_graph must be >= {have.n_graph + 1} (the batch's {have.n_graph} "
                     f"graphs and one padding graph), got {want.n_graph}")


def unpad(graph: GraphsTuple) -> GraphsTuple:
  """Drops the padding graphs, nodes and edges that ``pad`` added; host side.

  Args:
    graph: a concrete ``GraphsTuple`` from ``pad``.

  Returns:
    The real graphs as a ``GraphsTuple`` of numpy arrays.
  """
  check(graph)
  _concrete("graph", graph)
  real_graphs = int(np.sum(np.asarray(graph_mask(graph))))
  n_node = np.asarray(graph.n_node)[:real_graphs].astype(np.int32)
  n_edge = np.asarray(graph.n_edge)[:real_graphs].astype(np.int32)
  nodes, edges = int(n_node.sum()), int(n_edge.sum())

  def rows(x, count):
    return None if x is None else np.asarray(x)[:count]

  return GraphsTuple(
      nodes=rows(graph.nodes, nodes), edges=rows(graph.edges, edges),
      receivers=rows(graph.receivers, edges).astype(np.int32),
      senders=rows(graph.senders, edges).astype(np.int32),
      globals=rows(graph.globals, real_graphs), n_node=n_node, n_edge=n_edge)


def bucket_sizes(n_node: int, n_edge: int, n_graph: int, *, num_buckets: int = 4,
                 growth: float = 2.0) -> tuple[Bucket, ...]:
  """A geometric ladder of padding sizes, for ``pad_to_bucket``.

  The largest bucket is the budget ``(n_node, n_edge, n_graph)``; bucket
  ``k`` steps below it has ``ceil(n_node / growth**k)`` nodes and
  ``ceil(n_edge / growth**k)`` edges (at least 1 node) and the same
  ``n_graph``: batches of a fixed number of graphs whose sizes vary. Each
  bucket is one compiled program, and a batch wastes at most a factor
  ``growth`` of its nodes and edges on padding (above the smallest bucket).

  Args:
    n_node: N of the largest bucket, counting one padding node.
    n_edge: E of the largest bucket.
    n_graph: G of every bucket, counting one padding graph (batch size + 1).
    num_buckets: how many sizes, > 0 (fewer when small budgets round to the
      same size).
    growth: ratio between consecutive sizes, > 1.

  Returns:
    ``Bucket``s in increasing size.
  """
  n_node = checks.positive_int("n_node", n_node)
  n_edge = checks.non_negative_int("n_edge", n_edge)
  n_graph = checks.positive_int("n_graph", n_graph)
  num_buckets = checks.positive_int("num_buckets", num_buckets)
  growth = checks.positive("growth", growth)
  if growth <= 1:
    raise ValueError(f"growth must be > 1, got {growth}")
  ladder = []
  for k in reversed(range(num_buckets)):
    bucket = Bucket(max(1, math.ceil(n_node / growth**k)), math.ceil(n_edge / growth**k),
                    n_graph)
    if bucket not in ladder:
      ladder.append(bucket)
  return tuple(ladder)


def pad_to_bucket(graph: GraphsTuple, buckets: Sequence[Sequence[int]]) -> GraphsTuple:
  """Pads a batch to the smallest bucket that fits it (``pad``), to bound recompiles.

  A bucket fits when it has room for the batch's nodes plus one padding
  node, its edges, and its graphs plus one padding graph. Among those that
  fit, the one with the fewest nodes plus edges is taken (ties: fewest
  graphs, then the first listed). Under ``jax.jit`` each bucket is one
  compiled program, whatever the batch sizes within it.

  Args:
    graph: a concrete ``GraphsTuple``.
    buckets: a non-empty sequence of ``Bucket``s or ``(n_node, n_edge,
      n_graph)`` triples, e.g. from ``bucket_sizes``.

  Returns:
    The padded ``GraphsTuple`` (numpy).

  Raises:
    ValueError: naming ``buckets`` when none fits, with the sizes needed.
  """
  try:
    buckets = [Bucket(*(int(size) for size in b)) for b in buckets]
  except (TypeError, ValueError):
    raise TypeError(f"buckets must be a sequence of (n_node, n_edge, n_graph) triples, got "
                    f"{buckets!r}") from None
  if not buckets:
    raise ValueError("buckets must hold at least one (n_node, n_edge, n_graph) triple")
  check(graph)
  _concrete("graph", graph)
  have = _size(graph)
  fitting = [(b.n_node + b.n_edge, b.n_graph, i) for i, b in enumerate(buckets) if _fits(have, b)]
  if not fitting:
    largest = max(buckets, key=lambda b: (b.n_node + b.n_edge, b.n_graph))
    raise ValueError(f"buckets must hold one with n_node >= {have.n_node + 1}, n_edge >= "
                     f"{have.n_edge} and n_graph >= {have.n_graph + 1} (a batch of "
                     f"{have.n_graph} graphs, {have.n_node} nodes, {have.n_edge} edges, plus "
                     f"one padding node and graph); the largest is {tuple(largest)}")
  bucket = buckets[min(fitting)[2]]
  return pad(graph, **bucket._asdict())


# ----------------------------------------------------------------------------
# Masks and segment operations (jit-able)
# ----------------------------------------------------------------------------


def graph_mask(graph: GraphsTuple) -> Array:
  """Which graphs are real in a batch from ``pad``: (G,) bool, under ``jit`` too.

  As jraph's ``get_graph_padding_mask``: the last graph with at least one
  node is the padding graph, and it and every graph after it are padding
  (``pad`` always gives the padding graph a node, so a real batch ending in
  empty graphs is read correctly). Only meaningful on padded batches.

  Args:
    graph: a ``GraphsTuple`` from ``pad`` (concrete or traced).
  """
  check(graph)
  n_node = jnp.asarray(graph.n_node)
  num_graphs = n_node.shape[0]
  first_padding = num_graphs - 1 - jnp.argmax(n_node[::-1] > 0)
  return jnp.arange(num_graphs) < first_padding


def node_mask(graph: GraphsTuple) -> Array:
  """Which nodes are real in a batch from ``pad``: (N,) bool, under ``jit`` too.

  The real nodes are the first ``sum(n_node)`` over the real graphs (see
  ``graph_mask``).

  Args:
    graph: a ``GraphsTuple`` from ``pad``; N is the rows of ``nodes`` (or,
      with ``nodes=None``, the sum of a concrete ``n_node``).
  """
  real = jnp.sum(jnp.where(graph_mask(graph), jnp.asarray(graph.n_node), 0))
  return jnp.arange(_num_nodes(graph)) < real


def edge_mask(graph: GraphsTuple) -> Array:
  """Which edges are real in a batch from ``pad``: (E,) bool, under ``jit`` too.

  The real edges are the first ``sum(n_edge)`` over the real graphs (see
  ``graph_mask``).

  Args:
    graph: a ``GraphsTuple`` from ``pad``.
  """
  real = jnp.sum(jnp.where(graph_mask(graph), jnp.asarray(graph.n_edge), 0))
  return jnp.arange(checks.shape_of(graph.senders)[0]) < real


def node_graph_ids(graph: GraphsTuple) -> Array:
  """The graph each node belongs to: (N,) int32, the segment ids of a readout.

  Args:
    graph: a ``GraphsTuple`` (concrete or traced).
  """
  check(graph)
  return _segment_ids(graph.n_node, _num_nodes(graph))


def edge_graph_ids(graph: GraphsTuple) -> Array:
  """The graph each edge belongs to: (E,) int32.

  Args:
    graph: a ``GraphsTuple`` (concrete or traced).
  """
  check(graph)
  return _segment_ids(graph.n_edge, checks.shape_of(graph.senders)[0])


def _segment_ids(counts: Any, total: int) -> Array:
  """``[0] * counts[0] + [1] * counts[1] + ...``, (total,) int32: rows to their graph."""
  counts = jnp.asarray(counts)
  return jnp.repeat(jnp.arange(counts.shape[0], dtype=jnp.int32), counts,
                    total_repeat_length=total)


def _rows_where(mask: Optional[Array], x: Array) -> Array:
  """``x`` (K, ...) with the rows where ``mask`` (K,) is False set to 0."""
  if mask is None:
    return x
  return jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, jnp.zeros((), x.dtype))


def segment_aggregate(data: Array, segment_ids: Array, num_segments: int,
                      aggregate: str = "sum", *, mask: Optional[Array] = None) -> Array:
  """Sum, mean or max of the rows of ``data`` in each segment (per receiver or graph).

  Equations, for segment ``s`` with rows ``R(s) = {k : ids_k = s, mask_k}``::

    sum:   out_s = sum_{k in R(s)} data_k
    mean:  out_s = sum_{k in R(s)} data_k / |R(s)|      (0 if R(s) is empty)
    max:   out_s = max_{k in R(s)} data_k               (0 if R(s) is empty)

  Built on ``jax.ops.segment_sum`` / ``segment_max`` with ``num_segments``
  static and ``indices_are_sorted=False``. Masked-out rows get a segment id
  out of range, which those ops drop, and are zeroed, so whatever they hold
  (NaN included) reaches no output.

  Args:
    data: (K, ...) rows, e.g. messages (E, H) or node states (N, H).
    segment_ids: (K,) int, the segment of each row, e.g. ``receivers`` or
      ``node_graph_ids(graph)``.
    num_segments: the number of segments (N or G), a Python int.
    aggregate: one of ``AGGREGATIONS``: "sum", "mean" or "max".
    mask: optional (K,) bool; rows where it is False take no part.

  Returns:
    (num_segments, ...) with ``data``'s dtype.
  """
  checks.one_of("aggregate", aggregate, AGGREGATIONS)
  num_segments = checks.non_negative_int("num_segments", num_segments)
  data, segment_ids = jnp.asarray(data), jnp.asarray(segment_ids)
  if data.ndim < 1 or segment_ids.shape != data.shape[:1]:
    raise ValueError(f"segment_ids must have shape ({data.shape[0] if data.ndim else '?'},), "
                     f"one per row of data {data.shape}, got {segment_ids.shape}")
  if mask is not None:
    mask = jnp.asarray(mask, bool)
    if mask.shape != segment_ids.shape:
      raise ValueError(f"mask must have shape {segment_ids.shape} like segment_ids, got "
                       f"{mask.shape}")
    data = _rows_where(mask, data)
    segment_ids = jnp.where(mask, segment_ids, num_segments)

  def count():
    ones = jnp.ones(segment_ids.shape, data.dtype)
    counts = jax.ops.segment_sum(ones, segment_ids, num_segments, indices_are_sorted=False)
    return counts.reshape(counts.shape + (1,) * (data.ndim - 1))

  if aggregate == "sum":
    return jax.ops.segment_sum(data, segment_ids, num_segments, indices_are_sorted=False)
  if aggregate == "mean":
    total = jax.ops.segment_sum(data, segment_ids, num_segments, indices_are_sorted=False)
    return total / jnp.maximum(count(), 1.0)
  largest = jax.ops.segment_max(data, segment_ids, num_segments, indices_are_sorted=False)
  return jnp.where(count() > 0, largest, jnp.zeros((), data.dtype))


def readout(graph: GraphsTuple, h: Array, aggregate: str = "sum", *,
            padded: bool = False) -> Array:
  """Graph-level readout: the sum, mean or max of node states per graph.

  Equation: ``out_g = agg_{v in graph g} h_v`` (``segment_aggregate`` over
  ``node_graph_ids``); empty graphs read 0.

  Args:
    graph: the batch, G graphs and N nodes.
    h: (N, ...) node states, e.g. a model's outputs.
    aggregate: "sum", "mean" or "max".
    padded: ``graph`` comes from ``pad``: padding nodes are left out and
      padding graphs read 0 (real graphs read the same either way).

  Returns:
    (G, ...) graph states.
  """
  check(graph)
  checks.one_of("aggregate", aggregate, AGGREGATIONS)
  padded = _padded_flag(padded)
  graph = graph._replace(nodes=_node_states("h", graph, h))
  mask = node_mask(graph) if padded else None
  return segment_aggregate(graph.nodes, node_graph_ids(graph), checks.shape_of(graph.n_node)[0],
                           aggregate, mask=mask)


def _padded_flag(padded: Any) -> bool:
  if _is_traced(padded):
    raise TypeError("padded must be a Python bool, got a traced value: under jax.jit mark it "
                    "static, e.g. jax.jit(model.apply, static_argnames='padded')")
  return checks.boolean("padded", padded)


def _node_states(name: str, graph: GraphsTuple, h: Any) -> Array:
  h = jnp.asarray(h)
  num_nodes = checks.shape_of(graph.nodes)[0] if graph.nodes is not None else None
  if h.ndim < 1 or (num_nodes is not None and h.shape[0] != num_nodes):
    raise ValueError(f"{name} must have one row per node ({num_nodes}, ...), got shape "
                     f"{h.shape}")
  return h


# ----------------------------------------------------------------------------
# MLP
# ----------------------------------------------------------------------------


def _layer_norm(x: Array, params: Params) -> Array:
  mean = jnp.mean(x, axis=-1, keepdims=True)
  variance = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  normed = (x - mean) * jax.lax.rsqrt(variance + _LAYER_NORM_EPSILON)
  return normed * params["scale"] + params["offset"]


def mlp(sizes: Sequence[int], activation: common.ActivationLike = "relu",
        layer_norm: bool = False) -> MLP:
  """A multi-layer perceptron, with an optional LayerNorm on its output.

  Equations (x: (..., D); L = len(sizes); W_l: (size_{l-1}, size_l))::

    a_0 = x
    a_l = activation(a_{l-1} W_l + b_l)     l < L
    y   = a_{L-1} W_L + b_L                  (no activation on the last layer)
    y   = LayerNorm(y) * scale + offset      (layer_norm=True; eps 1e-5)

  Params: ``{"layers": [{"w": (size_{l-1}, size_l), "b": (size_l,)}, ...]}``
  (w LeCun normal, b zeros) and with ``layer_norm`` also ``{"layer_norm":
  {"scale": ones (O,), "offset": zeros (O,)}}``. Sanchez-Gonzalez et al. 2020
  put a LayerNorm after every MLP but the decoder's.

  Args:
    sizes: the output size of each layer, non-empty, each > 0; the last is O.
    activation: between layers: "relu", "tanh", "sigmoid", "identity",
      "softsign" or a callable.
    layer_norm: layer-normalise the output.

  Returns:
    An ``MLP`` with ``output_size = sizes[-1]``; ``init(key, input_size)``
    (input_size D >= 0: an empty input gives the bias alone) and
    ``apply(params, x (..., D)) -> (..., O)``.
  """
  try:
    sizes = tuple(sizes)
  except TypeError:
    raise TypeError(f"sizes must be a sequence of layer sizes, got {sizes!r}") from None
  if not sizes:
    raise ValueError("sizes must hold at least one layer size, got ()")
  sizes = tuple(checks.positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes))
  act = common.activation(activation)
  layer_norm = checks.boolean("layer_norm", layer_norm)
  kernel_init = initializers.lecun_normal()

  def init(key, input_size):
    input_size = checks.non_negative_int("input_size", input_size)
    keys = jax.random.split(key, len(sizes))
    layers, fan_in = [], input_size
    for k, size in zip(keys, sizes):
      w = (kernel_init(k, (fan_in, size), jnp.float32) if fan_in
           else jnp.zeros((0, size), jnp.float32))
      layers.append({"w": w, "b": jnp.zeros((size,), jnp.float32)})
      fan_in = size
    params = {"layers": layers}
    if layer_norm:
      params["layer_norm"] = {"scale": jnp.ones((sizes[-1],), jnp.float32),
                              "offset": jnp.zeros((sizes[-1],), jnp.float32)}
    return params

  def apply(params, x):
    x = jnp.asarray(x)
    size = checks.shape_of(params["layers"][0]["w"])[0]
    if x.ndim < 1 or x.shape[-1] != size:
      raise ValueError(f"x must have shape (..., {size}) (the input_size the params were "
                       f"built for), got shape {x.shape}")
    last = len(params["layers"]) - 1
    for i, layer in enumerate(params["layers"]):
      x = x @ layer["w"] + layer["b"]
      if i < last:
        x = act(x)
    if layer_norm:
      x = _layer_norm(x, params["layer_norm"])
    return x

  return MLP(init, apply, sizes[-1],
             f"mlp(sizes={list(sizes)}, activation={common.activation_name(activation)}, "
             f"layer_norm={layer_norm})")


# ----------------------------------------------------------------------------
# Message passing
# ----------------------------------------------------------------------------


def message_passing(graph: GraphsTuple, h: Array,
                    message_fn: Callable[[Array, Array, Optional[Array]], Array],
                    update_fn: Callable[[Array, Array], Array], *,
                    aggregate: str = "sum", padded: bool = False) -> Array:
  """One round of message passing (Gilmer et al. 2017's MPNN).

  Equations, for every edge ``k: s_k -> r_k`` and node ``v``::

    m_k  = message_fn(h_{s_k}, h_{r_k}, e_k)           (E, M)
    m_v  = agg_{k : r_k = v} m_k                        (N, M); sum, mean or max
    h'_v = update_fn(h_v, m_v)                          (N, H')

  (Gilmer et al.'s ``M_t(h_v, h_w, e_vw)`` and ``U_t(h_v, m_v)``, with
  ``v`` the receiver.) A node with no incoming edge aggregates 0 (mean and
  max too). The aggregation is ``segment_aggregate`` over ``receivers``.

  Args:
    graph: the batch; ``graph.edges`` (E, De) or None is passed to
      ``message_fn`` as ``e``.
    h: (N, H) node states (e.g. ``graph.nodes``).
    message_fn: ``(h_senders (E, H), h_receivers (E, H), edges (E, De) or
      None) -> (E, M)``, applied to all edges at once.
    update_fn: ``(h (N, H), aggregated (N, M)) -> (N, H')``.
    aggregate: "sum", "mean" or "max".
    padded: ``graph`` comes from ``pad``: padding node states and edge
      features are zeroed before ``message_fn``, padding edges are dropped
      from the aggregation and padding rows of the result are 0, so padding
      may hold anything (real rows are the same either way for finite padding).

  Returns:
    (N, H') updated node states.
  """
  check(graph)
  checks.one_of("aggregate", aggregate, AGGREGATIONS)
  padded = _padded_flag(padded)
  for name, fn in (("message_fn", message_fn), ("update_fn", update_fn)):
    if not callable(fn):
      raise TypeError(f"{name} must be a callable, got {type(fn).__name__}")
  h = _node_states("h", graph, h)
  nodes_mask = node_mask(graph._replace(nodes=h)) if padded else None
  links_mask = edge_mask(graph) if padded else None
  h = _rows_where(nodes_mask, h)
  edges = None if graph.edges is None else _rows_where(links_mask, jnp.asarray(graph.edges))
  senders, receivers = jnp.asarray(graph.senders), jnp.asarray(graph.receivers)
  messages = message_fn(h[senders], h[receivers], edges)
  aggregated = segment_aggregate(messages, receivers, h.shape[0], aggregate, mask=links_mask)
  return _rows_where(nodes_mask, update_fn(h, aggregated))


def _features(name: str, x: Optional[Array], rows: int, size: int) -> Array:
  """``x`` (rows, size) (None for size 0), or a one-line error naming ``name``."""
  if x is None:
    if size:
      raise ValueError(f"{name} must have shape ({rows}, {size}) (the size the params were "
                       f"built for), got None")
    return jnp.zeros((rows, 0), jnp.float32)
  x = jnp.asarray(x)
  if x.shape != (rows, size):
    raise ValueError(f"{name} must have shape ({rows}, {size}) (the size the params were "
                     f"built for), got shape {x.shape}")
  checks.float_array(name, x)
  return x


def _pad_features(x: Array, size: int) -> Array:
  """Li et al.'s ``h_v^(1) = [x_v, 0]``: zero-pads the features of (N, Dn) to size."""
  return jnp.pad(x, ((0, 0), (0, size - x.shape[1])))


def mpnn_layer(hidden_size: int, *, update: str = "mlp", aggregate: str = "sum",
               mlp_layers: int = 1, activation: common.ActivationLike = "relu",
               layer_norm: bool = False) -> GraphModel:
  """A ready-made message-passing layer: MLP messages, MLP or GRU update.

  Equations (``[.]`` concatenation; ``s_k -> r_k`` the edges; x: graph.nodes
  (N, Dn), e: graph.edges (E, De))::

    m_k  = MLP_m([x_{s_k}, x_{r_k}, e_k])              (E, H)
    m_v  = agg_{k : r_k = v} m_k                        (N, H)
    update="mlp":  h_v = MLP_u([x_v, m_v])              (N, H)
    update="gru":  h_v = GRU(m_v, [x_v, 0])             (seqjax.cells.gru(H)'s step)

  With ``update="gru"`` the node features are zero-padded to H first (Li et
  al. 2016), so Dn <= H. With ``edge_size=0`` the messages read no edge
  features and ``graph.edges`` is ignored. Each MLP has ``mlp_layers`` hidden layers of H units
  and an output layer of H. Stack layers by feeding one's output as the next
  one's ``graph.nodes`` (``graph._replace(nodes=h)``).

  Params: ``{"message": MLP_m, "update": MLP_u or the GRU's params}``.

  Args:
    hidden_size: H, > 0.
    update: "mlp" or "gru".
    aggregate: "sum", "mean" or "max" (see ``message_passing``).
    mlp_layers: hidden layers of each MLP, >= 0.
    activation: the MLPs' activation (see ``mlp``).
    layer_norm: layer-normalise the MLPs' outputs.

  Returns:
    A ``GraphModel``: ``init(key, node_size, edge_size=0)``, ``apply(params,
    graph, *, padded=False) -> (N, H)``.

  References:
    Gilmer et al. 2017, https://arxiv.org/abs/1704.01212
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  checks.one_of("update", update, ("mlp", "gru"))
  checks.one_of("aggregate", aggregate, AGGREGATIONS)
  mlp_layers = checks.non_negative_int("mlp_layers", mlp_layers)
  sizes = [hidden_size] * (mlp_layers + 1)
  message_net = mlp(sizes, activation, layer_norm)
  update_net = mlp(sizes, activation, layer_norm) if update == "mlp" else gru(hidden_size)

  def init(key, node_size, edge_size=0):
    node_size = checks.positive_int("node_size", node_size)
    edge_size = checks.non_negative_int("edge_size", edge_size)
    k_message, k_update = jax.random.split(key)
    if update == "gru":
      if node_size > hidden_size:
        raise ValueError(f"node_size must be <= hidden_size ({hidden_size}) with update='gru' "
                         f"(the nodes are zero-padded to the GRU's state), got {node_size}")
      return {"message": message_net.init(k_message, 2 * hidden_size + edge_size),
              "update": update_net.init(k_update, hidden_size)}
    return {"message": message_net.init(k_message, 2 * node_size + edge_size),
            "update": update_net.init(k_update, node_size + hidden_size)}

  def sizes_of(params):
    """(node_size or None for any <= H, edge_size) the params were built for."""
    message_in = checks.shape_of(params["message"]["layers"][0]["w"])[0]
    if update == "gru":
      return None, message_in - 2 * hidden_size
    node_size = checks.shape_of(params["update"]["layers"][0]["w"])[0] - hidden_size
    return node_size, message_in - 2 * node_size

  def apply(params, graph, *, padded=False):
    check(graph)
    node_size, edge_size = sizes_of(params)
    if graph.nodes is None:
      raise ValueError("graph.nodes must be (N, Dn) node features, got None")
    x = jnp.asarray(graph.nodes)
    if node_size is None:
      if x.ndim != 2 or x.shape[1] > hidden_size:
        raise ValueError(f"graph.nodes must have shape (N, Dn) with Dn <= {hidden_size}, got "
                         f"shape {x.shape}")
      x = _pad_features(x, hidden_size)
    else:
      x = _features("graph.nodes", x, x.shape[0], node_size)
    edges = _features("graph.edges", graph.edges if edge_size else None,
                      checks.shape_of(graph.senders)[0], edge_size)

    def message_fn(h_senders, h_receivers, e):
      return message_net.apply(params["message"], jnp.concatenate([h_senders, h_receivers, e], -1))

    def update_fn(h, m):
      if update == "gru":
        return update_net.step(params["update"], h, m)[0]
      return update_net.apply(params["update"], jnp.concatenate([h, m], -1))

    return message_passing(graph._replace(nodes=x, edges=edges), x, message_fn, update_fn,
                           aggregate=aggregate, padded=padded)

  return GraphModel(init, apply, hidden_size,
                    f"mpnn_layer(hidden_size={hidden_size}, update={update}, "
                    f"aggregate={aggregate}, mlp_layers={mlp_layers})")


def _edge_type_weights(edges: Any, num_edges: int, edge_types: int) -> Array:
  """(E, T) weights of each edge's types from int ids (E,) or float weights (E, T)."""
  if edges is None:
    raise ValueError(f"graph.edges must hold the edge types, (E,) ints in [0, {edge_types}) "
                     f"or (E, {edge_types}) floats, with edge_types={edge_types}; got None")
  dtype = jnp.result_type(edges)
  shape = checks.shape_of(edges)
  if jnp.issubdtype(dtype, jnp.integer):
    if shape != (num_edges,):
      raise ValueError(f"graph.edges must be edge type ids of shape ({num_edges},), got shape "
                       f"{shape}")
    if not _is_traced(edges):
      ids = np.asarray(edges)
      bad = (ids < 0) | (ids >= edge_types)
      if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"graph.edges must be edge types in [0, {edge_types}), got "
                         f"{ids[i]} at edge {i}")
    return jax.nn.one_hot(jnp.asarray(edges), edge_types, dtype=jnp.float32)
  if shape != (num_edges, edge_types):
    raise ValueError(f"graph.edges must be edge type weights of shape ({num_edges}, "
                     f"{edge_types}) (one-hot for hard types) or ids ({num_edges},), got shape "
                     f"{shape}")
  checks.float_array("graph.edges", edges)
  return jnp.asarray(edges)


def gated_graph_nn(hidden_size: int, num_steps: int, edge_types: int = 1, *,
                   message_bias: bool = True) -> GraphModel:
  """Gated graph neural network (GGNN; Li et al. 2016), propagation model.

  Equations (eq. 1-6 of the paper, in row-vector form; ``u -> v`` the edges,
  ``t(u, v)`` an edge's type, x: graph.nodes (N, Dn) with Dn <= H)::

    h_v^(0)   = [x_v, 0]                     zero-padded to H (the paper's h_v^(1))
    m_v^(s)   = sum_{u -> v} h_u^(s-1) A_{t(u,v)} + b      (N, H)
    h_v^(s)   = GRU(m_v^(s), h_v^(s-1))                    s = 1..num_steps

  ``GRU`` is ``seqjax.cells.gru(H)``'s ``step(params["gru"], h, m)``, with
  the message as input (the paper's GRU names the update gate the other way
  round, ``h = (1 - z) h_prev + z h~``: the same family of functions); all
  steps share the weights, as in the paper. With ``edge_types`` T >
  1, ``graph.edges`` holds each edge's type as an int (E,) in ``[0, T)``,
  or as float weights (E, T) (one-hot gives the paper; soft weights mix the
  ``A_t``); with T = 1, ``graph.edges`` is ignored. The paper's separate
  matrices for incoming and outgoing edges are two edge types: add every
  edge reversed, with type ``t + T``. The graph-level output model (eq. 7)
  is ``gated_readout``.

  Params: ``{"a": (T, H, H), "b": (H,) (message_bias), "gru": the GRU's
  params}``; ``a`` Glorot uniform per type, ``b`` zeros.

  Args:
    hidden_size: H, > 0.
    num_steps: propagation steps, > 0 (run by ``lax.scan``: one compiled step).
    edge_types: T, > 0.
    message_bias: add ``b`` to every node's message (eq. 2); the GRU's own
      input bias makes it redundant but harmless.

  Returns:
    A ``GraphModel``: ``init(key, node_size, edge_size=0)`` (``edge_size`` is
    not used: types come from ``edge_types``), ``apply(params, graph, *,
    padded=False) -> (N, H)``, the final node states ``h^(num_steps)``.

  References:
    Li et al. 2016, "Gated graph sequence neural networks",
    https://arxiv.org/abs/1511.05493
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  num_steps = checks.positive_int("num_steps", num_steps)
  edge_types = checks.positive_int("edge_types", edge_types)
  message_bias = checks.boolean("message_bias", message_bias)
  cell = gru(hidden_size)
  glorot = initializers.glorot_uniform()

  def init(key, node_size, edge_size=0):
    node_size = checks.positive_int("node_size", node_size)
    checks.non_negative_int("edge_size", edge_size)
    if node_size > hidden_size:
      raise ValueError(f"node_size must be <= hidden_size ({hidden_size}): Li et al. zero-pad "
                       f"the node features to the state size, got {node_size}")
    k_a, k_gru = jax.random.split(key)
    a = jnp.stack([glorot(k, (hidden_size, hidden_size), jnp.float32)
                   for k in jax.random.split(k_a, edge_types)])
    params = {"a": a, "gru": cell.init(k_gru, hidden_size)}
    if message_bias:
      params["b"] = jnp.zeros((hidden_size,), jnp.float32)
    return params

  def apply(params, graph, *, padded=False):
    check(graph)
    padded = _padded_flag(padded)
    if checks.shape_of(params["a"]) != (edge_types, hidden_size, hidden_size):
      raise ValueError(f"params['a'] must have shape ({edge_types}, {hidden_size}, "
                       f"{hidden_size}), got {checks.shape_of(params['a'])}")
    if graph.nodes is None or jnp.ndim(graph.nodes) != 2 or graph.nodes.shape[1] > hidden_size:
      raise ValueError(f"graph.nodes must have shape (N, Dn) with Dn <= {hidden_size}, got "
                       f"{None if graph.nodes is None else checks.shape_of(graph.nodes)}")
    checks.float_array("graph.nodes", graph.nodes)
    num_edges = checks.shape_of(graph.senders)[0]
    weights = (None if edge_types == 1
               else _edge_type_weights(graph.edges, num_edges, edge_types))
    nodes_mask = node_mask(graph) if padded else None
    links_mask = edge_mask(graph) if padded else None
    h = _rows_where(nodes_mask, _pad_features(jnp.asarray(graph.nodes), hidden_size))
    if weights is not None:
      weights = _rows_where(links_mask, weights)
    senders, receivers = jnp.asarray(graph.senders), jnp.asarray(graph.receivers)
    num_nodes = h.shape[0]
    # All T transforms of a sender in one matmul, (E, H) @ (H, T*H), then each
    # edge's mix of them: cheaper than a gather of (E, H, H) matrices.
    a_all = jnp.transpose(params["a"], (1, 0, 2)).reshape(hidden_size, edge_types * hidden_size)

    def propagate(h, _):
      h_senders = h[senders]
      if weights is None:
        messages = h_senders @ params["a"][0]
      else:
        per_type = (h_senders @ a_all).reshape(num_edges, edge_types, hidden_size)
        messages = jnp.einsum("et,eth->eh", weights, per_type)
      m = segment_aggregate(messages, receivers, num_nodes, "sum", mask=links_mask)
      if message_bias:
        m = m + params["b"]
      h, _ = cell.step(params["gru"], h, m)
      return h, None

    h, _ = jax.lax.scan(propagate, h, None, length=num_steps)
    return _rows_where(nodes_mask, h)

  return GraphModel(init, apply, hidden_size,
                    f"gated_graph_nn(hidden_size={hidden_size}, num_steps={num_steps}, "
                    f"edge_types={edge_types})")


def gated_readout(output_size: int, *, hidden_sizes: Sequence[int] = (),
                  activation: common.ActivationLike = "relu",
                  outer_tanh: bool = True) -> GraphReadout:
  """GGNN's graph-level output: a gated sum of node states (Li et al. 2016, eq. 7).

  Equation (h: final node states (N, H), x: graph.nodes (N, Dn) or nothing)::

    h_G = tanh( sum_{v in G} sigmoid(i([h_v, x_v])) * tanh(j([h_v, x_v])) )

  ``i`` and ``j`` are MLPs (``mlp(hidden_sizes + (O,))``); the sigmoid gate
  is a soft attention that picks the nodes relevant to the graph-level task.
  ``outer_tanh=False`` leaves out the outer tanh.

  Params: ``{"gate": i, "value": j}``, each an ``mlp``'s params.

  Args:
    output_size: O, > 0.
    hidden_sizes: hidden layer sizes of ``i`` and ``j`` (``()``: linear maps).
    activation: their activation (see ``mlp``).
    outer_tanh: apply the paper's outer tanh.

  Returns:
    A ``GraphReadout``: ``init(key, hidden_size, node_size=0)`` (node_size Dn
    of the ``x_v`` concatenated to ``h_v``; 0 reads ``h`` alone),
    ``apply(params, graph, h, *, padded=False) -> (G, O)``; padding graphs
    read 0 with ``padded=True``.

  References:
    Li et al. 2016, https://arxiv.org/abs/1511.05493
  """
  output_size = checks.positive_int("output_size", output_size)
  outer_tanh = checks.boolean("outer_tanh", outer_tanh)
  sizes = tuple(hidden_sizes) + (output_size,)
  gate_net = mlp(sizes, activation)
  value_net = mlp(sizes, activation)

  def init(key, hidden_size, node_size=0):
    hidden_size = checks.positive_int("hidden_size", hidden_size)
    node_size = checks.non_negative_int("node_size", node_size)
    k_gate, k_value = jax.random.split(key)
    return {"gate": gate_net.init(k_gate, hidden_size + node_size),
            "value": value_net.init(k_value, hidden_size + node_size)}

  def apply(params, graph, h, *, padded=False):
    check(graph)
    padded = _padded_flag(padded)
    h = _node_states("h", graph, h)
    width = checks.shape_of(params["gate"]["layers"][0]["w"])[0]
    if h.ndim != 2 or h.shape[1] > width:
      raise ValueError(f"h must have shape (N, H) with H <= {width} (the sizes the params "
                       f"were built for), got shape {h.shape}")
    node_size = width - h.shape[1]
    inputs = h
    if node_size:
      x = _features("graph.nodes", graph.nodes, h.shape[0], node_size)
      inputs = jnp.concatenate([h, x], -1)
    nodes_mask = node_mask(graph._replace(nodes=h)) if padded else None
    inputs = _rows_where(nodes_mask, inputs)
    per_node = (jax.nn.sigmoid(gate_net.apply(params["gate"], inputs))
                * jnp.tanh(value_net.apply(params["value"], inputs)))
    out = segment_aggregate(per_node, node_graph_ids(graph._replace(nodes=h)),
                            checks.shape_of(graph.n_node)[0], "sum", mask=nodes_mask)
    return jnp.tanh(out) if outer_tanh else out

  return GraphReadout(init, apply, output_size,
                      f"gated_readout(output_size={output_size}, hidden_sizes={list(sizes[:-1])})")


def encode_process_decode(node_output_size: int, *, latent_size: int = 128,
                          num_steps: int = 10, mlp_layers: int = 2, layer_norm: bool = True,
                          activation: common.ActivationLike = "relu",
                          shared_processor: bool = False,
                          edge_output_size: Optional[int] = None) -> GraphModel:
  """Encode-process-decode graph network (Battaglia et al. 2018; Sanchez-Gonzalez et al. 2020).

  Equations (x: graph.nodes (N, Dn), e: graph.edges (E, De) or none;
  ``s_k -> r_k`` the edges; every MLP has ``mlp_layers`` hidden layers of
  ``latent_size`` units)::

    encode:   v_i = MLP_v^enc(x_i),   e_k = MLP_e^enc(e_k)              (N, L), (E, L)
    process, steps m = 1..num_steps (interaction networks, residual):
              e_k <- e_k + MLP_e^m([e_k, v_{s_k}, v_{r_k}])
              v_i <- v_i + MLP_v^m([v_i, sum_{k : r_k = i} e_k])
    decode:   y_i = MLP_v^dec(v_i)                                      (N, O)
              (and y_k = MLP_e^dec(e_k), (E, Oe), with edge_output_size)

  As in Sanchez-Gonzalez et al. ("learning to simulate"), the processor
  steps have their own weights (``shared_processor=True`` shares one set),
  every MLP but the decoders ends in a LayerNorm (``layer_norm``), and
  globals are not used: concatenate them to the node features. The steps
  run under ``lax.scan`` over stacked weights, so compile time does not grow
  with ``num_steps``. Without edge features (``edge_size=0``) the edge
  encoder starts every edge at the same learnt vector and ``graph.edges`` is
  ignored.

  Params: ``{"encoder": {"node", "edge"}, "processor": {"edge", "node"},
  "decoder": {"node"[, "edge"]}}``, each an ``mlp``'s params; processor
  leaves carry a leading axis of ``num_steps`` unless shared.

  Args:
    node_output_size: O, > 0.
    latent_size: L, the size of every latent and hidden layer, > 0.
    num_steps: message-passing steps M, > 0.
    mlp_layers: hidden layers of every MLP, >= 0.
    layer_norm: LayerNorm after the encoder and processor MLPs.
    activation: the MLPs' activation (see ``mlp``).
    shared_processor: one set of processor weights for every step.
    edge_output_size: Oe > 0 to decode the edges too; None for nodes only.

  Returns:
    A ``GraphModel``: ``init(key, node_size, edge_size=0)``, ``apply(params,
    graph, *, padded=False)`` -> (N, O), or ``((N, O), (E, Oe))`` with
    ``edge_output_size``.

  References:
    Battaglia et al. 2018, https://arxiv.org/abs/1806.01261
    Sanchez-Gonzalez et al. 2020, https://arxiv.org/abs/2002.09405
  """
  node_output_size = checks.positive_int("node_output_size", node_output_size)
  latent_size = checks.positive_int("latent_size", latent_size)
  num_steps = checks.positive_int("num_steps", num_steps)
  mlp_layers = checks.non_negative_int("mlp_layers", mlp_layers)
  layer_norm = checks.boolean("layer_norm", layer_norm)
  shared_processor = checks.boolean("shared_processor", shared_processor)
  if edge_output_size is not None:
    edge_output_size = checks.positive_int("edge_output_size", edge_output_size)
  hidden = [latent_size] * mlp_layers
  latent_net = mlp(hidden + [latent_size], activation, layer_norm)
  node_decoder = mlp(hidden + [node_output_size], activation)
  edge_decoder = None if edge_output_size is None else mlp(hidden + [edge_output_size], activation)

  def init(key, node_size, edge_size=0):
    node_size = checks.positive_int("node_size", node_size)
    edge_size = checks.non_negative_int("edge_size", edge_size)
    k_node, k_edge, k_process, k_decode, k_decode_edge = jax.random.split(key, 5)

    def block(k):
      k_e, k_v = jax.random.split(k)
      return {"edge": latent_net.init(k_e, 3 * latent_size),
              "node": latent_net.init(k_v, 2 * latent_size)}

    if shared_processor:
      processor = block(k_process)
    else:
      blocks = [block(k) for k in jax.random.split(k_process, num_steps)]
      processor = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *blocks)
    params = {"encoder": {"node": latent_net.init(k_node, node_size),
                          "edge": latent_net.init(k_edge, edge_size)},
              "processor": processor,
              "decoder": {"node": node_decoder.init(k_decode, latent_size)}}
    if edge_decoder is not None:
      params["decoder"]["edge"] = edge_decoder.init(k_decode_edge, latent_size)
    return params

  def apply(params, graph, *, padded=False):
    check(graph)
    padded = _padded_flag(padded)
    node_size = checks.shape_of(params["encoder"]["node"]["layers"][0]["w"])[0]
    edge_size = checks.shape_of(params["encoder"]["edge"]["layers"][0]["w"])[0]
    if graph.nodes is None:
      raise ValueError(f"graph.nodes must have shape (N, {node_size}), got None")
    num_nodes = checks.shape_of(graph.nodes)[0]
    num_edges = checks.shape_of(graph.senders)[0]
    x = _features("graph.nodes", graph.nodes, num_nodes, node_size)
    e = _features("graph.edges", graph.edges if edge_size else None, num_edges, edge_size)
    nodes_mask = node_mask(graph) if padded else None
    links_mask = edge_mask(graph) if padded else None
    v = latent_net.apply(params["encoder"]["node"], _rows_where(nodes_mask, x))
    e = latent_net.apply(params["encoder"]["edge"], _rows_where(links_mask, e))
    senders, receivers = jnp.asarray(graph.senders), jnp.asarray(graph.receivers)

    def interact(carry, block):
      v, e = carry
      e = e + latent_net.apply(block["edge"], jnp.concatenate([e, v[senders], v[receivers]], -1))
      incoming = segment_aggregate(e, receivers, num_nodes, "sum", mask=links_mask)
      v = v + latent_net.apply(block["node"], jnp.concatenate([v, incoming], -1))
      return (v, e), None

    if shared_processor:
      (v, e), _ = jax.lax.scan(lambda c, _: interact(c, params["processor"]), (v, e), None,
                               length=num_steps)
    else:
      steps = jax.tree_util.tree_leaves(params["processor"])[0].shape[0]
      if steps != num_steps:
        raise ValueError(f"params['processor'] must hold {num_steps} steps (num_steps), got "
                         f"{steps}")
      (v, e), _ = jax.lax.scan(interact, (v, e), params["processor"])
    nodes_out = _rows_where(nodes_mask, node_decoder.apply(params["decoder"]["node"], v))
    if edge_decoder is None:
      return nodes_out
    return nodes_out, _rows_where(links_mask, edge_decoder.apply(params["decoder"]["edge"], e))

  return GraphModel(init, apply, node_output_size,
                    f"encode_process_decode(node_output_size={node_output_size}, "
                    f"latent_size={latent_size}, num_steps={num_steps}, "
                    f"mlp_layers={mlp_layers}, shared_processor={shared_processor})")
