"""Pieces every config shares, so that a config file says only what is its own.

* ``loop_config(task)``: the training loop's fields with their defaults
  (``seqjax.train.loop.train_and_evaluate`` reads them).
* ``model_config(cell, ...)``: ``config.model``, resolved by
  ``experiments.tasks.bodies.build_body`` (any seqjax cell or ``tcn``).
* ``parse_variant`` and ``MODELS``: the ``<model>[,quick]`` variants of the
  TCN-vs-RNN benchmark configs (Bai, Kolter & Koltun 2018); ``smoke_run``
  shrinks a config to its ``quick`` variant.
* ``lm_config``: the language-modelling rows of that benchmark, built on
  ``char_lm.py``.
* ``esn_config``: the echo-state-network forecasting configs.
"""

from __future__ import annotations

import ml_collections

from seqjax.train.optim import default_optimizer_config

#: The models of the TCN-vs-RNN comparison (``experiments/table.py``).
MODELS = ("tcn", "lstm", "gru", "rnn")


def loop_config(task: str, seed: int = 0) -> ml_collections.ConfigDict:
  """The fields of the training loop, with the defaults a config then overrides."""
  config = ml_collections.ConfigDict()
  config.task = task                 # a key of experiments.tasks.TASKS
  config.seed = seed                 # parameters, data order and dropout
  config.batch_size = 32             # rows per step; divisible by the device count
  config.num_steps = 10_000
  config.optimizer = default_optimizer_config()   # see seqjax.train.optim
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 2e-3
  config.optimizer.schedule = "constant"
  config.log_every = 100
  config.eval_every = 1000           # 0: only at the end
  config.checkpoint_every = 500
  config.keep_checkpoints = 2
  config.skip_nonfinite = False      # True: skip a non-finite update instead of stopping
  config.time_limit_minutes = 0.0    # 0: none; stops with a checkpoint when exceeded
  config.stop_when = ""              # e.g. "validation/mse<0.001": stop early once it holds
  config.select_best = ""            # e.g. "validation/nll:min": test the best validated parameters
  config.distributed = ml_collections.ConfigDict()
  config.distributed.enabled = False  # multi-host: call jax.distributed.initialize
  config.distributed.coordinator_address = ""
  config.distributed.num_processes = 0
  config.distributed.process_id = -1
  return config


def model_config(cell: str, *, hidden_size: int, num_layers: int = 1, levels: int = 8,
                 kernel_size: int = 2, dropout: float = 0.0, forget_bias: float = 1.0,
                 implementation: str = "auto",
                 cell_options: dict | None = None) -> ml_collections.ConfigDict:
  """``config.model``; fields a model does not use are kept, for overrides.

  ``cell_options`` are further keyword arguments of the cell factory (e.g. an
  NTM's ``memory_size``), set with ``--config.model.cell_options.memory_size=64``.
  """
  return ml_collections.ConfigDict(dict(
      cell=cell,                 # any cell factory in seqjax.cells, or "tcn"
      hidden_size=hidden_size,   # recurrent units per layer, or TCN channels per level
      num_layers=num_layers,     # recurrent layers (ignored by the TCN)
      levels=levels,             # TCN residual blocks, dilations 1, 2, ..., 2^(levels-1)
      kernel_size=kernel_size,   # TCN taps per convolution
      dropout=dropout,           # RNNs: between layers; TCN: after each convolution
      forget_bias=forget_bias,   # the LSTM family only
      implementation=implementation,  # RNNs: seqjax.unroll's (seqjax.Implementation)
      cell_options=dict(cell_options or {}),  # more keyword arguments of the cell factory
  ))


def parse_variant(variant: str, default_model: str = "tcn") -> tuple[str, bool]:
  """``"gru"``, ``"quick"``, ``"gru,quick"`` -> (model name, quick)."""
  parts = [p for p in variant.split(",") if p and p != "default"]
  quick = "quick" in parts
  names = [p for p in parts if p != "quick"]
  if len(names) > 1 or (names and names[0] not in MODELS):
    raise ValueError(f"variant must be [model][,quick] with model in {MODELS}, got {variant!r}")
  return (names[0] if names else default_model), quick


def smoke_run(config: ml_collections.ConfigDict, num_steps: int, *,
              log_every: int = 50) -> ml_collections.ConfigDict:
  """Shrinks ``config`` to a smoke run: ``num_steps`` steps, one checkpoint and one
  evaluation at the end, no time limit."""
  config.num_steps = num_steps
  config.log_every = log_every
  config.eval_every = 0
  config.checkpoint_every = num_steps
  config.time_limit_minutes = 0.0
  return config


def lm_config(variant: str, *, corpus: str, seq_len: int, batch_size: int, embed_size: int,
              tied: bool, models: dict, training: dict) -> ml_collections.ConfigDict:
  """A language-modelling row of the benchmark: ``char_lm.py``'s config for ``variant``.

  Each ``lm_*.py`` config is ``char_lm.py``'s default with the corpus, the
  model (``tcn``, ``lstm``, ``gru`` or ``rnn``) and the paper's settings for
  the task it stands in for (Bai et al. 2018, Table 1 and appendix Tables
  2-3, https://arxiv.org/abs/1803.01271). Widths are chosen so that every
  model meets the Table 1 size budget within 10%.

  Args:
    variant: ``model[,quick]``.
    models: ``{model: dict(hidden_size=, num_layers=, levels=, kernel_size=, dropout=)}``.
    training: ``{key: dict(optimizer=..., lr=..., clip=...)}``; a model uses
      its own key if present, else ``"tcn"`` or ``"rnn_family"``.
  """
  from experiments.configs import char_lm  # pylint: disable=g-import-not-at-top
  model, quick = parse_variant(variant)
  config = char_lm.get_config("default")
  config.data.corpus = corpus
  config.data.seq_len = seq_len
  config.data.max_eval_chunks = 0
  config.batch_size = batch_size
  config.num_steps = 20_000
  config.time_limit_minutes = 0.0
  config.eval_every = 1000
  config.checkpoint_every = 500
  config.model.cell = model
  config.model.embed_size = embed_size
  config.model.tied = tied
  for field, value in models[model].items():
    config.model[field] = value
  settings = training.get(model) or training["tcn" if model == "tcn" else "rnn_family"]
  config.optimizer.name = settings["optimizer"]
  config.optimizer.learning_rate = settings["lr"]
  config.optimizer.clip_global_norm = settings["clip"]
  config.optimizer.schedule = "constant"
  config.optimizer.warmup_steps = 0
  config.sample.length = 200
  if quick:
    config.model.hidden_size = 32
    config.model.embed_size = 32
    config.model.num_layers = 1
    config.model.levels = 2
    config.data.seq_len = 32
    config.batch_size = 8
    # A smoke run: Adam gets a tiny model somewhere in 100 steps, SGD does not.
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-2
    config.optimizer.clip_global_norm = 1.0
    smoke_run(config, 100, log_every=20)
    config.data.max_eval_chunks = 5
    config.sample.length = 20
  return config


def esn_config(series: str, *, washout: int, train: int, validation: int, test: int,
               hidden_size: int, spectral_radius: float, connectivity: float,
               input_scaling: float, bias_scaling: float, leak_rate: float, ridge: float,
               horizons: tuple[int, ...], closed_loop_stride: int,
               seed: int = 0, **data) -> ml_collections.ConfigDict:
  """An echo-state-network forecasting config (``experiments/tasks/esn.py``).

  Args:
    series: ``config.data.series``: ``mackey_glass``, ``laser`` or ``sunspots``.
    data: further ``config.data`` fields (the Mackey-Glass generator's).
  """
  config = ml_collections.ConfigDict()
  config.task = "esn"
  config.seed = seed                 # reservoir weights
  config.data = ml_collections.ConfigDict(dict(data))
  config.data.series = series
  config.data.washout = washout      # steps that only warm the reservoir up
  config.data.train = train          # steps the readout is fitted on
  config.data.validation = validation
  config.data.test = test
  config.reservoir = ml_collections.ConfigDict(dict(
      hidden_size=hidden_size, spectral_radius=spectral_radius, connectivity=connectivity,
      input_scaling=input_scaling, bias_scaling=bias_scaling, leak_rate=leak_rate))
  config.ridge = ridge               # Tikhonov penalty of the readout
  config.horizons = horizons         # closed-loop steps at which NRMSE is reported
  config.closed_loop_stride = closed_loop_stride  # steps between closed-loop starts (test)
  return config


def check_variant(name: str, variant: str, known: tuple[str, ...]) -> str:
  """``variant`` if it is one of ``known``, else ValueError naming the config."""
  if variant not in known:
    raise ValueError(f"unknown {name} variant {variant!r}; expected one of {', '.join(known)}")
  return variant
