"""Vanilla recurrent cells: Elman (hidden-state recurrence) and Jordan (output recurrence).

References:
  Elman 1990, "Finding structure in time".
  Jordan 1986, "Serial order: a parallel distributed processing approach".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common, fused
from seqjax.types import Cell, FastPath

__all__ = ["rnn", "jordan"]  # re-exported by seqjax.cells


def rnn(hidden_size: int,
        *,
        activation: common.ActivationLike = "tanh",
        kernel_init=initializers.glorot_uniform(),
        recurrent_init=initializers.orthogonal(),
        bias_init=initializers.zeros,
        dtype=jnp.float32) -> Cell:
  """Elman RNN: the hidden state is fed back.

  Equations (x_t: (*B, D), h_t: (*B, H))::

    h_t = act(x_t W_x + h_{t-1} W_h + b)
    y_t = h_t

  Params: ``w_x`` (D, H), ``w_h`` (H, H), ``b`` (H,). Carry: ``h`` (*B, H).

  With ``activation`` "tanh" or "relu" the cell has a whole-sequence fast path
  (``Cell.fast``, taken by ``seqjax.unroll`` on the backends where it was
  measured faster): a ``jax.custom_vjp`` loop with the weight gradients as
  matrix products after it (see ``seqjax.cells.fused``).

  Args:
    hidden_size: H, > 0.
    activation: ``"tanh"`` (default), ``"relu"`` (with
      ``recurrent_init=seqjax.init.identity()`` this is the IRNN of Le et al.
      2015), another name from ``seqjax.cells`` or any callable.
    kernel_init, recurrent_init, bias_init: initialisers ``(key, shape, dtype)``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  act = common.activation(activation)

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_h, k_b = jax.random.split(key, 3)
    return common.dense_params((k_x, k_h, k_b), input_size, hidden_size, kernel_init,
                                recurrent_init, bias_init, dtype)

  def initial_carry(params, batch_shape=()):
    return common.zeros_carry(params, batch_shape, hidden_size, like="w_h")

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, h, x):
    h = act(x @ params["w_x"] + h @ params["w_h"] + params["b"])
    return h, h

  fast = None
  if activation in ("tanh", "relu"):
    recurrence = fused.rnn_recurrence(activation)

    def sequence(params, h, xs, *, mask, restart, restart_carry, reverse):
      (final,), ys = fused.sequence(
          recurrence, params["w_x"], params["b"], params["w_h"], None, (h,), xs, mask=mask,
          restart=restart, restart_carry=None if restart_carry is None else (restart_carry,),
          reverse=reverse)
      return final, ys

    fast = FastPath(sequence, fused.BACKENDS["rnn"], step)

  return Cell(init, initial_carry, step, common.input_size_of("w_x"),
              hidden_size, hidden_size,
              f"rnn(hidden_size={hidden_size}, activation={common.activation_name(activation)})",
              fast=fast)


def jordan(hidden_size: int,
           output_size: int,
           *,
           activation: common.ActivationLike = "tanh",
           output_activation: common.ActivationLike = "tanh",
           kernel_init=initializers.glorot_uniform(),
           recurrent_init=initializers.glorot_uniform(),
           output_init=initializers.glorot_uniform(),
           bias_init=initializers.zeros,
           dtype=jnp.float32) -> Cell:
  """Jordan RNN: the previous *output*, not the hidden state, is fed back.

  Equations (x_t: (*B, D), h_t: (*B, H), y_t: (*B, O))::

    h_t = act(x_t W_x + y_{t-1} W_y + b)
    y_t = out_act(h_t W_o + b_o)

  Params: ``w_x`` (D, H), ``w_y`` (O, H), ``b`` (H,), ``w_o`` (H, O),
  ``b_o`` (O,). Carry: ``y`` (*B, O), the previous output.

  Args:
    hidden_size: H, > 0.
    output_size: O, > 0.
    activation: hidden nonlinearity (name or callable).
    output_activation: output nonlinearity; a bounded one (the default tanh,
      or sigmoid as in Jordan 1986) keeps the fed-back signal bounded.
    kernel_init, recurrent_init, output_init, bias_init: initialisers.
    dtype: dtype of the parameters and the carry.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  output_size = checks.positive_int("output_size", output_size)
  act = common.activation(activation)
  out_act = common.activation(output_activation, "output_activation")

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_y, k_o, k_b = jax.random.split(key, 4)
    return {
        "w_x": kernel_init(k_x, (input_size, hidden_size), dtype),
        "w_y": recurrent_init(k_y, (output_size, hidden_size), dtype),
        "b": bias_init(k_b, (hidden_size,), dtype),
        "w_o": output_init(k_o, (hidden_size, output_size), dtype),
        "b_o": jnp.zeros((output_size,), dtype),
    }

  def initial_carry(params, batch_shape=()):
    return common.zeros_carry(params, batch_shape, output_size, like="w_o")

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, y_prev, x):
    h = act(x @ params["w_x"] + y_prev @ params["w_y"] + params["b"])
    y = out_act(h @ params["w_o"] + params["b_o"])
    return y, y

  return Cell(init, initial_carry, step, common.input_size_of("w_x"),
              hidden_size, output_size,
              f"jordan(hidden_size={hidden_size}, output_size={output_size})")
