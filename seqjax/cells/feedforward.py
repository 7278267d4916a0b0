"""A memoryless layer as a cell: the feed-forward controller of the memory networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common
from seqjax.types import Cell

__all__ = ["feedforward"]  # re-exported by seqjax.cells


def feedforward(hidden_size: int,
                *,
                activation: common.ActivationLike = "tanh",
                kernel_init=initializers.glorot_uniform(),
                bias_init=initializers.zeros,
                dtype=jnp.float32) -> Cell:
  """A feed-forward layer run as a cell: each step sees only its own input.

  Equations (x_t: (*B, D), h_t: (*B, H))::

    h_t = act(x_t W + b)
    y_t = h_t

  The carry (the last h_t) is never read. Its use: the feed-forward
  controller of an NTM or DNC (``controller="feedforward"``), whose only
  memory is the external one, and a memoryless baseline for any task.

  Params: ``w`` (D, H), ``b`` (H,). Carry: ``h`` (*B, H).

  Args:
    hidden_size: H, > 0.
    activation: a name from ``seqjax.cells`` (tanh, relu, ...) or a callable.
    kernel_init, bias_init: initialisers ``(key, shape, dtype)``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  act = common.activation(activation)

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_w, k_b = jax.random.split(key)
    return {"w": kernel_init(k_w, (input_size, hidden_size), dtype),
            "b": bias_init(k_b, (hidden_size,), dtype)}

  def initial_carry(params, batch_shape=()):
    return common.zeros_carry(params, batch_shape, hidden_size, like="w")

  @common.checked_step(common.input_size_of("w"))
  def step(params, h, x):
    del h
    h = act(x @ params["w"] + params["b"])
    return h, h

  return Cell(init, initial_carry, step, common.input_size_of("w"), hidden_size, hidden_size,
              f"feedforward(hidden_size={hidden_size}, "
              f"activation={common.activation_name(activation)})")
