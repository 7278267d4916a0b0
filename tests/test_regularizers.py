"""Pascanu et al.'s Omega against a numpy implementation with explicit Jacobians.

The reference builds every step Jacobian ``J_k = diag(1 - h_k^2) W_h^T`` of a
tanh RNN as a matrix, the gradients ``dL/dh_k`` by an explicit backward
recursion, and Omega's gradient by central finite differences with
``dL/dh_k`` (and, for the paper's immediate derivative, ``h_{k-1}``) frozen.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import cells, regularizers, unroll

H, D = 3, 2
NAMES = ("w_x", "w_h", "b")


def _params(rng, dtype=np.float64):
  return {"w_x": rng.normal(size=(D, H)).astype(dtype),
          "w_h": (1.2 * rng.normal(size=(H, H)) / np.sqrt(H)).astype(dtype),
          "b": (0.1 * rng.normal(size=(H,))).astype(dtype)}


def _forward(params, xs):
  w, u, b = (np.asarray(params[k], np.float64) for k in NAMES)
  h = np.zeros(xs.shape[:-2] + (H,))
  hs = []
  for t in range(xs.shape[-2]):
    h = np.tanh(xs[..., t, :] @ w + h @ u + b)
    hs.append(h)
  return np.stack(hs, -2)


def _deltas(params, hs, v):
  """dL/dh_k for L = sum_{b,t} tanh(h_t . v), by the explicit backward recursion."""
  u = np.asarray(params["w_h"], np.float64)
  r = (1 - np.tanh(hs @ v) ** 2)[..., None] * v
  deltas = np.zeros_like(hs)
  deltas[..., -1, :] = r[..., -1, :]
  for t in range(hs.shape[-2] - 2, -1, -1):
    jacobian_t = [np.diag(1 - h ** 2) @ u.T for h in hs[:, t + 1]]    # dh_{t+1}/dh_t per row
    deltas[:, t] = r[:, t] + np.stack([d @ j for d, j in zip(deltas[:, t + 1], jacobian_t)])
  return deltas


def _omega(params, xs, deltas, previous, ks, rows=None):
  """mean over (b, k) of (||delta_k J_k|| / ||delta_k|| - 1)^2 with explicit J_k matrices.

  ``previous[b, k]`` is h_{k-1} (zeros for k = 0); J_k is taken there with the
  given ``params``: J_k = diag(1 - h_k^2) W_h^T, h_k = tanh(x_k W_x + h_{k-1} W_h + b).
  """
  w, u, b = (np.asarray(params[k], np.float64) for k in NAMES)
  terms = []
  for row in range(xs.shape[0]) if rows is None else rows:
    for k in ks[row] if isinstance(ks, dict) else ks:
      h_k = np.tanh(xs[row, k] @ w + previous[row, k] @ u + b)
      jacobian = np.diag(1 - h_k ** 2) @ u.T
      delta = deltas[row, k]
      terms.append((np.linalg.norm(delta @ jacobian) / np.linalg.norm(delta) - 1) ** 2)
  return np.mean(terms)


def _previous(hs):
  return np.concatenate([np.zeros_like(hs[:, :1]), hs[:, :-1]], 1)


def _loss(v):
  return lambda ys: jnp.sum(jnp.tanh(ys @ jnp.asarray(v, ys.dtype)))


def test_omega_matches_explicit_jacobians():
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    params = _params(rng)
    xs, v = rng.normal(size=(2, 6, D)), rng.normal(size=H)
    cell = cells.rnn(H, dtype=jnp.float64)
    hs = _forward(params, xs)
    deltas = _deltas(params, hs, v)
    omega = regularizers.pascanu_omega(cell, params, xs, _loss(v))
    np.testing.assert_allclose(omega, _omega(params, xs, deltas, _previous(hs), range(6)),
                               rtol=1e-10)
    assert omega.shape == () and omega.dtype == jnp.float64
    omega = regularizers.pascanu_omega(cell, params, xs, _loss(v), time_range=(1, 4))
    np.testing.assert_allclose(omega, _omega(params, xs, deltas, _previous(hs), range(1, 4)),
                               rtol=1e-10)
    # state="h" is the same thing for an array carry.
    np.testing.assert_allclose(
        regularizers.pascanu_omega(cell, params, xs, _loss(v), time_range=(1, 4), state="h"),
        omega, rtol=1e-12)


def test_omega_with_padding_counts_the_real_steps_only():
  rng = np.random.default_rng(1)
  with jax.enable_x64(True):
    params = _params(rng)
    v = rng.normal(size=H)
    cell = cells.rnn(H, dtype=jnp.float64)
    xs = rng.normal(size=(2, 5, D))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    padded = np.where(mask[..., None], xs, np.nan)
    omega = regularizers.pascanu_omega(cell, params, padded, _loss(v), mask=mask)
    terms = {}
    for row, length in ((0, 3), (1, 5)):
      hs = _forward(params, xs[row:row + 1, :length])
      deltas = _deltas(params, hs, v)
      terms[row] = _omega(params, xs[row:row + 1, :length], deltas, _previous(hs),
                          range(length)) * length
    np.testing.assert_allclose(omega, (terms[0] + terms[1]) / 8, rtol=1e-10)


def test_rows_the_loss_ignores_add_no_terms():
  rng = np.random.default_rng(2)
  params = _params(rng, np.float32)
  cell = cells.rnn(H)
  xs = rng.normal(size=(2, 4, D)).astype(np.float32)
  v = jnp.asarray(rng.normal(size=H).astype(np.float32))
  # Jitted: one program per batch shape, not one per operation.
  omega = jax.jit(lambda x: regularizers.pascanu_omega(cell, params, x,
                                                       lambda ys: jnp.sum(ys[0] @ v)))
  only_row_0 = omega(xs)
  row_0 = omega(xs[:1])
  np.testing.assert_allclose(only_row_0, row_0, rtol=1e-5)


def _finite_difference_gradient(function, params, e=1e-6):
  grads = {}
  for name in NAMES:
    grad = np.zeros_like(params[name])
    for index in np.ndindex(params[name].shape):
      shifted = []
      for sign in (1, -1):
        p = {k: np.array(a, copy=True) for k, a in params.items()}
        p[name][index] += sign * e
        shifted.append(function(p))
      grad[index] = (shifted[0] - shifted[1]) / (2 * e)
    grads[name] = grad
  return grads


@pytest.mark.parametrize("immediate", [True, False])
def test_omega_gradient_treats_dl_dh_as_constant(immediate):
  rng = np.random.default_rng(3)
  with jax.enable_x64(True):
    params = _params(rng)
    xs, v = rng.normal(size=(2, 5, D)), rng.normal(size=H)
    cell = cells.rnn(H, dtype=jnp.float64)
    hs = _forward(params, xs)
    frozen_deltas = _deltas(params, hs, v)          # computed once, at these params
    frozen_previous = _previous(hs)

    def frozen_omega(p):
      previous = frozen_previous if immediate else _previous(_forward(p, xs))
      return _omega(p, xs, frozen_deltas, previous, range(5))

    expected = _finite_difference_gradient(frozen_omega, params)
    got = jax.grad(lambda p: regularizers.pascanu_omega(cell, p, xs, _loss(v),
                                                        immediate=immediate))(params)
    for name in NAMES:
      np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-9)


def test_omega_loss_is_the_task_loss_plus_weighted_omega():
  rng = np.random.default_rng(4)
  with jax.enable_x64(True):
    params = _params(rng)
    xs, v = rng.normal(size=(2, 4, D)), rng.normal(size=H)
    cell = cells.rnn(H, dtype=jnp.float64)
    task = _loss(v)

    def objective(p):
      return regularizers.omega_loss(cell, p, xs, task, weight=0.5)

    # Jitted: each a program compiled once, rather than every operation on its own.
    (total, parts), grads = jax.jit(jax.value_and_grad(objective, has_aux=True))(params)
    plain = lambda p: task(unroll(cell, p, xs, implementation="scan")[1])  # noqa: E731
    omega = lambda p: regularizers.pascanu_omega(cell, p, xs, task)  # noqa: E731
    (plain_value, plain_grad), (omega_value, omega_grad) = jax.jit(
        lambda p: (jax.value_and_grad(plain)(p), jax.value_and_grad(omega)(p)))(params)
    np.testing.assert_allclose(parts["loss"], plain_value, rtol=1e-12)
    np.testing.assert_allclose(parts["omega"], omega_value, rtol=1e-12)
    np.testing.assert_allclose(total, parts["loss"] + 0.5 * parts["omega"], rtol=1e-12)
    expected = jax.tree_util.tree_map(lambda a, b: a + 0.5 * b, plain_grad, omega_grad)
    for name in NAMES:
      np.testing.assert_allclose(grads[name], expected[name], rtol=1e-9, atol=1e-12)


def test_lstm_omega_and_its_gradient_are_finite():
  rng = np.random.default_rng(5)
  cell = cells.lstm(3)
  params = cell.init(jax.random.PRNGKey(0), D)
  xs = rng.normal(size=(2, 4, D)).astype(np.float32)
  loss = lambda ys: jnp.sum(ys[:, -1] ** 2)  # noqa: E731
  for state in ("carry", "h"):
    omega, grads = jax.jit(jax.value_and_grad(  # one program, not one per operation
        lambda p: regularizers.pascanu_omega(cell, p, xs, loss, state=state)))(params)  # noqa: B023
    assert omega.shape == () and np.isfinite(omega) and omega > 0
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_bad_arguments_raise_naming_them():
  rng = np.random.default_rng(6)
  params = _params(rng, np.float32)
  cell = cells.rnn(H)
  xs = rng.normal(size=(2, 4, D)).astype(np.float32)
  for bad in ((0, 5), (3, 3), (-1, 2), (2, 1)):
    with pytest.raises(ValueError, match="time_range"):
      regularizers.pascanu_omega(cell, params, xs, jnp.sum, time_range=bad)
  for bad in (("a", 2), (0, 1, 2), 3, (0.0, 2)):
    with pytest.raises(TypeError, match="time_range"):
      regularizers.pascanu_omega(cell, params, xs, jnp.sum, time_range=bad)
  with pytest.raises(ValueError, match="weight"):
    regularizers.omega_loss(cell, params, xs, jnp.sum, weight=-1.0)
  with pytest.raises(TypeError, match="immediate"):
    regularizers.pascanu_omega(cell, params, xs, jnp.sum, immediate="yes")
  with pytest.raises(ValueError, match="state"):
    regularizers.pascanu_omega(cell, params, xs, jnp.sum, state="c")
