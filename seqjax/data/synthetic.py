"""Synthetic long-memory tasks: the adding problem and copy memory.

Both as defined by Bai, Kolter & Koltun (2018) and their reference
implementation (https://github.com/locuslab/TCN), after Hochreiter &
Schmidhuber (1997) and Arjovsky et al. (2016). Generators are numpy functions
of a ``numpy.random.Generator``, so a batch is a deterministic function of its
seed (training batches are drawn from ``seed, step``; test sets from a seed of
their own).
"""

from __future__ import annotations

import math

import numpy as np

from seqjax import checks


def adding_problem(rng: np.random.Generator, batch_size: int, length: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the adding problem.

  Each sequence has two channels: values ``u_t ~ U(0, 1)`` and a marker that is
  1 at exactly two distinct, uniformly chosen steps and 0 elsewhere. The target
  is the sum of the two marked values, read from the last output.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    length: T, >= 2.

  Returns:
    ``(inputs (B, T, 2) float32, targets (B,) float32)``; channel 0 holds the
    values, channel 1 the markers.
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  length = checks.positive_int("length", length)
  if length < 2:
    raise ValueError(f"length must be >= 2 (two marked steps), got {length}")
  values = rng.random((batch_size, length), dtype=np.float32)
  # Two distinct positions per row: the first two of a random permutation.
  marked = np.argsort(rng.random((batch_size, length)), axis=1)[:, :2]
  markers = np.zeros((batch_size, length), np.float32)
  np.put_along_axis(markers, marked, 1.0, axis=1)
  targets = np.take_along_axis(values, marked, axis=1).sum(axis=1)
  return np.stack([values, markers], axis=-1), targets.astype(np.float32)


#: Test MSE of always predicting the mean target 1: Var(u + v) = 2/12.
ADDING_TRIVIAL_MSE = 1.0 / 6.0

#: Copy memory's tokens: 0 blank, 1..8 symbols, 9 the delimiter (and the
#: "now recall" filler after it).
COPY_BLANK, COPY_DELIMITER, COPY_CLASSES = 0, 9, 10


def copy_memory(rng: np.random.Generator, batch_size: int, blank_length: int,
                copy_length: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the copy-memory task.

  Input (length ``T + 2 * copy_length``, with ``T = blank_length``): ``copy_length``
  symbols drawn uniformly from 1..8, ``T - 1`` blanks (0), then the delimiter
  9 repeated ``copy_length + 1`` times (the first marks "recall now"). Target:
  blanks everywhere except the last ``copy_length`` steps, which must reproduce
  the symbols in order. Loss: cross-entropy over all steps and 10 classes.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    blank_length: T, > 0 (1000 in the paper's headline task).
    copy_length: symbols to remember, > 0.

  Returns:
    ``(inputs (B, T + 2 copy_length) int32, targets (B, T + 2 copy_length) int32)``,
    token ids in ``[0, 10)``.
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  blank_length = checks.positive_int("blank_length", blank_length)
  copy_length = checks.positive_int("copy_length", copy_length)
  symbols = rng.integers(1, 9, size=(batch_size, copy_length), dtype=np.int32)
  total = blank_length + 2 * copy_length
  inputs = np.zeros((batch_size, total), np.int32)
  inputs[:, :copy_length] = symbols
  inputs[:, copy_length + blank_length - 1:] = COPY_DELIMITER
  targets = np.zeros((batch_size, total), np.int32)
  targets[:, -copy_length:] = symbols
  return inputs, targets


def copy_memory_baseline(blank_length: int, copy_length: int = 10) -> float:
  """Cross-entropy per step of the best memoryless strategy: ``c ln 8 / (T + 2c)``.

  Predict a blank until the recall phase, then a uniform guess over the 8
  symbols (the Table 1 LSTM of Bai et al. sits at this value for T=1000).

  Args:
    blank_length: T, as for ``copy_memory``.
    copy_length: c, the number of symbols to remember, as for ``copy_memory``.
  """
  return copy_length * math.log(8) / (blank_length + 2 * copy_length)
