"""Tests for seqjax.cells.hyper_lstm (Ha, Dai & Le 2016).

Numbers are checked against a float64 numpy loop written gate by gate from
the paper's equations, and the cell with its scaling vectors forced to ones
against ``seqjax.cells.lstm`` on the same main weights, bit for bit.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.hyper_lstm import HyperLSTMCarry, hyper_lstm
from seqjax.cells.lstm import lstm
from seqjax.scan import unroll

D, H, NH, NZ, T = 3, 4, 3, 2, 5

# Compilation dominates these tests' run time: each comparison runs through
# one jitted ``unroll`` with the cell as a static argument, and cells are built
# once per configuration so equal configurations share the compiled program.
_UNROLL = jax.jit(unroll, static_argnums=0, static_argnames=("implementation",))


@functools.lru_cache(maxsize=None)
def _cell(**kwargs):
  return hyper_lstm(H, hyper_size=NH, embed_size=NZ, **kwargs)


def _key(seed):
  return jax.random.key(seed, impl="rbg")


def _np(tree):
  return jax.tree_util.tree_map(np.asarray, tree)


def _random_params(cell, seed, scale=0.5):
  """Random float32 params of ``cell``'s layout: every hyper weight nonzero."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda key: cell.init(key, D), _key(0))
  return jax.tree_util.tree_map(
      lambda s: rng.normal(0.0, scale, s.shape).astype(np.float32), shapes)


def _xs(seed, shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ----------------------------------------------------------------------------- reference


def _sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def _blocks(a, n):
  """The 4 gate blocks i, f, g, o of width ``n`` of ``a``'s last axis."""
  return [a[..., k * n:(k + 1) * n] for k in range(4)]


def _ln(v, gamma, beta):
  mean = v.mean(-1, keepdims=True)
  var = ((v - mean) ** 2).mean(-1, keepdims=True)
  return gamma * (v - mean) / np.sqrt(var + 1e-3) + beta


def _np_lstm(pre, c, forget_bias, ln, n):
  """LSTM update from the four gate pre-activations (Ba et al.'s LN-LSTM if ``ln``)."""
  if ln is not None:
    gammas, betas = _blocks(ln["gates_scale"], n), _blocks(ln["gates_bias"], n)
    pre = [_ln(a, gamma, beta) for a, gamma, beta in zip(pre, gammas, betas)]
  a_i, a_f, a_g, a_o = pre
  c = _sigmoid(a_f + forget_bias) * c + _sigmoid(a_i) * np.tanh(a_g)
  c_out = c if ln is None else _ln(c, ln["c_scale"], ln["c_bias"])
  return _sigmoid(a_o) * np.tanh(c_out), c


def np_hyper_lstm(params, xs, forget_bias=1.0):
  """The HyperLSTM of Ha et al. 2016 (section 3.2, memory-efficient), xs (*B, T, D)."""
  p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
  hyper, embed, project = p["hyper"], p["embed"], p["project"]
  xs = np.asarray(xs, np.float64)
  batch = xs.shape[:-2]
  h, c = np.zeros(batch + (H,)), np.zeros(batch + (H,))
  hh, hc = np.zeros(batch + (NH,)), np.zeros(batch + (NH,))
  ys = []
  for t in range(xs.shape[-2]):
    x = xs[..., t, :]
    # The hyper-LSTM reads [x_t; h_{t-1}] and its own state.
    x_hat = np.concatenate([x, h], axis=-1)
    hyper_pre = [x_hat @ w_x + hh @ w_h + b for w_x, w_h, b in
                 zip(_blocks(hyper["w_x"], NH), _blocks(hyper["w_h"], NH),
                     _blocks(hyper["b"], NH))]
    hh, hc = _np_lstm(hyper_pre, hc, forget_bias, hyper.get("ln"), NH)
    pre = []
    for k in range(4):
      z_x = hh @ _blocks(embed["w_x"], NZ)[k] + _blocks(embed["b_x"], NZ)[k]
      z_h = hh @ _blocks(embed["w_h"], NZ)[k] + _blocks(embed["b_h"], NZ)[k]
      z_b = hh @ _blocks(embed["w_b"], NZ)[k]
      d_x = z_x @ project["x"][k]
      d_h = z_h @ project["h"][k]
      b = z_b @ project["b"][k] + _blocks(p["b"], H)[k]
      pre.append(d_x * (x @ _blocks(p["w_x"], H)[k]) + d_h * (h @ _blocks(p["w_h"], H)[k]) + b)
    h, c = _np_lstm(pre, c, forget_bias, p.get("ln"), H)
    ys.append(h)
  return np.stack(ys, axis=-2), HyperLSTMCarry(h, c, hh, hc)


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("layer_norm", [False, True])
def test_params_and_carry_layout(layer_norm):
  cell = _cell(layer_norm=layer_norm)
  params = cell.init(_key(0), D)
  shapes = jax.tree_util.tree_map(lambda a: a.shape, params)
  expected = {
      "w_x": (D, 4 * H), "w_h": (H, 4 * H), "b": (4 * H,),
      "hyper": {"w_x": (D + H, 4 * NH), "w_h": (NH, 4 * NH), "b": (4 * NH,)},
      "embed": {"w_x": (NH, 4 * NZ), "b_x": (4 * NZ,), "w_h": (NH, 4 * NZ),
                "b_h": (4 * NZ,), "w_b": (NH, 4 * NZ)},
      "project": {"x": (4, NZ, H), "h": (4, NZ, H), "b": (4, NZ, H)},
  }
  if layer_norm:
    def ln(n):
      return {"gates_scale": (4 * n,), "gates_bias": (4 * n,), "c_scale": (n,), "c_bias": (n,)}
    expected["ln"] = ln(H)
    expected["hyper"]["ln"] = ln(NH)
  assert shapes == expected
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(params))
  assert cell.input_size(params) == D
  assert cell.hidden_size == cell.output_size == H
  carry = cell.initial_carry(params, (2, 3))
  assert isinstance(carry, HyperLSTMCarry)
  assert carry.h.shape == carry.c.shape == (2, 3, H)
  assert carry.hyper_h.shape == carry.hyper_c.shape == (2, 3, NH)
  assert cell.initial_carry(params, ()).hyper_c.shape == (NH,)


def test_init_starts_every_scaling_vector_at_scale_init():
  # The reference implementation's scheme: embeddings start at ones (zero
  # weights, unit bias), the z -> d projections at scale_init / Nz.
  params = _np(hyper_lstm(H, hyper_size=NH, embed_size=3, scale_init=0.1).init(_key(1), D))
  for part in ("x", "h"):
    np.testing.assert_array_equal(params["embed"][f"w_{part}"], 0.0)
    np.testing.assert_array_equal(params["embed"][f"b_{part}"], 1.0)
    d = params["embed"][f"b_{part}"].reshape(4, 3)[:, :, None] * params["project"][part]
    np.testing.assert_allclose(d.sum(axis=1), 0.1, rtol=1e-6)
  np.testing.assert_array_equal(params["project"]["b"], 0.0)
  assert 0.0 < np.std(params["embed"]["w_b"]) < 0.05


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("layer_norm,batch", [(False, (2,)), (True, ()), (True, (2,))])
def test_unroll_matches_numpy_from_the_paper(layer_norm, batch):
  cell = _cell(layer_norm=layer_norm)
  params = _random_params(cell, seed=2)
  xs = _xs(3, batch + (T, D))
  carry, ys = _np(_UNROLL(cell, params, xs))
  want_ys, want_carry = np_hyper_lstm(params, xs)
  np.testing.assert_allclose(ys, want_ys, atol=1e-5)
  for got, want in zip(carry, want_carry):
    np.testing.assert_allclose(got, want, atol=1e-5)
  # The hyper network matters: with its scaling vectors at ones (z = 1 and
  # d = z W with W's rows summing to one) and the bias at b_0, the same main
  # weights give other numbers.
  plain = jax.tree_util.tree_map(np.copy, params)
  plain["embed"]["w_x"][:] = plain["embed"]["w_h"][:] = 0.0
  plain["embed"]["b_x"][:] = plain["embed"]["b_h"][:] = 1.0
  plain["project"]["x"][:] = plain["project"]["h"][:] = 1.0 / NZ
  plain["project"]["b"][:] = 0.0
  plain_ys, _ = np_hyper_lstm(plain, xs)
  assert np.max(np.abs(plain_ys - want_ys)) > 1e-2


def test_forget_bias_is_used_by_both_lstms():
  cell = _cell(forget_bias=-0.7)
  params = _random_params(cell, seed=4)
  xs = _xs(5, (2, T, D))
  carry, ys = _np(_UNROLL(cell, params, xs))
  want_ys, want_carry = np_hyper_lstm(params, xs, forget_bias=-0.7)
  np.testing.assert_allclose(ys, want_ys, atol=1e-5)
  np.testing.assert_allclose(carry.hyper_c, want_carry.hyper_c, atol=1e-5)


def _forced_to_plain_lstm(params):
  """``params`` with every scaling vector exactly one and the bias exactly b_0.

  The embedding weights are zero and their biases one, so z = 1; each gate's
  z -> d projection has a first row of ones and zeros below, so d = 1 with no
  rounding for any Nz; the bias projection is zero. The hyper-LSTM keeps its
  random weights and still runs.
  """
  forced = jax.tree_util.tree_map(np.copy, params)
  forced["embed"]["w_x"][:] = forced["embed"]["w_h"][:] = 0.0
  forced["embed"]["b_x"][:] = forced["embed"]["b_h"][:] = 1.0
  for part in ("x", "h"):
    forced["project"][part][:] = 0.0
    forced["project"][part][:, 0, :] = 1.0
  forced["project"]["b"][:] = 0.0
  return forced


@pytest.mark.parametrize("forget_bias", [1.0, 0.0])
def test_scaling_vectors_at_one_give_plain_lstm_exactly(forget_bias):
  """The issue's test: d = 1 and b = b_0 make the main LSTM seqjax.cells.lstm,
  bit for bit, on the same main weights, whatever the hyper-LSTM does."""
  cell = _cell(forget_bias=forget_bias)
  params = _forced_to_plain_lstm(_random_params(cell, seed=6))
  assert np.any(params["hyper"]["w_x"] != 0) and np.any(params["embed"]["w_b"] != 0)
  main = {k: params[k] for k in ("w_x", "w_h", "b")}
  xs = _xs(7, (2, T, D))
  carry, ys = _np(_UNROLL(cell, params, xs, implementation="scan"))
  plain = lstm(H, forget_bias=forget_bias)
  want_carry, want_ys = _np(_UNROLL(plain, main, xs, implementation="scan"))
  np.testing.assert_array_equal(ys, want_ys)
  np.testing.assert_array_equal(carry.h, want_carry.h)
  np.testing.assert_array_equal(carry.c, want_carry.c)
  # The hyper-LSTM ran (its state moved) without touching the main LSTM.
  assert np.any(carry.hyper_h != 0)


def test_new_cell_is_plain_lstm_on_its_main_weights():
  # With scale_init=1 and Nz=2, d = 1/2 + 1/2 = 1 exactly at init.
  cell = _cell()
  params = _np(cell.init(_key(8), D))
  xs = _xs(9, (2, T, D))
  _, ys = _np(_UNROLL(cell, params, xs, implementation="scan"))
  main = {k: params[k] for k in ("w_x", "w_h", "b")}
  _, want_ys = _np(_UNROLL(lstm(H), main, xs, implementation="scan"))
  np.testing.assert_array_equal(ys, want_ys)


def test_init_passes_gradient_to_the_embeddings():
  # The reason the z -> d projections do not start at zero: the embedding
  # weights must get gradient at init, or the hyper network could not start
  # learning through them.
  cell = _cell()
  params = cell.init(_key(10), D)
  xs = _xs(11, (2, T, D))

  @jax.jit
  def grads(p):
    return jax.grad(lambda q: jnp.sum(jnp.sin(unroll(cell, q, xs)[1])))(p)

  g = _np(grads(params))
  for name in ("w_x", "w_h"):
    assert np.all(np.isfinite(g["embed"][name])) and np.any(g["embed"][name] != 0), name
  for name in ("x", "h"):
    assert np.any(g["project"][name] != 0), name


def test_float64():
  with jax.enable_x64(True):
    cell = hyper_lstm(H, hyper_size=NH, embed_size=NZ, layer_norm=True, dtype=jnp.float64)
    params = cell.init(_key(12), D)
    assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(params))
    carry, ys = jax.jit(lambda p, x: unroll(cell, p, x))(params, np.ones((2, T, D)))
    assert ys.dtype == jnp.float64
    assert all(a.dtype == jnp.float64 for a in carry)


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("name", ["hidden_size", "hyper_size", "embed_size"])
@pytest.mark.parametrize("bad", [0, -2])
def test_sizes_below_one_raise_naming_the_argument(name, bad):
  sizes = {"hidden_size": H, "hyper_size": NH, "embed_size": NZ}
  sizes[name] = bad
  with pytest.raises(ValueError, match=f"^{name} must be a positive integer") as error:
    hyper_lstm(sizes.pop("hidden_size"), **sizes)
  assert "\n" not in str(error.value)


def test_bad_flags_raise():
  with pytest.raises(TypeError, match="hyper_size"):
    hyper_lstm(H, hyper_size=2.5)
  with pytest.raises(TypeError, match="layer_norm"):
    hyper_lstm(H, layer_norm="yes")
  with pytest.raises(ValueError, match="forget_bias"):
    hyper_lstm(H, forget_bias=float("nan"))
  with pytest.raises(ValueError, match="scale_init"):
    hyper_lstm(H, scale_init=float("inf"))
  with pytest.raises(ValueError, match="input_size"):
    hyper_lstm(H).init(_key(0), 0)


# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype. The layer-normalised one has 4 hyper units, not 3:
# layer norm over 3 units per gate is curved enough that the suite's central
# differences (step 1e-4) miss its gradient by 1e-4 relative; the miss shrinks
# as step**2, so the gradient is right, the difference quotient is not.
PROTOCOL_CELLS = {
    "hyper_lstm": lambda dtype: hyper_lstm(5, hyper_size=3, embed_size=2, dtype=dtype),
    "hyper_lstm_layer_norm": lambda dtype: hyper_lstm(5, hyper_size=4, embed_size=2,
                                                      layer_norm=True, dtype=dtype),
}


def test_scales_from_the_traced_hyper_states_rebuild_every_step():
  """hyper_lstm_scales on trace's hyper_h gives the step's own scaling: the main
  LSTM update with those scales reproduces every traced h and c."""
  from seqjax.cells.hyper_lstm import hyper_lstm_scales
  from seqjax.scan import trace
  cell = hyper_lstm(4, hyper_size=3, embed_size=2)
  params = cell.init(jax.random.key(3), 2)
  params = jax.tree_util.tree_map(
      lambda v: jnp.asarray(np.random.default_rng(4).normal(scale=0.5, size=v.shape),
                            jnp.float32), params)
  xs = jnp.asarray(np.random.default_rng(5).normal(size=(2, 5, 2)), jnp.float32)
  _, ys, carries = trace(cell, params, xs)
  d_x, d_h, bias = (np.asarray(a, np.float64) for a in hyper_lstm_scales(params, carries.hyper_h))
  assert d_x.shape == (2, 5, 16) and np.std(d_x) > 0.1   # they do vary
  h = np.zeros((2, 4))
  c = np.zeros((2, 4))
  w_x, w_h = np.asarray(params["w_x"], np.float64), np.asarray(params["w_h"], np.float64)
  for t in range(5):
    pre = d_x[:, t] * (np.asarray(xs[:, t]) @ w_x) + d_h[:, t] * (h @ w_h) + bias[:, t]
    i, f, g, o = np.split(pre, 4, axis=-1)
    c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    np.testing.assert_allclose(carries.h[:, t], h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ys[:, t], h, rtol=1e-4, atol=1e-5)
