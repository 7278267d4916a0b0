r"""Where the time of one LSTM gradient goes on this backend: a kernel-level profile.

Traces ``jax.grad`` of a mean-squared loss over ``seqjax.unroll`` of an LSTM
(B=64, D=32, float32; T and H from the flags) with ``jax.profiler.trace``,
reads the trace back with ``jax.profiler.ProfileData`` and prints, per
gradient: the wall time, the time in matrix products (XLA ``dot`` and YNNPACK
``ynn_fusion`` kernels), in other fused kernels and in the runtime's executor
and thread pool, the number of kernel launches, and the slowest kernels.
Kernels on XLA's two kinds of threads (the client's and the worker pool's)
mostly run one after another in a recurrence, so the parts are close to a
budget of the wall time; what is left is the runtime's own overhead.

  python benchmarks/profile_lstm_grad.py --length 100 --hidden 256
  python benchmarks/profile_lstm_grad.py --length 6 --hidden 16 --steps 1 --json /tmp/profile.json
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import tempfile
import time

import jax
import jax.numpy as jnp

from seqjax import unroll
from seqjax.cells.lstm import lstm


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--length", type=int, default=100, help="T")
  parser.add_argument("--hidden", type=int, default=256, help="H")
  parser.add_argument("--batch", type=int, default=64, help="B")
  parser.add_argument("--input-size", type=int, default=32, help="D")
  parser.add_argument("--implementation", default="auto", choices=("auto", "scan", "fast"))
  parser.add_argument("--steps", type=int, default=5, help="gradients traced")
  parser.add_argument("--top", type=int, default=15, help="slowest kernels listed")
  parser.add_argument("--json", default=None, help="save the per-gradient figures here")
  args = parser.parse_args()

  cell = lstm(args.hidden)
  key = jax.random.PRNGKey(0)
  params = cell.init(key, args.input_size)
  xs = jax.random.normal(key, (args.batch, args.length, args.input_size))
  target = jax.random.normal(key, (args.batch, args.length, args.hidden))

  def loss(params, xs):
    ys = unroll(cell, params, xs, implementation=args.implementation)[1]
    return jnp.mean((ys - target) ** 2)

  grad = jax.jit(jax.grad(loss))
  for _ in range(2):  # compile and warm up
    jax.block_until_ready(grad(params, xs))
  start = time.perf_counter()
  for _ in range(args.steps):
    jax.block_until_ready(grad(params, xs))
  wall = (time.perf_counter() - start) / args.steps

  with tempfile.TemporaryDirectory() as logdir:
    with jax.profiler.trace(logdir):
      for _ in range(args.steps):
        jax.block_until_ready(grad(params, xs))
    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    profile = jax.profiler.ProfileData.from_file(path)
    seconds, calls = collections.Counter(), collections.Counter()
    for plane in profile.planes:
      for line in plane.lines:
        if not line.name.startswith("tf_XLA"):  # XLA's executor and worker threads
          continue
        for event in line.events:
          seconds[event.name] += event.duration_ns / 1e9
          calls[event.name] += 1

  def part(name):
    if name.startswith(("ThunkExecutor", "SlinkyThreadPool", "ThreadpoolListener", "while",
                        "conditional", "call")):  # containers: their time includes their kernels
      return "executor, thread pool and loops (nested: include the kernels they run)"
    if name.startswith(("ynn_fusion", "dot")):
      return "matrix products"
    if name.startswith("end: "):
      return None
    return "other kernels (elementwise, slices, copies, loop control)"

  parts, launches = collections.Counter(), 0
  for name, total in seconds.items():
    kind = part(name)
    if kind is not None:
      parts[kind] += total
      if not kind.startswith("executor"):
        launches += calls[name]
  n = args.steps
  print(f"LSTM gradient, T={args.length} H={args.hidden} B={args.batch} D={args.input_size}, "
        f"implementation={args.implementation}, jax {jax.__version__} on {jax.default_backend()}")
  print(f"wall time per gradient (untraced): {wall * 1e3:.2f} ms")
  kernel_time = 0.0
  for kind, total in parts.most_common():
    if not kind.startswith("executor"):
      kernel_time += total / n
      print(f"  {total / n * 1e3:8.2f} ms  {kind}")
  print(f"  {(wall - kernel_time) * 1e3:8.2f} ms  wall time outside kernels (executor, thread "
        "pool, waiting; negative if kernels overlapped)")
  print(f"  {launches // n:8d}     kernel launches per gradient")
  print("slowest kernels (ms per gradient, calls per gradient):")
  kernels = {k: v for k, v in seconds.items()
             if part(k) is not None and not part(k).startswith("executor")}
  slowest = sorted(kernels.items(), key=lambda kv: -kv[1])[:args.top]
  for name, total in slowest:
    print(f"  {total / n * 1e3:8.2f} ms  {calls[name] // n:5d}x  {name}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"args": vars(args), "wall_s": wall,
                 "parts_s": {kind: total / n for kind, total in parts.items()},
                 "outside_kernels_s": wall - kernel_time, "launches": launches // n,
                 "slowest": [{"name": name, "s": total / n, "calls": calls[name] // n}
                             for name, total in slowest]}, f, indent=1)


if __name__ == "__main__":
  main()
