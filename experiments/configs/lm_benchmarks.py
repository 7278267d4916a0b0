"""Language-modelling rows of the TCN-vs-RNN table: shared builder of the three LM configs.

Each ``lm_*.py`` config is ``char_lm.py``'s default with the corpus, the
model (``tcn``, ``lstm``, ``gru`` or ``rnn``) and the paper's settings for the
task it stands in for (Bai, Kolter & Koltun 2018, Table 1 and appendix
Tables 2-3, https://arxiv.org/abs/1803.01271). Widths are chosen so that
every model meets the Table 1 size budget within 10%.
"""

from experiments.configs import char_lm
from experiments.tasks import benchmark_models


def lm_config(variant: str, *, corpus: str, seq_len: int, batch_size: int, embed_size: int,
              tied: bool, models: dict, training: dict):
  """``char_lm`` config for ``variant`` (``model[,quick]``).

  Args:
    models: ``{model: dict(hidden_size=, num_layers=, levels=, kernel_size=, dropout=)}``.
    training: ``{key: dict(optimizer=..., lr=..., clip=...)}``; a model uses
      its own key if present, else ``"tcn"`` or ``"rnn_family"``.
  """
  model, quick = benchmark_models.parse_variant(variant)
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
    config.num_steps = 100
    # A smoke run: Adam gets a tiny model somewhere in 100 steps, SGD does not.
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-2
    config.optimizer.clip_global_norm = 1.0
    config.log_every = 20
    config.eval_every = 0
    config.checkpoint_every = 100
    config.data.max_eval_chunks = 5
    config.sample.length = 20
  return config
