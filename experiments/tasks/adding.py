"""The adding problem: regress the sum of the two marked values from the last output."""

from __future__ import annotations

import numpy as np

from experiments.tasks import bodies, training
from seqjax import losses
from seqjax.data import synthetic
from seqjax.models import sequence_model
from seqjax.pytree import count_params
from seqjax.train.loop import Task


def parse_curriculum(text: str) -> list[tuple[int, int]]:
  """``"200:1500,400:1500"`` -> ``[(200, 1500), (400, 1500)]``: (length, steps) stages.

  Training runs each stage's number of steps at its sequence length, then the
  rest at ``config.data.seq_len``; ``""`` is no curriculum.
  """
  stages = []
  for item in filter(None, text.split(",")):
    length, sep, steps = item.partition(":")
    try:
      stage = (int(length), int(steps))
    except ValueError:
      stage = None
    if not sep or stage is None or stage[0] < 2 or stage[1] <= 0:
      raise ValueError(f"config.data.curriculum must look like '200:1500,400:1500' "
                       f"(length >= 2 : steps > 0, ...), got {text!r}")
    stages.append(stage)
  return stages


def length_at(step: int, seq_len: int, stages: list[tuple[int, int]]) -> int:
  """Sequence length of training step ``step`` under the curriculum ``stages``."""
  for length, steps in stages:
    if step < steps:
      return length
    step -= steps
  return seq_len


def validate(config) -> None:
  training.validate(config)
  bodies.validate(config.model)
  if config.data.seq_len < 2:
    raise ValueError(f"config.data.seq_len must be >= 2, got {config.data.seq_len}")
  parse_curriculum(config.data.curriculum)
  if config.data.test_size <= 0:
    raise ValueError(f"config.data.test_size must be > 0, got {config.data.test_size}")


def build_model(config):
  return sequence_model(bodies.build_body(config.model), 1, input_size=2,
                        readout="last")


def build(config, workdir):
  del workdir
  model = build_model(config)
  length = config.data.seq_len

  def held_out(split_seed):
    inputs, targets = synthetic.adding_problem(
        np.random.default_rng([config.seed, split_seed, length]), config.data.test_size, length)
    return training.fixed_batches({"inputs": inputs, "targets": targets},
                                          config.batch_size)

  stages = parse_curriculum(config.data.curriculum)

  def train_batch(step):
    inputs, targets = synthetic.adding_problem(
        np.random.default_rng([config.seed, step]), config.batch_size,
        length_at(step, length, stages))
    return {"inputs": inputs, "targets": targets, "weight": np.ones(len(targets), np.float32)}

  def loss_fn(params, batch, carry, rng, training):
    _, predictions = model.apply(params, batch["inputs"], key=rng, training=training)
    squared, count = losses.squared_error(predictions[..., 0], batch["targets"], batch["weight"])
    return squared / count, (carry, {"se_sum": squared, "count": count})

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      # Distinct seeds: training batches use [seed, step], these [seed, 10**9 + i, T].
      eval_batches={"validation": held_out(10**9 + 1), "test": held_out(10**9 + 2)},
      summarize=lambda sums: {"mse": sums["se_sum"] / max(sums["count"], 1.0)},
      tokens_per_batch=config.batch_size * length, eval_batch_size=config.batch_size,
      progress_metrics=("loss",))
  return task, None


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def report(config, final, params, extras, log=print) -> None:
  log(f"final: test MSE {final['test/mse']:.3g} (validation {final['validation/mse']:.3g}); "
      f"trivial baseline (always predict 1): {synthetic.ADDING_TRIVIAL_MSE:.3f}; "
      f"{count_params(params)} parameters")


def baseline(config) -> tuple[str, float]:
  """The trivial baseline the table prints beside the results."""
  return "always predict 1", synthetic.ADDING_TRIVIAL_MSE
