"""ListOps (and arithmetic) by a Tree-LSTM on the gold trees against a BiLSTM on the string.

Data (``seqjax.data.listops``): ``[MAX 2 9 [MIN 4 7 ] 0 ]`` = 9, nested list
operators over digits (Nangia & Bowman 2018), or fully bracketed ``+ - *``
modulo 10 (``config.data.kind``); the answer is a digit, a 10-way
classification. A fixed training set is drawn once (seeded); validation and
test sets are drawn from the same distribution, disjoint from it.

Trees (``config.data.fold``): nested, a node per operation (input: its
operator token) with its arguments as children and a leaf per digit; or
folded (``listops.to_tree(..., fold=True)``), Nangia & Bowman's binary
left-branching form, where ``[OP a_1 .. a_k ]`` is the chain of its partial
applications ``[OP a_1 .. a_i ]``, each a node over the previous one and the
next argument.

Models (``config.model.kind``); ``seqjax.trees.encode`` runs a whole batch of
trees as one ``lax.scan`` over packed steps; root state -> softmax:

  child_sum  Child-Sum Tree-LSTM (Tai et al. 2015): the children's states summed.
  nary       the N-ary Tree-LSTM (a weight block per child slot); on folded
             trees N = 2, Tai et al.'s binary Tree-LSTM, the one Nangia &
             Bowman train on ListOps' gold trees.
  bilstm     a bidirectional LSTM over the bracketed token string (padding
             masked), each direction's final state -> softmax.

Loss: cross-entropy of the root's value; with ``config.data.node_loss`` > 0
the tree models also predict the value of every node that has one (every
operation, and folded, every partial application with an argument: the
supervision Tai et al. give every node of the sentiment treebank), weighted
by ``node_loss``. ``report`` tests accuracy per expression depth (one set of
``config.data.test_per_depth`` expressions per depth in ``depth_test``) and,
for tree models, each operator's accuracy at nodes whose children are all
right (``operator_accuracy``), and writes ``depth.json``.

Batching: the string model pads to ``max_length`` tokens; the tree models use
budgets (trees, nodes, steps, width) measured on the training set's first
epochs, so the step compiles once (a rare batch over budget is padded to its
own geometric bucket instead). Every batch carries a leading axis of one
padded tree batch per device, so the data-parallel loop shards whole batches.
"""

from __future__ import annotations

import json
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments.tasks import training
from seqjax import classifiers, trees
from seqjax.cells import lstm
from seqjax.data import listops
from seqjax.pytree import count_params
from seqjax.train.loop import Task

KINDS = ("child_sum", "nary", "bilstm")
DATA_KINDS = ("listops", "arithmetic")
NUM_CLASSES = 10
_TREE_FIELDS = ("inputs", "children", "child_mask", "node_mask", "level", "tree_ids", "schedule",
                "roots", "tree_mask", "depth")


def validate(config) -> None:
  training.validate(config)
  data, model = config.data, config.model
  if data.kind not in DATA_KINDS:
    raise ValueError(f"config.data.kind must be one of {DATA_KINDS}, got {data.kind!r}")
  if model.kind not in KINDS:
    raise ValueError(f"config.model.kind must be one of {KINDS}, got {model.kind!r}")
  training.positive_ints(config, "data.train_size", "data.test_size", "data.max_depth",
                         "data.max_length", "data.test_per_depth", "model.hidden_size",
                         "model.embed_size")
  if not data.node_loss >= 0:
    raise ValueError(f"config.data.node_loss must be >= 0, got {data.node_loss}")
  for d in data.depth_test:
    if not isinstance(d, int) or d < 1:
      raise ValueError(f"config.data.depth_test must hold depths >= 1, got {d!r}")
  devices = jax.local_device_count()
  if config.batch_size % devices:
    raise ValueError(f"config.batch_size must divide over the {devices} devices, got "
                     f"{config.batch_size}")


def draw(data, seed, n: int, *, depth=None, exclude=()) -> listops.Expressions:
  """``n`` expressions of ``data.kind`` (seeded), optionally of a given depth."""
  rng = np.random.default_rng(seed)
  if data.kind == "listops":
    drawn = listops.generate(rng, n, max_depth=max(data.max_depth, depth or 0),
                             max_args=data.max_args, max_length=data.max_length, depth=depth,
                             unique=True, exclude=exclude)
  else:
    drawn = listops.generate_arithmetic(rng, n, max_depth=max(data.max_depth, depth or 0),
                                        max_length=data.max_length, depth=depth, unique=True,
                                        exclude=exclude)
  if data.fold:
    drawn = drawn._replace(trees=tuple(listops.to_tree(e, 2, fold=True)
                                       for e in drawn.expressions))
  return drawn


class Model(NamedTuple):
  """``init(key) -> params``; ``apply(params, batch) -> (root logits (B, 10), node logits)``."""
  init: object
  apply: object


def _arity(data) -> int:
  return 2 if data.fold or data.kind == "arithmetic" else data.max_args


def build_model(config) -> Model:
  data, m = config.data, config.model
  vocab = len(listops.VOCAB)
  if m.kind == "bilstm":
    net = classifiers.recurrent_classifier(vocab, NUM_CLASSES, lstm(m.hidden_size),
                                           embed_size=m.embed_size, bidirectional=True,
                                           readout="last")

    def apply(params, batch):
      _, logits = net.apply(params, batch["tokens"], mask=batch["mask"])
      return logits, None

    return Model(net.init, apply)

  cell = (trees.child_sum_tree_lstm(m.hidden_size) if m.kind == "child_sum"
          else trees.nary_tree_lstm(m.hidden_size, _arity(data)))

  def init(key):
    k_embed, k_cell, k_head = jax.random.split(key, 3)
    return {"embed": jax.random.normal(k_embed, (vocab, m.embed_size)) * m.embed_size**-0.5,
            "cell": cell.init(k_cell, m.embed_size),
            "head": {"w": jax.random.normal(k_head, (m.hidden_size, NUM_CLASSES))
                          * m.hidden_size**-0.5,
                     "b": jnp.zeros((NUM_CLASSES,))}}

  def apply(params, batch):
    def one(shard):
      tree_batch = trees.TreeBatch(**{f: shard[f] for f in _TREE_FIELDS})
      node_h, root_h = trees.encode(cell, params["cell"], tree_batch, embed=params["embed"])
      head = params["head"]
      return root_h @ head["w"] + head["b"], node_h @ head["w"] + head["b"]
    return jax.vmap(one)(batch)

  return Model(init, apply)


class Data(NamedTuple):
  train_batch: object
  eval_batches: dict
  by_depth: dict          # depth -> list of batches
  tokens_per_batch: int


def _string_batch(expressions: listops.Expressions, index, length: int) -> dict:
  ids, mask = listops.to_ids([expressions.tokens[i] for i in index], length)
  return {"tokens": ids, "mask": mask,
          "values": np.asarray(expressions.values)[index].astype(np.int32)}


def _tree_batch(expressions, index, budgets: dict, arity: int, fold: bool) -> dict:
  chosen = [expressions.trees[i] for i in index]
  try:
    batch = trees.batch_trees(chosen, max_children=arity, **budgets)
  except ValueError:   # over budget: its own geometric bucket (one more compile)
    batch = trees.batch_trees(chosen, max_children=arity, num_trees=budgets["num_trees"])
  arrays = {f: np.asarray(getattr(batch, f)) for f in _TREE_FIELDS}
  n = arrays["inputs"].shape[0]
  values = np.zeros(n, np.int32)
  scored = np.zeros(n, np.float32)
  offset = 0
  for i, tree in zip(index, chosen):
    size = len(tree.inputs)
    own = listops.node_values(expressions.expressions[i], fold=fold)
    values[offset:offset + size] = np.maximum(own, 0)
    # Operations (and partial ones) with a value; digits are their own input.
    scored[offset:offset + size] = (np.asarray(tree.children).max(-1) >= 0) & (own >= 0)
    offset += size
  arrays.update(node_values=values, node_scored=scored,
                values=np.pad(np.asarray(expressions.values)[index],
                              (0, arrays["roots"].shape[0] - len(index))).astype(np.int32),
                weight=np.pad(np.ones(len(index), np.float32),
                              (0, arrays["roots"].shape[0] - len(index))))
  return arrays


def _budgets(expressions, config, shards: int) -> dict:
  """Tree-batch budgets that hold every training batch of the first two epochs (+10%)."""
  per_shard = config.batch_size // shards
  n = len(expressions.values)
  need = {"max_nodes": 0, "max_steps": 0, "max_width": 0}
  for step in range(2 * (n // config.batch_size)):
    order = training.epoch_batch_indices(n, config.batch_size, step, config.seed)
    for start in range(0, config.batch_size, per_shard):
      chosen = [expressions.trees[i] for i in order[start:start + per_shard]]
      batch = trees.batch_trees(chosen, max_children=_arity(config.data), buckets="exact")
      need["max_nodes"] = max(need["max_nodes"], batch.inputs.shape[0])
      need["max_steps"] = max(need["max_steps"], batch.schedule.shape[0])
      need["max_width"] = max(need["max_width"], batch.schedule.shape[1])
  budgets = {k: int(np.ceil(v * 1.1)) for k, v in need.items()}
  budgets["num_trees"] = per_shard
  return budgets


def load(config) -> Data:
  data = config.data
  shards = jax.local_device_count()
  per_shard = config.batch_size // shards
  train = draw(data, [config.seed, 0], data.train_size)
  held = {"validation": draw(data, [config.seed, 1], data.test_size, exclude=set(train.tokens)),
          "test": draw(data, [config.seed, 2], data.test_size, exclude=set(train.tokens))}
  depth_sets = {d: draw(data, [config.seed, 3, d], data.test_per_depth, depth=d,
                        exclude=set(train.tokens)) for d in data.depth_test}
  tree_model = config.model.kind != "bilstm"
  budgets = _budgets(train, config, shards) if tree_model else None
  length = max(data.max_length, *(max(e.lengths) for e in depth_sets.values()))

  def make(expressions, index):
    if tree_model:
      return _tree_batch(expressions, index, budgets, _arity(data), data.fold)
    batch = _string_batch(expressions, index, length)
    batch["weight"] = np.ones(len(index), np.float32)
    return batch

  def fixed(expressions):
    n = len(expressions.values)
    batches = []
    for start in range(0, n, config.batch_size):
      index = np.arange(start, min(start + config.batch_size, n))
      index = np.pad(index, (0, config.batch_size - len(index)), mode="edge")
      parts = [make(expressions, index[i * per_shard:(i + 1) * per_shard]) for i in range(shards)]
      batch = training.stack_per_device(parts)
      real = np.arange(start, start + config.batch_size) < n   # the last batch repeats a row
      batch["weight"] = batch["weight"] * real.reshape(shards, per_shard)
      batches.append(batch)
    return batches

  def train_batch(step):
    order = training.epoch_batch_indices(len(train.values), config.batch_size, step, config.seed)
    return training.stack_per_device([make(train, order[i * per_shard:(i + 1) * per_shard])
                                      for i in range(shards)])

  evaluation = {split: fixed(e) for split, e in held.items()}
  by_depth = {d: fixed(e) for d, e in depth_sets.items()}
  return Data(train_batch, {k: (lambda v=v: v) for k, v in evaluation.items()}, by_depth,
              config.batch_size)


def build(config, workdir):
  data = load(config)
  model = build_model(config)
  node_loss = config.data.node_loss

  def loss_fn(params, batch, carry, rng, is_training):
    del rng, is_training
    logits, node_logits = model.apply(params, batch)
    loss, metrics = training.classification_loss(logits, batch["values"], batch["weight"])
    if node_loss and node_logits is not None:
      node_mean, _ = training.classification_loss(node_logits, batch["node_values"],
                                                  batch["node_scored"])
      loss = loss + node_loss * node_mean
    return loss, (carry, metrics)

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=data.train_batch,
      eval_batches=data.eval_batches,
      summarize=training.summarize_classification, tokens_per_batch=data.tokens_per_batch,
      eval_batch_size=config.batch_size,
      progress_metrics=("loss", "accuracy"))
  return task, (model, data, workdir)


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def accuracy_by_depth(model: Model, params, by_depth: dict) -> dict[int, float]:
  """``{depth: accuracy}`` over each depth's batches."""
  apply = jax.jit(lambda p, b: model.apply(p, b)[0])
  result = {}
  for d, batches in by_depth.items():
    hits = total = 0.0
    for batch in batches:
      predicted = np.asarray(apply(params, batch)).argmax(-1)
      hits += float(((predicted == batch["values"]) * batch["weight"]).sum())
      total += float(batch["weight"].sum())
    result[d] = hits / total
  return result


def operator_accuracy(model: Model, params, batches) -> dict[str, dict]:
  """Each operator's accuracy at the nodes whose children the model gets right.

  A node is counted when it is scored (it has a value) and every scored child
  of it is predicted right (digits always are: they are their own input), so
  the figure isolates the composition itself from errors passed up from below.

  Returns:
    ``{operator token: {"accuracy": float, "nodes": int}}``.
  """
  apply = jax.jit(lambda p, b: model.apply(p, b)[1])
  hits, counts = {}, {}
  for batch in batches:
    predicted = np.asarray(apply(params, batch)).argmax(-1)
    for s in range(predicted.shape[0]):
      values, scored = batch["node_values"][s], batch["node_scored"][s] > 0
      right = predicted[s] == values
      children, child_mask = batch["children"][s], batch["child_mask"][s]
      index = np.minimum(children, len(right) - 1)   # the dummy slot N is masked anyway
      child_right = right[index] | ~scored[index] | ~child_mask
      counted = scored & batch["node_mask"][s] & child_right.all(-1)
      for token in np.unique(batch["inputs"][s][counted]):
        at = counted & (batch["inputs"][s] == token)
        name = listops.VOCAB[token]
        hits[name] = hits.get(name, 0) + int(right[at].sum())
        counts[name] = counts.get(name, 0) + int(at.sum())
  return {name: {"accuracy": hits[name] / counts[name], "nodes": counts[name]}
          for name in sorted(counts)}


def report(config, final, params, extras, log=print) -> None:
  model, data, workdir = extras
  log(f"final: {config.data.kind}, {config.model.kind}: test accuracy "
      f"{final['test/accuracy']:.4f} (validation {final['validation/accuracy']:.4f}); "
      f"{count_params(params)} parameters")
  by_depth = accuracy_by_depth(model, params, data.by_depth)
  log("test accuracy by depth: " + ", ".join(f"{d}: {a:.3f}" for d, a in by_depth.items()))
  operators = {}
  if config.model.kind != "bilstm":
    operators = operator_accuracy(model, params, data.eval_batches["test"]())
    log("test accuracy of each operator where its children are right: " + ", ".join(
        f"{name} {r['accuracy']:.3f} ({r['nodes']} nodes)" for name, r in operators.items()))
  if workdir:
    (pathlib.Path(workdir) / "depth.json").write_text(json.dumps(
        {"model": config.model.kind, "fold": config.data.fold, "accuracy_by_depth": by_depth,
         "operator_accuracy": operators, "test_accuracy": final["test/accuracy"],
         "parameters": count_params(params)}))


def depth_figure(runs: dict, out: pathlib.Path) -> str:
  """Accuracy by depth of finished runs (``depth.json``): tables and ``listops_depth.png``.

  Returns markdown: a row per run (parameters, test accuracy, accuracy at each
  depth) and, for the tree models, a row per run of each operator's accuracy
  where its children are right (``operator_accuracy``).
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  results = {}
  for name, workdir in runs.items():
    path = pathlib.Path(workdir) / "depth.json"
    if not path.exists():
      raise FileNotFoundError(f"{path} not found: has the listops run in {workdir} finished?")
    results[name] = json.loads(path.read_text())
  depths = sorted({int(d) for r in results.values() for d in r["accuracy_by_depth"]})
  lines = ["| model | parameters | test | " + " | ".join(f"depth {d}" for d in depths) + " |",
           "|" + "---|" * (len(depths) + 3)]
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  for name, r in results.items():
    acc = {int(d): a for d, a in r["accuracy_by_depth"].items()}
    lines.append(f"| {name} | {r['parameters']:,} | {r['test_accuracy']:.3f} | "
                 + " | ".join(f"{acc[d]:.3f}" if d in acc else "" for d in depths) + " |")
    ax.plot(sorted(acc), [acc[d] for d in sorted(acc)], marker="o", label=name)
  ax.set(xlabel="expression depth", ylabel="test accuracy", ylim=(0, 1.02),
         title="ListOps accuracy by depth")
  ax.axhline(0.1, color="gray", lw=0.8, ls=":")
  ax.legend()
  fig.tight_layout()
  fig.savefig(out / "listops_depth.png", dpi=120)
  plt.close(fig)
  operators = sorted({o for r in results.values() for o in r.get("operator_accuracy", {})})
  if operators:   # tree models: each operator where its children are right
    lines += ["", "| model | " + " | ".join(operators) + " |", "|" + "---|" * (len(operators) + 1)]
    for name, r in results.items():
      acc = r.get("operator_accuracy", {})
      if acc:
        lines.append(f"| {name} | " + " | ".join(
            f"{acc[o]['accuracy']:.3f}" if o in acc else "" for o in operators) + " |")
  return "\n".join(lines)


def baseline(config) -> tuple[str, float]:
  """Answering the commonest value of 1,000 drawn expressions."""
  values = draw(config.data, [config.seed, 5], 1000).values
  return "commonest value", float(np.bincount(values).max() / len(values))
