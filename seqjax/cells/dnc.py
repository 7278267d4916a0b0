"""Differentiable Neural Computer: dynamic allocation, temporal links and content lookup.

References:
  Graves et al. 2016, "Hybrid computing using a neural network with dynamic
  external memory", Nature 538 (Methods: the equations numbered below),
  https://www.nature.com/articles/nature20101
  DeepMind's reference implementation (github.com/deepmind/dnc): the usage
  floor of the allocation's sort and the zero initial state.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp

from seqjax import checks
from seqjax import init as initializers
from seqjax.cells import addressing, common
from seqjax.types import Array, Cell

__all__ = ["dnc", "DNCCarry"]  # re-exported by seqjax.cells

#: Usage is mapped to eps + (1 - eps) u before allocation, as DeepMind's code does,
#: so that the cumulative product never multiplies exact zeros and ones.
USAGE_EPS = 1e-6


class DNCCarry(NamedTuple):
  """Carry of ``dnc``: controller, memory and the allocation and link state."""

  controller: Any  # the controller cell's carry
  memory: Array  # (*B, N, W)
  usage: Array  # (*B, N): u_t in [0, 1]
  link: Array  # (*B, N, N): L_t[i, j], how much slot i was written right after slot j
  precedence: Array  # (*B, N): p_t, how much each slot was the last written
  read_weights: Array  # (*B, R, N)
  write_weights: Array  # (*B, N)
  reads: Array  # (*B, R, W)


def allocation_weights(usage: Array) -> Array:
  """The allocation weighting: free slots in order of increasing usage.

  ``phi`` sorts the slots by usage, ascending; then
  ``a[phi_j] = (1 - u[phi_j]) prod_{i < j} u[phi_i]`` (Methods, "Dynamic
  memory allocation"). A fully used memory allocates nothing; an unused slot
  takes everything, the least-used one first. Usage is floored to
  ``USAGE_EPS + (1 - USAGE_EPS) u``; gradients flow through the usages, not
  the sort order.

  Args:
    usage: (*B, N) in [0, 1].

  Returns:
    (*B, N), summing to at most 1.
  """
  usage = USAGE_EPS + (1 - USAGE_EPS) * usage
  order = jnp.argsort(usage, axis=-1)
  sorted_usage = jnp.take_along_axis(usage, order, axis=-1)
  ones = jnp.ones_like(sorted_usage[..., :1])
  before = jnp.cumprod(jnp.concatenate([ones, sorted_usage[..., :-1]], -1), axis=-1)
  sorted_allocation = (1 - sorted_usage) * before
  return jnp.take_along_axis(sorted_allocation, jnp.argsort(order, axis=-1), axis=-1)


def update_links(link: Array, precedence: Array, write: Array) -> tuple[Array, Array]:
  """The temporal link matrix and precedence after a write (Methods, "Temporal memory linkage").

  ``L'[i, j] = (1 - w[i] - w[j]) L[i, j] + w[i] p[j]`` with ``L'[i, i] = 0``,
  then ``p' = (1 - sum_i w[i]) p + w`` (the link update reads the previous
  precedence).

  Args:
    link: (*B, N, N).
    precedence: (*B, N).
    write: (*B, N), the write weighting of this step.

  Returns:
    ``(link, precedence)`` after the write.
  """
  w_i, w_j = write[..., :, None], write[..., None, :]
  link = (1 - w_i - w_j) * link + w_i * precedence[..., None, :]
  link = link * (1 - jnp.eye(link.shape[-1], dtype=link.dtype))
  precedence = (1 - jnp.sum(write, axis=-1, keepdims=True)) * precedence + write
  return link, precedence


def dnc(hidden_size: int,
        *,
        memory_size: int = 32,
        word_size: int = 16,
        num_reads: int = 4,
        controller: Union[str, Cell] = "lstm",
        kernel_init=initializers.glorot_uniform(),
        dtype=jnp.float32) -> Cell:
  """Differentiable Neural Computer (Graves et al. 2016) with one write head.

  Shapes: x_t (*B, D); controller output h_t (*B, H); memory M (*B, N, W)
  of N = ``memory_size`` words of W = ``word_size``; R read heads. One step
  (Methods; C(M, k, beta) is content lookup, ``addressing.content_weights``)::

    h_t = controller([x_t; r_{t-1}])
    xi_t = h_t W_xi + b_xi, split into the interface: read keys k^r (R, W),
      read strengths beta^r = oneplus (R), write key k^w (W), write strength
      beta^w = oneplus, erase e = sigmoid (W), write vector v (W), free gates
      f = sigmoid (R), allocation gate g^a = sigmoid, write gate g^w =
      sigmoid, read modes pi = softmax over (backward, content, forward) (R, 3)
    psi_t = prod_i (1 - f^i w^r_{t-1, i})                     # retention
    u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} w^w_{t-1}) psi_t     # usage
    a_t = allocation_weights(u_t)
    w^w_t = g^w (g^a a_t + (1 - g^a) C(M_{t-1}, k^w, beta^w))
    M_t = M_{t-1} (1 - w^w_t e^T) + w^w_t v^T
    L_t, p_t = update_links(L_{t-1}, p_{t-1}, w^w_t)
    w^r_{t, i} = pi_i[0] L_t^T w^r_{t-1, i} + pi_i[1] C(M_t, k^r_i, beta^r_i)
                 + pi_i[2] L_t w^r_{t-1, i}
    r_{t, i} = M_t^T w^r_{t, i}
    y_t = [h_t; r_t]                                          # (*B, H + R W)

  Put a head after the cell for task outputs (the paper's
  ``W_y h_t + W_r [r_t]`` is one linear map of ``y_t``). The state starts at
  zero (memory, usage, links, weightings, reads), as in DeepMind's code.

  Params: ``controller`` (for input D + R W) and ``interface`` {``w`` (H, I),
  ``b`` (I,)} with I = R W + 3 W + 5 R + 3. Carry: ``DNCCarry``; its usage,
  weightings and links are what the paper plots (``seqjax.scan.trace``).

  Args:
    hidden_size: H, the controller's size (> 0).
    memory_size: N words (> 0).
    word_size: W (> 0).
    num_reads: R read heads (> 0).
    controller: ``"lstm"``, ``"feedforward"`` or a ``Cell`` of output size H
      (see ``addressing.controller``).
    kernel_init: initialiser of the interface projection.
    dtype: dtype of the parameters and the carry.

  Returns:
    A ``seqjax.Cell`` with ``output_size = H + R W``.
  """
  hidden_size = checks.positive_int("hidden_size", hidden_size)
  n = checks.positive_int("memory_size", memory_size)
  w = checks.positive_int("word_size", word_size)
  reads = checks.positive_int("num_reads", num_reads)
  control = addressing.controller(controller, hidden_size, dtype)
  sizes = {"read_keys": reads * w, "read_strengths": reads, "write_key": w,
           "write_strength": 1, "erase": w, "write_vector": w, "free_gates": reads,
           "allocation_gate": 1, "write_gate": 1, "read_modes": 3 * reads}
  interface_size = sum(sizes.values())

  def init(key, input_size):
    input_size = common.check_input_size(input_size)
    k_c, k_i = jax.random.split(key)
    return {"controller": control.init(k_c, input_size + reads * w),
            "interface": {"w": kernel_init(k_i, (hidden_size, interface_size), dtype),
                          "b": jnp.zeros((interface_size,), dtype)}}

  def initial_carry(params, batch_shape=()):
    batch_shape = checks.batch_shape(batch_shape)
    dt = params["interface"]["w"].dtype
    zeros = lambda *shape: jnp.zeros(batch_shape + shape, dt)  # noqa: E731
    return DNCCarry(control.initial_carry(params["controller"], batch_shape), zeros(n, w),
                    zeros(n), zeros(n, n), zeros(n), zeros(reads, n), zeros(n),
                    zeros(reads, w))

  def interface(xi):
    batch = xi.shape[:-1]
    parts, start = {}, 0
    for name, size in sizes.items():
      parts[name] = xi[..., start:start + size]
      start += size
    return {
        "read_keys": parts["read_keys"].reshape(batch + (reads, w)),
        "read_strengths": addressing.oneplus(parts["read_strengths"]),
        "write_key": parts["write_key"][..., None, :],
        "write_strength": addressing.oneplus(parts["write_strength"]),
        "erase": jax.nn.sigmoid(parts["erase"]),
        "write_vector": parts["write_vector"],
        "free_gates": jax.nn.sigmoid(parts["free_gates"]),
        "allocation_gate": jax.nn.sigmoid(parts["allocation_gate"]),
        "write_gate": jax.nn.sigmoid(parts["write_gate"]),
        "read_modes": jax.nn.softmax(parts["read_modes"].reshape(batch + (reads, 3)), -1),
    }

  def input_size(params):
    return control.input_size(params["controller"]) - reads * w

  @common.checked_step(input_size)
  def step(params, carry, x):
    batch = x.shape[:-1]
    controller_in = jnp.concatenate([x, carry.reads.reshape(batch + (reads * w,))], -1)
    controller_carry, h = control.step(params["controller"], carry.controller, controller_in)
    io = interface(h @ params["interface"]["w"] + params["interface"]["b"])
    retention = jnp.prod(1 - io["free_gates"][..., None] * carry.read_weights, axis=-2)
    usage = (carry.usage + carry.write_weights
             - carry.usage * carry.write_weights) * retention
    allocation = allocation_weights(usage)
    lookup = addressing.content_weights(carry.memory, io["write_key"],
                                        io["write_strength"])[..., 0, :]
    gate = io["allocation_gate"]
    write = io["write_gate"] * (gate * allocation + (1 - gate) * lookup)
    memory = addressing.write(carry.memory, write[..., None, :], io["erase"][..., None, :],
                              io["write_vector"][..., None, :])
    link, precedence = update_links(carry.link, carry.precedence, write)
    forward = jnp.einsum("...ij,...rj->...ri", link, carry.read_weights)
    backward = jnp.einsum("...ji,...rj->...ri", link, carry.read_weights)
    content = addressing.content_weights(memory, io["read_keys"], io["read_strengths"])
    modes = io["read_modes"]
    read_weights = (modes[..., 0:1] * backward + modes[..., 1:2] * content
                    + modes[..., 2:3] * forward)
    r = addressing.read(memory, read_weights)
    y = jnp.concatenate([h, r.reshape(batch + (reads * w,))], -1)
    return DNCCarry(controller_carry, memory, usage, link, precedence, read_weights, write,
                    r), y

  name = (f"dnc(hidden_size={hidden_size}, memory={n}x{w}, reads={reads}, "
          f"controller={control.name})")
  return Cell(init, initial_carry, step, input_size, hidden_size, hidden_size + reads * w,
              name)
