r"""Compile time of a 2-layer LSTM training step: seqjax (both routes) vs ``flax.linen.RNN``.

The training step of ``rnn_models.py`` (forward + MSE + backward + clip +
Adam) over two stacked layers (seqjax ``layers.stacked``; two ``nn.RNN``
layers in Flax) at ``--shape`` TxH, each implementation in a fresh process so
that no cache is warm: the seconds of tracing + lowering and of XLA's compile.

  python benchmarks/rnn_compile.py                       # docs/performance.md
  python benchmarks/rnn_compile.py --quick --json /tmp/compile.json
"""

from __future__ import annotations

import argparse

import harness
import rnn_models

DEFAULTS = dict(shape="100x256", batch=64, input_size=32, layers=2)
QUICK = dict(shape="8x16", batch=4, input_size=4, layers=2)
IMPLS = ("seqjax", "seqjax-scan", "seqjax-fast", "flax")


def parse_args(argv=None) -> argparse.Namespace:
  parser = harness.parser(__doc__.split("\n\n")[0])
  parser.add_argument("--shape", default=None, help="TxH (default 100x256)")
  parser.add_argument("--batch", type=int, default=None, help="B (default 64)")
  parser.add_argument("--input-size", type=int, default=None, help="D (default 32)")
  parser.add_argument("--layers", type=int, default=None, help="default 2")
  parser.add_argument("--impls", default=",".join(IMPLS), help="of " + ",".join(IMPLS)
                      + "; seqjax is implementation='auto'")
  args = parser.parse_args(argv)
  if args.worker:
    return args
  harness.fill_defaults(args, DEFAULTS, QUICK)
  try:
    (args.length, args.hidden), = harness.parse_shapes(args.shape)
    args.impls = harness.parse_names(args.impls, IMPLS, "--impls")
  except (argparse.ArgumentTypeError, ValueError) as error:
    parser.error(str(error))
  return args


def compile_times(args, pool: harness.Pool) -> list[dict]:
  rows = []
  for impl in args.impls:
    reply = pool.fresh(impl, op="compile", cell="lstm", layers=args.layers, length=args.length,
                       hidden=args.hidden, batch=args.batch, input_size=args.input_size)
    reply["impl"] = impl
    harness.log(f"[compile] {impl}: {reply}")
    rows.append(reply)
  return rows


def compile_table(rows: list[dict], args) -> str:
  lines = [[row["impl"], f"error: {row['error']}", "", ""] if "error" in row else
           [row["impl"], f"{row['lower_s']:.2f}", f"{row['compile_s']:.2f}",
            f"{row['lower_s'] + row['compile_s']:.2f}"] for row in rows]
  return (f"{args.layers}-layer LSTM training step (Adam, clipping), B={args.batch}, "
          f"D={args.input_size}, T x H = {args.shape}, fresh process each\n"
          + harness.table(["impl", "trace + lower s", "XLA compile s", "total s"], lines))


def main(argv=None) -> dict:
  args = parse_args(argv)
  if args.worker:
    harness.serve(rnn_models.make_worker(args.worker, args.threads))
    return {}
  with harness.Pool(__file__, rnn_models.make_worker, args.threads, args.in_process) as pool:
    results = {"args": dict(vars(args)), "compile": compile_times(args, pool)}
  print(compile_table(results["compile"], args), flush=True)
  harness.save_json(args.json, results)
  return results


if __name__ == "__main__":
  main()
