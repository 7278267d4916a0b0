"""Tests for the echo-state reservoir and its closed-form ridge readout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.esn import esn, fit_readout, readout
from seqjax.scan import unroll
from seqjax.types import FROZEN, trainable_mask


def _radius(w):
  return np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64))))


@pytest.mark.parametrize("hidden_size, connectivity, radius", [
    (40, 0.1, 0.9),
    (200, 0.05, 1.25),
    (40, 1.0, 0.3),
    (4, 0.1, 0.5),  # sparse enough that acyclic (nilpotent) patterns are common
    (1, 0.001, 0.9),  # almost surely empty: falls back to the diagonal
])
def test_reservoir_has_the_requested_spectral_radius(hidden_size, connectivity, radius):
  cell = esn(hidden_size, spectral_radius=radius, connectivity=connectivity)
  for seed in range(3):
    w_rec = cell.init(jax.random.PRNGKey(seed), 1)[FROZEN]["w_rec"]
    assert w_rec.shape == (hidden_size, hidden_size)
    assert abs(_radius(w_rec) - radius) < 1e-3 * radius


def test_power_method_radius_is_close():
  w_rec = esn(200, spectral_radius=0.9, spectral_method="power").init(
      jax.random.PRNGKey(0), 1)[FROZEN]["w_rec"]
  assert abs(_radius(w_rec) - 0.9) < 0.1 * 0.9


@pytest.mark.parametrize("connectivity", [0.1, 0.3, 1.0])
def test_sparsity_matches_connectivity(connectivity):
  w_rec = esn(200, connectivity=connectivity, spectral_method="power").init(
      jax.random.PRNGKey(1), 1)[FROZEN]["w_rec"]
  # 40000 Bernoulli entries: the sampling sd of the fraction is <= 0.0025.
  assert abs(np.mean(np.asarray(w_rec) != 0) - connectivity) < 0.01


def test_input_and_bias_scaling():
  params = esn(40, input_scaling=0.7, bias_scaling=0.2).init(jax.random.PRNGKey(2), 2)
  w_in, b = np.asarray(params[FROZEN]["w_in"]), np.asarray(params[FROZEN]["b"])
  assert w_in.shape == (2, 40) and b.shape == (40,)
  assert np.all(np.abs(w_in) <= 0.7) and np.max(np.abs(w_in)) > 0.65
  assert np.all(np.abs(b) <= 0.2) and np.max(np.abs(b)) > 0.15
  unbiased = esn(40).init(jax.random.PRNGKey(2), 2)[FROZEN]["b"]
  np.testing.assert_array_equal(unbiased, np.zeros(40))


@pytest.mark.parametrize("leak_rate", [1.0, 0.3])
def test_matches_numpy_loop(leak_rate):
  cell = esn(40, connectivity=0.3, bias_scaling=0.3, leak_rate=leak_rate)
  params = cell.init(jax.random.PRNGKey(3), 1)
  w_in, w_rec, b = (np.asarray(params[FROZEN][k], np.float64) for k in ("w_in", "w_rec", "b"))
  xs = jax.random.normal(jax.random.PRNGKey(4), (2, 15, 1))
  _, ys = unroll(cell, params, xs)
  assert ys.shape == (2, 15, 40)
  for i in range(2):
    h, want = np.zeros(40), []
    for x in np.asarray(xs[i], np.float64):
      h = (1 - leak_rate) * h + leak_rate * np.tanh(x @ w_in + h @ w_rec + b)
      want.append(h)
    np.testing.assert_allclose(ys[i], np.stack(want), rtol=1e-5, atol=1e-5)


def test_echo_state_property():
  cell = esn(40, spectral_radius=0.8, connectivity=0.2)
  params = cell.init(jax.random.PRNGKey(5), 1)
  xs = 0.5 * jax.random.normal(jax.random.PRNGKey(6), (300, 1))
  far = jax.random.uniform(jax.random.PRNGKey(7), (40,), minval=-1.0, maxval=1.0)
  _, from_zero = unroll(cell, params, xs)
  _, from_far = unroll(cell, params, xs, carry=far)
  distance = np.linalg.norm(np.asarray(from_zero) - np.asarray(from_far), axis=-1)
  assert distance[0] > 0.1
  assert distance[-1] < 1e-6


def test_trainable_mask_marks_the_reservoir_frozen():
  params = esn(4).init(jax.random.PRNGKey(0), 1)
  assert trainable_mask(params) == {FROZEN: {"w_in": False, "w_rec": False, "b": False}}


def _lstsq_readout(inputs, states, targets, ridge, washout, bias):
  """Ridge as least squares on [X; sqrt(ridge) P] w = [Y; 0], bias unpenalised."""
  x = np.concatenate([np.asarray(inputs, np.float64), np.asarray(states, np.float64)], -1)
  x = x[..., washout:, :].reshape(-1, x.shape[-1])
  y = np.asarray(targets, np.float64)[..., washout:, :].reshape(-1, targets.shape[-1])
  features = x.shape[1]
  penalty = np.sqrt(ridge) * np.eye(features)
  if bias:
    x = np.concatenate([np.ones((len(x), 1)), x], 1)
    penalty = np.concatenate([np.zeros((features, 1)), penalty], 1)
  system = np.concatenate([x, penalty], 0)
  rhs = np.concatenate([y, np.zeros((features, y.shape[1]))], 0)
  w = np.linalg.lstsq(system, rhs, rcond=None)[0]
  return (w[1:], w[0]) if bias else (w, None)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.5])
def test_fit_readout_equals_lstsq(ridge, bias):
  rng = np.random.default_rng(0)
  # Columns on very different scales (inputs ~10, states ~0.1) and nonzero
  # means: what the centring and equilibration are there for.
  inputs = (10 * rng.normal(size=(2, 3, 30, 2)) + 5).astype(np.float32)
  states = (0.1 * rng.normal(size=(2, 3, 30, 6)) - 0.05).astype(np.float32)
  targets = rng.normal(size=(2, 3, 30, 3)).astype(np.float32)
  got = fit_readout(inputs, states, targets, ridge=ridge, washout=4, bias=bias)
  w, b = _lstsq_readout(inputs, states, targets, ridge, 4, bias)
  assert got["w"].shape == (8, 3)
  np.testing.assert_allclose(got["w"], w, rtol=1e-4, atol=1e-4 * np.max(np.abs(w)))
  if bias:
    assert got["b"].shape == (3,)
    np.testing.assert_allclose(got["b"], b, rtol=1e-4, atol=1e-4 * np.max(np.abs(b)))
  else:
    assert set(got) == {"w"}
  predictions = readout(got, inputs, states)
  x = np.concatenate([inputs, states], -1).astype(np.float64)
  want = x @ w + (b if bias else 0)
  np.testing.assert_allclose(predictions, want, rtol=1e-4, atol=1e-4)


def test_fit_readout_on_reservoir_states_in_float64():
  cell = esn(40, connectivity=0.2)
  params = cell.init(jax.random.PRNGKey(8), 1)
  inputs = np.random.default_rng(9).normal(size=(2, 60, 1))
  _, states = unroll(cell, params, jnp.asarray(inputs, jnp.float32))
  states = np.asarray(states, np.float64)
  # Nearly collinear reservoir states: float64 tells the solver's accuracy
  # apart from float32 rounding.
  targets = np.stack([np.roll(inputs[..., 0], 3, -1), inputs[..., 0] ** 2], -1)
  with jax.enable_x64(True):
    got = fit_readout(inputs, states, targets, ridge=1e-6, washout=20)
    w, b = _lstsq_readout(inputs, states, targets, 1e-6, 20, True)
    assert got["w"].dtype == jnp.float64
    np.testing.assert_allclose(got["w"], w, rtol=1e-6, atol=1e-6 * np.max(np.abs(w)))
    np.testing.assert_allclose(got["b"], b, rtol=1e-6, atol=1e-6 * np.max(np.abs(b)))
  # The float32 solve on the same data keeps float32 accuracy.
  got32 = fit_readout(*(a.astype(np.float32) for a in (inputs, states, targets)),
                      ridge=1e-6, washout=20)
  np.testing.assert_allclose(got32["w"], w, rtol=1e-4, atol=1e-4 * np.max(np.abs(w)))


def test_fit_readout_is_jittable_with_traced_ridge():
  rng = np.random.default_rng(1)
  inputs, states, targets = (rng.normal(size=(4, 20, n)).astype(np.float32) for n in (1, 5, 2))
  fit = jax.jit(fit_readout, static_argnames=("washout", "bias"))
  got = fit(inputs, states, targets, ridge=jnp.float32(0.1), washout=3)
  want = _lstsq_readout(inputs, states, targets, 0.1, 3, True)
  np.testing.assert_allclose(got["w"], want[0], rtol=1e-4, atol=1e-5)
  ys = jax.jit(readout)(got, inputs, states)
  assert ys.shape == (4, 20, 2)


def test_esn_learns_one_step_ahead_sine():
  cell = esn(40, spectral_radius=0.9, connectivity=0.2, input_scaling=0.5)
  params = cell.init(jax.random.PRNGKey(10), 1)
  wave = np.sin(2 * np.pi * np.arange(601) / 25.0).astype(np.float32)
  inputs, targets = wave[:-1, None], wave[1:, None]
  _, states = unroll(cell, params, jnp.asarray(inputs))  # unbatched: (T, H)
  train, washout = 400, 100
  fitted = fit_readout(inputs[:train], states[:train], targets[:train],
                       ridge=1e-6, washout=washout)
  predictions = np.asarray(readout(fitted, inputs[train:], states[train:]))
  error = np.sqrt(np.mean((predictions - targets[train:]) ** 2))
  assert error / np.std(targets[train:]) < 0.05
  # A periodic drive puts the states on a closed curve (at most 25 distinct
  # points), so the features are rank-deficient and ridge=1e-6 is far below
  # float32's resolution of the Gram matrix: the float32 fit must still agree
  # with a float64 least-squares solution.
  w, b = _lstsq_readout(inputs[:train], states[:train], targets[:train], 1e-6, washout, True)
  features = np.concatenate([inputs[train:], states[train:]], -1).astype(np.float64)
  np.testing.assert_allclose(predictions, features @ w + b, atol=1e-4)
  # The input alone cannot do it: sin(t + 1) needs the phase, which only the
  # reservoir's memory provides.
  no_memory = fit_readout(inputs[:train], 0 * states[:train], targets[:train], ridge=1e-6)
  blind = np.asarray(readout(no_memory, inputs[train:], 0 * states[train:]))
  assert np.sqrt(np.mean((blind - targets[train:]) ** 2)) / np.std(targets[train:]) > 0.2


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(spectral_radius=0.0), ValueError, "spectral_radius must be > 0, got 0.0"),
    (dict(spectral_radius=-0.9), ValueError, "spectral_radius.*-0.9"),
    (dict(connectivity=0.0), ValueError, r"connectivity must be in \(0.0, 1.0\], got 0.0"),
    (dict(connectivity=1.5), ValueError, "connectivity.*1.5"),
    (dict(leak_rate=0.0), ValueError, r"leak_rate must be in \(0.0, 1.0\], got 0.0"),
    (dict(leak_rate=1.2), ValueError, "leak_rate.*1.2"),
    (dict(input_scaling=-1.0), ValueError, "input_scaling must be finite and >= 0, got -1.0"),
    (dict(bias_scaling=-0.1), ValueError, "bias_scaling.*-0.1"),
    (dict(spectral_method="arnoldi"), ValueError, "spectral_method"),
    (dict(connectivity="dense"), TypeError, "connectivity"),
])
def test_bad_hyperparameters(kwargs, error, match):
  with pytest.raises(error, match=match):
    esn(10, **kwargs)


def test_fit_readout_rejects_bad_arguments():
  x, h, y = (np.zeros((2, 30, n), np.float32) for n in (1, 4, 2))
  with pytest.raises(ValueError, match="ridge must be finite and >= 0, got -1"):
    fit_readout(x, h, y, ridge=-1.0)
  with pytest.raises(ValueError, match=r"washout must be in \[0, T\) with T=30 steps, got 30"):
    fit_readout(x, h, y, washout=30)
  with pytest.raises(ValueError, match="washout"):
    fit_readout(x, h, y, washout=-1)
  with pytest.raises(ValueError, match=r"states .* must match inputs.*\(2, 29, 4\)"):
    fit_readout(x, h[:, 1:], y)
  with pytest.raises(ValueError, match="targets"):
    fit_readout(x, h, y[0])
  with pytest.raises(ValueError, match="targets must have shape"):
    fit_readout(x, h, y[0, 0])
  with pytest.raises(TypeError, match="inputs must be a floating-point array"):
    fit_readout(x.astype(np.int32), h, y)
  with pytest.raises(ValueError,
                     match=r"readout_params\['w'\] must have shape \(D \+ H, O\) = \(5, O\)"):
    readout({"w": jnp.zeros((6, 2))}, x, h)
  with pytest.raises(ValueError, match="inputs .* and states .* must match"):
    readout({"w": jnp.zeros((5, 2))}, x, h[:1])

# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "esn": lambda dtype: esn(6, spectral_radius=0.9, connectivity=0.5, leak_rate=0.5, dtype=dtype),
}
