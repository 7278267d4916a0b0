r"""seqjax vs reservoirpy on a matched echo-state protocol (Mackey-Glass one-step prediction).

The protocol (issue 18), the same on both sides point by point:

* data: one Mackey-Glass series (``reservoirpy.datasets.mackey_glass``, tau=17,
  seed 0), generated once and given to both libraries; input ``u_t``, target
  ``u_{t+1}``; train on the first ``--train`` steps (10,000), of which the
  first ``--washout`` (100) are left out of the fit, and test one step ahead
  (teacher forced) on the next ``--test`` (2,000), the reservoir running on
  from its last training state;
* reservoir: H units, leak rate 0.3, spectral radius 1.25 (exact, rescaled
  after drawing), input scaling 1.0 with dense U(-1, 1) input weights, no
  bias, N(0, 1) recurrent weights with 10% connectivity; reservoirpy draws
  exactly 10% of the entries (``rc_connectivity``), seqjax exactly
  ``round(0.1 H)`` inputs per unit (``seqjax.cells.esn``): the same count;
* readout: ridge 1e-6 on ``[u_t, x_t]``, intercept fitted and not penalised
  (reservoirpy ``[data, data >> reservoir] >> Ridge``; seqjax ``fit_readout``);
* score: ``seqjax.reservoir.nrmse`` (rms error over the target's std) on the
  test steps, for seeds 0..``--seeds``-1 on each side (the seeds of the two
  libraries draw different reservoirs: compare medians, not pairs);
* time: init (draw + spectral radius) + run (train and test) + fit + predict,
  wall clock, the libraries alternating seed by seed, after one untimed
  warm-up of each (which compiles seqjax's functions); the medians over the
  first ``--repeats`` seeds are reported, with seqjax's stages.

reservoirpy computes in float64; seqjax runs a float32 and a float64 row
(``jax_enable_x64`` inside the float64 rows only). Every setting of both sides
is printed (and in ``--json``), read back from the objects that ran, and a
check row runs seqjax on reservoirpy's own matrices of seed 0, whose NRMSE
must match reservoirpy's, which confirms that the two pipelines agree.

  python benchmarks/esn_vs_reservoirpy.py --units 500,2000 --dtypes float32,float64 \
      --seeds 12 --repeats 3 --json results.json

``--readout-threads [--busy 2]`` instead times ``fit_readout`` (10,000 steps) with
one host BLAS thread, its default, against the default thread count, alternating,
with ``--busy`` BLAS-bound numpy processes running meanwhile:

  python benchmarks/esn_vs_reservoirpy.py --readout-threads --units 500,2000 --busy 2

Needs the benchmark extra: ``pip install reservoirpy==0.4.2``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import seqjax
from seqjax.cells.esn import esn
from seqjax.reservoir import fit_readout, nrmse, readout
from seqjax.scan import unroll
from seqjax.types import FROZEN


def _parse(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--units", default="500,2000", help="reservoir sizes H, comma-separated")
  parser.add_argument("--dtypes", default="float32,float64", help="seqjax dtypes")
  parser.add_argument("--seeds", type=int, default=12, help="seeds 0..N-1 for the NRMSE")
  parser.add_argument("--repeats", type=int, default=3,
                      help="timed seeds (the first ones), median reported")
  parser.add_argument("--train", type=int, default=10_000, help="training steps (incl. washout)")
  parser.add_argument("--test", type=int, default=2_000, help="held-out steps")
  parser.add_argument("--washout", type=int, default=100)
  parser.add_argument("--leak-rate", type=float, default=0.3)
  parser.add_argument("--spectral-radius", type=float, default=1.25)
  parser.add_argument("--input-scaling", type=float, default=1.0)
  parser.add_argument("--connectivity", type=float, default=0.1)
  parser.add_argument("--ridge", type=float, default=1e-6)
  parser.add_argument("--json", default=None, help="also write the results to this file")
  parser.add_argument("--readout-threads", action="store_true",
                      help="instead: time fit_readout with one host BLAS thread (its default) "
                           "against the default thread count, alternating, per --units")
  parser.add_argument("--busy", type=int, default=0,
                      help="with --readout-threads: keep this many BLAS-bound numpy "
                           "processes running meanwhile (a busy machine)")
  args = parser.parse_args(argv)
  if not 1 <= args.repeats <= args.seeds:
    parser.error(f"--repeats must be in [1, --seeds], got {args.repeats} and {args.seeds}")
  return args


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def _dtype_context(dtype: str):
  return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


class Seqjax:
  """seqjax's pipeline for one (H, dtype): ``esn`` -> ``unroll`` -> ``fit_readout``."""

  def __init__(self, args, units: int, dtype: str):
    self.args, self.units, self.dtype = args, units, dtype
    self.esn_kwargs = dict(hidden_size=units, spectral_radius=args.spectral_radius,
                           connectivity=args.connectivity, input_scaling=args.input_scaling,
                           bias_scaling=0.0, leak_rate=args.leak_rate, spectral_method="exact",
                           dtype=dtype)
    self.fit_kwargs = dict(ridge=args.ridge, washout=args.washout, bias=True)
    self.cell = esn(**self.esn_kwargs)
    self._run = jax.jit(lambda params, inputs: unroll(self.cell, params, inputs)[1])

  def once(self, seed, inputs, targets, params=None):
    """(test predictions, params, stage seconds); every stage is waited for."""
    args, stages = self.args, {}
    start = time.perf_counter()
    if params is None:
      params = self.cell.init(jax.random.PRNGKey(seed), 1)
    params = jax.block_until_ready(params)
    stages["init"] = time.perf_counter() - start
    start = time.perf_counter()
    states = jax.block_until_ready(self._run(params, inputs))
    stages["run"] = time.perf_counter() - start
    start = time.perf_counter()
    # Called eagerly, as a user does: fit_readout then solves with one host
    # BLAS thread and returns when done.
    fitted = fit_readout(inputs[:args.train], states[:args.train], targets[:args.train],
                         **self.fit_kwargs)
    stages["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    predictions = jax.block_until_ready(
        readout(fitted, inputs[args.train:], states[args.train:]))
    stages["predict"] = time.perf_counter() - start
    return predictions, params, stages

  def matched(self, params):
    """The protocol's settings as this side ran them, read back from its objects."""
    frozen = {k: np.asarray(v) for k, v in params[FROZEN].items()}
    return _matched(
        units=frozen["w_rec"].shape[0], spectral_radius=self.esn_kwargs["spectral_radius"],
        leak_rate=self.esn_kwargs["leak_rate"], input_scaling=self.esn_kwargs["input_scaling"],
        w_in=frozen["w_in"], w_rec=frozen["w_rec"], bias=frozen["b"],
        ridge=self.fit_kwargs["ridge"], washout=self.fit_kwargs["washout"],
        readout_inputs=frozen["w_in"].shape[0] + frozen["w_rec"].shape[0],
        intercept=self.fit_kwargs["bias"])


def _matched(*, units, spectral_radius, leak_rate, input_scaling, w_in, w_rec, bias, ridge,
             washout, readout_inputs, intercept) -> dict:
  """One side's protocol settings, the weights described by what they hold."""
  w_in, w_rec = np.asarray(w_in, np.float64), np.asarray(w_rec, np.float64)
  uniform = (np.all(w_in != 0) and np.max(np.abs(w_in)) <= input_scaling
             and np.max(np.abs(w_in)) > 0.9 * input_scaling)
  return {
      "units": int(units),
      "spectral_radius": float(spectral_radius),
      "leak_rate": float(leak_rate),
      "input_scaling": float(input_scaling),
      "input_weights": ("dense U(-input_scaling, input_scaling)" if uniform
                        else f"{np.mean(w_in != 0):.3f} nonzero, max {np.max(np.abs(w_in)):.3g}"),
      "recurrent_nonzero_fraction": float(np.mean(w_rec != 0)),
      "reservoir_bias": float(np.max(np.abs(np.asarray(bias, np.float64)))),
      "ridge": float(ridge),
      "washout": int(washout),
      # w_in is (D, H): the readout sees [u_t, x_t] when it has D + H inputs.
      "readout_features": ("[u_t, x_t]" if readout_inputs == w_in.shape[0] + units
                           else f"{readout_inputs} features"),
      "intercept": "fitted, not penalised" if intercept else "none",
  }


class Reservoirpy:
  """reservoirpy's pipeline: ``[data, data >> Reservoir] >> Ridge``, fit then run."""

  def __init__(self, args, units: int):
    from reservoirpy.mat_gen import normal, uniform

    self.args, self.units = args, units
    self.reservoir_kwargs = dict(units=units, lr=args.leak_rate, sr=args.spectral_radius,
                                 input_scaling=args.input_scaling,
                                 rc_connectivity=args.connectivity, input_connectivity=1.0,
                                 W=normal, Win=uniform, bias=0.0)
    self.ridge_kwargs = dict(ridge=args.ridge)
    self.fit_kwargs = dict(warmup=args.washout)

  def once(self, seed, inputs, targets):
    """(test predictions, reservoir node, readout node, stage seconds)."""
    from reservoirpy.nodes import Input, Reservoir, Ridge

    args, stages = self.args, {}
    start = time.perf_counter()
    data = Input()
    reservoir = Reservoir(**self.reservoir_kwargs, seed=seed)
    ridge = Ridge(**self.ridge_kwargs)
    model = [data, data >> reservoir] >> ridge
    model.initialize(inputs[:1], targets[:1])  # draws W and Win (as fit would)
    stages["init"] = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(inputs[:args.train], targets[:args.train], **self.fit_kwargs)
    stages["run + fit"] = time.perf_counter() - start
    start = time.perf_counter()
    predictions = model.run(inputs[args.train:])
    stages["run + predict"] = time.perf_counter() - start
    return predictions, reservoir, ridge, stages

  @staticmethod
  def matched(reservoir, ridge, fit_kwargs):
    import scipy.sparse

    def dense(w):
      return w.toarray() if scipy.sparse.issparse(w) else np.asarray(w)

    # reservoirpy's weights act from the left (W x): transposed to seqjax's layout.
    return _matched(
        units=reservoir.units, spectral_radius=reservoir.sr, leak_rate=reservoir.lr,
        input_scaling=reservoir.input_scaling, w_in=dense(reservoir.Win).T,
        w_rec=dense(reservoir.W).T, bias=reservoir.bias, ridge=ridge.ridge,
        washout=fit_kwargs["warmup"], readout_inputs=ridge.input_dim,
        intercept=ridge.fit_bias)


def _plain(value):
  """A setting as JSON holds it; reservoirpy's initializers by name (``mat_gen.normal``)."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return "mat_gen." + str(value).strip("_()")


def _median(values):
  return statistics.median(values) if values else None


def _settings_text(settings) -> list[str]:
  lines = ["Settings (read back from the objects that ran):"]
  for side in ("seqjax", "reservoirpy"):
    for call, kwargs in settings[side].items():
      text = ", ".join(f"{k}={v}" for k, v in kwargs.items())
      lines.append(f"  {side} {call}({text})")
  lines.append("  protocol: " + ", ".join(f"{k}={v}" for k, v in settings["protocol"].items()))
  return lines


def run(args) -> dict:
  import reservoirpy
  from reservoirpy.datasets import mackey_glass

  units_list = [int(u) for u in args.units.split(",")]
  dtypes = [d.strip() for d in args.dtypes.split(",")]
  for dtype in dtypes:
    if dtype not in ("float32", "float64"):
      raise SystemExit(f"error: --dtypes takes float32 and/or float64, got {dtype!r}")
  series = np.asarray(mackey_glass(args.train + args.test + 1, tau=17, seed=0), np.float64)
  inputs_np, targets_np = series[:-1], series[1:]
  test_targets = targets_np[args.train:]
  protocol = {"series": "reservoirpy.datasets.mackey_glass(tau=17, seed=0)",
              "train": args.train, "washout": args.washout, "test": args.test,
              "seeds": args.seeds, "timed_repeats": args.repeats,
              "nrmse": "seqjax.reservoir.nrmse: rms(y - y_hat) / std(y) on the test steps"}

  rows, checks, matched, settings = [], [], {}, None
  for units in units_list:
    rpy = Reservoirpy(args, units)
    sides = {}
    for dtype in dtypes:
      with _dtype_context(dtype):
        side = Seqjax(args, units, dtype)
        inputs, targets = jnp.asarray(inputs_np, dtype), jnp.asarray(targets_np, dtype)
        start = time.perf_counter()
        side.once(args.seeds, inputs, targets)  # warm-up: compiles for these shapes
        warmup = time.perf_counter() - start
        sides[dtype] = (side, inputs, targets, warmup)
    rpy.once(args.seeds, inputs_np, targets_np)  # warm-up
    times = {"reservoirpy": [], **{d: [] for d in dtypes}}
    stages = {"reservoirpy": [], **{d: [] for d in dtypes}}
    errors = {"reservoirpy": [], **{d: [] for d in dtypes}}
    for seed in range(args.seeds):
      # Alternate which library goes first, so drift hits both alike.
      order = ["reservoirpy", *dtypes] if seed % 2 == 0 else [*dtypes, "reservoirpy"]
      for name in order:
        if name == "reservoirpy":
          predictions, reservoir, ridge, stage = rpy.once(seed, inputs_np, targets_np)
          if seed == 0:
            rpy_reservoir = reservoir
            matched[(units, "reservoirpy")] = rpy.matched(reservoir, ridge, rpy.fit_kwargs)
        else:
          side, inputs, targets, _ = sides[name]
          with _dtype_context(name):
            predictions, params, stage = side.once(seed, inputs, targets)
            if seed == 0:
              matched[(units, name)] = side.matched(params)
        errors[name].append(float(nrmse(np.asarray(predictions, np.float64), test_targets)))
        times[name].append(sum(stage.values()))
        stages[name].append(stage)
        _log(f"H={units} seed {seed} {name}: {sum(stage.values()):.3f} s "
             f"({', '.join(f'{k} {v:.3f}' for k, v in stage.items())}), "
             f"NRMSE {errors[name][-1]:.4e}")
    reference_time = _median(times["reservoirpy"][:args.repeats])
    for name in ["reservoirpy", *dtypes]:
      timed = times[name][:args.repeats]
      row = {
          "units": units,
          "library": "reservoirpy" if name == "reservoirpy" else "seqjax",
          "dtype": "float64" if name == "reservoirpy" else name,
          "nrmse_median": _median(errors[name]),
          "nrmse_per_seed": errors[name],
          "seconds_median": _median(timed),
          "seconds_per_repeat": timed,
          "stages_median": {k: _median([s[k] for s in stages[name][:args.repeats]])
                            for k in stages[name][0]},
          "speedup_vs_reservoirpy": reference_time / _median(timed),
          "nrmse_ratio_vs_reservoirpy": _median(errors[name]) / _median(errors["reservoirpy"]),
      }
      if name != "reservoirpy":
        row["warmup_seconds"] = sides[name][3]
      rows.append(row)
    # Conventions check: seqjax's pipeline on reservoirpy's seed-0 matrices.
    import scipy.sparse
    w = rpy_reservoir.W
    w = w.toarray() if scipy.sparse.issparse(w) else np.asarray(w)
    with jax.enable_x64(True):
      side, inputs, targets, _ = sides.get("float64", (None,) * 4)
      if side is None:
        side = Seqjax(args, units, "float64")
        inputs, targets = jnp.asarray(inputs_np), jnp.asarray(targets_np)
      params = {FROZEN: {"w_in": jnp.asarray(np.asarray(rpy_reservoir.Win).T),
                         "w_rec": jnp.asarray(w.T), "b": jnp.zeros((units,))}}
      predictions, _, _ = side.once(0, inputs, targets, params=params)
    checks.append({"units": units,
                   "nrmse_seqjax_on_reservoirpy_matrices":
                       float(nrmse(np.asarray(predictions, np.float64), test_targets)),
                   "nrmse_reservoirpy": errors["reservoirpy"][0]})
    if settings is None:
      first = sides[dtypes[0]][0]
      settings = {
          "protocol": protocol,
          "seqjax": {"esn": {k: v for k, v in first.esn_kwargs.items()
                             if k not in ("hidden_size", "dtype")},
                     "fit_readout": first.fit_kwargs},
          "reservoirpy": {"Reservoir": {k: _plain(v) for k, v in rpy.reservoir_kwargs.items()
                                        if k != "units"},
                          "Ridge": rpy.ridge_kwargs, "fit": rpy.fit_kwargs},
      }
      settings["seqjax"]["esn"]["dtype"] = dtypes
      settings["seqjax"]["esn"]["connections_per_unit"] = "round(connectivity * H)"

  cpu = os.cpu_count()
  try:
    load = os.getloadavg()
  except OSError:  # pragma: no cover - not on every platform
    load = None
  return {
      "benchmark": "esn_vs_reservoirpy",
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "command": " ".join(["python", *sys.argv]) if sys.argv else "",
      "machine": {"platform": platform.platform(), "cpu_count": cpu, "load_average": load,
                  "jax_backend": jax.default_backend(),
                  "device": jax.devices()[0].device_kind},
      "versions": {"seqjax": seqjax.__version__, "jax": jax.__version__,
                   "reservoirpy": reservoirpy.__version__, "numpy": np.__version__},
      "settings": settings,
      "matched": [{"units": u, "side": s if s == "reservoirpy" else f"seqjax {s}", **m}
                  for (u, s), m in matched.items()],
      "rows": rows,
      "checks": checks,
  }


def report(result) -> str:
  lines = [f"seqjax vs reservoirpy {result['versions']['reservoirpy']}, "
           f"{result['date']}, {result['machine']['device']} ({result['machine']['cpu_count']} "
           f"CPUs, load average {result['machine']['load_average']})"]
  lines += _settings_text(result["settings"])
  lines.append("")
  lines.append("| units | library | dtype | median NRMSE (seeds) | NRMSE ratio | median s "
               "| speed-up vs reservoirpy | stages, median s |")
  lines.append("|---|---|---|---|---|---|---|---|")
  for row in result["rows"]:
    stage_text = ", ".join(f"{k} {v:.3f}" for k, v in row["stages_median"].items())
    lines.append(f"| {row['units']} | {row['library']} | {row['dtype']} | "
                 f"{row['nrmse_median']:.4e} ({len(row['nrmse_per_seed'])}) | "
                 f"{row['nrmse_ratio_vs_reservoirpy']:.3f} | {row['seconds_median']:.3f} | "
                 f"{row['speedup_vs_reservoirpy']:.2f}x | {stage_text} |")
  lines.append("")
  for check in result["checks"]:
    lines.append(f"H={check['units']} check: seqjax (float64) on reservoirpy's seed-0 matrices "
                 f"NRMSE {check['nrmse_seqjax_on_reservoirpy_matrices']:.4e} vs reservoirpy's "
                 f"{check['nrmse_reservoirpy']:.4e}")
  return "\n".join(lines)


_BUSY_LOOP = ("import numpy as np, time\n"
              "a = np.random.default_rng(0).random((1500, 1500))\n"
              "while True: a @ a\n")


def readout_threads(args) -> dict:
  """fit_readout's solve with one BLAS thread vs the default, alternating (issue 18)."""
  import importlib
  import subprocess

  readout_module = importlib.import_module("seqjax.reservoir.readout")
  limit = readout_module.blas_thread_limit
  rng = np.random.default_rng(0)
  hogs = [subprocess.Popen([sys.executable, "-c", _BUSY_LOOP]) for _ in range(args.busy)]
  rows = []
  try:
    time.sleep(1.0 if hogs else 0.0)
    for units in (int(u) for u in args.units.split(",")):
      inputs = jnp.asarray(rng.normal(size=(args.train, 1)), jnp.float32)
      states = jnp.asarray(np.tanh(rng.normal(size=(args.train, units))), jnp.float32)
      targets = jnp.asarray(rng.normal(size=(args.train, 1)), jnp.float32)

      def solve(threads_default):
        if threads_default:
          readout_module.blas_thread_limit = lambda threads=1: contextlib.nullcontext()
        try:
          start = time.perf_counter()
          fit_readout(inputs, states, targets, ridge=args.ridge, washout=args.washout)
          return time.perf_counter() - start
        finally:
          readout_module.blas_thread_limit = limit

      solve(False), solve(True)  # compile
      times = {"one thread": [], "default threads": []}
      for _ in range(args.repeats):
        times["one thread"].append(solve(False))
        times["default threads"].append(solve(True))
      rows.append({"units": units, "busy_processes": args.busy,
                   **{f"{k} median s": _median(v) for k, v in times.items()},
                   **{f"{k} s": v for k, v in times.items()}})
  finally:
    for hog in hogs:
      hog.kill()
      hog.wait()
  return {"benchmark": "esn_vs_reservoirpy --readout-threads",
          "date": datetime.datetime.now().isoformat(timespec="seconds"),
          "command": " ".join(["python", *sys.argv]), "cpu_count": os.cpu_count(),
          "train": args.train, "washout": args.washout, "rows": rows}


def main(argv=None):
  args = _parse(argv)
  if args.readout_threads:
    result = readout_threads(args)
    for row in result["rows"]:
      print(f"H={row['units']}, {row['busy_processes']} busy processes: fit_readout "
            f"{row['one thread median s']:.3f} s with one BLAS thread, "
            f"{row['default threads median s']:.3f} s with the default threads")
    if args.json:
      with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    return
  result = run(args)
  print(report(result))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
