"""The ListOps experiment: config checks, tree batches and their labels, quick runs, the depth table."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from experiments.configs import listops as configs
from experiments.tasks import listops as task
from seqjax.data import listops


@pytest.mark.parametrize("field,value,match", [
    ("data.kind", "sorting", "config.data.kind must be one of"),
    ("model.kind", "gru", "config.model.kind must be one of"),
    ("data.max_depth", 0, "config.data.max_depth must be a positive integer"),
    ("data.node_loss", -1.0, "config.data.node_loss must be >= 0"),
    ("data.depth_test", (0,), "config.data.depth_test must hold depths >= 1"),
])
def test_bad_fields_are_named(field, value, match):
  config = configs.get_config("tree_lstm")
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    task.validate(config)


def _python_value(tokens):
  """A stack evaluator of the bracketed string, independent of seqjax.data.listops."""
  stack = []
  for token in tokens.split():
    if token.startswith("["):
      stack.append([token[1:]])
    elif token == "]":
      op, *args = stack.pop()
      value = {"MIN": min, "MAX": max, "SM": lambda a: sum(a) % 10,
               "MED": lambda a: int(np.median(a))}[op](args)
      if not stack:
        return value
      stack[-1].append(value)
    else:
      stack[-1].append(int(token))


@pytest.mark.parametrize("variant", ["tree_lstm,quick", "child_sum,quick"])
def test_tree_batches_label_roots_and_operations_with_their_values(variant):
  config = configs.get_config(variant)
  data = task.load(config)
  batch = data.train_batch(0)
  assert all(v.shape[0] == 1 for v in batch.values())   # one shard on one device
  b = {k: v[0] for k, v in batch.items()}
  train = task.draw(config.data, [config.seed, 0], config.data.train_size)
  order = task.training.epoch_batch_indices(config.data.train_size, config.batch_size, 0,
                                            config.seed)
  np.testing.assert_array_equal(b["values"], [_python_value(train.tokens[i]) for i in order])
  # The root of every tree carries its expression's value.
  np.testing.assert_array_equal(b["node_values"][b["roots"]], b["values"])
  operations = sum(train.tokens[i].count("[") for i in order)
  if config.data.fold:
    # Binary: every partial application [OP a_1 .. a_i ] (i >= 1) is scored, one per
    # argument; every digit and operation but the root is an argument.
    assert b["children"].shape[-1] == 2
    digits = sum(t.isdigit() for i in order for t in train.tokens[i].split())
    assert b["node_scored"].sum() == digits + operations - len(order)
  else:   # operations are scored, digits not
    assert b["node_scored"].sum() == operations
  # The budgets hold every batch of the first epochs: one shape, one compile.
  shapes = {tuple(data.train_batch(s)["children"].shape) for s in range(10)}
  assert len(shapes) == 1


def test_operator_accuracy_counts_nodes_whose_children_are_right():
  config = configs.get_config("child_sum,quick")
  data = task.load(config)
  batches = data.eval_batches["test"]()
  sm = listops.TOKEN_IDS["[SM"]

  def apply(params, batch):   # right everywhere but at SM nodes, which answer value + 1
    values = batch["node_values"] + (batch["inputs"] == sm).astype(batch["node_values"].dtype)
    return None, jax.nn.one_hot(values % 10, 10)

  result = task.operator_accuracy(task.Model(None, apply), None, batches)
  # A plain loop: nodes with a value whose scored children are all right.
  counts = {}
  for batch in batches:
    b = {k: v[0] for k, v in batch.items()}
    for n in range(len(b["inputs"])):
      if not (b["node_mask"][n] and b["node_scored"][n]):
        continue
      kids = [int(c) for c, m in zip(b["children"][n], b["child_mask"][n]) if m]
      if any(b["node_scored"][c] and b["inputs"][c] == sm for c in kids):
        continue   # a wrong child
      name = listops.VOCAB[b["inputs"][n]]
      counts[name] = counts.get(name, 0) + 1
  assert {k: r["nodes"] for k, r in result.items()} == counts
  assert result["[SM"]["accuracy"] == 0.0
  assert all(r["accuracy"] == 1.0 for k, r in result.items() if k != "[SM")


def test_string_batches_round_trip_the_tokens():
  config = configs.get_config("bilstm,quick")
  data = task.load(config)
  batch = {k: v[0] for k, v in data.train_batch(1).items()}
  first = " ".join(listops.VOCAB[i] for i in batch["tokens"][0][batch["mask"][0]])
  assert _python_value(first) == batch["values"][0]


@pytest.mark.integration
def test_quick_runs_and_the_depth_table(tmp_path):
  runs = {}
  for kind in ("tree_lstm", "child_sum", "nary", "bilstm"):
    config = configs.get_config(f"{kind},quick")
    runs[kind] = tmp_path / kind
    lines = []
    final = task.run(config, str(runs[kind]), log=lines.append)
    assert 0 <= final["test/accuracy"] <= 1
    assert any(line.startswith("test accuracy by depth: 1:") for line in lines)
  depth_table, operator_table = task.depth_figure(runs, tmp_path).split("\n\n")
  assert [row.split("|")[1].strip() for row in depth_table.splitlines()[2:]] == list(runs)
  assert [row.split("|")[1].strip() for row in operator_table.splitlines()[2:]] == [
      "tree_lstm", "child_sum", "nary"]
  assert operator_table.splitlines()[0] == "| model | [MAX | [MED | [MIN | [SM |"
  assert (tmp_path / "listops_depth.png").stat().st_size > 10_000
