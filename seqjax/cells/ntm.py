"""Neural Turing Machine: a recurrent controller with read and write heads on an external memory.

References:
  Graves, Wayne & Danihelka 2014, "Neural Turing Machines",
  https://arxiv.org/abs/1410.5401
  Collier & Beel 2018, "Implementing Neural Turing Machines" (constant memory
  initialisation trains about twice as fast and more reliably than learned or
  random; the order read-from-the-old-memory-then-write used here),
  https://arxiv.org/abs/1807.08518
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import addressing, common
from seqjax.types import Array, Cell

__all__ = ["ntm", "NTMCarry", "ntm_memory"]  # re-exported by seqjax.cells

#: The value every memory entry starts at with ``memory_init="constant"``.
CONSTANT_MEMORY = 1e-6


class NTMCarry(NamedTuple):
  """Carry of ``ntm``: the controller's carry and the state of the memory and heads."""

  controller: Any  # the controller cell's carry
  memory: Array  # (*B, N, M); relative to the learned M_0 with memory_init="learned"
  read_weights: Array  # (*B, R, N): each read head's weighting of the last step
  write_weights: Array  # (*B, W, N): each write head's weighting of the last step
  reads: Array  # (*B, R, M): the read vectors of the last step


def ntm_memory(params: dict, carry: NTMCarry) -> Array:
  """The memory ``(*B, N, M)`` an ``NTMCarry`` holds.

  Args:
    params: the NTM's params (with ``memory_init="learned"`` they hold M_0).
    carry: an ``NTMCarry`` (or one stacked over time by ``seqjax.scan.trace``,
      leaves (*B, T, ...)); its ``memory`` is M_t - M_0 when M_0 is learned,
      so M_0 is added back.
  """
  if "memory0" in params:
    return carry.memory + params["memory0"]
  return carry.memory


def ntm(hidden_size: int,
        *,
        memory_size: int = 128,
        memory_width: int = 20,
        num_reads: int = 1,
        num_writes: int = 1,
        shift_range: int = 1,
        controller: Union[str, Cell] = "lstm",
        memory_init: str = "constant",
        kernel_init=initializers.glorot_uniform(),
        dtype=jnp.float32) -> Cell:
  """Neural Turing Machine (Graves et al. 2014) as a seqjax cell.

  Shapes: x_t (*B, D); controller output h_t (*B, H); memory M_t (*B, N, M)
  with N = ``memory_size`` slots of width M = ``memory_width``; R read heads,
  W write heads, shifts -S..S with S = ``shift_range``. One step::

    h_t = controller([x_t; r_{t-1}])                    # (*B, H)
    p_t = h_t W_p + b_p                                 # every head's parameters
    per head (from p_t):  k (M), beta = softplus(.), g = sigmoid(.),
                          s = softmax(.) over 2S + 1 shifts, gamma = 1 + softplus(.)
    w_c = softmax_i(beta cos(k, M_{t-1}[i]))            # content
    w_g = g w_c + (1 - g) w_{t-1}                       # interpolation
    w~[i] = sum_o s[o] w_g[(i - o) mod N]               # circular shift
    w = w~^gamma / sum_j w~[j]^gamma                    # sharpening
    r_t = w^read M_{t-1}                                # read heads, (*B, R, M)
    M_t[i] = M_{t-1}[i] prod_h (1 - w_h[i] e_h) + sum_h w_h[i] a_h
             with e = sigmoid(.), a = tanh(.) of each write head's parameters
    y_t = [h_t; r_t]                                    # (*B, H + R M)

  Every head is addressed on M_{t-1} and reads it before the writes (as
  Collier & Beel's implementation). Put a head (e.g. a dense layer and a
  sigmoid for bit outputs) after the cell for task outputs.

  Initial state: memory entries ``CONSTANT_MEMORY`` (``memory_init=
  "constant"``) or a learned M_0 (``"learned"``, params ``memory0`` (N, M),
  drawn N(0, 0.5^2); the carry then holds M_t - M_0 so that
  ``initial_carry`` reads params only for shapes: use ``ntm_memory`` for the
  memory itself); every head's weighting starts on slot 0; read vectors
  start at zero.

  Params: ``controller`` (the controller cell's params for input D + R M),
  ``heads`` {``w`` (H, P), ``b`` (P,)} with P = R (M + 2S + 4) + W (3M + 2S + 4),
  and ``memory0`` with a learned memory. Carry: ``NTMCarry``; its weightings
  are what the NTM paper plots (collect them over time with
  ``seqjax.scan.trace``).

  Args:
    hidden_size: H, the controller's size (> 0).
    memory_size: N slots (> 0).
    memory_width: M, the width of a slot (> 0).
    num_reads: R read heads (> 0).
    num_writes: W write heads (> 0).
    shift_range: S >= 0, with 2S + 1 <= N.
    controller: ``"lstm"`` (``seqjax.cells.lstm(hidden_size)``),
      ``"feedforward"`` (``h_t = tanh([x_t; r_{t-1}] W + b)``) or any seqjax
      ``Cell`` whose ``output_size`` is ``hidden_size``.
    memory_init: ``"constant"`` or ``"learned"``.
    kernel_init: initialiser of the head projection ``W_p``.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = H + R M``.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  n = checks.positive_int("memory_size", memory_size)
  m = checks.positive_int("memory_width", memory_width)
  reads = checks.positive_int("num_reads", num_reads)
  writes = checks.positive_int("num_writes", num_writes)
  shift = checks.non_negative_int("shift_range", shift_range)
  if 2 * shift + 1 > n:
    raise ValueError(f"shift_range must satisfy 2 * shift_range + 1 <= memory_size = {n}, "
                     f"got {shift}")
  checks.one_of("memory_init", memory_init, ("constant", "learned"))
  control = addressing.controller(controller, hidden_size, dtype)
  span = 2 * shift + 1
  read_size = m + span + 3  # key, beta, g, shifts, gamma
  write_size = read_size + 2 * m  # ... erase, add
  num_params = reads * read_size + writes * write_size

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_c, k_p, k_m = jax.random.split(key, 3)
    params = {"controller": control.init(k_c, input_size + reads * m),
              "heads": {"w": kernel_init(k_p, (hidden_size, num_params), dtype),
                        "b": jnp.zeros((num_params,), dtype)}}
    if memory_init == "learned":
      params["memory0"] = 0.5 * jax.random.normal(k_m, (n, m), dtype)
    return params

  def initial_carry(params, batch_shape=()):
    batch_shape = checks.batch_shape(batch_shape)
    dtype_ = params["heads"]["w"].dtype
    memory = (jnp.zeros if memory_init == "learned" else
              lambda s, d: jnp.full(s, CONSTANT_MEMORY, d))(batch_shape + (n, m), dtype_)

    def focus(heads):
      return jnp.zeros(batch_shape + (heads, n), dtype_).at[..., 0].set(1)

    return NTMCarry(control.initial_carry(params["controller"], batch_shape), memory,
                    focus(reads), focus(writes), jnp.zeros(batch_shape + (reads, m), dtype_))

  def address(memory, head, previous):
    """One weighting per head from its parameter rows ``head`` (*B, heads, >= M + 2S + 4)."""
    key = head[..., :m]
    beta = jax.nn.softplus(head[..., m])
    gate = jax.nn.sigmoid(head[..., m + 1])
    shifts = jax.nn.softmax(head[..., m + 2:m + 2 + span], axis=-1)
    gamma = addressing.oneplus(head[..., m + 2 + span])
    w = addressing.content_weights(memory, key, beta)
    w = addressing.interpolate(w, previous, gate)
    w = addressing.circular_shift(w, shifts)
    return addressing.sharpen(w, gamma)

  def input_size(params):
    return control.input_size(params["controller"]) - reads * m

  @common.checked_step(input_size)
  def step(params, carry, x):
    batch = x.shape[:-1]
    memory = ntm_memory(params, carry)
    controller_in = jnp.concatenate([x, carry.reads.reshape(batch + (reads * m,))], -1)
    controller_carry, h = control.step(params["controller"], carry.controller, controller_in)
    p = h @ params["heads"]["w"] + params["heads"]["b"]
    read_heads = p[..., :reads * read_size].reshape(batch + (reads, read_size))
    write_heads = p[..., reads * read_size:].reshape(batch + (writes, write_size))
    read_w = address(memory, read_heads, carry.read_weights)
    write_w = address(memory, write_heads, carry.write_weights)
    r = addressing.read(memory, read_w)
    erase = jax.nn.sigmoid(write_heads[..., read_size:read_size + m])
    add = jnp.tanh(write_heads[..., read_size + m:])
    memory = addressing.write(memory, write_w, erase, add)
    if "memory0" in params:
      memory = memory - params["memory0"]
    y = jnp.concatenate([h, r.reshape(batch + (reads * m,))], -1)
    return NTMCarry(controller_carry, memory, read_w, write_w, r), y

  name = (f"ntm(hidden_size={hidden_size}, memory={n}x{m}, reads={reads}, writes={writes}, "
          f"shift_range={shift}, controller={control.name}, memory_init={memory_init})")
  return Cell(init, initial_carry, step, input_size, hidden_size, hidden_size + reads * m,
              name)
