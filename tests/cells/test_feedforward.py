"""Tests for seqjax.cells.feedforward: each step is a dense layer of its own input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cells.feedforward import feedforward
from seqjax.scan import unroll

PROTOCOL_CELLS = {
    "feedforward": lambda dtype: feedforward(4, dtype=dtype),
}


def test_every_step_is_a_dense_layer_of_its_input_alone():
  cell = feedforward(3, activation="relu")
  params = cell.init(jax.random.key(0), 2)
  xs = np.random.default_rng(0).normal(size=(2, 5, 2)).astype(np.float32)
  _, ys = unroll(cell, params, jnp.asarray(xs))
  want = np.maximum(xs @ np.asarray(params["w"]) + np.asarray(params["b"]), 0)
  np.testing.assert_allclose(ys, want, rtol=1e-6, atol=1e-7)


def test_bad_size_is_named():
  with pytest.raises(ValueError, match="hidden_size"):
    feedforward(0)
