"""The graph experiment: config checks, batching over buckets, quick runs of both data sets."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.configs import graphs as configs
from experiments.tasks import graphs as task


@pytest.mark.parametrize("field,value,match", [
    ("data.dataset", "cora", "config.data.dataset must be one of"),
    ("model.kind", "gcn", "config.model.kind must be one of"),
    ("model.rounds", 0, "config.model.rounds must be a positive integer"),
    ("data.min_nodes", 20, "config.data.min_nodes must be <= config.data.max_nodes = 16"),
    ("data.bucket_growth", 1.0, "config.data.bucket_growth must be > 1"),
])
def test_bad_fields_are_named(field, value, match):
  config = configs.get_config("shortest_path,ggnn")
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    task.validate(config)


def test_batches_hold_every_graph_once_padded_to_a_bucket():
  config = configs.get_config("shortest_path,mpnn,quick")
  data = task.load(config)
  batch = data.train_batch(3)
  (shards, nodes), = {batch["nodes"].shape[:2]}
  real = batch["n_node"][:, :-1]       # the last graph of each shard is padding
  assert real.shape == (shards, config.batch_size // shards)
  assert batch["scored"].sum() == real.sum()
  assert (batch["targets"][batch["scored"] == 0] == 0).all()
  assert nodes > real.sum() and (real >= config.data.min_nodes).all()
  # The same step draws the same batch (a resumed run sees the same data).
  np.testing.assert_array_equal(data.train_batch(3)["senders"], batch["senders"])
  assert data.buckets_seen == {batch["nodes"].shape}


def test_karate_scores_only_the_leaders_in_training_and_the_rest_in_evaluation():
  data = task.load(configs.get_config("karate_club,ggnn,quick"))
  train, (held_out,) = data.train_batch(0), list(data.eval_batches["test"]())
  assert np.flatnonzero(train["scored"][0]).tolist() == [0, 33]
  assert held_out["scored"][0].sum() == 32 and held_out["scored"][0][[0, 33]].sum() == 0


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["karate_club,ggnn,quick", "shortest_path,mpnn,quick"])
def test_quick_runs_report_accuracy(variant, tmp_path):
  config = configs.get_config(variant)
  lines = []
  final = task.run(config, str(tmp_path), log=lines.append)
  assert 0 <= final["test/accuracy"] <= 1
  assert any(line.startswith("test accuracy by") for line in lines)


@pytest.mark.integration
def test_the_training_step_compiles_once_per_bucket(tmp_path):
  config = configs.get_config("shortest_path,ggnn,quick")
  config.data.update(max_nodes=16, bucket_growth=1.04, num_buckets=10)
  config.num_steps = 40
  lines = []
  task.run(config, str(tmp_path), log=lines.append)
  (line,) = [l for l in lines if l.startswith("compiles:")]
  words = line.split()
  traced, buckets = int(words[words.index("traced") + 1]), int(words[words.index("for") + 1])
  assert traced == buckets >= 2
