"""Tests for teacher-forced and closed-loop forecasting, feedback and deep reservoirs."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.esn import esn
from seqjax.reservoir.forecast import (closed_loop, deep_esn, esn_with_feedback,
                                       feedback_inputs, one_step_predictions,
                                       warmup_and_generate)
from seqjax.reservoir.metrics import nrmse
from seqjax.reservoir.readout import fit_readout, readout
from seqjax.scan import unroll
from seqjax.types import FROZEN, trainable_mask

HIDDEN = 20


def _numpy_states(frozen, inputs, leak_rate, h=None):
  """Numpy loop of h_t = (1 - a) h + a tanh(x_t W_in + h W_rec + b); inputs (*B, T, D)."""
  w_in, w_rec, b = (np.asarray(frozen[k], np.float64) for k in ("w_in", "w_rec", "b"))
  inputs = np.asarray(inputs, np.float64)
  if h is None:
    h = np.zeros(inputs.shape[:-2] + (w_rec.shape[0],))
  states = []
  for t in range(inputs.shape[-2]):
    drive = np.tanh(inputs[..., t, :] @ w_in + h @ w_rec + b)
    h = (1 - leak_rate) * h + leak_rate * drive
    states.append(h)
  return np.stack(states, -2)


def _numpy_readout(readout_params, x, h):
  w = np.asarray(readout_params["w"], np.float64)
  return np.concatenate([x, h], -1) @ w + np.asarray(readout_params.get("b", 0.0), np.float64)


def _random_readout(seed, input_size, state_size, outputs, scale=0.3):
  rng = np.random.default_rng(seed)
  return {"w": jnp.asarray(rng.normal(0, scale, (input_size + state_size, outputs)),
                           jnp.float32),
          "b": jnp.asarray(rng.normal(0, 0.1, outputs), jnp.float32)}


def _normal(seed, shape, scale=1.0):
  # numpy draws: jax.random would compile a sampler for every shape.
  return jnp.asarray(np.random.default_rng(seed).normal(0, scale, shape), jnp.float32)


@functools.lru_cache(None)
def _reservoir(input_size=2, leak_rate=0.5):
  cell = esn(HIDDEN, connectivity=0.3, spectral_radius=0.9, bias_scaling=0.3,
             leak_rate=leak_rate)
  return cell, cell.init(jax.random.PRNGKey(input_size), input_size)


def test_one_step_predictions_equal_readout_of_states():
  cell, params = _reservoir()
  inputs = _normal(1, (3, 30, 2))
  readout_params = _random_readout(0, 2, HIDDEN, 4)
  predictions, final = one_step_predictions(cell, params, readout_params, inputs)
  states = _numpy_states(params[FROZEN], inputs, 0.5)
  want = _numpy_readout(readout_params, np.asarray(inputs, np.float64), states)
  assert predictions.shape == (3, 30, 4)
  np.testing.assert_allclose(predictions, want, atol=1e-5)
  np.testing.assert_allclose(final, states[:, -1], atol=1e-5)
  # Continuing from a carry equals running the whole sequence.
  first, carry = one_step_predictions(cell, params, readout_params, inputs[:, :12])
  second, _ = one_step_predictions(cell, params, readout_params, inputs[:, 12:], carry=carry)
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), predictions, atol=1e-5)


def _python_closed_loop(cell, params, readout_params, carry, x, horizon):
  outputs = []
  for _ in range(horizon):
    carry, h = cell.step(params, carry, x)
    x = readout(readout_params, x, h)
    outputs.append(x)
  return jnp.stack(outputs, -2)


@pytest.mark.parametrize("batch_shape", [(), (3,)])
def test_closed_loop_equals_python_loop(batch_shape):
  cell, params = _reservoir()
  readout_params = _random_readout(1, 2, HIDDEN, 2)
  carry = _normal(2, batch_shape + (HIDDEN,), 0.3)
  last_input = _normal(3, batch_shape + (2,))
  got = jax.jit(closed_loop, static_argnums=(0, 5))(cell, params, readout_params, carry,
                                                    last_input, 25)
  want = _python_closed_loop(cell, params, readout_params, carry, last_input, 25)
  assert got.shape == batch_shape + (25, 2)
  np.testing.assert_allclose(got, want, atol=1e-5)
  # And against an independent numpy loop of the esn equation.
  x, h = np.asarray(last_input, np.float64), np.asarray(carry, np.float64)
  for k in range(25):
    h = _numpy_states(params[FROZEN], x[..., None, :], 0.5, h)[..., 0, :]
    x = _numpy_readout(readout_params, x, h)
    np.testing.assert_allclose(got[..., k, :], x, atol=1e-4)


def test_warmup_and_generate_continues_after_the_last_input():
  cell, params = _reservoir()
  inputs = _normal(4, (2, 15, 2))
  readout_params = _random_readout(2, 2, HIDDEN, 2)
  got = warmup_and_generate(cell, params, readout_params, inputs, 10)
  predictions, carry = one_step_predictions(cell, params, readout_params, inputs)
  assert got.shape == (2, 10, 2)
  np.testing.assert_allclose(got[:, 0], predictions[:, -1], atol=1e-6)
  np.testing.assert_allclose(
      got[:, 1:], closed_loop(cell, params, readout_params, carry, predictions[:, -1], 9),
      atol=1e-6)
  one = warmup_and_generate(cell, params, readout_params, inputs, 1)
  np.testing.assert_allclose(one, got[:, :1], atol=1e-6)


def test_exact_readout_reproduces_the_teacher_signal():
  # x_t = (sin wt, cos wt) obeys x_{t+1} = x_t R exactly (R a rotation): a
  # readout [R; 0] is perfect, and generation must continue the circle.
  omega, steps, horizon = 0.3, 40, 150
  t = np.arange(steps + horizon)
  series = np.stack([np.sin(omega * t), np.cos(omega * t)], -1)
  rotation = np.array([[np.cos(omega), -np.sin(omega)], [np.sin(omega), np.cos(omega)]])
  np.testing.assert_allclose(series[1:], series[:-1] @ rotation, atol=1e-12)
  readout_params = {"w": jnp.asarray(np.concatenate([rotation, np.zeros((HIDDEN, 2))]),
                                     jnp.float32),
                    "b": jnp.zeros(2)}
  cell, params = _reservoir()
  got = warmup_and_generate(cell, params, readout_params,
                            jnp.asarray(series[:steps], jnp.float32), horizon)
  np.testing.assert_allclose(got, series[steps:], atol=1e-4)
  assert float(nrmse(got, jnp.asarray(series[steps:], jnp.float32))) < 1e-4


def test_fitted_reservoir_generates_a_sine_in_closed_loop():
  series = jnp.asarray(np.sin(2 * np.pi * np.arange(400) / 25)[:, None], jnp.float32)
  cell = esn(50, spectral_radius=0.8, connectivity=0.2, input_scaling=0.5,
             bias_scaling=0.2, leak_rate=0.5)
  params = cell.init(jax.random.PRNGKey(0), 1)
  train = series[:250]
  _, states = unroll(cell, params, train[:-1])
  readout_params = fit_readout(train[:-1], states, train[1:], ridge=1e-7, washout=50)
  one_step, _ = one_step_predictions(cell, params, readout_params, train[:-1])
  assert float(nrmse(one_step[50:], train[51:])) < 1e-2
  generated = warmup_and_generate(cell, params, readout_params, train, 150)
  error = float(nrmse(generated, series[250:]))
  assert error < 0.05, error  # measured about 2e-5 (seeds 0-3: 4e-6 to 3e-5)


def test_deep_esn_equals_layers_run_one_after_another():
  layers = [esn(HIDDEN, connectivity=0.3, leak_rate=0.5, bias_scaling=0.1),
            esn(50, connectivity=0.2, spectral_radius=0.5),
            esn(HIDDEN, connectivity=0.3, leak_rate=0.2)]
  cell = deep_esn(layers)
  assert (cell.hidden_size, cell.output_size) == (2 * HIDDEN + 50, 2 * HIDDEN + 50)
  params = cell.init(jax.random.PRNGKey(5), 2)
  assert set(params) == {"layer_0", "layer_1", "layer_2"}
  assert params["layer_1"][FROZEN]["w_in"].shape == (HIDDEN, 50)
  assert params["layer_2"][FROZEN]["w_in"].shape == (50, HIDDEN)
  assert not any(jax.tree_util.tree_leaves(trainable_mask(params)))
  assert cell.input_size(params) == 2
  inputs = _normal(6, (2, 25, 2))
  final, states = unroll(cell, params, inputs)
  x, want, want_final = inputs, [], []
  for index, layer in enumerate(layers):
    layer_final, x = unroll(layer, params[f"layer_{index}"], x)
    want.append(x)
    want_final.append(layer_final)
  np.testing.assert_allclose(states, jnp.concatenate(want, -1), atol=1e-6)
  for got_carry, want_carry in zip(final, want_final):
    np.testing.assert_allclose(got_carry, want_carry, atol=1e-6)
  # The whole toolchain works on it: ridge readout and closed loop.
  readout_params = fit_readout(inputs[:, :-1], states[:, :-1], inputs[:, 1:], ridge=1.0)
  generated = warmup_and_generate(cell, params, readout_params, inputs, 7)
  assert generated.shape == (2, 7, 2) and bool(jnp.all(jnp.isfinite(generated)))
  np.testing.assert_allclose(
      closed_loop(cell, params, readout_params, final, inputs[:, -1], 5),
      _python_closed_loop(cell, params, readout_params, final, inputs[:, -1], 5),
      rtol=1e-5, atol=1e-5)


def test_feedback_inputs():
  rng = np.random.default_rng(7)
  x, y = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 2))
  got = feedback_inputs(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  want = np.concatenate([x, np.concatenate([np.zeros((2, 1, 2)), y[:, :-1]], 1)], -1)
  assert got.shape == (2, 6, 5)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_esn_with_feedback_equals_numpy_teacher_forced_loop():
  cell = esn_with_feedback(HIDDEN, 2, feedback_scaling=0.2, input_scaling=0.8,
                           connectivity=0.3, leak_rate=0.6, bias_scaling=0.1)
  params = cell.init(jax.random.PRNGKey(8), 1 + 2)
  assert cell.input_size(params) == 3 and cell.output_size == HIDDEN
  w_in = np.asarray(params[FROZEN]["w_in"], np.float64)
  w_x, w_fb = w_in[:1], w_in[1:]
  assert np.all(np.abs(w_fb) <= 0.2) and np.max(np.abs(w_fb)) > 0.15
  assert np.max(np.abs(w_x)) > 0.3
  w_rec, b = (np.asarray(params[FROZEN][k], np.float64) for k in ("w_rec", "b"))
  rng = np.random.default_rng(9)
  x, y = rng.normal(size=(2, 30, 1)), rng.normal(size=(2, 30, 2))
  _, states = unroll(cell, params, feedback_inputs(jnp.asarray(x, jnp.float32),
                                                   jnp.asarray(y, jnp.float32)))
  h, y_previous = np.zeros((2, HIDDEN)), np.zeros((2, 2))
  for t in range(30):
    drive = np.tanh(x[:, t] @ w_x + h @ w_rec + y_previous @ w_fb + b)
    h = 0.4 * h + 0.6 * drive
    y_previous = y[:, t]
    np.testing.assert_allclose(states[:, t], h, atol=1e-5)
  silent = esn_with_feedback(HIDDEN, 2, feedback_scaling=0.0, connectivity=0.3)
  np.testing.assert_array_equal(
      silent.init(jax.random.PRNGKey(8), 3)[FROZEN]["w_in"][1:], np.zeros((2, HIDDEN)))


def test_autonomous_feedback_generator():
  # D = 0: the reservoir reads only its own previous output y_{t-1}; trained
  # teacher forced, then run on its own output with closed_loop.
  cell = esn_with_feedback(50, 1, feedback_scaling=0.5, spectral_radius=0.8,
                           connectivity=0.2, bias_scaling=0.2, leak_rate=0.5)
  params = cell.init(jax.random.PRNGKey(0), 1)
  series = jnp.asarray(np.sin(2 * np.pi * np.arange(400) / 25)[:, None], jnp.float32)
  train = series[:250]
  u = feedback_inputs(jnp.zeros((250, 0)), train)
  carry, states = unroll(cell, params, u)
  readout_params = fit_readout(u, states, train, ridge=1e-7, washout=50)
  # carry has read u_249 = y_248; the next input is y_249, the next output y_250.
  generated = closed_loop(cell, params, readout_params, carry, train[-1], 150)
  error = float(nrmse(generated, series[250:]))
  assert error < 0.05, error  # measured about 1e-5


def test_rejects_bad_arguments():
  cell, params = _reservoir()
  good = _random_readout(0, 2, HIDDEN, 2)
  carry, x = jnp.zeros((HIDDEN,)), jnp.zeros((2,))
  for horizon in (0, -3):
    with pytest.raises(ValueError, match="horizon"):
      closed_loop(cell, params, good, carry, x, horizon)
    with pytest.raises(ValueError, match="horizon"):
      warmup_and_generate(cell, params, good, jnp.zeros((5, 2)), horizon)
  with pytest.raises(TypeError, match="horizon"):
    closed_loop(cell, params, good, carry, x, 2.5)
  wide = _random_readout(0, 2, HIDDEN, 3)
  with pytest.raises(ValueError, match="O must equal the input size"):
    closed_loop(cell, params, wide, carry, x, 4)
  with pytest.raises(ValueError, match="O must equal the input size"):
    warmup_and_generate(cell, params, wide, jnp.zeros((5, 2)), 4)
  with pytest.raises(ValueError, match=r"readout_params\['w'\]"):
    closed_loop(cell, params, _random_readout(0, 2, HIDDEN + 1, 2), carry, x, 4)
  with pytest.raises(ValueError, match=r"readout_params\['w'\]"):
    one_step_predictions(cell, params, _random_readout(0, 1, HIDDEN, 2), jnp.zeros((5, 2)))
  with pytest.raises(ValueError, match="last_input"):
    closed_loop(cell, params, good, carry, jnp.zeros((3,)), 4)
  with pytest.raises(TypeError, match="cell"):
    closed_loop("esn", params, good, carry, x, 4)
  with pytest.raises(ValueError, match="layers"):
    deep_esn([])
  with pytest.raises(TypeError, match=r"layers\[1\]"):
    deep_esn([cell, "esn"])
  with pytest.raises(ValueError, match="output_size"):
    esn_with_feedback(10, 0)
  with pytest.raises(ValueError, match="feedback_scaling"):
    esn_with_feedback(10, 1, feedback_scaling=-1.0)
  for bad in (float("inf"), float("nan")):
    with pytest.raises(ValueError, match=f"feedback_scaling must be finite and >= 0, got {bad}"):
      esn_with_feedback(10, 1, feedback_scaling=bad)
    with pytest.raises(ValueError, match=f"spectral_radius must be finite, got {bad}"):
      esn_with_feedback(10, 1, spectral_radius=bad)
    with pytest.raises(ValueError, match=f"input_scaling must be finite, got {bad}"):
      deep_esn([esn(5), esn(5, input_scaling=bad)])
  with pytest.raises(ValueError, match="leak_rate"):
    esn_with_feedback(10, 1, leak_rate=1.5)
  with pytest.raises(ValueError, match="input_size"):
    esn_with_feedback(10, 3).init(jax.random.PRNGKey(0), 2)
  with pytest.raises(ValueError, match="targets"):
    feedback_inputs(jnp.zeros((2, 5, 1)), jnp.zeros((2, 4, 1)))
