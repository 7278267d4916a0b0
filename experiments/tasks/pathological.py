"""Pascanu, Mikolov & Bengio's (2013) pathological long-memory problems, one run per config.

``config.data.task`` names a generator of ``seqjax.data.pathological.TASKS``
(temporal order, 3-bit temporal order, adding, multiplication, random
permutation, noiseless memorisation) and ``config.data.length`` its T. Every
training step draws a fresh batch (``np.random.default_rng([config.seed,
step])``); the validation and test sets are fixed held-out batches drawn from
seeds that do not depend on ``config.seed`` (``[HELD_OUT_SEED, split, T]``), so
every seed of a grid is scored on the same sequences.

Model: one recurrent layer (``config.model``, see ``build_cell``) and a linear
readout: of the last step's state for every task but memorisation, of every
step's for memorisation (``SPECS[task].targets_at``). Loss as the reference
code computes it: the mean cross entropy over the batch (over batch and steps
for memorisation) or the mean squared error over the batch.

Regulariser: with ``config.regularizer.omega_weight`` > 0 the objective is
``loss + omega_weight * Omega`` (``seqjax.regularizers.omega_loss``: Pascanu et
al.'s eq. 9-10, the mean over the (row, step) terms of ``time_range``, with the
immediate-derivative rule), with the readout and the task loss as the function
of the body's outputs ``ys`` that Omega differentiates.

Success: a sequence is wrong by ``seqjax.data.pathological``'s rule for the
task (``wrong_per_sequence`` is that rule in jnp); ``<split>/error`` is the
fraction of wrong sequences, and a run has solved the task when the test error
is below ``SUCCESS_ERROR`` (1%) on ``config.data.test_size`` sequences (10,000
in the paper). ``config.stop_when = "validation/error<0.01"`` stops training
as soon as a periodic validation reaches it.

Model fields (``config.model``, besides those of ``bodies.validate``):

  cell        rnn (tanh Elman), lstm, gru or leaky
  init        "smart": Pascanu et al.'s ``smart_tanh``: input and readout
              weights ~ N(0, 0.01^2), recurrent weights N(0, 0.01^2) with 15
              non-zeros per row rescaled to spectral radius 0.95; "basic": their
              ``basic_tanh``: every weight ~ N(0, 0.1^2); "default": the cell's
              own initialisers (orthogonal recurrent, Glorot input) and a
              1/sqrt(H) readout; "orthogonal": a random orthogonal recurrent
              matrix times spectral_radius; "identity": spectral_radius times
              the identity (Le et al. 2015's IRNN start); "gaussian": a
              Gaussian matrix rescaled to spectral_radius. All but "default" apply to rnn and
              leaky only; orthogonal, identity and gaussian keep the cell's
              input initialiser.
  spectral_radius  of the "smart", "orthogonal", "identity" and "gaussian"
              recurrent matrices (0.95)
  delays      () or distinct ints >= 1: wrap the cell in
              ``seqjax.cells.delayed(cell, delays)`` (skip paths through time)
  timescales, tau, tau_range
              leaky only: ``seqjax.cells.leaky``'s arguments (tau only for
              "fixed"/"learned"; 0 = the cell's default)

References:
  Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
  neural networks", ICML, https://arxiv.org/abs/1211.5063 (section 4.3);
  reference code https://github.com/pascanur/trainingRNNs (RNN.py).
"""

from __future__ import annotations

import json
import math
import numbers
import pathlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments.tasks import bodies, training
from seqjax import cells, heads, regularizers
from seqjax import init as initializers
from seqjax.data import pathological as data_lib
from seqjax.pytree import count_params
from seqjax.scan import unroll
from seqjax.train.loop import Task
from seqjax.types import Cell

#: Cells this task builds (``config.model.cell``); ``delays`` wraps any of them.
CELLS = ("rnn", "lstm", "gru", "leaky")
INITS = ("smart", "basic", "orthogonal", "identity", "gaussian", "default")
#: First entropy word of the held-out sets' seeds: ``[HELD_OUT_SEED, split, T]``.
HELD_OUT_SEED = 10**9
SPLITS = {"validation": 1, "test": 2}
#: Shortest T each generator accepts.
MIN_LENGTH = {"temporal_order": 10, "temporal_order_3bit": 10, "adding": 10,
              "multiplication": 10, "random_permutation": 2, "noiseless_memorization": 1}
#: Pascanu et al.'s smart_tanh: non-zero recurrent weights per row, weight std.
SMART_NONZEROS = 15
SMART_STD = 0.01
BASIC_STD = 0.1


def time_range_of(config) -> tuple[int, int] | None:
  """``config.regularizer.time_range`` as ``(start, stop)`` or ``None`` (all steps)."""
  value = tuple(config.regularizer.time_range)
  return None if not value else (int(value[0]), int(value[1]))


def steps_of(task: str, length: int) -> int:
  """The number of steps of a ``task`` sequence of length ``length`` (T + 2P for memorisation)."""
  if task == "noiseless_memorization":
    probe, _ = data_lib.noiseless_memorization(np.random.default_rng(0), 1, length)
    return probe.shape[1]
  return length


def validate(config) -> None:
  """Raises ValueError naming the first bad field."""
  training.validate(config)
  bodies.validate(config.model)
  model = config.model
  if model.cell not in CELLS:
    raise ValueError(f"config.model.cell must be one of {CELLS} for the pathological tasks, "
                     f"got {model.cell!r}")
  if model.num_layers != 1:
    raise ValueError(f"config.model.num_layers must be 1 (one recurrent layer, as in the "
                     f"paper), got {model.num_layers}")
  if model.init not in INITS:
    raise ValueError(f"config.model.init must be one of {INITS}, got {model.init!r}")
  if model.init != "default" and model.cell not in ("rnn", "leaky"):
    raise ValueError(f"config.model.init={model.init!r} is for rnn and leaky cells; use "
                     f"'default' with {model.cell!r}")
  if not (isinstance(model.spectral_radius, numbers.Real) and 0 < model.spectral_radius
          and math.isfinite(model.spectral_radius)):
    raise ValueError(f"config.model.spectral_radius must be a finite number > 0, "
                     f"got {model.spectral_radius!r}")
  delays = tuple(model.delays)
  if (any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d <= 0 for d in delays)
      or len(set(delays)) != len(delays)):
    raise ValueError(f"config.model.delays must be () or distinct positive ints, got {delays!r}")
  try:
    build_cell(model)
  except (TypeError, ValueError) as error:
    raise ValueError(f"config.model does not build a cell ({error})") from None
  if config.data.task not in data_lib.TASKS:
    raise ValueError(f"config.data.task must be one of {tuple(data_lib.TASKS)}, "
                     f"got {config.data.task!r}")
  length = config.data.length
  if (isinstance(length, bool) or not isinstance(length, numbers.Integral)
      or length < MIN_LENGTH[config.data.task]):
    raise ValueError(f"config.data.length must be an integer >= "
                     f"{MIN_LENGTH[config.data.task]} for {config.data.task}, got {length!r}")
  training.positive_ints(config, "data.validation_size", "data.test_size",
                         "data.eval_batch_size")
  weight = config.regularizer.omega_weight
  if (isinstance(weight, bool) or not isinstance(weight, numbers.Real)
      or not 0 <= weight < math.inf):
    raise ValueError(f"config.regularizer.omega_weight must be a finite number >= 0 "
                     f"(0 = off), got {weight!r}")
  value = tuple(config.regularizer.time_range)
  steps = steps_of(config.data.task, length)
  if value and (len(value) != 2 or not all(isinstance(v, numbers.Integral) for v in value)
                or not 0 <= value[0] < value[1] <= steps):
    raise ValueError(f"config.regularizer.time_range must be () (every step) or (start, stop) "
                     f"with 0 <= start < stop <= {steps} (the steps of a sequence), "
                     f"got {value!r}")


def _smart_recurrent(radius: float):
  """Pascanu et al.'s smart_tanh recurrent matrix: sparse N(0, 0.01^2), spectral radius ``radius``.

  Each row keeps ``SMART_NONZEROS`` entries at random places (the reference
  zeroes row dx at ``permutation[15:]``).
  """

  def init(key, shape, dtype=jnp.float32):
    k_w, k_mask = jax.random.split(key)
    w = SMART_STD * jax.random.normal(k_w, shape, jnp.float32)
    ranks = jnp.argsort(jax.random.uniform(k_mask, shape), axis=1).argsort(axis=1)
    w = jnp.where(ranks < SMART_NONZEROS, w, 0.0)
    return initializers.scale_to_spectral_radius(w, radius).astype(dtype)

  return init


def build_cell(model) -> Cell:
  """The recurrent cell ``config.model`` describes (see the module docstring)."""
  options: dict[str, Any] = {}
  if model.init == "smart":
    options = dict(kernel_init=jax.nn.initializers.normal(SMART_STD),
                   recurrent_init=_smart_recurrent(float(model.spectral_radius)))
  elif model.init == "basic":
    options = dict(kernel_init=jax.nn.initializers.normal(BASIC_STD),
                   recurrent_init=jax.nn.initializers.normal(BASIC_STD))
  elif model.init == "orthogonal":
    options = dict(recurrent_init=initializers.orthogonal(float(model.spectral_radius)))
  elif model.init == "identity":
    options = dict(recurrent_init=initializers.identity(float(model.spectral_radius)))
  elif model.init == "gaussian":
    options = dict(recurrent_init=initializers.spectral(float(model.spectral_radius)))
  if model.cell == "rnn":
    cell = cells.rnn(model.hidden_size, **options)
  elif model.cell == "leaky":
    tau = float(model.tau) or None
    cell = cells.leaky(model.hidden_size, timescales=model.timescales, tau=tau,
                       tau_range=tuple(model.tau_range), **options)
  elif model.cell == "lstm":
    cell = cells.lstm(model.hidden_size, forget_bias=model.forget_bias)
  else:
    cell = cells.gru(model.hidden_size)
  delays = tuple(model.delays)
  return cells.delayed(cell, delays) if delays else cell


def head_scale(model) -> float | None:
  """Std of the readout weights: 0.01 (smart), 0.1 (basic), or None (1/sqrt(H))."""
  return {"smart": SMART_STD, "basic": BASIC_STD}.get(model.init)


def wrong_per_sequence(task: str, outputs, targets):
  """Per sequence, 1.0 where ``seqjax.data.pathological``'s rule counts it wrong (jnp).

  ``outputs`` as ``data_lib.error_rate`` takes them: (B, K) or (B, T, K) class
  scores, or (B,) predictions; the mean of the result is ``error_rate``.
  """
  spec = data_lib.SPECS[task]
  if spec.output == "regression":
    return ((outputs - targets) ** 2 > data_lib.REGRESSION_TOLERANCE).astype(jnp.float32)
  wrong = jnp.argmax(outputs, axis=-1) != targets
  if wrong.ndim == 2:
    wrong = jnp.any(wrong, axis=1)
  return wrong.astype(jnp.float32)


class Model(NamedTuple):
  """The pathological model as pure functions (see ``build_model``)."""

  cell: Cell
  init: Callable  # key -> {"cell": ..., "head": ...}
  readout: Callable  # (head params, ys (B, T, H)) -> outputs as error_rate takes them
  apply: Callable  # (params, inputs (B, T, D)) -> outputs
  losses: Callable  # (outputs, targets) -> per-sequence losses (B,)
  objective: Callable  # (params, inputs, targets, omega_weight) -> (total, {"loss", "omega"})
  task: str


def build_model(config) -> Model:
  """Cell + linear readout for ``config.data.task``, with the loss and the Omega objective."""
  task = config.data.task
  spec = data_lib.SPECS[task]
  cell = build_cell(config.model)
  head = heads.linear(spec.output_size, init_scale=head_scale(config.model))
  implementation = config.model.implementation
  time_range = time_range_of(config)

  def init(key):
    k_cell, k_head = jax.random.split(key)
    return {"cell": cell.init(k_cell, spec.input_size),
            "head": head.init(k_head, cell.output_size)}

  def readout(head_params, ys):
    if spec.targets_at == "last":
      ys = ys[..., -1, :]
    outputs = head.apply(head_params, ys)
    return outputs[..., 0] if spec.output == "regression" else outputs

  def apply(params, inputs):
    _, ys = unroll(cell, params["cell"], inputs, implementation=implementation)
    return readout(params["head"], ys)

  def losses(outputs, targets):
    if spec.loss == "squared_error":
      return (outputs - targets) ** 2
    nll = -jnp.take_along_axis(jax.nn.log_softmax(outputs), targets[..., None], axis=-1)[..., 0]
    return nll.mean(axis=1) if nll.ndim == 2 else nll  # memorisation: mean over steps

  def objective(params, inputs, targets, omega_weight):
    """``loss + omega_weight * Omega``; ``omega_weight`` a Python 0 skips Omega's pass."""
    if isinstance(omega_weight, (int, float)) and omega_weight == 0:
      loss = losses(apply(params, inputs), targets).mean()
      return loss, {"loss": loss, "omega": jnp.zeros_like(loss)}
    task_loss = lambda ys: losses(readout(params["head"], ys), targets).mean()
    return regularizers.omega_loss(cell, params["cell"], inputs, task_loss,
                                   weight=omega_weight, time_range=time_range)

  return Model(cell, init, readout, apply, losses, objective, task)


def held_out(task: str, length: int, size: int, split: str):
  """The fixed held-out batch of ``split`` (the same for every seed)."""
  rng = np.random.default_rng([HELD_OUT_SEED, SPLITS[split], length])
  return data_lib.TASKS[task](rng, size, length)


def train_data(task: str, length: int, batch_size: int, seed: int, step: int):
  """Training batch ``step`` of seed ``seed``: fresh sequences every step."""
  return data_lib.TASKS[task](np.random.default_rng([seed, step]), batch_size, length)


def build(config, workdir):
  del workdir
  model = build_model(config)
  task, length = config.data.task, config.data.length
  weight = float(config.regularizer.omega_weight)

  def eval_split(split, size):
    inputs, targets = held_out(task, length, size, split)
    return training.fixed_batches({"inputs": inputs, "targets": targets},
                                  config.data.eval_batch_size)

  def train_batch(step):
    inputs, targets = train_data(task, length, config.batch_size, config.seed, step)
    return {"inputs": inputs, "targets": targets,
            "weight": np.ones(len(targets), np.float32)}

  def loss_fn(params, batch, carry, rng, is_training):
    del rng
    if is_training:
      total, parts = model.objective(params, batch["inputs"], batch["targets"], weight)
      return total, (carry, {"task_loss": parts["loss"], "omega": parts["omega"]})
    outputs = model.apply(params, batch["inputs"])
    w = batch["weight"]
    losses = model.losses(outputs, batch["targets"])
    wrong = wrong_per_sequence(task, outputs, batch["targets"])
    return (losses * w).sum() / w.sum(), (carry, {"loss_sum": (losses * w).sum(),
                                                  "wrong": (wrong * w).sum(), "count": w.sum()})

  task_record = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      eval_batches={"validation": eval_split("validation", config.data.validation_size),
                    "test": eval_split("test", config.data.test_size)},
      summarize=lambda sums: {"error": sums["wrong"] / max(sums["count"], 1.0),
                              "loss": sums["loss_sum"] / max(sums["count"], 1.0)},
      tokens_per_batch=config.batch_size * steps_of(task, length),
      eval_batch_size=config.data.eval_batch_size,
      progress_metrics=("task_loss", "omega") if weight else ("task_loss",))
  return task_record, None


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``); adds ``test/solved`` (1.0 or 0.0)."""
  final = training.run(config, workdir, build, report, log)
  if final:
    final["test/solved"] = float(final["test/error"] < data_lib.SUCCESS_ERROR)
    path = pathlib.Path(workdir) / "final.json"
    if path.exists():
      step = json.loads(path.read_text())["step"]
      log(f"{'solved' if final['test/solved'] else 'not solved'} at step {step}")
  return final


def report(config, final, params, extras, log=print) -> None:
  del extras
  error = final["test/error"]
  verdict = "solved" if error < data_lib.SUCCESS_ERROR else "not solved"
  log(f"final: {config.data.task} T={config.data.length}: test error {100 * error:.2f}% on "
      f"{config.data.test_size} held-out sequences (validation "
      f"{100 * final['validation/error']:.2f}%); {verdict} (< "
      f"{100 * data_lib.SUCCESS_ERROR:g}%); {count_params(params)} parameters")


def baseline(config) -> tuple[str, float]:
  """Chance error: guessing the most likely class (1 - 1/K), or the regression tasks' error
  of always predicting the target's mean (measured on the test set)."""
  task = config.data.task
  spec = data_lib.SPECS[task]
  _, targets = held_out(task, config.data.length, config.data.test_size, "test")
  if spec.output == "regression":
    guess = np.full_like(targets, targets.mean())
    return "predict the mean", data_lib.error_rate(task, guess, targets)
  if spec.targets_at == "every":
    return "guess", 1.0 - 0.5 ** 5  # the 5 binary pattern values, each a coin flip
  return "guess a class", 1.0 - float(np.bincount(targets).max()) / len(targets)
