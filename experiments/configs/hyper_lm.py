r"""HyperLSTM against LSTM as character-level language models on Shakespeare, equal size and time.

Ha, Dai & Le (2016) report 1.265 bpc for a HyperLSTM against 1.312 for an LSTM
on Penn Treebank characters (1000 units each). Here: the `char_lm` task on
Shakespeare's plays (the packaged stand-in for PTB), one layer, embedding 64,
truncated BPTT over chunks of 100, batch 32, Adam 2e-3 (constant after a
100-step warm-up, so a run cut by its time limit is not mid-schedule),
clipping 1; both models stop after 25 minutes of training on the same
machine.

Variants: ``lstm`` (256 units, 350K parameters with embedding and softmax),
``hyper_lstm`` (210 main units, a 64-unit hyper-LSTM, embeddings of 4: 349K),
each with ``,quick`` for a smoke run.

  python -m experiments.train --config experiments/configs/hyper_lm.py:lstm --workdir /tmp/hyper_lm/lstm
  python -m experiments.train --config experiments/configs/hyper_lm.py:hyper_lstm \
      --workdir /tmp/hyper_lm/hyper_lstm
"""

import ml_collections

from experiments.configs import char_lm, common

VARIANTS = ("lstm", "hyper_lstm", "lstm,quick", "hyper_lstm,quick")


def get_config(variant: str = "hyper_lstm") -> ml_collections.ConfigDict:
  common.check_variant("hyper_lm", variant, VARIANTS)
  model, _, quick = variant.partition(",")
  config = char_lm.get_config("quick" if quick else "default")
  config.num_steps = 50_000
  config.time_limit_minutes = 25.0
  config.eval_every = 500
  config.optimizer.learning_rate = 2e-3
  config.optimizer.schedule = "constant"   # after the warm-up below
  config.optimizer.warmup_steps = 100
  config.optimizer.clip_global_norm = 1.0
  config.model.cell = model
  if model == "lstm":
    config.model.hidden_size = 256
  else:
    config.model.hidden_size = 210
    config.model.cell_options = dict(hyper_size=64, embed_size=4, layer_norm=False)
  if quick:
    config.model.hidden_size = 32
    if model == "hyper_lstm":
      config.model.cell_options.hyper_size = 8
    config.optimizer.warmup_steps = 10
    common.smoke_run(config, 40)
  return config
