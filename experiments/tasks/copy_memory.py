"""Copy memory: reproduce 10 symbols after T blanks; cross-entropy over every step."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from experiments.tasks import bodies, training
from seqjax.data import synthetic
from seqjax.losses import cross_entropy
from seqjax.models import sequence_model
from seqjax.pytree import count_params
from seqjax.train.loop import Task


def validate(config) -> None:
  training.validate(config)
  bodies.validate(config.model)
  for field in ("blank_length", "copy_length", "test_size"):
    if config.data[field] <= 0:
      raise ValueError(f"config.data.{field} must be > 0, got {config.data[field]}")


def build_model(config):
  return sequence_model(bodies.build_body(config.model), synthetic.COPY_CLASSES,
                        num_tokens=synthetic.COPY_CLASSES, readout="all")


def build(config, workdir):
  del workdir
  model = build_model(config)
  data = config.data
  length = data.blank_length + 2 * data.copy_length

  def held_out(split_seed):
    inputs, targets = synthetic.copy_memory(
        np.random.default_rng([config.seed, split_seed, data.blank_length]), data.test_size,
        data.blank_length, data.copy_length)
    return training.fixed_batches({"inputs": inputs, "targets": targets},
                                          config.batch_size)

  def train_batch(step):
    inputs, targets = synthetic.copy_memory(np.random.default_rng([config.seed, step]),
                                            config.batch_size, data.blank_length,
                                            data.copy_length)
    return {"inputs": inputs, "targets": targets,
            "weight": np.ones(config.batch_size, np.float32)}

  def loss_fn(params, batch, carry, rng, training):
    _, logits = model.apply(params, batch["inputs"], key=rng, training=training)
    steps = jnp.broadcast_to(batch["weight"][:, None], batch["targets"].shape)
    total, count = cross_entropy(logits, batch["targets"], steps)
    recall = logits[:, -data.copy_length:].argmax(-1) == batch["targets"][:, -data.copy_length:]
    correct = jnp.sum(recall.astype(jnp.float32) * batch["weight"][:, None])
    return total / count, (carry, {"nll_sum": total, "count": count,
                                   "recalled": correct,
                                   "symbols": jnp.sum(batch["weight"]) * data.copy_length})

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      eval_batches={"validation": held_out(10**9 + 1), "test": held_out(10**9 + 2)},
      summarize=lambda s: {"loss": s["nll_sum"] / max(s["count"], 1.0),
                           "recall_accuracy": s["recalled"] / max(s["symbols"], 1.0)},
      tokens_per_batch=config.batch_size * length, eval_batch_size=config.batch_size,
      progress_metrics=("loss",))
  return task, None


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def report(config, final, params, extras, log=print) -> None:
  baseline = synthetic.copy_memory_baseline(config.data.blank_length, config.data.copy_length)
  log(f"final: test loss {final['test/loss']:.3g} per step, recall accuracy "
      f"{final['test/recall_accuracy']:.3f} (validation loss {final['validation/loss']:.3g}); "
      f"memoryless baseline: {baseline:.4f}; {count_params(params)} parameters")


def baseline(config) -> tuple[str, float]:
  """The memoryless baseline the table prints beside the results."""
  return "memoryless", synthetic.copy_memory_baseline(config.data.blank_length,
                                                      config.data.copy_length)
