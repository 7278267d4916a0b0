"""Pytree utilities."""

import jax
import numpy as np

from seqjax import cells, pytree


def test_count_params_counts_every_scalar():
  params = {"a": np.zeros((3, 4)), "b": [np.zeros(5), {"c": np.float32(1.0)}]}
  assert pytree.count_params(params) == 12 + 5 + 1


def test_count_params_of_shapes_equals_that_of_arrays():
  cell = cells.lstm(7)
  params = cell.init(jax.random.PRNGKey(0), 3)
  shapes = jax.eval_shape(lambda key: cell.init(key, 3), jax.random.PRNGKey(0))
  # An LSTM: W_x (D, 4H), W_h (H, 4H), b (4H,).
  assert pytree.count_params(params) == pytree.count_params(shapes) == 3 * 28 + 7 * 28 + 28
