"""Gated recurrent unit, in the cuDNN/PyTorch form and in Cho et al.'s original.

Gate order in every stacked weight and bias is PyTorch's: reset ``r``, update
``z``, candidate ``n``. Block ``k`` of the ``3H`` columns is
``[k*H:(k+1)*H]``.

References:
  Cho et al. 2014, "Learning phrase representations using RNN encoder-decoder
  for statistical machine translation", https://arxiv.org/abs/1406.1078
  Chung et al. 2014, "Empirical evaluation of gated recurrent neural networks
  on sequence modeling", https://arxiv.org/abs/1412.3555
  PyTorch ``nn.GRU``: https://pytorch.org/docs/stable/generated/torch.nn.GRU.html
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common, fused
from seqjax.types import Cell, FastPath

__all__ = ["gru"]  # re-exported by seqjax.cells


def gru(hidden_size: int,
        *,
        reset_after: bool = True,
        kernel_init=initializers.glorot_uniform(),
        recurrent_init=initializers.blockwise(initializers.orthogonal(), 3),
        bias_init=initializers.zeros,
        dtype=jnp.float32) -> Cell:
  """Gated recurrent unit.

  Equations (x_t: (*B, D), h_t: (*B, H); ``*`` is elementwise; ``W_xr`` is the
  r block of ``w_x``, etc.)::

    r_t = sigmoid(x_t W_xr + h_{t-1} W_hr + b_r)
    z_t = sigmoid(x_t W_xz + h_{t-1} W_hz + b_z)
    reset_after=True  (cuDNN, PyTorch, Keras' default):
      n_t = tanh(x_t W_xn + b_n + r_t * (h_{t-1} W_hn + b_hn))
    reset_after=False (Cho et al. 2014):
      n_t = tanh(x_t W_xn + (r_t * h_{t-1}) W_hn + b_n)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    y_t = h_t

  ``reset_after=True`` lets the recurrent matmul ``h_{t-1} W_h`` be done for
  all three gates at once, before the reset gate is known; it needs the extra
  bias ``b_hn`` inside the reset product. With the reset gate fully open
  (``r_t = 1``) and ``b_hn = 0`` the two forms coincide.

  PyTorch ``nn.GRU`` weights load as ``w_x = W_ih.T``, ``w_h = W_hh.T``,
  ``b = b_ih + [b_hr, b_hz, 0]`` and ``b_hn`` (the last H entries of
  ``b_hh``), with ``reset_after=True``.

  Params: ``w_x`` (D, 3H), ``w_h`` (H, 3H), ``b`` (3H,), gates stacked in the
  order r, z, n; with ``reset_after=True`` also ``b_hn`` (H,), the recurrent
  bias of the candidate (initialised by ``bias_init``). Carry: ``h`` (*B, H).

  With ``reset_after=True`` the cell has a whole-sequence fast path
  (``Cell.fast``, taken by ``seqjax.unroll`` on the backends where it was
  measured faster): a ``jax.custom_vjp`` loop with the weight gradients as
  matrix products after it (see ``seqjax.cells.fused``).

  Args:
    hidden_size: H, > 0.
    reset_after: apply the reset gate after the recurrent matmul (cuDNN and
      PyTorch) rather than before it (Cho et al. 2014).
    kernel_init: initialiser of ``w_x``.
    recurrent_init: initialiser of ``w_h``; the default makes each gate's
      (H, H) block orthogonal.
    bias_init: initialiser of ``b`` and ``b_hn``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  References:
    Cho et al. 2014, https://arxiv.org/abs/1406.1078
    Chung et al. 2014, https://arxiv.org/abs/1412.3555
    PyTorch ``nn.GRU``:
    https://pytorch.org/docs/stable/generated/torch.nn.GRU.html
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  if not isinstance(reset_after, bool):
    raise TypeError(f"reset_after must be True or False, got {reset_after!r} "
                    f"of type {type(reset_after).__name__}")

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_h, k_b, k_bn = jax.random.split(key, 4)
    params = {
        "w_x": kernel_init(k_x, (input_size, 3 * hidden_size), dtype),
        "w_h": recurrent_init(k_h, (hidden_size, 3 * hidden_size), dtype),
        "b": bias_init(k_b, (3 * hidden_size,), dtype),
    }
    if reset_after:
      params["b_hn"] = bias_init(k_bn, (hidden_size,), dtype)
    return params

  def initial_carry(params, batch_shape=()):
    return common.zeros_carry(params, batch_shape, hidden_size, like="w_h")

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, h_prev, x):
    w_h = params["w_h"]
    in_r, in_z, in_n = jnp.split(x @ params["w_x"] + params["b"], 3, axis=-1)
    if reset_after:
      rec_r, rec_z, rec_n = jnp.split(h_prev @ w_h, 3, axis=-1)
      r = jax.nn.sigmoid(in_r + rec_r)
      z = jax.nn.sigmoid(in_z + rec_z)
      n = jnp.tanh(in_n + r * (rec_n + params["b_hn"]))
    else:
      rec_r, rec_z = jnp.split(h_prev @ w_h[:, :2 * hidden_size], 2, axis=-1)
      r = jax.nn.sigmoid(in_r + rec_r)
      z = jax.nn.sigmoid(in_z + rec_z)
      n = jnp.tanh(in_n + (r * h_prev) @ w_h[:, 2 * hidden_size:])
    h = (1.0 - z) * n + z * h_prev
    return h, h

  fast = None
  if reset_after:
    recurrence = fused.gru_recurrence()

    def sequence(params, h, xs, *, mask, restart, restart_carry, reverse):
      b_h = jnp.concatenate([jnp.zeros((2 * hidden_size,), params["b_hn"].dtype),
                             params["b_hn"]])
      (final,), ys = fused.sequence(
          recurrence, params["w_x"], params["b"], params["w_h"], b_h, (h,), xs, mask=mask,
          restart=restart, restart_carry=None if restart_carry is None else (restart_carry,),
          reverse=reverse)
      return final, ys

    fast = FastPath(sequence, fused.BACKENDS["gru"], step)

  return Cell(init, initial_carry, step, common.input_size_of("w_x"),
              hidden_size, hidden_size,
              f"gru(hidden_size={hidden_size}, reset_after={reset_after})",
              fast=fast)
