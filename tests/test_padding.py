"""Padding may hold anything: NaN/inf in masked-out steps leave values and
gradients equal to those of the zero-padded batch, through every layer type.

(Cells: tests/cells/test_protocol.py::test_padding_may_hold_anything.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import cells, layers
from seqjax.tcn import tcn

MASK = np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], bool)


def _layers():
  return {
      "recurrent_fast": layers.recurrent(cells.lstm(4)),
      "recurrent_scan": layers.recurrent(cells.gru(4), implementation="scan"),
      "bidirectional": layers.bidirectional(cells.lstm(4), cells.gru(3)),
      "stacked": layers.stacked([cells.lstm(4), cells.rnn(4)]),
      "tcn": tcn([4, 4], kernel_size=2),
  }


@pytest.mark.parametrize("name", sorted(_layers()))
@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_layer_padding_may_hold_anything(name, fill):
  layer = _layers()[name]
  k_p, k_x = jax.random.split(jax.random.PRNGKey(0))
  params = layer.init(k_p, 3)
  xs = jax.random.normal(k_x, MASK.shape + (3,))

  def loss(p, x):
    _, ys = layer.apply(p, x, mask=MASK)
    return jnp.sum(jnp.sin(ys))

  # Jitted: one program for both inputs (the padding is an argument, not a constant).
  value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  want_value, want_grads = value_and_grad(params, jnp.where(MASK[..., None], xs, 0.0))
  value, grads = value_and_grad(params, jnp.where(MASK[..., None], xs, fill))
  assert np.isfinite(float(value))
  np.testing.assert_allclose(value, want_value, rtol=1e-6, atol=1e-6)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), grads, want_grads)
  np.testing.assert_array_equal(np.asarray(grads[1])[~MASK], 0.0)
