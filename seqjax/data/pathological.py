"""The pathological long-memory problems, as Pascanu, Mikolov & Bengio (2013) ran them.

Hochreiter & Schmidhuber (1997) posed these problems to show what a plain
recurrent net trained by gradient descent cannot learn: the output depends on
inputs far back, separated from it by many distractor steps. Martens &
Sutskever (2011) and Pascanu, Mikolov & Bengio (2013, "On the difficulty of
training recurrent neural networks", https://arxiv.org/abs/1211.5063) use six
of them to measure how far back an RNN learns to look. The definitions here
follow Pascanu et al.'s reference code (https://github.com/pascanur/trainingRNNs,
files ``tempOrder.py``, ``tempOrder3bit.py``, ``addition.py``,
``multiplication.py``, ``permutation.py``, ``memorization.py`` and the
evaluation in ``RNN.py``); where this module differs (channel order, class
numbering) the function says so.

Every generator is ``f(rng, batch_size, length) -> (inputs, targets)``: a
``numpy.random.Generator`` in, so a batch is a deterministic function of the
seed; ``inputs`` (B, T, D) float32, batch-major; ``targets`` one per sequence
(read from the last step's output) or, for memorization, one per step.
``SPECS[name]`` says what a model must output and how it is scored
(``error_rate``, ``solved``).

Success criterion (the paper's, for every task): a run has solved a task when
its error rate on a held-out batch of ``TEST_BATCH = 10000`` sequences is
below ``SUCCESS_ERROR = 1%``, where a sequence counts as wrong when

* classification at the last step (temporal order, 3-bit temporal order,
  random permutation): the arg-max class differs from the label;
* regression at the last step (adding, multiplication): the squared error
  exceeds ``REGRESSION_TOLERANCE = 0.04``;
* memorization: the arg-max class is wrong at any step of the sequence.

(The reference training script only stops once the held-out error is
essentially zero, below 1e-4 %.)

Training in the paper draws a new batch every step, with the length drawn per
batch between 50 and 200; a length drawn by the caller passes as ``length``.

References:
  Hochreiter & Schmidhuber 1997, "Long short-term memory", Neural
  Computation 9(8), experiments 4-6.
  Martens & Sutskever 2011, "Learning recurrent neural networks with
  Hessian-free optimization", ICML.
  Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
  neural networks", ICML, https://arxiv.org/abs/1211.5063
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from seqjax import checks

#: Temporal order symbols (one-hot channels): the relevant X and Y, then the
#: distractors a, b, c, d (channels 2..5).
X, Y = 0, 1
DISTRACTORS = (2, 3, 4, 5)
TEMPORAL_ORDER_SYMBOLS = 6

#: Random permutation: 100 symbols; the first step holds 0 or 1, the others 2..99.
PERMUTATION_SYMBOLS = 100

#: Held-out batch size, error threshold and squared-error tolerance of the
#: paper's success criterion (see the module docstring).
TEST_BATCH = 10000
SUCCESS_ERROR = 0.01
REGRESSION_TOLERANCE = 0.04


class TaskSpec(NamedTuple):
  """What a pathological task gives a model and how its outputs are scored."""

  input_size: int  # D, the inputs' feature size
  output: str  # "classes" (targets are int32 class ids) or "regression" (float32)
  output_size: int  # K classes, or 1 for regression
  targets_at: str  # "last": targets (B,) for the last step; "every": (B, T_total) per step
  loss: str  # "cross_entropy" (softmax over K) or "squared_error"
  wrong: str  # when a sequence counts as an error in ``error_rate``


def _check_batch_and_length(batch_size: Any, length: Any, minimum: int,
                            why: str) -> tuple[int, int]:
  batch_size = checks.positive_int("batch_size", batch_size)
  length = checks.positive_int("length", length)
  if length < minimum:
    raise ValueError(f"length must be >= {minimum} ({why}), got {length}")
  return batch_size, length


def _one_hot(symbols: np.ndarray, size: int) -> np.ndarray:
  return np.eye(size, dtype=np.float32)[symbols]


def _temporal_order(rng: np.random.Generator, batch_size: Any, length: Any,
                    starts: Callable[[int], tuple[int, ...]]
                    ) -> tuple[np.ndarray, np.ndarray]:
  batch_size, length = _check_batch_and_length(
      batch_size, length, 10, "windows of length // 10 steps must not be empty")
  width = length // 10
  window_starts = np.asarray(starts(length))
  num_relevant = len(window_starts)
  symbols = rng.integers(DISTRACTORS[0], DISTRACTORS[-1] + 1, size=(batch_size, length))
  relevant = rng.integers(0, 2, size=(batch_size, num_relevant))  # X = 0, Y = 1
  positions = window_starts + rng.integers(0, width, size=(batch_size, num_relevant))
  np.put_along_axis(symbols, positions, relevant, axis=1)
  labels = relevant @ (2 ** np.arange(num_relevant - 1, -1, -1))
  return _one_hot(symbols, TEMPORAL_ORDER_SYMBOLS), labels.astype(np.int32)


def temporal_order(rng: np.random.Generator, batch_size: int, length: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the temporal order problem (Hochreiter & Schmidhuber's 6a).

  Each step is one of 6 symbols, one-hot: X (channel 0), Y (1) and the
  distractors a, b, c, d (2..5). Two steps hold a relevant symbol, X or Y
  with probability 1/2 each: the first at a uniform position in
  ``[w, 2w)``, the second in ``[T//2, T//2 + w)``, with ``w = T // 10``; every
  other step is a uniform distractor. The label, read at the last step, is
  the order of the two relevant symbols: 0 = XX, 1 = XY, 2 = YX, 3 = YY (the
  relevant symbols read as a binary number, X = 0, Y = 1, first symbol most
  significant; the reference code numbers them with the first symbol as the
  low bit, a relabelling).

  Loss: cross-entropy over 4 classes at the last step. Success: less than 1%
  of a held-out batch of 10000 misclassified.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    length: T, >= 10 (so that the windows are not empty).

  Returns:
    ``(inputs (B, T, 6) float32, labels (B,) int32 in [0, 4))``.
  """
  return _temporal_order(rng, batch_size, length, lambda t: (t // 10, t // 2))


def temporal_order_3bit(rng: np.random.Generator, batch_size: int, length: int
                        ) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the 3-bit temporal order problem (Hochreiter & Schmidhuber's 6b).

  As ``temporal_order`` with three relevant symbols, at uniform positions in
  ``[w, 2w)``, ``[3T//10, 3T//10 + w)`` and ``[6T//10, 6T//10 + w)``
  (``w = T // 10``). The label is their order among the 8 possibilities:
  0 = XXX, 1 = XXY, 2 = XYX, ..., 7 = YYY (X = 0, Y = 1, first symbol most
  significant).

  Loss: cross-entropy over 8 classes at the last step. Success: less than 1%
  of a held-out batch of 10000 misclassified.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    length: T, >= 10.

  Returns:
    ``(inputs (B, T, 6) float32, labels (B,) int32 in [0, 8))``.
  """
  return _temporal_order(rng, batch_size, length,
                         lambda t: (t // 10, 3 * t // 10, 6 * t // 10))


def _two_marked_values(rng: np.random.Generator, batch_size: Any, length: Any
                       ) -> tuple[np.ndarray, np.ndarray]:
  """``(inputs (B, T, 2), the two marked values (B, 2))`` of adding and multiplication."""
  batch_size, length = _check_batch_and_length(
      batch_size, length, 10, "the first marker lies in the first length // 10 steps")
  width = length // 10
  values = rng.random((batch_size, length), dtype=np.float32)
  first = rng.integers(0, width, size=batch_size)
  second = width + rng.integers(0, 4 * length // 10, size=batch_size)
  marked = np.stack([first, second], axis=1)
  markers = np.zeros((batch_size, length), np.float32)
  np.put_along_axis(markers, marked, 1.0, axis=1)
  return (np.stack([values, markers], axis=-1),
          np.take_along_axis(values, marked, axis=1))


def adding(rng: np.random.Generator, batch_size: int, length: int
           ) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the adding problem in Pascanu et al.'s variant.

  Two channels: values ``u_t ~ U(0, 1)`` at every step (channel 0) and a
  marker (channel 1) that is 1 at exactly two steps and 0 elsewhere: the
  first uniform in ``[0, w)``, the second uniform in ``[w, w + 4T//10)``
  (``w = T // 10``; so one near the start, one in the first half). The
  target, read at the last step, is the *mean* of the two marked values,
  ``(u_i + u_j) / 2``.

  This differs from ``seqjax.data.synthetic.adding_problem`` (Bai et al.
  2018), which puts both markers anywhere in the sequence and targets the sum;
  the channel order is the same (values, markers), where the reference code
  has the marker in channel 0. The reference also draws each batch's length
  uniformly from ``[T, T + T//10)``; draw it yourself and pass it as
  ``length`` to do the same.

  Loss: squared error at the last step. Success: less than 1% of a held-out
  batch of 10000 with squared error above 0.04.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    length: T, >= 10.

  Returns:
    ``(inputs (B, T, 2) float32, targets (B,) float32)``.
  """
  inputs, marked = _two_marked_values(rng, batch_size, length)
  return inputs, (marked.sum(axis=1) / 2).astype(np.float32)


def multiplication(rng: np.random.Generator, batch_size: int, length: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the multiplication problem: ``adding`` with the product as target.

  Inputs exactly as ``adding`` (values, markers at one step in ``[0, w)`` and
  one in ``[w, w + 4T//10)``); the target, read at the last step, is
  ``u_i * u_j``.

  Loss: squared error at the last step. Success: less than 1% of a held-out
  batch of 10000 with squared error above 0.04.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    length: T, >= 10.

  Returns:
    ``(inputs (B, T, 2) float32, targets (B,) float32)``.
  """
  inputs, marked = _two_marked_values(rng, batch_size, length)
  return inputs, marked.prod(axis=1).astype(np.float32)


def random_permutation(rng: np.random.Generator, batch_size: int, length: int
                       ) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the random permutation problem.

  A sequence of T symbols out of 100, one-hot: the first is 0 or 1 (with
  probability 1/2 each), the other T - 1 are uniform over 2..99. The label,
  read at the last step, is the first symbol. (In the paper's words: next
  symbol prediction on a sequence whose first and (T+1)-th symbols agree, of
  which only the last prediction is scored.)

  Loss: cross-entropy over 100 classes at the last step. Success: less than
  1% of a held-out batch of 10000 misclassified.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    length: T, >= 2 (at least one random symbol).

  Returns:
    ``(inputs (B, T, 100) float32, labels (B,) int32 in {0, 1})``.
  """
  batch_size, length = _check_batch_and_length(
      batch_size, length, 2, "the first symbol and at least one random one")
  symbols = rng.integers(2, PERMUTATION_SYMBOLS, size=(batch_size, length))
  symbols[:, 0] = rng.integers(0, 2, size=batch_size)
  return _one_hot(symbols, PERMUTATION_SYMBOLS), symbols[:, 0].astype(np.int32)


def noiseless_memorization(rng: np.random.Generator, batch_size: int, length: int, *,
                           pattern_length: int = 5, num_values: int = 2
                           ) -> tuple[np.ndarray, np.ndarray]:
  """A batch of the noiseless memorization problem.

  With P = ``pattern_length``, V = ``num_values`` and T = ``length``, every
  sequence has ``T + 2P`` steps and ``V + 2`` one-hot input channels (the
  values 0..V-1, blank V, go V+1):

  * steps ``0 .. P-1``: the pattern, P values uniform over 0..V-1;
  * steps ``P .. P+T-1``: blank (T steps to bridge);
  * step ``P+T``: the go signal;
  * steps ``P+T+1 .. T+2P-1``: blank.

  Targets are classes at *every* step, over ``V + 1`` classes (the values
  and V = "nothing"): V up to step ``P+T-1``, then the pattern in order at
  steps ``P+T .. T+2P-1`` (the first value at the go step itself). The
  defaults are the binary 5-bit pattern of Hochreiter & Schmidhuber as in the
  paper; ``pattern_length=10, num_values=5`` is Martens & Sutskever's harder
  version (and the reference code's default).

  Loss: cross-entropy over V + 1 classes at every step (the reference code
  averages it over all steps). Success: less than 1% of a held-out batch of
  10000 with any step wrong. Only the recall is informative: score
  ``targets[:, -P:]`` for the pattern alone.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    length: T, the number of blank steps between pattern and go, > 0.
    pattern_length: P, > 0.
    num_values: V, >= 2.

  Returns:
    ``(inputs (B, T + 2P, V + 2) float32, targets (B, T + 2P) int32 in
    [0, V]``.
  """
  batch_size, length = _check_batch_and_length(batch_size, length, 1, "blank steps")
  pattern_length = checks.positive_int("pattern_length", pattern_length)
  num_values = checks.positive_int("num_values", num_values)
  if num_values < 2:
    raise ValueError(f"num_values must be >= 2, got {num_values}")
  blank, go = num_values, num_values + 1
  total = length + 2 * pattern_length
  pattern = rng.integers(0, num_values, size=(batch_size, pattern_length))
  symbols = np.full((batch_size, total), blank)
  symbols[:, :pattern_length] = pattern
  symbols[:, pattern_length + length] = go
  targets = np.full((batch_size, total), blank, np.int32)
  targets[:, -pattern_length:] = pattern
  return _one_hot(symbols, num_values + 2), targets


#: The generators by name: ``TASKS[name](rng, batch_size, length)``.
TASKS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "temporal_order": temporal_order,
    "temporal_order_3bit": temporal_order_3bit,
    "adding": adding,
    "multiplication": multiplication,
    "random_permutation": random_permutation,
    "noiseless_memorization": noiseless_memorization,
}

_ARGMAX_LAST = "the arg-max class at the last step differs from the label"
_SQUARED = f"the squared error at the last step exceeds {REGRESSION_TOLERANCE}"

#: What each task gives and asks (``noiseless_memorization`` at its default
#: arguments: D = V + 2 and K = V + 1 in general).
SPECS: dict[str, TaskSpec] = {
    "temporal_order": TaskSpec(6, "classes", 4, "last", "cross_entropy", _ARGMAX_LAST),
    "temporal_order_3bit": TaskSpec(6, "classes", 8, "last", "cross_entropy", _ARGMAX_LAST),
    "adding": TaskSpec(2, "regression", 1, "last", "squared_error", _SQUARED),
    "multiplication": TaskSpec(2, "regression", 1, "last", "squared_error", _SQUARED),
    "random_permutation": TaskSpec(PERMUTATION_SYMBOLS, "classes", PERMUTATION_SYMBOLS,
                                   "last", "cross_entropy", _ARGMAX_LAST),
    "noiseless_memorization": TaskSpec(4, "classes", 3, "every", "cross_entropy",
                                       "the arg-max class is wrong at any step"),
}


def error_rate(task: str, outputs: Any, targets: Any) -> float:
  """The fraction of sequences a model gets wrong, by the paper's rule for ``task``.

  Args:
    task: a name in ``TASKS``.
    outputs: the model's outputs: logits or probabilities (B, K) at the last
      step for the classification tasks, (B, T_total, K) at every step for
      memorization; predictions (B,) or (B, 1) for adding and multiplication.
    targets: the targets the generator returned, (B,) or (B, T_total).

  Returns:
    The error rate in [0, 1]; the task is solved when it is below
    ``SUCCESS_ERROR`` on ``TEST_BATCH`` held-out sequences.
  """
  checks.one_of("task", task, tuple(TASKS))
  spec = SPECS[task]
  outputs, targets = np.asarray(outputs), np.asarray(targets)
  if spec.output == "regression":
    if outputs.ndim == 2 and outputs.shape[-1] == 1:
      outputs = outputs[:, 0]
    if outputs.shape != targets.shape:
      raise ValueError(f"outputs must have shape {targets.shape} (or with a trailing 1), "
                       f"got {outputs.shape}")
    return float(np.mean((outputs - targets) ** 2 > REGRESSION_TOLERANCE))
  if outputs.shape[:-1] != targets.shape:
    raise ValueError(f"outputs must have shape {targets.shape + ('K',)} (class scores), "
                     f"got {outputs.shape}")
  wrong = np.argmax(outputs, axis=-1) != targets
  if wrong.ndim == 2:  # per-step targets: one wrong step fails the sequence
    wrong = wrong.any(axis=1)
  return float(np.mean(wrong))


def solved(task: str, outputs: Any, targets: Any) -> bool:
  """Whether ``error_rate(task, outputs, targets) < SUCCESS_ERROR`` (the paper's success).

  Args:
    task: a name in ``TASKS``.
    outputs: as for ``error_rate``.
    targets: as for ``error_rate``.
  """
  return error_rate(task, outputs, targets) < SUCCESS_ERROR
