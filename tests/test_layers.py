"""Tests for seqjax.layers: stacked and bidirectional networks over any cell.

References are built by hand, independently of ``seqjax.layers``: from
``seqjax.unroll`` composed manually, from Python loops of ``cell.step`` on each
unpadded sequence (flipped for the backward direction), from plain numpy loops
of the textbook equations, or by reading dropout masks off an identity layer.
Everything is jitted because eager ``lax.scan`` recompiles on every call.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.gru import gru
from seqjax.cells.lstm import lstm
from seqjax.cells.rnn import jordan, rnn
from seqjax.layers import Layer, bidirectional, recurrent, stacked
from seqjax.scan import unroll
from seqjax.types import LSTMCarry

D, T = 3, 6
ATOL = 1e-5


def _params(layer, seed, input_size=D):
  """Random params of the structure ``layer.init`` builds.

  Drawn with numpy on the shapes from ``jax.eval_shape``: running the
  initialisers eagerly would compile every random op once per shape, which
  would dominate this file's run time. N(0, 0.5) keeps the networks in their
  nonlinear regime, biases included.
  """
  shapes = jax.eval_shape(lambda key: layer.init(key, input_size), jax.random.PRNGKey(0))
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda s: rng.normal(scale=0.5, size=s.shape).astype(s.dtype), shapes)


def _key(seed):
  # Dropout keys use the "rbg" generator: with the default threefry every
  # random draw inside a jitted function costs about a second of compilation
  # on CPU. test_jitted_apply_does_not_retrace covers legacy uint32 keys.
  return jax.random.key(seed, impl="rbg")


def _x(shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _lengths_mask(lengths, steps):
  return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def _jit(layer):
  return jax.jit(layer.apply, static_argnames=("training", "time_major", "recurrent_dropout"))


def _identity_layer() -> Layer:
  """A layer that returns its input: dropout masks can be read off directly."""

  def apply(params, xs, carry=None, *, mask=None, reset=None, key=None,
            training=False, time_major=False):
    return (), jnp.asarray(xs)

  return Layer(init=lambda key, input_size: {},
               initial_carry=lambda params, batch_shape=(): (),
               apply=apply, output_size=D, name="identity")


def _dropped(layer, xs, **kw):
  """Outputs of a stack of identity layers in training mode."""
  params = _params(layer, 0, xs.shape[-1])
  return np.asarray(_jit(layer)(params, xs, key=_key(10), training=True, **kw)[1])


def _np_rnn(params, xs):
  """Textbook Elman RNN over (T, D), h_0 = 0, in float64."""
  w_x, w_h, b = (np.asarray(params[k], np.float64) for k in ("w_x", "w_h", "b"))
  h = np.zeros(w_h.shape[0])
  ys = []
  for x in xs:
    h = np.tanh(x @ w_x + h @ w_h + b)
    ys.append(h)
  return np.stack(ys)


_JITTED_STEPS = {}


def _loop(cell, params, xs, drop=lambda carry: carry):
  """Python loop of ``cell.step`` over one unbatched (T, D) sequence.

  ``drop`` maps the (numpy) carry to the carry fed to each step.
  """
  step = _JITTED_STEPS.setdefault(cell.step, jax.jit(cell.step))
  carry = jax.tree_util.tree_map(np.asarray, cell.initial_carry(params, ()))
  ys = []
  for x in np.asarray(xs):
    carry, y = step(params, drop(carry), x)
    carry = jax.tree_util.tree_map(np.asarray, carry)
    ys.append(np.asarray(y))
  return carry, np.stack(ys)


def _bidir_ref(fwd_cell, bwd_cell, params, x):
  """Unpadded (T, D) sequence: [forward pass, flip(forward pass of flip(x))]."""
  carry_f, ys_f = _loop(fwd_cell, params["forward"], x)
  carry_b, ys_b = _loop(bwd_cell, params["backward"], np.asarray(x)[::-1])
  return (carry_f, carry_b), np.concatenate([ys_f, ys_b[::-1]], axis=-1)


def _assert_tree_close(got, want, index=...):
  """Leaves of ``got`` (at batch ``index``) equal those of ``want``."""
  assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
  for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(np.asarray(g)[index], w, atol=ATOL)


# ----------------------------------------------------------------- stacked


def test_stacked_rnn_equals_two_unrolls_and_numpy():
  cell = rnn(4)
  layer = stacked(cell, num_layers=2)
  xs = _x((2, T, D))
  params = layer.init(_key(0), D)
  assert set(params) == {"layer_0", "layer_1"}
  assert params["layer_1"]["w_x"].shape == (4, 4)
  assert not np.allclose(params["layer_0"]["w_h"], params["layer_1"]["w_h"])  # own params
  carry, ys = _jit(layer)(params, xs)

  @jax.jit
  def manual(params, xs):
    c0, y0 = unroll(cell, params["layer_0"], xs)
    c1, y1 = unroll(cell, params["layer_1"], y0)
    return (c0, c1), y1

  (c0, c1), y1 = manual(params, xs)
  np.testing.assert_allclose(ys, y1, atol=ATOL)
  assert isinstance(carry, tuple) and len(carry) == 2
  np.testing.assert_allclose(carry[0], c0, atol=ATOL)
  np.testing.assert_allclose(carry[1], c1, atol=ATOL)
  for b in range(2):
    ref = _np_rnn(params["layer_1"], _np_rnn(params["layer_0"], xs[b].astype(np.float64)))
    np.testing.assert_allclose(ys[b], ref, atol=ATOL)
  assert layer.output_size == 4 and ys.shape == (2, T, 4)


@pytest.mark.parametrize("skip_input,skip_output", [(True, False), (False, True), (True, True)])
def test_skip_connections_equal_manual_concatenation(skip_input, skip_output):
  # A list of different cells, one given as a Layer; jordan's O differs from H.
  cells = [rnn(4), jordan(5, 2), rnn(3)]
  layer = stacked([cells[0], recurrent(cells[1]), cells[2]],
                  skip_input=skip_input, skip_output=skip_output)
  params = _params(layer, 2)
  xs = _x((2, T, D), seed=2)
  _, ys = _jit(layer)(params, xs)

  @jax.jit
  def manual(params, xs):
    inputs, outs = xs, []
    for i, cell in enumerate(cells):
      _, y = unroll(cell, params[f"layer_{i}"], inputs)
      outs.append(y)
      inputs = jnp.concatenate([xs, y], axis=-1) if skip_input else y
    return jnp.concatenate(outs, axis=-1) if skip_output else outs[-1]

  expected = manual(params, xs)
  np.testing.assert_allclose(ys, expected, atol=ATOL)
  assert layer.output_size == expected.shape[-1] == (9 if skip_output else 3)
  assert params["layer_1"]["w_x"].shape == (D * skip_input + 4, 5)
  assert params["layer_2"]["w_x"].shape == (D * skip_input + 2, 3)


def test_any_number_of_batch_axes_unbatched_and_time_major():
  # a bidirectional Layer (flipped internally) under a skip-connected stack
  layer = stacked([bidirectional(recurrent(gru(4))), gru(4)], skip_input=True,
                  skip_output=True)
  apply = _jit(layer)
  params = _params(layer, 3)
  xs = _x((2, 3, T, D), seed=3)
  mask = np.ones((2, 3, T), bool)
  mask[0, 1, 4:] = False
  reset = np.zeros((2, 3, T), bool)
  reset[1, 0, 2] = True
  carry, ys = apply(params, xs, mask=mask, reset=reset)
  assert ys.shape == (2, 3, T, 12) and layer.output_size == 12
  assert carry[0][1].shape == carry[1].shape == (2, 3, 4)
  np.testing.assert_array_equal(ys[0, 1, 4:], 0.0)
  for index in [(1, 2), (0, 1), (1, 0)]:
    carry_one, single = apply(params, xs[index], mask=mask[index], reset=reset[index])
    assert single.shape == (T, 12)
    np.testing.assert_allclose(ys[index], single, atol=ATOL)
    _assert_tree_close(carry, carry_one, index)
  _, tm = apply(params, np.moveaxis(xs, 2, 0), mask=np.moveaxis(mask, 2, 0),
                reset=np.moveaxis(reset, 2, 0), time_major=True)
  np.testing.assert_allclose(np.moveaxis(tm, 0, 2), ys, atol=ATOL)
  # the padded row equals its unpadded prefix run alone
  _, prefix = apply(params, xs[0, 1, :4], mask=mask[0, 1, :4], reset=reset[0, 1, :4])
  np.testing.assert_allclose(ys[0, 1, :4], prefix, atol=ATOL)


def test_stacked_continues_from_a_given_carry():
  layer = stacked(lstm(3), num_layers=2)
  apply = _jit(layer)
  params = _params(layer, 4)
  xs = _x((2, 2 * T, D), seed=4)
  first, _ = apply(params, xs[:, :T])
  carry, ys = apply(params, xs[:, T:], first)
  full_carry, full = apply(params, xs)
  np.testing.assert_allclose(ys, full[:, T:], atol=ATOL)
  assert isinstance(carry, tuple) and isinstance(carry[1], LSTMCarry)
  _assert_tree_close(carry, jax.tree_util.tree_map(np.asarray, full_carry))


# ----------------------------------------------------------- bidirectional


@pytest.mark.parametrize("make", [lambda: (gru(3),) * 2, lambda: (lstm(3),) * 2,
                                  lambda: (jordan(4, 2), rnn(3))],
                         ids=["gru", "lstm", "jordan+rnn"])
def test_bidirectional_padded_equals_each_sequence_alone(make):
  fwd_cell, bwd_cell = make()
  layer = (bidirectional(fwd_cell) if fwd_cell is bwd_cell
           else bidirectional(fwd_cell, bwd_cell))
  lengths = [6, 3, 1, 5]
  xs = _x((4, T, D), seed=5)
  mask = _lengths_mask(lengths, T)
  xs_padded = np.where(mask[..., None], xs, 7.0).astype(np.float32)  # junk in the padding
  params = _params(layer, 5)
  (carry_f, carry_b), ys = _jit(layer)(params, xs_padded, mask=mask)
  out = fwd_cell.output_size + bwd_cell.output_size
  assert ys.shape == (4, T, out) and layer.output_size == out
  for b, n in enumerate(lengths):
    (ref_cf, ref_cb), ref = _bidir_ref(fwd_cell, bwd_cell, params, xs[b, :n])
    np.testing.assert_allclose(ys[b, :n], ref, atol=ATOL)
    np.testing.assert_array_equal(ys[b, n:], 0.0)
    _assert_tree_close(carry_f, ref_cf, b)
    _assert_tree_close(carry_b, ref_cb, b)


def test_bidirectional_sum_equals_flipped_unrolls_and_layer_arguments():
  cell = rnn(4)
  layer = bidirectional(cell, merge="sum")
  params = _params(layer, 6)
  lengths = [6, 2]
  xs = _x((2, T, D), seed=6)
  mask = _lengths_mask(lengths, T)
  _, ys = _jit(layer)(params, xs, mask=mask)
  assert layer.output_size == 4
  for b, n in enumerate(lengths):
    _, forward = unroll(cell, params["forward"], xs[b, :n])
    _, backward = unroll(cell, params["backward"], xs[b, :n][::-1])
    np.testing.assert_allclose(ys[b, :n], forward + backward[::-1], atol=ATOL)
    np.testing.assert_array_equal(ys[b, n:], 0.0)
  # Layers as arguments: the backward layer is run on the reversed sequence.
  layer2 = bidirectional(recurrent(cell), recurrent(cell), merge="sum")
  _, ys2 = _jit(layer2)(params, xs, mask=mask)
  np.testing.assert_allclose(ys2, ys, atol=ATOL)


@pytest.mark.parametrize("as_layer", [False, True], ids=["cell", "layer"])
def test_bidirectional_reset_equals_separate_segments(as_layer):
  cell = gru(3)
  layer = bidirectional(recurrent(cell) if as_layer else cell)
  params = _params(layer, 7)
  xs = _x((T, D), seed=7)
  reset = np.zeros(T, bool)
  reset[[0, 2, 5]] = True  # segments [0, 2), [2, 5), [5, 6)
  _, ys = _jit(layer)(params, xs, reset=reset)  # unbatched
  for start, stop in [(0, 2), (2, 5), (5, 6)]:
    _, ref = _bidir_ref(cell, cell, params, xs[start:stop])
    np.testing.assert_allclose(ys[start:stop], ref, atol=ATOL)


def test_stacked_bidirectional_lstm_equals_manual():
  cell = lstm(3)
  layer = stacked(bidirectional(cell), num_layers=2)
  apply = _jit(layer)
  params = _params(layer, 8)
  assert params["layer_1"]["forward"]["w_x"].shape == (6, 12)
  lengths = [6, 4, 2]
  xs = _x((3, T, D), seed=8)
  mask = _lengths_mask(lengths, T)
  carry, ys = apply(params, xs, mask=mask)
  assert ys.shape == (3, T, 6) and layer.output_size == 6
  assert isinstance(carry[1][1], LSTMCarry)
  for b, n in enumerate(lengths):
    _, y0 = _bidir_ref(cell, cell, params["layer_0"], xs[b, :n])
    (_, carry_b), y1 = _bidir_ref(cell, cell, params["layer_1"], y0)
    np.testing.assert_allclose(ys[b, :n], y1, atol=ATOL)
    np.testing.assert_array_equal(ys[b, n:], 0.0)
    _assert_tree_close(carry[1][1], carry_b, b)
  _, tm = apply(params, np.swapaxes(xs, 0, 1), mask=mask.T, time_major=True)
  np.testing.assert_allclose(np.swapaxes(tm, 0, 1), ys, atol=ATOL)


# ----------------------------------------------------------------- dropout


def test_no_dropout_when_not_training():
  cell = lstm(4)
  layer = stacked(cell, num_layers=2, dropout=0.5, input_dropout=0.3,
                  recurrent_dropout=0.4, variational=True)
  apply = _jit(layer)
  params = _params(layer, 9)
  xs = _x((2, T, D), seed=9)

  @jax.jit
  def no_dropout_stack(params, xs):
    _, y0 = unroll(cell, params["layer_0"], xs)
    return unroll(cell, params["layer_1"], y0)[1]

  expected = no_dropout_stack(params, xs)
  for seed in (1, 2):  # a key given with training=False is ignored
    _, ys = apply(params, xs, key=_key(seed))
    np.testing.assert_allclose(ys, expected, atol=ATOL)
  # training=False needs no key (traced only: nothing to compile)
  assert jax.eval_shape(lambda: layer.apply(params, xs)[1]).shape == (2, T, 4)
  _, trained = apply(params, xs, key=_key(1), training=True)
  assert not np.allclose(trained, expected, atol=1e-3)


@pytest.mark.parametrize("kind", ["input_dropout", "dropout"])
def test_variational_masks_are_shared_over_time(kind):
  p = 0.5
  ident = _identity_layer()
  layers = [ident] if kind == "input_dropout" else [ident, ident]
  xs = np.ones((16, T, D), np.float32)
  for variational in (True, False):
    ys = _dropped(stacked(layers, variational=variational, **{kind: p}), xs)
    assert set(np.unique(ys)) == {0.0, 1 / (1 - p)}
    same_over_time = np.all(ys == ys[:, :1], axis=(1, 2))
    if variational:
      assert same_over_time.all()
      assert not np.all(ys == ys[:1])  # one mask per sequence
    else:
      assert not same_over_time.any()
  # time-major: the shared axis is the first one
  tm = _dropped(stacked(layers, variational=True, **{kind: p}), np.swapaxes(xs, 0, 1),
                time_major=True)
  assert np.all(tm == tm[:1]) and not np.all(tm == tm[:, :1])


def test_dropout_spares_final_and_skip_outputs_and_input_dropout_feeds_skips():
  ident = _identity_layer()
  xs = _x((4, T, D), seed=11)
  np.testing.assert_array_equal(_dropped(stacked([ident], dropout=0.5), xs), xs)
  ys = _dropped(stacked([ident, ident], dropout=0.5, skip_output=True), xs)
  np.testing.assert_array_equal(ys[..., :D], xs)  # y_0 undropped in the output
  dropped = ys[..., D:]
  assert (dropped == 0).any()
  np.testing.assert_allclose(dropped[dropped != 0], 2 * xs[dropped != 0], rtol=1e-6)
  # with skip_input, layer 1 sees [dropped x, dropped y_0]: the same dropped x
  ident2 = ident._replace(output_size=2 * D)
  ys = _dropped(stacked([ident, ident2], input_dropout=0.5, skip_input=True), xs)
  np.testing.assert_array_equal(ys[..., :D], ys[..., D:])
  assert (ys == 0).any()


@pytest.mark.parametrize("p", [0.2, 0.6])
def test_keep_fraction_and_inverted_scaling(p):
  ys = _dropped(stacked([_identity_layer()], input_dropout=p), np.ones((64, 50, D), np.float32))
  kept = ys != 0
  assert abs(kept.mean() - (1 - p)) < 0.02
  np.testing.assert_allclose(ys[kept], 1 / (1 - p), rtol=1e-6)
  assert abs(ys.mean() - 1.0) < 0.05


def _candidate_masks(h, p):
  return [np.array(m, np.float32) / (1 - p) for m in itertools.product([0.0, 1.0], repeat=h)]


def test_recurrent_dropout_lstm_masks_h_only_once_per_sequence():
  # With H=2 and p=0.5 there are four possible masks; each sequence's output
  # must equal the loop for one of them, applied to h only (never to c).
  h, p = 2, 0.5
  cell = lstm(h)
  layer = stacked(cell, recurrent_dropout=p)
  apply = _jit(layer)
  params = _params(layer, 13)
  xs = _x((8, T, D), seed=13)
  carry, ys = apply(params, xs, key=_key(3), training=True)
  lp = params["layer_0"]
  chosen = []
  for b in range(xs.shape[0]):
    h_only = [_loop(cell, lp, xs[b], lambda c, m=m: LSTMCarry(c.h * m, c.c))
              for m in _candidate_masks(h, p)]
    h_and_c = [_loop(cell, lp, xs[b], lambda c, m=m: LSTMCarry(c.h * m, c.c * m))
               for m in _candidate_masks(h, p)]
    errors = [np.abs(ref - ys[b]).max() for _, ref in h_only]
    best = int(np.argmin(errors))
    assert errors[best] < ATOL, errors
    assert min(np.abs(ref - ys[b]).max() for _, ref in h_and_c) > 1e-3
    _assert_tree_close(carry[0], h_only[best][0], b)  # the undropped final carry
    chosen.append(best)
  assert len(set(chosen)) > 1  # one mask per sequence, not one per batch


def test_recurrent_dropout_array_carry_with_padding():
  h, p = 2, 0.5
  cell = rnn(h)
  layer = recurrent(cell)
  params = _params(layer, 14)
  lengths = [6, 3, 4, 5, 2, 6]
  xs = _x((6, T, D), seed=14)
  mask = _lengths_mask(lengths, T)
  _, ys = _jit(layer)(params, xs, mask=mask, key=_key(4), training=True,
                      recurrent_dropout=p)
  for b, n in enumerate(lengths):
    errors = [np.abs(_loop(cell, params, xs[b, :n], lambda c, m=m: c * m)[1] - ys[b, :n]).max()
              for m in _candidate_masks(h, p)]
    assert min(errors) < ATOL, errors
    np.testing.assert_array_equal(ys[b, n:], 0.0)


def test_recurrent_dropout_reaches_cells_inside_bidirectional():
  cell = gru(3)
  layer = stacked(bidirectional(cell), num_layers=2, recurrent_dropout=0.5)
  apply = _jit(layer)
  params = _params(layer, 15)
  xs = _x((2, T, D), seed=15)
  _, a = apply(params, xs, key=_key(0), training=True)
  _, b = apply(params, xs, key=_key(0), training=True)
  np.testing.assert_array_equal(a, b)  # the key fixes the masks
  # an explicit rate overrides the stack's; 0 gives the undropped network
  _, ref = apply(params, xs, key=_key(0), training=True, recurrent_dropout=0.0)
  for row in range(2):
    _, y0 = _bidir_ref(cell, cell, params["layer_0"], xs[row])
    np.testing.assert_allclose(ref[row], _bidir_ref(cell, cell, params["layer_1"], y0)[1],
                               atol=ATOL)
  assert not np.allclose(a[..., :3], ref[..., :3], atol=1e-4)  # forward direction
  assert not np.allclose(a[..., 3:], ref[..., 3:], atol=1e-4)  # backward direction


# ------------------------------------------------------------ bad arguments


def test_bad_arguments_raise_clear_errors():
  cell = rnn(3)
  with pytest.raises(ValueError, match="num_layers"):
    stacked(cell, num_layers=0)
  with pytest.raises(TypeError, match="num_layers"):
    stacked(cell, num_layers=2.0)
  with pytest.raises(ValueError, match="num_layers"):
    stacked([cell, cell], num_layers=3)
  with pytest.raises(ValueError, match="layers"):
    stacked([])
  with pytest.raises(TypeError, match=r"layers\[1\]"):
    stacked([cell, "lstm"])
  with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\).*1.0"):
    stacked(cell, dropout=1.0)
  with pytest.raises(ValueError, match="input_dropout"):
    stacked(cell, input_dropout=-0.1)
  with pytest.raises(ValueError, match="recurrent_dropout"):
    stacked(cell, recurrent_dropout=1.5)
  with pytest.raises(ValueError, match="recurrent_dropout"):
    stacked([_identity_layer()], recurrent_dropout=0.1)  # its apply cannot take it
  with pytest.raises(ValueError, match="merge.*avg"):
    bidirectional(cell, merge="avg")
  with pytest.raises(ValueError, match="merge='sum'"):
    bidirectional(rnn(3), rnn(4), merge="sum")
  with pytest.raises(TypeError, match="forward"):
    bidirectional(lambda x: x)
  with pytest.raises(TypeError, match="cell"):
    recurrent(stacked(cell))
  with pytest.raises(ValueError, match="unroll"):
    recurrent(cell, unroll=0)
  layer = stacked(cell, num_layers=2, dropout=0.2)
  params = _params(layer, 0)
  xs = _x((2, T, D))
  with pytest.raises(ValueError, match="key.*dropout=0.2"):
    layer.apply(params, xs, training=True)
  with pytest.raises(ValueError, match="key.*recurrent_dropout"):
    recurrent(cell).apply(params["layer_0"], xs, training=True, recurrent_dropout=0.3)
  with pytest.raises(ValueError, match="carry"):
    layer.apply(params, xs, carry=jnp.zeros((2, 3)))


# --------------------------------------------------- gradients and tracing


def test_gradients_flow_through_two_layer_bidirectional_stack():
  layer = stacked(bidirectional(lstm(3)), num_layers=2, skip_input=True,
                  dropout=0.2, recurrent_dropout=0.2)
  params = _params(layer, 16)
  xs = _x((2, T, D), seed=16)
  mask = _lengths_mask([6, 4], T)

  @jax.jit
  def grads(params, xs):
    def loss(params, xs):
      _, ys = layer.apply(params, xs, mask=mask, key=_key(2), training=True)
      return jnp.sum(ys ** 2)
    return jax.grad(loss, argnums=(0, 1))(params, xs)

  grad_params, grad_x = grads(params, xs)
  for path, g in jax.tree_util.tree_leaves_with_path(grad_params):
    assert np.all(np.isfinite(g)), path
    assert np.abs(g).sum() > 0, path
  assert np.abs(grad_x[:, :4]).min() > 0
  np.testing.assert_array_equal(grad_x[1, 4:], 0.0)  # padding does not matter


def test_jitted_apply_does_not_retrace():
  layer = stacked(bidirectional(gru(3)), num_layers=2, dropout=0.1, variational=True)
  params = _params(layer, 17)
  traces = []

  @jax.jit
  def run(params, xs, key):
    traces.append(None)
    return layer.apply(params, xs, key=key, training=True)[1]

  a = run(params, _x((2, T, D), seed=1), jax.random.PRNGKey(0))
  b = run(params, _x((2, T, D), seed=2), jax.random.PRNGKey(1))
  assert len(traces) == 1
  assert a.shape == b.shape == (2, T, 6)
  assert not np.allclose(a, b)


def test_init_and_initial_carry_work_on_shapes_only():
  layer = stacked(bidirectional(lstm(3)), num_layers=2)
  shapes = jax.eval_shape(lambda key: layer.init(key, D), jax.random.PRNGKey(0))
  carry = layer.initial_carry(shapes, (2, 5))
  assert carry[1][0].h.shape == (2, 5, 3)
  assert carry[0][1].c.dtype == jnp.float32
  assert layer.initial_carry(shapes, ())[1][1].c.shape == (3,)


# ------------------------------------------- bidirectional: one way to reverse


def test_bidirectional_refuses_a_direction_that_already_runs_backwards():
  cell = rnn(3)
  reversed_layer = recurrent(cell, reverse=True)
  assert reversed_layer.reverse and not recurrent(cell).reverse
  assert stacked([recurrent(cell), reversed_layer]).reverse
  assert not bidirectional(cell).reverse
  for forward, backward, argument in ((cell, reversed_layer, "backward"),
                                      (reversed_layer, cell, "forward"),
                                      (cell, stacked(reversed_layer, num_layers=2), "backward")):
    with pytest.raises(ValueError, match=f"{argument} must run left to right") as error:
      bidirectional(forward, backward)
    assert "\n" not in str(error.value)
  with pytest.raises(ValueError, match="forward must run left to right"):
    bidirectional(reversed_layer)  # the default backward is the same layer


@pytest.mark.parametrize("implementation", ["scan", "fast"])
def test_bidirectional_of_recurrent_layers_chooses_both_implementations(implementation):
  cell = lstm(3)
  layer = bidirectional(recurrent(cell, implementation=implementation))
  params = _params(layer, 21)
  xs = _x((2, T, D), seed=21)
  mask = _lengths_mask([6, 4], T)
  carry, ys = layer.apply(params, xs, mask=mask)
  carry_f, ys_f = unroll(cell, params["forward"], xs, mask=mask, implementation="scan")
  carry_b, ys_b = unroll(cell, params["backward"], xs, mask=mask, reverse=True,
                         implementation="scan")
  _assert_tree_close(carry, (carry_f, carry_b))
  np.testing.assert_allclose(ys, np.concatenate([ys_f, ys_b], axis=-1), atol=ATOL)
  # The backward layer runs with its own implementation: a cell without a fast
  # path fails there with "fast", whichever implementation the forward one has.
  peephole = lstm(3, peephole=True)
  mixed = bidirectional(recurrent(cell, implementation=implementation),
                        recurrent(peephole, implementation="fast"))
  with pytest.raises(ValueError, match="no fast path"):
    mixed.apply(_params(mixed, 22), xs)
