"""Graphs: batching and padding, message passing, GGNN, readouts, encode-process-decode.

Every model is checked against an explicit numpy loop over edges and nodes;
padding and batching may change nothing on real nodes and graphs.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import graphs
from seqjax.cells import gru
from seqjax.graphs import GraphsTuple

ATOL = 2e-5


def _graph(rng, num_nodes, num_edges, node_size=3, edge_size=2, *, isolated=True):
  """One random graph; with ``isolated`` its last node receives nothing."""
  receivers_high = num_nodes - 1 if isolated and num_nodes > 1 else num_nodes
  return GraphsTuple(
      nodes=rng.normal(size=(num_nodes, node_size)).astype(np.float32),
      edges=rng.normal(size=(num_edges, edge_size)).astype(np.float32),
      receivers=rng.integers(0, max(receivers_high, 1), num_edges).astype(np.int32),
      senders=rng.integers(0, max(num_nodes, 1), num_edges).astype(np.int32),
      globals=None, n_node=np.array([num_nodes], np.int32),
      n_edge=np.array([num_edges], np.int32))


def _three_graphs(seed=0, **kwargs):
  rng = np.random.default_rng(seed)
  return [_graph(rng, 5, 9, **kwargs), _graph(rng, 1, 2, **kwargs), _graph(rng, 4, 6, **kwargs)]


def _garbage(graph, real_nodes, real_edges, value):
  """``graph`` with ``value`` in every padding node and edge feature."""
  nodes, edges = np.array(graph.nodes), np.array(graph.edges)
  nodes[real_nodes:] = value
  edges[real_edges:] = value
  return graph._replace(nodes=nodes, edges=edges)


# ---------------------------------------------------------------------------- numpy references


def _aggregate_loop(messages, receivers, num_nodes, kind):
  out = np.zeros((num_nodes,) + messages.shape[1:], np.float64)
  for v in range(num_nodes):
    incoming = [messages[k] for k in range(len(receivers)) if receivers[k] == v]
    if incoming:
      out[v] = {"sum": np.sum, "mean": np.mean, "max": np.max}[kind](incoming, axis=0)
  return out


def _np_mlp(params, x, activation=lambda a: np.maximum(a, 0.0)):
  layers = params["layers"]
  for i, layer in enumerate(layers):
    x = x @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
    if i < len(layers) - 1:
      x = activation(x)
  if "layer_norm" in params:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    x = (x - mean) / np.sqrt(var + 1e-5) * np.asarray(params["layer_norm"]["scale"]) + \
        np.asarray(params["layer_norm"]["offset"])
  return x


@functools.lru_cache(maxsize=None)
def _gru_step(hidden_size):
  """``seqjax.cells.gru(hidden_size).step``, jitted (one compile, not one per op)."""
  return jax.jit(gru(hidden_size).step)


def _np_encode_process_decode(params, graph, num_steps):
  """The interaction-network processor, one edge and one node at a time."""
  x, ef = np.asarray(graph.nodes, np.float64), np.asarray(graph.edges, np.float64)
  s, r = graph.senders, graph.receivers
  v = _np_mlp(params["encoder"]["node"], x)
  e = _np_mlp(params["encoder"]["edge"], ef)
  for m in range(num_steps):
    block = jax.tree_util.tree_map(lambda a: np.asarray(a)[m], params["processor"])
    e = np.stack([e[k] + _np_mlp(block["edge"], np.concatenate([e[k], v[s[k]], v[r[k]]]))
                  for k in range(len(s))])
    incoming = [sum((e[k] for k in range(len(s)) if r[k] == i), np.zeros(v.shape[1]))
                for i in range(len(v))]
    v = np.stack([v[i] + _np_mlp(block["node"], np.concatenate([v[i], incoming[i]]))
                  for i in range(len(v))])
  return _np_mlp(params["decoder"]["node"], v), _np_mlp(params["decoder"]["edge"], e)


# ---------------------------------------------------------------------------- batching, padding


def test_graphs_tuple_has_jraphs_fields_in_jraphs_order():
  assert GraphsTuple._fields == ("nodes", "edges", "receivers", "senders", "globals", "n_node",
                                 "n_edge")


def test_batch_offsets_indices_and_unbatch_inverts_it():
  parts = _three_graphs()
  batched = graphs.batch(parts)
  np.testing.assert_array_equal(batched.n_node, [5, 1, 4])
  np.testing.assert_array_equal(batched.n_edge, [9, 2, 6])
  np.testing.assert_array_equal(
      batched.senders, np.concatenate([parts[0].senders, parts[1].senders + 5,
                                       parts[2].senders + 6]))
  assert batched.senders.dtype == np.int32 and batched.n_node.dtype == np.int32
  for part, back in zip(parts, graphs.unbatch(batched)):
    for field in ("nodes", "edges", "senders", "receivers", "n_node", "n_edge"):
      np.testing.assert_array_equal(getattr(back, field), getattr(part, field))


def test_pad_follows_pad_with_graphs_and_masks_find_the_padding():
  rng = np.random.default_rng(1)
  empty = _graph(rng, 0, 0)   # a real batch may end in an empty graph
  real = graphs.batch([_graph(rng, 3, 4), empty])
  padded = graphs.pad(real, n_node=8, n_edge=7, n_graph=5)
  np.testing.assert_array_equal(padded.n_node, [3, 0, 5, 0, 0])
  np.testing.assert_array_equal(padded.n_edge, [4, 0, 3, 0, 0])
  np.testing.assert_array_equal(padded.senders[4:], [3, 3, 3])      # the first padding node
  np.testing.assert_array_equal(padded.receivers[4:], [3, 3, 3])
  np.testing.assert_array_equal(padded.nodes[3:], 0.0)
  want = ([True, True, False, False, False], [True] * 3 + [False] * 5, [True] * 4 + [False] * 3)
  masks = jax.jit(lambda g: (graphs.graph_mask(g), graphs.node_mask(g), graphs.edge_mask(g)))
  for got, expected in zip(masks(padded), want):
    np.testing.assert_array_equal(got, expected)
  back = graphs.unpad(padded)
  for field in ("nodes", "edges", "senders", "receivers", "n_node", "n_edge"):
    np.testing.assert_array_equal(getattr(back, field), getattr(real, field))


def test_bucket_ladder_and_the_smallest_fitting_bucket():
  buckets = graphs.bucket_sizes(40, 100, 4, num_buckets=3)
  assert buckets == ((10, 25, 4), (20, 50, 4), (40, 100, 4))
  batched = graphs.batch(_three_graphs())     # 10 nodes, 17 edges, 3 graphs
  assert graphs.pad_to_bucket(batched, buckets).n_node.sum() == 20   # 10 + 1 padding > 10
  # (11, 16, 4) lacks an edge; (11, 17, 4) is a tight fit, smaller than (99, 99, 9).
  tight = graphs.pad_to_bucket(batched, [(99, 99, 9), (11, 16, 4), (11, 17, 4)])
  assert (tight.n_node.sum(), tight.senders.shape[0], tight.n_node.shape[0]) == (11, 17, 4)
  np.testing.assert_array_equal(tight.n_edge, [9, 2, 6, 0])


# ---------------------------------------------------------------------------- message passing


@pytest.mark.parametrize("aggregate", ["sum", "mean", "max"])
def test_message_passing_equals_a_loop_over_edges(aggregate):
  batched = graphs.batch(_three_graphs())
  w = [np.random.default_rng(i).normal(size=shape).astype(np.float32)
       for i, shape in enumerate([(3, 4), (3, 4), (2, 4), (3, 5), (4, 5)])]

  def message_fn(h_s, h_r, e):
    return jnp.tanh(h_s @ w[0] + h_r @ w[1] + e @ w[2])

  def update_fn(h, m):
    return jnp.tanh(h @ w[3] + m @ w[4])

  x, s, r = batched.nodes.astype(np.float64), batched.senders, batched.receivers
  messages = np.stack([np.tanh(x[s[k]] @ w[0] + x[r[k]] @ w[1] + batched.edges[k] @ w[2])
                       for k in range(len(s))])
  aggregated = _aggregate_loop(messages, r, len(x), aggregate)
  assert not aggregated[4].any()     # the isolated node receives 0
  want = np.tanh(x @ w[3] + aggregated @ w[4])

  run = jax.jit(functools.partial(graphs.message_passing, message_fn=message_fn,
                                  update_fn=update_fn, aggregate=aggregate),
                static_argnames="padded")
  np.testing.assert_allclose(run(batched, batched.nodes), want, atol=ATOL)
  padded = graphs.pad(batched, n_node=16, n_edge=24, n_graph=5)
  nan_padded = _garbage(padded, 10, 17, np.nan)
  got = run(nan_padded, nan_padded.nodes, padded=True)
  np.testing.assert_allclose(got[:10], want, atol=ATOL)
  np.testing.assert_array_equal(got[10:], 0.0)
  # Finite padding cannot reach real nodes even unmasked: padding edges join padding nodes.
  big_padded = _garbage(padded, 10, 17, 1e3)
  np.testing.assert_allclose(run(big_padded, big_padded.nodes)[:10], want, atol=ATOL)


@pytest.mark.parametrize("aggregate", ["sum", "mean", "max"])
def test_segment_aggregate_drops_masked_rows(aggregate):
  data = jnp.array([[1.0], [5.0], [jnp.nan], [-2.0]])
  got = graphs.segment_aggregate(data, jnp.array([0, 0, 0, 2]), 3, aggregate,
                                 mask=jnp.array([True, True, False, True]))
  want = {"sum": [6.0, 0.0, -2.0], "mean": [3.0, 0.0, -2.0], "max": [5.0, 0.0, -2.0]}
  np.testing.assert_allclose(got[:, 0], want[aggregate])


def test_mpnn_layer_equals_mlps_and_gru_on_looped_messages():
  batched = graphs.batch(_three_graphs())
  x, s, r, ef = (batched.nodes.astype(np.float64), batched.senders, batched.receivers,
                 batched.edges)
  key = jax.random.PRNGKey(0)

  layer = graphs.mpnn_layer(4, aggregate="mean", layer_norm=True)
  params = layer.init(key, 3, 2)
  messages = np.stack([_np_mlp(params["message"], np.concatenate([x[s[k]], x[r[k]], ef[k]]))
                       for k in range(len(s))])
  aggregated = _aggregate_loop(messages, r, len(x), "mean")
  want = _np_mlp(params["update"], np.concatenate([x, aggregated], -1))
  np.testing.assert_allclose(jax.jit(layer.apply)(params, batched), want, atol=ATOL)

  layer = graphs.mpnn_layer(4, update="gru")
  params = layer.init(key, 3, 2)
  h = np.pad(x, ((0, 0), (0, 1)))       # nodes zero-padded to the GRU's state
  messages = np.stack([_np_mlp(params["message"], np.concatenate([h[s[k]], h[r[k]], ef[k]]))
                       for k in range(len(s))])
  aggregated = _aggregate_loop(messages, r, len(x), "sum").astype(np.float32)
  want, _ = _gru_step(4)(params["update"], h.astype(np.float32), aggregated)
  np.testing.assert_allclose(jax.jit(layer.apply)(params, batched), want, atol=ATOL)


# ---------------------------------------------------------------------------- gated GNN


def _ggnn_reference_step(params, h, senders, receivers, types):
  """One GGNN step: messages summed by a loop, then seqjax.cells.gru's step."""
  a, b = np.asarray(params["a"], np.float64), np.asarray(params["b"], np.float64)
  m = np.zeros_like(h, np.float64)
  for k in range(len(senders)):
    m[receivers[k]] += h[senders[k]] @ a[types[k]]
  m += b
  h, _ = _gru_step(h.shape[1])(params["gru"], jnp.asarray(h, jnp.float32),
                               jnp.asarray(m, jnp.float32))
  return np.asarray(h, np.float64)


def test_gated_graph_nn_step_is_the_gru_step_on_looped_messages():
  rng = np.random.default_rng(3)
  batched = graphs.batch(_three_graphs(node_size=4))
  types = rng.integers(0, 2, len(batched.senders)).astype(np.int32)
  typed = batched._replace(edges=types)
  model = graphs.gated_graph_nn(6, num_steps=1, edge_types=2)
  params = model.init(jax.random.PRNGKey(0), 4)
  params["b"] = jnp.asarray(rng.normal(size=6), jnp.float32)
  h0 = np.pad(batched.nodes.astype(np.float64), ((0, 0), (0, 2)))    # [x_v, 0]
  want = _ggnn_reference_step(params, h0, batched.senders, batched.receivers, types)
  apply = jax.jit(model.apply)
  np.testing.assert_allclose(apply(params, typed), want, atol=ATOL)
  # One-hot float weights are the same edge types.
  one_hot = typed._replace(edges=np.eye(2, dtype=np.float32)[types])
  np.testing.assert_allclose(apply(params, one_hot), want, atol=ATOL)

  three = graphs.gated_graph_nn(6, num_steps=3, edge_types=2)
  for _ in range(2):
    want = _ggnn_reference_step(params, want, batched.senders, batched.receivers, types)
  np.testing.assert_allclose(jax.jit(three.apply)(params, typed), want, atol=1e-4)


# ---------------------------------------------------------------------------- readouts


@pytest.mark.parametrize("aggregate", ["sum", "mean", "max"])
def test_readout_equals_numpy_per_graph(aggregate):
  rng = np.random.default_rng(4)
  batched = graphs.batch([_graph(rng, 3, 2), _graph(rng, 0, 0), _graph(rng, 4, 3)])
  h = rng.normal(size=(7, 5)).astype(np.float32)
  reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[aggregate]
  want = np.stack([reduce(h[:3], 0), np.zeros(5), reduce(h[3:], 0)])
  run = jax.jit(graphs.readout, static_argnums=2, static_argnames="padded")
  np.testing.assert_allclose(run(batched, h, aggregate), want, atol=ATOL)
  padded = graphs.pad(batched, n_node=9, n_edge=5, n_graph=5)
  h_padded = np.concatenate([h, np.full((2, 5), np.nan, np.float32)])
  got = run(padded, h_padded, aggregate, padded=True)
  np.testing.assert_allclose(got[:3], want, atol=ATOL)
  np.testing.assert_array_equal(got[3:], 0.0)


def test_gated_readout_is_li_et_al_equation_7():
  rng = np.random.default_rng(5)
  batched = graphs.batch([_graph(rng, 3, 2), _graph(rng, 4, 3)])
  h = rng.normal(size=(7, 6)).astype(np.float32)
  readout = graphs.gated_readout(2, hidden_sizes=(5,))
  params = readout.init(jax.random.PRNGKey(0), 6, 3)
  inputs = np.concatenate([h, batched.nodes], -1).astype(np.float64)
  per_node = (1 / (1 + np.exp(-_np_mlp(params["gate"], inputs)))
              * np.tanh(_np_mlp(params["value"], inputs)))
  want = np.tanh(np.stack([per_node[:3].sum(0), per_node[3:].sum(0)]))
  np.testing.assert_allclose(jax.jit(readout.apply)(params, batched, h), want, atol=ATOL)


# ---------------------------------------------------------------------------- encode-process-decode


def test_encode_process_decode_equals_each_graph_alone():
  """Batching invariance: the batch of three equals each graph evaluated on its
  own by an explicit loop (and by the model itself, for the one-node graph)."""
  parts = _three_graphs()
  model = graphs.encode_process_decode(2, latent_size=8, num_steps=2, mlp_layers=1,
                                       edge_output_size=3)
  params = model.init(jax.random.PRNGKey(0), 3, 2)
  apply = jax.jit(model.apply)
  nodes, edges = apply(params, graphs.batch(parts))
  node_start, edge_start = 0, 0
  for part in parts:
    want_nodes, want_edges = _np_encode_process_decode(params, part, 2)
    n, e = part.n_node[0], part.n_edge[0]
    np.testing.assert_allclose(nodes[node_start:node_start + n], want_nodes, atol=1e-4)
    np.testing.assert_allclose(edges[edge_start:edge_start + e], want_edges, atol=1e-4)
    node_start, edge_start = node_start + n, edge_start + e
  alone_nodes, alone_edges = apply(params, parts[1])
  np.testing.assert_allclose(alone_nodes, nodes[5:6], atol=1e-5)
  np.testing.assert_allclose(alone_edges, edges[9:11], atol=1e-5)


def test_shared_processor_is_the_same_block_every_step():
  batched = graphs.batch(_three_graphs())
  shared = graphs.encode_process_decode(2, latent_size=8, num_steps=3, mlp_layers=1,
                                        shared_processor=True)
  params = shared.init(jax.random.PRNGKey(0), 3, 2)
  unshared = graphs.encode_process_decode(2, latent_size=8, num_steps=3, mlp_layers=1)
  stacked = dict(params, processor=jax.tree_util.tree_map(lambda a: jnp.stack([a] * 3),
                                                          params["processor"]))
  np.testing.assert_allclose(jax.jit(shared.apply)(params, batched),
                             jax.jit(unshared.apply)(stacked, batched), atol=1e-5)


def _padding_cases():
  key = jax.random.PRNGKey(0)
  epd = graphs.encode_process_decode(2, latent_size=8, num_steps=2, mlp_layers=1)
  ggnn = graphs.gated_graph_nn(4, num_steps=2, edge_types=2)
  mpnn = graphs.mpnn_layer(4, update="gru", aggregate="max")
  return {"encode_process_decode": (epd, epd.init(key, 3, 2)),
          "gated_graph_nn": (ggnn, ggnn.init(key, 3)),
          "mpnn_layer": (mpnn, mpnn.init(key, 3, 2))}


@pytest.mark.parametrize("name", ["encode_process_decode", "gated_graph_nn", "mpnn_layer"])
def test_padding_may_hold_anything(name):
  model, params = _padding_cases()[name]
  batched = graphs.batch(_three_graphs())
  if name == "gated_graph_nn":   # two edge types as one-hot float weights
    types = np.random.default_rng(6).integers(0, 2, 17)
    batched = batched._replace(edges=np.eye(2, dtype=np.float32)[types])
  padded = _garbage(graphs.pad(batched, n_node=14, n_edge=20, n_graph=5), 10, 17, np.nan)
  mask = graphs.node_mask(padded)[:, None]

  @jax.jit
  def real_loss(p):
    return jnp.sum(jnp.sin(model.apply(p, batched)))

  @jax.jit
  def padded_loss(p):
    return jnp.sum(jnp.where(mask, jnp.sin(model.apply(p, padded, padded=True)), 0.0))

  value, grads = jax.value_and_grad(real_loss)(params)
  padded_value, padded_grads = jax.value_and_grad(padded_loss)(params)
  np.testing.assert_allclose(padded_value, value, rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
                         padded_grads, grads)


def test_one_compile_per_bucket():
  model = graphs.mpnn_layer(4)
  params = model.init(jax.random.PRNGKey(0), 3, 2)
  buckets = graphs.bucket_sizes(32, 64, 4, num_buckets=2)
  apply = jax.jit(model.apply, static_argnames="padded")
  rng = np.random.default_rng(7)
  used = set()
  for sizes in [(2, 3, 4), (5, 1, 6), (3, 3, 3), (9, 8, 7), (6, 10, 12), (1, 1, 1)]:
    batched = graphs.batch([_graph(rng, n, 2 * n) for n in sizes])
    padded = graphs.pad_to_bucket(batched, buckets)
    used.add(padded.senders.shape)
    largest = graphs.pad_to_bucket(batched, buckets[-1:])
    np.testing.assert_allclose(apply(params, padded, padded=True)[:sum(sizes)],
                               apply(params, largest, padded=True)[:sum(sizes)], atol=ATOL)
  assert len(used) == 2
  assert apply._cache_size() == 2


# ---------------------------------------------------------------------------- errors


def _with(graph, **fields):
  return graph._replace(**{k: np.asarray(v, np.int32) for k, v in fields.items()})


def test_bad_graphs_are_named_before_any_work():
  rng = np.random.default_rng(8)
  good = _graph(rng, 3, 2)
  with pytest.raises(ValueError, match=r"senders\[1\] = 5 points outside graph 0's nodes \[0, 3\)"):
    graphs.check(_with(good, senders=[0, 5]))
  two = graphs.batch([good, _graph(rng, 2, 1)])     # receivers[0] of graph 0 into graph 1
  with pytest.raises(ValueError, match=r"receivers\[0\] = 4 points outside graph 0's"):
    graphs.check(_with(two, receivers=[4, 0, 3]))
  with pytest.raises(ValueError, match=r"graphs\[1\]: senders\[0\] = -1"):
    graphs.batch([good, _with(good, senders=[-1, 0])])
  with pytest.raises(ValueError, match=r"n_node must sum to the number of rows of nodes \(3\), "
                                       r"got sum 4"):
    graphs.check(_with(good, n_node=[4]))
  with pytest.raises(ValueError, match=r"n_edge must sum"):
    graphs.check(_with(good, n_edge=[3]))
  with pytest.raises(ValueError, match=r"n_edge must have one entry per graph"):
    graphs.check(_with(good, n_edge=[1, 1]))
  with pytest.raises(TypeError, match=r"senders must be a 1-D integer array, got dtype float32"):
    graphs.check(good._replace(senders=np.zeros(2, np.float32)))
  with pytest.raises(ValueError, match=r"graphs\[1\].edges is None"):
    graphs.batch([good, good._replace(edges=None)])
  model = graphs.encode_process_decode(2, latent_size=4, num_steps=1)
  params = model.init(jax.random.PRNGKey(0), 3, 2)
  with pytest.raises(ValueError, match=r"receivers\[1\] = 7"):
    model.apply(params, _with(good, receivers=[0, 7]))
  with pytest.raises(ValueError, match=r"graph.edges must have shape \(2, 2\)"):
    model.apply(params, good._replace(edges=None))


def test_too_big_for_the_padding_budget():
  batched = graphs.batch(_three_graphs())     # 10 nodes, 17 edges, 3 graphs
  with pytest.raises(ValueError, match=r"n_node must be >= 11 \(the batch's 10 nodes and one "
                                       r"padding node\), got 10"):
    graphs.pad(batched, n_node=10, n_edge=17, n_graph=4)
  with pytest.raises(ValueError, match=r"n_edge must be >= 17"):
    graphs.pad(batched, n_node=11, n_edge=16, n_graph=4)
  with pytest.raises(ValueError, match=r"n_graph must be >= 4"):
    graphs.pad(batched, n_node=11, n_edge=17, n_graph=3)
  with pytest.raises(ValueError, match=r"buckets must hold one with n_node >= 11, n_edge >= 17 "
                                       r"and n_graph >= 4.*the largest is \(16, 16, 4\)"):
    graphs.pad_to_bucket(batched, graphs.bucket_sizes(16, 16, 4))


def test_bad_arguments():
  batched = graphs.batch(_three_graphs())
  with pytest.raises(ValueError, match=r"aggregate must be one of \('sum', 'mean', 'max'\)"):
    graphs.readout(batched, batched.nodes, "min")
  with pytest.raises(ValueError, match=r"h must have one row per node \(10, ...\)"):
    graphs.readout(batched, batched.nodes[:4])
  with pytest.raises(ValueError, match=r"node_size must be <= hidden_size \(2\)"):
    graphs.gated_graph_nn(2, 1).init(jax.random.PRNGKey(0), 3)
  ggnn = graphs.gated_graph_nn(4, 1, edge_types=2)
  params = ggnn.init(jax.random.PRNGKey(0), 3)
  with pytest.raises(ValueError, match=r"graph.edges must be edge types in \[0, 2\), got 2"):
    ggnn.apply(params, batched._replace(edges=np.full(17, 2, np.int32)))
  with pytest.raises(ValueError, match=r"x must have shape \(..., 3\)"):
    layer = graphs.mlp([4])
    layer.apply(layer.init(jax.random.PRNGKey(0), 3), jnp.zeros((2, 4)))
  with pytest.raises(ValueError, match=r"growth must be > 1"):
    graphs.bucket_sizes(8, 8, 2, growth=1.0)
  with pytest.raises(ValueError, match=r"hidden_size must be a positive integer"):
    graphs.mpnn_layer(0)
  with pytest.raises(TypeError, match=r"padded must be a Python bool.*static_argnames"):
    jax.jit(ggnn.apply)(params, batched._replace(edges=np.zeros(17, np.int32)), padded=True)
