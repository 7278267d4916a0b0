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
from typing import Any, NamedTuple, Sequence

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


# ---------------------------------------------------------------------------
# Sequence-to-sequence tasks for encoder-decoder models: addition, reversal,
# sorting. Every sequence ends with EOS and is padded with PAD after it;
# neither source nor target holds BOS. A decoder is fed BOS as its first input
# and then the target shifted right by one (``decoder_inputs``), so it predicts
# ``target[:, t]`` from ``BOS, target[:, :t]``; the loss mask is
# ``arange(U) < target_lengths[:, None]`` (EOS included, PAD excluded). Widths
# depend only on the task's arguments (``max_lengths``), never on the batch
# drawn, so a jitted step compiles once.
# ---------------------------------------------------------------------------


class Seq2SeqTokens(NamedTuple):
  """The character vocabulary of the sequence-to-sequence tasks.

  Ids: ``pad`` 0, ``bos`` 1, ``eos`` 2, then ``chars`` in order from 3
  (digits ``'0'..'9'`` are 3..12, ``'+'`` is 13).

  Attributes:
    pad: id of the padding after EOS (also the masked-out positions).
    bos: id of the decoder's first input; never stored in a batch.
    eos: id that ends every source and target sequence.
    chars: the characters of ids ``first_char, first_char + 1, ...``.
  """
  pad: int = 0
  bos: int = 1
  eos: int = 2
  chars: str = "0123456789+"

  @property
  def first_char(self) -> int:
    """Id of ``chars[0]`` (the digit 0)."""
    return 3

  @property
  def size(self) -> int:
    """Number of ids, the model's input and output vocabulary size."""
    return self.first_char + len(self.chars)

  def id_of(self, char: str) -> int:
    """Id of one character of ``chars``; ValueError naming ``char`` otherwise."""
    index = self.chars.find(char) if isinstance(char, str) and len(char) == 1 else -1
    if index < 0:
      raise ValueError(f"char must be one of {self.chars!r}, got {char!r}")
    return self.first_char + index


#: The vocabulary of ``addition``, ``reversal`` and ``sorting`` (size 14).
SEQ2SEQ_TOKENS = Seq2SeqTokens()

_DIGIT0 = SEQ2SEQ_TOKENS.id_of("0")
_PLUS = SEQ2SEQ_TOKENS.id_of("+")


class Seq2SeqBatch(NamedTuple):
  """A batch of a sequence-to-sequence task (ids of ``SEQ2SEQ_TOKENS``).

  Attributes:
    source: ``(B, S) int32``, the encoder's input: characters, EOS, then PAD;
      no BOS.
    source_lengths: ``(B,) int32``, characters + 1 (the EOS), so
      ``source[b, source_lengths[b] - 1] == EOS``.
    target: ``(B, U) int32``, the decoder's output: characters, EOS, then PAD;
      no BOS (a decoder's inputs are ``decoder_inputs(target)``, BOS first).
    target_lengths: ``(B,) int32``, characters + 1 (the EOS).
  """
  source: np.ndarray
  source_lengths: np.ndarray
  target: np.ndarray
  target_lengths: np.ndarray


def encode_chars(strings: Sequence[str], length: int
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Strings as rows of ``SEQ2SEQ_TOKENS`` ids, each ended by EOS and padded.

  Args:
    strings: B strings of characters of ``SEQ2SEQ_TOKENS.chars`` (a list, not
      one ``str``).
    length: L, the row width, > 0; every string needs ``len(s) + 1 <= L``.

  Returns:
    ``(ids (B, L) int32, lengths (B,) int32)``, lengths counting the EOS.
  """
  if isinstance(strings, str):
    raise TypeError(f"strings must be a sequence of strings, got one str "
                    f"{strings!r}; wrap it in a list")
  length = checks.positive_int("length", length)
  strings = list(strings)
  ids = np.full((len(strings), length), SEQ2SEQ_TOKENS.pad, np.int32)
  lengths = np.zeros((len(strings),), np.int32)
  for row, s in enumerate(strings):
    if not isinstance(s, str):
      raise TypeError(f"strings[{row}] must be a str, got {type(s).__name__}")
    if len(s) + 1 > length:
      raise ValueError(f"length must be >= {len(s) + 1} (strings[{row}] has "
                       f"{len(s)} characters plus EOS), got {length}")
    bad = [c for c in s if c not in SEQ2SEQ_TOKENS.chars]
    if bad:
      raise ValueError(f"strings must hold only {SEQ2SEQ_TOKENS.chars!r}, "
                       f"strings[{row}] has {bad[0]!r}")
    ids[row, :len(s)] = [SEQ2SEQ_TOKENS.id_of(c) for c in s]
    ids[row, len(s)] = SEQ2SEQ_TOKENS.eos
    lengths[row] = len(s) + 1
  return ids, lengths


def decode_chars(ids: Any) -> list[str]:
  """Rows of ``SEQ2SEQ_TOKENS`` ids as strings.

  Each row is read up to its first EOS (excluded; the whole row if none), and
  PAD and BOS are skipped, so a decoder's output with or without a leading BOS
  decodes alike.

  Args:
    ids: ``(B, L)`` integer ids in ``[0, SEQ2SEQ_TOKENS.size)`` (numpy or JAX).

  Returns:
    B strings.
  """
  ids = np.asarray(ids)
  if ids.ndim != 2:
    raise ValueError(f"ids must have shape (B, L), got shape {ids.shape}")
  if ids.size and not np.issubdtype(ids.dtype, np.integer):
    raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
  bad = (ids < 0) | (ids >= SEQ2SEQ_TOKENS.size)
  if bad.any():
    raise ValueError(f"ids must be in [0, {SEQ2SEQ_TOKENS.size}), got {ids[bad][0]}")
  first, skip = SEQ2SEQ_TOKENS.first_char, (SEQ2SEQ_TOKENS.pad, SEQ2SEQ_TOKENS.bos)
  out = []
  for row in ids.tolist():
    chars = []
    for i in row:
      if i == SEQ2SEQ_TOKENS.eos:
        break
      if i not in skip:
        chars.append(SEQ2SEQ_TOKENS.chars[i - first])
    out.append("".join(chars))
  return out


def decoder_inputs(target: Any) -> np.ndarray:
  """The teacher-forced decoder inputs of ``target``: BOS, then ``target[:, :-1]``.

  Step t of the decoder reads ``inputs[:, t]`` and is trained to emit
  ``target[:, t]``; at generation time it starts from BOS and feeds back its
  own outputs until EOS.

  Args:
    target: ``(B, U)`` ids, as ``Seq2SeqBatch.target``.

  Returns:
    ``(B, U) int32``.
  """
  target = np.asarray(target)
  if target.ndim != 2:
    raise ValueError(f"target must have shape (B, U), got shape {target.shape}")
  bos = np.full((target.shape[0], 1), SEQ2SEQ_TOKENS.bos, np.int32)
  return np.concatenate([bos, target[:, :-1].astype(np.int32)], axis=1)


def max_lengths(task: str, *, max_digits: int | None = None,
                min_length: int | None = None, max_length: int | None = None
                ) -> tuple[int, int]:
  """``(S, U)``, the source and target widths of a task's batches.

  ``addition``: ``(2 max_digits + 2, max_digits + 2)`` (two numbers, ``'+'``
  and EOS; a sum of at most ``max_digits + 1`` digits and EOS).
  ``reversal`` and ``sorting``: ``(max_length + 1, max_length + 1)``.

  Args:
    task: ``"addition"``, ``"reversal"`` or ``"sorting"``.
    max_digits: ``addition``'s argument (required for it, else not allowed).
    min_length: ``reversal``/``sorting``'s argument (optional, checked only).
    max_length: ``reversal``/``sorting``'s argument (required for them).
  """
  checks.one_of("task", task, SEQ2SEQ_TASKS)
  if task == "addition":
    for name, value in (("min_length", min_length), ("max_length", max_length)):
      if value is not None:
        raise ValueError(f"{name} must be None for task 'addition', got {value!r}")
    if max_digits is None:
      raise ValueError("max_digits must be given for task 'addition'")
    max_digits = checks.positive_int("max_digits", max_digits)
    return 2 * max_digits + 2, max_digits + 2
  if max_digits is not None:
    raise ValueError(f"max_digits must be None for task {task!r}, got {max_digits!r}")
  if max_length is None:
    raise ValueError(f"max_length must be given for task {task!r}")
  _check_length_range(1 if min_length is None else min_length, max_length)
  return max_length + 1, max_length + 1


def _check_length_range(min_length: Any, max_length: Any) -> tuple[int, int]:
  min_length = checks.positive_int("min_length", min_length)
  max_length = checks.positive_int("max_length", max_length)
  if min_length > max_length:
    raise ValueError(f"min_length must be <= max_length ({max_length}), got {min_length}")
  return min_length, max_length


def _pack(tokens: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Moves each row's kept tokens to its front, in order, and PADs the rest.

  Args:
    tokens: ``(B, W)`` ids.
    keep: ``(B, W)`` bool.

  Returns:
    ``(packed (B, W) int32, counts (B,) int32)``.
  """
  order = np.argsort(~keep, axis=1, kind="stable")
  packed = np.take_along_axis(tokens, order, axis=1)
  counts = keep.sum(axis=1)
  packed = np.where(np.arange(tokens.shape[1]) < counts[:, None], packed,
                    SEQ2SEQ_TOKENS.pad)
  return packed.astype(np.int32), counts.astype(np.int32)


def _digits_then_eos(digits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """``(B, D)`` digits 0..9 as ``(B, D + 1)`` ids: the first ``lengths``, EOS, PAD."""
  batch, width = digits.shape
  cols = np.arange(width + 1)
  padded = np.concatenate([digits, np.zeros((batch, 1), digits.dtype)], axis=1)
  ids = np.where(cols < lengths[:, None], padded + _DIGIT0, SEQ2SEQ_TOKENS.pad)
  ids = np.where(cols == lengths[:, None], SEQ2SEQ_TOKENS.eos, ids)
  return ids.astype(np.int32)


def _random_digit_strings(rng: np.random.Generator, batch_size: int,
                          min_length: int, max_length: int
                          ) -> tuple[np.ndarray, np.ndarray]:
  """``(digits (B, max_length) int64 in 0..9, lengths (B,) int32)``; the digits
  past each row's length are random too and must be ignored."""
  lengths = rng.integers(min_length, max_length + 1, size=batch_size).astype(np.int32)
  digits = rng.integers(0, 10, size=(batch_size, max_length))
  return digits, lengths


def addition(rng: np.random.Generator, batch_size: int, max_digits: int
             ) -> Seq2SeqBatch:
  """A batch of addition: source ``"a+b"``, target ``str(a + b)``.

  Each of ``a`` and ``b`` independently has a number of digits uniform in
  ``1..max_digits`` and is uniform among the numbers with that many digits
  (0..9 for one digit, no leading zeros), so short and long operands are
  equally common. (Flax's seq2seq example, the model for this task, instead
  draws one operand uniformly from 0..99 and the other from
  ``0..10**max_digits - 1``, and prefixes its target with ``'='``, where this
  batch has no prefix and the decoder is started with BOS.) Digits are
  arrays, not Python ints, so any ``max_digits`` is exact.

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    max_digits: D, the most digits of an operand, > 0.

  Returns:
    A ``Seq2SeqBatch`` with ``source (B, 2D + 2)`` and ``target (B, D + 2)``;
    decoders take BOS as their first input (``decoder_inputs(target)``).
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  max_digits = checks.positive_int("max_digits", max_digits)
  cols = np.arange(max_digits)
  rows = np.arange(batch_size)

  def operand():
    """Right-aligned digits (B, D) with zeros before the number, and its start."""
    num_digits = rng.integers(1, max_digits + 1, size=batch_size)
    digits = rng.integers(0, 10, size=(batch_size, max_digits))
    leading = rng.integers(1, 10, size=batch_size)
    start = max_digits - num_digits
    digits[rows, start] = np.where(num_digits > 1, leading, digits[rows, start])
    return np.where(cols < start[:, None], 0, digits), start

  a, a_start = operand()
  b, b_start = operand()
  # Schoolbook addition, right to left, into D + 1 digits.
  total = np.zeros((batch_size, max_digits + 1), np.int64)
  carry = np.zeros((batch_size,), np.int64)
  for col in range(max_digits - 1, -1, -1):
    column = a[:, col] + b[:, col] + carry
    total[:, col + 1] = column % 10
    carry = column // 10
  total[:, 0] = carry
  # The sum starts at its first nonzero digit, or at the last digit if it is 0.
  total_start = np.where((total != 0).any(axis=1), np.argmax(total != 0, axis=1),
                         max_digits)

  ones = np.ones((batch_size, 1), bool)
  source, source_lengths = _pack(
      np.concatenate([a + _DIGIT0, np.full((batch_size, 1), _PLUS), b + _DIGIT0,
                      np.full((batch_size, 1), SEQ2SEQ_TOKENS.eos)], axis=1),
      np.concatenate([cols >= a_start[:, None], ones, cols >= b_start[:, None],
                      ones], axis=1))
  target, target_lengths = _pack(
      np.concatenate([total + _DIGIT0,
                      np.full((batch_size, 1), SEQ2SEQ_TOKENS.eos)], axis=1),
      np.concatenate([np.arange(max_digits + 1) >= total_start[:, None], ones],
                     axis=1))
  return Seq2SeqBatch(source, source_lengths, target, target_lengths)


def reversal(rng: np.random.Generator, batch_size: int, min_length: int,
             max_length: int) -> Seq2SeqBatch:
  """A batch of string reversal: source a digit string, target it reversed.

  Lengths are uniform in ``min_length..max_length`` and digits uniform in
  0..9 (leading zeros allowed).

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    min_length: shortest string, > 0.
    max_length: N, longest string, >= ``min_length``.

  Returns:
    A ``Seq2SeqBatch`` with ``source`` and ``target`` both ``(B, N + 1)``;
    decoders take BOS as their first input (``decoder_inputs(target)``).
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  min_length, max_length = _check_length_range(min_length, max_length)
  digits, lengths = _random_digit_strings(rng, batch_size, min_length, max_length)
  backwards = np.clip(lengths[:, None] - 1 - np.arange(max_length), 0, max_length - 1)
  reversed_digits = np.take_along_axis(digits, backwards, axis=1)
  return Seq2SeqBatch(_digits_then_eos(digits, lengths), lengths + 1,
                      _digits_then_eos(reversed_digits, lengths), lengths + 1)


def sorting(rng: np.random.Generator, batch_size: int, min_length: int,
            max_length: int) -> Seq2SeqBatch:
  """A batch of sorting: source a digit string, target its digits ascending.

  Strings are drawn as for ``reversal`` (the same seed gives the same
  sources).

  Args:
    rng: a numpy ``Generator``.
    batch_size: B, > 0.
    min_length: shortest string, > 0.
    max_length: N, longest string, >= ``min_length``.

  Returns:
    A ``Seq2SeqBatch`` with ``source`` and ``target`` both ``(B, N + 1)``;
    decoders take BOS as their first input (``decoder_inputs(target)``).
  """
  batch_size = checks.positive_int("batch_size", batch_size)
  min_length, max_length = _check_length_range(min_length, max_length)
  digits, lengths = _random_digit_strings(rng, batch_size, min_length, max_length)
  # Digits past the length sort last as 10s, leaving the string's own in front.
  past = np.arange(max_length) >= lengths[:, None]
  sorted_digits = np.sort(np.where(past, 10, digits), axis=1)
  return Seq2SeqBatch(_digits_then_eos(digits, lengths), lengths + 1,
                      _digits_then_eos(sorted_digits, lengths), lengths + 1)


#: The sequence-to-sequence tasks by name, for configs: ``SEQ2SEQ_TASKS[name](
#: rng, batch_size, **kwargs)``, with ``max_lengths(name, **kwargs)`` the widths.
SEQ2SEQ_TASKS = {"addition": addition, "reversal": reversal, "sorting": sorting}
