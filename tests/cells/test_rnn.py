"""Elman and Jordan cells against plain-numpy implementations of their equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import init as initializers
from seqjax.cells.rnn import jordan, rnn
from seqjax.scan import unroll


def _numpy_elman(p, xs, act):
  w_x, w_h, b = (np.asarray(p[k], np.float64) for k in ("w_x", "w_h", "b"))
  h = np.zeros(xs.shape[:-2] + (w_h.shape[0],))
  ys = []
  for t in range(xs.shape[-2]):
    h = act(xs[..., t, :] @ w_x + h @ w_h + b)
    ys.append(h)
  return h, np.stack(ys, axis=-2)


@pytest.mark.parametrize("activation,numpy_act", [
    ("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0.0))])
def test_elman_matches_numpy(activation, numpy_act):
  cell = rnn(6, activation=activation)
  params = cell.init(jax.random.PRNGKey(0), 4)
  xs = np.random.default_rng(0).normal(size=(3, 9, 4)).astype(np.float32)
  carry, ys = unroll(cell, params, xs)
  want_h, want_ys = _numpy_elman(params, xs.astype(np.float64), numpy_act)
  np.testing.assert_allclose(ys, want_ys, atol=1e-5)
  np.testing.assert_allclose(carry, want_h, atol=1e-5)


def test_irnn_identity_init_is_an_integrator():
  # With W_h = I, W_x = 1, zero bias and relu, h_t is the running sum of
  # positive inputs (Le et al. 2015's motivation for IRNN).
  cell = rnn(1, activation="relu", recurrent_init=initializers.identity(),
             kernel_init=initializers.ones)
  params = cell.init(jax.random.PRNGKey(0), 1)
  xs = jnp.abs(jax.random.normal(jax.random.PRNGKey(1), (20, 1)))
  _, ys = unroll(cell, params, xs)
  np.testing.assert_allclose(ys[:, 0], np.cumsum(np.asarray(xs[:, 0])), rtol=1e-5)


def test_jordan_feeds_back_output():
  cell = jordan(6, 2)
  params = cell.init(jax.random.PRNGKey(0), 3)
  xs = np.random.default_rng(1).normal(size=(2, 8, 3))
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  y = np.zeros((2, 2))
  want = []
  for t in range(8):
    h = np.tanh(xs[:, t] @ p["w_x"] + y @ p["w_y"] + p["b"])
    y = np.tanh(h @ p["w_o"] + p["b_o"])
    want.append(y)
  carry, ys = unroll(cell, params, xs.astype(np.float32))
  np.testing.assert_allclose(ys, np.stack(want, 1), atol=1e-5)
  np.testing.assert_allclose(carry, y, atol=1e-5)
  assert cell.output_size == 2 and carry.shape == (2, 2)


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_hidden_size(bad):
  with pytest.raises(ValueError, match=f"hidden_size must be a positive integer, got {bad}"):
    rnn(bad)


def test_non_integer_hidden_size():
  with pytest.raises(TypeError, match="hidden_size must be a positive integer, got 2.5"):
    rnn(2.5)


def test_unknown_activation():
  with pytest.raises(ValueError, match="activation must be one of"):
    rnn(3, activation="swishy")

# Configurations the cell protocol suite (tests/cells/test_protocol.py) runs;
# builders take the dtype.
PROTOCOL_CELLS = {
    "rnn_tanh": lambda dtype: rnn(5, dtype=dtype),
    "rnn_relu": lambda dtype: rnn(5, activation="relu", dtype=dtype),
    "jordan": lambda dtype: jordan(5, 4, dtype=dtype),
}
