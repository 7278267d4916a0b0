"""Tests for seqjax.reservoir.diagnostics and the echo-state-property figure."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.esn import esn
from seqjax.reservoir import diagnostics
from seqjax.types import FROZEN, Cell

# Chosen so that radius 1.5 is chaotic under the small drive (H large enough
# that the reservoir has eigenvalues near +1.5), radius 0.8 contracting.
ESP_HIDDEN, ESP_STEPS, ESP_SEED, ESP_INPUT_SCALING, LEAK = 200, 600, 0, 0.05, 0.4


def _esp_input():
  t = np.arange(ESP_STEPS)
  return jnp.asarray((np.sin(2 * np.pi * t / 40) + 0.5 * np.sin(2 * np.pi * t / 17))
                     .astype(np.float32)[:, None])


def _esp_reservoir():
  cell = esn(ESP_HIDDEN, spectral_radius=1.0, leak_rate=LEAK, input_scaling=ESP_INPUT_SCALING)
  return cell, cell.init(jax.random.PRNGKey(ESP_SEED), 1)


_ESP_CELL, _ESP_UNIT_PARAMS = None, None


def _esp_distance(radius):
  """One unit-radius reservoir rescaled (so state_distance compiles once)."""
  global _ESP_CELL, _ESP_UNIT_PARAMS
  if _ESP_CELL is None:
    _ESP_CELL, _ESP_UNIT_PARAMS = _esp_reservoir()
  frozen = _ESP_UNIT_PARAMS[FROZEN]
  params = {FROZEN: {**frozen, "w_rec": radius * frozen["w_rec"]}}
  key_a, key_b = jax.random.split(jax.random.PRNGKey(ESP_SEED + 1000))
  carry_a = jax.random.uniform(key_a, (ESP_HIDDEN,), jnp.float32, -1.0, 1.0)
  carry_b = jax.random.uniform(key_b, (ESP_HIDDEN,), jnp.float32, -1.0, 1.0)
  distance = diagnostics.state_distance(_ESP_CELL, params, _esp_input(), carry_a, carry_b)
  return _ESP_CELL, params, carry_a, carry_b, np.asarray(distance)


def test_echo_state_property_radius_08_forgets_and_15_does_not():
  *_, contracting = _esp_distance(0.8)
  *_, chaotic = _esp_distance(1.5)
  assert contracting.shape == chaotic.shape == (ESP_STEPS,)
  assert contracting[0] > 1.0  # the runs really start apart
  below = np.flatnonzero(contracting < 1e-6)
  assert below.size and below[0] < ESP_STEPS // 2
  assert np.all(contracting[below[0]:] < 1e-6)
  assert chaotic.min() > 1e-2
  assert np.all(chaotic[-100:] > 0.1)
  params = _esp_distance(1.5)[1]
  w_rec = np.asarray(params[FROZEN]["w_rec"], np.float64)
  linearised = (1 - LEAK) * np.eye(ESP_HIDDEN) + LEAK * w_rec
  want = np.max(np.abs(np.linalg.eigvals(linearised)))
  assert want > 1.0  # the origin is unstable, as the chaotic run says
  np.testing.assert_allclose(diagnostics.effective_spectral_radius(params, LEAK), want,
                             rtol=1e-5)


def test_state_distance_equals_numpy_loop():
  cell, params, carry_a, carry_b, distance = _esp_distance(1.5)
  frozen = {k: np.asarray(v, np.float64) for k, v in params[FROZEN].items()}
  inputs = np.asarray(_esp_input(), np.float64)

  def run(h):
    states = []
    for x in inputs[:50]:
      h = (1 - LEAK) * h + LEAK * np.tanh(x @ frozen["w_in"] + h @ frozen["w_rec"] + frozen["b"])
      states.append(h)
    return np.stack(states)

  expected = np.linalg.norm(run(np.asarray(carry_a, np.float64))
                            - run(np.asarray(carry_b, np.float64)), axis=-1)
  np.testing.assert_allclose(distance[:50], expected, rtol=1e-3)


def test_state_distance_covers_every_carry_leaf():
  """A two-leaf carry: the distance is over both leaves, not the output alone."""

  def step(params, carry, x):
    h, c = carry
    return (h * params["decay"] + x, c), h * params["decay"] + x

  # unroll wants a params pytree with at least one array.
  params = {"decay": jnp.float32(0.5)}
  cell = Cell(lambda key, d: params,
              lambda params, b=(): (jnp.zeros(b + (2,)), jnp.zeros(b + (3,))),
              step, lambda params: 2, 2, 2, "two_leaves")
  carry_a = (jnp.zeros(2), jnp.zeros(3))
  carry_b = (jnp.array([4.0, 0.0]), jnp.array([0.0, 3.0, 0.0]))
  distance = diagnostics.state_distance(cell, params, jnp.ones((3, 2)), carry_a, carry_b)
  np.testing.assert_allclose(distance, np.sqrt(np.array([2.0, 1.0, 0.5]) ** 2 + 9.0), rtol=1e-6)


@pytest.mark.parametrize("leak_rate", [1.0, 0.4, 0.05])
def test_effective_spectral_radius_equals_numpy(leak_rate):
  params = esn(20, spectral_radius=1.3, connectivity=0.3).init(jax.random.PRNGKey(5), 2)
  w = np.asarray(params[FROZEN]["w_rec"], np.float64)
  expected = np.max(np.abs(np.linalg.eigvals((1 - leak_rate) * np.eye(20) + leak_rate * w)))
  got = diagnostics.effective_spectral_radius(params, leak_rate)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  power = diagnostics.effective_spectral_radius(params, leak_rate, method="power")
  np.testing.assert_allclose(power, expected, rtol=0.1)


@pytest.mark.parametrize("leak_rate", [0.0, 1.5, -0.2])
def test_effective_spectral_radius_rejects_bad_leak_rate(leak_rate):
  params = esn(20).init(jax.random.PRNGKey(0), 1)
  with pytest.raises(ValueError, match="leak_rate"):
    diagnostics.effective_spectral_radius(params, leak_rate)


def _delay_line(hidden_size):
  """Linear shift register: unit 0 holds u_t, unit i holds u_{t-i}."""
  params = {"shift": jnp.eye(hidden_size, k=1),  # (h @ shift)[j] = h[j - 1]
            "w_in": jnp.eye(1, hidden_size)}

  def step(params, h, x):
    h = x @ params["w_in"] + h @ params["shift"]
    return h, h

  cell = Cell(lambda key, d: params, lambda params, b=(): jnp.zeros(tuple(b) + (hidden_size,)),
              step, lambda params: 1, hidden_size, hidden_size, "delay_line")
  return cell, params


def test_delay_line_remembers_exactly_its_length():
  hidden = 12
  total, per_delay = diagnostics.memory_capacity(
      *_delay_line(hidden), max_delay=20, length=1200, washout=50,
      key=jax.random.PRNGKey(0))
  assert per_delay.shape == (20,)
  np.testing.assert_allclose(per_delay[:hidden], 1.0, atol=1e-4)
  assert np.all(per_delay[hidden:] < 0.02)
  assert total == pytest.approx(hidden, abs=0.1)


def test_memory_capacity_is_bounded_by_reservoir_size():
  hidden = 20
  cell = esn(hidden, spectral_radius=0.95, input_scaling=1e-3, connectivity=0.3)
  params = cell.init(jax.random.PRNGKey(1), 1)
  total, per_delay = diagnostics.memory_capacity(cell, params, max_delay=60, length=3000,
                                                 washout=200, ridge=1e-10,
                                                 key=jax.random.PRNGKey(2))
  assert float(total) <= hidden + 0.3
  assert float(total) > 0.3 * hidden  # a near-linear reservoir remembers a lot
  assert np.all((per_delay >= 0) & (per_delay <= 1 + 1e-5))
  assert per_delay[0] > 0.99


def test_memory_capacity_equals_numpy_least_squares():
  hidden, max_delay, length, washout = 20, 25, 800, 30
  cell = esn(hidden, spectral_radius=0.9, input_scaling=0.5, connectivity=0.3)
  params = cell.init(jax.random.PRNGKey(4), 1)
  key = jax.random.PRNGKey(7)
  total, per_delay = diagnostics.memory_capacity(cell, params, max_delay=max_delay,
                                                 length=length, washout=washout,
                                                 ridge=1e-9, key=key)
  u = np.asarray(jax.random.uniform(key, (length, 1), jnp.float32, -1.0, 1.0), np.float64)
  frozen = {k: np.asarray(v, np.float64) for k, v in params[FROZEN].items()}
  h, states = np.zeros(hidden), []
  for x in u:
    h = np.tanh(x @ frozen["w_in"] + h @ frozen["w_rec"] + frozen["b"])
    states.append(h)
  states = np.stack(states)[washout:]
  half = states.shape[0] // 2
  features = np.concatenate([np.ones((states.shape[0], 1)), states], 1)
  expected = []
  for k in range(max_delay):
    target = u[washout - k:length - k, 0]
    w, *_ = np.linalg.lstsq(features[:half], target[:half], rcond=None)
    expected.append(np.corrcoef(features[half:] @ w, target[half:])[0, 1] ** 2)
  np.testing.assert_allclose(per_delay, expected, atol=2e-3)
  assert float(total) == pytest.approx(sum(expected), abs=1e-2)


def test_memory_capacity_rejects_bad_arguments():
  cell = esn(20)
  params = cell.init(jax.random.PRNGKey(0), 1)
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match="washout"):
    diagnostics.memory_capacity(cell, params, max_delay=40, washout=10, key=key)
  with pytest.raises(ValueError, match="input_size"):
    diagnostics.memory_capacity(cell, cell.init(key, 2), key=key)
  with pytest.raises(ValueError, match="ridge"):
    diagnostics.memory_capacity(cell, params, ridge=-1.0, key=key)
  with pytest.raises(ValueError, match="length"):
    diagnostics.memory_capacity(cell, params, length=202, washout=200, key=key)


def test_property_figure_is_written(tmp_path, capsys):
  from experiments import esn_property_figure

  final = esn_property_figure.main(["--workdir", str(tmp_path), "--steps", "300",
                                    "--num_states", "3"])
  path = tmp_path / "esn_property.png"
  assert path.exists() and os.path.getsize(path) > 10_000
  assert final[0.8].shape == final[1.5].shape == (3,)
  assert np.all(final[0.8] < 1e-6) and np.all(final[1.5] > 1e-2)
  assert "spectral radius 1.5" in capsys.readouterr().out
