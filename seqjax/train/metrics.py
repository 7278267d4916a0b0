"""Metrics on disk (JSON lines and TensorBoard) and a console progress line.

``MetricWriter(workdir)`` appends one JSON object per ``write`` call to
``workdir/metrics.jsonl`` (``{"step": 100, "split": "train", "loss": 1.23}``)
and the same values as TensorBoard scalars ``train/loss`` under
``workdir/tensorboard/``, written by ``tensorboardX`` (no TensorFlow needed).
``read_metrics(workdir)`` reads the JSON lines back. ``Progress`` formats the
console line::

  step  1200/5000 | loss 1.234 | 8.1 steps/s | 41.5k tokens/s | ETA 7m49s
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Callable, Mapping, Optional

from absl import logging
import numpy as np

from seqjax import checks

_JSONL = "metrics.jsonl"
_TENSORBOARD = "tensorboard"
_RESERVED = ("step", "split")
# Strict JSON has no NaN or infinity; these strings stand for them.
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _check_step(step: Any) -> int:
  return checks.non_negative_int("step", step)


def _to_number(name: str, value: Any) -> int | float:
  """A scalar metric (Python, numpy or jax) as a Python int or float."""
  try:
    array = np.asarray(value)
  except Exception as error:  # pylint: disable=broad-except
    raise TypeError(f"metric {name!r} must be a number, got "
                    f"{type(value).__name__}") from error
  if array.size != 1:
    raise ValueError(f"metric {name!r} must be a scalar, got shape {array.shape}")
  if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
    return int(array.item())
  if np.issubdtype(array.dtype, np.floating):
    return float(array.item())
  raise TypeError(f"metric {name!r} must be a real number, got dtype {array.dtype}")


def _json_value(value: int | float) -> int | float | str:
  if isinstance(value, float) and not math.isfinite(value):
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
  return value


class MetricWriter:
  """Writes scalar metrics to ``workdir/metrics.jsonl`` and TensorBoard.

  Each ``write`` appends one line and flushes it, so a crash loses nothing
  already written and a reader never sees half a line except after a kill
  mid-write (``read_metrics`` skips such a last line). A resumed run appends to
  the same files.

  Args:
    workdir: the run's directory; created if missing.
    tensorboard: also write TensorBoard event files to ``workdir/tensorboard/``.
    enabled: whether this process writes at all; defaults to
      ``jax.process_index() == 0`` so that a multi-host run writes one copy.
  """

  def __init__(self, workdir: str | os.PathLike, *, tensorboard: bool = True,
               enabled: Optional[bool] = None):
    if enabled is None:
      import jax  # pylint: disable=import-outside-toplevel
      enabled = jax.process_index() == 0
    self._workdir = os.fspath(workdir)
    self._enabled = bool(enabled)
    self._file = None
    self._tensorboard = None
    if not self._enabled:
      return
    os.makedirs(self._workdir, exist_ok=True)
    self._file = open(os.path.join(self._workdir, _JSONL), "a", encoding="utf-8")
    if tensorboard:
      # Imported here so that a run without TensorBoard needs no tensorboardX.
      import tensorboardX  # pylint: disable=import-outside-toplevel
      self._tensorboard = tensorboardX.SummaryWriter(
          logdir=os.path.join(self._workdir, _TENSORBOARD))

  def write(self, step: int, metrics: Mapping[str, float], *,
            split: str = "train") -> None:
    """Records ``metrics`` at ``step``.

    Args:
      step: the training step, an int >= 0.
      metrics: metric name -> scalar (Python, numpy or 0-d jax array). Integer
        values stay integers in the JSON; NaN and infinities are written as
        the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON has none).
      split: e.g. ``"train"``, ``"valid"``, ``"test"``; the TensorBoard tag is
        ``f"{split}/{name}"``.

    Raises:
      TypeError, ValueError: a non-integer or negative step, an empty split
        or one with ``/``, a metric named ``step`` or ``split``, a metric
        that is not a real scalar.
    """
    step = _check_step(step)
    if not isinstance(split, str) or not split or "/" in split:
      raise ValueError(f"split must be a non-empty string without '/', got {split!r}")
    if not isinstance(metrics, Mapping):
      raise TypeError(f"metrics must be a mapping of name -> number, got "
                      f"{type(metrics).__name__}")
    values = {}
    for name, value in metrics.items():
      if not isinstance(name, str) or not name:
        raise TypeError(f"metric names must be non-empty strings, got {name!r}")
      if name in _RESERVED:
        raise ValueError(f"metric name {name!r} is reserved for the record itself")
      values[name] = _to_number(name, value)
    if not self._enabled:
      return
    if self._file is None:
      raise ValueError("MetricWriter is closed")
    record = {"step": step, "split": split,
              **{k: _json_value(v) for k, v in values.items()}}
    # One write call per line keeps lines whole in the file.
    self._file.write(json.dumps(record, allow_nan=False) + "\n")
    self._file.flush()
    if self._tensorboard is not None:
      for name, value in values.items():
        self._tensorboard.add_scalar(f"{split}/{name}", float(value), global_step=step)

  def flush(self) -> None:
    """Pushes buffered TensorBoard events (and the JSON file) to disk."""
    if self._file is not None:
      self._file.flush()
    if self._tensorboard is not None:
      self._tensorboard.flush()

  def close(self) -> None:
    """Flushes and closes the files; further writes raise. Idempotent."""
    if self._file is not None:
      self._file.close()
      self._file = None
    if self._tensorboard is not None:
      self._tensorboard.close()
      self._tensorboard = None

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def read_metrics(workdir: str | os.PathLike, *,
                 deduplicate: bool = False) -> list[dict]:
  """Reads the records ``MetricWriter`` appended to ``workdir/metrics.jsonl``.

  Args:
    workdir: the run's directory.
    deduplicate: keep only the last record of each ``(split, step)``, sorted
      by step. A run resumed from a checkpoint at step N rewrites the steps
      after N that its killed predecessor had already logged; this gives the
      history of the run as it finally went.

  Returns:
    One dict per line, ``{"step": int, "split": str, name: number, ...}`` in
    file order (NaN and infinities as floats again); ``[]`` if there is no
    file. A truncated last line (a kill mid-write) is skipped with a warning.

  Raises:
    ValueError: a line other than the last is not valid JSON (names the line).
  """
  path = os.path.join(os.fspath(workdir), _JSONL)
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as file:
    lines = file.read().split("\n")
  records = []
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError as error:
      if number == len(lines):  # the file did not end with a newline
        logging.warning("Skipping truncated last line %d of %s", number, path)
        continue
      raise ValueError(f"{path} line {number} is not valid JSON: {error}") from None
    for key, value in record.items():
      if key != "split" and isinstance(value, str) and value in _NON_FINITE:
        record[key] = _NON_FINITE[value]
    records.append(record)
  if deduplicate:
    last = {(r.get("split"), r.get("step")): r for r in records}
    records = sorted(last.values(), key=lambda r: r.get("step", 0))
  return records


def _si(value: float) -> str:
  """3 significant digits with a k/M/G suffix: 41500 -> '41.5k'."""
  for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
    if abs(value) >= threshold:
      return f"{value / threshold:.3g}{suffix}"
  return f"{value:.3g}"


def _duration(seconds: float) -> str:
  """'42s', '7m49s', '2h03m', '3d04h'."""
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes}m{seconds:02d}s"
  hours, minutes = divmod(minutes, 60)
  if hours < 24:
    return f"{hours}h{minutes:02d}m"
  days, hours = divmod(hours, 24)
  return f"{days}d{hours:02d}h"


class Progress:
  """Formats a console progress line with rates and an ETA.

  Rates are measured between consecutive calls to ``line`` (or ``mark``), so
  they follow the current speed. The first window runs from construction and
  so would include compilation; call ``mark(step)`` after the first (compiled)
  step to start measuring from there instead.

  Args:
    total_steps: the step the run ends at, >= 1.
    tokens_per_step: tokens (or examples) consumed per step, for the
      tokens/s rate; 0 leaves the rate out.
    start_step: the step the run starts (or resumes) at.
    clock: seconds as a float, monotonic; injectable for tests.
  """

  def __init__(self, total_steps: int, tokens_per_step: int, start_step: int = 0,
               *, clock: Callable[[], float] = time.monotonic):
    for name, value, low in (("total_steps", total_steps, 1),
                             ("tokens_per_step", tokens_per_step, 0),
                             ("start_step", start_step, 0)):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
      if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if start_step > total_steps:
      raise ValueError(f"start_step ({start_step}) must be <= total_steps "
                       f"({total_steps})")
    self._total = int(total_steps)
    self._tokens_per_step = int(tokens_per_step)
    self._clock = clock
    self._last_step = int(start_step)
    self._last_time = clock()
    self._width = len(str(self._total))

  def mark(self, step: int) -> None:
    """Restarts rate measurement at ``step`` now (e.g. after compilation)."""
    self._last_step = _check_step(step)
    self._last_time = self._clock()

  def line(self, step: int, metrics: Mapping[str, float]) -> str:
    """The progress line at ``step``; rates since the previous call.

    Args:
      step: the current step.
      metrics: scalars to show, in order, with 4 significant digits.

    Returns:
      e.g. ``"step  1200/5000 | loss 1.234 | 8.1 steps/s | 41.5k tokens/s |
      ETA 7m49s"``; rates and ETA read ``--`` until they can be measured.
    """
    step = _check_step(step)
    now = self._clock()
    elapsed = now - self._last_time
    steps = step - self._last_step
    rate = steps / elapsed if steps > 0 and elapsed > 0 else None
    self._last_step, self._last_time = step, now
    parts = [f"step {step:>{self._width}}/{self._total}"]
    for name, value in metrics.items():
      parts.append(f"{name} {_to_number(name, value):.4g}")
    parts.append(f"{_si(rate) if rate else '--'} steps/s")
    if self._tokens_per_step:
      parts.append(f"{_si(rate * self._tokens_per_step) if rate else '--'} tokens/s")
    remaining = max(self._total - step, 0)
    if remaining == 0:
      parts.append("ETA 0s")
    else:
      parts.append(f"ETA {_duration(remaining / rate) if rate else '--'}")
    return " | ".join(parts)
