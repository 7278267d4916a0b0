"""Tests for seqjax.cells.gru in both forms (reset after / before the matmul).

Numbers are checked against float64 numpy loops written from Cho et al.'s
equations and from PyTorch's documented ``nn.GRU`` formulas.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.gru import gru
from seqjax.scan import unroll

D, H, T = 3, 4, 6

# Compilation dominates these tests' run time: cells are built once per
# configuration and their step is jitted, so each configuration compiles once.
# (init stays eager: its ops are compiled once per shape and shared.)


@functools.lru_cache(maxsize=None)
def _make(**kwargs):
  cell = gru(H, **kwargs)
  return cell._replace(step=jax.jit(cell.step))


def _sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def _random_params(seed, reset_after=True, scale=0.6):
  """Random float32 params with nonzero biases, so no gate sits at 0.5."""
  rng = np.random.default_rng(seed)
  params = {
      "w_x": rng.normal(0.0, scale, (D, 3 * H)),
      "w_h": rng.normal(0.0, scale, (H, 3 * H)),
      "b": rng.normal(0.0, scale, (3 * H,)),
  }
  if reset_after:
    params["b_hn"] = rng.normal(0.0, scale, (H,))
  return {k: v.astype(np.float32) for k, v in params.items()}


def np_gru(params, xs, reset_after, h0=None):
  """Textbook GRU on xs (*B, T, D) in float64; returns (ys, h_T)."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  w_xr, w_xz, w_xn = (p["w_x"][:, k * H:(k + 1) * H] for k in range(3))
  w_hr, w_hz, w_hn = (p["w_h"][:, k * H:(k + 1) * H] for k in range(3))
  b_r, b_z, b_n = (p["b"][k * H:(k + 1) * H] for k in range(3))
  xs = np.asarray(xs, np.float64)
  h = np.zeros(xs.shape[:-2] + (H,)) if h0 is None else np.asarray(h0, np.float64)
  ys = []
  for t in range(xs.shape[-2]):
    x = xs[..., t, :]
    r = _sigmoid(x @ w_xr + h @ w_hr + b_r)
    z = _sigmoid(x @ w_xz + h @ w_hz + b_z)
    if reset_after:
      n = np.tanh(x @ w_xn + b_n + r * (h @ w_hn + p["b_hn"]))
    else:  # Cho et al. 2014, eq. (8).
      n = np.tanh(x @ w_xn + (r * h) @ w_hn + b_n)
    h = (1.0 - z) * n + z * h
    ys.append(h)
  return np.stack(ys, axis=-2), h


def torch_gru(w_ih, w_hh, b_ih, b_hh, xs):
  """PyTorch nn.GRU's documented formulas, one unbatched sequence (T, D).

  W_ih (3H, D), W_hh (3H, H), b_ih, b_hh (3H,), rows in the order r, z, n;
  matrices act on column vectors as in the docs.
  """
  w_ir, w_iz, w_in = np.split(w_ih, 3, axis=0)
  w_hr, w_hz, w_hn = np.split(w_hh, 3, axis=0)
  b_ir, b_iz, b_in = np.split(b_ih, 3)
  b_hr, b_hz, b_hn = np.split(b_hh, 3)
  h = np.zeros(H)
  ys = []
  for x in xs:
    r = _sigmoid(w_ir @ x + b_ir + w_hr @ h + b_hr)
    z = _sigmoid(w_iz @ x + b_iz + w_hz @ h + b_hz)
    n = np.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
    h = (1.0 - z) * n + z * h
    ys.append(h)
  return np.stack(ys), h


def _xs(seed, shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _step_loop(cell, params, xs, h0=None):
  """Runs cell.step over the time axis of xs (*B, T, D) in Python."""
  h = cell.initial_carry(params, xs.shape[:-2]) if h0 is None else h0
  ys = []
  for t in range(xs.shape[-2]):
    h, y = cell.step(params, h, xs[..., t, :])
    ys.append(np.asarray(y))
  return np.stack(ys, axis=-2), h


def _unroll(cell, params, xs, **flags):
  """Jitted ``unroll`` with ``mask``/``reset`` baked in as constants."""
  return jax.jit(lambda p, x: unroll(cell, p, x, **flags))(params, xs)


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("reset_after", [True, False])
def test_params_and_carry_layout(reset_after):
  cell = _make(reset_after=reset_after)
  params = cell.init(jax.random.PRNGKey(0), D)
  expected = {"w_x": (D, 3 * H), "w_h": (H, 3 * H), "b": (3 * H,)}
  if reset_after:
    expected["b_hn"] = (H,)
  assert {k: v.shape for k, v in params.items()} == expected
  assert all(v.dtype == jnp.float32 for v in params.values())
  assert cell.input_size(params) == D
  assert cell.hidden_size == H and cell.output_size == H
  assert cell.initial_carry(params, (2, 5)).shape == (2, 5, H)
  assert cell.initial_carry(params, ()).shape == (H,)
  shapes = jax.eval_shape(lambda key: cell.init(key, D), jax.random.PRNGKey(0))
  assert cell.initial_carry(shapes, (3,)).dtype == jnp.float32


def test_float64_params_and_carry():
  with jax.enable_x64(True):
    cell = gru(H, dtype=jnp.float64)
    params = cell.init(jax.random.PRNGKey(1), D)
    assert all(v.dtype == jnp.float64 for v in params.values())
    carry, ys = unroll(cell, params, jnp.ones((2, T, D), jnp.float64))
    assert carry.dtype == ys.dtype == jnp.float64


def test_blockwise_orthogonal_recurrent_init():
  hidden = H
  w_h = np.asarray(gru(hidden).init(jax.random.PRNGKey(3), D)["w_h"], np.float64)
  assert w_h.shape == (hidden, 3 * hidden)
  blocks = [w_h[:, k * hidden:(k + 1) * hidden] for k in range(3)]
  for block in blocks:
    np.testing.assert_allclose(block.T @ block, np.eye(hidden), atol=1e-5)
    np.testing.assert_allclose(block @ block.T, np.eye(hidden), atol=1e-5)
  assert not np.allclose(blocks[0], blocks[1])


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("batch", [(), (2, 3)])
def test_matches_numpy(reset_after, batch):
  cell = _make(reset_after=reset_after)
  params = _random_params(0, reset_after)
  xs = _xs(1, batch + (T, D))
  ys, h = _step_loop(cell, params, xs)
  ref_ys, ref_h = np_gru(params, xs, reset_after)
  assert ys.shape == batch + (T, H)
  np.testing.assert_allclose(ys, ref_ys, atol=1e-5)
  np.testing.assert_allclose(h, ref_h, atol=1e-5)


def test_reset_after_matches_torch_weights():
  # PyTorch-shaped weights mapped as documented: w_x = W_ih.T, w_h = W_hh.T,
  # b = b_ih + [b_hr, b_hz, 0], b_hn = b_hh[2H:].
  rng = np.random.default_rng(2)
  bound = 2.0 / np.sqrt(H)
  w_ih, w_hh, b_ih, b_hh = (
      rng.uniform(-bound, bound, shape).astype(np.float32).astype(np.float64)
      for shape in [(3 * H, D), (3 * H, H), (3 * H,), (3 * H,)])
  params = {
      "w_x": w_ih.T.astype(np.float32),
      "w_h": w_hh.T.astype(np.float32),
      "b": (b_ih + np.concatenate([b_hh[:2 * H], np.zeros(H)])).astype(np.float32),
      "b_hn": b_hh[2 * H:].astype(np.float32),
  }
  xs = _xs(3, (T, D))
  ys, h = _step_loop(_make(reset_after=True), params, xs)
  ref_ys, ref_h = torch_gru(w_ih, w_hh, b_ih, b_hh, np.asarray(xs, np.float64))
  np.testing.assert_allclose(ys, ref_ys, atol=1e-5)
  np.testing.assert_allclose(h, ref_h, atol=1e-5)


def test_reset_after_flag_changes_the_cell():
  # Same weights, b_hn = 0: the forms differ once h != 0 and 0 < r < 1.
  params = _random_params(4, reset_after=True)
  params["b_hn"] = np.zeros(H, np.float32)
  before = {k: v for k, v in params.items() if k != "b_hn"}
  xs = _xs(5, (2, T, D))
  ys_after, _ = _step_loop(_make(reset_after=True), params, xs)
  ys_before, _ = _step_loop(_make(reset_after=False), before, xs)
  assert np.max(np.abs(ys_after - ys_before)) > 1e-2


def test_forms_agree_when_reset_gate_is_saturated_open():
  # r = sigmoid(30 + O(5)) is 1 in float32, so both candidates reduce to
  # tanh(x W_xn + h W_hn + b_n) (b_hn = 0): the textbook GRU without reset.
  params = _random_params(6, reset_after=True)
  params["b"][:H] = 30.0
  params["b_hn"] = np.zeros(H, np.float32)
  before = {k: v for k, v in params.items() if k != "b_hn"}
  xs = _xs(7, (2, T, D))
  ys_after, _ = _step_loop(_make(reset_after=True), params, xs)
  ys_before, _ = _step_loop(_make(reset_after=False), before, xs)
  np.testing.assert_allclose(ys_after, ys_before, atol=1e-6)

  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  h = np.zeros((2, H))
  for t in range(T):
    x = xs[:, t].astype(np.float64)
    a = x @ p["w_x"] + h @ p["w_h"] + p["b"]
    z = _sigmoid(a[:, H:2 * H])
    h = (1.0 - z) * np.tanh(a[:, 2 * H:]) + z * h
    np.testing.assert_allclose(ys_after[:, t], h, atol=1e-5)


def test_closed_reset_gate_hides_the_past_from_the_candidate():
  # r = 0 (reset_after form): n = tanh(x W_xn + b_n), whatever h_{t-1} and b_hn.
  params = _random_params(8, reset_after=True)
  params["b"][:H] = -30.0
  params["b"][H:2 * H] = -30.0  # z = 0 too, so h_t = n_t is observed directly.
  x = _xs(9, (D,))
  h_prev = _xs(10, (H,))
  _, h = _make(reset_after=True).step(params, h_prev, x)
  expected = np.tanh(x.astype(np.float64) @ params["w_x"][:, 2 * H:] + params["b"][2 * H:])
  np.testing.assert_allclose(h, expected, atol=1e-6)


@pytest.mark.parametrize("reset_after", [True, False])
def test_saturated_update_gate_copies_the_state(reset_after):
  params = _random_params(11, reset_after)
  params["b"][H:2 * H] = 30.0
  h0 = _xs(12, (2, H))
  ys, h = _step_loop(_make(reset_after=reset_after), params, _xs(13, (2, T, D)), h0=h0)
  np.testing.assert_allclose(h, h0, atol=1e-6)
  np.testing.assert_allclose(ys, np.broadcast_to(h0[:, None], (2, T, H)), atol=1e-6)


# ----------------------------------------------------------------------------- unroll


@pytest.mark.parametrize("reset_after", [True, False])
def test_unroll_batched_with_mask_and_reset(reset_after):
  cell = _make(reset_after=reset_after)
  params = _random_params(14, reset_after)
  xs = _xs(15, (3, T, D))
  lengths = [T, 4, 1]
  mask = np.arange(T)[None, :] < np.array(lengths)[:, None]
  h, ys = _unroll(cell, params, xs, mask=mask)
  assert ys.shape == (3, T, H) and h.shape == (3, H)
  for row, n in enumerate(lengths):
    ref_ys, ref_h = np_gru(params, xs[row, :n], reset_after)
    np.testing.assert_allclose(ys[row, :n], ref_ys, atol=1e-5)
    np.testing.assert_array_equal(ys[row, n:], 0.0)
    np.testing.assert_allclose(h[row], ref_h, atol=1e-5)

  reset = np.zeros((3, T), bool)
  reset[:, 2] = True
  _, ys = _unroll(cell, params, xs, reset=reset)
  for row in range(3):
    first, _ = np_gru(params, xs[row, :2], reset_after)
    second, _ = np_gru(params, xs[row, 2:], reset_after)
    np.testing.assert_allclose(ys[row], np.concatenate([first, second]), atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_unroll_unbatched_with_mask(reset_after):
  cell = _make(reset_after=reset_after)
  params = _random_params(16, reset_after)
  xs = _xs(17, (T, D))
  mask = np.array([True, False, True, True, False, True])
  h, ys = _unroll(cell, params, xs, mask=mask)
  assert ys.shape == (T, H) and h.shape == (H,)
  ref_ys, ref_h = np_gru(params, xs[mask], reset_after)
  np.testing.assert_allclose(ys[mask], ref_ys, atol=1e-5)
  np.testing.assert_array_equal(ys[~mask], 0.0)
  np.testing.assert_allclose(h, ref_h, atol=1e-5)


def test_unroll_jit_and_grad_are_finite():
  cell = _make(reset_after=True)
  params = cell.init(jax.random.PRNGKey(6), D)
  xs = _xs(18, (2, T, D))

  @jax.jit
  def loss(p):
    return jnp.sum(unroll(cell, p, xs)[1] ** 2)

  grads = jax.grad(loss)(params)
  assert set(grads) == set(params)
  for g in grads.values():
    assert np.all(np.isfinite(g)) and np.any(g != 0)


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_hidden_size_raises(bad):
  with pytest.raises((ValueError, TypeError), match="hidden_size"):
    gru(bad)


def test_bad_flags_raise():
  with pytest.raises(TypeError, match="reset_after"):
    gru(H, reset_after="yes")
  with pytest.raises((ValueError, TypeError), match="input_size"):
    gru(H).init(jax.random.PRNGKey(0), 0)

# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "gru_reset_after": lambda dtype: gru(5, reset_after=True, dtype=dtype),
    "gru_reset_before": lambda dtype: gru(5, reset_after=False, dtype=dtype),
}
