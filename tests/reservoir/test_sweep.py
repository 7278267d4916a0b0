"""Tests for seqjax.reservoir.sweep: the vmapped grid equals a loop of plain ESNs."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import unroll
from seqjax.cells.esn import esn
from seqjax.reservoir import sweep as sweep_lib
from seqjax.reservoir.readout import fit_readout, readout

HIDDEN, CONNECTIVITY, WASHOUT = 24, 0.2, 50


def _data(outputs=1):
  """Uniform inputs, nonlinear targets with memory.

  Output 0 is y_t = u_{t-1} u_{t-2} + 0.5 u_{t-3}; with ``outputs=2`` output 1
  is 20 u_{t-1}^2 - 3, on another scale, so a per-output normalisation matters.
  """
  rng = np.random.default_rng(0)
  u = rng.uniform(-1, 1, (501, 1)).astype(np.float32)
  y = np.zeros((501, outputs), np.float32)
  y[3:, :1] = u[2:-1] * u[1:-2] + 0.5 * u[:-3]
  if outputs == 2:
    y[1:, 1:] = 20 * u[:-1] ** 2 - 3
  return u[:350], y[:350], u[350:], y[350:]


def _numpy_nrmse(predictions, targets):
  """The documented NRMSE: per output rms(p - t) / std(t), averaged over outputs."""
  p, t = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
  return np.mean(np.sqrt(np.mean((p - t) ** 2, axis=0)) / np.std(t, axis=0))


def _plain_states(key, reservoir, train_x, val_x):
  """The states of one reservoir built the ordinary way: an ``esn`` cell, unroll."""
  spectral_radius, input_scaling, bias_scaling, leak_rate = reservoir
  cell = esn(HIDDEN, spectral_radius=spectral_radius, connectivity=CONNECTIVITY,
             input_scaling=input_scaling, bias_scaling=bias_scaling, leak_rate=leak_rate)
  params = cell.init(key, train_x.shape[-1])
  last, train_states = unroll(cell, params, jnp.asarray(train_x))
  _, val_states = unroll(cell, params, jnp.asarray(val_x), last)
  return train_states, val_states


def _plain_nrmse(key, config, train_x, train_y, val_x, val_y, states=None):
  """One configuration built the ordinary way: an ``esn`` cell, unroll, fit.

  ``states`` (a dict) memoises the reservoir states across configurations that
  differ only in the ridge, which do not enter them (every unroll compiles its
  own program: the cell's constants differ)."""
  reservoir = tuple(float(config[name]) for name in
                    ("spectral_radius", "input_scaling", "bias_scaling", "leak_rate"))
  states = {} if states is None else states
  if reservoir not in states:
    states[reservoir] = _plain_states(key, reservoir, train_x, val_x)
  train_states, val_states = states[reservoir]
  readout_params = fit_readout(train_x, train_states, train_y,
                               ridge=float(config["ridge"]), washout=WASHOUT)
  predictions = np.asarray(readout(readout_params, val_x, val_states), np.float64)
  return _numpy_nrmse(predictions, val_y)


@pytest.mark.parametrize("outputs", [1, 2])
def test_vmapped_sweep_equals_loop_of_plain_esns(outputs):
  train_x, train_y, val_x, val_y = _data(outputs)
  configs = sweep_lib.grid(spectral_radius=[0.5, 0.95], leak_rate=[0.3, 1.0],
                           input_scaling=[0.5], bias_scaling=[0.0, 0.2],
                           ridge=[1e-5, 1e-1])
  key = jax.random.PRNGKey(3)
  results = sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y, configs,
                            connectivity=CONNECTIVITY, washout=WASHOUT)
  assert results["val_nrmse"].shape == (16,)
  states = {}
  expected = [
      _plain_nrmse(key, {name: configs[name][i] for name in configs},
                   train_x, train_y, val_x, val_y, states) for i in range(16)]
  assert len(states) == 8  # the 2 ridges share each of the 8 reservoirs
  np.testing.assert_allclose(results["val_nrmse"], expected, rtol=1e-4, atol=1e-6)
  # The grid must matter, or the comparison above would prove little.
  assert np.ptp(expected) > 0.05
  for name in configs:
    np.testing.assert_array_equal(results[name], configs[name])
  # evaluate (one configuration, the body of sweep) reports the same numbers.
  reservoir = sweep_lib.base_reservoir(key, HIDDEN, 1, connectivity=CONNECTIVITY)
  one = sweep_lib.evaluate(reservoir, {name: configs[name][5] for name in configs},
                           train_x, train_y, val_x, val_y, washout=WASHOUT)
  np.testing.assert_allclose(one["val_nrmse"], expected[5], rtol=1e-4, atol=1e-6)


def test_sweep_compiles_once_per_shape():
  train_x, train_y, val_x, val_y = _data()
  key = jax.random.PRNGKey(0)
  first = sweep_lib.grid(leak_rate=[0.2, 0.7], ridge=[1e-4, 1e-2])
  second = sweep_lib.grid(leak_rate=[0.4, 0.9], ridge=[1e-3, 1e-1])
  sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y, first, washout=WASHOUT)
  before = sweep_lib._evaluate_grid._cache_size()
  sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y, second, washout=WASHOUT)
  assert sweep_lib._evaluate_grid._cache_size() == before


def test_missing_names_take_defaults():
  train_x, train_y, val_x, val_y = _data()
  key = jax.random.PRNGKey(1)
  implicit = sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y,
                             {"leak_rate": jnp.array([0.5])}, washout=WASHOUT)
  explicit = sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y,
                             sweep_lib.grid(leak_rate=[0.5], **{
                                 k: [v] for k, v in sweep_lib.DEFAULTS.items()
                                 if k != "leak_rate"}), washout=WASHOUT)
  np.testing.assert_allclose(implicit["val_nrmse"], explicit["val_nrmse"], rtol=1e-6)
  assert float(implicit["spectral_radius"][0]) == pytest.approx(0.9)


def test_grid_is_the_full_cartesian_product():
  result = sweep_lib.grid(a=[1.0, 2.0], b=[3.0, 4.0, 5.0], c=[6.0])
  assert set(result) == {"a", "b", "c"}
  rows = list(zip(*(np.asarray(result[n]).tolist() for n in ("a", "b", "c"))))
  assert rows == list(itertools.product([1.0, 2.0], [3.0, 4.0, 5.0], [6.0]))
  assert all(v.dtype == jnp.float32 and v.shape == (6,) for v in result.values())


@pytest.mark.parametrize("axes", [{}, {"a": []}, {"a": [[1.0, 2.0]]}])
def test_grid_rejects_empty_or_nested_axes(axes):
  with pytest.raises(ValueError, match="grid"):
    sweep_lib.grid(**axes)


def test_table_is_sorted_by_validation_error_with_nans_last():
  results = {"leak_rate": np.array([0.1, 0.2, 0.3, 0.4]),
             "val_nrmse": np.array([0.5, np.nan, 0.1, 0.3])}
  lines = sweep_lib.table(results).splitlines()
  assert lines[0] == "| leak_rate | val_nrmse |"
  rows = [line.strip("| ").split(" | ") for line in lines[2:]]
  assert [row[0] for row in rows] == ["0.3", "0.4", "0.1", "0.2"]
  assert rows[-1][1] == "nan"


def test_table_of_a_real_sweep_is_sorted():
  train_x, train_y, val_x, val_y = _data()
  results = sweep_lib.sweep(jax.random.PRNGKey(2), HIDDEN, train_x, train_y, val_x, val_y,
                            sweep_lib.grid(spectral_radius=[0.3, 0.9], ridge=[1e-4, 1.0]),
                            washout=WASHOUT)
  errors = [float(line.split("|")[-2]) for line in sweep_lib.table(results).splitlines()[2:]]
  assert len(errors) == 4 and errors == sorted(errors)
  assert min(errors) == pytest.approx(float(np.min(results["val_nrmse"])), rel=1e-3)


@pytest.mark.parametrize("configs, match", [
    ({"leak_rate": [1.5]}, "leak_rate"),
    ({"ridge": [-1.0]}, "ridge"),
    ({"spectral_radius": [0.0]}, "spectral_radius"),
    ({"spectral_radius": [np.inf]}, r"spectral_radius.*finite, got inf"),
    ({"input_scaling": [np.nan]}, r"input_scaling.*finite, got nan"),
    ({"ridge": [np.inf]}, "ridge"),
    ({"spectral_radius": [0.5, 0.9], "ridge": [1e-6]}, "common length"),
    ({"temperature": [1.0]}, "unknown"),
    ({}, "non-empty"),
])
def test_bad_configs_raise(configs, match):
  train_x, train_y, val_x, val_y = _data()
  with pytest.raises(ValueError, match=match):
    sweep_lib.sweep(jax.random.PRNGKey(0), HIDDEN, train_x, train_y, val_x, val_y,
                    {k: np.asarray(v) for k, v in configs.items()})


def test_bad_data_and_washout_raise():
  train_x, train_y, val_x, val_y = _data()
  configs = sweep_lib.grid(leak_rate=[0.5])
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match="washout"):
    sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y, configs, washout=350)
  with pytest.raises(ValueError, match="train_targets"):
    sweep_lib.sweep(key, HIDDEN, train_x, train_y[:-1], val_x, val_y, configs)
  with pytest.raises(ValueError, match="val_inputs"):
    sweep_lib.sweep(key, HIDDEN, train_x, train_y, np.zeros((10, 2), np.float32),
                    val_y[:10], configs)
  with pytest.raises(TypeError, match="hidden_size"):
    sweep_lib.sweep(key, 2.5, train_x, train_y, val_x, val_y, configs)
  with pytest.raises(ValueError, match="connectivity.*nan"):
    sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y, configs,
                    connectivity=float("nan"))


def test_sweep_under_jit_equals_eager():
  # Traced configurations cannot be grouped by reservoir on the host, so every
  # configuration runs its own reservoir: the numbers must not change.
  train_x, train_y, val_x, val_y = _data()
  key = jax.random.PRNGKey(2)
  configs = sweep_lib.grid(leak_rate=[0.3, 1.0], ridge=[1e-5, 1e-2])
  eager = sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y, configs,
                          washout=WASHOUT)
  traced = jax.jit(lambda c: sweep_lib.sweep(key, HIDDEN, train_x, train_y, val_x, val_y, c,
                                             washout=WASHOUT))(configs)
  np.testing.assert_allclose(traced["val_nrmse"], eager["val_nrmse"], rtol=1e-5)
  assert np.ptp(np.asarray(eager["val_nrmse"])) > 0
