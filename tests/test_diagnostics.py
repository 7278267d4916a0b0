"""Gradient-flow diagnostics against hand-written numpy references.

References are independent of the code under test: an explicit backward
recursion for a tanh RNN, finite differences of a numpy forward pass, the
analytic step Jacobian ``diag(1 - h_t^2) W_h^T``, and ``log |eig(A)|`` for a
linear map.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import cells, diagnostics
from seqjax.types import Cell

H, D = 3, 2


def _rnn_params(rng, dtype=np.float64, scale=0.9):
  return {"w_x": rng.normal(size=(D, H)).astype(dtype),
          "w_h": (scale * rng.normal(size=(H, H)) / np.sqrt(H)).astype(dtype),
          "b": (0.1 * rng.normal(size=(H,))).astype(dtype)}


def _forward(params, xs, perturb=None):
  """numpy tanh RNN, h_t = tanh(x_t W + h_{t-1} U + b); ``perturb=(t, u)`` adds u to h_t."""
  w, u, b = (np.asarray(params[k], np.float64) for k in ("w_x", "w_h", "b"))
  h = np.zeros(xs.shape[:-2] + (H,))
  hs = []
  for t in range(xs.shape[-2]):
    h = np.tanh(xs[..., t, :] @ w + h @ u + b)
    if perturb is not None and perturb[0] == t:
      h = h + perturb[1]
    hs.append(h)
  return np.stack(hs, -2)                      # (*B, T, H)


def _loss_np(hs, v, c):
  """L = sum_{b,t} c_t tanh(h_t . v)."""
  return np.sum(c * np.tanh(hs @ v))


def _backward(params, hs, v, c):
  """dL/dh_t for L = sum_{b,t} c_t tanh(h_t . v), by the explicit recursion

    delta_{T-1} = r_{T-1},  delta_t = r_t + (delta_{t+1} * (1 - h_{t+1}^2)) U^T,
    r_t = c_t (1 - tanh(h_t . v)^2) v.
  """
  u = np.asarray(params["w_h"], np.float64)
  steps = hs.shape[-2]
  r = (c * (1 - np.tanh(hs @ v) ** 2))[..., None] * v             # (*B, T, H)
  deltas = np.zeros_like(hs)
  deltas[..., steps - 1, :] = r[..., steps - 1, :]
  for t in range(steps - 2, -1, -1):
    deltas[..., t, :] = r[..., t, :] + (deltas[..., t + 1, :] * (1 - hs[..., t + 1, :] ** 2)) @ u.T
  return deltas


def _jax_loss(v, c):
  return lambda ys: jnp.sum(jnp.asarray(c, ys.dtype) * jnp.tanh(ys @ jnp.asarray(v, ys.dtype)))


def test_hidden_gradients_match_an_explicit_backward_recursion():
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    params = _rnn_params(rng)
    xs = rng.normal(size=(2, 7, D))
    v, c = rng.normal(size=H), rng.uniform(0.5, 1.5, size=7)
    cell = cells.rnn(H, dtype=jnp.float64)
    grads = diagnostics.hidden_gradients(cell, params, xs, _jax_loss(v, c))
    norms = diagnostics.hidden_gradient_norms(cell, params, xs, _jax_loss(v, c))
    expected = _backward(params, _forward(params, xs), v, c)
    np.testing.assert_allclose(grads, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norms, np.linalg.norm(expected, axis=-1), rtol=1e-10)
    assert norms.shape == (2, 7) and norms.dtype == jnp.float64

    # A loss on the last output alone: delta_{T-1} = v and the gradient decays backwards.
    last = lambda ys: jnp.sum(ys[..., -1, :] @ jnp.asarray(v))  # noqa: E731
    norms = diagnostics.hidden_gradient_norms(cell, params, xs, last)
    hs = _forward(params, xs)
    delta = np.broadcast_to(v, (2, H))
    reference = [np.linalg.norm(delta, axis=-1)]
    for t in range(5, -1, -1):
      delta = (delta * (1 - hs[:, t + 1] ** 2)) @ np.asarray(params["w_h"]).T
      reference.append(np.linalg.norm(delta, axis=-1))
    np.testing.assert_allclose(norms, np.stack(reference[::-1], -1), rtol=1e-10)


def test_hidden_gradient_matches_finite_differences_of_a_perturbed_state():
  rng = np.random.default_rng(1)
  with jax.enable_x64(True):
    params = _rnn_params(rng)
    xs = rng.normal(size=(6, D))                                 # unbatched
    v, c = rng.normal(size=H), np.ones(6)
    grads = diagnostics.hidden_gradients(cells.rnn(H, dtype=jnp.float64), params, xs,
                                         _jax_loss(v, c))
    assert grads.shape == (6, H)
    direction = rng.normal(size=H)
    for t in (0, 3, 5):
      e = 1e-6
      plus = _loss_np(_forward(params, xs, (t, e * direction)), v, c)
      minus = _loss_np(_forward(params, xs, (t, -e * direction)), v, c)
      np.testing.assert_allclose(grads[t] @ direction, (plus - minus) / (2 * e), rtol=1e-7)


def test_masked_steps_get_zero_and_real_steps_match_the_unpadded_run():
  rng = np.random.default_rng(2)
  params = _rnn_params(rng, np.float32)
  cell = cells.rnn(H)
  v = rng.normal(size=H).astype(np.float32)
  loss = lambda ys: jnp.sum(jnp.tanh(ys @ jnp.asarray(v)))  # noqa: E731 (tanh(0) = 0 on padding)
  real = [rng.normal(size=(4, D)).astype(np.float32), rng.normal(size=(6, D)).astype(np.float32)]
  # Row 0: real steps at 0, 1, 3, 4 (padding in the middle and at the end), NaN padding.
  padded = np.full((2, 6, D), np.nan, np.float32)
  mask = np.zeros((2, 6), bool)
  padded[0, [0, 1, 3, 4]], mask[0, [0, 1, 3, 4]] = real[0], True
  padded[1], mask[1] = real[1], True
  norms = np.asarray(diagnostics.hidden_gradient_norms(cell, params, padded, loss, mask=mask))
  assert np.all(np.isfinite(norms))
  np.testing.assert_array_equal(norms[0, [2, 5]], 0.0)
  for row, where in ((0, [0, 1, 3, 4]), (1, slice(None))):
    alone = diagnostics.hidden_gradient_norms(cell, params, real[row], loss)
    np.testing.assert_allclose(norms[row, where], alone, rtol=1e-5)


def test_lstm_state_h_and_whole_carry():
  rng = np.random.default_rng(3)
  cell = cells.lstm(4)
  params = cell.init(jax.random.PRNGKey(0), D)
  xs = rng.normal(size=(2, 5, D)).astype(np.float32)
  loss = lambda ys: jnp.sum(ys[:, -1] ** 2)  # noqa: E731
  by_h = diagnostics.hidden_gradients(cell, params, xs, loss, state="h")
  by_carry = diagnostics.hidden_gradients(cell, params, xs, loss, state="carry")
  assert by_h.shape == (2, 5, 4)
  assert by_carry.h.shape == by_carry.c.shape == (2, 5, 4)
  # Perturbing c as well does not change dL/dh_t (the perturbations are zero).
  np.testing.assert_allclose(by_carry.h, by_h, rtol=1e-5, atol=1e-7)
  norms_h = diagnostics.hidden_gradient_norms(cell, params, xs, loss)
  norms_carry = diagnostics.hidden_gradient_norms(cell, params, xs, loss, state="carry")
  assert norms_h.shape == norms_carry.shape == (2, 5)
  assert np.all(np.isfinite(norms_carry)) and np.all(norms_carry >= norms_h * (1 - 1e-5))
  np.testing.assert_allclose(
      norms_carry, np.sqrt(np.sum(by_carry.h ** 2 + by_carry.c ** 2, -1)), rtol=1e-5)
  # The last step's c feeds only later steps, so there dL/dc is 0 and both norms agree.
  np.testing.assert_allclose(by_carry.c[:, -1], 0.0)


def test_an_output_computed_from_the_state_inside_the_step_is_perturbed_too():
  # A cell whose step emits a readout y_t = h_t V (inside a nested jax.jit) must
  # give the same dL/dh_t as the plain RNN with the readout moved into the loss.
  rng = np.random.default_rng(4)
  base = cells.rnn(H)
  params = _rnn_params(rng, np.float32)
  readout = jnp.asarray(rng.normal(size=(H, 2)).astype(np.float32))

  @jax.jit
  def step(params, h, x):
    h, _ = base.step(params, h, x)
    return h, jnp.sin(h @ readout)

  inner = base.with_step(step, output_size=2)
  xs = rng.normal(size=(2, 5, D)).astype(np.float32)
  got = diagnostics.hidden_gradients(inner, params, xs, lambda ys: jnp.sum(ys ** 2))
  expected = diagnostics.hidden_gradients(base, params, xs,
                                          lambda ys: jnp.sum(jnp.sin(ys @ readout) ** 2))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  assert np.all(np.abs(got[:, -1]) > 0)       # the last step's gradient comes from y_{T-1}


def test_non_finite_values_raise_naming_them_and_come_back_nan_under_jit():
  rng = np.random.default_rng(5)
  cell = cells.rnn(H)
  params = _rnn_params(rng, np.float32)
  params["b"] = np.zeros(H, np.float32)
  xs = np.zeros((4, D), np.float32)            # h_t = 0: d sqrt|y| / dy is undefined there
  singular = lambda ys: jnp.sum(jnp.sqrt(jnp.abs(ys)))  # noqa: E731
  with pytest.raises(ValueError, match=r"dL/dh_t is not finite .* step t="):
    diagnostics.hidden_gradient_norms(cell, params, xs, singular)
  jitted = jax.jit(lambda p: diagnostics.hidden_gradient_norms(cell, p, xs, singular))(params)
  assert not np.all(np.isfinite(jitted))
  # Gradients beyond sqrt(float32 max) ~ 1.8e19 do not overflow in the norm.
  huge = diagnostics.hidden_gradient_norms(cell, params, xs + 1, lambda ys: 1e30 * jnp.sum(ys))
  assert np.all(np.isfinite(huge)) and np.all(huge > 1e29)
  with pytest.raises(ValueError, match=r"loss_fn\(ys\) is not finite"):
    diagnostics.hidden_gradient_norms(cell, params, xs, lambda ys: jnp.sum(ys) + jnp.inf)


def test_bad_arguments_raise_naming_them():
  cell = cells.rnn(H)
  params = _rnn_params(np.random.default_rng(6), np.float32)
  xs = np.zeros((2, 3, D), np.float32)
  loss = jnp.sum
  with pytest.raises(ValueError, match="state"):
    diagnostics.hidden_gradient_norms(cell, params, xs, loss, state="c")
  with pytest.raises(ValueError, match="mask"):
    diagnostics.hidden_gradient_norms(cell, params, xs, loss, mask=np.ones((3, 2), bool))
  with pytest.raises(ValueError, match="loss_fn"):
    diagnostics.hidden_gradient_norms(cell, params, xs, lambda ys: ys)
  with pytest.raises(TypeError, match="loss_fn"):
    diagnostics.hidden_gradient_norms(cell, params, xs, None)
  with pytest.raises(TypeError, match="xs"):
    diagnostics.hidden_gradient_norms(cell, params, np.zeros((2, 3, D), np.int32), loss)
  with pytest.raises(ValueError, match="xs"):
    diagnostics.hidden_gradient_norms(cell, params, np.zeros((2, 3, D + 1), np.float32), loss)
  with pytest.raises(ValueError, match="carry"):
    diagnostics.hidden_gradient_norms(cell, params, xs, loss, carry=np.zeros((H,), np.float32))
  with pytest.raises(ValueError, match="state='h'"):
    pair = Cell(lambda k, d: params, lambda p, b=(): (jnp.zeros(b + (H,)),) * 2,
                lambda p, c, x: ((c[0], c[1]), c[0]), lambda p: D, H, H, "pair")
    diagnostics.hidden_gradient_norms(pair, params, xs, loss)
  for function in (diagnostics.step_jacobians, diagnostics.lyapunov_exponents):
    with pytest.raises(ValueError, match="xs"):
      function(cell, params, np.zeros((0, D), np.float32))   # T = 0
    with pytest.raises(ValueError, match="xs"):
      function(cell, params, xs)                            # batched
  with pytest.raises(ValueError, match="xs"):
    diagnostics.lyapunov_exponents(cell, params, np.zeros((3, D), np.float32), warmup=3)
  with pytest.raises(ValueError, match="num"):
    diagnostics.lyapunov_exponents(cell, params, np.zeros((3, D), np.float32), num=H + 1)
  with pytest.raises(ValueError, match="warmup"):
    diagnostics.lyapunov_exponents(cell, params, np.zeros((3, D), np.float32), warmup=-1)
  with pytest.raises(ValueError, match="jacobians"):
    diagnostics.singular_values(np.zeros(3, np.float32))


def test_step_jacobians_of_a_tanh_rnn_are_diag_one_minus_h_squared_times_w_h_transposed():
  rng = np.random.default_rng(7)
  with jax.enable_x64(True):
    params = _rnn_params(rng, scale=1.5)
    xs = rng.normal(size=(6, D))
    jacobians = diagnostics.step_jacobians(cells.rnn(H, dtype=jnp.float64), params, xs)
    hs = _forward(params, xs)
    expected = np.stack([np.diag(1 - h ** 2) @ params["w_h"].T for h in hs])
    assert jacobians.shape == (6, H, H)
    np.testing.assert_allclose(jacobians, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(diagnostics.singular_values(jacobians),
                               np.linalg.svd(expected, compute_uv=False), rtol=1e-10)


def test_step_jacobians_of_an_lstm_use_the_state_h_then_c():
  rng = np.random.default_rng(8)
  with jax.enable_x64(True):
    cell = cells.lstm(2, dtype=jnp.float64)
    params = cell.init(jax.random.PRNGKey(1), D)
    xs = rng.normal(size=(3, D))
    jacobians = np.asarray(diagnostics.step_jacobians(cell, params, xs))
    assert jacobians.shape == (3, 4, 4)
    # Central differences of step 2 in the state [h; c] reached after steps 0 and 1.
    carry = cell.initial_carry(params)
    for x in xs[:2]:
      carry, _ = cell.step(params, carry, x)
    s = np.concatenate([carry.h, carry.c])
    def step(s):
      return np.concatenate(cell.step(params, type(carry)(s[:2], s[2:]), xs[2])[0])

    e = 1e-6
    columns = [(step(s + e * basis) - step(s - e * basis)) / (2 * e) for basis in np.eye(4)]
    np.testing.assert_allclose(jacobians[2], np.stack(columns, 1), rtol=1e-6, atol=1e-9)


def _linear_map(a):
  n = a.shape[0]

  def init(key, input_size):
    del key
    return {"a": jnp.asarray(a), "w_x": jnp.zeros((input_size, n), a.dtype)}

  def initial_carry(params, batch_shape=()):
    return jnp.zeros(tuple(batch_shape) + (n,), params["a"].dtype)

  def step(params, h, x):            # h -> A h (+ x 0)
    h = x @ params["w_x"] + h @ params["a"].T
    return h, h

  return Cell(init, initial_carry, step, lambda p: p["w_x"].shape[0], n, n, "linear map")


@pytest.mark.parametrize("kind", ["symmetric", "diagonalizable"])
def test_lyapunov_exponents_of_a_linear_map_are_log_abs_eigenvalues(kind):
  rng = np.random.default_rng(9)
  eigenvalues = np.array([1.3, -0.9, 0.6, -0.35, 0.1])
  if kind == "symmetric":
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a = q @ np.diag(eigenvalues) @ q.T
  else:
    v = np.eye(5) + 0.3 * rng.normal(size=(5, 5))
    a = v @ np.diag(eigenvalues) @ np.linalg.inv(v)
  expected = np.sort(np.log(np.abs(np.linalg.eigvals(a))))[::-1]
  with jax.enable_x64(True):
    cell = _linear_map(a)
    params = cell.init(jax.random.PRNGKey(0), 1)
    xs = np.zeros((500, 1))
    exponents = diagnostics.lyapunov_exponents(cell, params, xs)
    np.testing.assert_allclose(exponents, expected, atol=1e-2)
    top = diagnostics.lyapunov_exponents(cell, params, xs, num=2, warmup=20)
    np.testing.assert_allclose(top, expected[:2], atol=1e-2)
    assert exponents.dtype == jnp.float64 and top.shape == (2,)


def test_lyapunov_exponents_raise_when_the_trajectory_overflows():
  cell = _linear_map(np.float32(1e20) * np.eye(2, dtype=np.float32))
  params = cell.init(jax.random.PRNGKey(0), 1)
  with pytest.raises(ValueError, match="non-finite at step t="):
    diagnostics.lyapunov_exponents(cell, params, np.zeros((5, 1), np.float32),
                                   carry=np.ones(2, np.float32))
