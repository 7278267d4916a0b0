r"""Sequential vs associative scan for diagonal linear recurrences, on this backend.

Times ``linear_recurrence`` (h_t = a_t h_{t-1} + b_t) by ``lax.scan`` and by
``lax.associative_scan``, and ``unroll`` of the LRU and minGRU cells through
the plain scan of ``step`` and through their associative fast path; forward
and gradient, median of repeats after a warm-up call. A ratio above 1 means the
associative route is slower; ``cell.fast.backends`` records the backends on
which ``unroll(implementation="auto")`` takes the associative fast path
(where it was measured faster).

  python benchmarks/linear_scan.py --batch 16 --size 128 --lengths 1000,10000
  python benchmarks/linear_scan.py --lengths 100 --json /tmp/linear_scan.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.cells.linear import linear_recurrence, lru, min_gru
from seqjax.scan import unroll


def _median_seconds(fn, *args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _row(label, slow, fast):
  return (f"| {label} | {slow[0] * 1e3:.2f} / {fast[0] * 1e3:.2f} ({fast[0] / slow[0]:.2f}x) "
          f"| {slow[1] * 1e3:.2f} / {fast[1] * 1e3:.2f} ({fast[1] / slow[1]:.2f}x) |")


def main(argv=None) -> list[dict]:
  """Prints the table and returns (and with --json saves) its rows, seconds per route."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--size", type=int, default=128, help="state size N = H")
  parser.add_argument("--input-size", type=int, default=32)
  parser.add_argument("--lengths", default="1000,10000")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", default=None, help="save the raw results here")
  args = parser.parse_args(argv)
  lengths = [int(t) for t in args.lengths.split(",")]
  print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"B={args.batch}, N=H={args.size}, D={args.input_size}, median of {args.repeats}")
  print("| what | forward ms, sequential / associative | gradient ms, sequential / associative |")
  print("|---|---|---|")
  rng = np.random.default_rng(0)
  rows = []

  def row(label, slow_name, fast_name, timings):
    slow, fast = timings[slow_name], timings[fast_name]
    rows.append({"what": label, "routes": [slow_name, fast_name],
                 "forward_s": [slow[0], fast[0]], "grad_s": [slow[1], fast[1]]})
    print(_row(label, slow, fast), flush=True)

  for length in lengths:
    for dtype in (jnp.float32, jnp.complex64):
      a = jnp.asarray(rng.uniform(0.5, 0.99, (length, args.batch, args.size)), dtype)
      b = jnp.asarray(rng.normal(size=(length, args.batch, args.size)), dtype)
      timings = {}
      for impl in ("sequential", "associative"):
        forward = jax.jit(lambda a, b, impl=impl: linear_recurrence(a, b, implementation=impl))
        grad = jax.jit(jax.grad(
            lambda a, b, impl=impl: jnp.sum(jnp.abs(linear_recurrence(a, b, implementation=impl))),
            argnums=(0, 1)))
        timings[impl] = (_median_seconds(forward, a, b, repeats=args.repeats),
                         _median_seconds(grad, a, b, repeats=args.repeats))
      row(f"linear_recurrence {jnp.dtype(dtype).name}, T={length}", "sequential",
          "associative", timings)
    for name, cell in (("lru", lru(args.size)), ("min_gru", min_gru(args.size))):
      params = cell.init(jax.random.PRNGKey(0), args.input_size)
      xs = jnp.asarray(rng.normal(size=(args.batch, length, args.input_size)), jnp.float32)
      timings = {}
      for impl in ("scan", "fast"):
        forward = jax.jit(lambda p, x, impl=impl: unroll(cell, p, x, implementation=impl))
        grad = jax.jit(jax.grad(
            lambda p, x, impl=impl: jnp.sum(unroll(cell, p, x, implementation=impl)[1] ** 2)))
        timings[impl] = (_median_seconds(forward, params, xs, repeats=args.repeats),
                         _median_seconds(grad, params, xs, repeats=args.repeats))
      row(f"unroll {name}, T={length}", "scan", "fast", timings)
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"args": vars(args), "backend": jax.default_backend(), "rows": rows}, f, indent=1)
  return rows


if __name__ == "__main__":
  main()
