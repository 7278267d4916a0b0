"""The NTM paper's algorithmic tasks: copy, repeat copy (with a curriculum), associative recall.

A body (an NTM, DNC, LSTM... from ``config.model``) and a linear head emit
logits of the target bits at every step; the loss is the binary cross-entropy
of the scored steps (nats per scored step, summed over the bits), and the
figure of merit the papers plot, bit errors per sequence: outputs thresholded
at 1/2, wrong bits summed over a sequence's scored steps.

``report`` also tests the trained model on longer sequences than it trained on
(``config.data.test_lengths``), the NTM paper's generalisation experiment.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from experiments.tasks import bodies, training
from seqjax.data import algorithmic
from seqjax.losses import binary_cross_entropy
from seqjax.models import sequence_model
from seqjax.pytree import count_params
from seqjax.train.loop import Task

TASKS = ("copy", "repeat_copy", "associative_recall")


def validate(config) -> None:
  training.validate(config)
  bodies.validate(config.model)
  data = config.data
  if data.task not in TASKS:
    raise ValueError(f"config.data.task must be one of {TASKS}, got {data.task!r}")
  training.positive_ints(config, "data.width", "data.min_length", "data.max_length",
                         "data.test_size")
  if data.min_length > data.max_length:
    raise ValueError(f"config.data.min_length must be <= config.data.max_length = "
                     f"{data.max_length}, got {data.min_length}")
  if data.task == "associative_recall" and data.min_length < 2:
    raise ValueError(f"config.data.min_length (items) must be >= 2 for associative recall, "
                     f"got {data.min_length}")
  if data.task == "repeat_copy":
    if not 1 <= data.min_repeats <= data.max_repeats:
      raise ValueError(f"config.data.min_repeats must be in [1, config.data.max_repeats = "
                       f"{data.max_repeats}], got {data.min_repeats}")
    if not data.min_repeats <= data.curriculum_start <= data.max_repeats:
      raise ValueError(f"config.data.curriculum_start must be within the task's repeats "
                       f"[{data.min_repeats}, {data.max_repeats}], got {data.curriculum_start}")
  for length in data.test_lengths:
    if not isinstance(length, int) or length < 1:
      raise ValueError(f"config.data.test_lengths must hold positive integers, got {length!r}")


def sizes(data) -> tuple[int, int]:
  """(D, O): input and output channels of ``data.task``."""
  if data.task == "copy":
    return data.width + 1, data.width
  if data.task == "repeat_copy":
    return data.width + 2, data.width + 1
  return data.width + 2, data.width


def max_repeats_at(data, step: int, num_steps: int) -> int:
  """Repeat copy's curriculum: the largest repeat count drawn at ``step``.

  Grows linearly from ``data.curriculum_start`` to ``data.max_repeats`` over
  the first ``data.curriculum_fraction`` of the run.
  """
  span = max(1, int(data.curriculum_fraction * num_steps))
  grown = data.curriculum_start + (data.max_repeats - data.curriculum_start) * step / span
  return int(min(data.max_repeats, grown))


def make_batch(data, rng: np.random.Generator, batch_size: int, *, min_length: int,
               max_length: int, max_repeats: int | None = None,
               steps: int | None = None) -> algorithmic.AlgorithmicBatch:
  """One batch of ``data.task`` with lengths (items for recall) in [min_length, max_length]."""
  if data.task == "copy":
    return algorithmic.copy(rng, batch_size, min_length, max_length, data.width, steps=steps)
  if data.task == "repeat_copy":
    top = data.max_repeats if max_repeats is None else max_repeats
    return algorithmic.repeat_copy(rng, batch_size, min_length, max_length, data.min_repeats,
                                   top, data.width, repeat_scale=data.max_repeats, steps=steps)
  return algorithmic.associative_recall(rng, batch_size, min_length, max_length,
                                        data.item_length, data.width, steps=steps)


def steps_for(data, max_length: int) -> int:
  """T that holds every sequence of ``data.task`` up to ``max_length``."""
  if data.task == "copy":
    return algorithmic.copy_steps(max_length)
  if data.task == "repeat_copy":
    return algorithmic.repeat_copy_steps(max_length, data.max_repeats)
  return algorithmic.associative_recall_steps(max_length, data.item_length)


def build_model(config):
  inputs, outputs = sizes(config.data)
  return sequence_model(bodies.build_body(config.model), outputs, input_size=inputs,
                        readout="all")


def _as_arrays(batch: algorithmic.AlgorithmicBatch, weight: np.ndarray) -> dict:
  return {"inputs": batch.inputs, "targets": batch.targets, "scored": batch.loss_mask,
          "mask": batch.mask, "weight": weight}


def build(config, workdir):
  del workdir
  model = build_model(config)
  data = config.data
  steps = steps_for(data, data.max_length)

  def held_out(split_seed):
    batch = make_batch(data, np.random.default_rng([config.seed, split_seed]), data.test_size,
                       min_length=data.min_length, max_length=data.max_length, steps=steps)
    arrays = _as_arrays(batch, np.ones(data.test_size, np.float32))
    del arrays["weight"]
    return training.fixed_batches(arrays, config.batch_size)

  def train_batch(step):
    top = (max_repeats_at(data, step, config.num_steps) if data.task == "repeat_copy"
           else None)
    batch = make_batch(data, np.random.default_rng([config.seed, step]), config.batch_size,
                       min_length=data.min_length, max_length=data.max_length,
                       max_repeats=top, steps=steps)
    return _as_arrays(batch, np.ones(config.batch_size, np.float32))

  def loss_fn(params, batch, carry, rng, training):
    _, logits = model.apply(params, batch["inputs"], mask=batch["mask"], key=rng,
                            training=training)
    scored = batch["scored"] & (batch["weight"][:, None] > 0)
    total, count = binary_cross_entropy(logits, batch["targets"], scored)
    wrong = (logits > 0) != (batch["targets"] > 0.5)
    errors = jnp.sum((wrong & scored[..., None]).astype(jnp.float32))
    return total / jnp.maximum(count, 1.0), (carry, {
        "nll_sum": total, "count": count, "bit_errors": errors,
        "sequences": jnp.sum(batch["weight"]),
        "errors_per_sequence": errors / jnp.maximum(jnp.sum(batch["weight"]), 1.0)})

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      eval_batches={"validation": held_out(10**9 + 1), "test": held_out(10**9 + 2)},
      summarize=lambda s: {"loss": s["nll_sum"] / max(s["count"], 1.0),
                           "bit_errors": s["bit_errors"] / max(s["sequences"], 1.0)},
      tokens_per_batch=config.batch_size * steps, eval_batch_size=config.batch_size,
      progress_metrics=("loss", "errors_per_sequence"))
  return task, model


def generalisation(config, model, params, lengths, size: int | None = None) -> dict[int, float]:
  """Mean bit errors per sequence at each fixed length (items for recall) in ``lengths``."""
  data = config.data
  size = size or data.test_size
  apply = jax.jit(lambda p, x, m: model.apply(p, x, mask=m)[1])
  errors = {}
  for length in lengths:
    batch = make_batch(data, np.random.default_rng([config.seed, 7, length]), size,
                       min_length=length, max_length=length)
    logits = np.concatenate([np.asarray(apply(params, batch.inputs[i:i + 64],
                                              batch.mask[i:i + 64]))
                             for i in range(0, size, 64)])
    errors[length] = float(np.mean(algorithmic.bit_errors(logits, batch.targets,
                                                           batch.loss_mask)))
  return errors


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def report(config, final, params, extras, log=print) -> None:
  model = extras
  log(f"final: {config.data.task}, test bit errors per sequence "
      f"{final['test/bit_errors']:.3f} (validation {final['validation/bit_errors']:.3f}), "
      f"loss {final['test/loss']:.4f} nats per scored step; {count_params(params)} parameters")
  lengths = list(config.data.test_lengths)
  if lengths:
    errors = generalisation(config, model, params, lengths)
    log("generalisation: " + ", ".join(f"length {n}: {e:.2f} bit errors"
                                       for n, e in errors.items()))


def baseline(config) -> tuple[str, float]:
  """Guessing every bit: half the scored bits of a mean-length sequence are wrong."""
  data = config.data
  mean = (data.min_length + data.max_length) / 2
  per_step = sizes(data)[1]
  if data.task == "copy":
    return "chance", 0.5 * mean * per_step
  if data.task == "repeat_copy":
    repeats = (data.min_repeats + data.max_repeats) / 2
    return "chance", 0.5 * (mean * repeats + 1) * per_step
  return "chance", 0.5 * data.item_length * per_step
