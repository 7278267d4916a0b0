"""Heads: the linear head and the last-valid-step readout against direct references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import heads


def test_linear_head_is_an_affine_map():
  head = heads.linear(5)
  params = head.init(jax.random.PRNGKey(0), 16)
  assert params["w"].shape == (16, 5) and params["b"].shape == (5,)
  ys = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 16))
  np.testing.assert_allclose(head.apply(params, ys),
                             np.asarray(ys) @ np.asarray(params["w"]) + np.asarray(params["b"]),
                             atol=1e-5)
  # LeCun normal by default: std 1/sqrt(H).
  big = heads.linear(2000).init(jax.random.PRNGKey(2), 16)
  np.testing.assert_allclose(np.std(big["w"]), 0.25, rtol=0.05)
  scaled = heads.linear(2000, init_scale=0.01).init(jax.random.PRNGKey(2), 16)
  np.testing.assert_allclose(np.std(scaled["w"]), 0.01, rtol=0.05)


def test_tied_head_owns_only_the_bias():
  head = heads.linear(4, tied=True)
  params = head.init(jax.random.PRNGKey(0), 3)
  assert set(params) == {"b"}
  with pytest.raises(ValueError, match="tied head"):
    head.apply(params, jnp.ones((2, 3)))
  w = jnp.arange(12.0).reshape(3, 4)
  np.testing.assert_allclose(head.apply({"w": w, **params}, jnp.ones((1, 3))), w.sum(0)[None])


def test_last_valid_reads_each_rows_last_true_step():
  ys = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
  out = heads.last_valid(ys, mask)
  np.testing.assert_array_equal(out, np.stack([ys[0, 2], ys[1, 4]]))
  np.testing.assert_array_equal(heads.last_valid(ys), ys[:, -1])
  # A hole inside the row does not matter: the last True step is read.
  holes = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]], bool)
  np.testing.assert_array_equal(heads.last_valid(ys, holes), np.stack([ys[0, 2], ys[1, 1]]))
  # Several batch axes.
  np.testing.assert_array_equal(heads.last_valid(ys[None], mask[None])[0], out)


def test_errors_name_the_argument():
  with pytest.raises(ValueError, match="output_size"):
    heads.linear(0)
  with pytest.raises(ValueError, match="init_scale"):
    heads.linear(3, init_scale=float("inf"))
  with pytest.raises(ValueError, match="mask must have shape"):
    heads.last_valid(jnp.zeros((2, 5, 3)), jnp.ones((2, 4), bool))
