"""Tests for the reservoir readouts: closed-form ridge (factor + solve) and RLS (FORCE)."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import threadpoolctl

from seqjax.cells.esn import esn
from seqjax.reservoir.readout import (ReadoutFactor, RLSState, blas_thread_limit, factor_readout,
                                      fit_readout, fit_readout_online, readout, rls_init,
                                      rls_update, solve_readout)
from seqjax.scan import unroll


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


def test_fit_readout_rejects_bad_arguments():
  x, h, y = (np.zeros((2, 30, n), np.float32) for n in (1, 4, 2))
  with pytest.raises(ValueError, match=r"ridge must be finite and in \[0.0, inf\], got -1.0"):
    fit_readout(x, h, y, ridge=-1.0)
  with pytest.raises(ValueError, match="ridge must be finite.*got nan"):
    fit_readout(x, h, y, ridge=float("nan"))
  with pytest.raises(TypeError, match="bias must be True or False"):
    fit_readout(x, h, y, bias=1)
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
  with pytest.raises(TypeError, match="factor must be a ReadoutFactor"):
    solve_readout((h, y), 1.0)
  with pytest.raises(ValueError, match=r"ridge must be finite and in \[0.0, inf\], got inf"):
    solve_readout(factor_readout(x, h, y), float("inf"))


@pytest.mark.parametrize("bias", [True, False])
def test_one_factor_serves_every_ridge(bias):
  rng = np.random.default_rng(2)
  inputs = rng.normal(size=(3, 40, 2)).astype(np.float32)
  states = (0.3 * rng.normal(size=(3, 40, 7)) + 0.1).astype(np.float32)
  targets = rng.normal(size=(3, 40, 2)).astype(np.float32)
  factor = factor_readout(inputs, states, targets, washout=5, bias=bias)
  assert isinstance(factor, ReadoutFactor)
  assert factor.r_features.shape == (11, 9) and factor.r_targets.shape == (11, 2)
  assert (factor.feature_mean is None) == (not bias)
  ridges = jnp.asarray([1e-4, 1e-2, 1.0], jnp.float32)
  # vmapped over ridges, as seqjax.reservoir.sweep does
  batched = jax.vmap(lambda ridge: solve_readout(factor, ridge))(ridges)
  for i, ridge in enumerate([1e-4, 1e-2, 1.0]):
    w, b = _lstsq_readout(inputs, states, targets, ridge, 5, bias)
    got = solve_readout(factor, ridge)
    np.testing.assert_allclose(got["w"], w, rtol=1e-4, atol=1e-4 * np.max(np.abs(w)))
    np.testing.assert_allclose(batched["w"][i], got["w"], rtol=1e-5, atol=1e-6)
    fitted = fit_readout(inputs, states, targets, ridge=ridge, washout=5, bias=bias)
    np.testing.assert_allclose(fitted["w"], got["w"], rtol=1e-5, atol=1e-6)
    if bias:
      np.testing.assert_allclose(got["b"], b, rtol=1e-4, atol=1e-4 * np.max(np.abs(b)))
    else:
      assert set(got) == {"w"}


def test_fewer_rows_than_features():
  # N = 6 fitted rows, F = 12 features: the factor has N rows and only the
  # ridge makes the problem well posed.
  rng = np.random.default_rng(3)
  inputs, states, targets = (rng.normal(size=(8, n)).astype(np.float32) for n in (2, 10, 1))
  factor = factor_readout(inputs, states, targets, washout=2)
  assert factor.r_features.shape == (6, 12)
  got = solve_readout(factor, 0.1)
  w, b = _lstsq_readout(inputs, states, targets, 0.1, 2, True)
  np.testing.assert_allclose(got["w"], w, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got["b"], b, rtol=1e-4, atol=1e-5)


def test_blas_thread_limit_bounds_the_host_blas():
  jax.block_until_ready(jnp.linalg.qr(jnp.eye(3)))  # loads the LAPACK that JAX uses
  before = [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"]
  assert before
  with blas_thread_limit():
    inside = [info["num_threads"] for info in threadpoolctl.threadpool_info()
              if info["user_api"] == "blas"]
  after = [info["num_threads"] for info in threadpoolctl.threadpool_info()
           if info["user_api"] == "blas"]
  assert inside == [1] * len(before)
  assert after == before
  with pytest.raises(ValueError, match="threads must be a positive integer"):
    with blas_thread_limit(0):
      pass


def test_fit_readout_solves_under_the_thread_limit(monkeypatch):
  entered = []
  readout_lib = importlib.import_module("seqjax.reservoir.readout")  # the name alone is the function
  original = readout_lib.blas_thread_limit

  def spy(*args, **kwargs):
    entered.append(True)
    return original(*args, **kwargs)

  monkeypatch.setattr(readout_lib, "blas_thread_limit", spy)
  x, h, y = (np.ones((20, n), np.float32) for n in (1, 3, 1))
  fit_readout(x, h, y, ridge=1.0)
  assert entered == [True]
  # Under jit the caller owns the execution, so the limit is not entered.
  jax.jit(fit_readout, static_argnames=("washout", "bias"))(x, h, y, ridge=1.0)
  assert entered == [True]


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
