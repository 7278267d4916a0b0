"""What the recurrent-layer benchmarks share: workers, alternating repeats, medians, --json.

A benchmark script asks one question (``rnn_throughput.py``: tokens/s against
Flax and PyTorch; ``fast_path.py``: where ``implementation="auto"`` should take
a cell's fast path; ``rnn_memory.py``: memory at long T; ``rnn_compile.py``:
compile time). Its implementations run in *workers*: objects whose
``op_<name>(request) -> reply`` methods take and return JSON-able dicts. A
``Pool`` runs each worker in its own process (the script re-invoked with
``--worker NAME``: one JSON request per line on stdin, one reply per line on
stdout), so that torch never shares a process with XLA and a peak memory is
one variant's own; ``--in-process`` runs them in the calling process instead.
``alternate`` takes the repeats in turn (a, b, c, c, b, a, a, ...), so that
drift in the machine's load hits every implementation alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Iterable, Optional

import numpy as np

# Repeats whose slowest and fastest differ by more than this get a note.
SPREAD_WARNING = 1.5


def log(message: str) -> None:
  """Progress goes to stderr; stdout carries the tables."""
  print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------


def parse_shapes(text: str) -> list[tuple[int, int]]:
  """``"100x256,1000x256"`` -> ``[(100, 256), (1000, 256)]`` as (T, H) pairs."""
  shapes = []
  for item in text.split(","):
    length, _, hidden = item.strip().partition("x")
    if not (length.isdigit() and hidden.isdigit()) or int(length) < 1 or int(hidden) < 1:
      raise argparse.ArgumentTypeError(f"a shape is TxH with positive integers, got {item!r}")
    shapes.append((int(length), int(hidden)))
  return shapes


def parse_names(text: str, allowed: Iterable[str], flag: str) -> list[str]:
  """``"lstm,gru"`` -> ``["lstm", "gru"]``, each checked against ``allowed``."""
  names = [name.strip() for name in text.split(",") if name.strip()]
  unknown = [name for name in names if name not in allowed]
  if unknown or not names:
    raise argparse.ArgumentTypeError(
        f"{flag}: unknown {unknown or text!r}; choose from {', '.join(allowed)}")
  return names


def usable_cores() -> int:
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def parser(description: str, workers: bool = True) -> argparse.ArgumentParser:
  """A parser with --quick and --json and, with ``workers``, --in-process and --threads."""
  result = argparse.ArgumentParser(description=description)
  result.add_argument("--quick", action="store_true",
                      help="smoke run: tiny shapes, few repeats, short timings")
  result.add_argument("--json", default=None, help="save the raw results here")
  if workers:
    result.add_argument("--in-process", action="store_true",
                        help="run the workers in this process (no isolation; for tests)")
    result.add_argument("--threads", type=int, default=usable_cores(),
                        help="torch intra-op threads on the CPU (default: usable cores; XLA "
                        "uses its own pool, restrict both with taskset)")
    result.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  return result


def fill_defaults(args: argparse.Namespace, defaults: dict, quick: dict) -> argparse.Namespace:
  """Sets every flag left at ``None`` from ``quick`` (with --quick) or ``defaults``."""
  for name, value in (quick if args.quick else defaults).items():
    if getattr(args, name) is None:
      setattr(args, name, value)
  return args


def save_json(path: Optional[str], results: dict) -> None:
  if path:
    with open(path, "w") as f:
      json.dump(results, f, indent=1, default=str)


# ----------------------------------------------------------------------------
# Timing.
# ----------------------------------------------------------------------------


def time_steps(run: Callable[[int], None], min_seconds: float) -> tuple[float, int]:
  """Seconds per step of ``run(n)`` (n steps, synchronised at the end).

  One untimed step first, then ``run(n)`` for n = 1, 2, 4, ... until a call
  lasts ``min_seconds``; that call's steps run back to back, so asynchronous
  dispatch overlaps them as in a training loop.

  Returns:
    ``(seconds per step, n)`` of the last call.
  """
  run(1)
  steps = 1
  while True:
    start = time.perf_counter()
    run(steps)
    elapsed = time.perf_counter() - start
    if elapsed >= min_seconds:
      return elapsed / steps, steps
    steps *= 2


def fastest_seconds(fn: Callable[[], object], sync: Callable[[object], object],
                    repeats: int) -> float:
  """The fastest of ``repeats`` calls of ``fn()`` after a warm-up call."""
  sync(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - start)
  return min(times)


def inputs(batch: int, length: int, input_size: int, hidden: int):
  """The same (B, T, D) inputs and (B, T, H) target for every implementation."""
  rng = np.random.default_rng(0)
  xs = rng.normal(size=(batch, length, input_size)).astype(np.float32)
  target = rng.normal(size=(batch, length, hidden)).astype(np.float32)
  return xs, target


def alternate(names: list[str], repeats: int, measure: Callable[[str], dict],
              label: str = "") -> dict[str, dict]:
  """``repeats`` replies of ``measure(name)`` per name, the names taking turns.

  The order reverses every repeat (a, b, c, c, b, a, ...), so that no
  implementation always runs right after the same other one. A reply with an
  ``"error"`` stops that name's repeats.

  Returns:
    ``{name: {"replies": [reply, ...], "error": message or None}}``.
  """
  results = {name: {"replies": [], "error": None} for name in names}
  for repeat in range(repeats):
    for name in (names if repeat % 2 == 0 else names[::-1]):
      if results[name]["error"]:
        continue
      reply = measure(name)
      if "error" in reply:
        results[name]["error"] = reply["error"]
        log(f"{label} {name}: {reply['error']}")
        continue
      results[name]["replies"].append(reply)
      log(f"{label} repeat {repeat + 1}/{repeats} {name}: "
          + ", ".join(f"{k} {v:.4g}" for k, v in reply.items() if isinstance(v, float)))
  return results


def median(values: list[float]) -> Optional[float]:
  return statistics.median(values) if values else None


def spread_note(what: str, times: list[float]) -> Optional[str]:
  """A note when repeats disagree by more than ``SPREAD_WARNING``."""
  if len(times) > 1 and max(times) > SPREAD_WARNING * min(times):
    return (f"note: {what}: repeats differ {max(times) / min(times):.1f}x (the machine's load "
            "changed? see --json for every repeat)")
  return None


# ----------------------------------------------------------------------------
# Formatting.
# ----------------------------------------------------------------------------


def fmt_rate(value: Optional[float]) -> str:
  return "—" if value is None else f"{value:,.0f}"


def fmt_ratio(value: Optional[float]) -> str:
  return "—" if value is None else f"{value:.2f}"


def ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
  return None if num is None or not den else num / den


def fmt_bytes(value: Optional[float]) -> str:
  return "—" if value is None else f"{value / 2 ** 20:,.0f} MiB"


def of_peak(gflops: Optional[float], peaks: dict[str, float]) -> str:
  """``"85.5 (43% JAX, 48% torch)"``: GFLOP/s and its share of each measured peak."""
  if gflops is None:
    return "—"
  shares = [f"{100 * gflops / peak:.0f}% {name}" for name, peak in peaks.items() if peak]
  return f"{gflops:.1f} ({', '.join(shares)})" if shares else f"{gflops:.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
  """A markdown table."""
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines)


# ----------------------------------------------------------------------------
# Workers.
# ----------------------------------------------------------------------------


def handle(worker, request: dict) -> dict:
  """``worker.op_<request["op"]>(request)``, an exception becoming ``{"error": ...}``."""
  try:
    return getattr(worker, "op_" + request["op"])(request)
  except Exception as error:  # pylint: disable=broad-except
    return {"error": f"{type(error).__name__}: {error}"}


def serve(worker) -> None:
  """The worker process's loop: one JSON request per line in, one reply per line out."""
  replies = os.fdopen(os.dup(1), "w")
  os.dup2(2, 1)  # anything else printed to stdout (library warnings) goes to stderr
  for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "quit":
      break
    replies.write(json.dumps(handle(worker, request)) + "\n")
    replies.flush()


class _Subprocess:
  """A worker in its own process: ``script --worker NAME --threads N``."""

  def __init__(self, script: str, name: str, threads: int):
    self.name = name
    env = dict(os.environ)
    # Several JAX workers share one accelerator: allocate on demand.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    self.process = subprocess.Popen(
        [sys.executable, script, "--worker", name, "--threads", str(threads)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

  def request(self, **request) -> dict:
    self.process.stdin.write(json.dumps(request) + "\n")
    self.process.stdin.flush()
    line = self.process.stdout.readline()
    if not line:
      raise RuntimeError(f"worker {self.name} exited with code {self.process.wait()}")
    return json.loads(line)

  def close(self) -> None:
    if self.process.poll() is None:
      try:
        self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.process.stdin.close()
      except BrokenPipeError:
        pass
    self.process.wait()


class _InProcess:

  def __init__(self, worker):
    self.worker = worker

  def request(self, **request) -> dict:
    return handle(self.worker, request)

  def close(self) -> None:
    pass


class Pool:
  """Workers by name, each started on first use; ``fresh`` ones serve a single request.

  Args:
    script: the script that serves ``--worker NAME`` (its ``__file__``).
    make_worker: ``(name, threads) -> worker``, for ``--in-process``.
    threads: passed to every worker.
    in_process: run the workers in this process.
  """

  def __init__(self, script: str, make_worker: Callable, threads: int, in_process: bool):
    self.script = os.path.abspath(script)
    self.make_worker, self.threads, self.in_process = make_worker, threads, in_process
    self.workers = {}

  def _start(self, name: str):
    if self.in_process:
      return _InProcess(self.make_worker(name, self.threads))
    return _Subprocess(self.script, name, self.threads)

  def request(self, name: str, **request) -> dict:
    if name not in self.workers:
      self.workers[name] = self._start(name)
    return self.workers[name].request(**request)

  def start(self, names: Iterable[str]) -> None:
    """Starts the workers ``names`` side by side and waits until each has its imports."""
    started = [name for name in dict.fromkeys(names) if name not in self.workers]
    for name in started:
      self.workers[name] = self._start(name)
    for name in started:
      reply = self.workers[name].request(op="ping")
      if "error" in reply:
        raise RuntimeError(f"worker {name}: {reply['error']}")

  def fresh(self, name: str, **request) -> dict:
    worker = self._start(name)
    try:
      return worker.request(**request)
    finally:
      worker.close()

  def close(self) -> None:
    for worker in self.workers.values():
      worker.close()
    self.workers = {}

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()
