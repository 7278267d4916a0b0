"""Generated benchmark series against numpy loops; windows and prediction pairs."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from seqjax.data import timeseries


def _mackey_glass_numpy(length, *, tau, beta, gamma, n, dt, subsample, x0, discard):
  """The documented RK4 scheme, written as a plain loop over a growing list."""
  delay = round(tau / dt)
  xs = [x0] * (delay + 1)  # x_{-d}, ..., x_0

  def rate(x, z):
    return beta * z / (1.0 + z ** n) - gamma * x

  samples = []
  for _ in range(discard + length):
    samples.append(xs[-1])
    for _ in range(subsample):
      x, z0, z1 = xs[-1], xs[-1 - delay], xs[-delay]
      zh = (z0 + z1) / 2
      k1 = rate(x, z0)
      k2 = rate(x + dt / 2 * k1, zh)
      k3 = rate(x + dt / 2 * k2, zh)
      k4 = rate(x + dt * k3, z1)
      xs.append(x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
  return np.array(samples[discard:])


@pytest.mark.parametrize("dt,subsample,discard", [(1.0, 1, 0), (0.5, 2, 30)])
def test_mackey_glass_matches_numpy_loop(dt, subsample, discard):
  kwargs = dict(tau=17, beta=0.2, gamma=0.1, n=10, dt=dt, subsample=subsample, x0=1.2,
                discard=discard)
  expected = _mackey_glass_numpy(300, **kwargs)
  with jax.enable_x64(True):
    got = timeseries.mackey_glass(300, dtype=np.float64, **kwargs)
  assert got.shape == (300,) and got.dtype == np.float64
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
  got32 = timeseries.mackey_glass(300, **kwargs)
  assert got32.dtype == np.float32
  np.testing.assert_allclose(got32, expected, rtol=0, atol=1e-3)


def test_mackey_glass_statistics_and_chaos():
  series = timeseries.mackey_glass(3000, dt=0.1, subsample=10)
  assert 0.2 < series.min() < 0.5 and 1.2 < series.max() < 1.4
  assert 0.8 < series.mean() < 1.0 and 0.15 < series.std() < 0.3
  # Sensitive dependence on initial conditions: a 1e-6 change of the history
  # grows to an order-one difference.
  with jax.enable_x64(True):
    a = timeseries.mackey_glass(3000, x0=1.2, dtype=np.float64)
    b = timeseries.mackey_glass(3000, x0=1.2 + 1e-6, dtype=np.float64)
  assert np.abs(a[:50] - b[:50]).max() < 1e-4
  assert np.abs(a[-500:] - b[-500:]).max() > 0.1


def test_mackey_glass_bad_arguments():
  with pytest.raises(ValueError, match="tau"):
    timeseries.mackey_glass(10, tau=17, dt=0.3)
  with pytest.raises(ValueError, match="length"):
    timeseries.mackey_glass(0)
  with pytest.raises(ValueError, match="gamma"):
    timeseries.mackey_glass(10, gamma=-0.1)
  with pytest.raises(ValueError, match="discard"):
    timeseries.mackey_glass(10, discard=-1)
  with pytest.raises(ValueError, match="x64"):
    timeseries.mackey_glass(10, dtype=np.float64)


def _narma10_numpy(u):
  y = np.zeros(len(u) + 1)
  for t in range(len(u)):
    window = sum(y[t - i] for i in range(10) if t - i >= 0)
    lagged = u[t - 9] if t >= 9 else 0.0
    y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * window + 1.5 * lagged * u[t] + 0.1
  return y[1:]


def test_narma10_matches_numpy_loop():
  inputs, targets = timeseries.narma10_task(400, seed=3)
  assert inputs.shape == targets.shape == (400,)
  assert 0 <= inputs.min() and inputs.max() <= 0.5
  np.testing.assert_allclose(targets, _narma10_numpy(inputs.astype(np.float64)), atol=1e-5)
  # Batched and jitted, along the last axis; short sequences use zero history.
  batch = np.stack([inputs[:50], inputs[50:100]])
  got = jax.jit(timeseries.narma10)(batch)
  np.testing.assert_allclose(got[1], _narma10_numpy(inputs[50:100].astype(np.float64)),
                             atol=1e-5)
  np.testing.assert_allclose(timeseries.narma10(inputs[:4]), _narma10_numpy(inputs[:4]),
                             atol=1e-6)
  same, _ = timeseries.narma10_task(400, key=jax.random.key(3))
  np.testing.assert_array_equal(same, inputs)
  with pytest.raises(ValueError, match="key and seed"):
    timeseries.narma10_task(10)
  with pytest.raises(TypeError, match="float"):
    timeseries.narma10(np.arange(12))


def test_windows_and_prediction_pairs():
  series = np.arange(20.0)
  splits = timeseries.windows(series, washout=2, train=10, validation=3, test=4)
  assert splits["washout"].tolist() == [0, 1]
  assert splits["train"].tolist() == list(range(2, 12))
  assert splits["validation"].tolist() == [12, 13, 14]
  assert splits["test"].tolist() == [15, 16, 17, 18]
  with pytest.raises(ValueError, match="exceeds the series length 20"):
    timeseries.windows(series, train=10, validation=5, test=6)
  with pytest.raises(ValueError, match="train"):
    timeseries.windows(series, train=0, test=1)
  inputs, targets = timeseries.prediction_pairs(series[:5], horizon=2)
  assert inputs.shape == targets.shape == (3, 1)
  assert inputs[:, 0].tolist() == [0, 1, 2] and targets[:, 0].tolist() == [2, 3, 4]
  with pytest.raises(ValueError, match="horizon"):
    timeseries.prediction_pairs(series[:5], horizon=5)
