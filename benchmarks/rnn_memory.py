r"""Memory of an LSTM gradient over a long sequence, with and without ``remat``.

``value_and_grad`` of a loss over ``unroll`` of a 1-layer seqjax LSTM (H, B,
D and T=``--length`` from the flags), with batch-major (B, T, D) and
time-major (T, B, D) inputs, each with and without ``remat``; every variant in
a fresh process. Per variant: XLA's memory analysis of the compiled step
(arguments + outputs + temporaries - aliased; on the CPU
``peak_memory_in_bytes`` counts only the arguments and outputs) and, where
that prediction fits in ``--run-fraction`` of the available memory, the
process's peak RSS (or the device's peak bytes in use) and the wall time of
one step.

  python benchmarks/rnn_memory.py --run-fraction 0.3     # docs/performance.md
  python benchmarks/rnn_memory.py --quick --json /tmp/memory.json
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

import harness

DEFAULTS = dict(length=100_000, batch=16, hidden=256, input_size=32)
QUICK = dict(length=200, batch=4, hidden=16, input_size=4)
ANALYSIS_FIELDS = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
                   "temp_size_in_bytes", "generated_code_size_in_bytes", "peak_memory_in_bytes")


def peak_rss_bytes() -> int:
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return rss if sys.platform == "darwin" else rss * 1024  # KiB on Linux


def available_host_bytes() -> int:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


class MemoryWorker:
  """Compiles (and, if it fits, runs once) one variant of the LSTM gradient."""

  def __init__(self, name: str, threads: int):
    del name, threads

  def op_memory(self, request):
    # pylint: disable=import-outside-toplevel
    import jax
    import jax.numpy as jnp
    import seqjax
    cell = seqjax.cells.lstm(request["hidden"])
    params = cell.init(jax.random.PRNGKey(0), request["input_size"])
    xs, _ = harness.inputs(request["batch"], request["length"], request["input_size"], 1)
    time_major = request["time_major"]
    xs = jax.device_put(np.ascontiguousarray(np.swapaxes(xs, 0, 1)) if time_major else xs)

    def loss_fn(params, xs):
      _, ys = seqjax.unroll(cell, params, xs, remat=request["remat"], time_major=time_major,
                            implementation=request["implementation"])
      return jnp.mean(ys ** 2)

    start = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(loss_fn)).lower(params, xs).compile()
    result = {"compile_s": time.perf_counter() - start}
    stats = compiled.memory_analysis()
    analysis = result["analysis"] = ({name: int(getattr(stats, name)) for name in ANALYSIS_FIELDS
                                      if hasattr(stats, name)} if stats is not None else {})
    if analysis:
      result["predicted_bytes"] = (analysis.get("argument_size_in_bytes", 0)
                                   + analysis.get("output_size_in_bytes", 0)
                                   + analysis.get("temp_size_in_bytes", 0)
                                   - analysis.get("alias_size_in_bytes", 0))
    device = jax.devices()[0]
    device_stats = None if jax.default_backend() == "cpu" else (device.memory_stats() or None)
    if device_stats:
      available = device_stats.get("bytes_limit", 0) - device_stats.get("bytes_in_use", 0)
    else:
      available = available_host_bytes()
    result["available_bytes"] = available
    predicted = result.get("predicted_bytes")
    result["ran"] = bool(predicted is not None
                         and predicted <= request["run_fraction"] * available)
    if result["ran"]:
      result["rss_before_bytes"] = peak_rss_bytes()
      start = time.perf_counter()
      loss, _ = jax.block_until_ready(compiled(params, xs))
      result["step_s"] = time.perf_counter() - start
      result["loss"] = float(loss)
      result["peak_rss_bytes"] = peak_rss_bytes()
      if device_stats:
        result["device_peak_bytes"] = (device.memory_stats() or {}).get("peak_bytes_in_use")
    return result


def parse_args(argv=None) -> argparse.Namespace:
  parser = harness.parser(__doc__.split("\n\n")[0])
  parser.add_argument("--length", type=int, default=None, help="T (default 100000)")
  parser.add_argument("--batch", type=int, default=None, help="B (default 16)")
  parser.add_argument("--hidden", type=int, default=None, help="H (default 256)")
  parser.add_argument("--input-size", type=int, default=None, help="D (default 32)")
  parser.add_argument("--implementation", default="auto", choices=("auto", "scan", "fast"),
                      help="the unroll implementation (remat applies to every one)")
  parser.add_argument("--run-fraction", type=float, default=0.5,
                      help="run a variant only if its predicted memory is at most this share "
                      "of the available memory (0: analysis only)")
  args = parser.parse_args(argv)
  return args if args.worker else harness.fill_defaults(args, DEFAULTS, QUICK)


def memory(args, pool: harness.Pool) -> list[dict]:
  """A row per (layout, remat), each from a fresh process."""
  rows = []
  # Batch-major (B, T, D) inputs cost two transposed copies of ys (and of its
  # gradient) on top of the time-major layout unroll works in.
  for time_major in (False, True):
    for remat in (True, False):
      reply = pool.fresh("seqjax", op="memory", remat=remat, time_major=time_major,
                         length=args.length, batch=args.batch, hidden=args.hidden,
                         input_size=args.input_size, implementation=args.implementation,
                         run_fraction=args.run_fraction)
      reply.update(remat=remat, time_major=time_major)
      harness.log(f"[memory] time_major={time_major} remat={remat}: {reply}")
      rows.append(reply)
  return rows


def memory_table(rows: list[dict], args) -> str:
  header = ["layout", "remat", "predicted (args + out + temp - alias)", "temp", "arguments",
            "outputs", "XLA peak_memory_in_bytes", "ran", "peak RSS (increase in step)", "step s"]
  lines = []
  for row in rows:
    layout = "time-major (T, B, D)" if row["time_major"] else "batch-major (B, T, D)"
    if "error" in row:
      lines.append([layout, str(row["remat"]), f"error: {row['error']}"] + [""] * 7)
      continue
    analysis = row["analysis"]
    if not row["ran"]:
      rss, step = "—", "—"
      ran = ("no (analysis only)" if args.run_fraction <= 0 else
             f"no (> {args.run_fraction:.0%} of {harness.fmt_bytes(row['available_bytes'])} free)")
    elif row.get("device_peak_bytes"):
      ran, rss, step = "yes", f"device {harness.fmt_bytes(row['device_peak_bytes'])}", row["step_s"]
    else:
      increase = row["peak_rss_bytes"] - row["rss_before_bytes"]
      ran, step = "yes", row["step_s"]
      rss = f"{harness.fmt_bytes(row['peak_rss_bytes'])} ({harness.fmt_bytes(increase)})"
    lines.append([layout, str(row["remat"]), harness.fmt_bytes(row.get("predicted_bytes"))]
                 + [harness.fmt_bytes(analysis.get(name)) for name in (
                     "temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
                     "peak_memory_in_bytes")]
                 + [ran, rss, step if step == "—" else f"{step:.1f}"])
  return (f"1-layer seqjax LSTM value_and_grad, H={args.hidden}, B={args.batch}, "
          f"D={args.input_size}, T={args.length}, implementation={args.implementation}\n"
          + harness.table(header, lines))


def main(argv=None) -> dict:
  args = parse_args(argv)
  if args.worker:
    harness.serve(MemoryWorker(args.worker, args.threads))
    return {}
  with harness.Pool(__file__, MemoryWorker, args.threads, args.in_process) as pool:
    results = {"args": dict(vars(args)), "memory": memory(args, pool)}
  print(memory_table(results["memory"], args), flush=True)
  harness.save_json(args.json, results)
  return results


if __name__ == "__main__":
  main()
