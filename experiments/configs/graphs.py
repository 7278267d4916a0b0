r"""Message passing on graphs: Zachary's karate club and hop distances to a marked node.

Variant: ``<dataset>,<model>[,quick]``, parts in any order, defaults
``shortest_path,ggnn``:

  dataset  karate_club (34 members, the two leaders labelled, the other 32
           predicted), shortest_path (random connected graphs of 8-16 nodes;
           every node's hop distance to one marked node, classes 0..6 with 6
           meaning "6 or more")
  model    ggnn (gated graph network, Li et al. 2016: a GRU update with
           weights shared over the rounds), mpnn (one MLP-message /
           GRU-update layer per round, unshared)
  quick    a ~1 minute smoke run

Both use H = 32 and, by default, 6 rounds of message passing
(``--config.model.rounds`` changes it: the rounds sweep of docs/results.md).
Adam 3e-3; distances: batches of 32 graphs padded to the smallest of 6 bucket
sizes 8% apart (a batch of 32 holds 256-512 nodes, most within 10% of 384),
up to 3,000 steps or 8 minutes; karate: 200 full-graph steps.

  python -m experiments.train --config experiments/configs/graphs.py:karate_club --workdir /tmp/karate
  python -m experiments.train --config experiments/configs/graphs.py:shortest_path \
      --config.model.rounds=3 --workdir /tmp/sp_r3
"""

import ml_collections

from experiments.configs import common

DATASETS = ("karate_club", "shortest_path")
MODELS = ("ggnn", "mpnn")
#: Every variant (checked by the config tests).
VARIANTS = tuple(f"{d},{m}{q}" for d in DATASETS for m in MODELS for q in ("", ",quick"))


def _parse(variant: str) -> tuple[str, str, bool]:
  parts = [p for p in variant.split(",") if p and p != "default"]
  found = [p for p in parts if p in DATASETS]
  models = [p for p in parts if p in MODELS]
  unknown = [p for p in parts if p not in DATASETS + MODELS + ("quick",)]
  if unknown or len(found) > 1 or len(models) > 1:
    raise ValueError(f"variant must be <dataset>,<model>[,quick] with dataset in {DATASETS} and "
                     f"model in {MODELS}, got {variant!r}")
  return (found[0] if found else "shortest_path"), (models[0] if models else "ggnn"), "quick" in parts


def get_config(variant: str = "shortest_path,ggnn") -> ml_collections.ConfigDict:
  dataset, model, quick = _parse(variant)
  config = common.loop_config("graphs")
  config.data = dict(dataset=dataset, min_nodes=8, max_nodes=16, extra_edges=0.25,
                     max_distance=6, test_size=1000, num_buckets=6,
                     bucket_growth=1.08)
  config.model = ml_collections.ConfigDict(dict(kind=model, hidden_size=32, rounds=6))
  config.optimizer.learning_rate = 3e-3
  config.optimizer.clip_global_norm = 1.0
  if dataset == "karate_club":
    config.batch_size = 1
    config.num_steps = 200
    config.log_every = 20
    config.eval_every = 50
    config.checkpoint_every = 200
  else:
    config.batch_size = 32
    config.num_steps = 3000
    config.log_every = 100
    config.eval_every = 500
    config.checkpoint_every = 500
    config.time_limit_minutes = 8.0
  if quick:
    config.data.update(max_nodes=10, test_size=64)
    config.model.update(hidden_size=8, rounds=2)
    common.smoke_run(config, 30 if dataset == "shortest_path" else 20)
  return config
