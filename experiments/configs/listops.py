r"""ListOps by a Tree-LSTM on the gold trees against a BiLSTM on the bracketed string.

Variant: ``<model>[,arithmetic][,quick]``: model

  tree_lstm  (the default) the binary Tree-LSTM (N-ary, N = 2) over the folded
             gold trees, Nangia & Bowman's form: ``[OP a_1 .. a_k ]`` read one
             argument at a time as the chain of partial applications
             ``[OP a_1 .. a_i ]`` (``seqjax.data.listops.to_tree(fold=True)``)
  child_sum  the Child-Sum Tree-LSTM over the nested gold trees (an operation's
             node sums its arguments' states)
  nary       the N-ary Tree-LSTM over the nested trees (a block per argument slot)
  bilstm     a bidirectional LSTM over the bracketed string

``arithmetic`` swaps ListOps for bracketed ``+ - *`` expressions modulo 10;
``quick`` is a ~1 minute smoke run.

Data: 100,000 training expressions of depth <= 6, up to 5 arguments per
operation and 100 tokens (Nangia & Bowman's generator settings), 2,000
validation and 2,000 test expressions (disjoint from training), and 300 test
expressions at each depth 1-8 (7 and 8 deeper than any in training). Models
of about the same size (~100K parameters): binary Tree-LSTM H = 88, Child-Sum
Tree-LSTM H = 128 and N-ary Tree-LSTM H = 47 (a block per argument slot)
over 64-wide token embeddings; BiLSTM H = 84 per direction. Adam 5e-3
(cosine decay), gradient clipping 5, batch 128, 15 minutes or 8,000 steps
(the cosine sized for what 15 minutes hold on this machine's 2 cores; on
faster hardware raise num_steps). The tree models are also trained on every
node's own value (``--config.data.node_loss=0`` turns that off).

  python -m experiments.train --config experiments/configs/listops.py:tree_lstm --workdir /tmp/listops_tree
  python -m experiments.train --config experiments/configs/listops.py:bilstm --workdir /tmp/listops_bilstm
"""

import ml_collections

from experiments.configs import common

MODELS = ("tree_lstm", "child_sum", "nary", "bilstm")
#: Each variant's model kind, width (~100K parameters each) and tree form.
KIND = {"tree_lstm": "nary", "child_sum": "child_sum", "nary": "nary", "bilstm": "bilstm"}
WIDTH = {"tree_lstm": 88, "child_sum": 128, "nary": 47, "bilstm": 84}
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
                     node_loss=1.0 if model != "bilstm" else 0.0,
                     fold=model == "tree_lstm")
  config.model = ml_collections.ConfigDict(dict(kind=KIND[model], hidden_size=WIDTH[model],
                                                embed_size=64))
  config.batch_size = 128
  config.num_steps = 8_000    # about what 15 minutes hold on this machine's 2 cores
  config.optimizer.learning_rate = 5e-3
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
