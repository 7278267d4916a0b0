r"""ListOps by a Tree-LSTM on the gold trees against a BiLSTM on the bracketed string.

Variant: ``<model>[,arithmetic][,quick]``: model tree_lstm (Child-Sum, the
default), nary (N-ary Tree-LSTM) or bilstm; ``arithmetic`` swaps ListOps for
bracketed ``+ - *`` expressions modulo 10; ``quick`` is a ~1 minute smoke run.

Data: 100,000 training expressions of depth <= 6, up to 5 arguments per
operation and 100 tokens (Nangia & Bowman's generator settings), 2,000
validation and 2,000 test expressions (disjoint from training), and 300 test
expressions at each depth 1-8 (7 and 8 deeper than any in training). Models
of about the same size (~100K parameters): Child-Sum Tree-LSTM H = 128 and
N-ary Tree-LSTM H = 47 (a block per child position) over 64-wide token embeddings;
BiLSTM H = 84 per direction. Adam 2e-3 (cosine decay), gradient clipping 5,
batch 128, 15 minutes or 6,000 steps (the cosine sized for what 15 minutes
hold on one core of this machine; on faster hardware raise num_steps). The tree models are also trained on
every operation node's own value (``--config.data.node_loss=0`` turns that off).

  python -m experiments.train --config experiments/configs/listops.py:tree_lstm --workdir /tmp/listops_tree
  python -m experiments.train --config experiments/configs/listops.py:bilstm --workdir /tmp/listops_bilstm
"""

import ml_collections

from experiments.configs import common

MODELS = ("tree_lstm", "nary", "bilstm")
WIDTH = {"tree_lstm": 128, "nary": 47, "bilstm": 84}
#: Every variant (checked by the config tests).
VARIANTS = tuple(m + a + q for m in MODELS for a in ("", ",arithmetic") for q in ("", ",quick"))


def get_config(variant: str = "tree_lstm") -> ml_collections.ConfigDict:
  parts = [p for p in variant.split(",") if p and p != "default"]
  models = [p for p in parts if p in MODELS]
  if len(models) > 1 or any(p not in MODELS + ("arithmetic", "quick") for p in parts):
    raise ValueError(f"variant must be <model>[,arithmetic][,quick] with model in {MODELS}, "
                     f"got {variant!r}")
  model = models[0] if models else "tree_lstm"
  config = common.loop_config("listops")
  config.data = dict(kind="arithmetic" if "arithmetic" in parts else "listops",
                     train_size=100_000, test_size=2000, max_depth=6, max_args=5,
                     max_length=100, depth_test=tuple(range(1, 9)), test_per_depth=300,
                     node_loss=1.0 if model != "bilstm" else 0.0)
  config.model = ml_collections.ConfigDict(dict(kind=model, hidden_size=WIDTH[model],
                                                embed_size=64))
  config.batch_size = 128
  config.num_steps = 6_000    # what 15 minutes hold on one core here: the cosine decays to 0 within them
  config.optimizer.learning_rate = 2e-3
  config.optimizer.schedule = "cosine"
  config.optimizer.clip_global_norm = 5.0
  config.log_every = 100
  config.eval_every = 1000
  config.checkpoint_every = 1000
  config.time_limit_minutes = 15.0
  if "quick" in parts:
    config.data.update(train_size=512, test_size=64, max_depth=3, max_length=40,
                       depth_test=(1, 2, 3), test_per_depth=32)
    config.model.update(hidden_size=16, embed_size=8)
    config.batch_size = 32
    common.smoke_run(config, 30)
  return config
