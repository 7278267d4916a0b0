"""Echo-state network forecasting of a univariate series (Mackey-Glass, laser, sunspots).

No gradient descent: the reservoir is run once over the series and a ridge
readout is solved in closed form, so this task's ``run`` does it all (no
``build``). The protocol, for a series z (normalised with the mean and standard
deviation of its washout + train segments)::

  [ washout | train | validation | test ]      consecutive, in time order
  inputs u_t = z_t, targets z_{t+1}            one-step-ahead pairs
  h_t = esn.step(h_{t-1}, u_t), h_{-1} = 0     one unroll over the whole series
  y_t = [u_t, h_t] W + b                       fitted on the train pairs only

A pair belongs to the segment holding its target; the washout pairs only warm
the reservoir up. Reported, in ``<workdir>/results.json``:

* ``one_step_nrmse``: per segment, teacher forced (the true z_t is fed, the
  state continues from the previous segment), with
  ``NRMSE = sqrt(mean((y - z)^2)) / std(z)`` over that segment's targets; 1 is
  the score of predicting the segment mean. ``persistence_nrmse`` is the score
  of the naive forecast z_{t+1} = z_t, for comparison.
* ``closed_loop_nrmse``: free-running forecasts (predictions fed back as
  inputs, ``seqjax.reservoir.forecast.closed_loop``) from starts every
  ``closed_loop_stride`` steps of the test segment; for horizon k the error
  of the k-th generated value, ``sqrt(mean over starts of (y_k - z_k)^2) /
  std(test)`` (Jaeger & Haas 2004 report this at k = 84 for Mackey-Glass).

References:
  Jaeger & Haas 2004, "Harnessing nonlinearity: predicting chaotic systems
  and saving energy in wireless communication", Science 304(5667).
  Lukosevicius 2012, "A practical guide to applying echo state networks".
"""

from __future__ import annotations

import json
import math
import numbers
import pathlib
import time
from typing import Any, Callable

import jax
import numpy as np

import seqjax
from experiments import datasets
from seqjax.data import timeseries
from seqjax.reservoir import forecast
from seqjax.reservoir.readout import fit_readout, readout

SERIES = ("mackey_glass", "laser", "sunspots")
RESULTS_FILE = "results.json"


def _int(name: str, value: Any, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
    raise ValueError(f"config.{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def _real(name: str, value: Any, low: float, high: float = math.inf,
          low_open: bool = False) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
    raise ValueError(f"config.{name} must be a number, got {value!r}")
  above = value > low if low_open else value >= low
  if not (above and value <= high and math.isfinite(value)):
    interval = f"{'(' if low_open else '['}{low}, {high}]"
    raise ValueError(f"config.{name} must be finite and in {interval}, got {value}")
  return float(value)


def validate(config) -> None:
  """Checks ``config.data``, ``config.reservoir``, ``ridge`` and ``horizons``.

  Raises:
    ValueError: naming the field and its value.
  """
  if config.data.series not in SERIES:
    raise ValueError(f"config.data.series must be one of {SERIES}, got {config.data.series!r}")
  _int("seed", config.seed, 0)
  _int("data.washout", config.data.washout, 1)
  _int("data.train", config.data.train, 2)
  _int("data.validation", config.data.validation, 1)
  test = _int("data.test", config.data.test, 2)
  reservoir = config.reservoir
  _int("reservoir.hidden_size", reservoir.hidden_size, 1)
  _real("reservoir.spectral_radius", reservoir.spectral_radius, 0.0, low_open=True)
  _real("reservoir.connectivity", reservoir.connectivity, 0.0, 1.0, low_open=True)
  _real("reservoir.input_scaling", reservoir.input_scaling, 0.0)
  _real("reservoir.bias_scaling", reservoir.bias_scaling, 0.0)
  _real("reservoir.leak_rate", reservoir.leak_rate, 0.0, 1.0, low_open=True)
  _real("ridge", config.ridge, 0.0)
  horizons = tuple(config.horizons)
  if not horizons:
    raise ValueError("config.horizons must list at least one closed-loop horizon, got ()")
  for horizon in horizons:
    _int("horizons", horizon, 1)
  if max(horizons) > test:
    raise ValueError(f"config.horizons must not exceed config.data.test={test}, "
                     f"got {horizons}")
  _int("closed_loop_stride", config.closed_loop_stride, 1)


def load_series(data) -> np.ndarray:
  """The raw series that ``config.data`` names, float64 (T,)."""
  if data.series == "mackey_glass":
    needed = data.washout + data.train + data.validation + data.test
    series = timeseries.mackey_glass(needed, tau=data.tau, dt=data.dt,
                                     subsample=data.subsample, discard=data.discard)
  else:
    series = datasets.load(data.series)   # "laser" or "sunspots"
  return np.asarray(series, np.float64)


def _nrmse(predictions, targets) -> float:
  predictions, targets = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
  return float(np.sqrt(np.mean((predictions - targets) ** 2)) / np.std(targets))


def run(config, workdir, log: Callable[[str], Any] = print) -> dict:
  """Fits the readout, evaluates, writes ``<workdir>/results.json``.

  Args:
    config: an ``experiments/configs/esn_*.py`` config.
    workdir: output folder (created if missing).
    log: receives one line per result.

  Returns:
    The results (also written as JSON): ``one_step_nrmse`` and
    ``persistence_nrmse`` per segment, ``closed_loop_nrmse`` per horizon (keys
    are the horizons as strings), sizes and timings.
  """
  validate(config)
  started = time.time()
  data = config.data
  splits = timeseries.windows(load_series(data), washout=data.washout, train=data.train,
                              validation=data.validation, test=data.test)
  fitted = np.concatenate([splits["washout"], splits["train"]])
  mean, std = fitted.mean(), fitted.std()
  if not std > 0:
    raise ValueError("the washout + train segments are constant; cannot normalise")
  series = np.concatenate([splits[name] for name in ("washout", "train", "validation", "test")])
  z = ((series - mean) / std).astype(np.float32)
  inputs, targets = timeseries.prediction_pairs(z)  # pair t: z_t -> z_{t+1}
  # Pair t belongs to the segment of its target index t + 1.
  bounds = np.cumsum([0, data.washout, data.train, data.validation, data.test]) - 1
  segments = {name: slice(max(bounds[i], 0), bounds[i + 1])
              for i, name in enumerate(("washout", "train", "validation", "test"))}

  reservoir = config.reservoir
  cell = seqjax.cells.esn(reservoir.hidden_size, spectral_radius=reservoir.spectral_radius,
                          connectivity=reservoir.connectivity,
                          input_scaling=reservoir.input_scaling,
                          bias_scaling=reservoir.bias_scaling, leak_rate=reservoir.leak_rate)
  params = cell.init(jax.random.key(config.seed), 1)
  _, states = jax.jit(lambda p, x: seqjax.unroll(cell, p, x))(params, inputs)
  train = segments["train"]
  readout_params = fit_readout(inputs[train], states[train], targets[train],
                               ridge=config.ridge)
  predictions = np.asarray(readout(readout_params, inputs, states))

  results = {"series": data.series, "hidden_size": reservoir.hidden_size,
             "lengths": {name: int(data[name])
                         for name in ("washout", "train", "validation", "test")},
             "one_step_nrmse": {}, "persistence_nrmse": {}}
  for name in ("train", "validation", "test"):
    part = segments[name]
    results["one_step_nrmse"][name] = _nrmse(predictions[part], targets[part])
    results["persistence_nrmse"][name] = _nrmse(inputs[part], targets[part])

  # A start at target index s feeds z_{s-1} after the state of pair s - 2 and
  # forecasts z_s, z_{s+1}, ...
  horizons = sorted(set(int(h) for h in config.horizons))
  test_start = int(bounds[3]) + 1
  starts = np.arange(test_start, len(z) - horizons[-1] + 1, config.closed_loop_stride)
  generate = jax.jit(lambda carry, last: forecast.closed_loop(
      cell, params, readout_params, carry, last, horizons[-1]))
  generated = np.asarray(generate(states[starts - 2], inputs[starts - 1]))[..., 0]
  truth = z[starts[:, None] + np.arange(horizons[-1])]
  test_std = float(np.std(z[test_start:]))
  errors = np.sqrt(np.mean((generated.astype(np.float64) - truth) ** 2, axis=0)) / test_std
  results["closed_loop_nrmse"] = {str(h): float(errors[h - 1]) for h in horizons}
  results["closed_loop_starts"] = int(len(starts))
  results["seconds"] = round(time.time() - started, 2)

  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
  log(f"esn on {data.series}: H={reservoir.hidden_size}, train {data.train} steps "
      f"(washout {data.washout}), validation {data.validation}, test {data.test}")
  for name in ("train", "validation", "test"):
    log(f"one-step NRMSE {name:<10} {results['one_step_nrmse'][name]:.3e} "
        f"(persistence {results['persistence_nrmse'][name]:.3e})")
  for h in horizons:
    log(f"closed-loop NRMSE at step {h:<4} {results['closed_loop_nrmse'][str(h)]:.3e} "
        f"({len(starts)} starts in the test segment)")
  log(f"results written to {workdir / RESULTS_FILE} ({results['seconds']} s)")
  return results
