"""Tests for the recursive-least-squares (FORCE) readout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.esn import fit_readout, readout
from seqjax.reservoir.readout import RLSState, fit_readout_online, rls_init, rls_update


def _ridge_reference(inputs, states, targets, alpha, washout=0, bias=True, forgetting=1.0):
  """Numpy (float64) weighted ridge with a *penalised* bias column, the RLS objective.

  min sum_n lambda^(N-1-n) ||y_n - f_n W||^2 + lambda^N alpha ||W||^2.
  """
  features = np.concatenate([np.asarray(inputs, np.float64),
                             np.asarray(states, np.float64)], -1)[..., washout:, :]
  features = features.reshape(-1, features.shape[-1])
  targets = np.asarray(targets, np.float64)[..., washout:, :]
  targets = targets.reshape(-1, targets.shape[-1])
  if bias:
    features = np.concatenate([features, np.ones((len(features), 1))], 1)
  n = len(features)
  weights = forgetting ** np.arange(n - 1, -1, -1, dtype=np.float64)
  gram = features.T @ (weights[:, None] * features) + forgetting ** n * alpha * np.eye(
      features.shape[1])
  w = np.linalg.solve(gram, features.T @ (weights[:, None] * targets))
  if bias:
    return {"w": w[:-1], "b": w[-1]}
  return {"w": w}


def _reservoir_data(batch_shape=(), steps=150, seed=0, dtype=jnp.float32):
  """Inputs, states of a small numpy tanh reservoir (radius 0.8) and targets."""
  rng = np.random.default_rng(seed)
  inputs = rng.uniform(-1.0, 1.0, batch_shape + (steps, 2))
  w_in = rng.uniform(-1.0, 1.0, (2, 12))
  w_rec = rng.normal(size=(12, 12))
  w_rec *= 0.8 / np.max(np.abs(np.linalg.eigvals(w_rec)))
  b = rng.uniform(-0.2, 0.2, 12)
  h = np.zeros(batch_shape + (12,))
  states = []
  for t in range(steps):
    h = np.tanh(inputs[..., t, :] @ w_in + h @ w_rec + b)
    states.append(h)
  states = np.stack(states, -2)
  # A nonlinear function of the history, with a nonzero mean so the bias matters.
  targets = np.stack([np.roll(inputs[..., 0], 1, -1) * inputs[..., 1] + 0.5,
                      np.sin(3 * inputs[..., 0]) - 0.3], -1)
  return tuple(jnp.asarray(a, dtype) for a in (inputs, states, targets))


def _assert_close_relative(got, want, tol):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert np.linalg.norm(got - want) <= tol * np.linalg.norm(want), (
      np.linalg.norm(got - want) / np.linalg.norm(want))


@pytest.mark.parametrize("alpha", [1.0, 0.01])
@pytest.mark.parametrize("bias", [True, False])
def test_rls_equals_ridge_in_float32(alpha, bias):
  inputs, states, targets = _reservoir_data()
  got = fit_readout_online(inputs, states, targets, alpha=alpha, bias=bias)
  want = _ridge_reference(inputs, states, targets, alpha, bias=bias)
  assert set(got) == set(want)
  for name in want:
    assert got[name].dtype == jnp.float32
    _assert_close_relative(got[name], want[name], 1e-4)


def test_rls_equals_ridge_in_float64_with_forgetting_washout_and_batch():
  with jax.enable_x64(True):
    inputs, states, targets = _reservoir_data((2, 3), steps=40, dtype=jnp.float64)
    for forgetting in (1.0, 0.97):
      got = fit_readout_online(inputs, states, targets, alpha=0.5, forgetting=forgetting,
                               washout=5)
      want = _ridge_reference(inputs, states, targets, 0.5, washout=5,
                              forgetting=forgetting)
      for name in want:
        assert got[name].dtype == jnp.float64
        _assert_close_relative(got[name], want[name], 1e-10)


def test_forgetting_changes_the_solution():
  inputs, states, targets = _reservoir_data()
  plain = fit_readout_online(inputs, states, targets)
  forgetful = fit_readout_online(inputs, states, targets, forgetting=0.9)
  assert np.linalg.norm(plain["w"] - forgetful["w"]) > 1e-2 * np.linalg.norm(plain["w"])


def test_batch_rows_are_processed_in_order():
  # Forgetting makes the result order dependent: the batched fit must equal
  # one long sequence made of row 0 then row 1.
  inputs, states, targets = _reservoir_data((2,), steps=30)
  got = fit_readout_online(inputs, states, targets, forgetting=0.95)
  joined = [a.reshape(1, 60, a.shape[-1]) for a in (inputs, states, targets)]
  want = fit_readout_online(*joined, forgetting=0.95)
  for name in want:
    np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
  swapped = fit_readout_online(*[a[::-1] for a in (inputs, states, targets)],
                               forgetting=0.95)
  assert not np.allclose(got["w"], swapped["w"], rtol=1e-3, atol=1e-4)


def test_works_with_esn_readout_and_approaches_fit_readout():
  with jax.enable_x64(True):
    inputs, states, targets = _reservoir_data(steps=200, dtype=jnp.float64)
    online = fit_readout_online(inputs, states, targets, alpha=1e-8, washout=10)
    closed = fit_readout(inputs, states, targets, ridge=1e-8, washout=10)
    for name in ("w", "b"):
      _assert_close_relative(online[name], closed[name], 1e-5)
    predictions = readout(online, inputs, states)
    assert predictions.shape == (200, 2)
    np.testing.assert_allclose(predictions, readout(closed, inputs, states), atol=1e-6)
    # With a large alpha the penalised bias shrinks, fit_readout's does not.
    shrunk = fit_readout_online(inputs, states, targets, alpha=1e3)
    assert np.abs(shrunk["b"]).max() < 0.5 * np.abs(fit_readout(inputs, states, targets,
                                                                ridge=1e3)["b"]).max()


def test_rls_update_matches_formulas():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    state = rls_init(3, 2, alpha=2.0, dtype=jnp.float64)
    assert isinstance(state, RLSState)
    np.testing.assert_array_equal(state.w, np.zeros((3, 2)))
    np.testing.assert_array_equal(state.p, np.eye(3) / 2.0)
    w, p = np.zeros((3, 2)), np.eye(3) / 2.0
    for _ in range(5):
      f, y = rng.normal(size=3), rng.normal(size=2)
      state, prediction = rls_update(state, f, y, forgetting=0.9)
      np.testing.assert_allclose(prediction, f @ w, atol=1e-12)
      k = p @ f / (0.9 + f @ p @ f)
      w = w + np.outer(k, y - f @ w)
      p = (p - np.outer(k, f @ p)) / 0.9
      np.testing.assert_allclose(state.w, w, rtol=1e-10, atol=1e-12)
      np.testing.assert_allclose(state.p, p, rtol=1e-10, atol=1e-12)


def test_rls_update_is_jittable():
  state = rls_init(4, 1)
  step = jax.jit(lambda s, f, y, lam: rls_update(s, f, y, forgetting=lam))
  new_state, prediction = step(state, jnp.ones(4), jnp.ones(1), 0.99)
  assert prediction.shape == (1,) and new_state.p.shape == (4, 4)
  assert float(new_state.w.sum()) > 0
  fit = jax.jit(fit_readout_online, static_argnames=("washout", "bias"))
  inputs, states, targets = _reservoir_data(steps=20)
  np.testing.assert_allclose(fit(inputs, states, targets, alpha=0.5, washout=2)["w"],
                             fit_readout_online(inputs, states, targets, alpha=0.5,
                                                washout=2)["w"], rtol=1e-5, atol=1e-6)


def test_rejects_bad_arguments():
  inputs, states, targets = _reservoir_data(steps=10)
  with pytest.raises(ValueError, match="alpha"):
    fit_readout_online(inputs, states, targets, alpha=0.0)
  with pytest.raises(ValueError, match="alpha"):
    rls_init(3, 1, alpha=-1.0)
  with pytest.raises(ValueError, match="forgetting"):
    fit_readout_online(inputs, states, targets, forgetting=1.5)
  with pytest.raises(ValueError, match="forgetting"):
    fit_readout_online(inputs, states, targets, forgetting=0.0)
  with pytest.raises(ValueError, match="washout"):
    fit_readout_online(inputs, states, targets, washout=10)
  with pytest.raises(TypeError, match="washout"):
    fit_readout_online(inputs, states, targets, washout=1.5)
  with pytest.raises(ValueError, match="targets"):
    fit_readout_online(inputs, states, targets[:5])
  with pytest.raises(ValueError, match="states"):
    fit_readout_online(inputs, states[0], targets)
  with pytest.raises(TypeError, match="inputs"):
    fit_readout_online(inputs.astype(jnp.int32), states, targets)
  with pytest.raises(ValueError, match="num_features"):
    rls_init(0, 1)
  state = rls_init(3, 2)
  with pytest.raises(ValueError, match="features"):
    rls_update(state, jnp.ones(4), jnp.ones(2))
  with pytest.raises(ValueError, match="target"):
    rls_update(state, jnp.ones(3), jnp.ones(1))
  with pytest.raises(ValueError, match="forgetting"):
    rls_update(state, jnp.ones(3), jnp.ones(2), forgetting=-0.5)
  with pytest.raises(TypeError, match="state"):
    rls_update((state.w, state.p), jnp.ones(3), jnp.ones(2))
