"""Tests for seqjax.flax: cells as linen and nnx modules.

References: ``seqjax.unroll`` on the same params (an adapter must not change
a number), and a Python loop of ``cell.step`` over
each row alone, with mask and reset handled by cutting the row into its real
steps and segments, so that padding and packing are checked against the
plainest route to the same numbers.
"""

import doctest
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import seqjax.flax as sf
from seqjax.scan import unroll
from seqjax.types import FROZEN, Cell, trainable_mask

D = 3
T = 6


def _make(name):
  if name == "rnn":
    from seqjax.cells.rnn import rnn
    return rnn(5)
  if name == "jordan":
    from seqjax.cells.rnn import jordan
    return jordan(5, 4)
  if name == "lstm":
    from seqjax.cells.lstm import lstm
    return lstm(5)
  if name == "gru":
    from seqjax.cells.gru import gru
    return gru(5)
  if name == "esn":
    from seqjax.cells.esn import esn
    return esn(6, spectral_radius=0.9, connectivity=0.5, leak_rate=0.5)
  raise KeyError(name)


NAMES = ["rnn", "jordan", "lstm", "gru", "esn"]


def _random_like(abstract, seed=0):
  """Random values shaped like an abstract pytree (no init to compile)."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda s: jnp.asarray(0.5 * rng.standard_normal(s.shape), s.dtype), abstract)


@functools.lru_cache(maxsize=None)
def _setup(name):
  """A cell and random params in its own layout, shared by the tests.

  Every adapter must reproduce ``cell.step`` on whatever params it holds, so
  the values need not come from ``cell.init``; skipping it keeps the file fast
  (real inits are exercised by the training tests and the docstring examples).
  """
  cell = _make(name)
  abstract = jax.eval_shape(lambda key: cell.init(key, D), jax.random.PRNGKey(0))
  return cell, _random_like(abstract, seed=len(name))


def _linen_variables(name, *path):
  """Variables for a linen module whose params sit at ``path`` (names)."""
  tree = _setup(name)[1]
  for key in reversed(path):
    tree = {key: tree}
  return {"params": tree}


def _xs(batch_shape=(3,), seed=1):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.standard_normal(batch_shape + (T, D)), jnp.float32)


def _close(a, b, tol=1e-6):
  jax.tree_util.tree_map(
      lambda u, v: np.testing.assert_allclose(
          np.asarray(u), np.asarray(v), rtol=tol, atol=tol), a, b)


def _row(tree, i):
  return jax.tree_util.tree_map(lambda a: a[i], tree)


def _loop_row(cell, params, xs, mask=None, reset=None, reverse=False):
  """Reference for one unbatched row (T, D): step by step in a Python loop.

  The row is cut into segments at ``reset``; each segment's real (``mask``)
  steps run alone from the initial carry, right to left if ``reverse``.
  Returns the final carry (of the last segment processed) and ys (T, O) with
  zeros on padded steps.
  """
  n = xs.shape[0]
  mask = np.ones(n, bool) if mask is None else np.asarray(mask)
  reset = np.zeros(n, bool) if reset is None else np.asarray(reset)
  starts = [0] + [t for t in range(1, n) if reset[t]]
  segments = [range(a, b) for a, b in zip(starts, starts[1:] + [n])]
  if reverse:
    segments = [range(s.stop - 1, s.start - 1, -1) for s in reversed(segments)]
  ys = np.zeros((n, cell.output_size), np.float32)
  carry = None
  for segment in segments:
    carry = cell.initial_carry(params, ())
    for t in segment:
      if mask[t]:
        carry, y = cell.step(params, carry, xs[t])
        ys[t] = np.asarray(y)
  return carry, ys


def _lengths_mask(lengths):
  return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


# ---------------------------------------------------------------------------
# Linen
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_linen_cell_creates_the_cells_own_params(name):
  cell, params = _setup(name)
  xs = _xs()
  for layer, path in [(nn.RNN(sf.LinenCell(cell)), ("cell", "cell")),
                      (sf.LinenRNN(cell), ("cell",))]:
    abstract = jax.eval_shape(layer.init, jax.random.PRNGKey(0), xs)
    want = jax.tree_util.tree_map(lambda a: (a.shape, a.dtype),
                                  _linen_variables(name, *path))
    assert jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), abstract) == want


@pytest.mark.parametrize("name", NAMES)
def test_linen_rnn_equals_unroll(name):
  cell, params = _setup(name)
  xs = _xs()
  variables = _linen_variables(name, "cell", "cell")
  layer = nn.RNN(sf.LinenCell(cell), return_carry=True)
  carry, ys = jax.jit(layer.apply)(variables, xs)
  assert ys.shape == (3, T, cell.output_size)
  want_carry, want_ys = unroll(cell, params, xs)
  _close(ys, want_ys)
  _close(carry, want_carry)
  for i in range(3):
    ref_carry, ref_ys = _loop_row(cell, params, xs[i])
    _close(ys[i], ref_ys, 1e-5)
    _close(_row(carry, i), ref_carry, 1e-5)


@pytest.mark.parametrize("name", ["rnn", "lstm", "esn"])
def test_linen_seq_lengths_equal_seqjax_mask(name):
  cell, params = _setup(name)
  xs = _xs()
  lengths = jnp.array([T, 3, 1])
  mask = _lengths_mask(lengths)
  real = mask[..., None]
  layer = nn.RNN(sf.LinenCell(cell), return_carry=True)
  apply = jax.jit(layer.apply, static_argnames=("reverse", "keep_order"))
  variables = _linen_variables(name, "cell", "cell")
  for reverse in (False, True):
    carry, ys = apply(variables, xs, seq_lengths=lengths, reverse=reverse,
                      keep_order=True)
    want_carry, want_ys = unroll(cell, params, xs, mask=mask, reverse=reverse)
    # Flax does not zero padded outputs; only the real steps are comparable.
    _close(jnp.where(real, ys, 0), want_ys)
    _close(carry, want_carry)
    for i in range(3):
      ref_carry, ref_ys = _loop_row(cell, params, xs[i], mask[i], reverse=reverse)
      _close(jnp.where(real[i], ys[i], 0), ref_ys, 1e-5)
      _close(_row(carry, i), ref_carry, 1e-5)


@pytest.mark.parametrize("batch_shape", [(), (2, 3)])
def test_linen_unbatched_and_multi_batch(batch_shape):
  cell, params = _setup("lstm")
  xs = _xs(batch_shape)
  layer = nn.RNN(sf.LinenCell(cell), return_carry=True)
  carry, ys = layer.apply(_linen_variables("lstm", "cell", "cell"), xs)
  assert ys.shape == batch_shape + (T, 5)
  assert carry.h.shape == batch_shape + (5,)
  want_carry, want_ys = unroll(cell, params, xs)
  _close(ys, want_ys)
  _close(carry, want_carry)


def test_linen_bidirectional():
  cell, params = _setup("lstm")
  backward_params = _random_like(params, seed=7)
  xs = _xs()
  lengths = jnp.array([T, 4, 2])
  mask = _lengths_mask(lengths)
  layer = nn.Bidirectional(nn.RNN(sf.LinenCell(cell)), nn.RNN(sf.LinenCell(cell)))
  abstract = jax.eval_shape(layer.init, jax.random.PRNGKey(0), xs)["params"]
  assert set(abstract) == {"forward_rnn", "backward_rnn"}
  variables = {"params": {"forward_rnn": {"cell": {"cell": params}},
                          "backward_rnn": {"cell": {"cell": backward_params}}}}
  (carry_f, carry_b), ys = layer.apply(variables, xs, seq_lengths=lengths,
                                       return_carry=True)
  want_cf, want_f = unroll(cell, params, xs, mask=mask)
  want_cb, want_b = unroll(cell, backward_params, xs, mask=mask, reverse=True)
  assert ys.shape == (3, T, 2 * cell.output_size)
  _close(jnp.where(mask[..., None], ys, 0), jnp.concatenate([want_f, want_b], -1))
  _close(carry_f, want_cf)
  _close(carry_b, want_cb)


def test_linen_initialize_carry_shapes_and_dtype():
  with jax.enable_x64(True):
    from seqjax.cells.lstm import lstm
    cell = lstm(4, dtype=jnp.float64)
    carry = sf.LinenCell(cell).initialize_carry(jax.random.PRNGKey(0), (2, 3, D))
    assert carry.h.shape == carry.c.shape == (2, 3, 4)
    assert carry.h.dtype == jnp.float64
    assert float(jnp.abs(carry.c).sum()) == 0.0
  assert sf.LinenCell(_make("rnn")).initialize_carry(None, (D,)).shape == (5,)
  assert sf.LinenCell(_make("rnn")).num_feature_axes == 1


@pytest.mark.parametrize("name", ["gru", "esn"])
def test_linen_rnn_module_mask_reset_reverse(name):
  cell, params = _setup(name)
  xs = _xs()
  mask = np.array([[1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1], [0, 1, 1, 1, 1, 0]], bool)
  reset = np.array([[0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 1]], bool)
  layer = sf.LinenRNN(cell)
  variables = _linen_variables(name, "cell")
  apply = jax.jit(layer.apply, static_argnames=("reverse", "return_carry"))
  for reverse in (False, True):
    carry, ys = apply(variables, xs, mask=mask, reset=reset, reverse=reverse,
                      return_carry=True)
    want_carry, want_ys = unroll(cell, params, xs, mask=mask, reset=reset,
                                 reverse=reverse)
    _close(ys, want_ys)
    _close(carry, want_carry)
    for i in range(3):
      _, ref_ys = _loop_row(cell, params, xs[i], mask[i], reset[i], reverse)
      _close(ys[i], ref_ys, 1e-5)
  # An explicit initial carry is used.
  carry0 = jax.tree_util.tree_map(jnp.ones_like,
                                  layer.initialize_carry(None, (3, D)))
  ys = layer.apply(variables, xs, carry=carry0)
  _close(ys, unroll(cell, params, xs, carry0)[1])
  assert not np.allclose(ys, layer.apply(variables, xs))


def test_linen_rnn_module_uses_fast_path_and_time_major():
  from seqjax.cells.linear import min_gru
  cell = min_gru(5)
  assert cell.fast is not None
  xs = _xs()
  params = _random_like(
      jax.eval_shape(lambda key: cell.init(key, D), jax.random.PRNGKey(0)))
  layer = sf.LinenRNN(cell, time_major=True, implementation="fast")
  ys = layer.apply({"params": {"cell": params}}, jnp.moveaxis(xs, 1, 0))
  ys = jnp.moveaxis(ys, 0, 1)
  for i in range(3):
    _close(ys[i], _loop_row(cell, params, xs[i])[1], 1e-5)


def _running_mean_task(n=64, length=10, seed=0):
  xs = np.random.default_rng(seed).standard_normal((n, length, 1))
  ys = np.cumsum(xs, axis=1) / np.arange(1, length + 1)[:, None]
  return jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32)


class _LinenModel(nn.Module):
  cell: Cell

  @nn.compact
  def __call__(self, xs):
    # Built in this compact method, the cell is a child of the model, so its
    # params sit at ["rnn_cell"]["cell"] (as for any Flax cell in nn.RNN).
    hs = nn.RNN(sf.LinenCell(self.cell, name="rnn_cell"))(xs)
    return nn.Dense(1, name="readout")(hs)


@pytest.mark.usefixtures("optax_promotion")  # calls optax directly
def test_linen_model_trains():
  from seqjax.cells.rnn import rnn
  xs, ys = _running_mean_task()
  model = _LinenModel(rnn(16))
  params = model.init(jax.random.PRNGKey(0), xs)["params"]
  tx = optax.adam(1e-2)

  def loss_fn(params):
    return jnp.mean((model.apply({"params": params}, xs) - ys) ** 2)

  @jax.jit
  def train(params):
    def step(state, _):
      params, opt_state = state
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss
    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None,
                                       length=150)
    return params, losses

  params, losses = train(params)
  first, last = float(losses[0]), float(loss_fn(params))
  assert np.isfinite(last)
  assert last < first / 2, (first, last)


def test_linen_frozen_reservoir_survives_and_stays_fixed():
  cell, esn_params = _setup("esn")
  xs = _xs()
  model = _LinenModel(cell)
  abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0), xs)["params"]
  assert set(abstract) == {"rnn_cell", "readout"}
  assert set(abstract["rnn_cell"]["cell"]) == {FROZEN}
  params = _random_like(abstract)
  params["rnn_cell"]["cell"] = esn_params
  mask = trainable_mask(params)
  assert not any(jax.tree_util.tree_leaves(mask["rnn_cell"]))
  assert all(jax.tree_util.tree_leaves(mask["readout"]))
  labels = jax.tree_util.tree_map(lambda t: "train" if t else "freeze", mask)
  tx = optax.multi_transform({"train": optax.sgd(0.1),
                              "freeze": optax.set_to_zero()}, labels)
  grads = jax.grad(lambda p: jnp.sum(model.apply({"params": p}, xs) ** 2))(params)
  assert float(jnp.abs(grads["rnn_cell"]["cell"][FROZEN]["w_rec"]).sum()) > 0
  updates, _ = tx.update(grads, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  _close(new["rnn_cell"], params["rnn_cell"], 0)
  assert not np.allclose(new["readout"]["kernel"], params["readout"]["kernel"])


def test_linen_errors():
  with pytest.raises(TypeError, match="seqjax.Cell"):
    nn.RNN(sf.LinenCell("lstm")).init(jax.random.PRNGKey(0), _xs())
  cell = sf.LinenCell(_make("rnn"))
  with pytest.raises(ValueError, match="input_shape"):
    cell.initialize_carry(None, ())
  with pytest.raises(ValueError, match="input_shape"):
    cell.initialize_carry(None, (2, 0))
  with pytest.raises(ValueError, match="xs"):
    sf.LinenRNN(_make("rnn")).init(jax.random.PRNGKey(0), jnp.ones((D,)))


# ---------------------------------------------------------------------------
# NNX
# ---------------------------------------------------------------------------


def _nnx_layer(name):
  """An ``NNXCell`` holding ``_setup(name)``'s params, built without an init."""
  cell, params = _setup(name)
  abstract = nnx.eval_shape(lambda: sf.NNXCell(cell, D, rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(abstract)
  flat = dict(nnx.to_flat_state(state))
  want = {("params",) + tuple(p.key for p in path): leaf
          for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
  assert set(flat) == set(want)
  for path, variable in flat.items():
    assert isinstance(variable, nnx.Param)
    assert (variable.shape, variable.dtype) == (want[path].shape, want[path].dtype)
    variable.set_value(want[path])
  return nnx.merge(graphdef, state)


def test_nnx_cell_builds_params_with_cell_init():
  from seqjax.cells.rnn import rnn
  cell = rnn(8)  # the docstring examples' shapes: eager init compiles once
  layer = sf.NNXCell(cell, D, rngs=nnx.Rngs(params=0))
  params = layer.cell_params
  assert jax.tree_util.tree_map(jnp.shape, params) == {
      "w_x": (D, 8), "w_h": (8, 8), "b": (8,)}
  # seqjax.init.orthogonal gives an orthogonal recurrent matrix.
  _close(params["w_h"] @ params["w_h"].T, jnp.eye(8), 1e-5)
  # Different seeds, different params.
  other = sf.NNXCell(cell, D, rngs=nnx.Rngs(params=1)).cell_params
  assert not np.allclose(other["w_x"], params["w_x"])


@pytest.mark.parametrize("name", ["jordan", "lstm", "esn"])
def test_nnx_cell_step_unroll_and_nnx_rnn(name):
  cell, params = _setup(name)
  layer = _nnx_layer(name)
  xs = _xs()
  _close(layer.cell_params, params, 0)
  # One step.
  carry0 = layer.initialize_carry((3, D))
  _close(carry0, cell.initial_carry(params, (3,)), 0)
  _close(layer(carry0, xs[:, 0]), cell.step(params, carry0, xs[:, 0]))
  # Whole sequence, through seqjax and through nnx.RNN (with seq_lengths).
  lengths = jnp.array([T, 3, 1])
  mask = _lengths_mask(lengths)
  want_carry, want_ys = unroll(cell, params, xs, mask=mask)
  carry, ys = layer.unroll(xs, mask=mask)
  _close(ys, want_ys)
  _close(carry, want_carry)
  carry, ys = nnx.RNN(layer)(xs, seq_lengths=lengths, return_carry=True)
  _close(jnp.where(mask[..., None], ys, 0), want_ys)
  _close(carry, want_carry)
  for i in range(3):
    ref_carry, ref_ys = _loop_row(cell, params, xs[i], mask[i])
    _close(jnp.where(mask[i, :, None], ys[i], 0), ref_ys, 1e-5)
    _close(_row(carry, i), ref_carry, 1e-5)


def test_nnx_unroll_reset_reverse_under_jit():
  cell, params = _setup("lstm")
  layer = _nnx_layer("lstm")
  xs = _xs()
  reset = np.zeros((3, T), bool)
  reset[1, 2] = reset[2, 4] = True
  _, ys = nnx.jit(lambda m, x, r: m.unroll(x, reset=r, reverse=True))(layer, xs, reset)
  for i in range(3):
    _close(ys[i], _loop_row(cell, params, xs[i], reset=reset[i], reverse=True)[1],
           1e-5)


def test_nnx_split_merge_round_trip():
  cell, params = _setup("gru")
  layer = _nnx_layer("gru")
  xs = _xs()
  _, want = layer.unroll(xs)
  graphdef, state = nnx.split(layer)
  assert {path for path, _ in nnx.to_flat_state(state)} == {
      ("params", k) for k in ("w_x", "w_h", "b", "b_hn")}
  _close(nnx.merge(graphdef, state).unroll(xs)[1], want, 0)
  # The state *is* the cell's params: editing it changes the outputs accordingly.
  merged = nnx.merge(graphdef, jax.tree_util.tree_map(lambda a: a / 2, state))
  half = jax.tree_util.tree_map(lambda a: a / 2, params)
  _close(merged.unroll(xs)[1], unroll(cell, half, xs)[1])
  assert not np.allclose(merged.unroll(xs)[1], want)


class _NNXModel(nnx.Module):

  def __init__(self, cell, input_size, *, rngs):
    self.rnn = sf.NNXCell(cell, input_size, rngs=rngs)
    self.out = nnx.Linear(cell.output_size, 1, rngs=rngs)

  def __call__(self, xs):
    return self.out(self.rnn.unroll(xs)[1])


@pytest.mark.usefixtures("optax_promotion")  # calls optax directly
def test_nnx_model_trains():
  from seqjax.cells.rnn import rnn
  xs, ys = _running_mean_task(seed=2)
  model = _NNXModel(rnn(16), 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  def loss_fn(model):
    return jnp.mean((model(xs) - ys) ** 2)

  @nnx.jit
  def train_step(model, optimizer):
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  first = float(loss_fn(model))
  for _ in range(150):
    train_step(model, optimizer)
  last = float(loss_fn(model))
  assert np.isfinite(last)
  assert last < first / 2, (first, last)


def test_nnx_trainable_filter_leaves_frozen_reservoir_alone():
  cell, esn_params = _setup("esn")
  xs = _xs()
  model = nnx.eval_shape(lambda: _NNXModel(cell, D, rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(model)
  model = nnx.merge(graphdef, _random_like(state))
  model.rnn = _nnx_layer("esn")
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=sf.TRAINABLE)
  assert {p for p, _ in nnx.to_flat_state(nnx.state(model, sf.TRAINABLE))} == {
      ("out", "kernel"), ("out", "bias")}

  @nnx.jit
  def train_step(model, optimizer):
    loss_fn = lambda m: jnp.sum(m(xs) ** 2)
    grads = nnx.grad(loss_fn, argnums=nnx.DiffState(0, sf.TRAINABLE))(model)
    optimizer.update(model, grads)

  kernel = model.out.kernel[...]
  train_step(model, optimizer)
  _close(model.rnn.cell_params, esn_params, 0)
  assert not np.allclose(model.out.kernel[...], kernel)
  # Without the filter the reservoir would move: it does get a gradient.
  grads = nnx.grad(lambda m: jnp.sum(m(xs) ** 2))(model)
  assert float(jnp.abs(grads["rnn"]["params"][FROZEN]["w_rec"][...]).sum()) > 0


def test_nnx_errors():
  cell = _make("rnn")
  with pytest.raises(TypeError, match="seqjax.Cell"):
    sf.NNXCell("rnn", D, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="input_size"):
    sf.NNXCell(cell, 0, rngs=nnx.Rngs(0))
  layer = _nnx_layer("rnn")
  with pytest.raises(ValueError, match="input_size=3"):
    layer.initialize_carry((2, D + 1))
  assert layer.num_feature_axes == 1


def test_docstring_examples_run():
  result = doctest.testmod(sf, optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0
  assert result.failed == 0
