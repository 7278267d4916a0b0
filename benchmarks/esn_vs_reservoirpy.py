r"""seqjax vs reservoirpy: echo-state network, Mackey-Glass one-step prediction.

Both libraries get the identical series (``reservoirpy.datasets.mackey_glass``,
tau = 17, generated once) and identical hyperparameters: reservoir size H,
leak rate a, spectral radius, input scaling, recurrent connectivity, ridge and
washout. Each repeat builds a fresh reservoir (seed = repeat index), runs it
from a zero state over the training segment and on into the held-out test
segment, fits the ridge readout on the training steps after the washout, and
predicts the test segment one step ahead (teacher forced: the true ``x_t`` is
the input, the target is ``x_{t+1}``). Reported: the test NRMSE
``rms(y - y_hat) / std(y)`` (median over repeats) and the wall-clock time of
build + run + fit + predict (median over repeats, the libraries run
alternately; seqjax after a warm-up call with the same shapes, whose extra
time is reported as compile time).

Conventions, matched after reading reservoirpy 0.4.2's source
(``nodes/reservoir.py``, ``nodes/ridge.py``, ``mat_gen.py``):

* update: reservoirpy ``x[t+1] = (1-lr) x[t] + lr tanh(W x[t] + Win u[t+1] + bias)``,
  seqjax ``h_t = (1-a) h_{t-1} + a tanh(x_t W_in + h_{t-1} W_rec + b)``: the same
  equation in the transposed layout. No reservoir bias on either side
  (reservoirpy ``bias=0.0``, its default; seqjax ``bias_scaling=0``).
* ``W``: N(0, 1) entries kept with probability ``connectivity`` (reservoirpy
  ``normal`` with ``rc_connectivity``, a scipy CSR matrix), rescaled to the
  spectral radius (reservoirpy: ARPACK ``eigs`` of the sparse matrix; seqjax:
  ``spectral_method="exact"`` (all eigenvalues, host LAPACK) or ``"power"``
  (power iteration on device); both seqjax variants are reported).
* ``Win``: reservoirpy's default is sparse +-1 (``bernoulli``, 10% of the units
  see the input); seqjax's is dense U(-s, s). reservoirpy is given
  ``Win=mat_gen.uniform`` and ``input_connectivity=1.0``, i.e. dense U(-s, s).
* readout: reservoirpy's ``Ridge`` centres features and targets, so its bias is
  fitted and not penalised, exactly like ``fit_readout(bias=True)``. seqjax's
  features are ``concat(x_t, h_t)``; reservoirpy gets the same features through
  ``[data, data >> reservoir] >> readout`` (an ``Input`` node feeding both the
  reservoir and the readout). Washout: ``fit_readout(washout=)`` and
  reservoirpy ``fit(warmup=)``.
* dtype: reservoirpy computes in float64, seqjax in ``--dtype`` (float32 by
  default; float64 turns on ``jax_enable_x64``).

A check row runs the seqjax pipeline on reservoirpy's own matrices of the first
repeat: its NRMSE must match reservoirpy's (up to dtype), which confirms the
conventions above rather than assuming them. The seqjax time is measured as
three blocked stages (init, unroll, fit + predict), whose medians are printed to
show where the time goes.

  python benchmarks/esn_vs_reservoirpy.py --units 500,2000 --repeats 5 \
      --train 2000 --test 1000 --washout 100

Needs the benchmark extra: ``pip install reservoirpy==0.4.2``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import numpy as np
import scipy.sparse
import scipy.sparse.linalg


def _parse():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--units", default="500,2000", help="reservoir sizes H, comma-separated")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--train", type=int, default=2000, help="training steps (incl. washout)")
  parser.add_argument("--test", type=int, default=1000, help="held-out steps")
  parser.add_argument("--washout", type=int, default=100)
  parser.add_argument("--leak-rate", type=float, default=0.3)
  parser.add_argument("--spectral-radius", type=float, default=1.25)
  parser.add_argument("--input-scaling", type=float, default=1.0)
  parser.add_argument("--connectivity", type=float, default=0.1)
  parser.add_argument("--ridge", type=float, default=1e-6)
  parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                      help="seqjax dtype (reservoirpy always uses float64)")
  return parser.parse_args()


ARGS = _parse()

import jax  # noqa: E402  (x64 must be set before any array is made)

if ARGS.dtype == "float64":
  jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import reservoirpy  # noqa: E402
from reservoirpy.datasets import mackey_glass  # noqa: E402
from reservoirpy.mat_gen import uniform  # noqa: E402
from reservoirpy.nodes import Input, Reservoir, Ridge  # noqa: E402

from seqjax.cells.esn import esn, fit_readout, readout  # noqa: E402
from seqjax.scan import unroll  # noqa: E402
from seqjax.types import FROZEN  # noqa: E402



def nrmse(targets: np.ndarray, predictions: np.ndarray) -> float:
  """rms(y - y_hat) / std(y) over the held-out steps."""
  targets = np.asarray(targets, np.float64)
  predictions = np.asarray(predictions, np.float64)
  return float(np.sqrt(np.mean((targets - predictions) ** 2)) / np.std(targets))


def _seqjax_cell(units: int, method: str):
  return esn(units, spectral_radius=ARGS.spectral_radius, connectivity=ARGS.connectivity,
             input_scaling=ARGS.input_scaling, bias_scaling=0.0, leak_rate=ARGS.leak_rate,
             spectral_method=method, dtype=jnp.dtype(ARGS.dtype))


@functools.partial(jax.jit, static_argnames=("units",))
def _run(params, inputs, *, units):
  """Reservoir states over train + test from a zero state, (T, H)."""
  cell = _seqjax_cell(units, "exact")  # only ``step`` is used: hyperparameters, no init
  return unroll(cell, params, inputs)[1]


@functools.partial(jax.jit, static_argnames=("train", "washout"))
def _fit_predict(inputs, states, targets, *, train, washout):
  """Ridge readout fitted on train[washout:], applied to the test steps, (T_test, 1)."""
  fitted = fit_readout(inputs[:train], states[:train], targets[:train], ridge=ARGS.ridge,
                       washout=washout, bias=True)
  return readout(fitted, inputs[train:], states[train:])


def seqjax_once(units, method, seed, inputs, targets, params=None):
  """Build + run + fit + predict, each stage blocked on and timed.

  Returns (test predictions, params, {"init": s, "unroll": s, "fit": s}); the
  total time is the sum of the stages (a stage boundary only adds a sync).
  """
  stages = {}
  start = time.perf_counter()
  if params is None:
    params = _seqjax_cell(units, method).init(jax.random.PRNGKey(seed), 1)
  params = jax.block_until_ready(params)
  stages["init"] = time.perf_counter() - start
  start = time.perf_counter()
  states = jax.block_until_ready(_run(params, inputs, units=units))
  stages["unroll"] = time.perf_counter() - start
  start = time.perf_counter()
  predictions = jax.block_until_ready(_fit_predict(inputs, states, targets, train=ARGS.train,
                                                   washout=ARGS.washout))
  stages["fit"] = time.perf_counter() - start
  return predictions, params, stages


def reservoirpy_model(units, seed):
  data = Input()
  reservoir = Reservoir(units, lr=ARGS.leak_rate, sr=ARGS.spectral_radius,
                        input_scaling=ARGS.input_scaling, rc_connectivity=ARGS.connectivity,
                        input_connectivity=1.0, Win=uniform, bias=0.0, seed=seed)
  model = [data, data >> reservoir] >> Ridge(ridge=ARGS.ridge)
  return model, reservoir


def reservoirpy_once(units, seed, inputs, targets):
  model, reservoir = reservoirpy_model(units, seed)
  model.fit(inputs[:ARGS.train], targets[:ARGS.train], warmup=ARGS.washout)
  return model.run(inputs[ARGS.train:]), reservoir


def _timed(fn, *args):
  start = time.perf_counter()
  out = fn(*args)
  return time.perf_counter() - start, out


def main():
  units_list = [int(u) for u in ARGS.units.split(",")]
  total = ARGS.train + ARGS.test
  # One series, both libraries: x_t is the input and x_{t+1} the target.
  series = mackey_glass(total + 1, tau=17, seed=0)
  inputs_np, targets_np = series[:-1], series[1:]
  test_targets = targets_np[ARGS.train:]
  dtype = jnp.dtype(ARGS.dtype)
  inputs, targets = jnp.asarray(inputs_np, dtype), jnp.asarray(targets_np, dtype)
  device = jax.devices()[0]
  print(f"seqjax on {jax.default_backend()} ({device.device_kind}, {ARGS.dtype}); "
        f"reservoirpy {reservoirpy.__version__} (numpy/scipy, float64)")
  print(f"Mackey-Glass tau=17, train {ARGS.train} (washout {ARGS.washout}), test {ARGS.test}; "
        f"leak {ARGS.leak_rate}, spectral radius {ARGS.spectral_radius}, input scaling "
        f"{ARGS.input_scaling}, connectivity {ARGS.connectivity}, ridge {ARGS.ridge}; "
        f"median of {ARGS.repeats} repeats (seeds 0..{ARGS.repeats - 1})")

  rows, notes = [], []
  methods = ("exact", "power")
  for units in units_list:
    warmup_seed = ARGS.repeats  # a seed not among the timed ones
    first = {}
    for method in methods:  # warm-up: compile for these shapes
      _, _, stages = seqjax_once(units, method, warmup_seed, inputs, targets)
      first[method] = sum(stages.values())
    _timed(reservoirpy_once, units, warmup_seed, inputs_np, targets_np)
    times = {"reservoirpy": [], **{m: [] for m in methods}}
    errors = {key: [] for key in times}
    stage_times = {m: {"init": [], "unroll": [], "fit": []} for m in methods}
    for seed in range(ARGS.repeats):
      t, (predictions, reservoir) = _timed(reservoirpy_once, units, seed, inputs_np, targets_np)
      if seed == 0:
        rp_reservoir = reservoir
      times["reservoirpy"].append(t)
      errors["reservoirpy"].append(nrmse(test_targets, predictions))
      for method in methods:
        predictions, params, stages = seqjax_once(units, method, seed, inputs, targets)
        times[method].append(sum(stages.values()))
        errors[method].append(nrmse(test_targets, predictions))
        for name, t in stages.items():
          stage_times[method][name].append(t)
        if seed == 0 and method == "power":
          w = np.asarray(params[FROZEN]["w_rec"], np.float64)
          radius = np.abs(scipy.sparse.linalg.eigs(scipy.sparse.csr_array(w), k=1, which="LM",
                                                    return_eigenvectors=False))[0]
          notes.append(f"H={units} seqjax (power): achieved spectral radius (ARPACK, seed 0) "
                       f"{radius:.4f} vs target {ARGS.spectral_radius}")
    med_t = {k: statistics.median(v) for k, v in times.items()}
    med_e = {k: statistics.median(v) for k, v in errors.items()}
    rows.append((units, "reservoirpy", med_e["reservoirpy"], med_t["reservoirpy"], None, 1.0, 1.0))
    for method in methods:
      rows.append((units, f"seqjax ({method})", med_e[method], med_t[method],
                   first[method] - med_t[method], med_t["reservoirpy"] / med_t[method],
                   med_e[method] / med_e["reservoirpy"]))
      notes.append(f"H={units} seqjax ({method}) stages, median s: " + ", ".join(
          f"{name} {statistics.median(ts):.4f}" for name, ts in stage_times[method].items()))

    # Conventions check: seqjax's pipeline on reservoirpy's matrices of seed 0.
    w_rec = rp_reservoir.W.toarray() if hasattr(rp_reservoir.W, "toarray") else rp_reservoir.W
    params = {FROZEN: {"w_in": jnp.asarray(np.asarray(rp_reservoir.Win).T, dtype),
                       "w_rec": jnp.asarray(np.asarray(w_rec).T, dtype),
                       "b": jnp.zeros((units,), dtype)}}
    predictions, _, _ = seqjax_once(units, "exact", 0, inputs, targets, params=params)
    notes.append(f"H={units} check: seqjax on reservoirpy's seed-0 matrices NRMSE "
                 f"{nrmse(test_targets, predictions):.4e} vs reservoirpy's own "
                 f"{errors['reservoirpy'][0]:.4e}")

  print()
  print("| units | library | NRMSE (test) | median s | compile s | reservoirpy/seqjax time "
        "| seqjax/reservoirpy NRMSE |")
  print("|---|---|---|---|---|---|---|")
  for units, name, error, seconds, compile_s, speedup, error_ratio in rows:
    compile_text = "-" if compile_s is None else f"{compile_s:.2f}"
    ratio_text = "-" if name == "reservoirpy" else f"{speedup:.2f}x"
    error_text = "-" if name == "reservoirpy" else f"{error_ratio:.3f}"
    print(f"| {units} | {name} | {error:.4e} | {seconds:.4f} | {compile_text} | {ratio_text} "
          f"| {error_text} |")
  print()
  for note in notes:
    print(note)


if __name__ == "__main__":
  main()
