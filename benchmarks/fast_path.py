r"""Where should ``unroll(implementation="auto")`` take a cell's fast path? Measured here.

For each cell (LSTM, GRU, tanh RNN) and (T, H) of the throughput benchmark,
times the training step of ``rnn_models.py`` (forward + MSE + backward + clip
+ Adam) and the forward pass of three routes, side by side in this one
process: ``fast`` (``implementation="fast"``, the cell's custom-VJP fast path
``cell.fast``), ``scan`` (autodiff of the plain ``lax.scan`` of ``step``) and
``flax`` (``flax.linen.RNN``). The repeats alternate (fast, scan, flax, flax,
scan, fast, ...); each repeat times one untimed step, then 1, 2, 4, ... steps
until a run lasts ``--min-seconds``. A speed ratio ``a ÷ b`` is the median
over repeats of b's seconds over a's in that repeat (paired, so that slow
phases of the machine cancel); above 1, a is faster.

The verdict per cell: ``fast`` where the fast path trained faster than the scan
at every shape, ``scan`` where it was slower at every shape, and ``depends on
the shape`` otherwise. ``seqjax.cells.fused.BACKENDS`` records, per cell, the
backends on which ``auto`` takes the fast path; the last lines print what this
run says it should hold for this backend, and whether the route ``auto`` takes
today trains at least as fast as Flax at every shape.

  python benchmarks/fast_path.py                                  # docs/performance.md
  python benchmarks/fast_path.py --cells gru --shapes 100x256 --repeats 9 --json /tmp/gru.json
  python benchmarks/fast_path.py --quick
"""

from __future__ import annotations

import argparse

import harness
import rnn_models

DEFAULTS = dict(shapes="100x256,1000x256,100x1024", batch=64, input_size=32, repeats=5,
                min_seconds=0.5)
QUICK = dict(shapes="8x16", batch=4, input_size=4, repeats=2, min_seconds=0.02)
ROUTES = {"fast": "seqjax-fast", "scan": "seqjax-scan", "flax": "flax"}
PAIRS = (("fast", "scan"), ("fast", "flax"), ("scan", "flax"))


def parse_args(argv=None) -> argparse.Namespace:
  parser = harness.parser(__doc__.split("\n\n")[0], workers=False)
  parser.add_argument("--shapes", default=None,
                      help="comma-separated TxH (default " + DEFAULTS["shapes"] + ")")
  parser.add_argument("--batch", type=int, default=None, help="B (default 64)")
  parser.add_argument("--input-size", type=int, default=None, help="D (default 32)")
  parser.add_argument("--cells", default="lstm,gru,rnn")
  parser.add_argument("--repeats", type=int, default=None, help="default 5")
  parser.add_argument("--min-seconds", type=float, default=None,
                      help="timed steps per repeat fill this long (default 0.5; inference half)")
  args = parser.parse_args(argv)
  harness.fill_defaults(args, DEFAULTS, QUICK)
  try:
    args.shapes = harness.parse_shapes(args.shapes)
    args.cells = harness.parse_names(args.cells, rnn_models.GATES, "--cells")
  except argparse.ArgumentTypeError as error:
    parser.error(str(error))
  return args


def paired_speedup(a: list[float], b: list[float]) -> float:
  """Median over repeats of ``b[i] / a[i]``: how many times faster a ran than b."""
  return harness.median([y / x for x, y in zip(a, b)])


def compare(args, pool: harness.Pool, cell: str, length: int, hidden: int) -> dict:
  """One (cell, T, H): every repeat's seconds per route and the paired speed ratios."""
  config = dict(cell=cell, length=length, hidden=hidden, batch=args.batch,
                input_size=args.input_size, min_seconds=args.min_seconds)
  replies = harness.alternate(list(ROUTES), args.repeats,
                              lambda route: pool.request(ROUTES[route], op="measure", **config),
                              label=f"[fast_path] {cell} T={length} H={hidden}")
  errors = {route: r["error"] for route, r in replies.items() if r["error"]}
  if errors:
    raise RuntimeError(f"{cell} T={length} H={hidden}: {errors}")
  row = dict(config, **{kind + "_s": {route: [r[kind + "_s"] for r in replies[route]["replies"]]
                                      for route in ROUTES} for kind in ("train", "infer")})
  for kind in ("train", "infer"):
    times = row[kind + "_s"]
    row[kind + "_speedup"] = {f"{a}/{b}": paired_speedup(times[a], times[b]) for a, b in PAIRS}
  row["fast_wins"] = sum(f < s for f, s in zip(row["train_s"]["fast"], row["train_s"]["scan"]))
  return row


def verdict(rows: list[dict]) -> str:
  """``fast``, ``scan`` or ``depends on the shape`` from one cell's training speed-ups."""
  faster = [row["train_speedup"]["fast/scan"] > 1 for row in rows]
  return "fast" if all(faster) else ("scan" if not any(faster) else "depends on the shape")


def report(results: dict) -> str:
  """The table, the verdict per cell and the check of today's ``auto`` against Flax."""
  backend, auto = results["info"]["backend"], results["info"]["cells"]
  lines = []
  for row in results["rows"]:
    train, infer = row["train_speedup"], row["infer_speedup"]
    medians = {route: harness.median(row["train_s"][route]) for route in ROUTES}
    taken = auto[row["cell"]]["auto"]
    lines.append([row["cell"], str(row["length"]), str(row["hidden"])]
                 + [f"{1e3 * medians[route]:.1f}" for route in ROUTES]
                 + [harness.fmt_ratio(train[pair]) for pair in ("fast/scan", "fast/flax",
                                                                 "scan/flax")]
                 + [f"{row['fast_wins']}/{len(row['train_s']['fast'])}",
                    harness.fmt_ratio(train[f"{taken}/flax"]) + f" ({taken})",
                    harness.fmt_ratio(infer["fast/scan"])])
  header = ["cell", "T", "H", "train ms fast", "scan", "flax", "train fast ÷ scan",
            "fast ÷ flax", "scan ÷ flax", "fast won", "auto today ÷ flax", "infer fast ÷ scan"]
  out = [harness.table(header, lines), ""]
  for cell, rule in results["verdict"].items():
    should = "takes" if rule == "fast" else "does not take"
    speedups = [r["train_speedup"]["fast/scan"] for r in results["rows"] if r["cell"] == cell]
    out.append(f"{cell}: the fast path trained faster than the scan at "
               f"{sum(s > 1 for s in speedups)} of {len(speedups)} shapes -> {rule}"
               + ("" if rule == "depends on the shape" else
                  f" (auto {should} it on {backend}; today: {auto[cell]['auto']})"))
  slow = [f"{r['cell']} T={r['length']} H={r['hidden']}" for r in results["rows"]
          if r["train_speedup"][f"{auto[r['cell']]['auto']}/flax"] < 1]
  out.append("auto today trains at least as fast as flax at every shape" if not slow else
             "auto today trains slower than flax at: " + ", ".join(slow))
  return "\n".join(out)


def main(argv=None) -> dict:
  """Measures, prints the report and returns (and with --json saves) the raw results."""
  args = parse_args(argv)
  results = {"args": dict(vars(args)), "rows": []}
  with harness.Pool(__file__, rnn_models.make_worker, 1, in_process=True) as pool:
    results["info"] = pool.request("seqjax-fast", op="info", cells=args.cells)
    for cell in args.cells:
      if not results["info"]["cells"][cell]["has_fast"]:
        raise ValueError(f"{cell} has no fast path")
      for length, hidden in args.shapes:
        results["rows"].append(compare(args, pool, cell, length, hidden))
  results["verdict"] = {cell: verdict([r for r in results["rows"] if r["cell"] == cell])
                        for cell in args.cells}
  info = results["info"]
  print(f"backend {info['backend']} ({info['device']}), "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f"; B={args.batch}, D={args.input_size}, float32, {args.repeats} paired repeats; "
        "training = forward + MSE + backward + clip + Adam")
  print(report(results), flush=True)
  harness.save_json(args.json, results)
  return results


if __name__ == "__main__":
  main()
