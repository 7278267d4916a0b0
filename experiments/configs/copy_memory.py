r"""Copy memory (T = 1000 blanks by default): TCN, LSTM, GRU or vanilla RNN of ~16K parameters.

Ten symbols from 1..8, T-1 blanks, the delimiter 9 (eleven times), and the
model must output the ten symbols over the last ten steps (blanks before);
cross-entropy per step over all T + 20 steps. Remembering nothing costs
10 ln 8 / (T + 20) ~ 0.0204 nats per step at T = 1000 (the memoryless
baseline, where the paper's LSTM, GRU and RNN end up).

Source of the settings: Bai, Kolter & Koltun (2018), Table 1 (size ~16K) and
appendix Tables 2-3: the TCN has kernel 8 and 8 levels (T=500: 6/9,
T=2000: 8/9), dropout 0.05, gradient clipping 1.0, RMSprop 5e-4; the LSTM
1 layer of 50 units, dropout 0.05, clipping 1. Widths here meet the ~16K budget
of Table 1 (within 10%): TCN 11 channels (the paper's 10 give 12.5K; its
Figure 4 says 13K), LSTM 56, GRU 66, RNN 116. Symbols enter one-hot (10
classes); the reference feeds the raw id as one float.

Variants: ``copy_memory.py:<model>[,quick]`` with model in tcn (default), lstm,
gru, rnn; ``quick`` is a ~1 minute smoke run with T = 20.

  python -m experiments.train --config experiments/configs/copy_memory.py:tcn --workdir /tmp/copy
  python -m experiments.train --config experiments/configs/copy_memory.py:lstm \
      --config.data.blank_length=500 --workdir /tmp/copy_lstm
"""

from experiments.configs import common


def get_config(variant: str = "tcn"):
  model, quick = common.parse_variant(variant)
  config = common.loop_config("copy_memory")
  config.data = dict(blank_length=1000, copy_length=10, test_size=1000)
  config.num_steps = 15_600   # 50 epochs of the reference's 10k sequences
  config.optimizer.name = "rmsprop"
  config.optimizer.rmsprop_style = "pytorch"   # the settings were tuned with torch.optim.RMSprop
  config.optimizer.learning_rate = 5e-4
  config.optimizer.clip_global_norm = 1.0
  if model == "tcn":
    config.model = common.model_config("tcn", hidden_size=11, levels=8,
                                                 kernel_size=8, dropout=0.05)
  else:
    width = {"lstm": 56, "gru": 66, "rnn": 116}[model]
    config.model = common.model_config(model, hidden_size=width, dropout=0.0)
  if quick:
    config.data.blank_length = 20
    config.data.test_size = 256
    config.optimizer.learning_rate = 2e-3
    common.smoke_run(config, 300)
  return config
