"""delayed: against Python loops that keep an explicit list of past states."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells import DelayedCarry, delayed, gru, jordan, lstm, rnn
from seqjax.scan import unroll

D, H = 3, 4


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _numpy_rnn_step(p, h, u):
  return np.tanh(u @ p["w_x"] + h @ p["w_h"] + p["b"])


def _numpy_lstm_step(p, carry, u, forget_bias=1.0):
  h, c = carry
  i, f, g, o = np.split(u @ p["w_x"] + h @ p["w_h"] + p["b"], 4, axis=-1)
  c = _sigmoid(f + forget_bias) * c + _sigmoid(i) * np.tanh(g)
  return _sigmoid(o) * np.tanh(c), c


def _numpy_loop(kind, params, xs, delays):
  """Runs a (T, D) sequence with an explicit list ``hs`` of every past output.

  Returns ``(inner carry, past buffer (max d, H) newest first, ys (T, H))``.
  """
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  hidden = p["w_h"].shape[0]
  zeros = np.zeros(hidden)
  carry = zeros if kind == "rnn" else (zeros, zeros)
  hs = []
  for t in range(len(xs)):
    taken = [hs[t - d] if t - d >= 0 else zeros for d in delays]
    u = np.concatenate([np.asarray(xs[t], np.float64)] + taken)
    if kind == "rnn":
      carry = _numpy_rnn_step(p, carry, u)
      hs.append(carry)
    else:
      carry = _numpy_lstm_step(p, carry, u)
      hs.append(carry[0])
  past = np.stack([hs[len(hs) - 1 - j] if len(hs) - 1 - j >= 0 else zeros
                   for j in range(max(delays))])
  ys = np.stack(hs) if hs else np.zeros((0, hidden))
  return carry, past, ys


def _build(kind, delays):
  inner = rnn(H) if kind == "rnn" else lstm(H)
  cell = delayed(inner, delays)
  return cell, cell.init(jax.random.PRNGKey(0), D)


def _check_carry(kind, carry, want_inner, want_past, atol=1e-5):
  assert isinstance(carry, DelayedCarry)
  np.testing.assert_allclose(carry.past, want_past, atol=atol)
  if kind == "rnn":
    np.testing.assert_allclose(carry.inner, want_inner, atol=atol)
  else:
    np.testing.assert_allclose(carry.inner.h, want_inner[0], atol=atol)
    np.testing.assert_allclose(carry.inner.c, want_inner[1], atol=atol)


def _row(tree, b):
  return jax.tree_util.tree_map(lambda a: np.asarray(a)[b], tree)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("delays", [(2, 4, 8), (3, 1)])
def test_equals_loop_over_explicit_past_states(kind, delays):
  cell, params = _build(kind, delays)
  xs = np.random.default_rng(0).normal(size=(2, 11, D)).astype(np.float32)
  carry, ys = unroll(cell, params, xs)
  assert ys.shape == (2, 11, H)
  assert carry.past.shape == (2, max(delays), H)
  for b in range(2):
    want_inner, want_past, want_ys = _numpy_loop(kind, params, xs[b], delays)
    np.testing.assert_allclose(ys[b], want_ys, atol=1e-5)
    _check_carry(kind, _row(carry, b), want_inner, want_past)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_padded_batch_equals_each_sequence_alone(kind):
  delays = (2, 3)
  cell, params = _build(kind, delays)
  xs = np.random.default_rng(1).normal(size=(3, 8, D)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1, 1, 0, 0, 0],   # right padding
                   [0, 0, 0, 1, 1, 1, 1, 1],   # left padding
                   [1, 0, 1, 1, 0, 0, 1, 1]],  # holes: skipped steps are not time steps
                  bool)
  carry, ys = unroll(cell, params, np.where(mask[..., None], xs, np.nan).astype(np.float32),
                     mask=mask)
  for b in range(3):
    want_inner, want_past, want_ys = _numpy_loop(kind, params, xs[b][mask[b]], delays)
    np.testing.assert_allclose(ys[b][mask[b]], want_ys, atol=1e-5)
    np.testing.assert_array_equal(ys[b][~mask[b]], 0.0)
    _check_carry(kind, _row(carry, b), want_inner, want_past)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_reset_restarts_the_buffer(kind):
  delays = (1, 2, 4)
  cell, params = _build(kind, delays)
  xs = np.random.default_rng(2).normal(size=(2, 9, D)).astype(np.float32)
  reset = np.zeros((2, 9), bool)
  reset[0, 5] = True        # two documents: the second must not see the first's outputs
  reset[1, [0, 2, 3]] = True
  carry, ys = unroll(cell, params, xs, reset=reset)
  for b in range(2):
    bounds = [0] + [t for t in np.flatnonzero(reset[b]) if t > 0] + [9]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
      want_inner, want_past, want_ys = _numpy_loop(kind, params, xs[b, lo:hi], delays)
      np.testing.assert_allclose(ys[b, lo:hi], want_ys, atol=1e-5)
    _check_carry(kind, _row(carry, b), want_inner, want_past)  # the last piece's


def _jax_loop_loss(inner, delays, params, xs, pieces):
  """The loss of ``_unroll_loss`` by a Python loop over explicit lists of outputs.

  Runs the wrapped cell ``inner`` itself on ``[x_t ; h_{t-d} ...]``.
  ``pieces``: per row, the lists of time indices run as separate sequences
  (masked steps left out, a reset starting a new list).
  """
  total = 0.0
  for b, row_pieces in enumerate(pieces):
    carry = None
    for steps in row_pieces:
      state = inner.initial_carry(params, ())
      hs = []
      for i, t in enumerate(steps):
        taken = [hs[i - d] if i - d >= 0 else jnp.zeros(H) for d in delays]
        state, y = inner.step(params, state, jnp.concatenate([xs[b, t]] + taken))
        hs.append(y)
        total = total + jnp.sum(jnp.sin(y))
      past = jnp.stack([hs[len(hs) - 1 - j] if len(hs) - 1 - j >= 0 else jnp.zeros(H)
                        for j in range(max(delays))])
      carry = (state, past)
    total = total + sum(jnp.sum(leaf ** 2) for leaf in jax.tree_util.tree_leaves(carry))
  return total


def _unroll_loss(cell, params, xs, mask, reset):
  carry, ys = unroll(cell, params, xs, mask=mask, reset=reset, implementation="scan")
  return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(leaf ** 2) for leaf in jax.tree_util.tree_leaves(carry))


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_gradients_are_finite_and_equal_the_loops(kind):
  delays = (2, 3)
  inner = rnn(H) if kind == "rnn" else lstm(H)
  cell = delayed(inner, delays)
  params = cell.init(jax.random.PRNGKey(3), D)
  xs = np.random.default_rng(3).normal(size=(2, 7, D)).astype(np.float32)
  mask = np.array([[1, 1, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]], bool)
  reset = np.zeros((2, 7), bool)
  reset[1, 4] = True
  pieces = [[[0, 1, 2, 4, 5]], [[0, 1, 2, 3], [4, 5, 6]]]
  got = jax.jit(jax.value_and_grad(functools.partial(_unroll_loss, cell), argnums=(0, 1)))(
      params, xs, mask, reset)
  want = jax.value_and_grad(functools.partial(_jax_loop_loss, inner, delays, pieces=pieces),
                            argnums=(0, 1))(params, xs)
  for g in jax.tree_util.tree_leaves(got):
    assert np.all(np.isfinite(np.asarray(g)))
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4,
                                              atol=1e-5), got, want)
  # The gradient reaches every real input, and no padded one.
  d_xs = np.asarray(got[1][1])
  assert np.all(np.abs(d_xs[mask]).sum(-1) > 0)
  np.testing.assert_array_equal(d_xs[~mask], 0.0)


def test_a_delay_is_a_one_hop_path_through_time():
  # With W_h = 0 the only path from x_s to y_t is through h_{t-4}, h_{t-8}, ...:
  # y_t depends on x_s exactly when t - s is a multiple of 4.
  cell = delayed(rnn(H), (4,))
  params = dict(cell.init(jax.random.PRNGKey(4), D))
  params["w_h"] = jnp.zeros_like(params["w_h"])
  xs = np.random.default_rng(4).normal(size=(10, D)).astype(np.float32)
  jac = jax.jacrev(lambda x: unroll(cell, params, x)[1])(xs)  # (T, H, T, D)
  reach = np.abs(np.asarray(jac)).sum(axis=(1, 3)) > 0
  t, s = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
  np.testing.assert_array_equal(reach, (t >= s) & ((t - s) % 4 == 0))


def test_listing_delay_one_reparametrises_the_elman_recurrence():
  cell = delayed(rnn(H), (1,))
  params = cell.init(jax.random.PRNGKey(5), D)
  plain = rnn(H)
  merged = {"w_x": params["w_x"][:D], "w_h": params["w_h"] + params["w_x"][D:],
            "b": params["b"]}
  xs = np.random.default_rng(5).normal(size=(2, 6, D)).astype(np.float32)
  np.testing.assert_allclose(unroll(cell, params, xs)[1], unroll(plain, merged, xs)[1],
                             atol=1e-5)


def test_buffer_holds_the_last_outputs_newest_first():
  cell, params = _build("rnn", (2, 4, 8))
  xs = np.random.default_rng(6).normal(size=(2, 10, D)).astype(np.float32)
  carry, ys = unroll(cell, params, xs)
  np.testing.assert_allclose(carry.past, ys[:, ::-1][:, :8], atol=1e-6)
  carry, ys = unroll(cell, params, xs[:, :3])
  np.testing.assert_allclose(carry.past[:, :3], ys[:, ::-1], atol=1e-6)
  np.testing.assert_array_equal(carry.past[:, 3:], 0.0)


@pytest.mark.parametrize("inner", [jordan(H, 2), gru(H)], ids=["jordan", "gru"])
def test_params_and_sizes(inner):
  cell = delayed(inner, (2, 5))
  params = cell.init(jax.random.PRNGKey(0), D)
  out = inner.output_size
  assert cell.input_size(params) == D
  assert inner.input_size(params) == D + 2 * out
  assert (cell.hidden_size, cell.output_size) == (inner.hidden_size, out)
  carry = cell.initial_carry(params, (3,))
  assert carry.past.shape == (3, 5, out)
  carry, ys = unroll(cell, params, np.ones((3, 6, D), np.float32))
  assert ys.shape == (3, 6, out) and np.all(np.isfinite(ys))
  assert cell.name.startswith("delayed(") and "delays=(2, 5)" in cell.name


@pytest.mark.parametrize("delays,match", [
    ((), "delays must hold at least one delay"),
    ((0,), "delays must be positive, got 0"),
    ((2, -1), "delays must be positive, got -1"),
    ((2, 4, 2), "delays must be distinct"),
])
def test_bad_delays_raise_value_error(delays, match):
  with pytest.raises(ValueError, match=match):
    delayed(rnn(H), delays)


@pytest.mark.parametrize("delays", [3, (2.0, 4), (True,), "24"])
def test_non_integer_delays_raise_type_error(delays):
  with pytest.raises(TypeError, match="delays must"):
    delayed(rnn(H), delays)


def test_cell_must_be_a_cell():
  with pytest.raises(TypeError, match="cell must be a seqjax.Cell"):
    delayed(rnn, (2,))


# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "delayed_rnn": lambda dtype: delayed(rnn(5, dtype=dtype), delays=(1, 3)),
    "delayed_lstm": lambda dtype: delayed(lstm(5, dtype=dtype), delays=(2, 4)),
}
