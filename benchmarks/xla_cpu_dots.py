r"""The matrix products of a recurrent step under XLA CPU's dot backends.

jax 0.10's XLA CPU runs dots through YNNPACK by default (``ynn_fusion``
kernels); ``--xla_cpu_experimental_ynn_fusion_type=`` (empty) falls back to
Eigen, and ``=dot,eltwise`` also fuses elementwise ops into YNNPACK kernels.
XLA_FLAGS is read once per process, so each setting runs in a fresh process
(this script re-invoked with ``--worker``). Per setting it prints GFLOP/s of:

* ``step<H>``: tanh(x_t @ W) for 100 independent (64, H + 32) @ (H + 32, 4H)
  products in a ``lax.scan`` (an LSTM step's product, without the dependence);
* ``chain<H>``: h <- tanh(h @ W), (64, H) @ (H, H), 100 dependent steps;
* ``dW<H>``: (H + 32, 6400) @ (6400, 4H), the weight gradient after the loop;
* ``peak``: 2048^3.

  python benchmarks/xla_cpu_dots.py
  python benchmarks/xla_cpu_dots.py --settings "default;--xla_cpu_experimental_ynn_fusion_type="
  python benchmarks/xla_cpu_dots.py --quick --json /tmp/dots.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_SETTINGS = ("default;--xla_cpu_experimental_ynn_fusion_type=;"
                    "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise")


MIN_SECONDS = 0.5


def _seconds(f, *args, min_seconds=None):
  min_seconds = MIN_SECONDS if min_seconds is None else min_seconds
  import jax  # pylint: disable=import-outside-toplevel
  jax.block_until_ready(f(*args))
  n = 1
  while True:
    start = time.perf_counter()
    for _ in range(n):
      out = f(*args)
    jax.block_until_ready(out)
    elapsed = time.perf_counter() - start
    if elapsed > min_seconds:
      return elapsed / n
    n *= 2


def worker(repeats: int, hidden_sizes=(256, 1024), peak_size: int = 2048) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  key = jax.random.PRNGKey(0)
  cases = {}
  for h in hidden_sizes:
    k = h + 32
    xs = jax.random.normal(key, (100, 64, k))
    w = jax.random.normal(key, (k, 4 * h)) / k ** 0.5
    step = jax.jit(lambda xs, w: jax.lax.scan(
        lambda c, x: (c + jnp.tanh(x @ w).sum(), None), 0.0, xs)[0])
    cases[f"step{h}"] = (step, (xs, w), 100 * 2 * 64 * k * 4 * h)
    w_h = jax.random.normal(key, (h, h)) / h ** 0.5
    chain = jax.jit(lambda h0, w: jax.lax.scan(
        lambda c, _: (jnp.tanh(c @ w), None), h0, None, length=100)[0])
    cases[f"chain{h}"] = (chain, (jnp.ones((64, h)), w_h), 100 * 2 * 64 * h * h)
    a = jax.random.normal(key, (6400, k))
    b = jax.random.normal(key, (6400, 4 * h))
    cases[f"dW{h}"] = (jax.jit(lambda a, b: a.T @ b), (a, b), 2 * 6400 * k * 4 * h)
  n = peak_size
  m = jax.random.normal(key, (n, n))
  cases["peak"] = (jax.jit(jnp.matmul), (m, m), 2 * n ** 3)
  return {name: max(flops / _seconds(f, *args) / 1e9 for _ in range(repeats))
          for name, (f, args, flops) in cases.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--settings", default=DEFAULT_SETTINGS,
                      help="';'-separated XLA_FLAGS values; 'default' = XLA_FLAGS unset")
  parser.add_argument("--repeats", type=int, default=3, help="best of, per case")
  parser.add_argument("--quick", action="store_true", help="smoke run: H=16, tiny timings")
  parser.add_argument("--json", default=None, help="save GFLOP/s per setting and case here")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    global MIN_SECONDS
    if args.quick:
      MIN_SECONDS = 0.01
      print(json.dumps(worker(1, hidden_sizes=(16,), peak_size=128)))
    else:
      print(json.dumps(worker(args.repeats)))
    return
  rows = []
  for setting in args.settings.split(";"):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    if setting != "default":
      env["XLA_FLAGS"] = setting
    command = [sys.executable, __file__, "--worker", "--repeats", str(args.repeats)]
    out = subprocess.run(command + (["--quick"] if args.quick else []),
                         env=env, capture_output=True, text=True, check=True).stdout
    rows.append((setting, json.loads(out.strip().splitlines()[-1])))
  names = list(rows[0][1])
  print("GFLOP/s (best of %d), float32" % args.repeats)
  print("| XLA_FLAGS | " + " | ".join(names) + " |")
  print("|---|" + "---|" * len(names))
  for setting, result in rows:
    print(f"| `{setting}` | " + " | ".join(f"{result[n]:.0f}" for n in names) + " |")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"repeats": args.repeats, "gflops": dict(rows)}, f, indent=1)


if __name__ == "__main__":
  main()
