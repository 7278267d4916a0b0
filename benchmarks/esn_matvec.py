r"""How fast can an unbatched echo-state reservoir step on this backend? Ways to multiply.

An ESN run on one series is T matrix-vector products with a sparse (H, H)
reservoir. Times ``lax.scan`` over T leaky-tanh steps (``h <- 0.7 h + 0.3
tanh(W^T h + d_t)``, the esn cell's fast path at leak 0.3) with the product
written in each of these ways, all on the same matrix (10% of the entries
nonzero, ``round(0.1 H)`` per unit as ``seqjax.cells.esn`` draws it):

* ``dense h @ W`` and ``dense W^T @ h`` (what ``esn`` runs unbatched: W^T is
  stored row-major, so the product reads it contiguously);
* ``split xK``: W^T @ h as K independent row blocks, concatenated (can XLA put
  them on different cores?);
* ``gather``: the fixed fan-in form, ``sum_k v[j, k] h[idx[j, k]]`` with
  (H, K) values and indices (a tenth of the dense reads);
* ``bcoo`` / ``bcsr``: ``jax.experimental.sparse`` matrices.

Each variant's states are checked against the dense ones; times are medians of
``--repeats`` after one compiling call, the variants alternating.

  python benchmarks/esn_matvec.py --units 2000 --length 3000     # docs/performance.md
  python benchmarks/esn_matvec.py --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse


def _reservoir(units: int, connectivity: float, seed: int):
  """W (H, H) with round(c H) N(0, 1) entries per column, scaled to radius ~0.9."""
  rng = np.random.default_rng(seed)
  fan_in = max(1, round(connectivity * units))
  sources = np.argsort(rng.random((units, units)), axis=1)[:, :fan_in]   # (units, K)
  values = rng.standard_normal((units, fan_in)) * 0.9 / np.sqrt(fan_in)
  w_t = np.zeros((units, units))
  np.put_along_axis(w_t, sources, values, axis=1)   # row j of W^T: the inputs of unit j
  return w_t.T.astype(np.float32), sources.astype(np.int32), values.astype(np.float32)


def _variants(w: np.ndarray, sources: np.ndarray, values: np.ndarray, splits=(2, 4)):
  w = jnp.asarray(w)
  w_t = jnp.asarray(np.ascontiguousarray(w.T))
  idx, vals = jnp.asarray(sources), jnp.asarray(values)
  products = {
      "dense h @ W": lambda h: h @ w,
      "dense W^T @ h": lambda h: w_t @ h,
      "gather": lambda h: jnp.sum(vals * h[idx], axis=1),
      "bcoo": lambda h, m=sparse.BCOO.fromdense(w_t): m @ h,
      "bcsr": lambda h, m=sparse.BCSR.fromdense(w_t): m @ h,
  }
  for parts in splits:
    blocks = jnp.split(w_t, parts, axis=0)
    products[f"split x{parts}"] = lambda h, blocks=blocks: jnp.concatenate([b @ h for b in blocks])

  def run(product):
    def body(h, drive):
      h = 0.7 * h + 0.3 * jnp.tanh(product(h) + drive)
      return h, h
    return jax.jit(lambda h0, drives: jax.lax.scan(body, h0, drives)[1])

  return {name: run(product) for name, product in products.items()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--units", type=int, default=2000, help="H")
  parser.add_argument("--length", type=int, default=3000, help="T, steps")
  parser.add_argument("--connectivity", type=float, default=0.1)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--quick", action="store_true", help="smoke run: H=64, T=50, 1 repeat")
  parser.add_argument("--json", default=None, help="also write the results to this file")
  args = parser.parse_args(argv)
  if args.quick:
    args.units, args.length, args.repeats = 64, 50, 1
  w, sources, values = _reservoir(args.units, args.connectivity, seed=0)
  drives = jnp.asarray(np.random.default_rng(1).standard_normal((args.length, args.units)) * 0.1,
                       jnp.float32)
  h0 = jnp.zeros(args.units, jnp.float32)
  variants = _variants(w, sources, values)
  reference = np.asarray(jax.block_until_ready(variants["dense h @ W"](h0, drives)))
  errors = {}
  for name, fn in variants.items():
    errors[name] = float(np.max(np.abs(np.asarray(jax.block_until_ready(fn(h0, drives))) - reference)))
  times = {name: [] for name in variants}
  for _ in range(args.repeats):
    for name, fn in variants.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(h0, drives))
      times[name].append(time.perf_counter() - start)
  base = statistics.median(times["dense W^T @ h"])
  rows = []
  print(f"backend {jax.default_backend()}, H={args.units}, T={args.length}, "
        f"connectivity {args.connectivity}, float32, median of {args.repeats}")
  print("| product | median s | ÷ dense W^T @ h (above 1: slower) | max abs diff vs dense |")
  print("|---|---|---|---|")
  for name in variants:
    median = statistics.median(times[name])
    rows.append({"product": name, "median_s": median, "vs_dense": median / base,
                 "max_abs_diff": errors[name], "seconds": times[name]})
    print(f"| {name} | {median:.3f} | {median / base:.2f} | {errors[name]:.1e} |")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"benchmark": "esn_matvec", "units": args.units, "length": args.length,
                 "connectivity": args.connectivity, "rows": rows}, f, indent=1)
  return rows


if __name__ == "__main__":
  main()
