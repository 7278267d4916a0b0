"""What the tasks trained by gradient descent share: the loop's config checks, ``run``, batching.

A trained task writes ``build(config, workdir) -> (seqjax.train.loop.Task,
extras)`` and ``report(config, final, params, extras, log)``, and its ``run``
is ``training.run(config, workdir, build, report, log)``; its ``validate``
starts with ``training.validate(config)``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.train import loop, optim


def positive_ints(config, *fields: str) -> None:
  """Raises ValueError naming the first of ``fields`` whose value is not an int > 0.

  Fields are dotted paths into ``config`` (e.g. ``"data.steps"``); bools are refused.
  """
  for field in fields:
    value = config
    for part in field.split("."):
      value = value[part]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.{field} must be a positive integer, got {value!r}")


def classification_loss(logits, targets, weight):
  """Weighted softmax cross-entropy and accuracy: ``(mean nll, metrics)`` for a loss_fn.

  Args:
    logits: (..., C) scores.
    targets: (...) int class ids.
    weight: (...) float, 0 where a row is padding (any logits and targets there).

  Returns:
    ``(sum(w nll) / sum(w), {"nll_sum", "count", "correct", "accuracy"})``;
    ``summarize_classification`` turns the metrics summed over batches into
    the loss and accuracy of a whole evaluation set.
  """
  nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]
  total, count = jnp.sum(nll * weight), jnp.sum(weight)
  correct = jnp.sum((jnp.argmax(logits, -1) == targets).astype(weight.dtype) * weight)
  return total / jnp.maximum(count, 1.0), {"nll_sum": total, "count": count, "correct": correct,
                                           "accuracy": correct / jnp.maximum(count, 1.0)}


def summarize_classification(sums: dict) -> dict:
  """Loss and accuracy from ``classification_loss``'s metrics summed over batches."""
  return {"loss": sums["nll_sum"] / max(sums["count"], 1.0),
          "accuracy": sums["correct"] / max(sums["count"], 1.0)}


def stack_per_device(parts: list[dict]) -> dict:
  """One batch from one padded sub-batch per device: each array gains a leading axis.

  The tasks whose batches are not rows (tree and graph batches, padded as a
  whole) give the loop's data-parallel sharding whole sub-batches to split.
  """
  return {k: np.stack([p[k] for p in parts]) for k in parts[0]}


def validate(config) -> None:
  """Checks the fields ``seqjax.train.loop.train_and_evaluate`` reads; ValueError names one."""
  positive_ints(config, "batch_size", "num_steps", "log_every", "checkpoint_every",
                "keep_checkpoints")
  if config.eval_every < 0:
    raise ValueError(f"config.eval_every must be >= 0 (0: only at the end), got {config.eval_every}")
  if config.time_limit_minutes < 0:
    raise ValueError(f"config.time_limit_minutes must be >= 0, got {config.time_limit_minutes}")
  loop.parse_stop_when(config.get("stop_when", ""))
  if config.get("select_best", ""):
    loop.parse_select_best(config.select_best)
  # Builds (and so validates) the optimiser before any data is loaded.
  optim.make_optimizer(config.optimizer, config.num_steps)


def run(config, workdir, build: Callable[..., tuple[loop.Task, Any]],
        report: Callable[..., None], log: Callable[[str], Any] = print) -> dict[str, float]:
  """Builds the task, trains it (resuming from ``workdir``) and reports the final figures.

  Returns:
    The final evaluation, ``{"<split>/<metric>": value}``; empty when a
    signal stopped the run (then nothing is reported).
  """
  task, extras = build(config, workdir)
  final, params = loop.train_and_evaluate(config, workdir, task, log=log)
  if final:
    report(config, final, params, extras, log=log)
  return final


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


def length_sorted_epoch(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                        window_batches: int = 50) -> np.ndarray:
  """Batches of similar length for one epoch: ``(batches, batch_size)`` example indices.

  The examples are shuffled (seeded by ``seed, epoch``), sorted by length
  within windows of ``window_batches`` batches, cut into batches (a partial
  last batch is dropped), and the batches' order shuffled again: padding is
  small and the order still random.

  Args:
    lengths: (N,) each example's length.
    batch_size: rows per batch.
    seed: the run's seed; epoch: the epoch (both seed the shuffles).
    window_batches: how many batches are sorted by length together.
  """
  n = len(lengths)
  per_epoch = n // batch_size
  order = np.random.default_rng([seed, epoch]).permutation(n)
  window = window_batches * batch_size
  chunks = [c[np.argsort(lengths[c], kind="stable")]
            for c in np.split(order, range(window, n, window))]
  order = np.concatenate(chunks)[:per_epoch * batch_size].reshape(per_epoch, -1)
  return order[np.random.default_rng([seed, epoch, 1]).permutation(per_epoch)]


def padded_lengths(buckets, longest: int) -> tuple[int, ...]:
  """The bucket widths below ``longest``, sorted and distinct, then ``longest``.

  Args:
    buckets: the configured widths (any order, repeats allowed).
    longest: the widest padding, always the last width.
  """
  return tuple(sorted(set(b for b in buckets if b < longest))) + (longest,)
