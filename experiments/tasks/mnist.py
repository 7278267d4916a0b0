"""Sequential and permuted MNIST: classify a digit from its 784 pixels read one at a time."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from experiments.datasets import mnist
from experiments.tasks import bodies, training
from seqjax.losses import cross_entropy
from seqjax.models import sequence_model
from seqjax.pytree import count_params
from seqjax.train.loop import Task

# The reference implementation's normalisation (torchvision's MNIST mean and std).
MEAN, STD = 0.1307, 0.3081


def validate(config) -> None:
  training.validate(config)
  bodies.validate(config.model)
  if config.data.pixel_stride <= 0:
    raise ValueError(f"config.data.pixel_stride must be > 0, got {config.data.pixel_stride}")
  if config.data.eval_size < 0:
    raise ValueError(f"config.data.eval_size must be >= 0 (0: whole split), "
                     f"got {config.data.eval_size}")


def build_model(config):
  return sequence_model(bodies.build_body(config.model), 10, input_size=1,
                        readout="last")


def _sequences(images, config):
  permutation = (mnist.pixel_permutation(config.data.permutation_seed)
                 if config.data.permute else None)
  pixels = mnist.pixel_sequences(images, permutation=permutation)[:, ::config.data.pixel_stride]
  return (pixels - MEAN) / STD


def build(config, workdir):
  del workdir
  model = build_model(config)
  train_images, train_labels = mnist.load_mnist("train")
  train_x = _sequences(train_images, config).astype(np.float32)

  def held_out(split):
    images, labels = mnist.load_mnist(split)
    if config.data.eval_size:
      images, labels = images[:config.data.eval_size], labels[:config.data.eval_size]
    return training.fixed_batches(
        {"inputs": _sequences(images, config).astype(np.float32), "labels": labels},
        config.data.eval_batch_size)

  def train_batch(step):
    index = training.epoch_batch_indices(len(train_labels), config.batch_size, step,
                                                 config.seed)
    return {"inputs": train_x[index], "labels": train_labels[index],
            "weight": np.ones(config.batch_size, np.float32)}

  def loss_fn(params, batch, carry, rng, training):
    _, logits = model.apply(params, batch["inputs"], key=rng, training=training)
    weight = batch["weight"]
    total, count = cross_entropy(logits[:, None], batch["labels"][:, None], weight[:, None])
    correct = jnp.sum(weight * (logits.argmax(-1) == batch["labels"]).astype(jnp.float32))
    return total / count, (carry, {"nll_sum": total, "correct": correct, "count": count})

  task = Task(
      init_params=model.init, init_carry=None, loss_fn=loss_fn, train_batch=train_batch,
      eval_batches={"validation": held_out("validation"), "test": held_out("test")},
      summarize=lambda s: {"loss": s["nll_sum"] / max(s["count"], 1.0),
                           "accuracy": s["correct"] / max(s["count"], 1.0)},
      tokens_per_batch=config.batch_size * train_x.shape[1], eval_batch_size=config.data.eval_batch_size,
      progress_metrics=("loss",))
  return task, None


def run(config, workdir, log=print) -> dict:
  """Trains and evaluates (see ``experiments.tasks``)."""
  return training.run(config, workdir, build, report, log)


def report(config, final, params, extras, log=print) -> None:
  name = "permuted" if config.data.permute else "sequential"
  log(f"final: {name} MNIST test accuracy {final['test/accuracy']:.4f} (validation "
      f"{final['validation/accuracy']:.4f}); chance 0.1; {count_params(params)} parameters")


def baseline(config) -> tuple[str, float]:
  """Chance accuracy, printed beside the results."""
  return "chance", 0.1
