r"""Polyphonic music on Bach chorales (a stand-in for JSB Chorales): ~300K-parameter models.

The 407 four-voice Bach chorales of the music21 corpus as 88-key piano rolls,
one frame per quarter note (``experiments/datasets/music.py``; split by piece, 243 / 80 /
81). This is NOT the JSB Chorales dataset of Boulanger-Lewandowski et al.
(2012), only the same kind of data from the same composer: figures are
comparable in kind, not in value, with the published JSB numbers. The model
reads frames ``x_1..x_{T-1}`` and predicts each next frame with 88
independent Bernoulli outputs; metric: NLL in nats per frame (summed over
keys), pooled over all test frames. Baseline: each key played with its
training-set frequency (printed at the end).

Source of the settings: Bai, Kolter & Koltun (2018), Table 1 (size ~300K)
and appendix Tables 2-3: TCN for JSB has kernel 3, 2 levels, 150 channels
(152 here: 150 give 270K, just outside 10% of the budget), dropout 0.5,
clipping 0.4; the LSTM 2 layers, dropout 0.2, clipping 1 (its
200 units would give 570K parameters, so 140 units meet the budget). GRU
(2 x 163) and RNN (2 x 288) share the LSTM's settings at the same budget.
Adam 1e-3 as in the reference script. The reference trains one piece per step
for 100 epochs; here batches of 8 pieces padded with a mask (~3k steps).

Variants: ``music.py:<model>[,quick]`` with model in tcn (default), lstm, gru,
rnn; ``quick`` is a short smoke run.

  python -m experiments.train --config experiments/configs/music.py:tcn --workdir /tmp/music
"""

from experiments.configs import common


def get_config(variant: str = "tcn"):
  model, quick = common.parse_variant(variant)
  config = common.loop_config("music")
  config.data = dict(
      bucket=32,            # pad lengths up to a multiple of this (fewer compiled shapes)
      eval_batch_size=16,
      max_eval_pieces=0,    # 0: every validation/test piece; >0: the first N (smoke runs)
      cache_dir="",         # "" -> $SEQJAX_CACHE or ~/.cache/seqjax
  )
  config.batch_size = 8
  config.num_steps = 3_000
  config.eval_every = 250
  # As the reference: the test figure is that of the best validation NLL.
  config.select_best = "validation/nll:min"
  config.optimizer.learning_rate = 1e-3
  if model == "tcn":
    config.model = common.model_config("tcn", hidden_size=152, levels=2,
                                                 kernel_size=3, dropout=0.5)
    config.optimizer.clip_global_norm = 0.4
  else:
    width = {"lstm": 140, "gru": 163, "rnn": 288}[model]
    config.model = common.model_config(model, hidden_size=width, num_layers=2,
                                                 dropout=0.2, forget_bias=1.0)
    config.optimizer.clip_global_norm = 1.0
  if quick:
    config.data.max_eval_pieces = 32
    common.smoke_run(config, 150)
  return config
