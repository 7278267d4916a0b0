"""Tests for seqjax.cells.lstm: lstm (plain and peephole) and tied_lstm (CIFG).

Numbers are checked against float64 numpy loops written from the textbook
equations and from PyTorch's documented ``nn.LSTM`` formulas.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import init as initializers
from seqjax.cells.lstm import lstm, tied_lstm
from seqjax.scan import unroll
from seqjax.types import LSTMCarry

D, H, T = 3, 4, 6

# Compilation dominates these tests' run time: cells are built once per
# configuration and their step is jitted, so each configuration compiles once.
# (init stays eager: its ops are compiled once per shape and shared.)


@functools.lru_cache(maxsize=None)
def _make(factory, **kwargs):
  cell = factory(H, **kwargs)
  return cell._replace(step=jax.jit(cell.step))


def _sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def _random_params(seed, num_gates, peep_rows=0, scale=0.6):
  """Random float32 params with nonzero biases, so no gate sits at 0.5."""
  rng = np.random.default_rng(seed)
  params = {
      "w_x": rng.normal(0.0, scale, (D, num_gates * H)),
      "w_h": rng.normal(0.0, scale, (H, num_gates * H)),
      "b": rng.normal(0.0, scale, (num_gates * H,)),
  }
  if peep_rows:
    params["w_peep"] = rng.normal(0.0, scale, (peep_rows, H))
  return {k: v.astype(np.float32) for k, v in params.items()}


def _np64(params):
  return {k: np.asarray(v, np.float64) for k, v in params.items()}


def _blocks(w, n):
  return [w[..., k * H:(k + 1) * H] for k in range(n)]


def np_lstm(params, xs, forget_bias, peephole=False, h0=None, c0=None):
  """Gers et al. LSTM (+ Gers & Schmidhuber peepholes), xs (*B, T, D)."""
  p = _np64(params)
  w_xi, w_xf, w_xg, w_xo = _blocks(p["w_x"], 4)
  w_hi, w_hf, w_hg, w_ho = _blocks(p["w_h"], 4)
  b_i, b_f, b_g, b_o = _blocks(p["b"], 4)
  p_i, p_f, p_o = p["w_peep"] if peephole else np.zeros((3, H))
  xs = np.asarray(xs, np.float64)
  batch = xs.shape[:-2]
  h = np.zeros(batch + (H,)) if h0 is None else np.asarray(h0, np.float64)
  c = np.zeros(batch + (H,)) if c0 is None else np.asarray(c0, np.float64)
  ys = []
  for t in range(xs.shape[-2]):
    x = xs[..., t, :]
    i = _sigmoid(x @ w_xi + h @ w_hi + b_i + p_i * c)
    f = _sigmoid(x @ w_xf + h @ w_hf + b_f + p_f * c + forget_bias)
    g = np.tanh(x @ w_xg + h @ w_hg + b_g)
    c = f * c + i * g
    o = _sigmoid(x @ w_xo + h @ w_ho + b_o + p_o * c)
    h = o * np.tanh(c)
    ys.append(h)
  return np.stack(ys, axis=-2), h, c


def np_cifg(params, xs, forget_bias, peephole=False):
  """Greff et al. 2017 CIFG: input gate = 1 - forget gate, xs (*B, T, D)."""
  p = _np64(params)
  w_xf, w_xg, w_xo = _blocks(p["w_x"], 3)
  w_hf, w_hg, w_ho = _blocks(p["w_h"], 3)
  b_f, b_g, b_o = _blocks(p["b"], 3)
  p_f, p_o = p["w_peep"] if peephole else np.zeros((2, H))
  xs = np.asarray(xs, np.float64)
  h = np.zeros(xs.shape[:-2] + (H,))
  c = np.zeros(xs.shape[:-2] + (H,))
  ys = []
  for t in range(xs.shape[-2]):
    x = xs[..., t, :]
    f = _sigmoid(x @ w_xf + h @ w_hf + b_f + p_f * c + forget_bias)
    g = np.tanh(x @ w_xg + h @ w_hg + b_g)
    c = f * c + (1.0 - f) * g
    o = _sigmoid(x @ w_xo + h @ w_ho + b_o + p_o * c)
    h = o * np.tanh(c)
    ys.append(h)
  return np.stack(ys, axis=-2), h, c


def torch_lstm(w_ih, w_hh, b_ih, b_hh, xs):
  """PyTorch nn.LSTM's documented formulas, one unbatched sequence (T, D).

  W_ih (4H, D), W_hh (4H, H), b_ih, b_hh (4H,), rows in the order i, f, g, o;
  matrices act on column vectors as in the docs.
  """
  h = np.zeros(H)
  c = np.zeros(H)
  ys = []
  for x in xs:
    w_ii, w_if, w_ig, w_io = np.split(w_ih, 4, axis=0)
    w_hi, w_hf, w_hg, w_ho = np.split(w_hh, 4, axis=0)
    b_ii, b_if, b_ig, b_io = np.split(b_ih, 4)
    b_hi, b_hf, b_hg, b_ho = np.split(b_hh, 4)
    i = _sigmoid(w_ii @ x + b_ii + w_hi @ h + b_hi)
    f = _sigmoid(w_if @ x + b_if + w_hf @ h + b_hf)
    g = np.tanh(w_ig @ x + b_ig + w_hg @ h + b_hg)
    o = _sigmoid(w_io @ x + b_io + w_ho @ h + b_ho)
    c = f * c + i * g
    h = o * np.tanh(c)
    ys.append(h)
  return np.stack(ys), h, c


def _xs(seed, shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _step_loop(cell, params, xs):
  """Runs cell.step over the time axis of xs (*B, T, D) in Python."""
  carry = cell.initial_carry(params, xs.shape[:-2])
  ys = []
  for t in range(xs.shape[-2]):
    carry, y = cell.step(params, carry, xs[..., t, :])
    ys.append(np.asarray(y))
  return np.stack(ys, axis=-2), carry


def _unroll(cell, params, xs, **flags):
  """Jitted ``unroll`` with ``mask``/``reset`` baked in as constants."""
  return jax.jit(lambda p, x: unroll(cell, p, x, **flags))(params, xs)


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("factory,gates", [(lstm, 4), (tied_lstm, 3)])
@pytest.mark.parametrize("peephole", [False, True])
def test_params_and_carry_layout(factory, gates, peephole):
  cell = _make(factory, peephole=peephole)
  params = cell.init(jax.random.PRNGKey(0), D)
  expected = {"w_x": (D, gates * H), "w_h": (H, gates * H), "b": (gates * H,)}
  if peephole:
    expected["w_peep"] = (gates - 1, H)
  assert {k: v.shape for k, v in params.items()} == expected
  assert all(v.dtype == jnp.float32 for v in params.values())
  assert cell.input_size(params) == D
  assert cell.hidden_size == H and cell.output_size == H
  carry = cell.initial_carry(params, (2, 5))
  assert isinstance(carry, LSTMCarry)
  assert carry.h.shape == carry.c.shape == (2, 5, H)
  unbatched = cell.initial_carry(params, ())
  assert unbatched.h.shape == (H,) and unbatched.c.shape == (H,)
  # forget_bias is added in the step, so the stored bias is exactly bias_init.
  np.testing.assert_array_equal(params["b"], np.zeros(gates * H))


def test_initial_carry_from_eval_shape():
  cell = lstm(H, peephole=True)
  shapes = jax.eval_shape(lambda key: cell.init(key, D), jax.random.PRNGKey(0))
  carry = cell.initial_carry(shapes, (3,))
  assert carry.h.shape == (3, H) and carry.c.dtype == jnp.float32


def test_float64_params_and_carry():
  with jax.enable_x64(True):
    cell = lstm(H, peephole=True, dtype=jnp.float64)
    params = cell.init(jax.random.PRNGKey(1), D)
    assert all(v.dtype == jnp.float64 for v in params.values())
    carry, ys = unroll(cell, params, jnp.ones((2, T, D), jnp.float64))
    assert carry.h.dtype == carry.c.dtype == ys.dtype == jnp.float64


@pytest.mark.parametrize("factory,gates", [(lstm, 4), (tied_lstm, 3)])
def test_blockwise_orthogonal_recurrent_init(factory, gates):
  hidden = H
  w_h = factory(hidden).init(jax.random.PRNGKey(3), D)["w_h"]
  w_h = np.asarray(w_h, np.float64)
  assert w_h.shape == (hidden, gates * hidden)
  blocks = [w_h[:, k * hidden:(k + 1) * hidden] for k in range(gates)]
  for block in blocks:
    np.testing.assert_allclose(block.T @ block, np.eye(hidden), atol=1e-5)
    np.testing.assert_allclose(block @ block.T, np.eye(hidden), atol=1e-5)
  # Independent blocks, not one matrix repeated.
  assert not np.allclose(blocks[0], blocks[1])


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("forget_bias,batch", [(1.0, ()), (0.0, (2,)), (-0.7, (2, 3))])
def test_lstm_matches_numpy(forget_bias, batch):
  cell = _make(lstm, forget_bias=forget_bias)
  params = _random_params(0, 4)
  xs = _xs(1, batch + (T, D))
  ys, carry = _step_loop(cell, params, xs)
  ref_ys, ref_h, ref_c = np_lstm(params, xs, forget_bias)
  np.testing.assert_allclose(ys, ref_ys, atol=1e-5)
  np.testing.assert_allclose(carry.h, ref_h, atol=1e-5)
  np.testing.assert_allclose(carry.c, ref_c, atol=1e-5)
  assert ys.shape == batch + (T, H)


@pytest.mark.parametrize("forget_bias", [1.0, 0.0])
def test_peephole_lstm_matches_numpy(forget_bias):
  cell = _make(lstm, forget_bias=forget_bias, peephole=True)
  params = _random_params(2, 4, peep_rows=3, scale=0.8)
  xs = _xs(3, (2, T, D))
  ys, carry = _step_loop(cell, params, xs)
  ref_ys, ref_h, ref_c = np_lstm(params, xs, forget_bias, peephole=True)
  np.testing.assert_allclose(ys, ref_ys, atol=1e-5)
  np.testing.assert_allclose(carry.c, ref_c, atol=1e-5)
  # The peephole terms matter: without them the reference is far off.
  plain_ys, _, _ = np_lstm(params, xs, forget_bias, peephole=False)
  assert np.max(np.abs(plain_ys - ref_ys)) > 1e-2


def test_peephole_reads_c_prev_for_input_and_forget_and_c_t_for_output():
  # Each peephole row alone, with a nonzero carry, must match the reference
  # that wires it to the documented memory state.
  params = _random_params(4, 4, peep_rows=3, scale=0.8)
  x = _xs(5, (D,))
  h0 = np.random.default_rng(6).normal(size=(H,)).astype(np.float32)
  c0 = (np.random.default_rng(7).normal(size=(H,)) * 2).astype(np.float32)
  cell = _make(lstm, peephole=True)
  for row in range(3):
    only_row = (np.arange(3)[:, None] == row).astype(np.float32)
    p = dict(params, w_peep=params["w_peep"] * only_row)
    carry, y = cell.step(p, LSTMCarry(h0, c0), x)
    ref_ys, _, ref_c = np_lstm(p, x[None], 1.0, peephole=True, h0=h0, c0=c0)
    np.testing.assert_allclose(y, ref_ys[0], atol=1e-5)
    np.testing.assert_allclose(carry.c, ref_c, atol=1e-5)


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("forget_bias", [1.0, 0.0])
def test_tied_lstm_matches_numpy(peephole, forget_bias):
  cell = _make(tied_lstm, forget_bias=forget_bias, peephole=peephole)
  params = _random_params(8, 3, peep_rows=2 if peephole else 0)
  xs = _xs(9, (3, T, D))
  ys, carry = _step_loop(cell, params, xs)
  ref_ys, ref_h, ref_c = np_cifg(params, xs, forget_bias, peephole)
  np.testing.assert_allclose(ys, ref_ys, atol=1e-5)
  np.testing.assert_allclose(carry.h, ref_h, atol=1e-5)
  np.testing.assert_allclose(carry.c, ref_c, atol=1e-5)


def test_lstm_forget_bias_zero_matches_torch_weights():
  # PyTorch-shaped weights, mapped as documented: w_x = W_ih.T, w_h = W_hh.T,
  # b = b_ih + b_hh, forget_bias = 0.
  rng = np.random.default_rng(10)
  bound = 1.0 / np.sqrt(H)  # PyTorch's default init range.
  w_ih = rng.uniform(-bound, bound, (4 * H, D)) * 2
  w_hh = rng.uniform(-bound, bound, (4 * H, H)) * 2
  b_ih = rng.uniform(-bound, bound, (4 * H,)) * 2
  b_hh = rng.uniform(-bound, bound, (4 * H,)) * 2
  params = {"w_x": w_ih.T.astype(np.float32),
            "w_h": w_hh.T.astype(np.float32),
            "b": (b_ih + b_hh).astype(np.float32)}
  xs = _xs(11, (T, D))
  ys, carry = _step_loop(_make(lstm, forget_bias=0.0), params, xs)
  # Round as the cell sees them; b_ih + b_hh is then exact in float64.
  rounded = [a.astype(np.float32).astype(np.float64) for a in (w_ih, w_hh, b_ih, b_hh)]
  ref_ys, ref_h, ref_c = torch_lstm(*rounded, np.asarray(xs, np.float64))
  np.testing.assert_allclose(ys, ref_ys, atol=1e-5)
  np.testing.assert_allclose(carry.h, ref_h, atol=1e-5)
  np.testing.assert_allclose(carry.c, ref_c, atol=1e-5)
  # The default forget_bias=1 is a different cell on the same weights.
  ys_default, _ = _step_loop(_make(lstm), params, xs)
  assert np.max(np.abs(ys_default - ref_ys)) > 1e-3


# ----------------------------------------------------------------------------- forget bias


@pytest.mark.parametrize("factory", [lstm, tied_lstm])
@pytest.mark.parametrize("forget_bias", [0.0, 1.0, -2.0, 3.5])
def test_forget_bias_sets_forget_gate(factory, forget_bias):
  # With zero weights the candidate is tanh(0) = 0, so c_t = f * c_{t-1} and
  # the ratio c_t / c_{t-1} is the forget gate itself.
  cell = _make(factory, forget_bias=forget_bias, kernel_init=initializers.zeros,
               recurrent_init=initializers.zeros)
  params = cell.init(jax.random.PRNGKey(0), D)
  c_prev = np.linspace(-2.0, 3.0, H, dtype=np.float32)
  ones = np.ones(H, np.float32)
  carry, y = cell.step(params, LSTMCarry(ones, c_prev), ones[:D])
  f = 1.0 / (1.0 + np.exp(-forget_bias))
  np.testing.assert_allclose(carry.c / c_prev, np.full(H, f), rtol=1e-6)
  np.testing.assert_allclose(y, 0.5 * np.tanh(f * np.asarray(c_prev)), atol=1e-6)


def test_forget_bias_is_added_to_the_forget_block_only():
  params = _random_params(12, 4)
  shifted = dict(params, b=params["b"].copy())
  shifted["b"][H:2 * H] += 1.5
  xs = _xs(13, (2, T, D))
  ys_a, _ = _step_loop(_make(lstm, forget_bias=1.5), params, xs)
  ys_b, _ = _step_loop(_make(lstm, forget_bias=0.0), shifted, xs)
  np.testing.assert_allclose(ys_a, ys_b, atol=1e-6)


# ----------------------------------------------------------------------------- unroll


@pytest.mark.parametrize("factory,peephole", [(lstm, False), (tied_lstm, True)])
def test_unroll_batched_with_mask_and_reset(factory, peephole):
  cell = _make(factory, peephole=peephole)
  gates = 3 if factory is tied_lstm else 4
  params = _random_params(4, gates, peep_rows=(gates - 1) if peephole else 0)
  ref = np_cifg if factory is tied_lstm else np_lstm
  xs = _xs(14, (3, T, D))
  lengths = [T, 4, 1]
  mask = np.arange(T)[None, :] < np.array(lengths)[:, None]
  carry, ys = _unroll(cell, params, xs, mask=mask)
  assert ys.shape == (3, T, H)
  for row, n in enumerate(lengths):
    ref_ys, ref_h, ref_c = ref(params, xs[row, :n], 1.0, peephole)
    np.testing.assert_allclose(ys[row, :n], ref_ys, atol=1e-5)
    np.testing.assert_array_equal(ys[row, n:], 0.0)
    np.testing.assert_allclose(carry.h[row], ref_h, atol=1e-5)
    np.testing.assert_allclose(carry.c[row], ref_c, atol=1e-5)

  # A packed row: segments [0, 2) and [2, T) restart from the zero carry.
  reset = np.zeros((3, T), bool)
  reset[:, 2] = True
  _, ys = _unroll(cell, params, xs, reset=reset)
  for row in range(3):
    first, _, _ = ref(params, xs[row, :2], 1.0, peephole)
    second, _, _ = ref(params, xs[row, 2:], 1.0, peephole)
    np.testing.assert_allclose(ys[row], np.concatenate([first, second]), atol=1e-5)


def test_unroll_unbatched_with_mask():
  cell = _make(lstm, peephole=True)
  params = _random_params(5, 4, peep_rows=3)
  xs = _xs(15, (T, D))
  # Padding in the middle: the carry is frozen across the gap.
  mask = np.array([True, True, False, False, True, True])
  carry, ys = _unroll(cell, params, xs, mask=mask)
  assert ys.shape == (T, H) and carry.h.shape == (H,)
  ref_ys, ref_h, ref_c = np_lstm(params, xs[mask], 1.0, peephole=True)
  np.testing.assert_allclose(ys[mask], ref_ys, atol=1e-5)
  np.testing.assert_array_equal(ys[~mask], 0.0)
  np.testing.assert_allclose(carry.h, ref_h, atol=1e-5)
  np.testing.assert_allclose(carry.c, ref_c, atol=1e-5)


def test_unroll_jit_and_grad_are_finite():
  cell = _make(lstm, peephole=True)
  params = cell.init(jax.random.PRNGKey(6), D)
  xs = _xs(16, (2, T, D))

  @jax.jit
  def loss(p):
    return jnp.sum(unroll(cell, p, xs)[1] ** 2)

  grads = jax.grad(loss)(params)
  assert set(grads) == set(params)
  for g in grads.values():
    assert np.all(np.isfinite(g)) and np.any(g != 0)


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("factory", [lstm, tied_lstm])
@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_hidden_size_raises(factory, bad):
  with pytest.raises((ValueError, TypeError), match="hidden_size"):
    factory(bad)


@pytest.mark.parametrize("factory", [lstm, tied_lstm])
def test_bad_flags_raise(factory):
  with pytest.raises(TypeError, match="forget_bias"):
    factory(H, forget_bias="1")
  with pytest.raises(ValueError, match="forget_bias"):
    factory(H, forget_bias=float("nan"))
  with pytest.raises(TypeError, match="peephole"):
    factory(H, peephole="yes")
  with pytest.raises((ValueError, TypeError), match="input_size"):
    factory(H).init(jax.random.PRNGKey(0), 0)

# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "lstm": lambda dtype: lstm(5, dtype=dtype),
    "lstm_peephole": lambda dtype: lstm(5, peephole=True, dtype=dtype),
    "tied_lstm": lambda dtype: tied_lstm(5, dtype=dtype),
}
