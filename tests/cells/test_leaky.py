"""Tests for the leaky-integrator RNN against a numpy reference of its equations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from seqjax.cells.leaky import leaky, timescales_of
from seqjax.scan import unroll
from seqjax.types import FROZEN, trainable_mask

D, H, T = 3, 5, 9


def _numpy_leaky(params, tau, xs):
  """Textbook leaky integrator, float64 loop over one unbatched sequence (T, D)."""
  u, w, b = (np.asarray(params[k], np.float64) for k in ("w_x", "w_h", "b"))
  tau = np.asarray(tau, np.float64)
  s = np.zeros(H)
  ys = []
  for x in np.asarray(xs, np.float64):
    s = (1 - 1 / tau) * s + (1 / tau) * np.tanh(b + s @ w + x @ u)
    ys.append(s)
  return np.stack(ys)


@pytest.mark.parametrize("kwargs", [
    dict(timescales="fixed", tau=[1.0, 1.5, 3.0, 10.0, 100.0]),
    dict(timescales="fixed", tau=4.0),
    dict(timescales="sampled", tau_range=(1.0, 30.0)),
    dict(timescales="learned", tau=[1.2, 2.0, 5.0, 7.0, 50.0]),
    dict(timescales="learned"),
])
def test_matches_numpy_loop(kwargs):
  cell = leaky(H, bias_init=jax.nn.initializers.normal(0.5), **kwargs)
  params = cell.init(jax.random.PRNGKey(0), D)
  if "tau_raw" in params:
    tau = 1 + np.logaddexp(0.0, np.asarray(params["tau_raw"], np.float64))
  else:
    tau = np.asarray(params[FROZEN]["tau"])
  if kwargs.get("tau") is not None:
    np.testing.assert_allclose(tau, np.broadcast_to(kwargs["tau"], (H,)), rtol=1e-5)
  xs = jax.random.normal(jax.random.PRNGKey(1), (2, 3, T, D))
  _, ys = unroll(cell, params, xs)
  assert ys.shape == (2, 3, T, H)
  for i in range(2):
    for j in range(3):
      np.testing.assert_allclose(ys[i, j], _numpy_leaky(params, tau, xs[i, j]),
                                 rtol=1e-5, atol=1e-5)
  # Unbatched x_t (D,) gives the same as a row of the batch.
  carry, y0 = cell.step(params, cell.initial_carry(params, ()), xs[0, 0, 0])
  assert y0.shape == (H,) and carry.shape == (H,)
  np.testing.assert_allclose(y0, ys[0, 0, 0], rtol=1e-6, atol=1e-6)


def test_timescale_of_one_unit_is_remembered_longer():
  # A unit with tau = 50 driven by one pulse still holds a fraction ~(1-1/50)^t
  # of it; a unit with tau = 1 forgets at the next step.
  cell = leaky(2, tau=[1.0, 50.0], recurrent_init=jax.nn.initializers.zeros,
               kernel_init=jax.nn.initializers.ones)
  params = cell.init(jax.random.PRNGKey(0), 1)
  xs = jnp.zeros((20, 1)).at[0].set(1.0)
  _, ys = unroll(cell, params, xs)
  np.testing.assert_allclose(ys[:, 0], np.r_[np.tanh(1.0), np.zeros(19)], atol=1e-7)
  want = np.tanh(1.0) / 50 * (1 - 1 / 50) ** np.arange(20)
  np.testing.assert_allclose(ys[:, 1], want, rtol=1e-5)


@pytest.mark.parametrize("tau_raw", [-1e30, -1e4, -100.0, -10.0, 0.0, 10.0, 1e4])
def test_learned_tau_is_at_least_one(tau_raw):
  cell = leaky(H, timescales="learned", bias_init=jax.nn.initializers.normal(1.0))
  params = cell.init(jax.random.PRNGKey(0), D)
  params["tau_raw"] = jnp.full((H,), tau_raw, jnp.float32)
  tau = timescales_of(params)
  assert np.all(np.isfinite(tau)) and np.all(tau >= 1.0)
  x = jax.random.normal(jax.random.PRNGKey(1), (4, D))
  s0 = jax.random.uniform(jax.random.PRNGKey(2), (4, H), minval=-1, maxval=1)
  s1, _ = cell.step(params, s0, x)
  drive = np.tanh(np.asarray(params["b"]) + np.asarray(s0) @ np.asarray(params["w_h"])
                  + np.asarray(x) @ np.asarray(params["w_x"]))
  # The new state is a convex combination of old state and drive, so the
  # state never leaves [-1, 1] whatever tau_raw is.
  low, high = np.minimum(s0, drive) - 1e-6, np.maximum(s0, drive) + 1e-6
  assert np.all((low <= s1) & (s1 <= high))
  if tau_raw <= -100:
    np.testing.assert_allclose(s1, drive, rtol=1e-6, atol=1e-6)
  grads = jax.grad(lambda p: jnp.sum(cell.step(p, s0, x)[1] ** 2))(params)
  assert np.all(np.isfinite(grads["tau_raw"]))
  if abs(tau_raw) <= 10:
    assert np.all(grads["tau_raw"] != 0)  # the timescales do train


def test_learned_tau_starts_log_uniform_over_range():
  cell = leaky(300, timescales="learned", tau_range=(2.0, 200.0),
               recurrent_init=jax.nn.initializers.zeros)
  params = cell.init(jax.random.PRNGKey(3), D)
  tau = np.asarray(timescales_of(params))
  assert tau.min() >= 2.0 - 1e-4 and tau.max() <= 200.0 * (1 + 1e-5)
  assert abs(np.mean(np.log10(tau)) - np.log10(20.0)) < 0.1  # midpoint of the log range


def test_sampled_taus_are_log_uniform_over_range():
  low, high = 1.0, 1000.0
  init = jax.jit(leaky(600, timescales="sampled", tau_range=(low, high),
                       recurrent_init=jax.nn.initializers.zeros).init, static_argnums=1)
  tau = np.asarray(init(jax.random.PRNGKey(5), D)[FROZEN]["tau"])
  assert tau.shape == (600,)
  assert tau.min() >= low and tau.max() <= high
  decades = np.histogram(np.log10(tau), bins=[0, 1, 2, 3])[0] / tau.size
  # Log-uniform: a third per decade (binomial sd ~0.02); uniform would put
  # 99% of the mass in the last decade.
  np.testing.assert_allclose(decades, [1 / 3] * 3, atol=0.07)
  # Different keys draw different hierarchies; a degenerate range is constant.
  other = init(jax.random.PRNGKey(6), D)[FROZEN]["tau"]
  assert not np.allclose(tau, other)
  same = leaky(4, timescales="sampled", tau_range=(7.0, 7.0)).init(
      jax.random.PRNGKey(0), D)[FROZEN]["tau"]
  np.testing.assert_allclose(same, 7.0, rtol=1e-6)


def test_trainable_mask_freezes_fixed_tau_and_trains_learned_tau():
  fixed = leaky(H, tau=3.0).init(jax.random.PRNGKey(0), D)
  learned = leaky(H, timescales="learned").init(jax.random.PRNGKey(0), D)
  assert trainable_mask(fixed) == {"w_x": True, "w_h": True, "b": True,
                                   FROZEN: {"tau": False}}
  assert trainable_mask(learned) == {"w_x": True, "w_h": True, "b": True,
                                     "tau_raw": True}
  # The idiom that freezes: masked-out leaves get a zero update (optax.masked
  # alone would pass their raw gradient through).
  labels = jax.tree_util.tree_map(lambda t: "train" if t else "freeze",
                                  trainable_mask(fixed))
  optimizer = optax.multi_transform(
      {"train": optax.sgd(0.5), "freeze": optax.set_to_zero()}, labels)
  grads = jax.tree_util.tree_map(jnp.ones_like, fixed)
  updates, _ = optimizer.update(grads, optimizer.init(fixed), fixed)
  new = optax.apply_updates(fixed, updates)
  np.testing.assert_array_equal(new[FROZEN]["tau"], fixed[FROZEN]["tau"])
  assert not np.allclose(new["w_h"], fixed["w_h"])


def test_float64_params_and_carry():
  with jax.enable_x64(True):
    cell = leaky(H, timescales="learned", tau=[1.5, 2, 3, 4, 5], dtype=jnp.float64)
    params = cell.init(jax.random.PRNGKey(0), D)
    assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(params))
    np.testing.assert_allclose(timescales_of(params), [1.5, 2, 3, 4, 5], rtol=1e-12)
    carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, D)))
    assert carry.dtype == y.dtype == jnp.float64


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(tau=0.5), ValueError, "tau must be finite and >= 1.*0.5"),
    (dict(tau=[1.0, 2.0, 0.9, 3.0, 4.0]), ValueError, "tau .*0.9"),
    (dict(tau=[2.0, 3.0]), ValueError, "tau .*hidden_size=5"),
    (dict(tau=float("nan")), ValueError, "tau"),
    (dict(tau="slow"), TypeError, "tau"),
    (dict(timescales="learned", tau=1.0), ValueError, "tau must be finite and > 1"),
    (dict(timescales="sampled", tau=3.0), ValueError, "tau is not used"),
    (dict(timescales="sampled", tau_range=(0.5, 10.0)), ValueError, r"tau_range.*\(0.5, 10.0\)"),
    (dict(timescales="sampled", tau_range=(10.0, 5.0)), ValueError, "tau_range"),
    (dict(tau_range=(1.0,)), ValueError, "tau_range"),
    (dict(timescales="hierarchical"), ValueError, "timescales"),
    (dict(activation="swish"), ValueError, "activation"),
])
def test_bad_hyperparameters(kwargs, error, match):
  with pytest.raises(error, match=match):
    leaky(H, **kwargs)

# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "leaky_fixed": lambda dtype: leaky(5, timescales="fixed", tau=3.0, dtype=dtype),
    "leaky_sampled": lambda dtype: leaky(5, timescales="sampled", tau_range=(1.0, 50.0), dtype=dtype),
    "leaky_learned": lambda dtype: leaky(5, timescales="learned", dtype=dtype),
}
