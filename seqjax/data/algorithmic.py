"""The Neural Turing Machine's algorithmic tasks: copy, repeat copy, associative recall.

Every generator draws a batch of sequences of random lengths and returns them
padded to one fixed length (set by the task's maximum, so a training run
compiles once), as an ``AlgorithmicBatch``: float inputs, binary targets, the
steps whose outputs are scored (``loss_mask``) and the real steps (``mask``).
Layouts follow Graves, Wayne & Danihelka 2014, section 4 (inputs carry extra
delimiter channels; outputs are scored only after the input has been shown).

References:
  Graves, Wayne & Danihelka 2014, "Neural Turing Machines",
  https://arxiv.org/abs/1410.5401
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from seqjax import checks


class AlgorithmicBatch(NamedTuple):
  """A padded batch of an algorithmic task (B sequences of T steps)."""

  inputs: np.ndarray  # (B, T, D) float32: bits and delimiter channels
  targets: np.ndarray  # (B, T, O) float32 in {0, 1}: zero where not scored
  loss_mask: np.ndarray  # (B, T) bool: the steps whose outputs are scored
  mask: np.ndarray  # (B, T) bool: real steps (False: padding after the sequence)


def _length_range(min_name: str, min_value, max_name: str, max_value) -> tuple[int, int]:
  low = checks.positive_int(min_name, min_value)
  high = checks.positive_int(max_name, max_value)
  if low > high:
    raise ValueError(f"{min_name} must be <= {max_name} = {high}, got {low}")
  return low, high


def copy_steps(max_length: int) -> int:
  """T of a ``copy`` batch: the sequence, the delimiter and the recall, ``2 max_length + 1``."""
  return 2 * checks.positive_int("max_length", max_length) + 1


def copy(rng: np.random.Generator, batch_size: int, min_length: int, max_length: int,
         width: int = 8, *, steps: int | None = None) -> AlgorithmicBatch:
  """Copy: read L random ``width``-bit vectors, then write them back after a delimiter.

  Layout of a sequence of length L (inputs D = width + 1, outputs O = width)::

    t = 0 .. L-1       inputs: the vectors (channel ``width`` off)
    t = L              inputs: the delimiter (channel ``width`` on, bits off)
    t = L+1 .. 2L      inputs: zeros; targets: the vectors; scored
    t > 2L             padding (``mask`` False)

  Args:
    rng: numpy generator.
    batch_size: B > 0.
    min_length, max_length: L is drawn uniformly from [min_length, max_length].
    width: bits per vector (> 0).
    steps: T, at least ``copy_steps(max_length)`` (default that), e.g. to
      evaluate several lengths at one shape.

  Returns:
    An ``AlgorithmicBatch`` with T = ``steps``.
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  low, high = _length_range("min_length", min_length, "max_length", max_length)
  width = checks.positive_int("width", width)
  total = copy_steps(high) if steps is None else checks.positive_int("steps", steps)
  if total < copy_steps(high):
    raise ValueError(f"steps must be >= 2 * max_length + 1 = {copy_steps(high)}, got {total}")
  lengths = rng.integers(low, high + 1, size=batch_size)
  bits = rng.integers(0, 2, size=(batch_size, high, width)).astype(np.float32)
  inputs = np.zeros((batch_size, total, width + 1), np.float32)
  targets = np.zeros((batch_size, total, width), np.float32)
  t = np.arange(total)
  length = lengths[:, None]
  reading = t[None, :] < length
  scored = (t[None, :] > length) & (t[None, :] <= 2 * length)
  rows, cols = np.nonzero(reading)
  inputs[rows, cols, :width] = bits[rows, cols]
  inputs[np.arange(batch_size), lengths, width] = 1.0
  rows, cols = np.nonzero(scored)
  targets[rows, cols] = bits[rows, cols - lengths[rows] - 1]
  return AlgorithmicBatch(inputs, targets, scored, t[None, :] <= 2 * length)


def repeat_copy_steps(max_length: int, max_repeats: int) -> int:
  """T of a ``repeat_copy`` batch: ``max_length + 1 + max_length * max_repeats + 1``."""
  length = checks.positive_int("max_length", max_length)
  return length + 2 + length * checks.positive_int("max_repeats", max_repeats)


def repeat_copy(rng: np.random.Generator, batch_size: int, min_length: int, max_length: int,
                min_repeats: int, max_repeats: int, width: int = 8, *,
                repeat_scale: int | None = None,
                steps: int | None = None) -> AlgorithmicBatch:
  """Repeat copy: read L vectors and a repeat count n, write the sequence n times, then an end mark.

  Layout (inputs D = width + 2, outputs O = width + 1)::

    t = 0 .. L-1            inputs: the vectors
    t = L                   inputs: delimiter channel ``width`` on, and
                            n / repeat_scale on channel ``width + 1``
    t = L+1 .. L+nL         targets: the vectors, n times; scored
    t = L+nL+1              targets: the end mark (channel ``width`` on); scored
    later                   padding

  Args:
    rng: numpy generator.
    batch_size: B > 0.
    min_length, max_length: L drawn uniformly from [min_length, max_length].
    min_repeats, max_repeats: n drawn uniformly from [min_repeats, max_repeats].
    width: bits per vector.
    repeat_scale: the count is shown as n / repeat_scale (default
      ``max_repeats``; keep it fixed across a curriculum so that a count
      means the same input throughout).
    steps: T, at least ``repeat_copy_steps(max_length, max_repeats)``.

  Returns:
    An ``AlgorithmicBatch``.
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  low, high = _length_range("min_length", min_length, "max_length", max_length)
  r_low, r_high = _length_range("min_repeats", min_repeats, "max_repeats", max_repeats)
  width = checks.positive_int("width", width)
  scale = r_high if repeat_scale is None else checks.positive_int("repeat_scale", repeat_scale)
  needed = repeat_copy_steps(high, r_high)
  total = needed if steps is None else checks.positive_int("steps", steps)
  if total < needed:
    raise ValueError(f"steps must be >= max_length + 2 + max_length * max_repeats = {needed}, "
                     f"got {total}")
  lengths = rng.integers(low, high + 1, size=batch_size)
  repeats = rng.integers(r_low, r_high + 1, size=batch_size)
  bits = rng.integers(0, 2, size=(batch_size, high, width)).astype(np.float32)
  inputs = np.zeros((batch_size, total, width + 2), np.float32)
  targets = np.zeros((batch_size, total, width + 1), np.float32)
  t = np.arange(total)[None, :]
  length, n = lengths[:, None], repeats[:, None]
  rows, cols = np.nonzero(t < length)
  inputs[rows, cols, :width] = bits[rows, cols]
  rows = np.arange(batch_size)
  inputs[rows, lengths, width] = 1.0
  inputs[rows, lengths, width + 1] = repeats / scale
  copying = (t > length) & (t <= length + n * length)
  r, c = np.nonzero(copying)
  targets[r, c, :width] = bits[r, (c - lengths[r] - 1) % lengths[r]]
  end = lengths + repeats * lengths + 1
  targets[rows, end, width] = 1.0
  scored = copying | (t == end[:, None])
  return AlgorithmicBatch(inputs, targets, scored, t <= end[:, None])


def associative_recall_steps(max_items: int, item_length: int = 3) -> int:
  """T of an ``associative_recall`` batch: ``(max_items + 2) (item_length + 1) + item_length - 1``."""
  items = checks.positive_int("max_items", max_items)
  item = checks.positive_int("item_length", item_length)
  return items * (item + 1) + 2 * (item + 1) + item - 1


def associative_recall(rng: np.random.Generator, batch_size: int, min_items: int, max_items: int,
                       item_length: int = 3, width: int = 6, *,
                       steps: int | None = None) -> AlgorithmicBatch:
  """Associative recall: after k items, one of them is shown again; output the item that followed it.

  An item is ``item_length`` random ``width``-bit vectors. Layout (inputs
  D = width + 2, outputs O = width; a = item_length + 1)::

    t = a i                     inputs: item delimiter (channel ``width``), i < k
    t = a i + 1 .. a i + a - 1  inputs: item i's vectors
    t = a k                     inputs: query delimiter (channel ``width + 1``)
    t = a k + 1 .. a k + a - 1  inputs: item q (q < k - 1), the query
    t = a (k + 1)               inputs: query delimiter again
    t = a (k + 1) + 1 .. + a - 1  targets: item q + 1's vectors; scored
    later                       padding

  Args:
    rng: numpy generator.
    batch_size: B > 0.
    min_items, max_items: k drawn uniformly from [min_items, max_items];
      min_items >= 2 (the query's successor must exist).
    item_length: vectors per item.
    width: bits per vector.
    steps: T, at least ``associative_recall_steps(max_items, item_length)``.

  Returns:
    An ``AlgorithmicBatch``.
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  low, high = _length_range("min_items", min_items, "max_items", max_items)
  if low < 2:
    raise ValueError(f"min_items must be >= 2 (the queried item needs a successor), got {low}")
  item = checks.positive_int("item_length", item_length)
  width = checks.positive_int("width", width)
  needed = associative_recall_steps(high, item)
  total = needed if steps is None else checks.positive_int("steps", steps)
  if total < needed:
    raise ValueError(f"steps must be >= {needed} for max_items={high}, got {total}")
  a = item + 1
  counts = rng.integers(low, high + 1, size=batch_size)
  queries = rng.integers(0, counts - 1)
  items = rng.integers(0, 2, size=(batch_size, high, item, width)).astype(np.float32)
  inputs = np.zeros((batch_size, total, width + 2), np.float32)
  targets = np.zeros((batch_size, total, width), np.float32)
  loss_mask = np.zeros((batch_size, total), bool)
  mask = np.zeros((batch_size, total), bool)
  for b in range(batch_size):
    k, q = counts[b], queries[b]
    for i in range(k):
      inputs[b, a * i, width] = 1.0
      inputs[b, a * i + 1:a * i + a, :width] = items[b, i]
    inputs[b, a * k, width + 1] = 1.0
    inputs[b, a * k + 1:a * k + a, :width] = items[b, q]
    inputs[b, a * (k + 1), width + 1] = 1.0
    start = a * (k + 1) + 1
    targets[b, start:start + item] = items[b, q + 1]
    loss_mask[b, start:start + item] = True
    mask[b, :start + item] = True
  return AlgorithmicBatch(inputs, targets, loss_mask, mask)


def bit_errors(logits: np.ndarray, targets: np.ndarray, loss_mask: np.ndarray) -> np.ndarray:
  """Wrong bits per sequence: outputs thresholded at logit 0, counted on scored steps.

  Args:
    logits: (B, T, O).
    targets: (B, T, O) in {0, 1}.
    loss_mask: (B, T) booleans, the scored steps.

  Returns:
    (B,) counts (float).
  """
  wrong = (np.asarray(logits) > 0) != (np.asarray(targets) > 0.5)
  return np.sum(wrong * np.asarray(loss_mask)[..., None], axis=(-2, -1)).astype(np.float64)
