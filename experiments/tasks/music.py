"""Polyphonic music: predict the next 88-key frame with independent Bernoulli outputs."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from experiments.datasets import music
from experiments.tasks import bodies, training
from seqjax.losses import binary_cross_entropy
from seqjax.models import sequence_model
from seqjax.pytree import count_params
from seqjax.train.loop import Task


def validate(config) -> None:
  training.validate(config)
  bodies.validate(config.model)
  if config.data.max_eval_pieces < 0:
    raise ValueError(f"config.data.max_eval_pieces must be >= 0, got {config.data.max_eval_pieces}")
  for field in ("bucket", "eval_batch_size"):
    if config.data[field] <= 0:
      raise ValueError(f"config.data.{field} must be > 0, got {config.data[field]}")


def build_model(config):
  return sequence_model(bodies.build_body(config.model), music.NUM_KEYS,
                        input_size=music.NUM_KEYS, readout="all")


def _batch(rolls, bucket: int, rows: int) -> dict:
  """Inputs frames ``[:-1]``, targets ``[1:]``, padded to a multiple of ``bucket`` steps.

  Rounding lengths up to a bucket keeps the number of compiled shapes small.
  Missing rows (a short last batch) are all-padding, weight 0.
  """
  length = max(len(r) - 1 for r in rolls)
  length = -(-length // bucket) * bucket
  inputs, mask = music.pad_batch([r[:-1] for r in rolls], length)
  targets, _ = music.pad_batch([r[1:] for r in rolls], length)
  if len(rolls) < rows:
    pad = rows - len(rolls)
    inputs = np.concatenate([inputs, np.zeros((pad, *inputs.shape[1:]), np.float32)])
    targets = np.concatenate([targets, np.zeros((pad, *targets.shape[1:]), np.float32)])
    mask = np.concatenate([mask, np.zeros((pad, length), bool)])
  return {"inputs": inputs, "targets": targets, "mask": mask}


def build(config, workdir):
  del workdir
  model = build_model(config)
  splits = music.load_chorales(cache_dir=config.data.cache_dir or None)
  # Pieces need two frames to give one (input, next frame) pair.
  splits = {name: [r for r in rolls if len(r) >= 2] for name, rolls in splits.items()}
  train = splits["train"]

  def train_batch(step):
    index = training.epoch_batch_indices(len(train), config.batch_size, step,
                                                 config.seed)
    return _batch([train[i] for i in index], config.data.bucket, config.batch_size)

  def held_out(split):
    rolls = splits[split]
    if config.data.max_eval_pieces:
      rolls = rolls[:config.data.max_eval_pieces]
    # Similar lengths together: less padding and fewer shapes.
    rolls = sorted(rolls, key=len)
    size = config.data.eval_batch_size

    def batches():
      for start in range(0, len(rolls), size):
        yield _batch(rolls[start:start + size], config.data.bucket, size)

    return batches

  def loss_fn(params, batch, carry, rng, training):
    mask = batch["mask"]
    _, logits = model.apply(params, batch["inputs"], mask=mask, key=rng, training=training)
    total, count = binary_cross_entropy(logits, batch["targets"], mask)
    return total / jnp.maximum(count, 1.0), (carry, {"nll_sum": total, "count": count})

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      eval_batches={"validation": held_out("validation"), "test": held_out("test")},
      summarize=lambda s: {"nll": s["nll_sum"] / max(s["count"], 1.0)},
      tokens_per_batch=config.batch_size * 64, eval_batch_size=config.data.eval_batch_size,
      progress_metrics=("loss",))
  return task, splits


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def report(config, final, params, splits, log=print) -> None:
  # The baseline scores the predicted frames, [1:] of every piece, as the model is scored.
  baseline = music.marginal_nll(splits["train"], [r[1:] for r in splits["test"]])
  log(f"final: test NLL {final['test/nll']:.3f} nats per frame (validation "
      f"{final['validation/nll']:.3f}); per-key marginal-frequency baseline: {baseline:.3f}; "
      f"{count_params(params)} parameters")


def baseline(config) -> tuple[str, float]:
  """The per-key marginal-frequency NLL of the test frames, printed beside the results."""
  splits = music.load_chorales(cache_dir=config.data.cache_dir or None)
  return "per-key marginal frequency", music.marginal_nll(
      splits["train"], [r[1:] for r in splits["test"] if len(r) >= 2])
