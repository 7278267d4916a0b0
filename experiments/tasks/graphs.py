"""Node classification by message passing: Zachary's karate club and hop distances.

Two data sets (``config.data.dataset``):

  karate_club     one graph of 34 members; only the two leaders' factions are
                  given (``experiments.datasets.karate``), every other member's
                  faction is predicted from the friendships (Kipf & Welling
                  2017's demonstration). Node inputs: one-hot member ids.
  shortest_path   random connected graphs of 8-16 nodes, every node says its
                  hop distance to one marked node, capped
                  (``seqjax.data.graph_tasks.shortest_path``): R rounds of
                  message passing see R hops, so accuracy against rounds shows
                  how far information travels.

Model (``config.model``): node inputs -> a linear embedding to H -> R rounds
of message passing (``kind``: ``ggnn``, the gated graph network with a GRU
update and shared weights, or ``mpnn``, R unshared MLP-message / GRU-update
layers) -> a linear classifier per node. Loss: cross-entropy of the scored
nodes (the two leaders; every real node for distances).

Batching: each step's graphs are joined into one ``seqjax.graphs.GraphsTuple``
and padded to the smallest of a few bucket sizes, so the step compiles once
per bucket, not once per batch; ``report`` logs how many times the training
step was traced against the buckets seen, and the training throughput in
graphs per second. Every batch has a leading axis of one padded graph batch
per device, so the data-parallel loop shards whole graph batches.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments import datasets
from experiments.tasks import training
from seqjax import graphs
from seqjax.data import graph_tasks
from seqjax.pytree import count_params
from seqjax.train.loop import Task

DATASETS = ("karate_club", "shortest_path")
KINDS = ("ggnn", "mpnn")


def validate(config) -> None:
  training.validate(config)
  if config.data.dataset not in DATASETS:
    raise ValueError(f"config.data.dataset must be one of {DATASETS}, got {config.data.dataset!r}")
  if config.model.kind not in KINDS:
    raise ValueError(f"config.model.kind must be one of {KINDS}, got {config.model.kind!r}")
  training.positive_ints(config, "model.hidden_size", "model.rounds")
  if config.data.dataset == "shortest_path":
    training.positive_ints(config, "data.min_nodes", "data.max_nodes", "data.max_distance",
                           "data.test_size", "data.num_buckets")
    if not config.data.bucket_growth > 1:
      raise ValueError(f"config.data.bucket_growth must be > 1, got {config.data.bucket_growth}")
    if config.data.min_nodes > config.data.max_nodes:
      raise ValueError(f"config.data.min_nodes must be <= config.data.max_nodes = "
                       f"{config.data.max_nodes}, got {config.data.min_nodes}")
  devices = jax.local_device_count()
  if config.batch_size % devices:
    raise ValueError(f"config.batch_size must divide over the {devices} devices (one padded "
                     f"graph batch each), got {config.batch_size}")


class NodeClassifier(NamedTuple):
  """Embedding -> message passing -> per-node logits (see the module docstring).

  Attributes:
    init: ``key -> params``.
    apply: ``(params, graph) -> (N, C)`` logits of a padded ``GraphsTuple``.
    num_classes: C.
  """
  init: object
  apply: object
  num_classes: int


def build_model(config, node_size: int, num_classes: int) -> NodeClassifier:
  m = config.model
  embed = graphs.mlp([m.hidden_size])
  head = graphs.mlp([num_classes])
  if m.kind == "ggnn":
    cores = [graphs.gated_graph_nn(m.hidden_size, m.rounds)]
  else:
    cores = [graphs.mpnn_layer(m.hidden_size, update="gru") for _ in range(m.rounds)]

  def init(key):
    keys = jax.random.split(key, len(cores) + 2)
    return {"embed": embed.init(keys[0], node_size), "head": head.init(keys[1], m.hidden_size),
            "cores": [core.init(k, m.hidden_size) for core, k in zip(cores, keys[2:])]}

  def apply(params, graph):
    h = embed.apply(params["embed"], graph.nodes)
    for core, p in zip(cores, params["cores"]):
      h = core.apply(p, graph._replace(nodes=h), padded=True)
    return head.apply(params["head"], h)

  return NodeClassifier(init, apply, num_classes)


def _graph(task: graph_tasks.NodeTask) -> graphs.GraphsTuple:
  n, e = len(task.nodes), len(task.senders)
  return graphs.GraphsTuple(nodes=task.nodes, edges=None, senders=task.senders,
                            receivers=task.receivers, globals=None,
                            n_node=np.array([n], np.int32), n_edge=np.array([e], np.int32))


def _as_arrays(graph: graphs.GraphsTuple, targets: np.ndarray, scored: np.ndarray) -> dict:
  """One padded graph batch as the loop's dict (targets/scored padded like the nodes)."""
  n = graph.nodes.shape[0]
  pad = n - len(targets)
  return {"nodes": graph.nodes, "senders": graph.senders, "receivers": graph.receivers,
          "n_node": graph.n_node, "n_edge": graph.n_edge,
          "targets": np.pad(targets, (0, pad)).astype(np.int32),
          "scored": np.pad(scored, (0, pad)).astype(np.float32)}


def as_graph(batch: dict) -> graphs.GraphsTuple:
  """The ``GraphsTuple`` of one device's padded batch (the arrays ``_as_arrays`` made)."""
  return graphs.GraphsTuple(nodes=batch["nodes"], edges=None, senders=batch["senders"],
                            receivers=batch["receivers"], globals=None,
                            n_node=batch["n_node"], n_edge=batch["n_edge"])


class Data(NamedTuple):
  node_size: int
  num_classes: int
  train_batch: object      # step -> dict (leading axis: one graph batch per device)
  eval_batches: dict       # split -> () -> iterable of dicts
  graphs_per_batch: int
  buckets_seen: set


def _karate(config) -> Data:
  club = datasets.load("karate_club")
  n = club.num_nodes
  nodes = np.eye(n, dtype=np.float32)
  graph = graphs.GraphsTuple(nodes=nodes, edges=None, senders=club.senders,
                             receivers=club.receivers, globals=None,
                             n_node=np.array([n], np.int32),
                             n_edge=np.array([len(club.senders)], np.int32))
  graph = graphs.pad(graph, n_node=n + 1, n_edge=len(club.senders), n_graph=2)
  labelled = np.zeros(n, np.float32)
  labelled[list(club.labelled)] = 1
  shards = jax.local_device_count()
  train = training.stack_per_device([_as_arrays(graph, club.labels, labelled)] * shards)
  held_out = training.stack_per_device([_as_arrays(graph, club.labels, 1 - labelled)]
                                       * shards)
  return Data(n, len(datasets.module("karate_club").CLASSES), lambda step: train,
              {"validation": lambda: [held_out], "test": lambda: [held_out]}, 1, {(n + 1,)})


def _shortest_path(config) -> Data:
  data = config.data
  shards = jax.local_device_count()
  per_shard = config.batch_size // shards
  largest = graphs.Bucket(per_shard * data.max_nodes + 1,
                          per_shard * _max_edges(data.max_nodes, data.extra_edges),
                          per_shard + 1)
  buckets = graphs.bucket_sizes(*largest, num_buckets=data.num_buckets,
                                growth=data.bucket_growth)
  seen: set = set()

  def padded(shards_of_tasks):
    """One padded batch per shard, all padded to the bucket the largest needs (stackable)."""
    joined = [graphs.batch([_graph(t) for t in tasks]) for tasks in shards_of_tasks]
    # The ladder is in increasing size: the first bucket with room for every shard
    # (plus one padding node and graph each) is the smallest that holds them all.
    need = graphs.Bucket(max(int(g.n_node.sum()) for g in joined) + 1,
                         max(int(g.n_edge.sum()) for g in joined),
                         max(len(g.n_node) for g in joined) + 1)
    bucket = next((b for b in buckets if all(h <= b_ for h, b_ in zip(need, b))), None)
    if bucket is None:
      for graph in joined:   # raises pad_to_bucket's error, naming the budget
        graphs.pad_to_bucket(graph, buckets)
    arrays = []
    for tasks, graph in zip(shards_of_tasks, joined):
      graph = graphs.pad(graph, **bucket._asdict())
      targets = np.concatenate([t.targets for t in tasks])
      arrays.append(_as_arrays(graph, targets, np.ones(len(targets), np.float32)))
    return training.stack_per_device(arrays)

  def draw(seed, size):
    return graph_tasks.shortest_path(np.random.default_rng(seed), size,
                                     min_nodes=data.min_nodes, max_nodes=data.max_nodes,
                                     extra_edges=data.extra_edges, max_distance=data.max_distance)

  def train_batch(step):
    tasks = draw([config.seed, step], config.batch_size)
    batch = padded([tasks[i * per_shard:(i + 1) * per_shard] for i in range(shards)])
    seen.add(batch["nodes"].shape)   # the buckets the training step is compiled for
    return batch

  def held_out(split_seed):
    tasks = draw([config.seed, split_seed], data.test_size)
    chunks = [tasks[i:i + per_shard] for i in range(0, len(tasks), per_shard)]
    # Whole groups of one chunk per device (with several devices up to shards - 1
    # chunks at the end are left out).
    grouped = [padded(chunks[i:i + shards]) for i in range(0, len(chunks) - shards + 1, shards)]
    return lambda: grouped

  return Data(graph_tasks.SHORTEST_PATH_FEATURES, data.max_distance + 1, train_batch,
              {"validation": held_out(10**9 + 1), "test": held_out(10**9 + 2)},
              config.batch_size, seen)


def _max_edges(max_nodes: int, extra_edges: float) -> int:
  """Directed edges of the largest graph ``graph_tasks.shortest_path`` can draw."""
  tree = max_nodes - 1
  chords = int(round(extra_edges * max_nodes))
  return 2 * min(tree + chords, max_nodes * (max_nodes - 1) // 2)


def load(config) -> Data:
  return _karate(config) if config.data.dataset == "karate_club" else _shortest_path(config)


def build(config, workdir):
  del workdir
  data = load(config)
  model = build_model(config, data.node_size, data.num_classes)
  traces = {"train": 0}

  def loss_fn(params, batch, carry, rng, is_training):
    del rng
    if is_training:
      traces["train"] += 1   # runs at trace time only: counts compilations of the step
    logits = jax.vmap(lambda b: model.apply(params, as_graph(b)))(batch)
    loss, metrics = training.classification_loss(logits, batch["targets"], batch["scored"])
    return loss, (carry, metrics)

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=data.train_batch,
      eval_batches=data.eval_batches,
      summarize=training.summarize_classification, tokens_per_batch=data.graphs_per_batch,
      eval_batch_size=config.batch_size,
      progress_metrics=("loss", "accuracy"))
  return task, (model, data, traces)


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def accuracy_by_target(model, params, batches) -> dict[int, tuple[int, int]]:
  """``{class: (correct, count)}`` over the scored nodes of ``batches``."""
  apply = jax.jit(jax.vmap(lambda p, b: model.apply(p, as_graph(b)), (None, 0)))
  tally: dict[int, list[int]] = {}
  for batch in batches:
    predicted = np.asarray(apply(params, batch)).argmax(-1)
    scored = batch["scored"] > 0
    for target, hit in zip(batch["targets"][scored], (predicted == batch["targets"])[scored]):
      pair = tally.setdefault(int(target), [0, 0])
      pair[0] += int(hit)
      pair[1] += 1
  return {k: tuple(v) for k, v in sorted(tally.items())}


def throughput(model, params, data, steps: int = 20) -> float:
  """Graphs per second of the jitted forward and backward pass over training batches."""
  def loss(p, b):
    return jnp.sum(jax.vmap(lambda x: model.apply(p, as_graph(x)))(b))
  grad = jax.jit(jax.grad(loss))
  batches = [data.train_batch(10**6 + i) for i in range(steps)]
  for b in batches:   # compile every bucket first
    jax.block_until_ready(grad(params, b))
  start = time.perf_counter()
  for b in batches:
    jax.block_until_ready(grad(params, b))
  return steps * data.graphs_per_batch / (time.perf_counter() - start)


def report(config, final, params, extras, log=print) -> None:
  model, data, traces = extras
  log(f"final: {config.data.dataset}, {config.model.kind} with {config.model.rounds} rounds, "
      f"test accuracy {final['test/accuracy']:.4f} (validation "
      f"{final['validation/accuracy']:.4f}); {count_params(params)} parameters")
  by_target = accuracy_by_target(model, params, data.eval_batches["test"]())
  name = "faction" if config.data.dataset == "karate_club" else "distance"
  log(f"test accuracy by {name}: " + ", ".join(f"{k}: {c / n:.3f} ({n})"
                                              for k, (c, n) in by_target.items()))
  if config.data.dataset == "shortest_path":
    compiles, buckets = traces["train"], len(data.buckets_seen)
    log(f"compiles: the training step was traced {compiles} times in this process for "
        f"{buckets} padding buckets seen; training throughput "
        f"{throughput(model, params, data):.0f} graphs/s")


def baseline(config) -> tuple[str, float]:
  """The accuracy of always answering the commonest class (estimated on 1,000 graphs)."""
  if config.data.dataset == "karate_club":
    return "one faction for all", 17 / 32
  data = config.data
  tasks = graph_tasks.shortest_path(0, 1000, min_nodes=data.min_nodes, max_nodes=data.max_nodes,
                                    extra_edges=data.extra_edges, max_distance=data.max_distance)
  counts = np.bincount(np.concatenate([t.targets for t in tasks]))
  return "commonest distance", float(counts.max() / counts.sum())
