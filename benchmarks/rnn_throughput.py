r"""Recurrent-layer throughput: seqjax vs ``flax.linen.RNN`` vs PyTorch, on this backend.

Tokens/s of training and inference of one LSTM, GRU or tanh RNN layer (the
layers and the training step of ``rnn_models.py``) per (cell, T, H), in the
implementations ``--impls`` (default seqjax, flax, torch). For a cell with a
fast path the ``seqjax`` row (``implementation=--seqjax-implementation``,
default ``auto``) is joined by the other route: ``seqjax-scan`` where it took
the fast path, ``seqjax-fast`` where it took the plain scan. Each
implementation runs in its own worker process that compiles a configuration
once; the repeats then alternate between the workers. A repeat runs one
untimed step, then 1, 2, 4, ... steps back to back until one such run lasts
``--min-seconds`` (half that for inference); tokens/s = B*T / seconds per step,
median over repeats; the ratios are those of the medians. The compile time is
that of ``jax.jit(train_step).lower(...).compile()``, tracing included.

FLOPs count the gate matmuls only: forward 2*B*T*(D+H)*G*H with G = 4 (LSTM),
3 (GRU), 1 (RNN); a training step ~3x forward. They are set against the float32
matmul peak measured in each framework (N x N @ N x N, N = 2048, the fastest of
5), which is below the hardware's: a share above 100% is possible.

torch is a benchmark-only dependency (``pip install -e .[benchmark]``); without
it the script says so and compares the rest. On the CPU torch's RNNs run
mkldnn's fused RNN primitives; ``--torch-no-mkldnn`` turns them off, to see
what they are worth. torch's OpenMP threads slow down many times over when
another process takes one of the cores (its repeats then disagree, and the
table says so): time on an otherwise idle machine, or compare with
``--threads 1``.

  python benchmarks/rnn_throughput.py                    # the table of docs/performance.md
  python benchmarks/rnn_throughput.py --cells lstm --shapes 100x256 --json /tmp/lstm.json
  python benchmarks/rnn_throughput.py --shapes 100x256 --impls torch --torch-no-mkldnn
  python benchmarks/rnn_throughput.py --quick            # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import os

import harness
import rnn_models

DEFAULTS = dict(shapes="100x256,1000x256,100x1024", batch=64, input_size=32, repeats=3,
                min_seconds=0.5, peak_size=2048)
QUICK = dict(shapes="8x16", batch=4, input_size=4, repeats=1, min_seconds=0.02, peak_size=256)
PEAK_NAMES = {"seqjax": "JAX", "torch": "torch"}


def torch_available() -> bool:
  return importlib.util.find_spec("torch") is not None


def parse_args(argv=None) -> argparse.Namespace:
  parser = harness.parser(__doc__.split("\n\n")[0])
  parser.add_argument("--shapes", default=None,
                      help="comma-separated TxH (default " + DEFAULTS["shapes"] + ")")
  parser.add_argument("--batch", type=int, default=None, help="B (default 64)")
  parser.add_argument("--input-size", type=int, default=None, help="D (default 32)")
  parser.add_argument("--cells", default="lstm,gru,rnn")
  parser.add_argument("--impls", default="seqjax,flax,torch", help="of " + ",".join(
      rnn_models.IMPLS) + "; the other seqjax route joins seqjax for cells with a fast path")
  parser.add_argument("--seqjax-implementation", default="auto", choices=("auto", "scan", "fast"),
                      help="unroll(implementation=...) of the 'seqjax' rows")
  parser.add_argument("--repeats", type=int, default=None, help="default 3")
  parser.add_argument("--min-seconds", type=float, default=None,
                      help="timed steps per repeat fill this long (default 0.5; inference half)")
  parser.add_argument("--peak-size", type=int, default=None, help="N of the matmul peak")
  parser.add_argument("--torch-no-mkldnn", action="store_true",
                      help="torch.backends.mkldnn.enabled = False: torch's CPU RNNs then run "
                      "ATen's own kernels instead of mkldnn's fused RNN primitives")
  args = parser.parse_args(argv)
  if args.worker:
    return args
  harness.fill_defaults(args, DEFAULTS, QUICK)
  try:
    args.shapes = harness.parse_shapes(args.shapes)
    args.cells = harness.parse_names(args.cells, rnn_models.GATES, "--cells")
    args.impls = harness.parse_names(args.impls, rnn_models.IMPLS, "--impls")
  except argparse.ArgumentTypeError as error:
    parser.error(str(error))
  return args


def impls_for(cell: str, args, info: dict) -> list[str]:
  """``--impls``, with the seqjax route that ``seqjax`` did not take after it."""
  impls = list(args.impls)
  features = info["cells"][cell]
  if "seqjax" not in impls or not features["has_fast"]:
    return impls
  taken = args.seqjax_implementation
  if taken == "auto":
    taken = features["auto"]
  other = "seqjax-scan" if taken == "fast" else "seqjax-fast"
  if other not in impls:
    impls.insert(impls.index("seqjax") + 1, other)
  return impls


def implementation(impl: str, args) -> str:
  """The ``unroll(implementation=...)`` of a seqjax row ("" for flax and torch)."""
  if impl == "seqjax":
    return args.seqjax_implementation
  return rnn_models.IMPLEMENTATIONS.get(impl) or ""


def throughput(args, pool: harness.Pool, info: dict) -> list[dict]:
  """A row per (cell, T, H, impl): every repeat's seconds, medians, rates and ratios."""
  rows = []
  for cell in args.cells:
    impls = impls_for(cell, args, info)
    for length, hidden in args.shapes:
      config = dict(cell=cell, length=length, hidden=hidden, batch=args.batch,
                    input_size=args.input_size, min_seconds=args.min_seconds)
      replies = harness.alternate(
          impls, args.repeats,
          lambda impl: pool.request(impl, op="measure",
                                    implementation=implementation(impl, args), **config),
          label=f"[throughput] {cell} T={length} H={hidden}")
      tokens = args.batch * length
      flops = rnn_models.forward_flops(cell, args.batch, length, args.input_size, hidden)
      by_impl = {}
      for impl in impls:
        done = replies[impl]["replies"]
        row = dict(config, impl=impl, implementation=implementation(impl, args),
                   error=replies[impl]["error"],
                   train_s=[r["train_s"] for r in done], infer_s=[r["infer_s"] for r in done],
                   compile_s=done[0]["compile_s"] if done else None,
                   loss=done[-1]["loss"] if done else None)
        for kind, work in (("train", 3 * flops), ("infer", flops)):
          seconds = harness.median(row[kind + "_s"])
          row[kind + "_median_s"] = seconds
          row[kind + "_tokens_per_s"] = harness.ratio(tokens, seconds)
          row[kind + "_gflops"] = harness.ratio(work / 1e9, seconds)
        by_impl[impl] = row
      for row in by_impl.values():
        for reference in ("torch", "flax"):
          for kind in ("train", "infer"):
            rate = by_impl.get(reference, {}).get(kind + "_tokens_per_s")
            row[f"{kind}_vs_{reference}"] = harness.ratio(row[kind + "_tokens_per_s"], rate)
        rows.append(row)
  return rows


def label(row: dict, info: dict) -> str:
  if row["impl"] != "seqjax":
    return row["impl"]
  if row["implementation"] == "auto":
    return f"seqjax (auto: {info['cells'][row['cell']]['auto']})"
  return f"seqjax ({row['implementation']})"


def throughput_table(rows: list[dict], info: dict, peaks: dict[str, float]) -> str:
  """The markdown table of ``throughput``'s rows, with notes on repeats that disagree."""
  header = ["cell", "T", "H", "impl", "train tok/s", "infer tok/s", "train ÷ torch",
            "infer ÷ torch", "train ÷ flax", "infer ÷ flax", "train GFLOP/s (% of peak)",
            "infer GFLOP/s (% of peak)", "compile s"]
  lines, notes = [], []
  for row in rows:
    start = [row["cell"], str(row["length"]), str(row["hidden"]), label(row, info)]
    if row["error"] and not row["train_s"]:
      lines.append(start + [f"error: {row['error']}"] + [""] * 8)
      continue
    lines.append(start + [
        harness.fmt_rate(row["train_tokens_per_s"]), harness.fmt_rate(row["infer_tokens_per_s"]),
        harness.fmt_ratio(row["train_vs_torch"]), harness.fmt_ratio(row["infer_vs_torch"]),
        harness.fmt_ratio(row["train_vs_flax"]), harness.fmt_ratio(row["infer_vs_flax"]),
        harness.of_peak(row["train_gflops"], peaks), harness.of_peak(row["infer_gflops"], peaks),
        "—" if row["compile_s"] is None else f"{row['compile_s']:.2f}"])
    for kind in ("train", "infer"):
      notes.append(harness.spread_note(
          f"{row['impl']} {row['cell']} T={row['length']} H={row['hidden']} {kind}",
          row[kind + "_s"]))
  return "\n".join([harness.table(header, lines)] + [n for n in notes if n])


def main(argv=None) -> dict:
  """Measures, prints the table and returns (and with --json saves) the raw results."""
  args = parse_args(argv)
  if args.worker:
    harness.serve(rnn_models.make_worker(args.worker, args.threads))
    return {}
  if "torch" in args.impls and not torch_available():
    print("torch is not installed (pip install -e .[benchmark]): comparing "
          f"{', '.join(i for i in args.impls if i != 'torch')} only", flush=True)
    args.impls = [i for i in args.impls if i != "torch"]
  if args.torch_no_mkldnn:
    os.environ[rnn_models.TORCH_MKLDNN_ENV] = "0"  # inherited by the torch worker
  results = {"args": dict(vars(args))}
  with harness.Pool(__file__, rnn_models.make_worker, args.threads, args.in_process) as pool:
    info = {"seqjax": pool.request("seqjax", op="info", cells=args.cells)}
    if "error" in info["seqjax"]:
      raise RuntimeError(f"seqjax worker: {info['seqjax']['error']}")
    impls = [impl for cell in args.cells for impl in impls_for(cell, args, info["seqjax"])]
    pool.start(impls)
    if "torch" in impls:
      info["torch"] = pool.request("torch", op="info")
    peaks = {}
    for name in ("seqjax", "torch"):
      if name in info:
        info[name]["peak_gflops"] = pool.request(name, op="peak", size=args.peak_size)["gflops"]
        peaks[PEAK_NAMES[name]] = info[name]["peak_gflops"]
    results["info"] = info
    print(f"backend {info['seqjax']['backend']} ({info['seqjax']['device']}), "
          + ", ".join(f"{k} {v}" for k, v in info["seqjax"]["versions"].items())
          + (f", torch {info['torch']['versions']['torch']} ({info['torch']['device']})"
             if "torch" in info else ""))
    print(f"float32 matmul peak ({args.peak_size}^3), GFLOP/s: "
          + ", ".join(f"{name} {peak:.1f}" for name, peak in peaks.items()))
    print(f"B={args.batch}, D={args.input_size}, float32; tokens/s = B*T / s per step, median "
          f"of {args.repeats}; training = forward + MSE + backward + clip + Adam", flush=True)
    results["throughput"] = throughput(args, pool, info["seqjax"])
  print(throughput_table(results["throughput"], info["seqjax"], peaks), flush=True)
  harness.save_json(args.json, results)
  return results


if __name__ == "__main__":
  main()
