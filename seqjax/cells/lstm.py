"""Long short-term memory: the standard LSTM (optionally with peepholes) and the
coupled input-forget gate variant.

Gate order in every stacked weight and bias is PyTorch's: input ``i``, forget
``f``, candidate ``g``, output ``o`` (``tied_lstm`` drops ``i``: ``f, g, o``).
Block ``k`` of the ``4H`` columns is ``[k*H:(k+1)*H]``.

PyTorch weights load as ``w_x = W_ih.T``, ``w_h = W_hh.T``,
``b = b_ih + b_hh`` with ``forget_bias=0``.

References:
  Hochreiter & Schmidhuber 1997, "Long short-term memory".
  Gers, Schmidhuber & Cummins 2000, "Learning to forget: continual prediction
  with LSTM" (the forget gate).
  Gers & Schmidhuber 2000, "Recurrent nets that time and count" (peepholes).
  Jozefowicz, Zaremba & Sutskever 2015, "An empirical exploration of recurrent
  network architectures" (forget-gate bias of 1),
  https://proceedings.mlr.press/v37/jozefowicz15.html
  Greff et al. 2017, "LSTM: A search space odyssey" (CIFG, the coupled gate),
  https://arxiv.org/abs/1503.04069
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import common, fused
from seqjax.types import Cell, FastPath, LSTMCarry

__all__ = ["lstm", "tied_lstm"]  # re-exported by seqjax.cells


def _check_forget_bias(value) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"forget_bias must be a real number, got {value!r} "
                    f"of type {type(value).__name__}")
  if not math.isfinite(value):
    raise ValueError(f"forget_bias must be finite, got {value}")
  return float(value)


def _check_bool(name: str, value) -> bool:
  if not isinstance(value, bool):
    raise TypeError(f"{name} must be True or False, got {value!r} "
                    f"of type {type(value).__name__}")
  return value


def _lstm_family(gate_names: str, hidden_size, forget_bias, peephole,
                 kernel_init, recurrent_init, bias_init, peephole_init,
                 dtype, name: str) -> Cell:
  """Builds the LSTM (``gate_names="ifgo"``) or the CIFG LSTM (``"fgo"``)."""
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  forget_bias = _check_forget_bias(forget_bias)
  peephole = _check_bool("peephole", peephole)
  coupled = "i" not in gate_names
  num_gates = len(gate_names)
  # Peepholes exist for the sigmoid gates only: i and f look at c_{t-1}, o at c_t.
  peep_rows = "fo" if coupled else "ifo"

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_x, k_h, k_b, k_p = jax.random.split(key, 4)
    params = {
        "w_x": kernel_init(k_x, (input_size, num_gates * hidden_size), dtype),
        "w_h": recurrent_init(k_h, (hidden_size, num_gates * hidden_size), dtype),
        "b": bias_init(k_b, (num_gates * hidden_size,), dtype),
    }
    if peephole:
      params["w_peep"] = peephole_init(k_p, (len(peep_rows), hidden_size), dtype)
    return params

  def initial_carry(params, batch_shape=()):
    zeros = common.zeros_carry(params, batch_shape, hidden_size, like="w_h")
    return LSTMCarry(h=zeros, c=zeros)

  @common.checked_step(common.input_size_of("w_x"))
  def step(params, carry, x):
    h_prev, c_prev = carry
    pre = x @ params["w_x"] + h_prev @ params["w_h"] + params["b"]
    gates = dict(zip(gate_names, jnp.split(pre, num_gates, axis=-1)))
    if peephole:
      peep = dict(zip(peep_rows, params["w_peep"]))
      gates["f"] = gates["f"] + peep["f"] * c_prev
      if not coupled:
        gates["i"] = gates["i"] + peep["i"] * c_prev
    # Added here rather than baked into ``b`` (as in TF and haiku), so that
    # ``bias_init`` and weights imported from elsewhere keep their meaning.
    f = jax.nn.sigmoid(gates["f"] + forget_bias)
    g = jnp.tanh(gates["g"])
    i = 1.0 - f if coupled else jax.nn.sigmoid(gates["i"])
    c = f * c_prev + i * g
    o_pre = gates["o"] + peep["o"] * c if peephole else gates["o"]
    h = jax.nn.sigmoid(o_pre) * jnp.tanh(c)
    return LSTMCarry(h=h, c=c), h

  fast = None
  if not peephole:
    recurrence = fused.lstm_recurrence(forget_bias, coupled)

    def sequence(params, carry, xs, *, mask, restart, restart_carry, reverse):
      final, ys = fused.sequence(recurrence, params["w_x"], params["b"], params["w_h"], None,
                                 carry, xs, mask=mask, restart=restart,
                                 restart_carry=restart_carry, reverse=reverse)
      return LSTMCarry(*final), ys

    fast = FastPath(sequence, fused.BACKENDS["lstm"], step)

  return Cell(init, initial_carry, step, common.input_size_of("w_x"),
              hidden_size, hidden_size,
              f"{name}(hidden_size={hidden_size}, forget_bias={forget_bias}, "
              f"peephole={peephole})", fast=fast)


def lstm(hidden_size: int,
         *,
         forget_bias: float = 1.0,
         peephole: bool = False,
         kernel_init=initializers.glorot_uniform(),
         recurrent_init=initializers.blockwise(initializers.orthogonal(), 4),
         bias_init=initializers.zeros,
         peephole_init=initializers.zeros,
         dtype=jnp.float32) -> Cell:
  """LSTM with a forget gate (Gers et al. 2000), optionally with peepholes.

  Equations (x_t: (*B, D), h_t, c_t: (*B, H); ``*`` is elementwise; the
  ``p_*`` terms only with ``peephole=True``)::

    [a_i, a_f, a_g, a_o] = x_t W_x + h_{t-1} W_h + b
    i_t = sigmoid(a_i + p_i * c_{t-1})
    f_t = sigmoid(a_f + p_f * c_{t-1} + forget_bias)
    g_t = tanh(a_g)
    c_t = f_t * c_{t-1} + i_t * g_t
    o_t = sigmoid(a_o + p_o * c_t)
    h_t = o_t * tanh(c_t)
    y_t = h_t

  ``forget_bias`` is *added* in the step (as in TensorFlow and haiku), not
  stored in ``b``: ``b`` starts at ``bias_init`` and the forget gate starts
  near ``sigmoid(forget_bias)``, which keeps early memory alive (Jozefowicz et
  al. 2015). Any finite value is allowed; ``forget_bias=0`` gives PyTorch's
  ``nn.LSTM`` exactly, with ``w_x = W_ih.T``, ``w_h = W_hh.T`` and
  ``b = b_ih + b_hh``.

  Params: ``w_x`` (D, 4H), ``w_h`` (H, 4H), ``b`` (4H,), gates stacked in
  PyTorch's order i, f, g, o; with ``peephole=True`` also ``w_peep`` (3, H),
  the diagonal peephole weights ``[p_i, p_f, p_o]`` (Gers & Schmidhuber 2000:
  the input and forget gates see c_{t-1}, the output gate sees c_t).
  Carry: ``seqjax.types.LSTMCarry(h, c)``, each (*B, H).

  Without peepholes the cell has a whole-sequence fast path (``Cell.fast``,
  used by ``seqjax.unroll`` by default): a ``jax.custom_vjp`` loop whose weight
  gradients are computed after the loop as matrix products (see
  ``seqjax.cells.fused``).

  Args:
    hidden_size: H, > 0.
    forget_bias: constant added to the forget gate's pre-activation.
    peephole: add diagonal peephole connections from the memory cell.
    kernel_init: initialiser of ``w_x``.
    recurrent_init: initialiser of ``w_h``; the default makes each gate's
      (H, H) block orthogonal.
    bias_init: initialiser of ``b``.
    peephole_init: initialiser of ``w_peep``; zeros start the cell as a plain
      LSTM.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  References:
    Hochreiter & Schmidhuber 1997, "Long short-term memory".
    Gers, Schmidhuber & Cummins 2000, "Learning to forget".
    Gers & Schmidhuber 2000, "Recurrent nets that time and count".
    PyTorch ``nn.LSTM``:
    https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html
  """
  return _lstm_family("ifgo", hidden_size, forget_bias, peephole, kernel_init,
                      recurrent_init, bias_init, peephole_init, dtype, "lstm")


def tied_lstm(hidden_size: int,
              *,
              forget_bias: float = 1.0,
              peephole: bool = False,
              kernel_init=initializers.glorot_uniform(),
              recurrent_init=initializers.blockwise(initializers.orthogonal(), 3),
              bias_init=initializers.zeros,
              peephole_init=initializers.zeros,
              dtype=jnp.float32) -> Cell:
  """LSTM with a coupled input-forget gate (CIFG, Greff et al. 2017).

  The input gate is ``1 - f``: the cell writes exactly as much as it forgets,
  with a quarter fewer parameters and no loss of accuracy in Greff et al.'s
  study. Equations (x_t: (*B, D), h_t, c_t: (*B, H); ``p_*`` terms only with
  ``peephole=True``)::

    [a_f, a_g, a_o] = x_t W_x + h_{t-1} W_h + b
    f_t = sigmoid(a_f + p_f * c_{t-1} + forget_bias)
    g_t = tanh(a_g)
    c_t = f_t * c_{t-1} + (1 - f_t) * g_t
    o_t = sigmoid(a_o + p_o * c_t)
    h_t = o_t * tanh(c_t)
    y_t = h_t

  ``forget_bias`` is added in the step, not stored in ``b`` (see ``lstm``).

  Params: ``w_x`` (D, 3H), ``w_h`` (H, 3H), ``b`` (3H,), gates stacked in the
  order f, g, o; with ``peephole=True`` also ``w_peep`` (2, H), the diagonal
  peephole weights ``[p_f, p_o]``. Carry: ``seqjax.types.LSTMCarry(h, c)``,
  each (*B, H).

  Args:
    hidden_size: H, > 0.
    forget_bias: constant added to the forget gate's pre-activation.
    peephole: add diagonal peephole connections from the memory cell.
    kernel_init: initialiser of ``w_x``.
    recurrent_init: initialiser of ``w_h``; the default makes each gate's
      (H, H) block orthogonal.
    bias_init: initialiser of ``b``.
    peephole_init: initialiser of ``w_peep``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = hidden_size``.

  References:
    Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber 2017, "LSTM: A
    search space odyssey", https://arxiv.org/abs/1503.04069
  """
  return _lstm_family("fgo", hidden_size, forget_bias, peephole, kernel_init,
                      recurrent_init, bias_init, peephole_init, dtype,
                      "tied_lstm")
