r"""A 64-point echo-state grid in one vmapped call vs a Python loop over it.

One-step-ahead prediction of Mackey-Glass (tau = 17) with an H-unit reservoir
over 4 spectral radii x 4 leak rates x 2 input scalings x 2 ridges. Times
``seqjax.reservoir.sweep.sweep`` (one jitted ``vmap`` over the grid) against a
loop over the same 64 configurations calling one jitted copy of the
single-configuration ``evaluate`` (compiled once, so the loop pays no
compilation either); both include drawing the shared reservoir. Median of
repeats after a warm-up call; the issue's target is a ratio >= 10.

  python benchmarks/esn_sweep.py --hidden_size 200 --repeats 3 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.data.timeseries import mackey_glass
from seqjax.reservoir import sweep as sweep_lib


def _series(length: int) -> np.ndarray:
  return np.asarray(mackey_glass(length, tau=17), np.float32).reshape(-1)


def _median_seconds(fn, repeats: int) -> float:
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--hidden_size", type=int, default=200)
  parser.add_argument("--train", type=int, default=2000, help="training steps T")
  parser.add_argument("--val", type=int, default=500, help="validation steps V")
  parser.add_argument("--washout", type=int, default=100)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--json", default=None, help="also write the results to this file")
  args = parser.parse_args()

  series = _series(args.train + args.val + 1)
  series = (series - series.mean()) / series.std()
  inputs, targets = series[:-1, None], series[1:, None]
  train_x, train_y = jnp.asarray(inputs[:args.train]), jnp.asarray(targets[:args.train])
  val_x, val_y = jnp.asarray(inputs[args.train:]), jnp.asarray(targets[args.train:])
  configs = sweep_lib.grid(spectral_radius=[0.5, 0.9, 1.2, 1.5],
                           leak_rate=[0.1, 0.3, 0.6, 1.0],
                           input_scaling=[0.5, 1.0], ridge=[1e-7, 1e-4])
  count = configs["spectral_radius"].shape[0]
  full = {name: configs.get(name, jnp.full((count,), value, jnp.float32))
          for name, value in sweep_lib.DEFAULTS.items()}
  key = jax.random.PRNGKey(0)

  def vmapped():
    return sweep_lib.sweep(key, args.hidden_size, train_x, train_y, val_x, val_y, configs,
                           washout=args.washout)["val_nrmse"]

  evaluate = jax.jit(sweep_lib.evaluate, static_argnames=("washout",))

  def looped():
    reservoir = sweep_lib.base_reservoir(key, args.hidden_size, 1)
    return jnp.stack([
        evaluate(reservoir, {name: values[i] for name, values in full.items()},
                 train_x, train_y, val_x, val_y, washout=args.washout)["val_nrmse"]
        for i in range(count)])

  print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{count} configurations, H={args.hidden_size}, T={args.train}, V={args.val}, "
        f"washout={args.washout}, median of {args.repeats}")
  difference = np.nanmax(np.abs(np.asarray(vmapped()) - np.asarray(looped())))
  vmapped_s = _median_seconds(vmapped, args.repeats)
  looped_s = _median_seconds(looped, args.repeats)
  results = sweep_lib.sweep(key, args.hidden_size, train_x, train_y, val_x, val_y, configs,
                            washout=args.washout)
  print("\n".join(sweep_lib.table(results).splitlines()[:7]))
  print(f"max |vmapped - loop| val NRMSE: {difference:.2e}")
  print(f"one vmapped call: {vmapped_s * 1e3:.1f} ms; Python loop of {count} jitted calls: "
        f"{looped_s * 1e3:.1f} ms; speed-up {looped_s / vmapped_s:.1f}x")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"benchmark": "esn_sweep", "backend": jax.default_backend(),
                 "configurations": count, "hidden_size": args.hidden_size, "train": args.train,
                 "val": args.val, "washout": args.washout, "repeats": args.repeats,
                 "vmapped_seconds": vmapped_s, "looped_seconds": looped_s,
                 "speedup": looped_s / vmapped_s,
                 "max_abs_difference_val_nrmse": float(difference),
                 "best_val_nrmse": float(np.nanmin(np.asarray(results["val_nrmse"])))}, f,
                indent=1)


if __name__ == "__main__":
  main()
