"""Models and shared pieces of the TCN-vs-RNN benchmark tasks (Bai, Kolter & Koltun 2018).

``config.model`` names the body: ``tcn`` (``levels`` residual blocks of
``hidden_size`` channels, ``kernel_size`` taps) or a recurrent stack
(``lstm``, ``gru``, ``rnn``: ``num_layers`` layers of ``hidden_size`` units).
``PAPER`` holds the published Table 1 numbers the table is compared with.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from seqjax import Implementation, cells, layers
from seqjax.tcn import tcn

MODELS = ("tcn", "lstm", "gru", "rnn")

#: Bai et al. (2018), Table 1 (https://arxiv.org/abs/1803.01271): model size
#: budget, metric, whether higher is better, and the published results.
PAPER = {
    "adding": dict(size=70_000, metric="mse", higher=False,
                   results=dict(lstm=0.164, gru=5.3e-5, rnn=0.177, tcn=5.8e-5),
                   setting="T=600"),
    "copy_memory": dict(size=16_000, metric="loss", higher=False,
                        results=dict(lstm=0.0204, gru=0.0197, rnn=0.0202, tcn=3.5e-5),
                        setting="T=1000"),
    "mnist": dict(size=70_000, metric="accuracy", higher=True,
                  results=dict(lstm=0.872, gru=0.962, rnn=0.215, tcn=0.990),
                  setting="sequential"),
    "pmnist": dict(size=70_000, metric="accuracy", higher=True,
                   results=dict(lstm=0.857, gru=0.873, rnn=0.253, tcn=0.972),
                   setting="permuted"),
    "music": dict(size=300_000, metric="nll", higher=False,
                  results=dict(lstm=8.45, gru=8.43, rnn=8.91, tcn=8.10),
                  setting="JSB stand-in: Bach chorales"),
    "lm_shakespeare": dict(size=3_000_000, metric="bpc", higher=False,
                           results=dict(lstm=1.36, gru=1.37, rnn=1.48, tcn=1.31),
                           setting="char PTB stand-in: Shakespeare"),
    "lm_wiki_bytes": dict(size=5_000_000, metric="bpc", higher=False,
                          results=dict(lstm=1.50, gru=1.53, rnn=1.69, tcn=1.45),
                          setting="text8 stand-in: Wikipedia bytes"),
    "lm_bbc_words": dict(size=13_000_000, metric="perplexity", higher=False,
                         results=dict(lstm=78.93, gru=92.48, rnn=114.50, tcn=88.68),
                         setting="word PTB stand-in: BBC news"),
}


def model_config(name: str, *, hidden_size: int, num_layers: int = 1, levels: int = 8,
                 kernel_size: int = 2, dropout: float = 0.0,
                 forget_bias: float = 1.0,
                 implementation: str = "auto") -> ml_collections.ConfigDict:
  """``config.model`` for one of ``MODELS``; unused fields are kept for overrides."""
  if name not in MODELS:
    raise ValueError(f"model must be one of {MODELS}, got {name!r}")
  return ml_collections.ConfigDict(dict(
      name=name,                 # tcn | lstm | gru | rnn
      hidden_size=hidden_size,   # TCN channels per level, or recurrent units per layer
      num_layers=num_layers,     # recurrent layers (ignored by the TCN)
      levels=levels,             # TCN residual blocks, dilations 1, 2, ..., 2^(levels-1)
      kernel_size=kernel_size,   # TCN taps per convolution
      dropout=dropout,           # TCN: after each convolution; RNNs: between layers
      forget_bias=forget_bias,   # LSTM only
      # RNNs: seqjax.unroll's implementation (seqjax.Implementation)
      # (tasks without masks: adding, copy memory, MNIST).
      implementation=implementation,
  ))


def validate_model(model) -> None:
  """Raises ValueError naming the bad ``config.model`` field."""
  if model.name not in MODELS:
    raise ValueError(f"config.model.name must be one of {MODELS}, got {model.name!r}")
  for field in ("hidden_size", "num_layers", "levels", "kernel_size"):
    value = model[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.model.{field} must be a positive integer, got {value!r}")
  if not 0 <= model.dropout < 1:
    raise ValueError(f"config.model.dropout must be in [0, 1), got {model.dropout}")
  implementation = model.get("implementation", "auto")
  Implementation.check(implementation, "config.model.implementation")


def build_body(model) -> layers.Layer:
  """The body ``config.model`` describes, as a ``seqjax.layers.Layer``."""
  validate_model(model)
  if model.name == "tcn":
    return tcn([model.hidden_size] * model.levels, kernel_size=model.kernel_size,
               dropout=model.dropout)
  if model.name == "lstm":
    cell = cells.lstm(model.hidden_size, forget_bias=model.forget_bias)
  elif model.name == "gru":
    cell = cells.gru(model.hidden_size)
  else:
    cell = cells.rnn(model.hidden_size)
  layer = layers.recurrent(cell, implementation=model.get("implementation", "auto"))
  return layers.stacked(layer, model.num_layers, dropout=model.dropout)


def parse_variant(variant: str, default_model: str = "tcn") -> tuple[str, bool]:
  """``"gru"``, ``"quick"``, ``"gru,quick"`` -> (model name, quick)."""
  parts = [p for p in variant.split(",") if p and p != "default"]
  quick = "quick" in parts
  names = [p for p in parts if p != "quick"]
  if len(names) > 1 or (names and names[0] not in MODELS):
    raise ValueError(f"variant must be [model][,quick] with model in {MODELS}, got {variant!r}")
  return (names[0] if names else default_model), quick


def common_config(task: str, seed: int = 0) -> ml_collections.ConfigDict:
  """Loop fields every benchmark config shares (overridden per task)."""
  from seqjax.train.optim import default_optimizer_config
  config = ml_collections.ConfigDict()
  config.task = task
  config.seed = seed
  config.batch_size = 32
  config.num_steps = 10_000
  config.optimizer = default_optimizer_config()
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 2e-3
  config.optimizer.schedule = "constant"
  config.log_every = 100
  config.eval_every = 1000
  config.checkpoint_every = 500
  config.keep_checkpoints = 2
  config.skip_nonfinite = False
  config.time_limit_minutes = 0.0
  config.stop_when = ""      # e.g. "validation/mse<0.001": stop early once it holds
  config.select_best = ""    # e.g. "validation/nll:min": test the best validated parameters
  return config


def epoch_batch_indices(num_examples: int, batch_size: int, step: int, seed: int) -> np.ndarray:
  """Indices of training batch ``step``: a fresh seeded shuffle every epoch."""
  per_epoch = num_examples // batch_size
  epoch, index = divmod(step, per_epoch)
  order = np.random.default_rng([seed, epoch]).permutation(num_examples)
  return order[index * batch_size:(index + 1) * batch_size]


def fixed_batches(arrays: dict, batch_size: int):
  """``() -> iterator`` over ``arrays`` in order, the last batch padded with ``weight`` 0."""
  size = len(next(iter(arrays.values())))

  def batches():
    for start in range(0, size, batch_size):
      batch = {k: v[start:start + batch_size] for k, v in arrays.items()}
      rows = len(next(iter(batch.values())))
      weight = np.ones(batch_size, np.float32)
      if rows < batch_size:
        weight[rows:] = 0
        batch = {k: np.concatenate([v, np.repeat(v[-1:], batch_size - rows, 0)])
                 for k, v in batch.items()}
      batch["weight"] = weight
      yield batch

  return batches
