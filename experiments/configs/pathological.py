r"""Pascanu, Mikolov & Bengio's (2013) pathological tasks: one (task, T, model, method, seed).

Variant: ``<task>,<T>,<model>,<method>[,seed=N][,quick]``, every part optional
(defaults ``temporal_order,50,rnn,clip``), in any order:

  task    a name of ``seqjax.data.pathological.TASKS``: temporal_order,
          temporal_order_3bit, adding, multiplication, random_permutation,
          noiseless_memorization
  T       the sequence length (memorisation: the blank steps between pattern
          and recall; the sequence has T + 10 steps)
  model   rnn (tanh, the paper's), lstm, gru, leaky, delayed
  method  sgd, clip (SGD + gradient-norm clipping), clip_omega (SGD +
          clipping + the Omega regulariser)
  seed=N  parameters and training data (the held-out sets do not depend on it)
  quick   a smoke run: 200 steps, small held-out sets

Settings, from Pascanu et al.'s reference code (github.com/pascanur/trainingRNNs,
RNN.py's defaults) and the paper (section 4.3, https://arxiv.org/abs/1211.5063):

* 50 hidden units, one layer, tanh; batch 20; plain SGD, learning rate 0.01,
  no momentum.
* Clipping: rescale the gradient to global norm <= 1 (``cutoff = 1``,
  ``clipstyle = 'rescale'``); ``optimizer.clip_global_norm``.
* Omega: weight ``alpha = 2`` over every step (``config.regularizer``), added
  to the loss before clipping, as the reference does. Differences from the
  reference's Omega (see ``seqjax.regularizers.pascanu_omega``): the ratio of
  norms rather than of squared norms, and its gradient reaches W_x and b as
  well as W_hh.
* Init ``smart`` (the reference's ``smart_tanh``): inputs and readout
  N(0, 0.01^2); recurrent N(0, 0.01^2) with 15 non-zeros per row, rescaled to
  spectral radius 0.95. The other models: lstm and gru keep their own
  initialisers (orthogonal recurrent, Glorot input, forget bias 1) and a
  1/sqrt(H) readout; leaky (timescales log-uniform in [1, 100], fixed) and
  delayed (a tanh RNN fed its own state from 4 and 16 steps back,
  ``seqjax.cells.delayed``; T = 200 is then ~13 hops) use smart init. More or
  longer delays cost more: each step carries the last max(delays) states. Each model is 50 units.
* Other tricks, from the command line: ``--config.model.init=orthogonal``,
  ``identity`` (IRNN) or ``gaussian`` (each scaled to
  ``--config.model.spectral_radius``; ``basic`` is the reference's
  ``basic_tanh``), ``--config.optimizer.momentum=0.9
  --config.optimizer.nesterov=True`` (Nesterov momentum),
  ``--config.optimizer.clip_value=0.1`` (element-wise clipping, before the
  global-norm clip; 0 turns either off).
* Success: test error < 1% on 10,000 held-out sequences (the paper's
  criterion); validation on 1,000 others every 100 steps, and training stops
  at once when it is below 1% (``stop_when``); the reference checks 10,000
  every 20 steps. Runs that hit a non-finite gradient skip that update
  (``skip_nonfinite``; the reference replaces it by 0.02 W_hh when clipping).
* Budget: 100,000 steps here (the reference allows 5 million); the grid of
  ``experiments/gradient_table.py`` uses far fewer.

Not reproduced: the reference draws each batch's length uniformly from
[50, 200] when trained on the range; here T is fixed per run.

  python -m experiments.train \
      --config experiments/configs/pathological.py:adding,100,rnn,clip_omega \
      --workdir /tmp/path_add
"""

from __future__ import annotations

from experiments.configs import common
from seqjax.data import pathological as data_lib

MODELS = ("rnn", "lstm", "gru", "leaky", "delayed")
METHODS = ("sgd", "clip", "clip_omega")
#: Pascanu et al.'s settings (reference code defaults).
HIDDEN = 50
BATCH = 20
LEARNING_RATE = 0.01
CLIP = 1.0
OMEGA_WEIGHT = 2.0
DELAYS = (4, 16)

#: One quick variant per task, model and method, for tests/experiments/test_configs.py.
VARIANTS = (
    "temporal_order,20,rnn,sgd,quick",
    "temporal_order_3bit,20,rnn,clip,quick",
    "adding,20,rnn,clip_omega,quick",
    "multiplication,20,lstm,clip,quick",
    "random_permutation,20,gru,clip,quick",
    "noiseless_memorization,10,leaky,clip_omega,quick",
    "adding,20,delayed,clip_omega,quick",
    "temporal_order,50,rnn,clip,seed=3",
)


def parse_variant(variant: str) -> dict:
  """``"adding,100,gru,clip,seed=2,quick"`` -> its parts (defaults filled in)."""
  parts = dict(task="temporal_order", length=50, model="rnn", method="clip", seed=0,
               quick=False)
  for item in filter(None, variant.split(",")):
    if item == "default":
      continue
    if item == "quick":
      parts["quick"] = True
    elif item in data_lib.TASKS:
      parts["task"] = item
    elif item in MODELS:
      parts["model"] = item
    elif item in METHODS:
      parts["method"] = item
    elif item.isdigit():
      parts["length"] = int(item)
    elif item.startswith("seed=") and item[5:].isdigit():
      parts["seed"] = int(item[5:])
    else:
      raise ValueError(f"unknown pathological variant part {item!r} in {variant!r}; the "
                       f"variant is <task>,<T>,<model>,<method>[,seed=N][,quick] with task in "
                       f"{tuple(data_lib.TASKS)}, model in {MODELS}, method in {METHODS}")
  return parts


def get_config(variant: str = "default"):
  p = parse_variant(variant)
  config = common.loop_config("pathological", seed=p["seed"])
  config.data = dict(
      task=p["task"],
      length=p["length"],          # T
      validation_size=1000,        # checked every eval_every steps (stop_when)
      test_size=10_000,            # the paper's held-out batch
      eval_batch_size=1000,
  )
  cell = {"delayed": "rnn"}.get(p["model"], p["model"])
  config.model = common.model_config(cell, hidden_size=HIDDEN, forget_bias=1.0)
  config.model.init = "smart" if cell in ("rnn", "leaky") else "default"
  config.model.spectral_radius = 0.95
  config.model.delays = DELAYS if p["model"] == "delayed" else ()
  config.model.timescales = "sampled"   # leaky only
  config.model.tau = 0.0                # leaky "fixed"/"learned" start; 0 = the cell's default
  config.model.tau_range = (1.0, 100.0)
  config.regularizer = dict(
      omega_weight=OMEGA_WEIGHT if p["method"] == "clip_omega" else 0.0,
      time_range=(),                # () = every step; else (start, stop)
  )
  config.batch_size = BATCH
  config.num_steps = 100_000
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = LEARNING_RATE
  config.optimizer.momentum = 0.0
  config.optimizer.clip_global_norm = 0.0 if p["method"] == "sgd" else CLIP
  config.optimizer.clip_value = 0.0
  config.eval_every = 100
  config.log_every = 500
  config.checkpoint_every = 5000
  config.stop_when = f"validation/error<{data_lib.SUCCESS_ERROR}"
  config.skip_nonfinite = True
  if p["quick"]:
    config.data.validation_size = 200
    config.data.test_size = 500
    config.data.eval_batch_size = 100
    common.smoke_run(config, 200)
    config.eval_every = 100
  return config
