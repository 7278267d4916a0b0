"""Tests for the Euler-stepped continuous-time RNN against independent integrators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import init as initializers
from seqjax.cells.ctrnn import ctrnn
from seqjax.scan import unroll

D, H = 2, 4


def _params64(params):
  return tuple(np.asarray(params[k], np.float64) for k in ("w_x", "w_h", "b"))


def _numpy_euler(params, xs, dt, tau):
  """The Euler recursion written out in float64 over one sequence (T, D)."""
  w_x, w_h, b = _params64(params)
  z = np.zeros(H)
  ys = []
  for x in np.asarray(xs, np.float64):
    z = z + dt / tau * (-z + np.tanh(z @ w_h + x @ w_x + b))
    ys.append(z)
  return np.stack(ys)


def _numpy_rk4(params, x, tau, t_end, h):
  """Classical RK4 of tau dz/dt = -z + tanh(z W_h + x W_x + b), constant x."""
  w_x, w_h, b = _params64(params)
  drive = np.asarray(x, np.float64) @ w_x + b
  f = lambda z: (-z + np.tanh(z @ w_h + drive)) / tau
  z, out = np.zeros(H), {}
  for n in range(1, int(round(t_end / h)) + 1):
    k1 = f(z)
    k2 = f(z + h / 2 * k1)
    k3 = f(z + h / 2 * k2)
    k4 = f(z + h * k3)
    z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    out[n] = z
  return out


def _cell(dt, tau=1.0):
  # A recurrent gain below 1 makes the ODE a contraction with one fixed point.
  return ctrnn(H, dt=dt, tau=tau, recurrent_init=initializers.orthogonal(0.8),
               bias_init=jax.nn.initializers.normal(0.5))


def test_matches_numpy_loop():
  cell = _cell(dt=0.3, tau=1.5)
  params = cell.init(jax.random.PRNGKey(0), D)
  xs = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 12, D))
  _, ys = unroll(cell, params, xs)
  assert ys.shape == (2, 3, 12, H)
  for i in range(2):
    for j in range(3):
      np.testing.assert_allclose(ys[i, j], _numpy_euler(params, xs[i, j], 0.3, 1.5),
                                 rtol=1e-5, atol=1e-5)
  carry, y = cell.step(params, cell.initial_carry(params, ()), xs[0, 0, 0])
  assert carry.shape == y.shape == (H,)


def test_euler_tracks_rk4_and_converges_at_first_order():
  tau, t_end = 0.7, 3.0
  params = _cell(dt=0.01, tau=tau).init(jax.random.PRNGKey(2), D)
  x = jnp.array([1.0, -0.5])
  reference = _numpy_rk4(params, x, tau, t_end, h=1e-3)
  errors = {}
  for dt in (0.01, 0.02):
    steps = int(round(t_end / dt))
    _, ys = unroll(_cell(dt, tau), params, jnp.broadcast_to(x, (steps, D)))
    # Compare at t = 0.1, 0.2, ..., 3.0, i.e. every 0.1 / dt steps.
    stride = int(round(0.1 / dt))
    euler = np.asarray(ys)[stride - 1::stride]
    rk4 = np.stack([reference[int(round((k + 1) * 0.1 / 1e-3))] for k in range(len(euler))])
    errors[dt] = np.max(np.abs(euler - rk4))
  assert errors[0.01] < 1e-2
  # Explicit Euler's global error is O(dt): halving dt halves it.
  assert 1.6 < errors[0.02] / errors[0.01] < 2.4, errors


def test_constant_input_converges_to_the_fixed_point():
  cell = _cell(dt=0.01)
  params = cell.init(jax.random.PRNGKey(3), D)
  x = jnp.array([0.3, 0.8])
  carry, _ = unroll(cell, params, jnp.broadcast_to(x, (3000, D)))
  w_x, w_h, b = _params64(params)
  drive = np.asarray(x, np.float64) @ w_x + b
  # Independent fixed point of z = tanh(z W_h + drive): a contraction, since
  # the recurrent gain is 0.8, so plain iteration converges.
  z_star = np.zeros(H)
  for _ in range(500):
    z_star = np.tanh(z_star @ w_h + drive)
  assert np.max(np.abs(z_star)) > 0.1  # not the trivial fixed point
  np.testing.assert_allclose(carry, z_star, atol=1e-4)


def test_dt_equal_tau_is_the_discrete_rnn():
  cell = ctrnn(H, dt=0.5, tau=0.5)
  params = cell.init(jax.random.PRNGKey(4), D)
  xs = jax.random.normal(jax.random.PRNGKey(5), (6, D))
  _, ys = unroll(cell, params, xs)
  w_x, w_h, b = _params64(params)
  h, want = np.zeros(H), []
  for x in np.asarray(xs, np.float64):
    h = np.tanh(x @ w_x + h @ w_h + b)
    want.append(h)
  np.testing.assert_allclose(ys, np.stack(want), rtol=1e-5, atol=1e-6)


def test_float64():
  with jax.enable_x64(True):
    cell = ctrnn(H, dt=0.05, dtype=jnp.float64)
    params = cell.init(jax.random.PRNGKey(0), D)
    carry, y = cell.step(params, cell.initial_carry(params, (3,)), jnp.ones((3, D)))
    assert carry.dtype == y.dtype == jnp.float64 and y.shape == (3, H)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(dt=0.0), ValueError, "dt must be > 0, got 0.0"),
    (dict(dt=-0.1), ValueError, "dt must be > 0"),
    (dict(tau=0.0), ValueError, "tau must be > 0, got 0.0"),
    (dict(tau=-1.0), ValueError, "tau must be > 0"),
    (dict(dt=0.5, tau=0.2), ValueError, "dt must be <= tau.*dt=0.5, tau=0.2"),
    (dict(dt="0.1"), TypeError, "dt"),
    (dict(activation="gelu"), ValueError, "activation"),
])
def test_bad_hyperparameters(kwargs, error, match):
  with pytest.raises(error, match=match):
    ctrnn(H, **kwargs)

# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "ctrnn": lambda dtype: ctrnn(5, dt=0.2, dtype=dtype),
}
