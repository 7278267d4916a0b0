"""Benchmark time series for reservoir computing and sequence prediction.

Two generated series (Mackey-Glass, NARMA-10), computed in JAX so they are
reproducible bit for bit on any backend. (Real series that ship inside
packages, the Santa Fe laser and the yearly sunspots, are read by the
experiments' loaders, ``experiments/datasets/``.)

``windows`` cuts a series into consecutive train / validation / test segments
and ``prediction_pairs`` turns a segment into (inputs, targets) for
h-step-ahead prediction. Shapes: T time steps, B batch.

References:
  Mackey & Glass 1977, "Oscillation and chaos in physiological control
  systems", Science 197(4300).
  Atiya & Parlos 2000, "New results on recurrent network training: unifying
  the algorithms and accelerating convergence", IEEE Trans. Neural Networks
  11(3) (NARMA-10).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import checks
from seqjax.types import Array


def _positive_real(name: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a positive number, got {value!r}")
  if not (value > 0 and math.isfinite(value)):
    raise ValueError(f"{name} must be finite and > 0, got {value}")
  return float(value)


def _real(name: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a number, got {value!r}")
  if not math.isfinite(value):
    raise ValueError(f"{name} must be finite, got {value}")
  return float(value)


def _mackey_glass_rate(x, x_delayed, beta, gamma, n):
  return beta * x_delayed / (1.0 + x_delayed ** n) - gamma * x


@functools.partial(jax.jit, static_argnames=("num_samples", "delay", "subsample", "dtype"))
def _mackey_glass_scan(num_samples, delay, subsample, dtype, beta, gamma, n, dt, x0):
  beta, gamma, n, dt, x0 = (jnp.asarray(v, dtype) for v in (beta, gamma, n, dt, x0))

  def rk4_step(buffer, _):
    # buffer[k] = x(t - (delay - k) dt): buffer[0] is the delayed value and
    # buffer[-1] the current one.
    x = buffer[-1]
    lag_now, lag_next = buffer[0], buffer[1]
    lag_half = 0.5 * (lag_now + lag_next)
    k1 = _mackey_glass_rate(x, lag_now, beta, gamma, n)
    k2 = _mackey_glass_rate(x + 0.5 * dt * k1, lag_half, beta, gamma, n)
    k3 = _mackey_glass_rate(x + 0.5 * dt * k2, lag_half, beta, gamma, n)
    k4 = _mackey_glass_rate(x + dt * k3, lag_next, beta, gamma, n)
    x_next = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return jnp.concatenate([buffer[1:], x_next[None]]), None

  def sample(buffer, _):
    value = buffer[-1]
    buffer, _ = jax.lax.scan(rk4_step, buffer, None, length=subsample)
    return buffer, value

  history = jnp.full((delay + 1,), x0, dtype)
  _, samples = jax.lax.scan(sample, history, None, length=num_samples)
  return samples


def mackey_glass(length: int,
                 *,
                 tau: float = 17.0,
                 beta: float = 0.2,
                 gamma: float = 0.1,
                 n: float = 10.0,
                 dt: float = 1.0,
                 subsample: int = 1,
                 x0: float = 1.2,
                 discard: int = 500,
                 dtype=jnp.float32) -> np.ndarray:
  """Mackey-Glass delay differential equation, integrated in JAX.

  The equation (tau = 17 is the standard mildly chaotic benchmark)::

    dx/dt = beta x(t - tau) / (1 + x(t - tau)^n) - gamma x(t)

  Discretisation: classic RK4 with step ``dt`` on the grid t_i = i dt, the
  delay being ``d = round(tau / dt)`` steps (``tau`` must be a multiple of
  ``dt``). The delayed term is a known function of time inside each step,
  taken at the grid (``x_{i-d}`` at t_i, ``x_{i-d+1}`` at t_{i+1}) and linearly
  interpolated at the midpoint::

    f(x, z) = beta z / (1 + z^n) - gamma x
    z_0 = x_{i-d},  z_1/2 = (x_{i-d} + x_{i-d+1}) / 2,  z_1 = x_{i-d+1}
    k1 = f(x_i, z_0)
    k2 = f(x_i + dt/2 k1, z_1/2)
    k3 = f(x_i + dt/2 k2, z_1/2)
    k4 = f(x_i + dt k3, z_1)
    x_{i+1} = x_i + dt/6 (k1 + 2 k2 + 2 k3 + k4)

  The history is constant: x(t) = x0 for t <= 0. The returned series is
  x(k s dt) for k = discard, ..., discard + length - 1 with s = ``subsample``,
  so one sample every ``s dt`` time units; the first ``discard`` samples (the
  transient from the constant history) are dropped. One ``lax.scan`` over the
  samples, each an inner scan of ``s`` RK4 steps carrying a (d + 1,) delay
  buffer.

  Args:
    length: number of returned samples T, > 0.
    tau: the delay, > 0, a multiple of ``dt``.
    beta: production rate, > 0.
    gamma: decay rate, > 0.
    n: Hill exponent, > 0.
    dt: integration step, > 0.
    subsample: RK4 steps per returned sample, > 0 (``dt=0.1, subsample=10``
      samples every time unit with a finer integration).
    x0: the constant history and initial value.
    discard: samples dropped from the start, >= 0.
    dtype: float32 or float64 (float64 needs ``jax_enable_x64``).

  Returns:
    The series, a numpy array of shape (T,) and dtype ``dtype``.

  Raises:
    ValueError: naming the argument for non-positive sizes or rates, a
      ``tau`` that is not a multiple of ``dt``, or float64 without x64.
  """
  length = checks.positive_int("length", length)
  subsample = checks.positive_int("subsample", subsample)
  discard = checks.non_negative_int("discard", discard)
  tau = _positive_real("tau", tau)
  beta = _positive_real("beta", beta)
  gamma = _positive_real("gamma", gamma)
  n = _positive_real("n", n)
  dt = _positive_real("dt", dt)
  x0 = _real("x0", x0)
  delay = round(tau / dt)
  if delay < 1 or abs(delay * dt - tau) > 1e-9 * max(1.0, tau):
    raise ValueError(f"tau must be a positive multiple of dt, got tau={tau} and dt={dt}")
  dtype = checks.float_dtype(dtype)
  samples = _mackey_glass_scan(discard + length, delay, subsample, dtype,
                               beta, gamma, n, dt, x0)
  return np.asarray(samples[discard:])


def _narma10_scan(u):
  """NARMA-10 along axis 0 of ``u`` (T, *B)."""

  def step(window, u_pair):
    # window: (10, *B) = y_{t-9}, ..., y_t.
    u_now, u_lagged = u_pair
    y = window[-1]
    y_next = (0.3 * y + 0.05 * y * jnp.sum(window, axis=0)
              + 1.5 * u_lagged * u_now + 0.1)
    return jnp.concatenate([window[1:], y_next[None]]), y_next

  lagged = jnp.concatenate([jnp.zeros_like(u[:9]), u[:-9]])
  _, targets = jax.lax.scan(step, jnp.zeros((10,) + u.shape[1:], u.dtype), (u, lagged))
  return targets


def narma10(inputs: Array) -> Array:
  """NARMA-10 targets for an input sequence (jittable).

  With ``u_t = inputs[..., t]`` and zero history (``y_t = u_t = 0`` for
  t < 0, ``y_0 = 0``)::

    y_{t+1} = 0.3 y_t + 0.05 y_t sum_{i=0}^{9} y_{t-i} + 1.5 u_{t-9} u_t + 0.1

  ``targets[..., t] = y_{t+1}``, so target t depends on inputs up to and
  including step t (a causal one-to-one task for a reservoir). Inputs are
  usually U(0, 0.5) (``narma10_task``); larger ones can make y diverge.

  Args:
    inputs: u, (*B, T) float, T >= 1.

  Returns:
    targets y_{t+1}, (*B, T), same dtype as ``inputs``.
  """
  u = jnp.asarray(inputs)
  if u.ndim < 1 or u.shape[-1] < 1:
    raise ValueError(f"inputs must have shape (*B, T) with T >= 1, got {u.shape}")
  if not jnp.issubdtype(u.dtype, jnp.floating):
    raise TypeError(f"inputs must be a float array, got dtype {u.dtype}")
  padded = u.shape[-1] < 10
  if padded:  # the lagged input needs 9 steps of (zero) history
    u = jnp.concatenate([u, jnp.zeros(u.shape[:-1] + (10 - u.shape[-1],), u.dtype)], -1)
  targets = jnp.moveaxis(_narma10_scan(jnp.moveaxis(u, -1, 0)), 0, -1)
  return targets[..., :inputs.shape[-1]] if padded else targets


def narma10_task(length: int, *, key: Array | None = None,
                 seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """A NARMA-10 input/target pair with u_t ~ U(0, 0.5).

  Args:
    length: T, > 0.
    key: a ``jax.random`` key; give exactly one of ``key`` and ``seed``.
    seed: an int seed for ``jax.random.key``.

  Returns:
    ``(inputs, targets)``, numpy float32 arrays of shape (T,) each, with
    ``targets = narma10(inputs)``.
  """
  length = checks.positive_int("length", length)
  if (key is None) == (seed is None):
    raise ValueError(f"give exactly one of key and seed, got key={key!r} and seed={seed!r}")
  if key is None:
    key = jax.random.key(checks.non_negative_int("seed", seed))
  inputs = jax.random.uniform(key, (length,), jnp.float32, 0.0, 0.5)
  return np.asarray(inputs), np.asarray(narma10(inputs))


def windows(series: Array, *, train: int, validation: int = 0, test: int,
            washout: int = 0) -> dict[str, np.ndarray]:
  """Consecutive, non-overlapping segments of a series, in time order::

    [ washout | train | validation | test | unused ]

  A fixed chronological split (no shuffling, so nothing of the future leaks
  into training). ``washout`` leading samples are set aside (e.g. the
  transient of a generated series, or steps that only warm up a reservoir)
  and returned under ``"washout"``.

  Args:
    series: (T, ...) array; time is the first axis.
    train: length of the training segment, > 0.
    validation: length of the validation segment, >= 0.
    test: length of the test segment, >= 0.
    washout: leading samples set aside, >= 0.

  Returns:
    ``{"washout", "train", "validation", "test"}``, numpy arrays whose first
    axes have the requested lengths.

  Raises:
    ValueError: when the segments need more than T samples.
  """
  series = np.asarray(series)
  if series.ndim < 1:
    raise ValueError(f"series must have a time axis, got shape {series.shape}")
  train = checks.positive_int("train", train)
  lengths = {"washout": checks.non_negative_int("washout", washout), "train": train,
             "validation": checks.non_negative_int("validation", validation),
             "test": checks.non_negative_int("test", test)}
  total = sum(lengths.values())
  if total > series.shape[0]:
    raise ValueError(f"washout + train + validation + test = {total} exceeds the "
                     f"series length {series.shape[0]} ({lengths})")
  splits, start = {}, 0
  for name, size in lengths.items():
    splits[name] = series[start:start + size]
    start += size
  return splits


def prediction_pairs(series: Array, *, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """``(inputs, targets)`` for h-step-ahead prediction: ``x_t -> x_{t+h}``.

  Args:
    series: (T,) or (T, D).
    horizon: h, 1 <= h < T.

  Returns:
    ``inputs = series[:T-h]`` and ``targets = series[h:]``, each (T - h, D)
    (a (T,) series gets D = 1).
  """
  series = np.asarray(series)
  if series.ndim == 1:
    series = series[:, None]
  if series.ndim != 2:
    raise ValueError(f"series must have shape (T,) or (T, D), got {series.shape}")
  horizon = checks.positive_int("horizon", horizon)
  if horizon >= series.shape[0]:
    raise ValueError(f"horizon must be < T = {series.shape[0]}, got {horizon}")
  return series[:-horizon], series[horizon:]
